args: create /zkcli
