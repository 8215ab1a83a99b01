"""ACL enforcement as ZooKeeper 3.8 does it, op by op.

Run by `tests/compat/run.sh FLAVOR --suite acl`, which also starts two
standalone servers of the flavor for it:
  ZK_SUPER_HOSTS    DigestAuthenticationProvider.superDigest for
                    super:super-secret, reconfigEnabled=true
  ZK_SKIPACL_HOSTS  skipACL=yes, reconfigEnabled=true
Everything else runs against ZK_HOSTS (a standalone server or, with
--cluster, server 1 of the ensemble). Tests needing one of the two servers
are skipped when its variable is not set.

The permission matrix (test_permission_required) runs every client op six
times as a session holding no id but its ip: on a node whose ACL grants that
session nothing, then READ, WRITE, CREATE, DELETE or ADMIN alone (the node's
owner, a digest user, always has ALL). The set of grants under which the op
succeeds must be exactly the table's; every other run must fail with NoAuth
and leave the node and its child unchanged. The table was read off Apache
ZooKeeper 3.8.0 (Debian's 3.8.0-11+deb12u2) by this very test.
"""

import base64
import hashlib
import os
import re
import uuid

import pytest

import zkwire
from zkwire import (
    AUTH_FAILED,
    BAD_ARGUMENTS,
    CONTAINER,
    EPHEMERAL,
    EV_NODE_CREATED,
    EV_NODE_DATA_CHANGED,
    INVALID_ACL,
    NO_AUTH,
    NO_WATCHER,
    OK,
    OP_CHECK,
    OP_CREATE,
    OP_CREATE2,
    OP_ERROR,
    OP_MULTI_READ,
    OP_RECONFIG,
    OP_SET_WATCHES,
    OP_SET_WATCHES2,
    PERM_ADMIN,
    PERM_ALL,
    PERM_CREATE,
    PERM_DELETE,
    PERM_READ,
    PERM_WRITE,
    PERSISTENT_SEQUENTIAL,
    PERSISTENT_WITH_TTL,
    QUOTA_EXCEEDED,
    RUNTIME_INCONSISTENCY,
    UNIMPLEMENTED,
    WATCHER_CHILDREN,
    WATCHER_DATA,
    XID_SET_WATCHES,
    ZkError,
    enc_int,
    enc_long,
    enc_string,
    enc_strings,
)

SUPER_HOSTS = os.environ.get("ZK_SUPER_HOSTS")
SKIPACL_HOSTS = os.environ.get("ZK_SKIPACL_HOSTS")
CLUSTER = os.environ.get("ZK_CLUSTER") == "1"

RECONFIG_DISABLED = -123

R, W, C, D, A = PERM_READ, PERM_WRITE, PERM_CREATE, PERM_DELETE, PERM_ADMIN
# 0: the session holds no permission on the node.
GRANTS = [0, R, W, C, D, A]
NAMES = {0: "none", R: "READ", W: "WRITE", C: "CREATE", D: "DELETE", A: "ADMIN"}


def gname(perms):
    """none, READ, ..., or READ+ADMIN for several."""
    return NAMES.get(perms) or "+".join(NAMES[p] for p in (R, W, C, D, A) if perms & p)
ANY = frozenset(GRANTS)  # no check: the op succeeds whatever the ACL

OWNER = "owner:owner-secret"
SUPER = "super:super-secret"


def digest(user_password):
    """The digest id ZooKeeper derives from `user:password`."""
    user = user_password.split(":", 1)[0]
    sha = hashlib.sha1(user_password.encode("utf-8")).digest()
    return "%s:%s" % (user, base64.b64encode(sha).decode("ascii"))


OWNER_ACL = [(PERM_ALL, "digest", digest(OWNER))]


def acl_granting(perms):
    """The owner has ALL; everyone else `perms` (nothing for 0)."""
    return OWNER_ACL + ([(perms, "world", "anyone")] if perms else [])


def code(fn, *args, **kw):
    """The error code of a zkwire call: OK, or the ZkError's code."""
    try:
        fn(*args, **kw)
        return OK
    except ZkError as e:
        return e.code


def addr(hosts):
    return zkwire.parse_hosts(hosts)[0]


# ====================================================================== fixtures


@pytest.fixture
def session(wire):
    """session(hosts=None, source=None, auths=()): a raw session on server 1
    of ZK_HOSTS (or of `hosts`), connected from `source`, after one digest
    addauth per `user:password` in `auths`."""

    def make(hosts=None, source=None, auths=()):
        c = wire(addr=addr(hosts) if hosts else None, source=source)
        for a in auths:
            assert c.auth("digest", a.encode("utf-8")) == OK
        return c

    return make


