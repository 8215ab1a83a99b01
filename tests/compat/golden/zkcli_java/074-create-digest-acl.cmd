args: create /zkcli/d secret digest:u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:cdrwa
