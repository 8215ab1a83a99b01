#!/usr/bin/env python3
"""kazoo's Lock and Election recipes while the ensemble's leader is killed.

Run by `tests/compat/run.sh FLAVOR --cluster --kill-leader` (suite `kazoo_locks`)
against $ZK_HOSTS, with $ZK_KILL_DIR. Two contentions run at once, on kazoo
clients spread over the servers: a Lock (3 clients x 2 threads, each holder
increments a versioned counter) and an Election (3 participants, each term
~150 ms). Once both have made progress the program creates
$ZK_KILL_DIR/kazoo_locks.contending; run.sh then kill -9s the leader server
and, when the others have a new leader, creates $ZK_KILL_DIR/recovered. The
contentions go on until each has made progress again, then stop.

Two lock holders or two leaders at once (counted in this process), or a
counter write that finds another holder's write, is a failure. The last line
is "kazoo_locks: N passed, M failed".
"""

import logging
import os
import random
import sys
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (BadVersionError, ConnectionLoss, KazooException,
                              OperationTimeoutError, SessionExpiredError)
from kazoo.retry import RetryFailedError

# The clients log every dropped connection; the run counts them instead.
logging.getLogger("kazoo").setLevel(logging.ERROR)

NAME = "kazoo_locks"
PROGRESS = 4
CONTENDING_WAIT_S = 60
RECOVERED_WAIT_S = float(os.environ.get("KILL_RECOVERED_WAIT_S", "90"))
AFTER_WAIT_S = 60
TERM_S = 0.15
IN_DOUBT = (ConnectionLoss, OperationTimeoutError, SessionExpiredError, RetryFailedError)

stop = threading.Event()
# Reentrant: violated() is called with it held.
mu = threading.RLock()
violations = []
stats = {"retried": 0, "suspended": 0, "lost": 0}


def violated(what):
    with mu:
        if not violations:
            print("%s: VIOLATION %s" % (NAME, what), flush=True)
        violations.append(what)


def bump(key):
    with mu:
        stats[key] += 1


def make_client(hosts):
    c = KazooClient(hosts=hosts, timeout=10.0,
                    connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1.0},
                    command_retry={"max_tries": 30, "delay": 0.1, "max_delay": 1.0, "deadline": 20})

    def listener(state):
        if state == KazooState.SUSPENDED:
            bump("suspended")
        elif state == KazooState.LOST:
            bump("lost")

    c.add_listener(listener)
    c.start(timeout=15)
    return c


class Counter:
    """A counter written only under the lock as "N token", with the version read.

    A write that meets a newer version is its own earlier attempt (the retry of a
    write whose answer was lost: the token is its own) or another holder's write.
    """

    def __init__(self, client, path):
        self.path = path
        self.writes = 0
        self.unknown = 0
        self.mu = threading.Lock()
        client.ensure_path(path)
        client.set(path, b"0 init")

    def increment(self, c, token):
        try:
            data, stat = c.retry(c.get, self.path)
        except IN_DOUBT:
            bump("retried")
            return
        cur = data.decode()
        mine = "%d %s" % (int(cur.split(" ")[0]) + 1, token)
        try:
            c.retry(c.set, self.path, mine.encode(), version=stat.version)
        except BadVersionError:
            now = c.retry(c.get, self.path)[0].decode()
            if now != mine:
                violated("lost update on %s: read %r, then found %r instead of %r"
                         % (self.path, cur, now, mine))
                return
            bump("retried")
        except IN_DOUBT:
            with self.mu:
                self.unknown += 1
            bump("retried")
            return
        with self.mu:
            self.writes += 1

    def verify(self, c):
        c.sync(self.path)
        n = int(c.get(self.path)[0].decode().split(" ")[0])
        if not self.writes <= n <= self.writes + self.unknown:
            return "counter %d after %d confirmed writes (%d in doubt)" % (n, self.writes, self.unknown)
        return None


def lock_nodes_left(c, path):
    deadline = time.monotonic() + 20
    while True:
        c.sync(path)
        left = c.get_children(path) if c.exists(path) else []
        if not left or time.monotonic() > deadline:
            break
        changed = threading.Event()
        c.get_children(path, watch=lambda _e: changed.set())
        changed.wait(1.0)
    return "lock nodes left: %s" % left if left else None


class LockContention:
    name = "Lock"

    def __init__(self, hosts, admin, base):
        self.path = base + "/lock"
        self.counter = Counter(admin, base + "/lock-counter")
        self.clients = [make_client(hosts) for _ in range(3)]
        self.holders = 0
        self.acquired = 0
        self.threads = []

    def progress(self):
        with mu:
            return self.acquired

    def start(self):
        for i, c in enumerate(self.clients):
            for t in range(2):
                who = "lock-%d-%d" % (i, t)
                th = threading.Thread(target=self.work, args=(c, who), name=who, daemon=True)
                self.threads.append(th)
                th.start()

    def work(self, c, who):
        lock = c.Lock(self.path, who)
        rnd = 0
        while not stop.is_set():
            try:
                got = lock.acquire(timeout=2)
            except (KazooException, RetryFailedError):
                bump("retried")
                continue
            if not got:
                continue
            try:
                with mu:
                    self.holders += 1
                    if self.holders != 1:
                        violated("%s acquired the lock beside another holder" % who)
                try:
                    self.counter.increment(c, "%s#%d" % (who, rnd))
                    rnd += 1
                finally:
                    with mu:
                        self.holders -= 1
                        self.acquired += 1
            finally:
                try:
                    lock.release()
                except (KazooException, RetryFailedError):
                    bump("retried")

    def stopping(self):
        pass

    def verify(self, admin):
        return self.counter.verify(admin) or lock_nodes_left(admin, self.path)


