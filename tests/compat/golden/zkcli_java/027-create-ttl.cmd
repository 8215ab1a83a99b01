args: create -t 600000 /zkcli/t/ttl
