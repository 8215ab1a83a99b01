args: getAcl -s /zkcli/a
