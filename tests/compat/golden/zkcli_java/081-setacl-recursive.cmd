args: setAcl -R /zkcli/r world:anyone:cdr
