args: setquota -n 5 /zkcli/q/sub
