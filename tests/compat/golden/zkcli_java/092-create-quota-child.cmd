args: create /zkcli/q/sub
