args: ls -w /zkcli/t/b