class Area:
    """A fresh znode owned by the digest user `owner` (ALL for it, ALL for
    everyone), where a test builds its nodes; removed afterwards."""

    def __init__(self, owner, name):
        self.owner = owner
        self.base = "/acl-%s-%s" % (re.sub(r"[^A-Za-z0-9_-]", "_", name)[:50], uuid.uuid4().hex[:8])
        owner.create(self.base, acl=OWNER_ACL + zkwire.OPEN_ACL)

    def nodes(self, tag, grants=GRANTS, data=b"data"):
        """One node per grant, `base/tag-<grant>` with ACL acl_granting(grant)
        and an open child `child`, made in one multi; {grant: path}."""
        out, ops = {}, []
        for g in grants:
            p = "%s/%s-%s" % (self.base, tag, gname(g))
            out[g] = p
            ops.append(zkwire.op_create(p, data, acl=acl_granting(g)))
            ops.append(zkwire.op_create(p + "/child", b"c", acl=OWNER_ACL + zkwire.OPEN_ACL))
        err, res = self.owner.multi(ops)
        assert err == OK and all(r.err == OK for r in res), res
        return out

    def remove(self):
        def rm(p):
            for ch in self.owner.get_children(p):
                rm(p + "/" + ch)
            self.owner.delete(p)

        try:
            rm(self.base)
        except Exception:
            pass


def make_area(session, request, hosts=None, auths=()):
    owner = session(hosts, auths=(OWNER,) + tuple(auths))
    area = Area(owner, request.node.name)
    request.addfinalizer(area.remove)
    return area


@pytest.fixture
def area(session, request):
    return make_area(session, request)


# ====================================================================== the ops


def set_watches(c, op, body):
    """Sends setWatches (op 101) or setWatches2 (105) with the session's
    current zxid (so nothing is caught up) and `body` after it."""
    _, seen, _, _ = c.ping()
    c.send_request(op, enc_long(seen) + body, xid=XID_SET_WATCHES)
    xid, _, err, _ = c.read_reply()
    assert xid == XID_SET_WATCHES
    return err


def _set_watches(op, body, wtype):
    """Registered by setWatches: checkWatches finds the watch."""

    def run(env, node):
        err = set_watches(env.actor, op, body(node))
        return err if err != OK else code(env.actor.check_watches, node, wtype)

    return run


def _multi(op):
    def run(env, node):
        err, res = env.actor.multi([op(node)])
        assert err == OK
        assert len(res) == 1
        return res[0].err

    return run


def _multi_read(op):
    def run(env, node):
        err, res = env.actor.multi([op(node)], op=OP_MULTI_READ)
        assert err == OK
        assert len(res) == 1
        return res[0].err if res[0].type == OP_ERROR else OK

    return run


def _exists_then(check):
    """A data watch set by exists (which any session may do), then `check`."""

    def run(env, node):
        env.actor.exists(node, watch=True)
        return code(check, env.actor, node)

    return run


def _check_outside_multi(env, node):
    """ZooKeeper 3.8.0 answers a check outside a multi only when it fails: a
    passing one gets no reply at all (Corral answers it with OK; see
    docs/reliability.md). So a ping is sent behind it, and the first reply is
    the ping's, or the check's."""
    c = env.actor
    xid = c.send_request(OP_CHECK, enc_string(node) + enc_int(-1))
    c.send_raw(zkwire.frame(enc_int(zkwire.XID_PING) + enc_int(zkwire.OP_PING)))
    rxid, _, err, _ = c.read_reply()
    if rxid == zkwire.XID_PING:
        return OK
    assert rxid == xid
    assert c.read_reply()[0] == zkwire.XID_PING
    return err


def _who_am_i(env, node):
    env.actor.who_am_i()
    return OK


class Env:
    def __init__(self, actor, owner):
        self.actor, self.owner = actor, owner


