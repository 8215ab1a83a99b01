args: ls /zkcli/t
