args: deleteall /zkcli/t/b
