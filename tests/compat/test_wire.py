"""The ZooKeeper 3.8 wire protocol and four-letter words, over raw sockets.

These tests build frames with `struct` (through zkwire) so that they can check
what no client library shows: handshake byte counts, reply headers, how the
server reacts to broken input, and the exact text of four-letter words.
"""

import re

import pytest

import zkwire
from zkwire import (
    AUTH_FAILED,
    EPHEMERAL,
    EV_NODE_CHILDREN_CHANGED,
    EV_NODE_CREATED,
    EV_NODE_DATA_CHANGED,
    EV_NODE_DELETED,
    MARSHALLING_ERROR,
    OP_CREATE,
    OP_EXISTS,
    OP_GET_DATA,
    OP_SET_WATCHES,
    OP_SET_WATCHES2,
    UNIMPLEMENTED,
    XID_PING,
    XID_SET_WATCHES,
    Conn,
    enc_bool,
    enc_int,
    enc_long,
    enc_string,
    enc_strings,
    four_letter,
    frame,
)

MIB = 1024 * 1024
JUTE_MAXBUFFER = 0xFFFFF


def text(cmd, **kw):
    return four_letter(cmd, **kw).decode("utf-8")


def conf():
    out = {}
    for line in text("conf").splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    return out


def mntr():
    out = {}
    for line in text("mntr").splitlines():
        key, _, value = line.partition("\t")
        out[key] = value
    return out


def assert_server_alive():
    assert four_letter("ruok") == b"imok"


# ====================================================================== four-letter words


def test_ruok():
    assert four_letter("ruok") == b"imok"


SRVR_LINES = [
    r"Zookeeper version: 3\.8\.\d+\S*, built on \S+ \S+ UTC",
    r"Latency min/avg/max: \d+/\d+\.\d+/\d+",
    r"Received: \d+",
    r"Sent: \d+",
    r"Connections: \d+",
    r"Outstanding: \d+",
    r"Zxid: 0x[0-9a-f]+",
    r"Mode: standalone",
    r"Node count: \d+",
]


def test_srvr_lines_in_order():
    out = text("srvr")
    assert out.endswith("\n")
    lines = out[:-1].split("\n")
    assert len(lines) == len(SRVR_LINES), lines
    for line, pattern in zip(lines, SRVR_LINES):
        assert re.fullmatch(pattern, line), (line, pattern)


def test_srvr_zxid_is_the_last_zxid(wire, base):
    c = wire()
    # Another session expiring in between would add a txn: retry a few times.
    seen = []
    for i in range(5):
        _, stat = c.create("%s/a%d" % (base, i))
        _, ping_zxid, _, _ = c.ping()
        found = re.search(r"^Zxid: 0x([0-9a-f]+)$", text("srvr"), re.M)
        seen.append((stat.czxid, ping_zxid, int(found.group(1), 16)))
        if stat.czxid == ping_zxid == seen[-1][2]:
            return
    raise AssertionError("create zxid, ping zxid and srvr Zxid differ: %r" % seen)


def test_srvr_node_count_follows_creates(wire, base):
    c = wire()

    def count():
        return int(re.search(r"^Node count: (\d+)$", text("srvr"), re.M).group(1))

    before = count()
    c.create(base + "/a")
    c.create(base + "/b")
    assert count() == before + 2
    c.delete(base + "/a")
    assert count() == before + 1


def test_node_count_of_special_nodes(wire):
    # A fresh standalone Java server reports 5 nodes before any client write
    # (the root counted twice, as "" and "/", plus /zookeeper, quota and
    # config) while getAllChildrenNumber("/") is 3: the count is always 2
    # more than the nodes below the root.
    c = wire()
    total = int(re.search(r"^Node count: (\d+)$", text("srvr"), re.M).group(1))
    assert total == c.get_all_children_number("/") + 2


def test_stat_has_clients_section(wire):
    assert wire().session_id  # at least one client connection to list
    out = text("stat")
    lines = out.split("\n")
    assert re.fullmatch(SRVR_LINES[0], lines[0])
    assert lines[1] == "Clients:"
    i = 2
    clients = []
    while lines[i] != "":
        clients.append(lines[i])
        i += 1
    assert clients, out
    for line in clients:
        assert re.fullmatch(r" /127\.0\.0\.1:\d+\[\d\]\(queued=\d+,recved=\d+,sent=\d+\)", line), line
    rest = lines[i + 1 :]
    assert rest[-1] == ""
    for line, pattern in zip(rest[:-1], SRVR_LINES[1:]):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert len(rest[:-1]) == len(SRVR_LINES) - 1


