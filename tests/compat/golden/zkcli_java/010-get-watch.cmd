args: get -w /zkcli/a
