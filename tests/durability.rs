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
    let snapshots = std::fs::read_dir(server.dir.join("data/version-2"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("snapshot."))
        .count();
    assert!(snapshots >= 1, "snapCount=50 took a snapshot");
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
