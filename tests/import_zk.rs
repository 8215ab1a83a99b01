//! `corral import-zk` on data written by a real Apache ZooKeeper 3.8 (the Debian package):
//! ZooKeeper runs with a small snapCount so that its directory holds snapshots *and* log
//! records after the newest one; a client builds a varied tree; every node's data, Stat
//! and ACL is recorded from ZooKeeper; ZooKeeper is killed; the directory is imported;
//! a Corral server started on the result must answer the same for every node, and the
//! still-open session's ephemeral must exist and then expire after its timeout.
//!
//! Skipped (with a printed line) when `java` or ZooKeeper's jar is missing. The jar and
//! classpath can be set with `ZK_JAVA_CP`.

mod common;

use common::TestServer;
use corral::client::{Client, ClientConfig, Op, WatchedEvent};
use corral::proto::{acl::digest_id, event, perms, Acl, CreateMode, Stat};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
/// The session whose ephemeral must survive the import and then expire.
const EPHEMERAL_SESSION_TIMEOUT_MS: i32 = 8_000;

fn classpath() -> Option<String> {
    if let Some(cp) = std::env::var("ZK_JAVA_CP").ok().filter(|cp| !cp.is_empty()) {
        return Some(cp);
    }
    if !Path::new(ZK_JAR).exists() {
        return None;
    }
    let mut cp = format!("/etc/zookeeper/conf:{ZK_JAR}");
    for jar in [
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    ] {
        if Path::new(jar).exists() {
            cp.push(':');
            cp.push_str(jar);
        }
    }
    Some(cp)
}

fn java_works() -> bool {
    Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "corral-importzk-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A ZooKeeper process, killed (by its pid) when dropped.
struct ZooKeeper {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl ZooKeeper {
    fn start(cp: &str) -> ZooKeeper {
        let dir = temp_dir("zk");
        let port = free_port();
        let cfg = dir.join("zoo.cfg");
        std::fs::create_dir_all(dir.join("data")).expect("zk data dir");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\nsnapCount=50\n\
                 preAllocSize=64\nextendedTypesEnabled=true\n",
                dir.join("data").display()
            ),
        )
        .expect("write zoo.cfg");
        let log = std::fs::File::create(dir.join("zk.log")).expect("zk log");
        let child = Command::new("java")
            .arg("-cp")
            .arg(cp)
            .arg("-Dzookeeper.extendedTypesEnabled=true")
            .arg("-Dzookeeper.snapCount=50")
            .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
            .arg("-Dzookeeper.root.logger=INFO,CONSOLE")
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn java");
        let mut zk = ZooKeeper { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = zk.child.try_wait() {
                panic!("ZooKeeper exited ({status}): {}", zk.log());
            }
            if ruok(port) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not answer ruok within 30 s: {}",
                zk.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        zk
    }

    fn hosts(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("zk.log")).unwrap_or_default()
    }

    fn version_dir(&self) -> PathBuf {
        self.dir.join("data").join("version-2")
    }

    /// The newest snapshot's zxid.
    fn newest_snapshot_zxid(&self) -> i64 {
        std::fs::read_dir(self.version_dir())
            .expect("list version-2")
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let hex = name.strip_prefix("snapshot.")?;
                i64::from_str_radix(hex, 16).ok()
            })
            .max()
            .unwrap_or(-1)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ruok(port: u16) -> bool {
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"ruok").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out == "imok"
}

fn connect(hosts: &str, timeout_ms: i32) -> Client {
    let config = ClientConfig {
        session_timeout_ms: timeout_ms,
        ..ClientConfig::default()
    };
    let c = Client::connect(hosts, config).expect("connect string");
    assert!(c.wait_connected(Duration::from_secs(10)), "no session");
    c
}

/// Everything a client can see of one node.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    data: Option<Vec<u8>>,
    stat: Stat,
    acl: Vec<Acl>,
}

/// Every node under `/` (the client must be allowed to read them all).
fn record(c: &Client) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let (data, stat) = c.get_data(&path, false).expect("getData");
        let (acl, acl_stat) = c.get_acl(&path).expect("getACL");
        assert_eq!(stat, acl_stat, "{path}: stat moved while recording");
        for child in c.get_children(&path, false).expect("getChildren") {
            stack.push(if path == "/" {
                format!("/{child}")
            } else {
                format!("{path}/{child}")
            });
        }
        out.insert(
            path,
            Seen {
                data: data.map(|d| d.to_vec()),
                stat,
                acl,
            },
        );
    }
    out
}

