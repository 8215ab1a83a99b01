args: removewatches /zkcli/a
