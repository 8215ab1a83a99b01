args: setquota -n 10 /zkcli/q
