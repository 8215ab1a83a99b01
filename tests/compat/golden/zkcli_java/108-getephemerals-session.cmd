stdin:
create -e /zkcli/eph/s1
create -e -s /zkcli/eph/s2-
getEphemerals /zkcli/eph
getEphemerals /zkcli/eph/s1
getEphemerals
quit
