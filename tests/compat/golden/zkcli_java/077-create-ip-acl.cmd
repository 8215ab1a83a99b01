args: create /zkcli/ip x ip:127.0.0.1:cdrwa
