args: get -s /zkcli/a
