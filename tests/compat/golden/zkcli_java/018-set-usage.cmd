args: set /zkcli/a
