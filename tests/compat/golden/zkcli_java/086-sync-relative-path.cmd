args: sync zkcli
