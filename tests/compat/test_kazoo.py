"""ZooKeeper 3.8 client semantics, checked through kazoo and the raw protocol.

Each test states one behaviour of Apache ZooKeeper 3.8 as observed on a running
server (zk-surface.md has the catalogue). kazoo 2.11 has no API for containers,
TTL nodes, persistent watches, removeWatches, getEphemerals,
getAllChildrenNumber, whoAmI or multiRead, and normalises paths before sending
them; those checks use `zkwire`, the suite's own small protocol client.

Run against a server started by run.sh (it sets extendedTypesEnabled,
enforceQuota and a 1 s container check interval).
"""

import base64
import hashlib
import time

import pytest
from kazoo.exceptions import (
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    ConnectionLoss,
    InvalidACLError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    QuotaExceededError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, KazooState, KeeperState, ZnodeStat
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_digest_acl,
)

import zkwire
from zkwire import (
    ADD_WATCH_PERSISTENT,
    ADD_WATCH_PERSISTENT_RECURSIVE,
    BAD_ARGUMENTS,
    CONTAINER,
    EPHEMERAL,
    EV_NODE_CHILDREN_CHANGED,
    EV_NODE_CREATED,
    EV_NODE_DATA_CHANGED,
    EV_NODE_DELETED,
    NO_NODE,
    NODE_EXISTS,
    NO_WATCHER,
    OP_CHECK,
    OP_CREATE,
    OP_CREATE2,
    OP_CREATE_CONTAINER,
    OP_DELETE,
    OP_ERROR,
    OP_GET_CHILDREN,
    OP_GET_DATA,
    OP_MULTI_READ,
    OP_SET_DATA,
    PERSISTENT_SEQUENTIAL,
    PERSISTENT_SEQUENTIAL_WITH_TTL,
    PERSISTENT_WITH_TTL,
    RUNTIME_INCONSISTENCY,
    STATE_SYNC_CONNECTED,
    WATCHER_ANY,
    WATCHER_CHILDREN,
    WATCHER_DATA,
    ZkError,
)

KIB = 1024
MIB = 1024 * 1024


def digest_id(user, password):
    raw = hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()
    return "%s:%s" % (user, base64.b64encode(raw).decode())


def zk_error(fn, *args, **kw):
    """The error code a zkwire call fails with (0 if it succeeds)."""
    try:
        fn(*args, **kw)
    except ZkError as e:
        return e.code
    return 0


# ====================================================================== create modes


def test_create_persistent_returns_path_and_stores_data(zk, base):
    assert zk.create(base + "/a", b"hello") == base + "/a"
    data, stat = zk.get(base + "/a")
    assert data == b"hello"
    assert stat.ephemeralOwner == 0
    assert stat.dataLength == 5


def test_create_with_stat_matches_exists(zk, base):
    path, stat = zk.create(base + "/a", b"xy", include_data=True)
    assert path == base + "/a"
    assert stat == zk.exists(base + "/a")


def test_ephemeral_owner_is_the_session(zk, base):
    zk.create(base + "/e", ephemeral=True)
    stat = zk.exists(base + "/e")
    assert stat.ephemeralOwner == zk.client_id[0]
    assert stat.ephemeralOwner != 0


def test_sequential_suffix_is_ten_digits_from_zero(zk, base):
    assert zk.create(base + "/s-", sequence=True) == base + "/s-0000000000"
    assert zk.create(base + "/s-", sequence=True) == base + "/s-0000000001"


def test_sequential_suffix_counts_child_creations(zk, base):
    # zk-surface 19: create a, b; next sequential gets 2; delete a and the
    # next gets 3 while the visible cversion reads 4.
    zk.create(base + "/a")
    zk.create(base + "/b")
    assert zk.create(base + "/s-", sequence=True) == base + "/s-0000000002"
    zk.delete(base + "/a")
    assert zk.exists(base).cversion == 4
    assert zk.create(base + "/s-", sequence=True) == base + "/s-0000000003"


def test_sequential_suffix_after_only_child_deleted(zk, base):
    zk.create(base + "/a")
    zk.delete(base + "/a")
    stat = zk.exists(base)
    assert (stat.cversion, stat.numChildren) == (2, 0)
    assert zk.create(base + "/s", sequence=True) == base + "/s0000000001"


def test_sequential_counter_is_per_parent(zk, base):
    zk.create(base + "/p1")
    zk.create(base + "/p2")
    zk.create(base + "/p1/x")
    assert zk.create(base + "/p2/n", sequence=True) == base + "/p2/n0000000000"
    assert zk.create(base + "/p1/n", sequence=True) == base + "/p1/n0000000001"


def test_ephemeral_sequential_node(zk, base):
    path = zk.create(base + "/es-", ephemeral=True, sequence=True)
    assert path == base + "/es-0000000000"
    assert zk.exists(path).ephemeralOwner == zk.client_id[0]


def test_sequential_name_under_trailing_slash(wire, base):
    # The path check is done with the suffix appended, so "/p/" is fine.
    c = wire()
    path, _ = c.create(base + "/", flags=PERSISTENT_SEQUENTIAL)
    assert path == base + "/0000000000"


