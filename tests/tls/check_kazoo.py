"""kazoo over TLS against the server tests/tls/run.sh started.

Environment: TLS_DIR (certificates), ZK_PLAIN (host:port), ZK_SECURE (host:port),
CLIENT_DN (the client certificate's subject as ZooKeeper prints it).
Prints one "ok NAME" or "FAIL NAME: why" line per check; exits 1 if any failed.
"""

import os
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

D = os.environ["TLS_DIR"]
PLAIN = os.environ["ZK_PLAIN"]
SECURE = os.environ["ZK_SECURE"]
DN = os.environ["CLIENT_DN"]
# Left in place: run.sh then reads it with the Java client.
PATH = "/tls-kazoo"
failed = 0


def check(name, fn):
    global failed
    try:
        fn()
        print("ok", name)
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        failed += 1
        print("FAIL %s: %r" % (name, e))


def tls_client(cert):
    kw = dict(hosts=SECURE, use_ssl=True, ca=D + "/ca.pem", verify_certs=True,
              timeout=5, connection_retry={"max_tries": 0})
    if cert:
        kw.update(certfile="%s/%s.crt" % (D, cert), keyfile="%s/%s.key" % (D, cert))
    return KazooClient(**kw)


def x509_acl_node():
    zk = tls_client("client")
    zk.start(timeout=10)
    try:
        zk.create(PATH, b"hi", acl=[make_acl("x509", DN, all=True)])
        data, _ = zk.get(PATH)
        assert data == b"hi", data
        acls, _ = zk.get_acls(PATH)
        assert acls[0].id.scheme == "x509" and acls[0].id.id == DN, acls
    finally:
        zk.stop()
        zk.close()


def plain_has_no_x509():
    zk = KazooClient(hosts=PLAIN, timeout=5)
    zk.start(timeout=10)
    try:
        try:
            zk.get(PATH)
        except NoAuthError:
            return
        raise AssertionError("plain client read an x509-only node")
    finally:
        zk.stop()
        zk.close()


def refused(cert):
    def run():
        zk = tls_client(cert)
        try:
            zk.start(timeout=3)
        except Exception:  # noqa: BLE001 - kazoo reports the refusal as a timeout
            return
        finally:
            zk.stop()
            zk.close()
        raise AssertionError("connected without a trusted certificate")
    return run


check("kazoo_x509_acl_node", x509_acl_node)
check("kazoo_plain_port_has_no_x509_id", plain_has_no_x509)
check("kazoo_no_certificate_refused", refused(None))
check("kazoo_foreign_ca_refused", refused("intruder"))
sys.exit(1 if failed else 0)