def test_mntr_starts_with_version_and_state():
    lines = text("mntr").split("\n")
    assert lines[-1] == ""
    assert re.fullmatch(r"zk_version\t3\.8\.\d+\S*, built on \S+ \S+ UTC", lines[0])
    assert lines[1] == "zk_server_state\tstandalone"
    for line in lines[:-1]:
        assert re.fullmatch(r"zk_[A-Za-z0-9_.-]+\t\S.*", line), line


MNTR_KEYS = [
    "zk_avg_latency",
    "zk_max_latency",
    "zk_min_latency",
    "zk_packets_received",
    "zk_packets_sent",
    "zk_num_alive_connections",
    "zk_outstanding_requests",
    "zk_uptime",
    "zk_znode_count",
    "zk_watch_count",
    "zk_ephemerals_count",
    "zk_approximate_data_size",
    "zk_global_sessions",
    "zk_local_sessions",
    "zk_open_file_descriptor_count",
    "zk_max_file_descriptor_count",
]


def test_mntr_has_the_standard_keys():
    m = mntr()
    missing = [k for k in MNTR_KEYS if k not in m]
    assert not missing
    for k in MNTR_KEYS:
        if k != "zk_avg_latency":
            assert re.fullmatch(r"-?\d+", m[k]), (k, m[k])


def test_mntr_counts_follow_the_tree(wire, base):
    c = wire()
    before = mntr()
    c.create(base + "/e", flags=EPHEMERAL)
    c.get_data(base, watch=True)
    after = mntr()
    assert int(after["zk_ephemerals_count"]) == int(before["zk_ephemerals_count"]) + 1
    assert int(after["zk_znode_count"]) == int(before["zk_znode_count"]) + 1
    assert int(after["zk_watch_count"]) == int(before["zk_watch_count"]) + 1
    node_count = int(re.search(r"^Node count: (\d+)$", text("srvr"), re.M).group(1))
    assert int(after["zk_znode_count"]) == node_count


CONF_KEYS = [
    "clientPort",
    "secureClientPort",
    "dataDir",
    "dataDirSize",
    "dataLogDir",
    "dataLogSize",
    "tickTime",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "clientPortListenBacklog",
    "serverId",
]


def test_conf_keys_in_order():
    out = text("conf")
    assert out.endswith("\n")
    keys = [line.partition("=")[0] for line in out[:-1].split("\n")]
    assert keys == CONF_KEYS


def test_conf_values():
    c = conf()
    port = zkwire.parse_hosts(zkwire.env_hosts())[0][1]
    assert int(c["clientPort"]) == port
    assert c["secureClientPort"] == "-1"
    tick = int(c["tickTime"])
    assert int(c["minSessionTimeout"]) == 2 * tick
    assert int(c["maxSessionTimeout"]) == 20 * tick
    assert c["serverId"] == "0"
    # The data directories are reported with the version-2 subdirectory.
    assert c["dataDir"].endswith("/version-2")
    assert c["dataLogDir"] == c["dataDir"]
    assert int(c["dataDirSize"]) >= 0


def test_isro_is_rw():
    assert four_letter("isro") == b"rw"


def test_envi_shape():
    lines = text("envi").split("\n")
    assert lines[0] == "Environment:"
    assert lines[-1] == ""
    for line in lines[1:-1]:
        assert re.fullmatch(r"[a-z][a-zA-Z0-9_.]*=.*", line), line
    assert re.fullmatch(r"zookeeper\.version=3\.8\.\d+.*", lines[1])
    keys = [line.partition("=")[0] for line in lines[1:-1]]
    for k in ("host.name", "java.version", "os.name", "user.name"):
        assert k in keys


def test_kazoo_server_version_parses(zk):
    # kazoo reads the version out of `envi`.
    assert zk.server_version()[:2] == (3, 8)


