args: ls zkcli
