args: set /zookeeper/config x
