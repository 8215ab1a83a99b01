args: stat /zkcli/t/ttl
