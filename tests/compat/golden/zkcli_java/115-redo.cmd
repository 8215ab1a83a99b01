stdin:
ls /zkcli/t
redo 0
