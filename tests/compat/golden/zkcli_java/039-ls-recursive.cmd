args: ls -R /zkcli/t
