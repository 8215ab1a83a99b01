"""A Corral cluster under injected faults, with every client operation recorded and checked.

    tests/chaos/chaos.py [--ci] [--duration-s N] [--seed N] [--nodes 3|5] [--keep]

Run it through scripts/chaos.sh (which picks the Python with kazoo). What it does:

1. Builds the cluster: N Corral servers, each in a network namespace of its own joined by a
   bridge (as tests/scripts/netns_partition.sh does), the clients in one more namespace; or,
   without root / `ip netns`, all on loopback (then partitions are skipped). Server N's
   dataLogDir is a small ext4 file system on a loop device (64 MiB image, no reserved
   blocks), its process in a blkio cgroup (cgroup v1 blkio.throttle or v2 io.max), for the
   disk-full and slow-fsync faults.
2. Clients (kazoo, one session each, threads of this process, one monotonic clock):
   - register workers: sync + getData, setData(version -1), and compare-and-set
     (setData with the version last read) on a few registers, every value unique;
   - queue workers: sequential creates under /chaos/q, every data unique;
   - lock workers: an ephemeral /chaos/lock, held briefly, then deleted.
   Every operation is recorded with its invoke and completion times and its outcome: ok,
   fail (the server answered an error, so it did not apply), or info (timeout, connection
   loss: unknown). After an info the worker drops its client and starts a new session, so
   an unknown operation can never be confused with a later one of the same session.
3. A nemesis cycles through the fault kinds (seeded order): kill -9 and restart, SIGSTOP /
   SIGCONT, partition (the node's bridge port detached: nothing crosses either way), disk
   full (server N's log file system filled to the last block), slow fsync (server N's
   writes throttled to a few IOPS). Each fault is held a few seconds, then healed, and the
   nemesis waits for every server to serve again before the next one.
4. At the end: everything healed, final reads (recorded in the history), every server read
   alone (after sync) must hold the same registers and queue, the servers stopped, and
   `corral logdump --verify` must pass on every dataLogDir. tests/chaos/checker.py checks
   the history. The report lists operations, faults of each kind, what the disk-full
   server did (per fill: stayed up, left the ensemble, rejoined; an exit, ENOSPC's status
   10 among others, is a failure), and anomalies; the last line is "N passed, M failed".
"""

import argparse
import ctypes
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import (  # noqa: E402
    BadVersionError, NodeExistsError, NoNodeError, KazooException)
from kazoo.handlers.threading import KazooTimeoutError  # noqa: E402
from kazoo.protocol.states import KazooState  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NET = "10.214.0"
INIT = "init"
SESSION_TIMEOUT_S = 6.0
OP_TIMEOUT_S = 8.0
CLONE_NEWNET = 0x40000000


def now():
    return time.monotonic()


def log(msg):
    print("[%7.1fs] %s" % (now() - T0, msg), flush=True)


T0 = now()


def run(cmd, timeout=10, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stdout.strip()))
    return r


# ------------------------------------------------------------------ the environment

class Env:
    """What this host allows; each missing piece turns a fault kind off, with a reason."""

    def __init__(self):
        self.skips = {}
        self.root = os.geteuid() == 0
        self.netns = False
        if os.environ.get("CHAOS_LOOPBACK"):
            self.skips["partition"] = "CHAOS_LOOPBACK is set (servers on loopback)"
        elif not self.root:
            self.skips["partition"] = "not root (network namespaces need CAP_SYS_ADMIN)"
        elif not shutil.which("ip"):
            self.skips["partition"] = "no 'ip' command (iproute2)"
        else:
            try:
                run(["ip", "netns", "list"], timeout=5)
                self.netns = True
            except Exception as e:  # noqa: BLE001
                self.skips["partition"] = "'ip netns' does not work here (%s)" % e
        self.loop = False
        missing = [c for c in ("losetup", "mkfs.ext4", "mount", "umount") if not shutil.which(c)]
        if not self.root:
            self.skips["diskfull"] = "not root (a loop-mounted file system needs it)"
        elif missing:
            self.skips["diskfull"] = "missing %s (util-linux, e2fsprogs)" % ", ".join(missing)
        else:
            self.loop = True
        self.cgroup = None  # ("v1", dir) or ("v2", dir)
        if not self.loop:
            self.skips["slowfsync"] = "no loop-mounted log file system to throttle"
        elif os.path.isdir("/sys/fs/cgroup/blkio") and os.path.exists(
                "/sys/fs/cgroup/blkio/blkio.throttle.write_iops_device"):
            self.cgroup = ("v1", "/sys/fs/cgroup/blkio")
        elif os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            try:
                with open("/sys/fs/cgroup/cgroup.controllers") as f:
                    if "io" in f.read().split():
                        self.cgroup = ("v2", "/sys/fs/cgroup")
            except OSError:
                pass
            if self.cgroup is None:
                self.skips["slowfsync"] = "cgroup v2 without the io controller"
        else:
            self.skips["slowfsync"] = "no blkio (v1) or io (v2) cgroup controller"


def setns(name):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/var/run/netns/%s" % name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns %s" % name)
    finally:
        os.close(fd)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


