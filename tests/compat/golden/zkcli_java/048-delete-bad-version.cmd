args: delete -v 5 /zkcli/a
