args: redo 0
