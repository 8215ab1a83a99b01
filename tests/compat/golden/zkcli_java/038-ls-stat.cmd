args: ls -s /zkcli/t
