args: stat /zkcli/missing
