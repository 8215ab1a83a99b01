//! `mntr` against ZooKeeper 3.8's key list, the Prometheus endpoint and the admin server,
//! over real sockets. (The Prometheus text is also read by the official Python parser in
//! `tests/compat/test_admin_metrics.py`, run by `tests/compat/run.sh corral`.)

mod common;

use common::TestServer;
use corral::client::{Client, ClientConfig};
use corral::proto::{Acl, CreateMode};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

struct Ports {
    admin: SocketAddr,
    metrics: SocketAddr,
}

/// A server with both HTTP endpoints on free loopback ports and snapshots every few writes.
fn start() -> (TestServer, Ports) {
    let (admin, metrics) = (free_port(), free_port());
    let server = TestServer::start(&format!(
        "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin}\n\
         metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics}\nsnapCount=10\n"
    ));
    let ports = Ports {
        admin: format!("127.0.0.1:{admin}").parse().expect("addr"),
        metrics: format!("127.0.0.1:{metrics}").parse().expect("addr"),
    };
    (server, ports)
}

/// Sends raw bytes, returns (status, head, body) of the answer.
fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(request).expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the answer");
    let text = String::from_utf8(out).expect("utf-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, head.to_string(), body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    raw_http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes(),
    )
}

/// Sample name (with labels) -> value, from the Prometheus text (line level; the full
/// parser check is the Python test).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn write_some(server: &TestServer, tag: &str, n: usize) {
    let client = Client::connect(&server.hosts(), ClientConfig::default()).expect("connect");
    assert!(client.wait_connected(Duration::from_secs(10)));
    for i in 0..n {
        client
            .create(
                &format!("/{tag}-{i}"),
                Some(b"data"),
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .expect("create");
        client
            .get_data(&format!("/{tag}-{i}"), false)
            .expect("read");
    }
}

#[test]
fn mntr_prints_every_zookeeper_3_8_key() {
    let (server, _) = start();
    let fixture = include_str!("fixtures/zk38_mntr_keys.txt");
    let mntr = server.four_letter("mntr").expect("mntr answer");
    let keys: Vec<&str> = mntr.lines().filter_map(|l| l.split('\t').next()).collect();
    let missing: Vec<&str> = fixture
        .lines()
        .filter(|k| !k.is_empty() && !keys.contains(k))
        .collect();
    assert!(missing.is_empty(), "missing ZooKeeper keys: {missing:?}");
    assert_eq!(fixture.lines().count(), 485);
    for own in [
        "zk_corral_shards",
        "zk_corral_fdatasync_us_p99",
        "zk_corral_group_commit_records_max",
        "zk_corral_snapshot_us_count",
        "zk_corral_shard0_connections",
        "zk_corral_shard1_outstanding_requests",
    ] {
        assert!(keys.contains(&own), "{own} missing");
    }
    // Same order as ZooKeeper for its keys.
    let ours: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| fixture.lines().any(|f| f == *k))
        .collect();
    let theirs: Vec<&str> = fixture.lines().filter(|k| !k.is_empty()).collect();
    assert_eq!(ours, theirs);
}

#[test]
fn metrics_move_after_writes() {
    let (server, ports) = start();
    let (status, head, body) = get(ports.metrics, "/metrics");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let before = samples(&body);
    for name in [
        "znode_count",
        "packets_received",
        "num_alive_connections",
        "fsynctime_count",
        "fsynctime{quantile=\"0.5\"}",
        "readlatency_count",
        "updatelatency_count",
        "snapshottime_count",
        "sync_processor_batch_size_sum",
        "corral_fdatasync_seconds_count",
        "corral_fdatasync_seconds_bucket{le=\"+Inf\"}",
        "corral_group_commit_records_sum",
        "corral_append_to_sync_seconds_count",
        "corral_snapshot_seconds_count",
        "corral_shard_connections{shard=\"0\"}",
        "corral_shard_outstanding_requests{shard=\"1\"}",
    ] {
        assert!(before.contains_key(name), "{name} missing");
    }
    write_some(&server, "m", 25);
    let (_, _, body) = get(ports.metrics, "/metrics");
    let after = samples(&body);
    let grew = |name: &str, by: f64| {
        let (b, a) = (before[name], after[name]);
        assert!(a >= b + by, "{name}: {b} -> {a}");
    };
    grew("znode_count", 25.0);
    grew("updatelatency_count", 25.0);
    grew("readlatency_count", 25.0);
    grew("fsynctime_count", 1.0);
    grew("corral_fdatasync_seconds_count", 1.0);
    grew("corral_group_commit_records_sum", 25.0);
    grew("corral_append_to_sync_seconds_count", 25.0);
    // snapCount=10: 25 writes roll at least one snapshot.
    grew("snapshottime_count", 1.0);
    grew("corral_snapshot_seconds_count", 1.0);
    assert!(after["corral_fdatasync_seconds_sum"] > 0.0);
    // Buckets are cumulative and end at the count.
    let le = |b: &str| after[&format!("corral_fdatasync_seconds_bucket{{le=\"{b}\"}}")];
    assert!(le("0.001") <= le("0.01") && le("0.01") <= le("+Inf"));
    assert_eq!(le("+Inf"), after["corral_fdatasync_seconds_count"]);
    assert_eq!(get(ports.metrics, "/other").0, 404);
}

