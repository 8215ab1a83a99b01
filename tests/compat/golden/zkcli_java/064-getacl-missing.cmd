args: getAcl /zkcli/missing