def test_wchs_wchc_wchp_shapes(wire, base):
    w = wire()
    w.get_data(base, watch=True)
    w.exists(base + "/missing", watch=True)
    m = re.fullmatch(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)\n", text("wchs"))
    assert m, text("wchs")
    assert int(m.group(1)) >= 1 and int(m.group(2)) >= 2 and int(m.group(3)) >= 2
    sid = "0x%x" % w.session_id
    wchc = text("wchc")
    assert wchc.endswith("\n\n")
    block = re.search(r"^%s\n((?:\t.*\n)+)" % sid, wchc, re.M)
    assert block, wchc
    assert sorted(block.group(1).split()) == sorted([base, base + "/missing"])
    wchp = text("wchp")
    assert wchp.endswith("\n\n")
    block = re.search(r"^%s\n((?:\t0x[0-9a-f]+\n)+)" % re.escape(base), wchp, re.M)
    assert block, wchp
    assert sid in block.group(1).split()


def test_watch_words_report_only_data_and_exist_watches(wire, base):
    # wchs/wchc/wchp dump the data-watch table: one-shot child watches are
    # not listed, persistent watches are.
    w = wire()
    w.get_children(base, watch=True)
    sid = "0x%x" % w.session_id
    assert sid not in text("wchc")
    w.add_watch(base + "/p", zkwire.ADD_WATCH_PERSISTENT_RECURSIVE)
    block = re.search(r"^%s\n((?:\t.*\n)+)" % sid, text("wchc"), re.M)
    assert block.group(1).split() == [base + "/p"]


def test_cons_lists_the_session(wire):
    c = wire()
    out = text("cons")
    assert out.endswith("\n\n")
    sid = "0x%x" % c.session_id
    line = [l for l in out.split("\n") if ("sid=%s," % sid) in l]
    assert len(line) == 1, out
    assert re.fullmatch(
        r" /127\.0\.0\.1:\d+\[\d\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x[0-9a-f]+,lop=\w+,est=\d+,"
        r"to=\d+,lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\d+,llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+\)",
        line[0],
    ), line[0]
    assert ",to=%d," % c.timeout in line[0]


def test_dump_lists_ephemerals(wire, base):
    c = wire()
    c.create(base + "/e", flags=EPHEMERAL)
    out = text("dump")
    assert out.startswith("SessionTracker dump:\n")
    assert "ephemeral nodes dump:\n" in out
    assert re.search(r"^0x%x:\n\t%s$" % (c.session_id, re.escape(base + "/e")), out, re.M), out


def test_stat_reset_words():
    assert four_letter("crst") == b"Connection stats reset.\n"
    assert four_letter("srst") == b"Server stats reset.\n"


def test_dirs_shape():
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", text("dirs"))


def test_unknown_four_letter_word_closes_without_reply():
    assert four_letter("abcd") == b""
    assert_server_alive()


# ====================================================================== handshake


def test_handshake_response_with_read_only_flag(raw):
    c = raw()
    resp = c.handshake(timeout_ms=10000)
    assert resp.protocol_version == 0
    assert resp.raw_len == 37
    assert resp.read_only is False
    assert resp.session_id != 0
    assert len(resp.passwd) == 16
    assert resp.timeout == 10000


def test_handshake_response_without_read_only_flag(raw):
    resp = raw().handshake(send_read_only=False)
    assert resp.raw_len == 36
    assert resp.read_only is None
    assert resp.session_id != 0


def test_read_only_client_on_rw_server_gets_rw_session(raw):
    resp = raw().handshake(read_only=True)
    assert resp.read_only is False
    assert resp.timeout > 0


def test_session_ids_are_distinct_with_server_id_high_byte(raw):
    ids = [raw().handshake().session_id for _ in range(3)]
    assert len(set(ids)) == 3
    # Standalone servers use server id 1 in the top byte.
    assert all(sid >> 56 == 1 for sid in ids)


def test_negotiated_timeout_is_clamped(raw):
    c = conf()
    lo, hi = int(c["minSessionTimeout"]), int(c["maxSessionTimeout"])
    assert raw().handshake(timeout_ms=1).timeout == lo
    assert raw().handshake(timeout_ms=10**9).timeout == hi
    mid = (lo + hi) // 2
    assert raw().handshake(timeout_ms=mid).timeout == mid


def test_last_zxid_ahead_of_server_closes_without_reply(raw):
    c = raw()
    assert c.handshake(last_zxid=1 << 50) is None


