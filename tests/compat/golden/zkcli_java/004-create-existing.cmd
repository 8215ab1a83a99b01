args: create /zkcli/a x