# ------------------------------------------------------------------ the cluster

class Cluster:
    def __init__(self, env, args, scratch):
        self.env, self.args, self.dir = env, args, scratch
        self.n = args.nodes
        self.prefix = "chaos%d" % os.getpid()
        self.namespaces = []
        self.procs = {}
        self.addr = {}
        self.client_port = {}
        self.paused = set()
        self.cut = set()
        self.routes = []
        self.loopdev = None
        self.mnt = None
        self.cg_dir = None
        self.devnum = None
        # The server with the highest id wins elections between equal histories, so the
        # faults on its disk find it leading about as often as following.
        self.disk_node = args.nodes

    # -- setup

    def setup(self):
        if self.env.netns:
            try:
                self._setup_netns()
            except Exception as e:  # noqa: BLE001
                self.env.skips["partition"] = "cannot build namespaces (%s)" % e
                self.env.netns = False
                self._delete_namespaces()
        if not self.env.netns:
            ports = free_ports(3 * self.n)
            for i in range(1, self.n + 1):
                self.addr[i] = "127.0.0.1"
                self.client_port[i] = ports[3 * (i - 1)]
            self.quorum_ports = {i: (ports[3 * (i - 1) + 1], ports[3 * (i - 1) + 2])
                                 for i in range(1, self.n + 1)}
        if self.env.loop:
            try:
                self._setup_disk()
            except Exception as e:  # noqa: BLE001
                self.env.skips["diskfull"] = "cannot build the loop file system (%s)" % e
                self.env.skips.setdefault("slowfsync", "no loop file system")
                self.env.loop = False
                self.env.cgroup = None
        if self.env.cgroup:
            try:
                self._setup_cgroup()
            except Exception as e:  # noqa: BLE001
                self.env.skips["slowfsync"] = "cannot make the blkio cgroup (%s)" % e
                self.env.cgroup = None
        self._write_configs()

    def _ns(self, *cmd):
        run(["ip"] + list(cmd), timeout=5)

    def _add_ns(self, name):
        run(["ip", "netns", "add", name], timeout=5)
        self.namespaces.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"], timeout=5)

    def _add_host(self, name, addr, port):
        self._add_ns(name)
        br = self.prefix + "-br"
        self._ns("link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", port,
                 "netns", br)
        self._ns("-n", name, "addr", "add", addr + "/24", "dev", "eth0")
        self._ns("-n", name, "link", "set", "eth0", "up")
        self._ns("-n", br, "link", "set", port, "master", "br0")
        self._ns("-n", br, "link", "set", port, "up")

    def _setup_netns(self):
        br = self.prefix + "-br"
        self._add_ns(br)
        self._ns("-n", br, "link", "add", "br0", "type", "bridge")
        self._ns("-n", br, "link", "set", "br0", "up")
        for i in range(1, self.n + 1):
            self.addr[i] = "%s.%d" % (NET, i)
            self.client_port[i] = 2181
            self._add_host("%s-%d" % (self.prefix, i), self.addr[i], "port%d" % i)
        self._add_host(self.prefix + "-c", NET + ".100", "portc")
        self.quorum_ports = {i: (2888, 3888) for i in range(1, self.n + 1)}

    def _setup_disk(self):
        img = os.path.join(self.dir, "log-disk.img")
        with open(img, "wb") as f:
            f.truncate(64 << 20)
        self.loopdev = run(["losetup", "-f", "--show", img]).stdout.strip()
        run(["mkfs.ext4", "-q", "-m", "0", self.loopdev], timeout=60)
        self.mnt = os.path.join(self.dir, "log-disk")
        os.makedirs(self.mnt)
        run(["mount", self.loopdev, self.mnt])
        st = os.stat(self.loopdev)
        self.devnum = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))

    def _setup_cgroup(self):
        kind, base = self.env.cgroup
        d = os.path.join(base, self.prefix)
        if kind == "v2":
            with open(os.path.join(base, "cgroup.subtree_control"), "w") as f:
                f.write("+io")
        os.mkdir(d)
        self.cg_dir = d

    def throttle(self, on):
        kind, _ = self.env.cgroup
        if kind == "v1":
            path = os.path.join(self.cg_dir, "blkio.throttle.write_iops_device")
            val = "%s %d" % (self.devnum, 8 if on else 0)
        else:
            path = os.path.join(self.cg_dir, "io.max")
            val = "%s wiops=%s" % (self.devnum, "8" if on else "max")
        with open(path, "w") as f:
            f.write(val)

    def _write_configs(self):
        servers = "".join("server.%d=%s:%d:%d\n" % (i, self.addr[i], *self.quorum_ports[i])
                          for i in range(1, self.n + 1))
        for i in range(1, self.n + 1):
            data = os.path.join(self.dir, "data", "zk%d" % i)
            os.makedirs(data)
            with open(os.path.join(data, "myid"), "w") as f:
                f.write("%d\n" % i)
            logdir = data
            if i == self.disk_node and self.mnt:
                logdir = os.path.join(self.mnt, "zk%d" % i)
                os.makedirs(logdir)
            self.logdir = getattr(self, "logdir", {})
            self.logdir[i] = logdir
            cfg = ("tickTime=500\ninitLimit=10\nsyncLimit=4\ndataDir=%s\ndataLogDir=%s\n"
                   "clientPort=%d\n%s4lw.commands.whitelist=*\nadmin.enableServer=false\n"
                   "snapCount=1000\npreAllocSize=1024\ncorral.shards=1\ncorral.ioMemoryKb=512\n"
                   % (data, logdir, self.client_port[i], servers))
            if not self.env.netns:
                cfg += "clientPortAddress=127.0.0.1\n"
            if i == self.disk_node:
                # Slow syncs are logged: the evidence that the slow-fsync fault bit.
                cfg += "fsync.warningthresholdms=50\n"
            with open(os.path.join(self.dir, "zoo%d.cfg" % i), "w") as f:
                f.write(cfg)

    # -- processes

    def start(self, i):
        cmd = [self.args.bin, "server", os.path.join(self.dir, "zoo%d.cfg" % i)]
        if self.env.netns:
            cmd = ["ip", "netns", "exec", "%s-%d" % (self.prefix, i)] + cmd
        cg = self.cg_dir if i == self.disk_node else None

        def pre():
            if cg:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
        out = open(os.path.join(self.dir, "zk%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=pre, env=dict(os.environ, NO_COLOR="1"))
        out.close()

    def alive(self, i):
        p = self.procs.get(i)
        return p is not None and p.poll() is None

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs.get(i)
        if p is not None and p.poll() is None:
            os.kill(p.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=10)

    def pause(self, i):
        os.kill(self.procs[i].pid, signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i):
        if i in self.paused:
            if self.alive(i):
                os.kill(self.procs[i].pid, signal.SIGCONT)
            self.paused.discard(i)

    def partition(self, i):
        self._ns("-n", self.prefix + "-br", "link", "set", "port%d" % i, "nomaster")
        self.cut.add(i)

    def heal(self, i):
        self._ns("-n", self.prefix + "-br", "link", "set", "port%d" % i, "master", "br0")
        self.cut.discard(i)

    def split(self, side):
        """Cuts the servers in `side` from the others (blackhole routes both ways); the
        client host still reaches every server."""
        other = [j for j in range(1, self.n + 1) if j not in side]
        for a, b in [(a, b) for a in side for b in other] + [(b, a) for a in side for b in other]:
            self._ns("-n", "%s-%d" % (self.prefix, a), "route", "add", "blackhole",
                     self.addr[b] + "/32")
            self.routes.append((a, b))

    def unsplit(self):
        for a, b in self.routes:
            run(["ip", "-n", "%s-%d" % (self.prefix, a), "route", "del", "blackhole",
                 self.addr[b] + "/32"], timeout=5, check=False)
        self.routes = []

    def hosts(self, only=None):
        ids = [only] if only else list(range(1, self.n + 1))
        return ",".join("%s:%d" % (self.addr[i], self.client_port[i]) for i in ids)

    def mode(self, i):
        try:
            with socket.create_connection((self.addr[i], self.client_port[i]), timeout=1) as s:
                s.settimeout(1)
                s.sendall(b"srvr")
                buf = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
        except OSError:
            return None
        text = buf.decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("Mode: "):
                return line[6:].strip()
        return "not serving" if "not currently serving" in text else None

    def modes(self):
        return {i: self.mode(i) for i in range(1, self.n + 1)}

    def leader(self):
        for i, m in self.modes().items():
            if m == "leader":
                return i
        return None

    def all_serving(self):
        ms = self.modes()
        return (sorted(ms.values(), key=str) ==
                sorted(["leader"] + ["follower"] * (self.n - 1))), ms

    def wait_serving(self, limit):
        deadline = now() + limit
        while True:
            ok, ms = self.all_serving()
            if ok or now() >= deadline:
                return ok, ms
            time.sleep(0.2)

    # -- teardown

    def stop_all(self):
        for i in list(self.procs):
            self.resume(i)
            self.kill(i, signal.SIGTERM)

    def cleanup(self):
        for i in list(self.procs):
            try:
                self.resume(i)
                self.kill(i, signal.SIGKILL)
            except Exception:  # noqa: BLE001
                pass
        if self.mnt:
            subprocess.run(["umount", "-l", self.mnt], stderr=subprocess.DEVNULL)
        if self.loopdev:
            subprocess.run(["losetup", "-d", self.loopdev], stderr=subprocess.DEVNULL)
        if self.cg_dir:
            try:
                os.rmdir(self.cg_dir)
            except OSError:
                pass
        self._delete_namespaces()

    def _delete_namespaces(self):
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "delete", ns], stderr=subprocess.DEVNULL)
        self.namespaces = []


