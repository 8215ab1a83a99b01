args: getAcl -s /zkcli/r/s
