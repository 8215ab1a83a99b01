args: create /zkcli/bad x foo:bar:cdrwa
