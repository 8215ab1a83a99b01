stdin:
ls /zkcli/t
history
