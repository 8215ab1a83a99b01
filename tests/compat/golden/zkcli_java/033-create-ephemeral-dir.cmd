args: create /zkcli/eph
