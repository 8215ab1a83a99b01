args: setAcl /zkcli/acl foo:bar:cdrwa
