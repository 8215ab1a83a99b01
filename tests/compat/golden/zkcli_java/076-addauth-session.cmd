stdin:
addauth digest u:p
get /zkcli/d
getAcl /zkcli/d
whoami
create /zkcli/au y auth::cdrwa
getAcl /zkcli/au
