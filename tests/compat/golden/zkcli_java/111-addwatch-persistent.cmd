args: addWatch -m PERSISTENT /zkcli/a
