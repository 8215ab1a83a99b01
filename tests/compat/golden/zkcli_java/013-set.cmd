args: set /zkcli/a world
