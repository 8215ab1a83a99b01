args: create /zkcli/t/b/c data
