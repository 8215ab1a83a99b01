args: setAcl -v 5 /zkcli/acl world:anyone:cdrwa
