args: create -t 600000 -s /zkcli/t/ttls-