# name -> (run(env, node) -> error code, the grants under which it succeeds).
# create* make `node/new`; delete removes `node/child`; the rest act on `node`.
OPS = {
    "create": (lambda e, n: code(e.actor.create, n + "/new", op=OP_CREATE), {C}),
    "create2": (lambda e, n: code(e.actor.create, n + "/new", op=OP_CREATE2), {C}),
    "create ephemeral": (lambda e, n: code(e.actor.create, n + "/new", flags=EPHEMERAL), {C}),
    "create sequential": (
        lambda e, n: code(e.actor.create, n + "/new", flags=PERSISTENT_SEQUENTIAL),
        {C},
    ),
    "createContainer": (lambda e, n: code(e.actor.create, n + "/new", flags=CONTAINER), {C}),
    "createTTL": (
        lambda e, n: code(e.actor.create, n + "/new", flags=PERSISTENT_WITH_TTL, ttl=60000),
        {C},
    ),
    "delete": (lambda e, n: code(e.actor.delete, n + "/child"), {D}),
    "exists": (lambda e, n: code(e.actor.exists, n), ANY),
    "getData": (lambda e, n: code(e.actor.get_data, n), {R}),
    "setData": (lambda e, n: code(e.actor.set_data, n, b"new"), {W}),
    "getACL": (lambda e, n: code(e.actor.get_acl, n), {R, A}),
    "setACL": (lambda e, n: code(e.actor.set_acl, n, OWNER_ACL), {A}),
    "getChildren": (lambda e, n: code(e.actor.get_children, n), {R}),
    "getChildren2": (lambda e, n: code(e.actor.get_children2, n), {R}),
    "getAllChildrenNumber": (lambda e, n: code(e.actor.get_all_children_number, n), {R}),
    "getEphemerals": (lambda e, n: code(e.actor.get_ephemerals, n), ANY),
    "sync": (lambda e, n: code(e.actor.sync, n), ANY),
    "check (outside multi)": (_check_outside_multi, {R}),
    "multi: create": (_multi(lambda n: zkwire.op_create(n + "/new")), {C}),
    "multi: delete": (_multi(lambda n: zkwire.op_delete(n + "/child")), {D}),
    "multi: setData": (_multi(lambda n: zkwire.op_set_data(n, b"new")), {W}),
    "multi: check": (_multi(lambda n: zkwire.op_check(n, 0)), {R}),
    "multiRead: getData": (_multi_read(zkwire.op_get_data), {R}),
    "multiRead: getChildren": (_multi_read(zkwire.op_get_children), {R}),
    "addWatch persistent": (
        lambda e, n: code(e.actor.add_watch, n, zkwire.ADD_WATCH_PERSISTENT),
        ANY,
    ),
    "addWatch persistent recursive": (
        lambda e, n: code(e.actor.add_watch, n, zkwire.ADD_WATCH_PERSISTENT_RECURSIVE),
        ANY,
    ),
    "setWatches (data watch)": (
        _set_watches(OP_SET_WATCHES, lambda n: enc_strings([n]) + enc_strings([]) * 2, WATCHER_DATA),
        ANY,
    ),
    "setWatches (child watch)": (
        _set_watches(OP_SET_WATCHES, lambda n: enc_strings([]) * 2 + enc_strings([n]), WATCHER_CHILDREN),
        ANY,
    ),
    "setWatches2 (persistent watch)": (
        _set_watches(OP_SET_WATCHES2, lambda n: enc_strings([]) * 3 + enc_strings([n]) + enc_strings([]), WATCHER_DATA),
        ANY,
    ),
    "checkWatches": (_exists_then(lambda c, n: c.check_watches(n, WATCHER_DATA)), ANY),
    "removeWatches": (_exists_then(lambda c, n: c.remove_watches(n, WATCHER_DATA)), ANY),
    "whoAmI": (_who_am_i, ANY),
}


def snapshot(owner, node):
    """What a denied op must leave as it was: the node's and its child's
    stats, data and ACL, and the node's children."""
    out = []
    for p in (node, node + "/child"):
        st = owner.exists(p)
        out.append(st and (st, owner.get_data(p)[0], owner.get_acl(p)[0]))
    out.append(sorted(owner.get_children(node)))
    return out


def run_matrix(actor, area, name, grants=GRANTS):
    """{grant: error code} of op `name` run by `actor` on area nodes."""
    run, _ = OPS[name]
    nodes = area.nodes(re.sub(r"[^A-Za-z0-9]+", "_", name), grants)
    env = Env(actor, area.owner)
    observed = {}
    for g in grants:
        before = snapshot(area.owner, nodes[g])
        observed[g] = run(env, nodes[g])
        if observed[g] != OK:
            assert snapshot(area.owner, nodes[g]) == before, "denied %s changed %s" % (name, nodes[g])
    return observed


def names(grants):
    return sorted(NAMES[g] for g in grants)


@pytest.mark.parametrize("name", list(OPS))
def test_permission_required(session, area, name):
    if CLUSTER and name == "check (outside multi)":
        # A ZooKeeper follower handed a lone check closes the connection and
        # refuses new ones for a while; nothing to compare.
        pytest.skip("check outside multi is standalone-only")
    observed = run_matrix(session(), area, name)
    allowed = {g for g, err in observed.items() if err == OK}
    _, expected = OPS[name]
    assert names(allowed) == names(expected), {gname(g): err for g, err in observed.items()}
    denied = {gname(g): err for g, err in observed.items() if err != OK}
    assert all(err == NO_AUTH for err in denied.values()), denied


# ====================================================================== multi and multiRead


