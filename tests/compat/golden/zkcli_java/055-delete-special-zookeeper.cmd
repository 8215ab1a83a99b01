args: delete /zookeeper