# ------------------------------------------------------------------ the history

class History:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()

    def add(self, op):
        with self.lock:
            self.ops.append(op)


def indeterminate(exc):
    return isinstance(exc, (KazooException, KazooTimeoutError, OSError))


class Worker(threading.Thread):
    def __init__(self, name, cluster, hist, stop, rng):
        super().__init__(name=name, daemon=True)
        self.cluster, self.hist, self.stop, self.rng = cluster, hist, stop, rng
        self.zk = None
        self.left_connected_at = None
        self.sessions = 0

    def listener(self, state):
        if state != KazooState.CONNECTED and self.left_connected_at is None:
            self.left_connected_at = now()

    def connect(self):
        while not self.stop.is_set():
            zk = KazooClient(hosts=self.cluster.hosts(), timeout=SESSION_TIMEOUT_S,
                             connection_retry={"max_tries": -1, "delay": 0.1,
                                               "max_delay": 1.0},
                             randomize_hosts=True)
            try:
                zk.start(timeout=5)
                self.zk = zk
                self.left_connected_at = None
                zk.add_listener(self.listener)
                self.sessions += 1
                return True
            except Exception:  # noqa: BLE001
                drop(zk)
        return False

    def reset(self):
        if self.zk is not None:
            drop(self.zk)
            self.zk = None

    def call(self, fn):
        """fn() returns an async result; waits at most OP_TIMEOUT_S."""
        return fn().get(timeout=OP_TIMEOUT_S)

    def run(self):
        try:
            while not self.stop.is_set():
                if self.zk is None and not self.connect():
                    break
                self.step()
        finally:
            self.reset()

    def record(self, kind, key, f, arg, t0, typ, out=None):
        self.hist.add({"proc": self.name, "kind": kind, "key": key, "f": f, "arg": arg,
                       "invoke": t0, "complete": now() if typ != "info" else None,
                       "type": typ, "out": out or {}})


