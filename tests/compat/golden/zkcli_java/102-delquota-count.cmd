args: delquota -n /zkcli/q
