args: get /zkcli/missing
