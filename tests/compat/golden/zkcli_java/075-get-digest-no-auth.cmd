args: get /zkcli/d
