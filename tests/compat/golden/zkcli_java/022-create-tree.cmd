args: create /zkcli/t
