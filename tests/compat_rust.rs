//! The Rust `zookeeper-client` crate (written by nobody on this project) against a real
//! Corral server: sessions, watches of every mode, multi, ACLs, sync, ephemerals.

mod common;
use common::TestServer;
use std::time::Duration;
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
const SEQUENTIAL: zk::CreateOptions<'static> =
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
const STEP: Duration = Duration::from_secs(10);

async fn connect(server: &TestServer) -> zk::Client {
    tokio::time::timeout(STEP, zk::Client::connect(&server.hosts()))
        .await
        .expect("connect in time")
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_stat_and_sequential_nodes() {
    let server = TestServer::start("");
    let c = connect(&server).await;
    let (stat, _) = c.create("/app", b"v1", &OPEN).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    let (data, stat) = c.get_data("/app").await.unwrap();
    assert_eq!(data, b"v1");
    assert_eq!(stat.data_length, 2);
    let stat2 = c.set_data("/app", b"v2", Some(0)).await.unwrap();
    assert_eq!(stat2.version, 1);
    assert!(stat2.mzxid > stat.mzxid);
    assert!(matches!(
        c.set_data("/app", b"v3", Some(0)).await,
        Err(zk::Error::BadVersion)
    ));
    let (_, seq) = c.create("/app/s-", b"", &SEQUENTIAL).await.unwrap();
    assert_eq!(seq.into_i64(), 0);
    let (_, seq) = c.create("/app/s-", b"", &SEQUENTIAL).await.unwrap();
    assert_eq!(seq.into_i64(), 1);
    let mut children = c.list_children("/app").await.unwrap();
    children.sort();
    assert_eq!(children, vec!["s-0000000000", "s-0000000001"]);
    assert!(matches!(
        c.delete("/app", None).await,
        Err(zk::Error::NotEmpty)
    ));
    assert!(matches!(
        c.create("/app", b"", &OPEN).await,
        Err(zk::Error::NodeExists)
    ));
    assert!(matches!(
        c.get_data("/missing").await,
        Err(zk::Error::NoNode)
    ));
    assert_eq!(c.count_descendants_number("/app").await.unwrap(), 2);
    c.sync("/app").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_and_persistent_watches_fire_in_order() {
    let server = TestServer::start("");
    let c = connect(&server).await;
    let writer = connect(&server).await;
    c.create("/w", b"", &OPEN).await.unwrap();
    let (_, _, data_watch) = c.get_and_watch_data("/w").await.unwrap();
    let (_, child_watch) = c.list_and_watch_children("/w").await.unwrap();
    let mut recursive = c
        .watch("/w", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    writer.set_data("/w", b"x", None).await.unwrap();
    let ev = tokio::time::timeout(STEP, data_watch.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    assert_eq!(ev.path, "/w");
    let ev = tokio::time::timeout(STEP, recursive.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, zk::EventType::NodeDataChanged);
    writer.create("/w/c", b"", &OPEN).await.unwrap();
    let ev = tokio::time::timeout(STEP, child_watch.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, zk::EventType::NodeChildrenChanged);
    let ev = tokio::time::timeout(STEP, recursive.changed())
        .await
        .unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (zk::EventType::NodeCreated, "/w/c")
    );
    let (stat_watch_result, exist_watch) = {
        let (stat, w) = c.check_and_watch_stat("/later").await.unwrap();
        (stat, w)
    };
    assert!(stat_watch_result.is_none());
    writer.create("/later", b"", &OPEN).await.unwrap();
    let ev = tokio::time::timeout(STEP, exist_watch.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, zk::EventType::NodeCreated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_is_atomic() {
    let server = TestServer::start("");
    let c = connect(&server).await;
    let mut w = c.new_multi_writer();
    w.add_create("/m", b"", &OPEN).unwrap();
    w.add_create("/m/a", b"", &OPEN).unwrap();
    w.add_delete("/does-not-exist", None).unwrap();
    match w.commit().await {
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!(index, 2);
            assert_eq!(source, zk::Error::NoNode);
        }
        other => panic!("expected a failed multi, got {other:?}"),
    }
    assert!(c.check_stat("/m").await.unwrap().is_none());
    let mut w = c.new_multi_writer();
    w.add_create("/m", b"", &OPEN).unwrap();
    w.add_create("/m/a", b"1", &OPEN).unwrap();
    w.add_set_data("/m/a", b"2", Some(0)).unwrap();
    w.add_check_version("/m", 0).unwrap();
    let results = w.commit().await.unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(c.get_data("/m/a").await.unwrap().0, b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acls_and_whoami() {
    let server = TestServer::start("");
    let owner = connect(&server).await;
    owner.auth("digest", b"alice:secret").await.unwrap();
    let acl = [zk::Acl::new(zk::Permission::ALL, zk::AuthId::authed())];
    let creator_all = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
    owner.create("/private", b"s", &creator_all).await.unwrap();
    let (acls, _) = owner.get_acl("/private").await.unwrap();
    assert_eq!(acls.len(), 1);
    assert_eq!(acls[0].scheme(), "digest");
    assert!(acls[0].id().starts_with("alice:"));
    let stranger = connect(&server).await;
    assert!(matches!(
        stranger.get_data("/private").await,
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
    let observer = connect(&server).await;
    {
        let c = connect(&server).await;
        c.create("/e", b"", &EPHEMERAL).await.unwrap();
        assert_eq!(
            c.list_ephemerals("/").await.unwrap(),
            vec!["/e".to_string()]
        );
        let (_, watch) = observer.check_and_watch_stat("/e").await.unwrap();
        drop(c); // closes the session
        let ev = tokio::time::timeout(STEP, watch.changed()).await.unwrap();
        assert_eq!(ev.event_type, zk::EventType::NodeDeleted);
    }
    assert!(observer.check_stat("/e").await.unwrap().is_none());
    let (config, _) = observer.get_config().await.unwrap();
    assert!(config.is_empty(), "standalone /zookeeper/config is empty");
}
