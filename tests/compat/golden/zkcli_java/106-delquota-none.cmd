args: delquota /zkcli/q
