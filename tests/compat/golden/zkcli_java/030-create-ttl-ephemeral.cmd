args: create -t 1000 -e /zkcli/t/te
