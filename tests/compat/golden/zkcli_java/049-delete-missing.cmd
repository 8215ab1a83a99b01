args: delete /zkcli/missing