def drop(zk):
    def go():
        try:
            zk.stop()
            zk.close()
        except Exception:  # noqa: BLE001
            pass
    threading.Thread(target=go, daemon=True).start()


class RegisterWorker(Worker):
    def __init__(self, *a, keys):
        super().__init__(*a)
        self.keys = keys
        self.n = 0
        self.seen = {}

    def step(self):
        key = self.rng.choice(self.keys)
        path = "/chaos/reg/" + key
        r = self.rng.random()
        if r < 0.4:
            t0 = now()
            try:
                self.call(lambda: self.zk.sync_async(path))
                data, stat = self.call(lambda: self.zk.get_async(path))
                self.seen[key] = stat.version
                self.record("register", key, "read", {}, t0, "ok",
                            {"value": data.decode(), "version": stat.version})
            except Exception as e:  # noqa: BLE001
                self.record("register", key, "read", {}, t0, "fail", {"error": repr(e)})
                if indeterminate(e):
                    self.reset()
            return
        self.n += 1
        value = "%s-%d" % (self.name, self.n)
        if r < 0.6:
            f, arg, version = "write", {"value": value}, -1
        else:
            expect = self.seen.get(key, 0)
            f, arg, version = "cas", {"value": value, "expect": expect}, expect
        t0 = now()
        try:
            stat = self.call(lambda: self.zk.set_async(path, value.encode(), version))
            self.seen[key] = stat.version
            self.record("register", key, f, arg, t0, "ok", {"version": stat.version})
        except BadVersionError:
            self.record("register", key, f, arg, t0, "fail", {"error": "BadVersion"})
        except Exception as e:  # noqa: BLE001
            self.record("register", key, f, arg, t0, "info", {"error": repr(e)})
            self.reset()
        time.sleep(self.rng.random() * 0.01)


class QueueWorker(Worker):
    n = 0

    def step(self):
        self.n += 1
        value = "%s-%d" % (self.name, self.n)
        t0 = now()
        try:
            path = self.call(lambda: self.zk.create_async("/chaos/q/item-", value.encode(),
                                                          sequence=True))
            self.record("queue", "q", "create", {"value": value}, t0, "ok", {"path": path})
        except Exception as e:  # noqa: BLE001
            self.record("queue", "q", "create", {"value": value}, t0, "info",
                        {"error": repr(e)})
            self.reset()
        time.sleep(self.rng.random() * 0.02)


class LockWorker(Worker):
    PATH = "/chaos/lock"
    holds = 0

    def step(self):
        if self.left_connected_at is not None:
            # The connection dropped since the last hold: start over with a new session.
            self.reset()
            return
        t0 = now()
        try:
            self.call(lambda: self.zk.create_async(self.PATH, self.name.encode(),
                                                   ephemeral=True))
        except NodeExistsError:
            # Wait for a change (bounded), then try again.
            ev = threading.Event()
            try:
                if self.call(lambda: self.zk.exists_async(self.PATH,
                                                          watch=lambda _e: ev.set())):
                    ev.wait(0.5)
            except Exception:  # noqa: BLE001
                self.reset()
            return
        except Exception:  # noqa: BLE001
            # Unknown: the node may exist for this session; a new session ends it.
            self.reset()
            return
        acquired = now()
        if self.left_connected_at is not None:
            # The connection left CONNECTED between the create and its answer.
            self.reset()
            return
        self.holds += 1
        # Hold it briefly. A change of connection state ends the hold at once.
        end = acquired + 0.05 + self.rng.random() * 0.2
        while now() < end and self.left_connected_at is None and not self.stop.is_set():
            time.sleep(0.01)
        t_rel = now()
        lost = self.left_connected_at
        released = min(t_rel, lost) if lost is not None else t_rel
        self.hist.add({"proc": self.name, "kind": "lock", "key": "lock", "f": "hold",
                       "acquired": acquired, "released": released, "invoke": acquired,
                       "complete": released, "type": "ok",
                       "out": {"ended_by": "connection" if lost is not None and lost <= t_rel
                               else "release"}})
        if lost is not None:
            self.reset()
            return
        try:
            self.call(lambda: self.zk.delete_async(self.PATH))
        except NoNodeError:
            pass
        except Exception:  # noqa: BLE001
            self.reset()


