args: config -s
