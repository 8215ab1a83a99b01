args: ls /zkcli/missing
