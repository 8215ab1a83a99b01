args: setquota -n 5 /zkcli/missing
