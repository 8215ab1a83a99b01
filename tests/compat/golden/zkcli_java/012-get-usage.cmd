args: get
