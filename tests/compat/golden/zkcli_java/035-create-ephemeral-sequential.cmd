args: create -e -s /zkcli/eph/es-
