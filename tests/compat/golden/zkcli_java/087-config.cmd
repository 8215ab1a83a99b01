args: config
