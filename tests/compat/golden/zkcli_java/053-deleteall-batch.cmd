args: deleteall /zkcli/t/b2 -b 2
