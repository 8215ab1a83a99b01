stdin:
close
ls /zkcli/t
connect %HOSTS%
ls /zkcli/t
quit
