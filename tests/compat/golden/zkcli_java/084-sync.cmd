args: sync /zkcli