class ElectionContention:
    name = "Election"

    def __init__(self, hosts, base):
        self.path = base + "/election"
        self.clients = [make_client(hosts) for _ in range(3)]
        self.leaders = 0
        self.terms = 0
        self.threads = []
        self.elections = []

    def progress(self):
        with mu:
            return self.terms

    def start(self):
        for i, c in enumerate(self.clients):
            e = c.Election(self.path, "p%d" % i)
            self.elections.append(e)
            th = threading.Thread(target=self.work, args=(e, "p%d" % i), name="election-%d" % i,
                                  daemon=True)
            self.threads.append(th)
            th.start()

    def lead(self, who):
        with mu:
            self.leaders += 1
            self.terms += 1
            if self.leaders != 1:
                violated("election %s leads beside another" % who)
        try:
            stop.wait(TERM_S)
        finally:
            with mu:
                self.leaders -= 1

    def work(self, e, who):
        while not stop.is_set():
            try:
                e.run(self.lead, who)
            except (KazooException, RetryFailedError):
                bump("retried")

    def stopping(self):
        for e in self.elections:
            e.cancel()

    def verify(self, admin):
        with mu:
            if self.leaders != 0:
                return "%d leaders after the stop" % self.leaders
        return lock_nodes_left(admin, self.path)


def wait_progress(all_, start, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.progress() >= s + PROGRESS for c, s in zip(all_, start)):
            return True
        with mu:
            if violations:
                return False
        time.sleep(0.05)
    return False


def wait_file(path, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def describe(all_, p):
    return ", ".join("%s %d" % (c.name, n) for c, n in zip(all_, p))


def main():
    hosts = os.environ.get("ZK_HOSTS", "127.0.0.1:2181")
    kill_dir = os.environ.get("ZK_KILL_DIR")
    if not kill_dir:
        print("%s: ZK_KILL_DIR is not set\n%s: 0 passed, 1 failed" % (NAME, NAME))
        return 1
    base = "/kazoo-kill-%d-%06x" % (os.getpid(), random.getrandbits(24))
    print("%s: kill-leader run on %s, base path %s" % (NAME, hosts, base), flush=True)
    results = []
    clients = []
    try:
        admin = make_client(hosts)
        clients.append(admin)
        lock = LockContention(hosts, admin, base)
        election = ElectionContention(hosts, base)
        all_ = [lock, election]
        for c in all_:
            clients.extend(c.clients)
            c.start()
        contending = wait_progress(all_, [0, 0], CONTENDING_WAIT_S)
        at_kill = [c.progress() for c in all_]
        print("%s: contending, progress %s" % (NAME, describe(all_, at_kill)), flush=True)
        recovered = after = False
        if contending:
            open(os.path.join(kill_dir, NAME + ".contending"), "w").close()
            recovered = wait_file(os.path.join(kill_dir, "recovered"), RECOVERED_WAIT_S)
            at_rec = [c.progress() for c in all_]
            print("%s: recovered=%s, progress %s" % (NAME, recovered, describe(all_, at_rec)),
                  flush=True)
            if recovered:
                after = wait_progress(all_, at_rec, AFTER_WAIT_S)
        stop.set()
        for c in all_:
            c.stopping()
        deadline = time.monotonic() + 40
        for c in all_:
            for th in c.threads:
                th.join(max(0.01, deadline - time.monotonic()))
        at_end = [c.progress() for c in all_]
        print("%s: end, progress %s; retried %d ops; %d suspended, %d lost"
              % (NAME, describe(all_, at_end), stats["retried"], stats["suspended"], stats["lost"]),
              flush=True)
        results.append(("both contentions under way before the kill",
                        None if contending else "progress %s" % describe(all_, at_kill)))
        results.append(("run.sh reported the new leader",
                        None if recovered else
                        "no recovered file within %ds" % RECOVERED_WAIT_S if contending else
                        "not waited for: no kill without contention"))
        results.append(("every contention went on after the recovery",
                        None if after else "progress %s" % describe(all_, at_end)))
        alive = [th.name for c in all_ for th in c.threads if th.is_alive()]
        if alive:
            results.append(("workers stopped", "still running: %s" % alive))
        with mu:
            results.append(("never two lock holders or two leaders",
                            violations[0] if violations else None))
        for c in all_:
            results.append(("%s: end state" % c.name, c.verify(admin)))
        try:
            admin.delete(base, recursive=True)
        except KazooException as e:
            print("%s: could not remove %s: %s" % (NAME, base, e))
    except Exception as e:  # noqa: BLE001 - any setup error is one failure
        results.append(("setup", repr(e)))
    finally:
        stop.set()
        for c in clients:
            try:
                c.stop()
                c.close()
            except Exception:  # noqa: BLE001
                pass
    passed = failed = 0
    for name, why in results:
        if why is None:
            passed += 1
            print("PASS %s" % name)
        else:
            failed += 1
            print("FAIL %s: %s" % (name, why))
    print("%s: %d passed, %d failed" % (NAME, passed, failed), flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
