args: create /zkcli/r/s
