args: setquota -N 5 /zkcli/q
