args: delete /
