args: sync /zkcli/missing
