args: stat /zookeeper