def test_multi_is_rolled_back_when_one_op_lacks_permission(session, area):
    nodes = area.nodes("m", [R | W | C | D, R])
    ok, ro = nodes[R | W | C | D], nodes[R]
    c = session()
    err, res = c.multi(
        [
            zkwire.op_create(ok + "/new"),
            zkwire.op_set_data(ok, b"new"),
            zkwire.op_delete(ok + "/child"),
            zkwire.op_set_data(ro, b"new"),  # no WRITE
            zkwire.op_create(ok + "/later"),
        ]
    )
    assert err == OK
    assert [(r.type, r.err) for r in res] == [
        (OP_ERROR, OK),
        (OP_ERROR, OK),
        (OP_ERROR, OK),
        (OP_ERROR, NO_AUTH),
        (OP_ERROR, RUNTIME_INCONSISTENCY),
    ]
    o = area.owner
    assert o.exists(ok + "/new") is None and o.exists(ok + "/later") is None
    assert o.get_data(ok)[0] == b"data" and o.get_data(ro)[0] == b"data"
    assert o.exists(ok + "/child") is not None
    # Each op of the same multi, allowed on its own, goes through together.
    err, res = c.multi([zkwire.op_create(ok + "/new"), zkwire.op_set_data(ok, b"new")])
    assert (err, [r.err for r in res]) == (OK, [OK, OK])


def test_multi_read_reports_no_auth_per_op(session, area):
    nodes = area.nodes("mr", [0, R])
    c = session()
    err, res = c.multi(
        [
            zkwire.op_get_data(nodes[R]),
            zkwire.op_get_data(nodes[0]),
            zkwire.op_get_children(nodes[0]),
            zkwire.op_get_children(nodes[R]),
        ],
        op=OP_MULTI_READ,
    )
    assert err == OK
    assert [(r.type, r.err) for r in res] == [
        (zkwire.OP_GET_DATA, OK),
        (OP_ERROR, NO_AUTH),
        (OP_ERROR, NO_AUTH),
        (zkwire.OP_GET_CHILDREN, OK),
    ]
    assert res[0].value[0] == b"data" and res[3].value == ["child"]


# ====================================================================== watch events
#
# Setting a watch needs no permission (exists, addWatch, setWatches above),
# but an event reaches a watcher only if the watcher holds READ on the node
# the event is about, when it fires (ZooKeeper 3.8 with the fix for
# CVE-2024-23944, as Debian's 3.8.0-11+deb12u2 has it): the watched node for
# data and child events, the created or deleted node for NodeCreated and
# NodeDeleted. Each case below sets its watch while the session can read the
# node, then the owner changes the node's ACL to one grant (setACL fires
# nothing) and makes the change; the event must arrive exactly under READ.


def _trigger_data(owner, n):
    owner.set_data(n, b"changed")
    return (EV_NODE_DATA_CHANGED, n)


def _trigger_delete(owner, n):
    owner.delete(n)
    return (zkwire.EV_NODE_DELETED, n)


def _trigger_child(owner, n):
    owner.create(n + "/kid", acl=zkwire.OPEN_ACL)
    return (zkwire.EV_NODE_CHILDREN_CHANGED, n)


def _sw(op, lists):
    """A setWatches(2) setter: `lists` names which of the watch lists hold n."""

    def run(c, n):
        body = b"".join(enc_strings([n] if k in lists else []) for k in range(5 if op == OP_SET_WATCHES2 else 3))
        assert set_watches(c, op, body) == OK

    return run


SETTERS = {
    "exists": lambda c, n: c.exists(n, watch=True),
    "getData": lambda c, n: c.get_data(n, watch=True),
    "getChildren": lambda c, n: c.get_children(n, watch=True),
    "addWatch persistent": lambda c, n: c.add_watch(n, zkwire.ADD_WATCH_PERSISTENT),
    "addWatch recursive": lambda c, n: c.add_watch(n, zkwire.ADD_WATCH_PERSISTENT_RECURSIVE),
    "setWatches data": _sw(OP_SET_WATCHES, {0}),
    "setWatches child": _sw(OP_SET_WATCHES, {2}),
    "setWatches2 persistent": _sw(OP_SET_WATCHES2, {3}),
    "setWatches2 recursive": _sw(OP_SET_WATCHES2, {4}),
}

WATCH_CASES = [
    ("exists", _trigger_data),
    ("exists", _trigger_delete),
    ("getData", _trigger_data),
    ("getData", _trigger_delete),
    ("getChildren", _trigger_child),
    ("getChildren", _trigger_delete),
    ("addWatch persistent", _trigger_data),
    ("addWatch persistent", _trigger_child),
    ("addWatch persistent", _trigger_delete),
    ("addWatch recursive", _trigger_data),
    ("addWatch recursive", _trigger_delete),
    ("setWatches data", _trigger_data),
    ("setWatches child", _trigger_child),
    ("setWatches2 persistent", _trigger_data),
    ("setWatches2 recursive", _trigger_data),
]


