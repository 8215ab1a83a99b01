stdin:
addWatch -m PERSISTENT /zkcli/a
removewatches /zkcli/a
