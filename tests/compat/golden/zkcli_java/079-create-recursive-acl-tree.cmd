args: create /zkcli/r