@pytest.mark.parametrize(
    "setter,trigger",
    WATCH_CASES,
    ids=["%s-%s" % (s_, t.__name__[len("_trigger_") :]) for s_, t in WATCH_CASES],
)
def test_events_need_read(session, area, setter, trigger):
    c = session()
    delivered = {}
    for g in GRANTS:
        n = "%s/%s-%s" % (area.base, re.sub(r"[^A-Za-z0-9]+", "_", setter), gname(g))
        area.owner.create(n, b"data", acl=acl_granting(R))
        SETTERS[setter](c, n)
        area.owner.set_acl(n, acl_granting(g))
        want = trigger(area.owner, n)
        events = [(e.type, e.path) for e in c.drain_events()]
        assert events in ([], [want]), events
        delivered[gname(g)] = bool(events)
    assert delivered == {gname(g): g == R for g in GRANTS}


def test_exists_watch_on_a_node_created_unreadable(session, area):
    # NodeCreated is checked against the new node's ACL.
    c = session()
    for g in GRANTS:
        n = "%s/new-%s" % (area.base, gname(g))
        assert c.exists(n, watch=True) is None
        area.owner.create(n, acl=acl_granting(g))
        assert [(e.type, e.path) for e in c.drain_events()] == ([(EV_NODE_CREATED, n)] if g == R else [])


def test_recursive_watch_sees_only_readable_nodes(session, area):
    c = session()
    c.add_watch(area.base, zkwire.ADD_WATCH_PERSISTENT_RECURSIVE)
    b, o = area.base, area.owner
    o.create(b + "/closed", acl=OWNER_ACL)
    o.create(b + "/closed/open", acl=zkwire.OPEN_ACL)
    o.create(b + "/open", acl=zkwire.OPEN_ACL)
    o.create(b + "/open/closed", acl=OWNER_ACL)
    o.set_data(b + "/closed", b"x")
    o.set_data(b + "/closed/open", b"x")
    assert [(e.type, e.path) for e in c.drain_events()] == [
        (EV_NODE_CREATED, b + "/closed/open"),
        (EV_NODE_CREATED, b + "/open"),
        (EV_NODE_DATA_CHANGED, b + "/closed/open"),
    ]


def test_events_follow_the_identities_at_fire_time(session, area):
    n = area.base + "/n"
    area.owner.create(n, acl=OWNER_ACL + [(R, "digest", digest("alice:a-pw"))])
    c = session()
    c.exists(n, watch=True)
    # Authenticated after the watch was set, before the change: delivered.
    assert c.auth("digest", b"alice:a-pw") == OK
    area.owner.set_data(n, b"x")
    assert [(e.type, e.path) for e in c.drain_events()] == [(EV_NODE_DATA_CHANGED, n)]


def test_set_watches_catch_up_is_not_filtered(session, area):
    # The events setWatches sends at once, for what changed since the
    # client's zxid, are not checked against ACLs.
    n = area.nodes("w", [0])[0]
    c = session()
    _, seen, _, _ = c.ping()
    area.owner.set_data(n, b"changed")
    area.owner.create(area.base + "/born", acl=OWNER_ACL)
    body = enc_long(seen) + enc_strings([n]) + enc_strings([area.base + "/born"]) + enc_strings([])
    c.send_request(OP_SET_WATCHES, body, xid=XID_SET_WATCHES)
    assert c.read_reply()[:3:2] == (XID_SET_WATCHES, OK)
    assert [(e.type, e.path) for e in c.events] == [
        (EV_NODE_DATA_CHANGED, n),
        (EV_NODE_CREATED, area.base + "/born"),
    ]


def test_denied_reads_leave_no_watch(session, area):
    n = area.nodes("w", [0])[0]
    c = session()
    assert code(c.get_data, n, watch=True) == NO_AUTH
    assert code(c.get_children, n, watch=True) == NO_AUTH
    assert code(c.get_children2, n, watch=True) == NO_AUTH
    assert code(c.check_watches, n, WATCHER_DATA) == NO_WATCHER
    assert code(c.check_watches, n, WATCHER_CHILDREN) == NO_WATCHER


# ====================================================================== getACL


def test_get_acl_masks_digest_ids_without_admin(session, area):
    nodes = area.nodes("g", [R, A, R | A])
    c = session()
    masked = [(PERM_ALL, "digest", "owner:x")]
    assert c.get_acl(nodes[R])[0] == masked + [(R, "world", "anyone")]
    assert c.get_acl(nodes[A])[0] == acl_granting(A)
    assert c.get_acl(nodes[R | A])[0] == acl_granting(R | A)
    assert area.owner.get_acl(nodes[R])[0] == acl_granting(R)


# ====================================================================== digest and auth


