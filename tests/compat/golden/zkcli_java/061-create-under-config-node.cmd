args: create /zookeeper/config/x
