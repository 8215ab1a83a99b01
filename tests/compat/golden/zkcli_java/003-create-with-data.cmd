args: create /zkcli/a hello