def test_digest_acl(session, area):
    n = area.base + "/d"
    area.owner.create(n, b"v", acl=OWNER_ACL + [(R, "digest", digest("alice:a-pw"))])
    assert code(session(auths=["alice:a-pw"]).get_data, n) == OK
    assert code(session(auths=["bob:b-pw", "alice:a-pw"]).get_data, n) == OK
    assert code(session(auths=["alice:wrong"]).get_data, n) == NO_AUTH
    assert code(session(auths=["bob:b-pw"]).get_data, n) == NO_AUTH
    assert code(session().get_data, n) == NO_AUTH
    # The digest grants READ only.
    assert code(session(auths=["alice:a-pw"]).set_data, n, b"x") == NO_AUTH


def test_auth_scheme_takes_every_digest_of_the_session(session, area):
    c = session(auths=["alice:a-pw", "bob:b-pw"])
    n = area.base + "/a"
    c.create(n, b"v", acl=[(R | W, "auth", "")])
    # Without ADMIN getACL masks the digests; the order is not promised.
    assert sorted(c.get_acl(n)[0]) == [(R | W, "digest", "alice:x"), (R | W, "digest", "bob:x")]
    assert code(session(auths=["bob:b-pw"]).set_data, n, b"x") == OK
    assert code(session().get_data, n) == NO_AUTH
    # setACL with `auth` expands the same way (ADMIN was not granted: the
    # owner of the area sets it).
    assert code(c.set_acl, n, [(PERM_ALL, "auth", "")]) == NO_AUTH


def test_auth_scheme_ignores_ip_ids(session, area):
    # The session's ip id is not an authenticated user: `auth` alone is invalid.
    assert code(session().create, area.base + "/a", acl=[(PERM_ALL, "auth", "")]) == INVALID_ACL
    assert area.owner.exists(area.base + "/a") is None


@pytest.mark.parametrize(
    "acl",
    [
        [(R, "digest", "nocolon")],
        [(R, "world", "someone")],
        [(R, "ip", "127.0.0.1/33")],
        [(R, "ip", "127.0.0.256")],
        [(R, "ip", "not-an-address")],
        [(R, "ip", "127.0.0/8")],
        [(R, "ip", "127.0.0.1/")],
        [(R, "ip", "::1")],
        [(R, "nosuchscheme", "x")],
    ],
    ids=[
        "digest-nocolon",
        "world-someone",
        "ip-mask-33",
        "ip-octet-256",
        "ip-name",
        "ip-three-octets",
        "ip-empty-mask",
        "ip-v6",
        "unknown-scheme",
    ],
)
def test_invalid_acl_ids(session, area, acl):
    assert code(session().create, area.base + "/a", acl=acl) == INVALID_ACL


def test_add_auth_unknown_scheme_fails_and_closes(session):
    c = session()
    assert c.auth("nosuchscheme", b"x") == AUTH_FAILED
    assert c.wait_closed(timeout=10)


# ====================================================================== ip and CIDR

SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.1.2.3"]

IP_CASES = [
    ("127.0.0.2", {"127.0.0.2"}),
    ("127.0.0.2/32", {"127.0.0.2"}),
    ("127.0.0.2/31", {"127.0.0.2", "127.0.0.3"}),
    ("127.0.0.3/31", {"127.0.0.2", "127.0.0.3"}),
    ("127.0.0.0/30", {"127.0.0.1", "127.0.0.2", "127.0.0.3"}),
    ("127.0.0.0/24", {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}),
    ("127.0.0.0/8", set(SOURCES)),
    ("0.0.0.0/0", set(SOURCES)),
    ("127.0.0.9/0", set(SOURCES)),
    ("10.0.0.0/8", set()),
]


def test_ip_acls_with_cidr(session, area):
    nodes = {}
    for i, (ident, _) in enumerate(IP_CASES):
        nodes[ident] = "%s/ip%d" % (area.base, i)
        area.owner.create(nodes[ident], b"v", acl=OWNER_ACL + [(R, "ip", ident)])
    seen = {ident: set() for ident, _ in IP_CASES}
    for src in SOURCES:
        c = session(source=src)
        assert c.who_am_i() == [("ip", src)]
        for ident, _ in IP_CASES:
            err = code(c.get_data, nodes[ident])
            assert err in (OK, NO_AUTH)
            if err == OK:
                seen[ident].add(src)
    assert seen == {ident: want for ident, want in IP_CASES}


def test_ip_acl_grants_only_its_perms(session, area):
    n = area.base + "/n"
    area.owner.create(n, b"v", acl=OWNER_ACL + [(R | C, "ip", "127.0.0.2")])
    c = session(source="127.0.0.2")
    assert code(c.get_data, n) == OK
    assert code(c.create, n + "/x") == OK
    assert code(c.set_data, n, b"x") == NO_AUTH
    assert code(c.delete, n + "/x") == NO_AUTH


