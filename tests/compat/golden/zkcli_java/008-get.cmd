args: get /zkcli/a
