args: ls /zookeeper
