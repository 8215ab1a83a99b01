"""Fixtures shared by the compat suites.

The server under test is named by the environment, never by the suite:
  ZK_HOSTS   127.0.0.1:PORT[,...]   (required)
  ZK_FLAVOR  zookeeper | corral     (only selects a documented difference)
  ZK_CLUSTER 1 when ZK_HOSTS is an ensemble (run.sh --cluster; see catch_up)

Every test works below its own fresh znode (`base`), so tests do not depend on
each other or on their order, and the tree is cleaned up afterwards.
"""

import os
import queue
import re
import uuid

import pytest
from kazoo.client import KazooClient

import zkwire

HOSTS = os.environ.get("ZK_HOSTS", "")
FLAVOR = os.environ.get("ZK_FLAVOR", "zookeeper")
CLUSTER = os.environ.get("ZK_CLUSTER") == "1"


def pytest_configure(config):
    if not HOSTS:
        raise pytest.UsageError("ZK_HOSTS is not set (expected 127.0.0.1:PORT[,...])")
    if FLAVOR not in ("zookeeper", "corral"):
        raise pytest.UsageError("ZK_FLAVOR must be zookeeper or corral, not %r" % FLAVOR)


@pytest.fixture
def hosts():
    return HOSTS


@pytest.fixture
def flavor():
    return FLAVOR


@pytest.fixture
def make_client():
    """Factory of started kazoo clients; all are stopped at teardown."""
    clients = []

    def make(**kw):
        kw.setdefault("timeout", 10.0)
        kw.setdefault("hosts", HOSTS)
        c = KazooClient(**kw)
        c.start(timeout=15)
        clients.append(c)
        return c

    yield make
    for c in clients:
        try:
            c.stop()
            c.close()
        except Exception:
            pass


@pytest.fixture
def catch_up():
    """catch_up(client, path), before a session reads what another session
    wrote. In an ensemble the two sessions may sit on different servers, and
    ZooKeeper promises a session only its own order: sync brings its server
    up to the leader. A standalone server must be current without it, so
    there nothing is sent."""

    def sync(client, path):
        if CLUSTER:
            client.sync(path)

    return sync


@pytest.fixture
def zk(make_client):
    return make_client()


@pytest.fixture
def zk2(make_client):
    return make_client()


@pytest.fixture
def base(zk, request):
    """A fresh persistent znode for this test, removed afterwards."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:60]
    path = "/compat-%s-%s" % (name, uuid.uuid4().hex[:8])
    zk.create(path)
    yield path
    try:
        zk.delete(path, recursive=True)
    except Exception:
        pass


@pytest.fixture
def wire():
    """Factory of raw-protocol sessions (zkwire.Conn); closed at teardown."""
    conns = []

    def make(timeout_ms=30000, **kw):
        c = zkwire.Conn.session(timeout_ms=timeout_ms, **kw)
        conns.append(c)
        return c

    yield make
    for c in conns:
        zkwire.end_session(c)


@pytest.fixture
def raw():
    """Factory of raw connections with no handshake yet; any session they
    end up with is closed at teardown."""
    conns = []

    def make():
        c = zkwire.Conn()
        conns.append(c)
        return c

    yield make
    for c in conns:
        if c.session_id:
            zkwire.end_session(c)
        else:
            c.close()


class Events:
    """A kazoo watch callback that queues events, with bounded waits."""

    def __init__(self):
        self.q = queue.Queue()

    def __call__(self, event):
        self.q.put(event)

    def get(self, timeout=10.0):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no watch event within %.1fs" % timeout)

    def empty(self):
        return self.q.empty()


@pytest.fixture
def events():
    return Events
