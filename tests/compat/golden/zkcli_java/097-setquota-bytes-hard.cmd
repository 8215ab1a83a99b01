args: setquota -B 1000 /zkcli/q
