"""The Prometheus endpoint, read by the official Prometheus text parser
(`prometheus_client.parser`), and the admin server's JSON.

Runs where run.sh turned the endpoints on and exported their ports
(ZK_METRICS_PORT, ZK_ADMIN_PORT): for Corral. Debian's ZooKeeper 3.8 ships neither
the Jetty admin server nor the Prometheus provider jar, so against it these tests
are skipped; the admin JSON field names asserted here were read from ZooKeeper 3.8.0's
own `Commands` (see tests/admin_metrics.rs, which checks them against Corral too).
"""

import json
import os
import urllib.error
import urllib.request
import uuid

import pytest

parser = pytest.importorskip("prometheus_client.parser")

METRICS_PORT = os.environ.get("ZK_METRICS_PORT")
ADMIN_PORT = os.environ.get("ZK_ADMIN_PORT")
# The endpoints are those of the first server of ZK_HOSTS: in an ensemble
# (run.sh --cluster) a client whose effect on them is checked must sit there.
FIRST_HOST = os.environ.get("ZK_HOSTS", "").split(",")[0]
CLUSTER = os.environ.get("ZK_CLUSTER") == "1"


def fetch(port, path):
    url = "http://127.0.0.1:%s%s" % (port, path)
    with urllib.request.urlopen(url, timeout=15) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def scrape():
    status, ctype, text = fetch(METRICS_PORT, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    return families


def sample(families, family, name=None, **labels):
    for s in families[family].samples:
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((family, name, labels))


needs_metrics = pytest.mark.skipif(not METRICS_PORT, reason="no Prometheus endpoint (ZK_METRICS_PORT unset)")
needs_admin = pytest.mark.skipif(not ADMIN_PORT, reason="no admin server (ZK_ADMIN_PORT unset)")


@needs_metrics
def test_metrics_parse_and_name_zookeepers_metrics():
    f = scrape()
    for name, kind in [
        ("znode_count", "gauge"),
        ("num_alive_connections", "gauge"),
        ("packets_received", "gauge"),
        ("watch_count", "gauge"),
        ("fsynctime", "summary"),
        ("readlatency", "summary"),
        ("updatelatency", "summary"),
        ("snapshottime", "summary"),
        ("sync_processor_batch_size", "summary"),
        ("corral_fdatasync_seconds", "histogram"),
        ("corral_group_commit_records", "histogram"),
        ("corral_append_to_sync_seconds", "histogram"),
        ("corral_snapshot_seconds", "histogram"),
        ("corral_shard_connections", "gauge"),
        ("corral_shard_outstanding_requests", "gauge"),
    ]:
        assert name in f, name
        assert f[name].type == kind, (name, f[name].type)
    shards = {s.labels["shard"] for s in f["corral_shard_connections"].samples}
    assert shards and shards == {s.labels["shard"] for s in f["corral_shard_outstanding_requests"].samples}


@needs_metrics
def test_metrics_move_after_writes(make_client, base):
    before = scrape()
    c = make_client(hosts=FIRST_HOST)
    for i in range(20):
        c.create("%s/n%d" % (base, i), b"x")
        c.get("%s/n%d" % (base, i))
    after = scrape()
    assert sample(after, "znode_count") >= sample(before, "znode_count") + 20
    for fam, name in [
        ("updatelatency", "updatelatency_count"),
        ("readlatency", "readlatency_count"),
        ("corral_append_to_sync_seconds", "corral_append_to_sync_seconds_count"),
    ]:
        assert sample(after, fam, name) >= sample(before, fam, name) + 20, name
    assert sample(after, "fsynctime", "fsynctime_count") > sample(before, "fsynctime", "fsynctime_count")
    syncs = sample(after, "corral_fdatasync_seconds", "corral_fdatasync_seconds_count")
    assert syncs > sample(before, "corral_fdatasync_seconds", "corral_fdatasync_seconds_count")
    inf = sample(after, "corral_fdatasync_seconds", "corral_fdatasync_seconds_bucket", le="+Inf")
    assert inf == syncs
    records = sample(after, "corral_group_commit_records", "corral_group_commit_records_sum")
    assert records >= sample(before, "corral_group_commit_records", "corral_group_commit_records_sum") + 20


@needs_admin
def test_admin_monitor_matches_mntr_keys(make_client, base):
    from test_wire import mntr

    status, ctype, body = fetch(ADMIN_PORT, "/commands/monitor")
    assert status == 200 and ctype.startswith("application/json")
    doc = json.loads(body)
    assert doc["command"] == "monitor" and doc["error"] is None
    text_keys = {k[len("zk_"):] for k in mntr()}
    assert text_keys <= set(doc)
    assert isinstance(doc["znode_count"], int)
    # Server 1 of run.sh --cluster is a participant.
    assert doc["server_state"] in (("leader", "follower") if CLUSTER else ("standalone",))


@needs_admin
@pytest.mark.parametrize(
    "name,keys",
    [
        ("ruok", []),
        ("srvr", ["version", "read_only", "server_stats", "client_response", "node_count"]),
        ("stat", ["version", "read_only", "server_stats", "client_response", "node_count", "connections", "secure_connections"]),
        ("conf", ["client_port", "data_dir", "data_log_dir", "tick_time", "max_client_cnxns",
                  "min_session_timeout", "max_session_timeout", "server_id", "client_port_listen_backlog"]),
        ("cons", ["connections", "secure_connections"]),
        ("envi", ["zookeeper.version", "host.name", "java.version", "os.name", "user.dir"]),
        ("wchs", ["num_connections", "num_paths", "num_total_watches"]),
        ("wchc", ["session_id_to_watched_paths"]),
        ("wchp", ["path_to_session_ids"]),
        ("dump", ["expiry_time_to_session_ids", "session_id_to_ephemeral_paths"]),
        ("isro", ["read_only"]),
        ("dirs", ["datadir_size", "logdir_size"]),
    ],
)
def test_admin_command_fields(name, keys):
    status, _, body = fetch(ADMIN_PORT, "/commands/" + name)
    assert status == 200
    doc = json.loads(body)
    assert doc["error"] is None, doc
    fields = [k for k in doc if k not in ("command", "error")]
    if name == "envi":
        assert set(keys) <= set(fields)
    else:
        assert fields[: len(keys)] == keys


@needs_admin
def test_admin_server_stats_fields():
    doc = json.loads(fetch(ADMIN_PORT, "/commands/server_stats")[2])
    assert set(doc["server_stats"]) >= {
        "packets_sent", "packets_received", "fsync_threshold_exceed_count", "client_response_stats",
        "data_dir_size", "log_dir_size", "server_state", "last_processed_zxid", "outstanding_requests",
        "avg_latency", "max_latency", "min_latency", "num_alive_client_connections", "uptime",
        "auth_failed_count", "non_mtlsremote_conn_count", "non_mtlslocal_conn_count", "provider_null",
    }


@needs_admin
def test_admin_unknown_command():
    status, _, body = fetch(ADMIN_PORT, "/commands/no_such_%s" % uuid.uuid4().hex[:6])
    assert status == 200
    doc = json.loads(body)
    assert doc["error"].startswith("Unknown command: no_such_")


@needs_admin
def test_admin_bad_request_is_400():
    import socket

    with socket.create_connection(("127.0.0.1", int(ADMIN_PORT)), timeout=10) as s:
        s.sendall(b"\x00\x01 not http\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
