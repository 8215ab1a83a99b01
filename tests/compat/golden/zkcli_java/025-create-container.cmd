args: create -c /zkcli/t/cont
