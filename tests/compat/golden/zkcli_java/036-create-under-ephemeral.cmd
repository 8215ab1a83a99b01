args: create /zkcli/eph/e/child
