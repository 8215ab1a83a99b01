args: create
