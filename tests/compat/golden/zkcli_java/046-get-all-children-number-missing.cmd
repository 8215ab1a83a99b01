args: getAllChildrenNumber /zkcli/missing
