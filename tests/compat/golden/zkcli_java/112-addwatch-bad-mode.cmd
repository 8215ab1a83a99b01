args: addWatch -m FOO /zkcli/a
