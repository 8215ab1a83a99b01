args: getAcl /zookeeper/config