# ------------------------------------------------------------------ the nemesis

class Nemesis:
    KINDS = ["kill", "pause", "partition", "diskfull", "slowfsync"]

    def __init__(self, cluster, env, rng, hold_range, report):
        self.c, self.env, self.rng = cluster, env, rng
        self.hold_range = hold_range
        self.counts = {k: 0 for k in self.KINDS}
        self.counts.update({"partition-isolate": 0, "partition-split": 0})
        self.events = []
        self.report = report
        self.kinds = [k for k in self.KINDS if k not in env.skips]
        self.filler = None

    def target(self):
        leader = self.c.leader()
        if leader is not None and self.rng.random() < 0.5:
            return leader, "leader"
        i = self.rng.randint(1, self.c.n)
        return i, "leader" if i == leader else "node"

    def event(self, msg):
        self.events.append("%.1fs %s" % (now() - T0, msg))
        log("nemesis: " + msg)

    def run_one(self, kind, stop):
        hold = self.rng.uniform(*self.hold_range)
        if kind == "kill":
            i, role = self.target()
            self.c.kill(i)
            self.event("kill -9 server %d (%s), restart in %.1fs" % (i, role, hold))
            stop.wait(hold)
            self.c.start(i)
        elif kind == "pause":
            i, role = self.target()
            self.c.pause(i)
            self.event("SIGSTOP server %d (%s) for %.1fs" % (i, role, hold))
            stop.wait(hold)
            self.c.resume(i)
        elif kind == "partition" and self.rng.random() < 0.5:
            i, role = self.target()
            self.c.partition(i)
            self.event("partition: server %d (%s) cut off from everyone, clients too, for %.1fs"
                       % (i, role, hold + 3.0))
            stop.wait(hold + 3.0)  # past syncLimit (2 s), so that a new leader is elected
            self.c.heal(i)
            self.counts["partition-isolate"] += 1
        elif kind == "partition":
            i, role = self.target()
            side = [i]
            if self.c.n == 5 and self.rng.random() < 0.5:
                side.append(self.rng.choice([j for j in range(1, 6) if j != i]))
            self.c.split(side)
            self.event("partition: servers %s (with the %s) cut off from the other servers, "
                       "clients still reach both sides, for %.1fs" % (side, role, hold + 3.0))
            stop.wait(hold + 3.0)
            self.c.unsplit()
            self.counts["partition-split"] += 1
        elif kind == "slowfsync":
            i = self.c.disk_node
            logf = os.path.join(self.c.dir, "zk%d.log" % i)
            log_start = os.path.getsize(logf)
            self.c.throttle(True)
            self.event("slow fsync: server %d (%s) writes throttled to 8 IOPS for %.1fs"
                       % (i, self.c.mode(i), hold))
            stop.wait(hold)
            self.c.throttle(False)
            with open(logf, "rb") as f:
                f.seek(log_start)
                took = [int(m.group(1)) for line in f.read().decode(errors="replace")
                        .splitlines() if "fsync-ing the write ahead log took long" in line
                        for m in [re.search(r"took_ms=(\d+)", line)] if m]
            self.report.setdefault("slowfsync", []).append(
                {"slow_syncs": len(took), "max_ms": max(took) if took else None})
            self.event("slow fsync healed: server %d logged %d syncs over 50 ms (max %s ms)"
                       % (i, len(took), max(took) if took else "-"))
        elif kind == "diskfull":
            self.disk_full(hold + 4.0, stop)
        self.counts[kind] += 1

    def fill(self):
        self.filler = os.path.join(self.c.mnt, "filler")
        chunk = b"\0" * (1 << 20)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    break
            while True:  # the last partial megabyte
                try:
                    if os.write(fd, b"\0" * 4096) == 0:
                        break
                except OSError:
                    break
            os.fsync(fd)
        finally:
            os.close(fd)
        st = os.statvfs(self.c.mnt)
        return st.f_bavail * st.f_frsize

    def watch(self, i, secs, stop, obs):
        """Polls server i for `secs`: the modes it reports; stops early if it exits."""
        deadline = now() + secs
        while now() < deadline and not stop.is_set():
            if not self.c.alive(i):
                return self.c.procs[i].returncode
            m = self.c.mode(i)
            if not obs["modes_seen"] or obs["modes_seen"][-1] != m:
                obs["modes_seen"].append(m)
            time.sleep(0.25)
        return None

    def disk_full(self, hold, stop):
        i = self.c.disk_node
        logf = os.path.join(self.c.dir, "zk%d.log" % i)
        log_start = os.path.getsize(logf) if os.path.exists(logf) else 0
        mode_before = self.c.mode(i)
        free = self.fill()
        t_full = now()
        self.event("disk full: server %d's log file system filled (%d bytes left), %s, for %.1fs"
                   % (i, free, mode_before, hold))
        obs = {"mode_before": mode_before, "modes_seen": [], "exited": None,
               "exited_after_s": None, "restarted_while_full": None,
               "left_ensemble": False, "rejoined": None}
        rc = self.watch(i, hold, stop, obs)
        if rc is not None:
            # A regression: a member whose log disk is full must stay up. Started again so
            # the run goes on; the report counts it as a failure.
            obs["exited"] = rc
            obs["exited_after_s"] = round(now() - t_full, 1)
            # A supervisor would start it again at once, the disk still full.
            self.c.start(i)
            t_restart = now()
            rc2 = self.watch(i, 4.0, stop, obs)
            obs["restarted_while_full"] = (
                "exited again (status %s) after %.1fs" % (rc2, now() - t_restart)
                if rc2 is not None else "kept running for 4s")
        os.unlink(self.filler)
        self.filler = None
        t_space = now()
        restarted = False
        if not self.c.alive(i):
            self.c.start(i)
            restarted = True
        ok, ms = self.c.wait_serving(30)
        obs["recovered_s"] = round(now() - t_space, 1) if ok else None
        obs["restarted_after_space"] = restarted
        with open(logf, "rb") as f:
            f.seek(log_start)
            lines = f.read().decode(errors="replace").splitlines()
        # The log may not have needed a block while full (few writes reached it): then the
        # server never left. When it left, it must have come back by itself.
        obs["left_ensemble"] = any(
            "log disk full; leaving the ensemble until space returns" in ln for ln in lines)
        if obs["left_ensemble"]:
            obs["rejoined"] = ok and any(
                "log disk has room again; looking for a leader" in ln for ln in lines)
        obs["log_lines"] = [ln[:400] for ln in lines if any(w in ln.lower() for w in (
            "space", "error", "fail", "panic"))][:8]
        self.report.setdefault("diskfull", []).append(obs)
        self.event("disk full healed: space back; server %d %s; %s" % (
            i, "exited (status %s)%s" % (obs["exited"], ", restarted" if restarted else "")
            if obs["exited"] is not None else "stayed up%s" % (
                ", left the ensemble and rejoined" if obs["rejoined"]
                else ", left the ensemble, NOT rejoined" if obs["left_ensemble"]
                else " (its log needed no new block)"),
            "all serving again after %.1fs" % obs["recovered_s"] if ok
            else "NOT all serving after 30s: %s" % ms))

    def heal_all(self):
        for i in list(self.c.paused):
            self.c.resume(i)
        for i in list(self.c.cut):
            self.c.heal(i)
        self.c.unsplit()
        if self.filler and os.path.exists(self.filler):
            os.unlink(self.filler)
        if self.env.cgroup and self.c.cg_dir:
            self.c.throttle(False)
        for i in range(1, self.c.n + 1):
            if not self.c.alive(i):
                self.c.start(i)

    def loop(self, stop, until):
        order = []
        while now() < until and not stop.is_set():
            if not order:
                order = self.kinds[:]
                self.rng.shuffle(order)
            if not order:
                stop.wait(until - now())
                break
            kind = order.pop(0)
            self.run_one(kind, stop)
            ok, ms = self.c.wait_serving(30)
            if not ok:
                self.event("after %s: not all serving within 30 s: %s" % (kind, ms))
                self.report.setdefault("unhealed", []).append((kind, ms))
            stop.wait(self.rng.uniform(1.0, 3.0))


