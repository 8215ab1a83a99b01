args: set /zkcli/a z
