args: getAllChildrenNumber /zkcli/t
