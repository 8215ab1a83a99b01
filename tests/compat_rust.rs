//! The Rust `zookeeper-client` crate (written by nobody on this project) against a real
//! Corral server: sessions, watches of every mode, multi, ACLs, sync, ephemerals.
//!
//! Every check runs against a standalone server (one test each) and against the 3 + 1
//! pseudo-cluster of `tests/common/cluster.rs` (`against_the_3_plus_1_cluster`: one cluster,
//! each check under its own root node, the clients given all four servers), which then
//! also kills the leader with SIGKILL under a connected session and restarts it.
//! `CORRAL_CLUSTER_TEST_TARGET=zookeeper` runs the cluster half against Apache ZooKeeper
//! 3.8, to show that it describes ZooKeeper.

mod common;
use common::cluster::TestCluster;
use common::TestServer;
use std::time::{Duration, Instant};
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
const SEQUENTIAL: zk::CreateOptions<'static> =
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
const STEP: Duration = Duration::from_secs(10);

/// Where a check runs: the connect string, the root node its paths live under ("" on a
/// standalone server, which each check has to itself), and for a cluster the
/// `/zookeeper/config` it must show.
struct Target {
    hosts: String,
    root: String,
    cluster_config: Option<String>,
}

impl Target {
    fn standalone(server: &TestServer) -> Target {
        Target {
            hosts: server.hosts(),
            root: String::new(),
            cluster_config: None,
        }
    }

    /// `path` under this check's root.
    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    /// Called before a session reads what another session wrote: in an ensemble the two
    /// may sit on different servers, and ZooKeeper promises a session only its own
    /// order, so the reader syncs first. A standalone server must be current without it.
    async fn catch_up(&self, c: &zk::Client, path: &str) {
        if self.cluster_config.is_some() {
            tokio::time::timeout(STEP, c.sync(path))
                .await
                .expect("sync in time")
                .expect("sync");
        }
    }
}

/// The event (or any future) a watch delivers, within [`STEP`].
async fn within<T>(event: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, event)
        .await
        .expect("the watch fired within STEP")
}

