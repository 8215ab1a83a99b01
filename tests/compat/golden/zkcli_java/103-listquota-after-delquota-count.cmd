args: listquota /zkcli/q