/// The workload: every kind of node and txn, before and after ZooKeeper's snapshots.
fn build_tree(hosts: &str, c: &Client, eph: &Client) {
    let open = Acl::open_unsafe();
    let create = |path: &str, data: Option<&[u8]>, mode: CreateMode| {
        c.create(path, data, &open, mode).expect(path);
    };
    create("/app", Some(b"root of the app"), CreateMode::Persistent);
    create("/app/config", Some(b"v0"), CreateMode::Persistent);
    create("/app/empty", Some(b""), CreateMode::Persistent);
    create("/app/null", None, CreateMode::Persistent);
    create("/app/a", Some(b"a"), CreateMode::Persistent);
    create("/app/a/b", Some(b"b"), CreateMode::Persistent);
    create(
        "/app/a/b/c",
        Some(&[0u8, 1, 2, 255]),
        CreateMode::Persistent,
    );
    create("/app/seq", None, CreateMode::Persistent);
    for i in 0..4 {
        c.create(
            "/app/seq/item-",
            Some(format!("{i}").as_bytes()),
            &open,
            CreateMode::PersistentSequential,
        )
        .expect("sequential");
    }
    // Digest ACLs: one node readable by user only, one read-only for the world.
    let user = Acl::new(perms::ALL, "digest", &digest_id("user:secret"));
    c.create(
        "/app/secret",
        Some(b"hidden"),
        std::slice::from_ref(&user),
        CreateMode::Persistent,
    )
    .expect("digest acl");
    c.create(
        "/app/public",
        Some(b"read me"),
        &[Acl::new(perms::READ, "world", "anyone"), user],
        CreateMode::Persistent,
    )
    .expect("mixed acl");
    create("/app/cont", None, CreateMode::Container);
    create(
        "/app/cont/child",
        Some(b"keeps the container"),
        CreateMode::Persistent,
    );
    c.create2(
        "/app/ttl",
        Some(b"lives an hour"),
        &open,
        CreateMode::PersistentWithTtl,
        Some(3_600_000),
    )
    .expect("ttl node");
    eph.create("/app/eph", Some(b"owned"), &open, CreateMode::Ephemeral)
        .expect("ephemeral");
    eph.create(
        "/app/eph-seq-",
        None,
        &open,
        CreateMode::EphemeralSequential,
    )
    .expect("ephemeral sequential");
    // A session that ends: its ephemeral goes with it (closeSession txn).
    let short = connect(hosts, 30_000);
    short
        .create("/app/gone", None, &open, CreateMode::Ephemeral)
        .expect("ephemeral of a closed session");
    short.close().expect("close");

    // Enough txns for ZooKeeper to snapshot (snapCount 50) at least once.
    for i in 0..70 {
        c.set_data("/app/config", Some(format!("v{}", i + 1).as_bytes()), -1)
            .expect("setData");
    }

    // After the snapshot: deletes, a multi, a failed multi, setACL, more sequentials.
    for i in 0..3 {
        create(&format!("/app/tmp{i}"), Some(b"t"), CreateMode::Persistent);
    }
    c.delete("/app/tmp0", -1).expect("delete");
    c.delete("/app/seq/item-0000000001", -1)
        .expect("delete sequential");
    c.multi(&[
        Op::Create {
            path: "/app/m1".into(),
            data: Some(b"from a multi".to_vec()),
            acl: open.clone(),
            mode: CreateMode::Persistent,
            ttl_ms: None,
        },
        Op::SetData {
            path: "/app/a".into(),
            data: Some(b"a2".to_vec()),
            version: 0,
        },
        Op::Delete {
            path: "/app/tmp1".into(),
            version: -1,
        },
        Op::Check {
            path: "/app/a/b".into(),
            version: 0,
        },
    ])
    .expect("multi");
    let failed = c.multi(&[
        Op::Create {
            path: "/app/never".into(),
            data: None,
            acl: open.clone(),
            mode: CreateMode::Persistent,
            ttl_ms: None,
        },
        Op::Check {
            path: "/app/a".into(),
            version: 42,
        },
    ]);
    assert!(failed.is_err(), "the check must fail the multi");
    c.set_acl(
        "/app/null",
        &[Acl::new(perms::READ | perms::WRITE, "world", "anyone")],
        0,
    )
    .expect("setACL");
    c.set_data("/app/empty", None, -1).expect("setData null");
    c.create(
        "/app/seq/item-",
        Some(b"after"),
        &open,
        CreateMode::PersistentSequential,
    )
    .expect("sequential after deletes");
}

