args: reconfig -remove 3
