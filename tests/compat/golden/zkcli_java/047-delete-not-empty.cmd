args: delete /zkcli/t/b
