args: addWatch /zkcli/a
