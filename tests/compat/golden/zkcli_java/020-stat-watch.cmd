args: stat -w /zkcli/a
