args: create -t 0 /zkcli/t/t0