@pytest.mark.parametrize("case", ["wrong-password", "unknown-session", "closed-session"])
def test_invalid_session_reconnect_gets_zero_response(wire, raw, case):
    s = wire()
    sid, pw = s.session_id, s.passwd
    if case == "wrong-password":
        pw = bytes(b ^ 0xFF for b in pw)
    elif case == "unknown-session":
        s.close_session()
        sid = sid + 0x1000
    else:
        s.close_session()
    c = raw()
    resp = c.handshake(session_id=sid, passwd=pw)
    assert resp is not None
    assert (resp.timeout, resp.session_id, resp.passwd) == (0, 0, b"\x00" * 16)
    assert resp.raw_len == 37
    assert c.wait_closed(10)


# ====================================================================== requests and replies


def test_ping_reply(wire, base):
    c = wire()
    _, st = c.create(base + "/a")
    xid, zxid, err, body_len = c.ping()
    assert (xid, zxid, err, body_len) == (XID_PING, st.czxid, 0, 0)


def test_reply_zxid_of_a_write_is_its_zxid(wire, base):
    c = wire()
    body = enc_string(base + "/a") + zkwire.enc_buffer(b"") + zkwire.enc_acl(zkwire.OPEN_ACL) + enc_int(0)
    (xid, zxid, err), r = c.call(OP_CREATE, body)
    assert r.string() == base + "/a"
    assert c.exists(base + "/a").czxid == zxid


def test_reply_echoes_any_xid(wire):
    c = wire()
    for xid in (0, 7, 123456789, -77):
        (rxid, _, err), _ = c.call(OP_EXISTS, enc_string("/") + enc_bool(False), xid=xid)
        assert (rxid, err) == (xid, 0)


def test_error_reply_has_no_body(wire, base):
    c = wire()
    (_, _, err), r = c.call(OP_GET_DATA, enc_string(base + "/missing") + enc_bool(False), check=False)
    assert err == zkwire.NO_NODE
    assert r.remaining() == 0


def test_replies_come_in_request_order(wire, base):
    c = wire()
    xids = []
    for i in range(20):
        op = OP_EXISTS if i % 2 else OP_GET_DATA
        xids.append(c.send_request(op, enc_string(base if i % 3 else base + "/x") + enc_bool(False)))
    got = [c.read_reply()[0] for _ in xids]
    assert got == xids


def test_unknown_opcode_is_unimplemented_then_closed(wire):
    c = wire()
    (xid, _, err), r = c.call(999, b"", check=False)
    assert err == UNIMPLEMENTED
    assert r.remaining() == 0
    assert c.wait_closed(10)
    assert_server_alive()


def test_undecodable_body_is_marshalling_error(wire):
    c = wire()
    (_, _, err), _ = c.call(OP_GET_DATA, enc_int(100) + b"/x", check=False)
    assert err == MARSHALLING_ERROR
    (_, _, err), _ = c.call(OP_CREATE, enc_string("/trunc"), check=False)
    assert err == MARSHALLING_ERROR
    # The connection stays usable.
    assert c.ping()[2] == 0


def test_close_session_replies_then_closes(raw, base):
    c = Conn.session()
    c.create(base + "/e", flags=EPHEMERAL)
    xid, zxid, err = c.close_session()
    assert err == 0
    assert zxid > 0
    assert c.wait_closed(10)
    c.close()
    other = Conn.session()
    try:
        assert other.exists(base + "/e") is None
    finally:
        other.close_session()
        other.close()


def test_auth_with_unknown_scheme_fails_and_closes(wire):
    c = wire()
    assert c.auth("nosuchscheme", b"x") == AUTH_FAILED
    assert c.wait_closed(10)


def test_auth_with_world_scheme_fails(wire):
    c = wire()
    assert c.auth("world", b"anyone") == AUTH_FAILED
    assert c.wait_closed(10)


def test_digest_auth_without_colon_is_accepted(wire):
    c = wire()
    assert c.auth("digest", b"nocolon") == 0
    assert c.ping()[2] == 0


# ====================================================================== broken input


def test_length_above_jute_maxbuffer_before_handshake_closes(raw):
    c = raw()
    c.send_raw(enc_int(JUTE_MAXBUFFER + 1))
    assert c.wait_closed(10)


def test_negative_length_before_handshake_closes(raw):
    c = raw()
    c.send_raw(enc_int(-5))
    assert c.wait_closed(10)


