"""pytest plugin: run kazoo's own test suite against the server at $ZK_HOSTS.

kazoo's harness (kazoo/testing/harness.py) builds a ZookeeperCluster from
kazoo/testing/common.py, which writes zoo.cfg files and starts Java servers.
This plugin takes that module's place before kazoo.testing is imported, so

- the harness's cluster is the existing server(s) at $ZK_HOSTS: nothing is
  started, and a test that tries to stop, restart or reset a server fails
  with a clear message instead of touching a process this suite does not own;
- each test still runs under the harness's own unique chroot
  (/kazootests<uuid>), and the chroot is deleted after the test (pytest's
  teardown); the run ends with the count of chroots left on the server;
- the tests named in the deselection list (--kazoo-deselect FILE) are
  deselected, each with the reason given in the file.

Load it with `-p kazoo_existing_server` and this directory on PYTHONPATH.
"""

import logging
import os
import sys
import time
import types

import pytest

log = logging.getLogger(__name__)

CHROOT_PREFIX = "/kazootests"
CLEANUP_DEADLINE_S = 10.0
CLEANUP_PASSES = 3
# (servers, chroot) made by setup_zookeeper during the current test.
PENDING_CHROOTS = []
# Paths the per-test cleanup could not delete.
LEFT_OVER = []


class ExistingServerError(RuntimeError):
    pass


class ExistingServer:
    """One host:port of $ZK_HOSTS, shaped like kazoo's ManagedZooKeeper."""

    def __init__(self, host, port):
        self.host = host
        self.client_port = port

    @property
    def address(self):
        return "%s:%s" % (self.host, self.client_port)

    @property
    def secure_address(self):
        raise ExistingServerError(
            "kazoo_suite: the server at %s has no TLS port" % self.address
        )

    @property
    def secure_client_port(self):
        return self.secure_address

    @property
    def running(self):
        return True

    def _not_ours(self, what):
        raise ExistingServerError(
            "kazoo_suite: the server at %s is not managed by this suite and "
            "cannot be %s; deselect this test" % (self.address, what)
        )

    def run(self):
        self._not_ours("started")

    def stop(self):
        self._not_ours("stopped")

    def reset(self):
        self._not_ours("reset")

    def destroy(self):
        self._not_ours("destroyed")

    def get_logs(self, num_lines=100):
        return []


class ExistingCluster:
    """$ZK_HOSTS, shaped like kazoo's ZookeeperCluster."""

    def __init__(self, hosts):
        self._servers = []
        for part in hosts.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ExistingServerError(
                    "kazoo_suite: ZK_HOSTS entry %r is not host:port" % part
                )
            self._servers.append(ExistingServer(host, int(port)))

    def __getitem__(self, k):
        return self._servers[k]

    def __iter__(self):
        return iter(self._servers)

    def __len__(self):
        return len(self._servers)

    def start(self):
        # The harness calls this only when a server is not running; ours
        # always are.
        raise ExistingServerError("kazoo_suite: the servers cannot be started")

    def stop(self):
        raise ExistingServerError("kazoo_suite: the servers cannot be stopped")

    def reset(self):
        raise ExistingServerError("kazoo_suite: the servers cannot be reset")

    def terminate(self):
        # KazooTestCase.tearDownClass terminates the cluster after every
        # class; the existing server outlives the run.
        pass

    def get_logs(self):
        return []

    def get_ssl_client_configuration(self):
        raise ExistingServerError("kazoo_suite: the server has no TLS port")


def _zk_hosts():
    hosts = os.environ.get("ZK_HOSTS", "")
    if not hosts:
        raise pytest.UsageError("kazoo_suite: ZK_HOSTS is not set")
    return hosts


def _install_common_stand_in(cluster):
    """Make `kazoo.testing.common` this module's cluster, not kazoo's."""
    if "kazoo.testing" in sys.modules or "kazoo.testing.common" in sys.modules:
        raise pytest.UsageError(
            "kazoo_suite: kazoo.testing was imported before the plugin; "
            "load it with -p kazoo_existing_server"
        )
    stand_in = types.ModuleType("kazoo.testing.common")
    stand_in.__doc__ = "kazoo_suite stand-in: the existing server at $ZK_HOSTS"
    stand_in.ZookeeperCluster = ExistingCluster
    sys.modules["kazoo.testing.common"] = stand_in

    import kazoo.testing.harness as harness

    harness.get_global_cluster = lambda: cluster
    harness.CLUSTER = cluster
    _wrap_harness(harness.KazooTestHarness)


def _delete_tree(client, path, left_over):
    """Delete path and what is below it; protected nodes go to left_over.

    Nodes a test created with an ACL this client cannot read (a digest ACL,
    say) can still be deleted when they have no children: deleting needs
    only the parent's DELETE permission.
    """
    from kazoo.exceptions import NoAuthError, NoNodeError, NotEmptyError

    try:
        children = client.get_children(path)
    except NoNodeError:
        return
    except NoAuthError:
        children = []
    for child in children:
        _delete_tree(client, path.rstrip("/") + "/" + child, left_over)
    try:
        client.delete(path)
    except NoNodeError:
        pass
    except (NoAuthError, NotEmptyError):
        left_over.append(path)


def _delete_chroot(servers, chroot):
    """Delete one test's chroot; returns the paths that could not be deleted.

    A few passes (a session the test left open may still be creating nodes),
    all within CLEANUP_DEADLINE_S.
    """
    from kazoo.client import KazooClient

    client = KazooClient(servers, timeout=10)
    try:
        client.start(timeout=10)
        deadline = time.monotonic() + CLEANUP_DEADLINE_S
        for _ in range(CLEANUP_PASSES):
            left_over = []
            _delete_tree(client, chroot, left_over)
            if not left_over or time.monotonic() >= deadline:
                break
        return left_over
    finally:
        client.stop()
        client.close()


