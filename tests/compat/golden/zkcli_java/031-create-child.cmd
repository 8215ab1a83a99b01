args: create /zkcli/t/b
