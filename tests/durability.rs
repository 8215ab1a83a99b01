//! Acknowledged writes survive kill -9 of a real server process (standalone), and so do
//! sessions: a resumed session keeps its ephemerals, a dead one expires them.

mod common;
use common::TestServer;
use std::time::Duration;
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
const STEP: Duration = Duration::from_secs(15);

async fn connect(hosts: &str) -> zk::Client {
    tokio::time::timeout(STEP, zk::Client::connect(hosts))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// The `snapshot.*` files in a `version-2` directory.
fn snapshot_count(version_2: &std::path::Path) -> usize {
    std::fs::read_dir(version_2)
        .expect("version-2")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("snapshot."))
        .count()
}

/// Waits for writer tasks, a minute at most for each.
async fn join_writers(writers: Vec<tokio::task::JoinHandle<()>>) {
    for h in writers {
        tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .expect("writers finish")
            .expect("writer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    // A small snapCount so that recovery goes through a snapshot plus the log after it.
    let mut server = TestServer::start("snapCount=50");
    let hosts = server.hosts();
    let mut acknowledged = Vec::new();
    {
        let c = connect(&hosts).await;
        c.create("/d", b"", &OPEN).await.unwrap();
        for i in 0..200 {
            let path = format!("/d/n{i}");
            c.create(&path, format!("v{i}").as_bytes(), &OPEN)
                .await
                .unwrap();
            acknowledged.push(path);
        }
        c.set_data("/d/n7", b"changed", None).await.unwrap();
        c.delete("/d/n8", None).await.unwrap();
    }
    server.crash_and_restart();
    let c = connect(&hosts).await;
    let mut children = c.list_children("/d").await.unwrap();
    children.sort();
    assert_eq!(children.len(), 199);
    assert_eq!(c.get_data("/d/n7").await.unwrap().0, b"changed");
    assert_eq!(c.get_data("/d/n199").await.unwrap().0, b"v199");
    assert!(c.check_stat("/d/n8").await.unwrap().is_none());
    // New writes continue after the recovered zxid.
    let (stat, _) = c.create("/after", b"", &OPEN).await.unwrap();
    assert!(stat.czxid > 200, "zxid continues: {}", stat.czxid);
    let snapshots = snapshot_count(&server.dir.join("data/version-2"));
    assert!(snapshots >= 1, "snapCount=50 took a snapshot");
}

/// The server as a small host runs it: the client sessions on the ZAB executor
/// (`corral.shards=0`, the default with 2 cores or fewer) and a relative `dataDir`, as in
/// the embedded default config (`./data`), which once failed the first log sync
/// (glommio opened the log directory relative to no directory: EBADF). Writes, a watch,
/// snapshots and kill -9 all go through the one executor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_executor_and_a_relative_data_dir_keep_acknowledged_writes() {
    let mut server = TestServer::start_relative("corral.shards=0\nsnapCount=40");
    let hosts = server.hosts();
    {
        let c = connect(&hosts).await;
        c.create("/r", b"", &OPEN).await.unwrap();
        let (_, _, watch) = c.get_and_watch_data("/r").await.unwrap();
        for i in 0..120 {
            c.create(&format!("/r/n{i}"), format!("v{i}").as_bytes(), &OPEN)
                .await
                .unwrap();
        }
        c.set_data("/r", b"done", None).await.unwrap();
        let event = tokio::time::timeout(STEP, watch.changed())
            .await
            .expect("the watch fires in time");
        assert_eq!(event.event_type, zk::EventType::NodeDataChanged);
    }
    let envi = server.four_letter("envi").unwrap_or_default();
    assert!(envi.contains("corral.shards=0"), "{envi}");
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", server.pid()))
        .expect("the server's threads")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect();
    assert!(threads.iter().any(|t| t.starts_with("zab")), "{threads:?}");
    assert!(
        !threads.iter().any(|t| t.starts_with("shard")),
        "no shard executor: {threads:?}"
    );
    let version_2 = server.dir.join("data/version-2");
    assert!(
        version_2.join("log.1").exists(),
        "the log is under the server's working directory"
    );
    let snapshots = snapshot_count(&version_2);
    assert!(
        snapshots >= 1,
        "snapCount=40 took a snapshot on the one executor"
    );
    server.crash_and_restart();
    let c = connect(&server.hosts()).await;
    assert_eq!(c.get_data("/r").await.unwrap().0, b"done");
    assert_eq!(c.get_data("/r/n119").await.unwrap().0, b"v119");
    assert_eq!(c.get_children("/r").await.unwrap().0.len(), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_their_ephemerals_survive_a_restart_then_expire() {
    let mut server =
        TestServer::start("tickTime=500\nminSessionTimeout=1000\nmaxSessionTimeout=2000");
    let hosts = server.hosts();
    let c = zk::Client::connector()
        .with_session_timeout(Duration::from_millis(2000))
        .connect(&hosts);
    let c = tokio::time::timeout(STEP, c).await.unwrap().unwrap();
    c.create("/e", b"", &EPHEMERAL).await.unwrap();
    drop(c);
    // The client is gone (its close may or may not have reached the server): either way
    // the ephemeral is gone soon after the restart, never kept forever.
    server.crash_and_restart();
    let observer = connect(&hosts).await;
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if observer.check_stat("/e").await.unwrap().is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ephemeral outlived its session"
        );
        let (_, w) = observer.check_and_watch_stat("/e").await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(1), w.changed()).await;
    }
}

