args: stat /zkcli/a
