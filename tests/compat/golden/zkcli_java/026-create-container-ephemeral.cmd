args: create -c -e /zkcli/t/ce
