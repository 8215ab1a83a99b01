args: delete -v 0 /zkcli/t/b/c
