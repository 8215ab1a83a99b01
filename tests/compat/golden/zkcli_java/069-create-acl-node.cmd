args: create /zkcli/acl
