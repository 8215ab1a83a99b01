args: setAcl -s /zkcli/acl world:anyone:cdrw
