args: create /zkcli/q
