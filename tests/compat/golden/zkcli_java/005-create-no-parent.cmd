args: create /zkcli/x/y
