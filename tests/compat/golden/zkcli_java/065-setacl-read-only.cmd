args: setAcl /zkcli/a world:anyone:r
