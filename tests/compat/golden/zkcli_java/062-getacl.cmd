args: getAcl /zkcli/a
