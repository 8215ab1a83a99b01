"""A zk-smoketest-style sanity and latency run with Apache ZooKeeper's Python
binding (module `zookeeper`, the C client underneath; Debian's
python3-zookeeper), against the server in $ZK_HOSTS.

Each check prints "ok   NAME" or "FAIL NAME: why"; the latency of each kind of
operation (synchronous calls, ms per op) is printed as information, not
asserted. The last line is "zkpython: N passed, M failed".

Env: ZK_HOSTS (required), ZNODE_COUNT (default 200), SUITE_TIMEOUT_S (100).

No working build of the binding exists on Debian 12 (see run.sh), so this
script has only been run through a stand-in `zookeeper` module with the same
calls, return values and exceptions, against both ZooKeeper and Corral.
"""

import os
import sys
import threading
import time

import zookeeper

EVENT_WAIT_S = 10.0
ACL = [{"perms": zookeeper.PERM_ALL, "scheme": "world", "id": "anyone"}]

lock = threading.Lock()
counts = {"passed": 0, "failed": 0, "finished": False}


def check(name, error):
    """Counts one check: error None (or "") passes."""
    with lock:
        if counts["finished"]:
            return False
        if not error:
            counts["passed"] += 1
            print(f"ok   {name}", flush=True)
            return True
        counts["failed"] += 1
        print(f"FAIL {name}: {error}", flush=True)
        return False


def finish(extra_failures=0):
    with lock:
        if counts["finished"]:
            return
        counts["finished"] = True
        counts["failed"] += extra_failures
        p, f = counts["passed"], counts["failed"]
    print(f"zkpython: {p} passed, {f} failed", flush=True)
    # os._exit: a C client thread must not keep the process alive.
    os._exit(1 if f or not p else 0)


class Session:
    """One handle; records the events its global watcher gets."""

    def __init__(self, hosts, timeout_ms=10000):
        self.connected = threading.Event()
        self.handle = zookeeper.init(hosts, self._watcher, timeout_ms)
        if not self.connected.wait(EVENT_WAIT_S):
            raise RuntimeError(f"no CONNECTED_STATE from {hosts} within {EVENT_WAIT_S}s")
        self.closed = False

    def _watcher(self, handle, type_, state, path):
        if type_ == zookeeper.SESSION_EVENT and state == zookeeper.CONNECTED_STATE:
            self.connected.set()

    def close(self):
        if not self.closed:
            self.closed = True
            zookeeper.close(self.handle)


class Watch:
    """A one-shot watcher function that remembers what fired it."""

    def __init__(self):
        self.fired = threading.Event()
        self.events = []

    def __call__(self, handle, type_, state, path):
        self.events.append((type_, path))
        self.fired.set()

    def wait(self, type_, path):
        if not self.fired.wait(EVENT_WAIT_S):
            return f"no event within {EVENT_WAIT_S}s"
        if self.events[0] != (type_, path):
            return f"events {self.events}, want {[(type_, path)]}"
        return None


def expect_raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return None
    except zookeeper.ZooKeeperException as e:
        return f"{type(e).__name__}: {e}, want {exc.__name__}"
    return f"no exception, want {exc.__name__}"


def timed(latencies, kind, paths, op):
    """Runs op(path) for every path, records ms per op; returns the first error."""
    start = time.monotonic()
    error = None
    for p in paths:
        try:
            got = op(p)
        except zookeeper.ZooKeeperException as e:
            return f"{p}: {type(e).__name__}: {e}"
        if got and error is None:
            error = f"{p}: {got}"
    latencies[kind] = (time.monotonic() - start) * 1000.0 / max(1, len(paths))
    return error


