args: set /zkcli/missing x
