args: version