/// kill -9 in the middle of a write load, at several points: every acknowledged create is
/// there after the restart, and each writer's surviving creates are a prefix of what it
/// sent (nothing unacknowledged appears out of order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_no_acknowledged_write() {
    const WRITERS: usize = 4;
    const WRITES_MAX: usize = 5_000;
    let mut server = TestServer::start("");
    let hosts = server.hosts();
    {
        let c = connect(&hosts).await;
        c.create("/load", b"", &OPEN).await.unwrap();
    }
    for (round, kill_after_ms) in [150u64, 400, 50].into_iter().enumerate() {
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let hosts = hosts.clone();
            writers.push(tokio::spawn(async move {
                let c = connect(&hosts).await;
                let mut acked = 0usize;
                for i in 0..WRITES_MAX {
                    let path = format!("/load/r{round}-w{w}-{i:06}");
                    match c.create(&path, b"x", &OPEN).await {
                        Ok(_) => acked = i + 1,
                        Err(_) => break,
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        server.crash_and_restart();
        let mut acked = Vec::new();
        for h in writers {
            acked.push(tokio::time::timeout(STEP, h).await.unwrap().unwrap());
        }
        let c = connect(&hosts).await;
        let children = c.list_children("/load").await.unwrap();
        for (w, acked) in acked.iter().enumerate() {
            let prefix = format!("r{round}-w{w}-");
            let mut present: Vec<usize> = children
                .iter()
                .filter_map(|n| n.strip_prefix(&prefix)?.parse().ok())
                .collect();
            present.sort_unstable();
            // A prefix of the writer's sequence: 0..n with no gap...
            assert!(
                present.iter().enumerate().all(|(i, n)| i == *n),
                "round {round} writer {w}: gap in {present:?}"
            );
            // ...holding every acknowledged create, plus at most the one in flight.
            assert!(
                present.len() >= *acked,
                "round {round} writer {w}: acked {acked}, found {}",
                present.len()
            );
            assert!(
                present.len() <= acked + 1,
                "round {round} writer {w}: acked {acked}, found {}",
                present.len()
            );
        }
    }
}

/// Snapshots taken while writes go on (fuzzy: a few nodes per step, here 4) plus the log
/// after them rebuild exactly the tree the server had: the same data and the same Stat
/// (versions, cversion, pzxid) for every node, after creates, updates and deletes that
/// reuse names while the walks were running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzy_snapshots_under_churn_recover_the_exact_tree() {
    const WRITERS: usize = 4;
    const KEYS: usize = 12;
    const OPS_PER_WRITER: usize = 600;
    let mut server = TestServer::start("snapCount=60\ncorral.snapshot.stepNodes=4");
    let hosts = server.hosts();
    {
        let c = connect(&hosts).await;
        c.create("/fz", b"", &OPEN).await.unwrap();
        for w in 0..WRITERS {
            c.create(&format!("/fz/w{w}"), b"", &OPEN).await.unwrap();
        }
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let hosts = hosts.clone();
        writers.push(tokio::spawn(async move {
            let c = connect(&hosts).await;
            let mut rng: u64 = 0x9e37_79b9 + w as u64;
            let mut present = [false; KEYS];
            for i in 0..OPS_PER_WRITER {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let k = (rng % KEYS as u64) as usize;
                let path = format!("/fz/w{w}/k{k}");
                let data = format!("w{w}-{i}");
                if !present[k] {
                    c.create(&path, data.as_bytes(), &OPEN).await.unwrap();
                    present[k] = true;
                } else if rng.is_multiple_of(3) {
                    c.delete(&path, None).await.unwrap();
                    present[k] = false;
                } else {
                    c.set_data(&path, data.as_bytes(), None).await.unwrap();
                }
            }
        }));
    }
    join_writers(writers).await;
    async fn dump(c: &zk::Client) -> Vec<(String, Vec<u8>, zk::Stat)> {
        let mut out = Vec::new();
        let mut stack = vec!["/fz".to_string()];
        while let Some(p) = stack.pop() {
            let (data, stat) = c.get_data(&p).await.unwrap();
            for child in c.list_children(&p).await.unwrap() {
                stack.push(format!("{p}/{child}"));
            }
            out.push((p, data, stat));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
    let before = dump(&connect(&hosts).await).await;
    let snapshots = snapshot_count(&server.dir.join("data/version-2"));
    assert!(
        snapshots >= 5,
        "snapCount=60 over ~2400 writes took {snapshots} snapshots"
    );
    server.crash_and_restart();
    let after = dump(&connect(&hosts).await).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "node differs after recovery");
    }
}

/// `corral purge -n 3` keeps the newest three snapshots and the logs they need, and the
/// server recovers every write from what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_keeps_what_recovery_needs() {
    // Small segments (64 KiB) and 1 KiB values: the 150 creates fill a few, and the log
    // does not roll at a snapshot, so the oldest snapshots' segments are the ones to go.
    let mut server = TestServer::start("snapCount=20\npreAllocSize=64");
    let hosts = server.hosts();
    let value = vec![b'v'; 1024];
    {
        let c = connect(&hosts).await;
        c.create("/p", b"", &OPEN).await.unwrap();
        for i in 0..150 {
            c.create(&format!("/p/n{i}"), &value, &OPEN).await.unwrap();
        }
    }
    // Stopped first, so that no snapshot still being taken lands after the purge and the
    // counts below are exact. The kill may land mid-snapshot: its `snapshot.<zxid>.tmp` is
    // not a snapshot (purge ignores it, the next start removes it), so it is not counted.
    server.crash();
    let snap_dir = server.dir.join("data/version-2");
    let count = |prefix: &str| {
        std::fs::read_dir(&snap_dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(prefix) && !name.ends_with(".tmp"))
            .count()
    };
    assert!(count("snapshot.") > 3, "several snapshots to purge");
    let logs_before = count("log.");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["purge", "-n", "3"])
        .arg(server.dir.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count("snapshot."), 3);
    assert!(count("log.") < logs_before, "old segments removed");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["purge", "-n", "2"])
        .arg(server.dir.join("data"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    server.restart();
    let c = connect(&hosts).await;
    assert_eq!(c.list_children("/p").await.unwrap().len(), 150);
}

/// With forceSync=no a synced log is not a durable one, so the server copies each snapshot in
/// one step as its walk starts, before any input of that turn changes the tree: every
/// snapshot is exact at its zxid, and no node in it shows a change above that zxid. (The
/// pipelined loop once took that step after the turn's inputs: about one snapshot in forty
/// then showed a later write.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_without_fsync_are_exact_at_their_zxid() {
    const WRITERS: usize = 8;
    const SETS_PER_WRITER: usize = 250;
    let mut server = TestServer::start("forceSync=no\nsnapCount=20");
    let hosts = server.hosts();
    {
        let c = connect(&hosts).await;
        c.create("/nf", b"", &OPEN).await.unwrap();
        for w in 0..WRITERS {
            c.create(&format!("/nf/w{w}"), b"", &OPEN).await.unwrap();
        }
    }
    // Several sessions writing at once, so that inputs arrive while a batch is on its way.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let hosts = hosts.clone();
        writers.push(tokio::spawn(async move {
            let c = connect(&hosts).await;
            for i in 0..SETS_PER_WRITER {
                c.set_data(&format!("/nf/w{w}"), format!("{i}").as_bytes(), None)
                    .await
                    .unwrap();
            }
        }));
    }
    join_writers(writers).await;
    server.crash();
    let snapshots =
        corral::storage::snapshot::list_snapshots(&server.dir.join("data/version-2")).unwrap();
    assert!(
        snapshots.len() >= 20,
        "a snapshot every 20 writes or so: {}",
        snapshots.len()
    );
    for (zxid, path) in snapshots {
        let file = corral::storage::snapshot::SnapshotFile::read(&path).unwrap();
        for node in file.archived().nodes.iter() {
            let newest = node
                .czxid
                .to_native()
                .max(node.mzxid.to_native())
                .max(node.pzxid.to_native());
            assert!(
                newest <= zxid,
                "{}: {} changed at {newest:#x}, after the snapshot's {zxid:#x}",
                path.display(),
                node.path
            );
        }
    }
}
