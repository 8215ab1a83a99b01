args: setAcl /zkcli/a world:anyone:cdrwa