def test_add_auth_ip_adds_only_the_peer_address(session, area):
    # addauth ip succeeds whatever its bytes, and the id it adds is the
    # connection's own address, which the session already had.
    n = area.base + "/n"
    area.owner.create(n, b"v", acl=OWNER_ACL + [(R, "ip", "10.1.2.3")])
    c = session(source="127.0.0.2")
    assert c.auth("ip", b"10.1.2.3") == OK
    assert c.who_am_i() == [("ip", "127.0.0.2")]
    assert code(c.get_data, n) == NO_AUTH


# ====================================================================== whoAmI


def test_who_am_i_lists_every_identity(session):
    # One entry per distinct id (a repeated addauth adds nothing; the same
    # user with another password is another id), in no promised order
    # (ZooKeeper keeps them in a hash set).
    c = session()
    assert c.who_am_i() == [("ip", "127.0.0.1")]
    for a in ("alice:a-pw", "bob:b-pw", "alice:a-pw", "alice:other"):
        assert c.auth("digest", a.encode()) == OK
    assert sorted(c.who_am_i()) == [("digest", "alice"), ("digest", "alice"), ("digest", "bob"), ("ip", "127.0.0.1")]
    # A user name without a password.
    assert c.auth("digest", b"carol") == OK
    assert ("digest", "carol") in c.who_am_i()
    assert len(c.who_am_i()) == 5


# ====================================================================== special nodes


def test_special_nodes_acls(session):
    c = session()
    open_acl = [(PERM_ALL, "world", "anyone")]
    assert c.get_acl("/zookeeper")[0] == open_acl
    assert c.get_acl("/zookeeper/quota")[0] == open_acl
    assert c.get_acl("/zookeeper/config")[0] == [(R, "world", "anyone")]


def test_zookeeper_config_is_read_only(session):
    c = session()
    assert code(c.get_data, "/zookeeper/config") == OK
    assert code(c.set_data, "/zookeeper/config", b"x") == NO_AUTH
    assert code(c.create, "/zookeeper/config/x") == NO_AUTH
    assert code(c.set_acl, "/zookeeper/config", zkwire.OPEN_ACL) == NO_AUTH
    assert code(c.delete, "/zookeeper/config") == BAD_ARGUMENTS
    assert code(c.delete, "/zookeeper/quota") == BAD_ARGUMENTS


def test_quota_nodes_follow_their_acls(session, area):
    # Setting a quota is creating nodes below /zookeeper/quota, which is open:
    # any session may, and the hard limit then holds for everyone.
    c = session()
    target = area.base + "/q"
    area.owner.create(target, acl=zkwire.OPEN_ACL)
    qpath = "/zookeeper/quota" + target
    try:
        c.create("/zookeeper/quota" + area.base)
        c.create(qpath)
        c.create(qpath + "/zookeeper_limits", b"count=-1,bytes=-1,countHardLimit=2,byteHardLimit=-1")
        c.create(qpath + "/zookeeper_stats", b"count=1,bytes=0")
        c.create(target + "/a")
        # In an ensemble the leader checks a quota against the tree it has applied, which
        # can lag the answers a follower already gave for the writes above (ZooKeeper
        # 3.8's leader does): a later create then meets the limit.
        beyond = [target + "/b"] + ([target + "/c", target + "/d"] if CLUSTER else [])
        codes = []
        for path in beyond:
            codes.append(code(c.create, path))
            if codes[-1] == QUOTA_EXCEEDED:
                break
        assert codes[-1] == QUOTA_EXCEEDED, codes
        # A quota node under an ACL of its own keeps others from changing it.
        area.owner.set_acl(qpath + "/zookeeper_limits", OWNER_ACL + [(R, "world", "anyone")])
        assert code(c.set_data, qpath + "/zookeeper_limits", b"count=-1,bytes=-1") == NO_AUTH
        assert code(c.delete, qpath + "/zookeeper_limits") == OK  # DELETE is the parent's
    finally:
        for p in (qpath + "/zookeeper_limits", qpath + "/zookeeper_stats", qpath, "/zookeeper/quota" + area.base):
            code(area.owner.delete, p)


# ====================================================================== reconfig


def reconfig(c):
    body = enc_string(None) + enc_string("99") + enc_string(None) + enc_long(-1)
    (_, _, err), _ = c.call(OP_RECONFIG, body, check=False)
    return err


def test_reconfig_is_refused_before_any_acl_check(session):
    # reconfigEnabled is off on this server (standalone or ensemble): every
    # caller gets ReconfigDisabled, and the session goes on.
    c = session()
    assert reconfig(c) == RECONFIG_DISABLED
    assert c.who_am_i() == [("ip", "127.0.0.1")]


# ====================================================================== super user

needs_super = pytest.mark.skipif(not SUPER_HOSTS, reason="ZK_SUPER_HOSTS not set (run.sh --suite acl)")
needs_skipacl = pytest.mark.skipif(not SKIPACL_HOSTS, reason="ZK_SKIPACL_HOSTS not set (run.sh --suite acl)")


