args: create zkcli/a