/// Top-level keys of one of the admin server's JSON objects, in order (the outputter
/// writes one `"key" : value` per line, two spaces deep).
fn top_keys(json: &str) -> Vec<String> {
    json.lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once("\" : ").map(|(k, _)| k.to_string()))
        .collect()
}

#[test]
fn admin_commands_answer_with_zookeepers_fields() {
    let (server, ports) = start();
    write_some(&server, "a", 3);
    // Field names and order of ZooKeeper 3.8's admin commands (read from a 3.8.0 server).
    let expected: &[(&str, &[&str])] = &[
        ("ruok", &["command", "error"]),
        (
            "srvr",
            &[
                "version",
                "read_only",
                "server_stats",
                "client_response",
                "node_count",
                "command",
                "error",
            ],
        ),
        (
            "stats",
            &[
                "version",
                "read_only",
                "server_stats",
                "client_response",
                "node_count",
                "connections",
                "secure_connections",
                "command",
                "error",
            ],
        ),
        (
            "conf",
            &[
                "client_port",
                "data_dir",
                "data_log_dir",
                "tick_time",
                "max_client_cnxns",
                "min_session_timeout",
                "max_session_timeout",
                "server_id",
                "client_port_listen_backlog",
                "command",
                "error",
            ],
        ),
        (
            "cons",
            &["connections", "secure_connections", "command", "error"],
        ),
        ("dirs", &["datadir_size", "logdir_size", "command", "error"]),
        (
            "dump",
            &[
                "expiry_time_to_session_ids",
                "session_id_to_ephemeral_paths",
                "command",
                "error",
            ],
        ),
        ("gtmk", &["tracemask", "command", "error"]),
        ("isro", &["read_only", "command", "error"]),
        (
            "wchs",
            &[
                "num_connections",
                "num_paths",
                "num_total_watches",
                "command",
                "error",
            ],
        ),
        ("wchc", &["session_id_to_watched_paths", "command", "error"]),
        ("wchp", &["path_to_session_ids", "command", "error"]),
        ("hash", &["digests", "command", "error"]),
        ("lsnp", &["zxid", "timestamp", "command", "error"]),
        ("zabstate", &["voting", "zabstate", "command", "error"]),
        ("nosuch", &["error", "command"]),
    ];
    for (name, keys) in expected {
        let (status, head, body) = get(ports.admin, &format!("/commands/{name}"));
        assert_eq!(status, 200, "{name}: {head}");
        assert!(head.contains("Content-Type: application/json"), "{head}");
        assert_eq!(top_keys(&body), *keys, "{name}: {body}");
    }
    let (_, _, body) = get(ports.admin, "/commands/nosuch");
    assert!(
        body.contains("\"error\" : \"Unknown command: nosuch\""),
        "{body}"
    );
    let (_, _, body) = get(ports.admin, "/commands/ruok");
    assert!(body.contains("\"command\" : \"ruok\""), "{body}");
    assert!(body.contains("\"error\" : null"), "{body}");
    // monitor carries every mntr key, without the zk_ prefix, typed.
    let (_, _, body) = get(ports.admin, "/commands/mntr");
    let keys = top_keys(&body);
    for k in include_str!("fixtures/zk38_mntr_keys.txt").lines() {
        let k = k.trim_start_matches("zk_");
        assert!(keys.iter().any(|x| x == k), "monitor lacks {k}");
    }
    assert!(body.contains("\"server_state\" : \"standalone\""), "{body}");
    assert!(body.contains("\"command\" : \"monitor\""), "{body}");
    let (status, _, body) = get(ports.admin, "/commands");
    assert_eq!(status, 200);
    assert!(
        body.contains("<a href=\"/commands/monitor\">monitor</a>"),
        "{body}"
    );
    let (status, _, body) = get(ports.admin, "/commands/set_trace_mask?traceMask=12");
    assert_eq!(status, 200);
    assert!(body.contains("\"tracemask\" : 12"), "{body}");
    assert_eq!(get(ports.admin, "/elsewhere").0, 404);
}

#[test]
fn bad_http_is_answered_400_and_the_server_lives_on() {
    let (mut server, ports) = start();
    for addr in [ports.admin, ports.metrics] {
        let (status, _, _) = raw_http(addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
        assert_eq!(status, 400);
        let (status, _, _) = raw_http(addr, b"GET no-slash HTTP/1.1\r\n\r\n");
        assert_eq!(status, 400);
        let mut huge = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        huge.resize(20_000, b'a');
        let (status, _, _) = raw_http(addr, &huge);
        assert_eq!(status, 400);
        let (status, head, _) =
            raw_http(addr, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(status, 405, "{head}");
        // A client that connects and goes silent is closed by the read timeout, and other
        // requests are served meanwhile.
        let idle = TcpStream::connect(addr).expect("connect");
        let (status, _, _) = raw_http(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(status == 200 || status == 404, "{status}");
        drop(idle);
    }
    assert!(server.is_running());
    assert_eq!(server.four_letter("ruok").as_deref(), Some("imok"));
}

#[test]
fn admin_port_in_use_is_logged_and_the_server_runs() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut server = TestServer::start(&format!(
        "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}\n"
    ));
    assert!(server.is_running());
    assert!(
        server.log().contains("problem starting the admin server"),
        "{}",
        server.log()
    );
}