def main():
    hosts = os.environ.get("ZK_HOSTS")
    if not hosts:
        check("setup", "ZK_HOSTS is not set")
        finish()
    count = int(os.environ.get("ZNODE_COUNT", "200"))
    limit = int(os.environ.get("SUITE_TIMEOUT_S", "100"))

    def watchdog():
        print(f"FAIL watchdog: the suite did not finish within {limit}s", flush=True)
        finish(1)

    timer = threading.Timer(limit, watchdog)
    timer.daemon = True
    timer.start()

    zookeeper.set_debug_level(zookeeper.LOG_LEVEL_ERROR)
    try:
        s1 = Session(hosts)
        s2 = Session(hosts)
        check("connect: two sessions", None)
    except Exception as e:  # any failure to connect ends the run
        check("connect: two sessions", repr(e))
        finish()
    h1, h2 = s1.handle, s2.handle

    base = f"/zkpython-{os.getpid()}-{int(time.time() * 1000) % 1000000}"
    names = [f"node-{i:04d}" for i in range(count)]
    paths = [f"{base}/{n}" for n in names]
    latencies = {}

    if not check("create: the base node", None if zookeeper.create(h1, base, b"", ACL, 0) == base
                 else "wrong path"):
        finish()
    check(f"create: {count} znodes", timed(
        latencies, "create", paths,
        lambda p: None if zookeeper.create(h1, p, p.encode(), ACL, 0) == p else "wrong path"))
    check("create: an existing path -> NodeExistsException",
          expect_raises(zookeeper.NodeExistsException, zookeeper.create, h1, paths[0], b"", ACL, 0))
    check(f"get: {count} znodes, their data", timed(
        latencies, "get", paths,
        lambda p: None if zookeeper.get(h2, p)[0] == p.encode() else "wrong data"))
    check(f"set: {count} znodes", timed(
        latencies, "set", paths,
        lambda p: None if zookeeper.set(h1, p, b"set:" + p.encode(), 0) == zookeeper.OK else "not OK"))
    check("set: a stale version -> BadVersionException",
          expect_raises(zookeeper.BadVersionException, zookeeper.set, h1, paths[0], b"x", 0))
    check("get: the new data, version 1", timed(
        {}, "get after set", paths[:10],
        lambda p: None if zookeeper.get(h2, p)[0] == b"set:" + p.encode()
        and zookeeper.get(h2, p)[1]["version"] == 1 else "wrong data or version"))
    check(f"exists: {count} znodes", timed(
        latencies, "exists", paths,
        lambda p: None if (zookeeper.exists(h2, p) or {}).get("version") == 1 else "no stat"))
    check("exists: None for a missing node", None if zookeeper.exists(h1, base + "/missing") is None
          else "a stat for a missing node")

    def children_match(p):
        start = time.monotonic()
        kids = zookeeper.get_children(h2, p)
        latencies["get_children"] = (time.monotonic() - start) * 1000.0
        return None if sorted(kids) == names else f"{len(kids)} children"

    check("get_children: every name", children_match(base))

    watched = paths[0]
    w = Watch()
    zookeeper.get(h2, watched, w)
    zookeeper.set(h1, watched, b"changed", -1)
    check("watch: a data watch fires CHANGED_EVENT", w.wait(zookeeper.CHANGED_EVENT, watched))
    w = Watch()
    missing = base + "/later"
    zookeeper.exists(h2, missing, w)
    zookeeper.create(h1, missing, b"", ACL, 0)
    check("watch: an exists watch on a missing node fires CREATED_EVENT",
          w.wait(zookeeper.CREATED_EVENT, missing))
    zookeeper.delete(h1, missing, -1)

    eph_dir = base + "/eph"
    zookeeper.create(h1, eph_dir, b"", ACL, 0)
    s3 = Session(hosts)
    ephs = [zookeeper.create(s3.handle, eph_dir + "/e-", b"", ACL,
                             zookeeper.EPHEMERAL | zookeeper.SEQUENCE) for _ in range(10)]
    w = Watch()
    seen = zookeeper.get_children(h1, eph_dir, w)
    check("ephemeral: ten ephemeral-sequential nodes seen by another session",
          None if sorted(eph_dir + "/" + k for k in seen) == sorted(ephs) else f"children {seen}")
    s3.close()
    error = w.wait(zookeeper.CHILD_EVENT, eph_dir)
    if not error:
        left = zookeeper.get_children(h1, eph_dir)
        error = f"children after close: {left}" if left else None
    check("ephemeral: gone when their session closes", error)
    zookeeper.delete(h1, eph_dir, -1)

    check("delete: a node with children -> NotEmptyException",
          expect_raises(zookeeper.NotEmptyException, zookeeper.delete, h1, base, -1))
    check(f"delete: {count} znodes", timed(
        latencies, "delete", paths,
        lambda p: None if zookeeper.delete(h1, p, -1) == zookeeper.OK else "not OK"))
    check("delete: a missing node -> NoNodeException",
          expect_raises(zookeeper.NoNodeException, zookeeper.delete, h1, paths[0], -1))
    check("delete: the base node, now empty",
          None if zookeeper.delete(h1, base, -1) == zookeeper.OK and zookeeper.exists(h2, base) is None
          else "still there")

    for kind, ms in latencies.items():
        print(f"latency {kind:>14}: {ms:7.3f} ms/op")
    s1.close()
    s2.close()
    finish()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # an unexpected error still ends with the summary line
        check("unexpected error", repr(e))
        finish()
