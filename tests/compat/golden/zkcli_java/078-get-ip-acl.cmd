args: get /zkcli/ip
