args: config -c