@pytest.fixture
def super_area(session, request):
    return make_area(session, request, hosts=SUPER_HOSTS)


@needs_super
@pytest.mark.parametrize("name", list(OPS))
def test_super_user_may_do_everything(session, super_area, name):
    observed = run_matrix(session(SUPER_HOSTS, auths=[SUPER]), super_area, name, grants=[0])
    assert observed == {0: OK}


@needs_super
def test_super_user_identity(session, super_area):
    c = session(SUPER_HOSTS, auths=[SUPER])
    assert sorted(c.who_am_i()) == [("digest", "super"), ("ip", "127.0.0.1"), ("super", "")]
    n = super_area.nodes("s", [0])[0]
    # getACL unmasked, setACL on a node that grants nothing to anyone else.
    assert c.get_acl(n)[0] == OWNER_ACL
    c.set_acl(n, OWNER_ACL + [(R, "world", "anyone")])
    assert session(SUPER_HOSTS).get_data(n)[0] == b"data"


@needs_super
def test_wrong_super_password_is_an_ordinary_digest(session, super_area):
    n = super_area.nodes("s", [0])[0]
    c = session(SUPER_HOSTS, auths=["super:wrong"])
    assert sorted(c.who_am_i()) == [("digest", "super"), ("ip", "127.0.0.1")]
    assert code(c.get_data, n) == NO_AUTH
    assert code(session(SUPER_HOSTS).get_data, n) == NO_AUTH


@needs_super
def test_super_user_and_the_config_node(session):
    c = session(SUPER_HOSTS, auths=[SUPER])
    assert code(c.create, "/zookeeper/config/x") == OK
    assert code(c.delete, "/zookeeper/config/x") == OK
    assert code(c.set_data, "/zookeeper/config", c.get_data("/zookeeper/config")[0]) == OK
    assert code(c.delete, "/zookeeper/config") == BAD_ARGUMENTS
    # reconfigEnabled=true, but a standalone server refuses reconfig before
    # looking at ACLs: the same answer for the super user and everyone else.
    assert reconfig(c) == UNIMPLEMENTED
    assert reconfig(session(SUPER_HOSTS)) == UNIMPLEMENTED


@needs_super
def test_super_user_guards_quota_nodes(session, super_area):
    # With /zookeeper/quota closed to everyone but the super user, only the
    # super user can set quotas.
    s = session(SUPER_HOSTS, auths=[SUPER])
    plain = session(SUPER_HOSTS)
    before = s.get_acl("/zookeeper/quota")[0]
    s.set_acl("/zookeeper/quota", [(R, "world", "anyone")])
    try:
        qpath = "/zookeeper/quota" + super_area.base
        assert code(plain.create, qpath) == NO_AUTH
        assert code(s.create, qpath) == OK
        code(s.delete, qpath)
    finally:
        s.set_acl("/zookeeper/quota", before)


# ====================================================================== skipACL


@pytest.fixture
def skip_area(session, request):
    return make_area(session, request, hosts=SKIPACL_HOSTS)


@needs_skipacl
@pytest.mark.parametrize("name", list(OPS))
def test_skip_acl_lets_everyone_do_everything(session, skip_area, name):
    observed = run_matrix(session(SKIPACL_HOSTS), skip_area, name, grants=[0])
    assert observed == {0: OK}


@needs_skipacl
def test_skip_acl_still_validates_acls(session, skip_area):
    c = session(SKIPACL_HOSTS)
    n = skip_area.nodes("k", [0])[0]
    # Unmasked: skipACL passes the ADMIN check of getACL too.
    assert c.get_acl(n)[0] == OWNER_ACL
    assert code(c.create, skip_area.base + "/a", acl=[(PERM_ALL, "auth", "")]) == INVALID_ACL
    # The config node is a node like any other here (data left as it was).
    assert code(c.set_data, "/zookeeper/config", c.get_data("/zookeeper/config")[0]) == OK
    assert code(c.delete, "/zookeeper/config") == BAD_ARGUMENTS
    assert reconfig(c) == UNIMPLEMENTED


@needs_super
def test_super_user_gets_every_event(session, super_area):
    n = super_area.nodes("e", [0])[0]
    c = session(SUPER_HOSTS, auths=[SUPER])
    c.exists(n, watch=True)
    super_area.owner.set_data(n, b"x")
    assert [(e.type, e.path) for e in c.drain_events()] == [(EV_NODE_DATA_CHANGED, n)]


@needs_skipacl
def test_skip_acl_delivers_every_event(session, skip_area):
    n = skip_area.nodes("e", [0])[0]
    c = session(SKIPACL_HOSTS)
    c.exists(n, watch=True)
    skip_area.owner.set_data(n, b"x")
    assert [(e.type, e.path) for e in c.drain_events()] == [(EV_NODE_DATA_CHANGED, n)]
