args: create -s /zkcli/t/seq-
