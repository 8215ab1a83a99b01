args: create /zkcli/t/b2
