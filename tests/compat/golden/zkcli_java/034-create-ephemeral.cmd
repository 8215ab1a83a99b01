args: create -e /zkcli/eph/e