def janitor(c, stop, counts):
    """What an operator's zkCleanup.sh cron does, every few seconds: the small log file
    system would otherwise fill up with old segments by itself."""
    while not stop.wait(5.0):
        for i in range(1, c.n + 1):
            data = os.path.join(c.dir, "data", "zk%d" % i)
            try:
                r = run([c.args.bin, "purge", "-n", "3", c.logdir[i], data], timeout=30,
                        check=False)
                counts["purge_ok" if r.returncode == 0 else "purge_failed"] += 1
            except Exception:  # noqa: BLE001
                counts["purge_failed"] += 1


# ------------------------------------------------------------------ the run

def final_state(c, only=None):
    """(registers, queue children) read after sync, through server `only` or any."""
    zk = KazooClient(hosts=c.hosts(only), timeout=SESSION_TIMEOUT_S)
    zk.start(timeout=15)
    try:
        regs = {}
        for key in zk.get_children("/chaos/reg"):
            zk.sync("/chaos/reg/" + key)
            data, stat = zk.get("/chaos/reg/" + key)
            regs[key] = (data.decode(), stat.version)
        zk.sync("/chaos/q")
        names = zk.get_children("/chaos/q")
        q = {}
        # Pipelined, a thousand requests in flight at a time.
        for k in range(0, len(names), 1000):
            batch = [(name, zk.get_async("/chaos/q/" + name)) for name in names[k:k + 1000]]
            for name, res in batch:
                q[name] = res.get(timeout=60)[0].decode()
        return regs, q
    finally:
        zk.stop()
        zk.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ci", action="store_true", help="the bounded run (about 2 minutes)")
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    ap.add_argument("--bin", default=os.environ.get("CORRAL_BIN",
                                                    os.path.join(REPO, "target/release/corral")))
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    # kazoo logs every reconnect; the history records what matters.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    if args.duration_s is None:
        args.duration_s = 75.0 if args.ci else 600.0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    print("chaos: seed %d, %d servers, %.0f s of faults (replay the schedule with --seed %d)"
          % (seed, args.nodes, args.duration_s, seed), flush=True)
    if not os.access(args.bin, os.X_OK):
        print("FAIL - corral binary: %r is not executable (build it, or set CORRAL_BIN)"
              % args.bin)
        print("0 passed, 1 failed")
        return 1
    args.bin = os.path.abspath(args.bin)

    env = Env()
    scratch = tempfile.mkdtemp(prefix="corral-chaos.")
    c = Cluster(env, args, scratch)
    results = []

    def result(ok, name, *detail):
        results.append(ok)
        print(("ok   - " if ok else "FAIL - ") + name, flush=True)
        for d in detail:
            for line in str(d).splitlines():
                print("       " + line)

    def on_signal(signum, _frame):
        if signum == signal.SIGALRM:
            result(False, "the run ends within its bound (%d s)" % bound)
        else:
            result(False, "the run ends by itself (stopped by signal %d)" % signum)
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    # The whole run is bounded: the faults, then at most a few minutes of healing and checks.
    # (The final reads and the check grow with the history: about 100 s for 900 s of faults.)
    bound = int(args.duration_s * 1.5) + 300
    signal.alarm(bound)
    report = {}
    hist = History()
    stop = threading.Event()
    workers = []
    try:
        c.setup()
        for kind, why in sorted(env.skips.items()):
            print("skip: fault %s: %s" % (kind, why), flush=True)
        if env.netns:
            setns(c.prefix + "-c")
        for i in range(1, c.n + 1):
            c.start(i)
        ok, ms = c.wait_serving(40)
        if not ok:
            result(False, "the cluster serves", "modes: %s" % ms)
            return 1
        log("cluster up: %s (%s)" % (ms, "network namespaces" if env.netns else "loopback"))
        zk = KazooClient(hosts=c.hosts(), timeout=SESSION_TIMEOUT_S)
        zk.start(timeout=15)
        keys = ["r%d" % k for k in range(3)]
        for key in keys:
            zk.create("/chaos/reg/" + key, INIT.encode(), makepath=True)
        zk.create("/chaos/q", makepath=True)
        zk.stop()
        zk.close()

        for k in range(5):
            workers.append(RegisterWorker("reg-%d" % k, c, hist, stop,
                                          random.Random(rng.random()), keys=keys))
        for k in range(2):
            workers.append(QueueWorker("queue-%d" % k, c, hist, stop, random.Random(rng.random())))
        for k in range(3):
            workers.append(LockWorker("lock-%d" % k, c, hist, stop, random.Random(rng.random())))
        for w in workers:
            w.start()
        purges = {"purge_ok": 0, "purge_failed": 0}
        jan_stop = threading.Event()
        jan = threading.Thread(target=janitor, args=(c, jan_stop, purges), daemon=True)
        jan.start()
        nem = Nemesis(c, env, random.Random(rng.random()),
                      (2.0, 4.0) if args.ci else (2.0, 8.0), report)
        t_start = now()
        nem.loop(stop, t_start + args.duration_s)
        log("faults over: healing")
        nem.heal_all()
        ok, ms = c.wait_serving(40)
        result(ok, "every server serves again after the last fault", "modes: %s" % ms)
        # Let the workers run a little on the healed cluster, then stop them.
        time.sleep(2.0)
        stop.set()
        jan_stop.set()
        for w in workers:
            w.join(timeout=OP_TIMEOUT_S + 10)
        jan.join(timeout=40)
        stuck = [w.name for w in workers if w.is_alive()]
        result(not stuck, "every client worker stopped", "still running: %s" % stuck)

        # Final reads, recorded as operations.
        t0 = now()
        regs, q = final_state(c)
        t1 = now()
        for key, (value, version) in regs.items():
            hist.add({"proc": "final", "kind": "register", "key": key, "f": "read", "arg": {},
                      "invoke": t0, "complete": t1, "type": "ok",
                      "out": {"value": value, "version": version}})
        hist.add({"proc": "final", "kind": "queue", "key": "q", "f": "final", "arg": {},
                  "invoke": t0, "complete": t1, "type": "ok", "out": {"children": q}})
        differ = []
        for i in range(1, c.n + 1):
            r_i, q_i = final_state(c, only=i)
            if (r_i, q_i) != (regs, q):
                differ.append("server %d: registers %s, %d queue items" % (i, r_i, len(q_i)))
        result(not differ, "every server alone holds the same registers and %d queue items"
               % len(q), *differ)

        hist_path = os.path.join(scratch, "history.jsonl")
        with open(hist_path, "w") as f:
            for op in hist.ops:
                f.write(json.dumps(op) + "\n")
        t_check = now()
        anomalies, counts = checker.check(hist.ops, INIT)
        check_s = now() - t_check

        c.stop_all()
        for i in range(1, c.n + 1):
            r = run([args.bin, "logdump", "--verify", os.path.join(c.logdir[i], "version-2")],
                    timeout=60, check=False)
            tail = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
            result(r.returncode == 0, "server %d's log verifies (corral logdump --verify)" % i,
                   *([] if r.returncode == 0 else tail))

        # The report.
        by = {}
        for op in hist.ops:
            k = (op["kind"], op["f"], op["type"])
            by[k] = by.get(k, 0) + 1
        print("\n---- chaos report (seed %d, %.0f s of faults, %s)" % (
            seed, args.duration_s, "network namespaces" if env.netns else "loopback"))
        print("operations: %d" % len(hist.ops))
        for (kind, f, typ), n in sorted(by.items()):
            print("  %-8s %-6s %-4s %6d" % (kind, f, typ, n))
        print("sessions opened: %d; purge runs: %d ok, %d failed" % (
            sum(w.sessions for w in workers), purges["purge_ok"], purges["purge_failed"]))
        print("faults injected: %s" % ", ".join("%s %d" % kv for kv in nem.counts.items()))
        for kind, why in sorted(env.skips.items()):
            print("  skipped %s: %s" % (kind, why))
        for obs in report.get("diskfull", []):
            print("disk full on server %d: %s" % (c.disk_node, json.dumps(obs)))
        print("history: %s (checked in %.1f s)" % (hist_path, check_s))
        print("anomalies: %d" % len(anomalies))
        for a in anomalies[:20]:
            print("  ANOMALY " + json.dumps(a)[:2000])
        print()
        n_reg = sum(counts["register"].values())
        result(not any(a["kind"] == "register" for a in anomalies),
               "registers linearizable (%d operations on %d registers)" % (
                   n_reg, len(counts["register"])))
        result(not any(a["kind"] == "queue" for a in anomalies),
               "queue: no acknowledged create lost, no duplicate, sequence in real-time order "
               "(%d creates)" % sum(counts["queue"].values()))
        result(not any(a["kind"] == "lock" for a in anomalies),
               "lock: never two holders at once (%d holds)" % sum(counts["lock"].values()))
        for kind in nem.KINDS:
            if kind not in env.skips:
                result(nem.counts[kind] > 0, "fault %s injected %d times%s" % (
                    kind, nem.counts[kind], "" if kind != "partition" else
                    " (%d isolating a server from everyone, %d splitting the servers only)"
                    % (nem.counts["partition-isolate"], nem.counts["partition-split"])))
        fills = report.get("diskfull", [])
        if fills:
            print("disk full: %d fills; stayed up %d, left the ensemble %d, rejoined %d" % (
                len(fills), sum(1 for o in fills if o["exited"] is None),
                sum(1 for o in fills if o["left_ensemble"]),
                sum(1 for o in fills if o["rejoined"])))
        for obs in fills:
            if obs["exited"] is None:
                what = "stayed up" + (
                    ", left the ensemble, rejoined" if obs["rejoined"]
                    else ", left the ensemble, did not rejoin" if obs["left_ensemble"]
                    else " (its log needed no new block)")
            else:
                what = "EXITED with status %s after %.1fs; started again while full: %s" % (
                    obs["exited"], obs["exited_after_s"], obs["restarted_while_full"])
            result(obs["exited"] is None and obs["recovered_s"] is not None
                   and (not obs["left_ensemble"] or bool(obs["rejoined"])),
                   "disk full on server %d (%s): %s; all serving %ss after space returned%s"
                   % (c.disk_node, obs["mode_before"], what, obs["recovered_s"],
                      " (started again)" if obs["restarted_after_space"] else ""))
        for obs in report.get("slowfsync", []):
            result(obs["slow_syncs"] > 0,
                   "slow fsync: the throttled server logged %d syncs over 50 ms (max %s ms)"
                   % (obs["slow_syncs"], obs["max_ms"]))
        for kind, ms in report.get("unhealed", []):
            result(False, "cluster serving again after %s" % kind, "modes: %s" % ms)
        if anomalies and not args.keep:
            args.keep = True
        return 0 if all(results) else 1
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        result(False, "the chaos run completes", repr(e))
        args.keep = True
        return 1
    finally:
        stop.set()
        c.cleanup()
        passed = sum(1 for r in results if r)
        if args.keep or not all(results):
            print("scratch kept: %s" % scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        print("     (chaos run: %.0f s)" % (now() - T0))
        print("%d passed, %d failed" % (passed, len(results) - passed), flush=True)


if __name__ == "__main__":
    sys.exit(main())