def _wrap_harness(cls):
    """Record each chroot setup_zookeeper makes; deleted after the test.

    Deleting in pytest's teardown rather than in teardown_zookeeper also
    covers test classes whose tearDown never calls teardown_zookeeper
    (test_lease.py's).
    """
    original_setup = cls.setup_zookeeper

    def setup_zookeeper(self, **client_options):
        try:
            original_setup(self, **client_options)
        finally:
            hosts = getattr(self, "hosts", "") or ""
            slash = hosts.find("/")
            if slash >= 0 and hosts[slash:].startswith(CHROOT_PREFIX):
                PENDING_CHROOTS.append((self.servers, hosts[slash:]))

    cls.setup_zookeeper = setup_zookeeper


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    try:
        return (yield)
    finally:
        while PENDING_CHROOTS:
            servers, chroot = PENDING_CHROOTS.pop()
            # What is left: nodes under an ACL that forbids us both to list
            # their children and to delete them; reported at the end.
            LEFT_OVER.extend(_delete_chroot(servers, chroot))


def _read_deselections(path):
    """{node id: reason} from the list file.

    Lines: `# comment`, `reason: TEXT` (applies to the ids below it), and
    node ids relative to kazoo/tests (`test_x.py::Class::test_y`, or a
    prefix ending at `::` boundaries, e.g. a whole class).
    """
    entries = {}
    reason = None
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("reason:"):
                reason = line[len("reason:"):].strip()
                continue
            if not reason:
                raise pytest.UsageError(
                    "%s:%d: node id before any 'reason:' line" % (path, number)
                )
            if line in entries:
                raise pytest.UsageError("%s:%d: %s listed twice" % (path, number, line))
            entries[line] = reason
    return entries


def pytest_addoption(parser):
    parser.addoption(
        "--kazoo-deselect",
        metavar="FILE",
        help="kazoo_suite: file of kazoo test ids to deselect, with reasons",
    )


def pytest_configure(config):
    cluster = ExistingCluster(_zk_hosts())
    _install_common_stand_in(cluster)
    path = config.getoption("--kazoo-deselect")
    config._kazoo_suite_deselect = _read_deselections(path) if path else {}


def _short_id(nodeid):
    marker = "kazoo/tests/"
    at = nodeid.find(marker)
    return nodeid[at + len(marker):] if at >= 0 else nodeid


def _matching_entry(short, entries):
    if short in entries:
        return short
    for entry in entries:
        if short.startswith(entry + "::") or short.startswith(entry + "["):
            return entry
    return None


def pytest_collection_modifyitems(session, config, items):
    entries = config._kazoo_suite_deselect
    if not entries:
        return
    used = set()
    kept, dropped = [], []
    for item in items:
        entry = _matching_entry(_short_id(item.nodeid), entries)
        if entry is None:
            kept.append(item)
        else:
            used.add(entry)
            dropped.append(item)
    unused = sorted(set(entries) - used)
    if unused:
        # A stale name would silently select a test the list means to skip,
        # or hide a renamed one: the list must match what kazoo ships.
        raise pytest.UsageError(
            "kazoo_suite: deselection entries that match no test: %s"
            % ", ".join(unused)
        )
    items[:] = kept
    config.hook.pytest_deselected(items=dropped)


def _chroots_on_server():
    """The harness's chroots still on the server (None if it cannot tell)."""
    from kazoo.client import KazooClient

    client = KazooClient(_zk_hosts(), timeout=10)
    try:
        client.start(timeout=10)
        prefix = CHROOT_PREFIX.lstrip("/")
        return sorted(c for c in client.get_children("/") if c.startswith(prefix))
    except Exception as e:  # an unreachable server fails the tests themselves
        log.warning("kazoo_suite: cannot list /: %r", e)
        return None
    finally:
        client.stop()
        client.close()


def _is_xdist_worker(config):
    return hasattr(config, "workerinput")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    # pytest-xdist's hook, on the controller: a worker ended.
    LEFT_OVER.extend(getattr(node, "workeroutput", {}).get("kazoo_suite_left_over", []))


def pytest_sessionfinish(session, exitstatus):
    if _is_xdist_worker(session.config):
        # Under pytest-xdist the other workers' tests are still running:
        # only the controller, after all of them, counts what is left. The
        # worker hands its undeletable paths over (pytest_testnodedown).
        session.config.workeroutput["kazoo_suite_left_over"] = list(LEFT_OVER)
        return
    chroots = _chroots_on_server()
    session.config._kazoo_suite_chroots_left = chroots
    if chroots and session.exitstatus == pytest.ExitCode.OK:
        # Every chroot must go: a leftover is a failure of the run.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _is_xdist_worker(config):
        return
    chroots = getattr(config, "_kazoo_suite_chroots_left", None)
    if chroots is None:
        terminalreporter.write_line("kazoo_suite: could not list the chroots left on the server")
    else:
        terminalreporter.write_line(
            "kazoo_suite: %d test chroots left on the server%s"
            % (len(chroots), ": " + ", ".join(chroots) if chroots else "")
        )
        if LEFT_OVER:
            terminalreporter.write_line(
                "kazoo_suite: nodes the cleanup could not delete: " + ", ".join(LEFT_OVER)
            )


def pytest_unconfigure(config):
    # Some of kazoo's tests leave clients running (test_lease.py never stops
    # its first client); when the interpreter exits their sockets close and
    # each logs "Connection dropped" to stderr, after the results. Quiet.
    logging.disable(logging.CRITICAL)