async fn connect(t: &Target) -> zk::Client {
    tokio::time::timeout(STEP, zk::Client::connect(&t.hosts))
        .await
        .expect("connect in time")
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_stat_and_sequential_nodes() {
    let server = TestServer::start("");
    crud(&Target::standalone(&server)).await;
}

async fn crud(t: &Target) {
    let c = connect(t).await;
    let (stat, _) = c.create(&t.at("/app"), b"v1", &OPEN).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    let (data, stat) = c.get_data(&t.at("/app")).await.unwrap();
    assert_eq!(data, b"v1");
    assert_eq!(stat.data_length, 2);
    let stat2 = c.set_data(&t.at("/app"), b"v2", Some(0)).await.unwrap();
    assert_eq!(stat2.version, 1);
    assert!(stat2.mzxid > stat.mzxid);
    assert!(matches!(
        c.set_data(&t.at("/app"), b"v3", Some(0)).await,
        Err(zk::Error::BadVersion)
    ));
    let (_, seq) = c.create(&t.at("/app/s-"), b"", &SEQUENTIAL).await.unwrap();
    assert_eq!(seq.into_i64(), 0);
    let (_, seq) = c.create(&t.at("/app/s-"), b"", &SEQUENTIAL).await.unwrap();
    assert_eq!(seq.into_i64(), 1);
    let mut children = c.list_children(&t.at("/app")).await.unwrap();
    children.sort();
    assert_eq!(children, vec!["s-0000000000", "s-0000000001"]);
    assert!(matches!(
        c.delete(&t.at("/app"), None).await,
        Err(zk::Error::NotEmpty)
    ));
    assert!(matches!(
        c.create(&t.at("/app"), b"", &OPEN).await,
        Err(zk::Error::NodeExists)
    ));
    assert!(matches!(
        c.get_data(&t.at("/missing")).await,
        Err(zk::Error::NoNode)
    ));
    assert_eq!(c.count_descendants_number(&t.at("/app")).await.unwrap(), 2);
    c.sync(&t.at("/app")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_and_persistent_watches_fire_in_order() {
    let server = TestServer::start("");
    watches(&Target::standalone(&server)).await;
}

async fn watches(t: &Target) {
    let c = connect(t).await;
    let writer = connect(t).await;
    c.create(&t.at("/w"), b"", &OPEN).await.unwrap();
    let (_, _, data_watch) = c.get_and_watch_data(&t.at("/w")).await.unwrap();
    let (_, child_watch) = c.list_and_watch_children(&t.at("/w")).await.unwrap();
    // The persistent watch on a session of its own: ZooKeeper 3.8 sends no
    // NodeChildrenChanged to a session whose one-shot child watch shares its path with
    // its persistent recursive watch (docs/compatibility.md, known differences).
    let rc = connect(t).await;
    t.catch_up(&rc, &t.at("/w")).await;
    let mut recursive = rc
        .watch(&t.at("/w"), zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    // A plain persistent watch, also on a session of its own: the node's own data and
    // children changes, every time, not its descendants'.
    let pc = connect(t).await;
    t.catch_up(&pc, &t.at("/w")).await;
    let mut persistent = pc
        .watch(&t.at("/w"), zk::AddWatchMode::Persistent)
        .await
        .unwrap();
    t.catch_up(&writer, &t.at("/w")).await;
    writer.set_data(&t.at("/w"), b"x", None).await.unwrap();
    let ev = within(data_watch.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(ev.path, t.at("/w"));
    let ev = within(recursive.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    let ev = within(persistent.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, t.at("/w").as_str())
    );
    writer.create(&t.at("/w/c"), b"", &OPEN).await.unwrap();
    let ev = within(child_watch.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);
    let ev = within(recursive.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeCreated, t.at("/w/c").as_str())
    );
    let ev = within(persistent.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeChildrenChanged, t.at("/w").as_str())
    );
    // Still there after firing twice; a grandchild is not its business.
    writer.create(&t.at("/w/c/g"), b"", &OPEN).await.unwrap();
    writer.set_data(&t.at("/w"), b"y", None).await.unwrap();
    let ev = within(persistent.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, t.at("/w").as_str())
    );
    let (stat_watch_result, exist_watch) = {
        let (stat, w) = c.check_and_watch_stat(&t.at("/later")).await.unwrap();
        (stat, w)
    };
    assert!(stat_watch_result.is_none());
    writer.create(&t.at("/later"), b"", &OPEN).await.unwrap();
    let ev = within(exist_watch.changed()).await;
    assert_eq!(ev.event_type, zk::EventType::NodeCreated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_is_atomic() {
    let server = TestServer::start("");
    multi(&Target::standalone(&server)).await;
}

async fn multi(t: &Target) {
    let c = connect(t).await;
    let mut w = c.new_multi_writer();
    w.add_create(&t.at("/m"), b"", &OPEN).unwrap();
    w.add_create(&t.at("/m/a"), b"", &OPEN).unwrap();
    w.add_delete(&t.at("/does-not-exist"), None).unwrap();
    match w.commit().await {
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!(index, 2);
            assert_eq!(source, zk::Error::NoNode);
        }
        other => panic!("expected a failed multi, got {other:?}"),
    }
    assert!(c.check_stat(&t.at("/m")).await.unwrap().is_none());
    let mut w = c.new_multi_writer();
    w.add_create(&t.at("/m"), b"", &OPEN).unwrap();
    w.add_create(&t.at("/m/a"), b"1", &OPEN).unwrap();
    w.add_set_data(&t.at("/m/a"), b"2", Some(0)).unwrap();
    w.add_check_version(&t.at("/m"), 0).unwrap();
    let results = w.commit().await.unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(c.get_data(&t.at("/m/a")).await.unwrap().0, b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acls_and_whoami() {
    let server = TestServer::start("");
    acls(&Target::standalone(&server)).await;
}

async fn acls(t: &Target) {
    let owner = connect(t).await;
    owner.auth("digest", b"alice:secret").await.unwrap();
    let acl = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::authed())];
    let creator_all = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    owner
        .create(&t.at("/private"), b"s", &creator_all)
        .await
        .unwrap();
    let (acls, _) = owner.get_acl(&t.at("/private")).await.unwrap();
    assert_eq!(acls.len(), 1);
    assert_eq!(acls[0].scheme(), "digest");
    assert!(acls[0].id().starts_with("alice:"));
    let stranger = connect(t).await;
    t.catch_up(&stranger, &t.at("/private")).await;
    assert!(matches!(
        stranger.get_data(&t.at("/private")).await,
        Err(zk::Error::NoAuth)
    ));
    let users = owner.list_auth_users().await.unwrap();
    assert!(users
        .iter()
        .any(|u| u.scheme() == "digest" && u.user() == "alice"));
    assert!(users.iter().any(|u| u.scheme() == "ip"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemerals_go_with_their_session() {
    let server = TestServer::start("");
    ephemerals(&Target::standalone(&server)).await;
}

async fn ephemerals(t: &Target) {
    let observer = connect(t).await;
    {
        let c = connect(t).await;
        c.create(&t.at("/e"), b"", &EPHEMERAL).await.unwrap();
        // Everything on a standalone server; in a cluster the nodes under this root.
        let prefix = if t.root.is_empty() { "/" } else { &t.root };
        assert_eq!(c.list_ephemerals(prefix).await.unwrap(), vec![t.at("/e")]);
        t.catch_up(&observer, &t.at("/e")).await;
        let (_, watch) = observer.check_and_watch_stat(&t.at("/e")).await.unwrap();
        drop(c); // closes the session
        let ev = within(watch.changed()).await;
        assert_eq!(ev.event_type, zk::EventType::NodeDeleted);
    }
    assert!(observer.check_stat(&t.at("/e")).await.unwrap().is_none());
    let (config, _) = observer.get_config().await.unwrap();
    match &t.cluster_config {
        None => assert!(config.is_empty(), "standalone /zookeeper/config is empty"),
        Some(want) => assert_eq!(String::from_utf8_lossy(&config), want.as_str()),
    }
}

/// Runs `f` (blocking: polls with sleeps) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Retries `op` while the client reconnects (ConnectionLoss and the like), up to `limit`.
async fn retrying<T, F, Fut>(limit: Duration, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, zk::Error>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout(STEP, op()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(e)) if Instant::now() < deadline => {
                assert!(
                    matches!(e, zk::Error::ConnectionLoss | zk::Error::Timeout),
                    "unexpected error while reconnecting: {e:?}"
                );
            }
            Ok(Err(e)) => panic!("still failing after {limit:?}: {e:?}"),
            Err(_) if Instant::now() < deadline => {}
            Err(_) => panic!("no answer within {limit:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every check above against the 3 + 1 pseudo-cluster, each under its own root node;
/// then the leader killed with SIGKILL under a session given all four servers: the
/// session, its ephemeral node and its data watch live on, and the killed server,
/// started again, comes back as a follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_3_plus_1_cluster() {
    let started = Instant::now();
    let mut cluster = TestCluster::start(3, 1);
    blocking(|| cluster.wait_modes(Instant::now() + Duration::from_secs(60)));
    eprintln!("cluster serving after {:?}", started.elapsed());
    let mut target = Target {
        hosts: cluster.hosts(),
        root: String::new(),
        cluster_config: Some(cluster.expected_config()),
    };
    let admin = connect(&target).await;
    for root in ["/crud", "/watches", "/multi", "/acls", "/ephemerals"] {
        admin.create(root, b"", &OPEN).await.unwrap();
        target.root = root.to_string();
        match root {
            "/crud" => crud(&target).await,
            "/watches" => watches(&target).await,
            "/multi" => multi(&target).await,
            "/acls" => acls(&target).await,
            _ => ephemerals(&target).await,
        }
        eprintln!("{root}: done after {:?}", started.elapsed());
    }

    // The leader killed under a live session.
    target.root = "/failover".to_string();
    let c = connect(&target).await;
    c.create(&target.root, b"0", &OPEN).await.unwrap();
    c.create(&target.at("/e"), b"", &EPHEMERAL).await.unwrap();
    // A one-shot data watch: the crate re-registers it (SetWatches) on its new
    // connection. Not a persistent one: zookeeper-client 0.11 re-sends only the
    // one-shot kinds after a reconnect (docs/compatibility.md), against ZooKeeper too.
    let (_, _, data_watch) = c.get_and_watch_data(&target.root).await.unwrap();
    let session = c.session_id();
    let leader = blocking(|| cluster.leader());
    let killed_at = Instant::now();
    cluster.kill9(leader);
    blocking(|| cluster.wait_modes(Instant::now() + Duration::from_secs(60)));
    eprintln!("failover: new leader after {:?}", killed_at.elapsed());
    let root = target.root.clone();
    retrying(Duration::from_secs(30), || c.set_data(&root, b"1", None)).await;
    eprintln!(
        "failover: the session wrote again after {:?}",
        killed_at.elapsed()
    );
    let ev = tokio::time::timeout(STEP, data_watch.changed())
        .await
        .expect("the data watch fires after the failover");
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeDataChanged, root.as_str())
    );
    assert_eq!(c.session_id(), session, "the session lives on");
    let other = connect(&target).await;
    target.catch_up(&other, &target.at("/e")).await;
    let stat = other
        .check_stat(&target.at("/e"))
        .await
        .unwrap()
        .expect("the ephemeral node outlives the leader");
    assert_eq!(stat.ephemeral_owner, session.0);

    cluster.start_node(leader);
    let modes = blocking(|| cluster.wait_modes(Instant::now() + Duration::from_secs(60)));
    assert_eq!(
        modes.get(&leader).map(String::as_str),
        Some("follower"),
        "the killed leader rejoins as a follower: {modes:?}"
    );
    // It serves the tree as it is now.
    let pinned = Target {
        hosts: cluster.client_addr(leader),
        root: String::new(),
        cluster_config: target.cluster_config.clone(),
    };
    let p = connect(&pinned).await;
    pinned.catch_up(&p, &root).await;
    assert_eq!(p.get_data(&root).await.unwrap().0, b"1");
    assert!(p.check_stat(&target.at("/e")).await.unwrap().is_some());
}
