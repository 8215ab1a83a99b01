args: setquota -b 100 /zkcli/q