#[test]
fn import_zk_data_from_a_real_zookeeper() {
    let started = Instant::now();
    let (Some(cp), true) = (classpath(), java_works()) else {
        println!("SKIPPED import_zk_data_from_a_real_zookeeper: java or {ZK_JAR} missing (apt-get install zookeeper)");
        return;
    };
    let mut zk = ZooKeeper::start(&cp);
    let c = connect(&zk.hosts(), 30_000);
    c.add_auth("digest", b"user:secret");
    let eph = connect(&zk.hosts(), EPHEMERAL_SESSION_TIMEOUT_MS);
    let eph_session = eph.session_id();
    build_tree(&zk.hosts(), &c, &eph);
    // Log records must follow the newest snapshot: write until they do (a snapshot can
    // land on the very last txn). ZooKeeper starts its snapshot thread before it syncs and
    // acknowledges the txn that triggered it, so by the reply the file is there.
    for attempt in 0.. {
        assert!(attempt < 20, "ZooKeeper never left txns after a snapshot");
        c.set_data("/app/config", Some(b"one more"), -1)
            .expect("setData");
        let newest = zk.newest_snapshot_zxid();
        if newest > 0 && newest < c.last_zxid() {
            break;
        }
    }
    let expected = record(&c);
    assert!(expected.len() > 20, "the tree is too small: {expected:?}");
    assert!(expected.contains_key("/app/eph"));
    assert!(!expected.contains_key("/app/gone"));
    let eph_seq: Vec<String> = expected
        .keys()
        .filter(|p| p.starts_with("/app/eph-seq-"))
        .cloned()
        .collect();
    assert_eq!(eph_seq.len(), 1);
    c.disconnect();
    zk.kill();
    eph.disconnect();

    // Import.
    let out = temp_dir("corral");
    let data = out.join("data");
    let run = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("import-zk")
        .arg(zk.dir.join("data"))
        .arg(&data)
        .output()
        .expect("run import-zk");
    let summary = String::from_utf8_lossy(&run.stdout).into_owned();
    println!("{summary}");
    assert!(
        run.status.success(),
        "import-zk failed: {}{}",
        summary,
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !summary.contains("snapshot.0 "),
        "a snapshot after the first was expected: {summary}"
    );
    let txns: usize = summary
        .lines()
        .find_map(|l| l.strip_prefix("txns: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a txns line");
    assert!(txns > 0, "txns after the snapshot were expected: {summary}");
    assert!(summary.contains("digest: matches ZooKeeper's"), "{summary}");
    assert!(summary.contains("sessions: "), "{summary}");

    // A second import into the same place is refused, and --force replaces it.
    let again = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("import-zk")
        .arg(zk.dir.join("data"))
        .arg(&data)
        .output()
        .expect("run import-zk");
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("--force") && err.lines().count() == 1, "{err}");
    let forced = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["import-zk", "--force"])
        .arg(zk.dir.join("data").join("version-2"))
        .arg(&data)
        .output()
        .expect("run import-zk --force");
    assert!(forced.status.success(), "{forced:?}");

    // Corral on the result. The harness writes its own dataDir; the later line wins.
    let server = TestServer::start(&format!("dataDir={}", data.display()));
    let (events_tx, events) = mpsc::channel();
    let events_tx = Mutex::new(events_tx);
    let corral = Client::connect(
        &server.hosts(),
        ClientConfig {
            watcher: Some(Arc::new(move |e: &WatchedEvent| {
                let _ = events_tx.lock().map(|t| t.send(e.clone()));
            })),
            ..ClientConfig::default()
        },
    )
    .expect("connect string");
    assert!(corral.wait_connected(Duration::from_secs(10)), "no session");
    corral.add_auth("digest", b"user:secret");
    let got = record(&corral);
    let mut mismatches = Vec::new();
    for (path, want) in &expected {
        match got.get(path) {
            None => mismatches.push(format!("{path}: missing")),
            Some(have) if path == "/zookeeper/config" => {
                // Its data is the running config's; the rest must match.
                if (have.stat.czxid, have.stat.version, &have.acl)
                    != (want.stat.czxid, want.stat.version, &want.acl)
                {
                    mismatches.push(format!("{path}: {want:?} != {have:?}"));
                }
            }
            Some(have) if have != want => mismatches.push(format!(
                "{path}:\n  zookeeper {want:?}\n  corral    {have:?}"
            )),
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|p| !expected.contains_key(*p)) {
        mismatches.push(format!("{path}: only in Corral"));
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        got["/app/eph"].stat.ephemeral_owner, eph_session,
        "the ephemeral keeps its owner"
    );

    // The imported session is gone with its client: its ephemerals expire after the
    // timeout (plus a tick), as after a ZooKeeper restart.
    let deadline =
        Instant::now() + Duration::from_millis(EPHEMERAL_SESSION_TIMEOUT_MS as u64 + 8_000);
    let mut watched: Vec<String> = vec!["/app/eph".to_string(), eph_seq[0].clone()];
    for p in &watched {
        assert!(corral.exists(p, true).expect("exists").is_some(), "{p}");
    }
    while !watched.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let e = events
            .recv_timeout(left)
            .expect("the imported session's ephemerals did not expire in time");
        if e.event_type == event::NODE_DELETED {
            watched.retain(|p| Some(p.as_str()) != e.path.as_deref());
        }
    }
    assert!(corral.exists("/app/eph", false).expect("exists").is_none());
    assert!(corral.exists("/app/ttl", false).expect("exists").is_some());
    assert!(corral.exists("/app/cont", false).expect("exists").is_some());
    corral.disconnect();
    drop(server);
    let _ = std::fs::remove_dir_all(&out);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