@pytest.mark.parametrize("payload", [b"", b"\x00" * 10], ids=["empty", "short"])
def test_malformed_connect_request_closes(raw, payload):
    c = raw()
    c.send_raw(frame(payload))
    assert c.wait_closed(10)


@pytest.mark.parametrize(
    "data",
    [
        enc_int(JUTE_MAXBUFFER + 1),
        enc_int(-1),
        frame(b""),
        frame(b"\x01\x02\x03"),
        b"garbage!garbage!garbage!",
    ],
    ids=["above-maxbuffer", "negative", "empty-frame", "short-header", "garbage"],
)
def test_broken_frame_after_handshake_closes(wire, data):
    c = wire()
    c.send_raw(data)
    assert c.wait_closed(10)
    assert_server_alive()


def test_request_over_1_mib_closes_without_reply(wire, base):
    c = wire()
    body = enc_string(base + "/big") + zkwire.enc_buffer(b"x" * MIB) + zkwire.enc_acl(zkwire.OPEN_ACL) + enc_int(0)
    try:
        c.send_request(OP_CREATE, body)
    except (BrokenPipeError, ConnectionResetError):
        # The server may close as soon as it reads the length prefix, before the client
        # has finished sending the body: that is the behaviour under test, seen early.
        pass
    assert c.wait_closed(10)
    other = Conn.session()
    try:
        assert other.exists(base + "/big") is None
    finally:
        other.close_session()
        other.close()


# ====================================================================== setWatches on reconnect


def test_set_watches_catches_up_and_rearms(wire, base):
    m = wire()
    for n in ("n1", "n2", "same", "p"):
        m.create(base + "/" + n)
    _, seen, _, _ = m.ping()
    m.set_data(base + "/n1", b"x")
    m.delete(base + "/n2")
    m.create(base + "/n3")
    m.create(base + "/p/c")
    w = wire()
    body = (
        enc_long(seen)
        + enc_strings([base + "/n1", base + "/n2", base + "/same"])
        + enc_strings([base + "/n3", base + "/missing"])
        + enc_strings([base + "/p", base + "/same"])
    )
    w.send_request(OP_SET_WATCHES, body, xid=XID_SET_WATCHES)
    xid, _, err, r = w.read_reply()
    assert (xid, err, r.remaining()) == (XID_SET_WATCHES, 0, 0)
    # The catch-up events are sent before the reply.
    assert [(e.type, e.path) for e in w.events] == [
        (EV_NODE_DATA_CHANGED, base + "/n1"),
        (EV_NODE_DELETED, base + "/n2"),
        (EV_NODE_CREATED, base + "/n3"),
        (EV_NODE_CHILDREN_CHANGED, base + "/p"),
    ]
    w.events.clear()
    # The rest were registered as ordinary one-shot watches.
    m.set_data(base + "/same", b"1")
    m.create(base + "/missing")
    m.create(base + "/same/c")
    m.set_data(base + "/same", b"2")
    assert [(e.type, e.path) for e in w.drain_events()] == [
        (EV_NODE_DATA_CHANGED, base + "/same"),
        (EV_NODE_CREATED, base + "/missing"),
        (EV_NODE_CHILDREN_CHANGED, base + "/same"),
    ]


def test_set_watches2_registers_persistent_watches_without_catch_up(wire, base):
    m = wire()
    m.create(base + "/n")
    m.create(base + "/p")
    _, seen, _, _ = m.ping()
    m.set_data(base + "/n", b"before")
    m.create(base + "/p/before")
    w = wire()
    body = (
        enc_long(seen)
        + enc_strings([])
        + enc_strings([])
        + enc_strings([])
        + enc_strings([base + "/n"])
        + enc_strings([base + "/p"])
    )
    w.send_request(OP_SET_WATCHES2, body, xid=XID_SET_WATCHES)
    xid, _, err, _ = w.read_reply()
    assert (xid, err) == (XID_SET_WATCHES, 0)
    assert list(w.events) == []
    m.set_data(base + "/n", b"1")
    m.set_data(base + "/n", b"2")
    m.create(base + "/p/d")
    assert [(e.type, e.path) for e in w.drain_events()] == [
        (EV_NODE_DATA_CHANGED, base + "/n"),
        (EV_NODE_DATA_CHANGED, base + "/n"),
        (EV_NODE_CREATED, base + "/p/d"),
    ]
