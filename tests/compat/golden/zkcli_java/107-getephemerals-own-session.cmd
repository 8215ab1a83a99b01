args: getEphemerals /zkcli
