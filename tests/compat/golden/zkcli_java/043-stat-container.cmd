args: stat /zkcli/t/cont
