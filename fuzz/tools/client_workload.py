#!/usr/bin/env python3
"""A short kazoo session touching most request types (the seed traffic of fuzz/; the
Java zkCli adds containers, TTL nodes and persistent watches).

HOSTS=127.0.0.1:2181 client_workload.py
"""
import os
import uuid

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

hosts = os.environ["HOSTS"]
base = "/fuzz-" + uuid.uuid4().hex[:8]


def attempt(f, *args, **kwargs):
    try:
        return f(*args, **kwargs)
    except KazooException:
        return None


zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=15)
zk.add_auth("digest", "user:secret")
zk.ensure_path(base)
zk.create(base + "/data", b"hello" * 20)
zk.create(base + "/seq-", b"", sequence=True)
zk.create(base + "/eph", b"e", ephemeral=True)
zk.create(base + "/eseq-", b"", ephemeral=True, sequence=True)
zk.create(base + "/acl", b"a", acl=[make_digest_acl("user", "secret", all=True)])
zk.set(base + "/data", b"world")
zk.set(base + "/data", b"again", version=1)
attempt(zk.set, base + "/data", b"bad", version=99)
zk.get(base + "/data", watch=lambda e: None)
zk.exists(base + "/missing", watch=lambda e: None)
zk.get_children(base, watch=lambda e: None, include_data=True)
zk.get_acls(base + "/acl")
zk.set_acls(base + "/acl", OPEN_ACL_UNSAFE)
zk.sync(base)
tx = zk.transaction()
tx.create(base + "/tx1", b"1")
tx.check(base + "/data", 2)
tx.set_data(base + "/tx1", b"2")
tx.delete(base + "/tx1")
tx.commit()
tx = zk.transaction()
tx.create(base + "/tx2", b"1")
tx.delete(base + "/nope")
tx.commit()
for i in range(30):
    zk.create(base + "/n%02d" % i, str(i).encode())
    zk.set(base + "/n%02d" % i, b"x" * i)
attempt(zk.get, "/zookeeper/config")
attempt(zk.get, "/zookeeper/quota")
attempt(zk.delete, base + "/data", version=42)
zk.delete(base, recursive=True)
zk.stop()
zk.close()
