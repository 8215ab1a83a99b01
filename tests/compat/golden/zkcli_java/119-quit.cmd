args: quit
