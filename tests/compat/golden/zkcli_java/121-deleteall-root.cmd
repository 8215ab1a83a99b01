args: deleteall /zkcli/t
