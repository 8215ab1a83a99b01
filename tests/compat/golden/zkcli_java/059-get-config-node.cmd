args: get -s /zookeeper/config