def test_ephemeral_cannot_have_children(zk, base):
    zk.create(base + "/e", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/e/c")
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/e/c", ephemeral=True, sequence=True)


@pytest.mark.parametrize("flags", [7, -1, 99])
def test_unknown_create_flags_are_bad_arguments(wire, base, flags):
    assert zk_error(wire().create, base + "/f", flags=flags) == BAD_ARGUMENTS


def test_null_data_reads_back_as_null(wire, base):
    c = wire()
    _, stat = c.create(base + "/n", data=None)
    assert stat.dataLength == 0
    data, stat = c.get_data(base + "/n")
    assert data is None
    assert stat.dataLength == 0


# ---------------------------------------------------------------------- containers


def test_container_owner_is_masked_to_zero(wire, base):
    c = wire()
    path, stat = c.create(base + "/c", flags=CONTAINER)
    assert path == base + "/c"
    assert stat.ephemeralOwner == 0
    assert c.exists(base + "/c").ephemeralOwner == 0


def test_container_create_in_multi_answers_create2(wire, base):
    c = wire()
    err, res = c.multi([zkwire.op_create(base + "/c", flags=CONTAINER, opcode=OP_CREATE_CONTAINER)])
    assert err == 0
    assert [r.type for r in res] == [OP_CREATE2]
    path, stat = res[0].value
    assert path == base + "/c"
    assert stat.ephemeralOwner == 0


@pytest.mark.slow
def test_container_reaped_after_last_child_deleted(wire, base):
    c = wire()
    w = wire()
    c.create(base + "/used", flags=CONTAINER)
    # Inside multi the op type is derived from the flags: a container.
    c.multi([zkwire.op_create(base + "/multi", flags=CONTAINER, opcode=OP_CREATE)])
    # Outside multi, create (1) or create2 (15) with the container flag makes
    # a plain persistent node.
    c.create(base + "/plain1", flags=CONTAINER, op=OP_CREATE)
    c.create(base + "/plain15", flags=CONTAINER, op=OP_CREATE2)
    c.create(base + "/never", flags=CONTAINER)
    c.create(base + "/busy", flags=CONTAINER)
    for p in ("/used", "/multi", "/plain1", "/plain15", "/busy"):
        c.create(base + p + "/k")
    assert w.exists(base + "/used", watch=True) is not None
    assert w.exists(base + "/multi", watch=True) is not None
    for p in ("/used", "/multi", "/plain1", "/plain15"):
        c.delete(base + p + "/k")
    got = {w.wait_event(30), w.wait_event(30)}
    assert {(e.type, e.path) for e in got} == {
        (EV_NODE_DELETED, base + "/used"),
        (EV_NODE_DELETED, base + "/multi"),
    }
    # One more reaper pass: wait for a fresh container to go, then check that
    # the never-used one, the busy one and the plain nodes are all still there.
    c.create(base + "/probe", flags=CONTAINER)
    c.create(base + "/probe/k")
    w.exists(base + "/probe", watch=True)
    c.delete(base + "/probe/k")
    ev = w.wait_event(30)
    assert (ev.type, ev.path) == (EV_NODE_DELETED, base + "/probe")
    assert sorted(c.get_children(base)) == ["busy", "never", "plain1", "plain15"]


# ---------------------------------------------------------------------- TTL nodes


def test_ttl_node_owner_is_masked_to_zero(wire, base):
    c = wire()
    path, stat = c.create(base + "/t", flags=PERSISTENT_WITH_TTL, ttl=60000)
    assert path == base + "/t"
    assert stat.ephemeralOwner == 0
    assert c.exists(base + "/t").ephemeralOwner == 0


def test_ttl_sequential_node(wire, base):
    c = wire()
    c.create(base + "/a")
    path, stat = c.create(base + "/t-", flags=PERSISTENT_SEQUENTIAL_WITH_TTL, ttl=60000)
    assert path == base + "/t-0000000001"
    assert stat.ephemeralOwner == 0


def test_ttl_maximum_is_2_pow_40_minus_1(wire, base):
    c = wire()
    c.create(base + "/t", flags=PERSISTENT_WITH_TTL, ttl=(1 << 40) - 1)
    assert zk_error(c.create, base + "/u", flags=PERSISTENT_WITH_TTL, ttl=1 << 40) == BAD_ARGUMENTS


@pytest.mark.parametrize(
    "flags,ttl",
    [
        (PERSISTENT_WITH_TTL, 0),
        (PERSISTENT_WITH_TTL, -1),
        (0, 1000),  # a ttl for a mode without one
        (EPHEMERAL, 1000),
        (CONTAINER, 1000),
    ],
)
def test_ttl_bad_arguments(wire, base, flags, ttl):
    assert zk_error(wire().create, base + "/t", flags=flags, ttl=ttl) == BAD_ARGUMENTS


def test_ttl_mode_with_plain_create_opcode_is_bad_arguments(wire, base):
    assert zk_error(wire().create, base + "/t", flags=PERSISTENT_WITH_TTL, op=OP_CREATE) == BAD_ARGUMENTS


@pytest.mark.slow
def test_ttl_node_expires_only_without_children(wire, base):
    c = wire()
    w = wire()
    c.create(base + "/t", flags=PERSISTENT_WITH_TTL, ttl=500)
    c.create(base + "/k", flags=PERSISTENT_WITH_TTL, ttl=500)
    c.create(base + "/k/child")
    assert w.exists(base + "/t", watch=True) is not None
    ev = w.wait_event(30)
    assert (ev.type, ev.path) == (EV_NODE_DELETED, base + "/t")
    assert c.exists(base + "/k") is not None


# ====================================================================== Stat


def test_stat_after_create(zk, base):
    _, st = zk.create(base + "/a", b"abc", include_data=True)
    assert st.czxid == st.mzxid == st.pzxid
    assert st.czxid > 0
    assert st.ctime == st.mtime
    assert st.ctime > 0
    assert (st.version, st.cversion, st.aversion) == (0, 0, 0)
    assert (st.dataLength, st.numChildren, st.ephemeralOwner) == (3, 0, 0)


def test_ctime_is_wall_clock_millis(zk, base):
    before = int(time.time() * 1000)
    _, st = zk.create(base + "/a", include_data=True)
    after = int(time.time() * 1000)
    assert before - 5000 <= st.ctime <= after + 5000


def test_create_updates_parent_stat(zk, base):
    before = zk.exists(base)
    _, child = zk.create(base + "/a", include_data=True)
    after = zk.exists(base)
    assert after.cversion == before.cversion + 1
    assert after.numChildren == before.numChildren + 1
    assert after.pzxid == child.czxid
    assert (after.mzxid, after.version, after.mtime) == (before.mzxid, before.version, before.mtime)


def test_delete_updates_parent_stat(zk, base):
    _, child = zk.create(base + "/a", include_data=True)
    zk.delete(base + "/a")
    after = zk.exists(base)
    assert after.cversion == 2
    assert after.numChildren == 0
    assert after.pzxid > child.czxid
    # The delete's zxid is the parent's pzxid: the next write gets a larger one.
    _, nxt = zk.create(base + "/b", include_data=True)
    assert after.pzxid < nxt.czxid


def test_set_data_stat(zk, base):
    _, created = zk.create(base + "/a", b"x", include_data=True)
    st = zk.set(base + "/a", b"hello")
    assert st.version == 1
    assert st.mzxid > st.czxid
    assert st.czxid == created.czxid
    assert st.pzxid == created.pzxid
    assert st.mtime >= st.ctime
    assert st.dataLength == 5
    assert st == zk.exists(base + "/a")
    assert zk.set(base + "/a", b"").version == 2


def test_set_acl_only_bumps_aversion(zk, base):
    _, created = zk.create(base + "/a", b"x", include_data=True)
    st = zk.set_acls(base + "/a", READ_ACL_UNSAFE + [ACL(Permissions.ALL, Id("ip", "127.0.0.1"))])
    assert st.aversion == 1
    assert (st.version, st.mzxid, st.mtime, st.pzxid) == (0, created.mzxid, created.mtime, created.pzxid)
    assert st == zk.exists(base + "/a")


def test_child_data_change_leaves_parent_untouched(zk, base):
    zk.create(base + "/a")
    before = zk.exists(base)
    zk.set(base + "/a", b"new")
    assert zk.exists(base) == before


def test_zxids_increase_with_each_write(zk, base):
    zxids = []
    for i in range(5):
        _, st = zk.create("%s/n%d" % (base, i), include_data=True)
        zxids.append(st.czxid)
    assert zxids == sorted(set(zxids))


def test_get_children2_stat(wire, base):
    c = wire()
    c.create(base + "/a")
    c.create(base + "/b")
    children, st = c.get_children2(base)
    assert sorted(children) == ["a", "b"]
    assert st == c.exists(base)
    assert st.numChildren == 2


def test_special_nodes_initial_stat(zk):
    st = zk.exists("/zookeeper")
    assert (st.czxid, st.mzxid, st.pzxid, st.ctime, st.mtime) == (0, 0, 0, 0, 0)
    assert (st.version, st.aversion, st.ephemeralOwner, st.dataLength) == (0, 0, 0, 0)
    assert st.numChildren == 2
    # Java reports cversion as 2 x creations - children; nothing was ever
    # created under /zookeeper by a txn, so it reads -2.
    assert st.cversion == -2
    assert sorted(zk.get_children("/zookeeper")) == ["config", "quota"]
    cfg = zk.exists("/zookeeper/config")
    assert (cfg.czxid, cfg.mzxid, cfg.version, cfg.cversion, cfg.numChildren) == (0, 0, 0, 0, 0)
    # The config node's ACL was set once at startup without a txn: aversion -1.
    assert cfg.aversion == -1
    root = zk.exists("/")
    assert (root.czxid, root.mzxid, root.ctime, root.version) == (0, 0, 0, 0)


# ====================================================================== errors


@pytest.mark.parametrize(
    "call",
    ["get", "set", "delete", "get_children", "get_acls", "set_acls"],
)
def test_missing_node_is_no_node(zk, base, call):
    path = base + "/missing"
    args = {
        "get": (path,),
        "set": (path, b"x"),
        "delete": (path,),
        "get_children": (path,),
        "get_acls": (path,),
        "set_acls": (path, OPEN_ACL_UNSAFE),
    }[call]
    with pytest.raises(NoNodeError):
        getattr(zk, call)(*args)


def test_exists_on_missing_node_is_none(zk, base):
    assert zk.exists(base + "/missing") is None


def test_create_without_parent_is_no_node(zk, base):
    with pytest.raises(NoNodeError):
        zk.create(base + "/no/child")


def test_create_existing_is_node_exists(zk, base):
    zk.create(base + "/a")
    with pytest.raises(NodeExistsError):
        zk.create(base + "/a")
    with pytest.raises(NodeExistsError):
        zk.create(base + "/a", ephemeral=True)


def test_create_root_is_node_exists(wire):
    assert zk_error(wire().create, "/") == NODE_EXISTS


def test_delete_with_children_is_not_empty(zk, base):
    zk.create(base + "/a")
    zk.create(base + "/a/b")
    with pytest.raises(NotEmptyError):
        zk.delete(base + "/a")
    assert zk.exists(base + "/a/b") is not None


def test_versions_are_checked(zk, base):
    zk.create(base + "/a", b"x")
    with pytest.raises(BadVersionError):
        zk.set(base + "/a", b"y", version=1)
    assert zk.set(base + "/a", b"y", version=0).version == 1
    assert zk.set(base + "/a", b"z", version=-1).version == 2
    with pytest.raises(BadVersionError):
        zk.delete(base + "/a", version=1)
    with pytest.raises(BadVersionError):
        zk.set_acls(base + "/a", OPEN_ACL_UNSAFE, version=1)
    assert zk.set_acls(base + "/a", OPEN_ACL_UNSAFE, version=0).aversion == 1
    zk.delete(base + "/a", version=2)
    assert zk.exists(base + "/a") is None


def test_no_node_is_checked_before_version(zk, base):
    with pytest.raises(NoNodeError):
        zk.set(base + "/missing", b"x", version=7)


# Paths are checked after the parent lookup (zk-surface 19). "X" is replaced
# by the test's base node, which exists.
CREATE_PATH_CASES = [
    ("X//y", NO_NODE),
    ("X/./y", NO_NODE),
    ("X/../y", NO_NODE),
    ("X/y/", NO_NODE),  # parent X/y is missing
    ("X/missing/..", NO_NODE),
    ("//x", BAD_ARGUMENTS),  # parent "/" exists
    ("X/", BAD_ARGUMENTS),
    ("X/.", BAD_ARGUMENTS),
    ("X/..", BAD_ARGUMENTS),
    ("X/a\x00b", BAD_ARGUMENTS),
    ("X/a\x01b", BAD_ARGUMENTS),
    ("X/a\u007fb", BAD_ARGUMENTS),
    ("X/a\ufff0b", BAD_ARGUMENTS),
    ("X/a\ud800b", BAD_ARGUMENTS),
    ("relative", BAD_ARGUMENTS),
    ("", BAD_ARGUMENTS),
]


def _enc_path(path):
    # Lone surrogates cannot be UTF-8 encoded by Python; Java encodes them as
    # 3-byte sequences, so do the same.
    return path.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("path,code", CREATE_PATH_CASES, ids=[repr(p) for p, _ in CREATE_PATH_CASES])
def test_create_path_validation(wire, base, path, code):
    c = wire()
    p = _enc_path(path.replace("X", base))
    assert zk_error(c.create, p) == code


DELETE_PATH_CASES = [
    ("X//y", NO_NODE),
    ("X/", NO_NODE),
    ("X/..", NO_NODE),
    ("relative", BAD_ARGUMENTS),
    ("X/a\x00b", BAD_ARGUMENTS),
]


@pytest.mark.parametrize("path,code", DELETE_PATH_CASES, ids=[repr(p) for p, _ in DELETE_PATH_CASES])
def test_delete_path_validation(wire, base, path, code):
    assert zk_error(wire().delete, path.replace("X", base)) == code


@pytest.mark.parametrize("path", ["X/", "X//y", "X/..", "relative"])
def test_set_data_validates_path_first(wire, base, path):
    assert zk_error(wire().set_data, path.replace("X", base), b"x") == BAD_ARGUMENTS


@pytest.mark.parametrize("path", ["X/", "X//y", "X/./y"])
def test_reads_of_malformed_paths_are_no_node(wire, base, path):
    c = wire()
    p = path.replace("X", base)
    assert zk_error(c.get_data, p) == NO_NODE
    assert zk_error(c.get_children, p) == NO_NODE
    assert c.exists(p) is None


@pytest.mark.parametrize("path", ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"])
def test_deleting_special_nodes_is_bad_arguments(zk, path):
    with pytest.raises(BadArgumentsError):
        zk.delete(path)
    assert zk.exists(path) is not None


# ====================================================================== data size


def test_data_of_1023_kib_round_trips(zk, base):
    blob = bytes(range(256)) * (1023 * KIB // 256)
    assert len(blob) == 1023 * KIB
    zk.create(base + "/big", blob)
    data, st = zk.get(base + "/big")
    assert data == blob
    assert st.dataLength == 1023 * KIB


def test_data_over_1_mib_drops_connection_session_survives(make_client, base):
    zk = make_client()
    states = []
    zk.add_listener(states.append)
    zk.create(base + "/e", ephemeral=True)
    session = zk.client_id
    with pytest.raises(ConnectionLoss):
        zk.create(base + "/big", b"x" * (MIB + KIB))
    assert zkwire.wait_until(lambda: zk.connected, timeout=20)
    assert KazooState.SUSPENDED in states
    assert zk.client_id == session
    assert zk.exists(base + "/e").ephemeralOwner == session[0]
    assert zk.exists(base + "/big") is None


# ====================================================================== multi


def test_multi_commits_every_op_with_one_zxid(zk, base):
    zk.create(base + "/old", b"o")
    zk.create(base + "/gone")
    t = zk.transaction()
    t.create(base + "/n1", b"1")
    t.create(base + "/n2")
    t.set_data(base + "/old", b"new")
    t.delete(base + "/gone")
    t.check(base + "/n1", 0)
    res = t.commit()
    assert res[:2] == [base + "/n1", base + "/n2"]
    assert isinstance(res[2], ZnodeStat)
    assert res[3:] == [True, True]
    s1, s2, old = zk.exists(base + "/n1"), zk.exists(base + "/n2"), zk.exists(base + "/old")
    assert s1.czxid == s2.czxid == old.mzxid == res[2].mzxid
    assert zk.exists(base).pzxid == s1.czxid
    assert zk.exists(base + "/gone") is None
    assert zk.get(base + "/old")[0] == b"new"


def test_multi_failure_reports_each_op_and_applies_nothing(zk, base):
    zk.create(base + "/x", b"keep")
    t = zk.transaction()
    t.create(base + "/a")
    t.delete(base + "/missing")
    t.set_data(base + "/x", b"changed")
    t.check(base + "/x", 0)
    res = t.commit()
    assert [type(r) for r in res] == [RolledBackError, NoNodeError, RuntimeInconsistency, RuntimeInconsistency]
    assert zk.exists(base + "/a") is None
    assert zk.get(base + "/x")[0] == b"keep"


def test_multi_ops_see_earlier_ops(zk, base):
    t = zk.transaction()
    t.create(base + "/p", b"1")
    t.create(base + "/p/c")
    t.set_data(base + "/p/c", b"v")
    t.check(base + "/p/c", 1)
    t.delete(base + "/p/c")
    t.check(base + "/p", 0)
    res = t.commit()
    assert not any(isinstance(r, Exception) for r in res), res
    st = zk.exists(base + "/p")
    assert (st.cversion, st.numChildren) == (2, 0)


def test_multi_check_with_wrong_version_aborts(zk, base):
    t = zk.transaction()
    t.create(base + "/a")
    t.check(base, 5)
    res = t.commit()
    assert [type(r) for r in res] == [RolledBackError, BadVersionError]
    assert zk.exists(base + "/a") is None


def test_multi_sequential_creates_count_within_txn(zk, base):
    t = zk.transaction()
    t.create(base + "/s-", sequence=True)
    t.create(base + "/s-", sequence=True)
    assert t.commit() == [base + "/s-0000000000", base + "/s-0000000001"]


def test_multi_result_types_on_the_wire(wire, base):
    c = wire()
    c.create(base + "/d")
    err, res = c.multi(
        [
            zkwire.op_create(base + "/a", opcode=OP_CREATE),
            # create2 with a plain mode is answered as a plain create.
            zkwire.op_create(base + "/b", opcode=OP_CREATE2),
            zkwire.op_set_data(base + "/a", b"v"),
            zkwire.op_check(base + "/a", 1),
            zkwire.op_delete(base + "/d"),
        ]
    )
    assert err == 0
    assert [(r.type, r.err) for r in res] == [
        (OP_CREATE, 0),
        (OP_CREATE, 0),
        (OP_SET_DATA, 0),
        (OP_CHECK, 0),
        (OP_DELETE, 0),
    ]
    assert res[0].value == base + "/a"
    assert res[1].value == base + "/b"
    assert res[2].value.version == 1


def test_multi_failure_on_the_wire(wire, base):
    c = wire()
    err, res = c.multi(
        [
            zkwire.op_create(base + "/a"),
            zkwire.op_delete(base + "/missing"),
            zkwire.op_set_data(base, b"x"),
        ]
    )
    assert err == 0
    assert [(r.type, r.err, r.value) for r in res] == [
        (OP_ERROR, 0, 0),
        (OP_ERROR, NO_NODE, NO_NODE),
        (OP_ERROR, RUNTIME_INCONSISTENCY, RUNTIME_INCONSISTENCY),
    ]


def test_empty_multi_is_an_empty_response(wire):
    assert wire().multi([]) == (0, [])


def test_multi_read_reports_failures_per_op(wire, base):
    c = wire()
    c.create(base + "/a", b"data")
    err, res = c.multi(
        [
            zkwire.op_get_data(base + "/a"),
            zkwire.op_get_children(base),
            zkwire.op_get_data(base + "/missing"),
            zkwire.op_get_children(base + "/missing"),
        ],
        op=OP_MULTI_READ,
    )
    assert err == 0
    assert res[0].type == OP_GET_DATA and res[0].value[0] == b"data"
    assert res[1].type == OP_GET_CHILDREN and res[1].value == ["a"]
    assert [(r.type, r.err) for r in res[2:]] == [(OP_ERROR, NO_NODE), (OP_ERROR, NO_NODE)]


# ====================================================================== one-shot watches


def test_exists_watch_on_missing_node_fires_created(zk, zk2, base, events):
    ev = events()
    assert zk.exists(base + "/n", watch=ev) is None
    zk2.create(base + "/n")
    e = ev.get()
    assert (e.type, e.path, e.state) == (EventType.CREATED, base + "/n", KeeperState.CONNECTED)


def test_exists_watch_fires_deleted(zk, zk2, base, events):
    zk.create(base + "/n")
    ev = events()
    assert zk.exists(base + "/n", watch=ev) is not None
    zk2.delete(base + "/n")
    e = ev.get()
    assert (e.type, e.path) == (EventType.DELETED, base + "/n")


def test_get_watch_fires_changed(zk, zk2, base, events):
    zk.create(base + "/n")
    ev = events()
    zk.get(base + "/n", watch=ev)
    zk2.set(base + "/n", b"x")
    e = ev.get()
    assert (e.type, e.path) == (EventType.CHANGED, base + "/n")


def test_get_watch_fires_deleted(zk, zk2, base, events):
    zk.create(base + "/n")
    ev = events()
    zk.get(base + "/n", watch=ev)
    zk2.delete(base + "/n")
    e = ev.get()
    assert (e.type, e.path) == (EventType.DELETED, base + "/n")


def test_children_watch_fires_on_child_create(zk, zk2, base, events):
    ev = events()
    assert zk.get_children(base, watch=ev) == []
    zk2.create(base + "/c")
    e = ev.get()
    assert (e.type, e.path) == (EventType.CHILD, base)


def test_children_watch_fires_on_child_delete(zk, zk2, base, events):
    zk.create(base + "/c")
    ev = events()
    zk.get_children(base, watch=ev)
    zk2.delete(base + "/c")
    e = ev.get()
    assert (e.type, e.path) == (EventType.CHILD, base)


def test_children_watch_fires_deleted_for_the_node(zk, zk2, base, events):
    zk.create(base + "/n")
    ev = events()
    zk.get_children(base + "/n", watch=ev)
    zk2.delete(base + "/n")
    e = ev.get()
    assert (e.type, e.path) == (EventType.DELETED, base + "/n")


def test_multi_fires_watches(zk, zk2, base, events):
    ev = events()
    zk.exists(base + "/n", watch=ev)
    t = zk2.transaction()
    t.create(base + "/n")
    t.commit()
    assert ev.get().type == EventType.CREATED


def test_session_close_fires_watches_for_ephemerals(make_client, zk, base, events, catch_up):
    other = make_client()
    other.create(base + "/e", ephemeral=True)
    catch_up(zk, base)
    data_ev, child_ev = events(), events()
    zk.exists(base + "/e", watch=data_ev)
    zk.get_children(base, watch=child_ev)
    other.stop()
    assert (data_ev.get().type, child_ev.get().type) == (EventType.DELETED, EventType.CHILD)


def test_watch_is_one_shot(wire, base):
    w, m = wire(), wire()
    m.create(base + "/n")
    w.get_data(base + "/n", watch=True)
    m.set_data(base + "/n", b"1")
    m.set_data(base + "/n", b"2")
    evs = w.drain_events()
    assert [(e.type, e.path) for e in evs] == [(EV_NODE_DATA_CHANGED, base + "/n")]


def test_notification_frame_fields(wire, base):
    w, m = wire(), wire()
    w.exists(base + "/n", watch=True)
    m.create(base + "/n")
    e = w.wait_event()
    assert (e.type, e.state, e.path, e.zxid) == (EV_NODE_CREATED, STATE_SYNC_CONNECTED, base + "/n", -1)


def test_watch_event_arrives_before_new_data_is_readable(wire, base):
    w, m = wire(), wire()
    m.create(base + "/n", b"old")
    w.get_data(base + "/n", watch=True)
    m.set_data(base + "/n", b"new")
    # The notification is queued on w's connection before any later reply,
    # so by the time the read's reply arrives the event is already there.
    data, _ = w.get_data(base + "/n")
    assert data == b"new"
    assert [(e.type, e.path) for e in w.events] == [(EV_NODE_DATA_CHANGED, base + "/n")]


def test_exists_and_get_watch_on_one_connection_fire_once(wire, base):
    w, m = wire(), wire()
    m.create(base + "/n")
    w.exists(base + "/n", watch=True)
    w.get_data(base + "/n", watch=True)
    m.set_data(base + "/n", b"x")
    assert [e.type for e in w.drain_events()] == [EV_NODE_DATA_CHANGED]


def test_delete_fires_one_deleted_for_data_and_child_watches(wire, base):
    w, m = wire(), wire()
    m.create(base + "/n")
    w.get_data(base + "/n", watch=True)
    w.get_children(base + "/n", watch=True)
    w.exists(base + "/n", watch=True)
    m.delete(base + "/n")
    assert [(e.type, e.path) for e in w.drain_events()] == [(EV_NODE_DELETED, base + "/n")]


def test_set_data_keeps_child_watch_armed(wire, base):
    w, m = wire(), wire()
    m.create(base + "/n")
    w.get_data(base + "/n", watch=True)
    w.get_children(base + "/n", watch=True)
    m.set_data(base + "/n", b"x")
    assert [e.type for e in w.drain_events()] == [EV_NODE_DATA_CHANGED]
    m.create(base + "/n/c")
    assert [(e.type, e.path) for e in w.drain_events()] == [(EV_NODE_CHILDREN_CHANGED, base + "/n")]


def test_get_and_children_on_missing_node_leave_no_watch(wire, base):
    w, m = wire(), wire()
    assert zk_error(w.get_data, base + "/n", watch=True) == NO_NODE
    assert zk_error(w.get_children, base + "/n", watch=True) == NO_NODE
    m.create(base + "/n")
    m.create(base + "/n/c")
    m.set_data(base + "/n", b"x")
    assert w.drain_events() == []


def test_set_acl_fires_no_watch(wire, base):
    w, m = wire(), wire()
    m.create(base + "/n")
    w.get_data(base + "/n", watch=True)
    w.exists(base + "/n", watch=True)
    w.get_children(base + "/n", watch=True)
    m.set_acl(base + "/n", zkwire.OPEN_ACL)
    assert w.drain_events() == []


def test_child_data_change_does_not_fire_parent_child_watch(wire, base):
    w, m = wire(), wire()
    m.create(base + "/c")
    w.get_children(base, watch=True)
    m.set_data(base + "/c", b"x")
    assert w.drain_events() == []


# ====================================================================== persistent watches


def test_add_watch_reply_body_is_zero_int(wire, base):
    r = wire().add_watch(base, ADD_WATCH_PERSISTENT)
    assert r.remaining() == 4
    assert r.int() == 0


def test_persistent_watch_is_not_removed_by_firing(wire, base):
    w, m = wire(), wire()
    w.add_watch(base, ADD_WATCH_PERSISTENT)
    m.set_data(base, b"1")
    m.set_data(base, b"2")
    assert [(e.type, e.path) for e in w.drain_events()] == [(EV_NODE_DATA_CHANGED, base)] * 2


def test_persistent_watch_sees_children_changes_not_child_data(wire, base):
    # zk-surface 19: NodeChildrenChanged for children, not their data changes.
    w, m = wire(), wire()
    w.add_watch(base, ADD_WATCH_PERSISTENT)
    m.create(base + "/c")
    m.set_data(base + "/c", b"x")
    m.delete(base + "/c")
    m.set_data(base, b"y")
    assert [(e.type, e.path) for e in w.drain_events()] == [
        (EV_NODE_CHILDREN_CHANGED, base),
        (EV_NODE_CHILDREN_CHANGED, base),
        (EV_NODE_DATA_CHANGED, base),
    ]


def test_persistent_watch_on_missing_node(wire, base):
    w, m = wire(), wire()
    p = base + "/n"
    w.add_watch(p, ADD_WATCH_PERSISTENT)
    m.create(p)
    m.set_data(p, b"1")
    m.delete(p)
    m.create(p)
    assert [(e.type, e.path) for e in w.drain_events()] == [
        (EV_NODE_CREATED, p),
        (EV_NODE_DATA_CHANGED, p),
        (EV_NODE_DELETED, p),
        (EV_NODE_CREATED, p),
    ]


def test_persistent_recursive_watch_sees_descendants_without_child_events(wire, base):
    w, m = wire(), wire()
    w.add_watch(base, ADD_WATCH_PERSISTENT_RECURSIVE)
    m.create(base + "/r")
    m.create(base + "/r/g")
    m.set_data(base + "/r/g", b"x")
    m.delete(base + "/r/g")
    m.delete(base + "/r")
    m.set_data(base, b"y")
    assert [(e.type, e.path) for e in w.drain_events()] == [
        (EV_NODE_CREATED, base + "/r"),
        (EV_NODE_CREATED, base + "/r/g"),
        (EV_NODE_DATA_CHANGED, base + "/r/g"),
        (EV_NODE_DELETED, base + "/r/g"),
        (EV_NODE_DELETED, base + "/r"),
        (EV_NODE_DATA_CHANGED, base),
    ]


def test_persistent_recursive_watch_ignores_siblings(wire, base):
    w, m = wire(), wire()
    m.create(base + "/a")
    m.create(base + "/ab")
    w.add_watch(base + "/a", ADD_WATCH_PERSISTENT_RECURSIVE)
    m.create(base + "/ab/x")
    m.set_data(base + "/ab", b"1")
    m.create(base + "/a/x")
    assert [(e.type, e.path) for e in w.drain_events()] == [(EV_NODE_CREATED, base + "/a/x")]


def test_persistent_and_one_shot_watch_fire_once_together(wire, base):
    w, m = wire(), wire()
    w.add_watch(base, ADD_WATCH_PERSISTENT)
    w.get_data(base, watch=True)
    m.set_data(base, b"1")
    assert [e.type for e in w.drain_events()] == [EV_NODE_DATA_CHANGED]


def test_remove_watches_any_removes_persistent_watch(wire, base):
    w, m = wire(), wire()
    w.add_watch(base, ADD_WATCH_PERSISTENT_RECURSIVE)
    w.remove_watches(base, WATCHER_ANY)
    m.create(base + "/c")
    m.set_data(base, b"1")
    assert w.drain_events() == []
    assert zk_error(w.remove_watches, base, WATCHER_ANY) == NO_WATCHER


def test_remove_watches_data_removes_half_of_persistent_watch(wire, base):
    # Removing type Data from a PERSISTENT watch leaves its child half armed;
    # removing Children then leaves nothing.
    w, m = wire(), wire()
    w.add_watch(base, ADD_WATCH_PERSISTENT)
    w.remove_watches(base, WATCHER_DATA)
    m.set_data(base, b"1")
    m.create(base + "/c")
    assert [e.type for e in w.drain_events()] == [EV_NODE_CHILDREN_CHANGED]
    w.remove_watches(base, WATCHER_CHILDREN)
    m.delete(base + "/c")
    assert w.drain_events() == []
    assert zk_error(w.remove_watches, base, WATCHER_ANY) == NO_WATCHER


def test_remove_watches_without_watch_is_no_watcher(wire, base):
    w = wire()
    assert zk_error(w.remove_watches, base, WATCHER_ANY) == NO_WATCHER
    assert zk_error(w.remove_watches, base, WATCHER_DATA) == NO_WATCHER
    assert zk_error(w.check_watches, base, WATCHER_CHILDREN) == NO_WATCHER


def test_remove_data_watch_keeps_child_watch(wire, base):
    w, m = wire(), wire()
    w.get_data(base, watch=True)
    w.get_children(base, watch=True)
    w.check_watches(base, WATCHER_DATA)
    w.remove_watches(base, WATCHER_DATA)
    assert zk_error(w.check_watches, base, WATCHER_DATA) == NO_WATCHER
    w.check_watches(base, WATCHER_CHILDREN)
    m.set_data(base, b"x")
    m.create(base + "/c")
    assert [(e.type, e.path) for e in w.drain_events()] == [(EV_NODE_CHILDREN_CHANGED, base)]


def test_remove_watches_is_per_connection(wire, base):
    w1, w2, m = wire(), wire(), wire()
    w1.get_data(base, watch=True)
    w2.get_data(base, watch=True)
    w1.remove_watches(base, WATCHER_ANY)
    m.set_data(base, b"x")
    assert w1.drain_events() == []
    assert [e.type for e in w2.drain_events()] == [EV_NODE_DATA_CHANGED]


# ====================================================================== ACLs


def test_world_read_only_acl(zk, base):
    zk.create(base + "/r", b"v", acl=READ_ACL_UNSAFE)
    assert zk.get(base + "/r")[0] == b"v"
    with pytest.raises(NoAuthError):
        zk.set(base + "/r", b"w")
    with pytest.raises(NoAuthError):
        zk.create(base + "/r/c")
    assert zk.get_acls(base + "/r")[0] == READ_ACL_UNSAFE


def test_digest_acl_needs_matching_auth(make_client, base):
    owner = make_client()
    owner.add_auth("digest", "alice:secret")
    owner.create(base + "/d", b"v", acl=[make_digest_acl("alice", "secret", all=True)])
    assert owner.get(base + "/d")[0] == b"v"
    stranger = make_client()
    with pytest.raises(NoAuthError):
        stranger.get(base + "/d")
    wrong = make_client()
    wrong.add_auth("digest", "alice:wrong")
    with pytest.raises(NoAuthError):
        wrong.get(base + "/d")
    right = make_client(auth_data=[("digest", "alice:secret")])
    assert right.get(base + "/d")[0] == b"v"


def test_digest_id_is_base64_sha1(zk, base):
    zk.create(base + "/d", acl=[ACL(Permissions.ALL, Id("digest", digest_id("u", "p")))])
    zk.add_auth("digest", "u:p")
    acls, _ = zk.get_acls(base + "/d")
    assert acls == [ACL(Permissions.ALL, Id("digest", "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="))]
    assert digest_id("u", "p") == "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="


def test_auth_scheme_expands_to_callers_ids(zk, base):
    zk.add_auth("digest", "u:p")
    zk.create(base + "/a", acl=CREATOR_ALL_ACL)
    # Any id string after auth: is ignored; the ids come from the session.
    rw = Permissions.READ | Permissions.ADMIN
    zk.create(base + "/b", acl=[ACL(rw, Id("auth", "whatever"))])
    assert zk.get_acls(base + "/a")[0] == [ACL(Permissions.ALL, Id("digest", digest_id("u", "p")))]
    assert zk.get_acls(base + "/b")[0] == [ACL(rw, Id("digest", digest_id("u", "p")))]


def test_auth_scheme_without_authentication_is_invalid_acl(zk, base):
    with pytest.raises(InvalidACLError):
        zk.create(base + "/a", acl=CREATOR_ALL_ACL)


def test_ip_acl(zk, base):
    zk.create(base + "/mine", b"m", acl=[ACL(Permissions.ALL, Id("ip", "127.0.0.1"))])
    zk.create(base + "/net", b"n", acl=[ACL(Permissions.ALL, Id("ip", "127.0.0.0/8"))])
    zk.create(base + "/other", b"o", acl=[ACL(Permissions.ALL, Id("ip", "10.1.2.3"))])
    assert zk.get(base + "/mine")[0] == b"m"
    assert zk.get(base + "/net")[0] == b"n"
    with pytest.raises(NoAuthError):
        zk.get(base + "/other")


INVALID_ACLS = [
    [],
    [(31, "nosuchscheme", "x")],
    [(31, "world", "nobody")],
    [(31, "digest", "nocolon")],
    [(31, "digest", "a:b:c")],
    [(31, "ip", "300.1.1.1")],
    [(31, "ip", "not-an-ip")],
]


@pytest.mark.parametrize("acl", INVALID_ACLS, ids=[repr(a) for a in INVALID_ACLS])
def test_invalid_acls(wire, base, acl):
    # Raw requests: kazoo replaces an empty ACL list by its default ACL.
    c = wire()
    assert zk_error(c.create, base + "/a", acl=acl) == zkwire.INVALID_ACL
    assert zk_error(c.set_acl, base, acl) == zkwire.INVALID_ACL
    assert c.get_acl(base)[1].aversion == 0


def test_null_acl_is_invalid(wire, base):
    c = wire()
    body = zkwire.enc_string(base + "/a") + zkwire.enc_buffer(b"") + zkwire.enc_int(-1) + zkwire.enc_int(0)
    (_, _, err), _ = c.call(OP_CREATE, body, check=False)
    assert err == zkwire.INVALID_ACL


def test_duplicate_acl_entries_are_merged(zk, base):
    zk.create(base + "/a", acl=OPEN_ACL_UNSAFE + OPEN_ACL_UNSAFE)
    assert zk.get_acls(base + "/a")[0] == OPEN_ACL_UNSAFE
    two = [ACL(Permissions.ALL, Id("world", "anyone")), ACL(Permissions.READ, Id("world", "anyone"))]
    zk.create(base + "/b", acl=two)
    assert zk.get_acls(base + "/b")[0] == two


# Which permission bit each operation needs.
# create and delete need the bit on the parent of the created/deleted node.
NEEDS = {
    "create": Permissions.CREATE,
    "delete": Permissions.DELETE,
    "set": Permissions.WRITE,
    "get": Permissions.READ,
    "get_children": Permissions.READ,
    "set_acls": Permissions.ADMIN,
}


def _run_op(zk, op, node):
    if op == "create":
        zk.create(node + "/new")
    elif op == "delete":
        zk.delete(node + "/victim")
    elif op == "set":
        zk.set(node, b"x")
    elif op == "get":
        zk.get(node)
    elif op == "get_children":
        zk.get_children(node)
    elif op == "set_acls":
        zk.set_acls(node, [ACL(Permissions.ALL, Id("world", "anyone"))])


@pytest.mark.parametrize("op", sorted(NEEDS))
def test_each_op_needs_its_permission(zk, base, op):
    bit = NEEDS[op]
    nodes = {}
    for name, perms in (("without", Permissions.ALL & ~bit), ("only", bit)):
        node = zk.create(base + "/" + name)
        zk.create(node + "/victim")
        zk.set_acls(node, [ACL(perms, Id("world", "anyone"))])
        nodes[name] = node
    with pytest.raises(NoAuthError):
        _run_op(zk, op, nodes["without"])
    _run_op(zk, op, nodes["only"])


def test_get_acl_needs_read_or_admin(zk, base):
    zk.create(base + "/none", acl=[ACL(Permissions.WRITE | Permissions.CREATE | Permissions.DELETE, Id("world", "anyone"))])
    with pytest.raises(NoAuthError):
        zk.get_acls(base + "/none")
    zk.create(base + "/admin", acl=[ACL(Permissions.ADMIN, Id("world", "anyone"))])
    assert zk.get_acls(base + "/admin")[0] == [ACL(Permissions.ADMIN, Id("world", "anyone"))]


def test_get_acl_masks_digest_without_admin(make_client, base):
    zk = make_client(auth_data=[("digest", "u:p")])
    zk.create(base + "/r", acl=[ACL(Permissions.READ, Id("digest", digest_id("u", "p")))])
    zk.create(base + "/a", acl=[ACL(Permissions.ADMIN, Id("digest", digest_id("u", "p")))])
    assert zk.get_acls(base + "/r")[0] == [ACL(Permissions.READ, Id("digest", "u:x"))]
    assert zk.get_acls(base + "/a")[0] == [ACL(Permissions.ADMIN, Id("digest", digest_id("u", "p")))]


def test_exists_and_sync_need_no_permission(zk, base):
    zk.create(base + "/locked", acl=[ACL(0, Id("world", "anyone"))])
    assert zk.exists(base + "/locked") is not None
    assert zk.sync(base + "/locked") == base + "/locked"
    with pytest.raises(NoAuthError):
        zk.get(base + "/locked")


def test_unknown_auth_scheme_fails_the_session(make_client):
    # kazoo raises AuthFailedError from the -115 reply; what kazoo does with
    # its connection afterwards is its own business (test_wire.py checks that
    # the server closes the connection).
    zk = make_client()
    with pytest.raises(AuthFailedError):
        zk.add_auth("nosuchscheme", "x")


def test_who_am_i(wire):
    # kazoo 2.11 has no whoAmI; the raw request (107) is used.
    c = wire()
    assert c.who_am_i() == [("ip", "127.0.0.1")]
    assert c.auth("digest", b"u:p") == 0
    assert c.who_am_i() == [("ip", "127.0.0.1"), ("digest", "u")]


# ====================================================================== sync, ephemerals, counts


def test_sync_returns_the_path(zk, base):
    assert zk.sync(base) == base


def test_sync_of_missing_path_succeeds(wire, base):
    assert wire().sync(base + "/missing/x") == base + "/missing/x"


def test_get_ephemerals_lists_own_session_by_prefix(wire, base):
    a, b = wire(), wire()
    a.create(base + "/sub")
    for p in ("/e1", "/e2", "/sub/e3"):
        a.create(base + p, flags=EPHEMERAL)
    b.create(base + "/f1", flags=EPHEMERAL)
    assert sorted(a.get_ephemerals(base)) == [base + "/e1", base + "/e2", base + "/sub/e3"]
    # Plain string prefix, not a path component match.
    assert sorted(a.get_ephemerals(base + "/e")) == [base + "/e1", base + "/e2"]
    assert sorted(a.get_ephemerals(base + "/sub")) == [base + "/sub/e3"]
    assert sorted(a.get_ephemerals("/")) == [base + "/e1", base + "/e2", base + "/sub/e3"]
    assert b.get_ephemerals(base) == [base + "/f1"]
    assert a.get_ephemerals(base + "/nothing") == []


def test_get_all_children_number(wire, base):
    c = wire()
    for p in ("/a", "/a/b", "/a/b/c", "/d"):
        c.create(base + p)
    assert c.get_all_children_number(base) == 4
    assert c.get_all_children_number(base + "/a") == 2
    assert c.get_all_children_number(base + "/d") == 0
    assert zk_error(c.get_all_children_number, base + "/missing") == NO_NODE
    assert c.get_all_children_number("/zookeeper") >= 2


# ====================================================================== sessions


@pytest.mark.slow
def test_session_expiry_removes_ephemerals_and_fires_watches(wire, base):
    w = wire()
    doomed = zkwire.Conn.session(timeout_ms=4000)
    try:
        doomed.create(base + "/e", flags=EPHEMERAL)
        assert w.exists(base + "/e", watch=True).ephemeralOwner == doomed.session_id
        w.get_children(base, watch=True)
        # Drop the connection without closing the session: it must expire.
        doomed.close()
        got = [w.wait_event(30), w.wait_event(30)]
        assert sorted((e.type, e.path) for e in got) == [
            (EV_NODE_DELETED, base + "/e"),
            (EV_NODE_CHILDREN_CHANGED, base),
        ]
        assert w.exists(base + "/e") is None
        again = zkwire.Conn()
        try:
            resp = again.handshake(session_id=doomed.session_id, passwd=doomed.passwd)
            assert (resp.timeout, resp.session_id, resp.passwd) == (0, 0, b"\x00" * 16)
        finally:
            again.close()
    finally:
        doomed.close()


def test_reconnect_with_same_session_keeps_ephemerals(wire, base):
    first = zkwire.Conn.session()
    first.create(base + "/e", flags=EPHEMERAL)
    sid, pw, to = first.session_id, first.passwd, first.timeout
    first.close()
    second = zkwire.Conn()
    try:
        resp = second.handshake(session_id=sid, passwd=pw)
        assert (resp.session_id, resp.passwd, resp.timeout) == (sid, pw, to)
        assert second.exists(base + "/e").ephemeralOwner == sid
        second.close_session()
        assert wire().exists(base + "/e") is None
    finally:
        second.close()


def test_kazoo_resumes_a_session_by_client_id(make_client, base, catch_up):
    first = zkwire.Conn.session()
    first.create(base + "/e", flags=EPHEMERAL)
    first.close()
    zk = make_client(client_id=(first.session_id, first.passwd))
    assert zk.client_id[0] == first.session_id
    catch_up(zk, base)
    assert zk.exists(base + "/e").ephemeralOwner == first.session_id


def test_closing_a_session_removes_its_ephemerals_at_once(make_client, zk, base, catch_up):
    other = make_client()
    other.create(base + "/e", ephemeral=True)
    other.create(base + "/s-", ephemeral=True, sequence=True)
    catch_up(zk, base)
    before = zk.exists(base)
    other.stop()
    catch_up(zk, base)
    assert zk.get_children(base) == []
    after = zk.exists(base)
    assert after.cversion == before.cversion + 2
    assert after.pzxid > before.pzxid


def test_new_session_takes_over_connection_from_old_one(wire, base):
    first = zkwire.Conn.session()
    try:
        second = zkwire.Conn()
        resp = second.handshake(session_id=first.session_id, passwd=first.passwd)
        assert resp.session_id == first.session_id
        assert first.wait_closed(10)
        second.close_session()
        second.close()
    finally:
        first.close()


# ====================================================================== /zookeeper/config, quotas


def test_zookeeper_config_node(zk):
    data, stat = zk.get("/zookeeper/config")
    assert data == b""  # standalone
    assert stat.dataLength == 0
    assert zk.get_acls("/zookeeper/config")[0] == READ_ACL_UNSAFE
    with pytest.raises(NoAuthError):
        zk.set("/zookeeper/config", b"server.1=x")
    with pytest.raises(NoAuthError):
        zk.create("/zookeeper/config/child")
    assert zk.get_acls("/zookeeper")[0] == OPEN_ACL_UNSAFE
    assert zk.get_acls("/zookeeper/quota")[0] == OPEN_ACL_UNSAFE


@pytest.fixture
def quota_root(zk, base):
    """The quota node for `base`/q; removed at teardown."""
    root = "/zookeeper/quota" + base
    yield root + "/q"
    try:
        zk.delete(root, recursive=True)
    except Exception:
        pass


def test_quota_stats_are_maintained_by_the_server(zk, base, quota_root):
    zk.create(base + "/q", b"abc")
    zk.create(base + "/q/k1", b"12345")
    zk.create(quota_root + "/zookeeper_limits", b"count=3,bytes=100", makepath=True)
    assert zk.get_children(quota_root) == ["zookeeper_limits"]
    # The stats node's data is replaced by the usage of the subtree.
    zk.create(quota_root + "/zookeeper_stats", b"count=0,bytes=0")
    assert zk.get(quota_root + "/zookeeper_stats")[0] == b"count=2,bytes=8"
    zk.create(base + "/q/k2", b"xy")
    assert zk.get(quota_root + "/zookeeper_stats")[0] == b"count=3,bytes=10"
    zk.set(base + "/q/k2", b"xyzw")
    assert zk.get(quota_root + "/zookeeper_stats")[0] == b"count=3,bytes=12"
    # Soft limits only log: a fourth node is allowed.
    zk.create(base + "/q/k3")
    assert zk.get(quota_root + "/zookeeper_stats")[0] == b"count=4,bytes=12"
    zk.delete(base + "/q/k3")
    assert zk.get(quota_root + "/zookeeper_stats")[0] == b"count=3,bytes=12"


def test_hard_count_quota(zk, base, quota_root):
    zk.create(base + "/q", b"abc")
    zk.create(base + "/q/k1", b"12345")
    zk.create(quota_root + "/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2", makepath=True)
    zk.create(quota_root + "/zookeeper_stats", b"")
    with pytest.raises(QuotaExceededError):
        zk.create(base + "/q/k2")
    with pytest.raises(QuotaExceededError):
        zk.create(base + "/q/s-", sequence=True)
    t = zk.transaction()
    t.create(base + "/q/m")
    assert [type(r) for r in t.commit()] == [QuotaExceededError]
    assert zk.get_children(base + "/q") == ["k1"]


def test_hard_bytes_quota(zk, base, quota_root):
    zk.create(base + "/q", b"abc")
    zk.create(base + "/q/k1", b"12345")
    zk.create(quota_root + "/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=-1", makepath=True)
    zk.create(quota_root + "/zookeeper_stats", b"")
    with pytest.raises(QuotaExceededError):
        zk.set(base + "/q/k1", b"12345678")
    zk.set(base + "/q/k1", b"1234567")  # exactly at the limit is allowed
    with pytest.raises(QuotaExceededError):
        zk.create(base + "/q/k2", b"x")
    zk.create(base + "/q/k3", b"")
    assert zk.get(quota_root + "/zookeeper_stats")[0] == b"count=3,bytes=10"


def test_hard_quota_needs_the_stats_node(zk, base, quota_root):
    zk.create(base + "/q", b"abc")
    zk.create(quota_root + "/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1", makepath=True)
    zk.create(base + "/q/k1")
    assert zk.get_children(base + "/q") == ["k1"]
