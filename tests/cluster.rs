//! The operator's walkthrough end to end: 3 participants + 1 observer on 127.0.0.1
//! (`tests/common/cluster.rs`), driven with Corral's own client. Roles, the membership in
//! `/zookeeper/config`, writes through every server seen by every server, and a kill -9
//! of the leader: a new leader, writes again, the old leader back as a follower with
//! everything, no acknowledged write lost.
//!
//! `CORRAL_CLUSTER_TEST_TARGET=zookeeper` runs the same tests against Apache ZooKeeper 3.8.

mod common;

use common::cluster::{Flavor, TestCluster, NOT_SERVING};
use corral::client::{Client, ClientConfig};
use corral::proto::{Acl, CreateMode, ErrorCode};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bound on the cluster's first election (JVM start-up included).
const SETTLE_S: u64 = 30;
/// Bound on a client's first connection to a serving cluster.
const CONNECT_S: u64 = 20;
/// Bound on the election after a leader dies, up to the first acknowledged write.
const FAILOVER_S: u64 = 30;

fn deadline(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

fn connect(hosts: &str) -> Client {
    let client = Client::connect(hosts, ClientConfig::default()).expect("connect string");
    assert!(
        client.wait_connected(Duration::from_secs(CONNECT_S)),
        "no session with {hosts} within {CONNECT_S} s"
    );
    client
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// The sorted children of `path` as the server behind `client` sees them after `sync`.
fn synced_children(client: &Client, path: &str) -> BTreeSet<String> {
    assert_eq!(client.sync(path).expect("sync"), path);
    client
        .get_children(path, false)
        .expect("children")
        .into_iter()
        .collect()
}

/// A 3 + 1 cluster, not started yet, with `reconfigEnabled` and the super user who may
/// reconfigure (`super:secret`), plus the `extra_keys` lines.
fn reconfig_cluster(extra_keys: &str) -> TestCluster {
    let cluster = TestCluster::configure(3, 1);
    let mut keys =
        format!("reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={SUPER_DIGEST}");
    if !extra_keys.is_empty() {
        keys.push('\n');
        keys.push_str(extra_keys);
    }
    cluster.add_config(&keys);
    cluster
}

/// Starts all four servers and waits until each has its role.
fn start_all(cluster: &mut TestCluster) {
    for n in 1..=4 {
        cluster.start_node(n);
    }
    cluster.wait_modes(deadline(SETTLE_S));
}

#[test]
fn walkthrough_modes_and_config() {
    // The servers start one by one, as in the walkthrough. A lone participant has no
    // quorum: it answers srvr with ZooKeeper's "not serving" line and refuses sessions.
    let mut cluster = TestCluster::configure(3, 1);
    cluster.start_node(1);
    let until = deadline(SETTLE_S);
    let lone = loop {
        match cluster.four_letter(1, "srvr") {
            Some(answer) if !answer.is_empty() => break answer,
            _ => {
                assert!(Instant::now() < until, "server 1 never answered srvr");
                assert!(cluster.is_running(1), "server 1 exited");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!(lone, format!("{NOT_SERVING}\n"));
    assert_eq!(cluster.mode(1), None);
    let refused =
        Client::connect(&cluster.client_addr(1), ClientConfig::default()).expect("connect string");
    assert!(
        !refused.wait_connected(Duration::from_secs(2)),
        "a server without quorum granted a session"
    );
    refused.disconnect();
    for n in 2..=cluster.size() {
        cluster.start_node(n);
    }
    let modes = cluster.wait_modes(deadline(SETTLE_S));
    let mut roles: Vec<&str> = modes.values().map(String::as_str).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["follower", "follower", "leader", "observer"]);
    assert_eq!(modes.get(&4).map(String::as_str), Some("observer"));
    let leader = cluster.leader();
    assert!(
        cluster.participants().contains(&leader),
        "the leader {leader} is not a participant"
    );
    assert!(!cluster.is_observer(leader), "the observer leads");

    // Every server answers srvr with ZooKeeper's lines, its mode among them; only the
    // leader adds its proposal sizes.
    for n in 1..=cluster.size() {
        let srvr = cluster.four_letter(n, "srvr").expect("srvr answer");
        assert!(srvr.ends_with('\n'), "srvr of server {n}: {srvr:?}");
        let keys: Vec<&str> = srvr
            .lines()
            .map(|l| l.split_once(": ").map_or(l, |(k, _)| k))
            .collect();
        let mut expected_keys = vec![
            "Zookeeper version",
            "Latency min/avg/max",
            "Received",
            "Sent",
            "Connections",
            "Outstanding",
            "Zxid",
            "Mode",
            "Node count",
        ];
        if n == leader {
            expected_keys.push("Proposal sizes last/min/max");
        }
        assert_eq!(keys, expected_keys, "srvr of server {n}: {srvr:?}");
        assert!(
            srvr.lines().any(|l| l == format!("Mode: {}", modes[&n])),
            "srvr of server {n}: {srvr:?}"
        );
    }

    let expected = cluster.expected_config();
    assert_eq!(expected.lines().count(), 5);
    let client = connect(&cluster.hosts());
    let (data, _) = client.get_config(false).expect("get /zookeeper/config");
    let text = String::from_utf8(data.expect("config data").to_vec()).expect("utf-8 config");
    assert_eq!(text, expected);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        expected.lines().collect::<Vec<_>>()
    );
    let (data, _) = client
        .get_data("/zookeeper/config", false)
        .expect("getData /zookeeper/config");
    assert_eq!(data.as_deref(), Some(expected.as_bytes()));

    // Every server, the observer included, holds the same membership.
    for n in 1..=cluster.size() {
        let pinned = connect(&cluster.client_addr(n));
        let (data, _) = pinned.get_config(false).expect("config on one server");
        assert_eq!(
            data.as_deref(),
            Some(expected.as_bytes()),
            "/zookeeper/config on server {n}"
        );
    }
}

#[test]
fn writes_replicate_to_every_server() {
    let mut cluster = TestCluster::start(3, 1);
    let modes = cluster.wait_modes(deadline(SETTLE_S));
    let root = "/cluster-writes";
    let seq_parent = format!("{root}/seq");
    let shared = format!("{root}/shared");
    let pinned: Vec<Client> = (1..=cluster.size())
        .map(|n| connect(&cluster.client_addr(n)))
        .collect();

    pinned[0]
        .create(root, None, &open(), CreateMode::Persistent)
        .expect("create root");
    pinned[0]
        .create(&seq_parent, None, &open(), CreateMode::Persistent)
        .expect("create seq parent");
    pinned[0]
        .create(&shared, Some(b"0"), &open(), CreateMode::Persistent)
        .expect("create shared");

    // A client on each server in turn: its own node, a setData on a shared node, and
    // sequential nodes, two rounds over the servers.
    let mut expected_nodes: BTreeSet<String> = ["seq".to_string(), "shared".to_string()].into();
    let mut sequential = Vec::new();
    for (i, client) in pinned.iter().enumerate() {
        let n = i + 1;
        let path = format!("{root}/from-{n}");
        let created = client
            .create(
                &path,
                Some(format!("written via {n}").as_bytes()),
                &open(),
                CreateMode::Persistent,
            )
            .unwrap_or_else(|e| panic!("create through server {n}: {e}"));
        assert_eq!(created, path);
        expected_nodes.insert(format!("from-{n}"));
        let stat = client
            .set_data(&shared, Some(n.to_string().as_bytes()), i as i32)
            .unwrap_or_else(|e| panic!("setData through server {n}: {e}"));
        assert_eq!(stat.version, n as i32);
    }
    for round in 0..2 {
        for (i, client) in pinned.iter().enumerate() {
            let created = client
                .create(
                    &format!("{seq_parent}/s-"),
                    None,
                    &open(),
                    CreateMode::PersistentSequential,
                )
                .unwrap_or_else(|e| panic!("sequential create through server {}: {e}", i + 1));
            sequential.push((round, i + 1, created));
        }
    }

    // Sequence numbers are distinct and increase in the order the creates completed,
    // whichever server took them: the parent's counter is one, kept by the leader.
    let numbers: Vec<u64> = sequential
        .iter()
        .map(|(_, _, p)| {
            let digits = p.rsplit("s-").next().expect("sequence suffix");
            assert_eq!(digits.len(), 10, "sequence suffix of {p}");
            digits.parse::<u64>().expect("sequence number")
        })
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "sequence numbers do not increase: {sequential:?}"
    );
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    let seq_names: BTreeSet<String> = sequential
        .iter()
        .map(|(_, _, p)| p.rsplit('/').next().expect("name").to_string())
        .collect();

    // Every server, pinned, sees every write after sync.
    let last = cluster.size().to_string();
    for (i, client) in pinned.iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            synced_children(client, root),
            expected_nodes,
            "children of {root} on server {n}"
        );
        for m in 1..=cluster.size() {
            let (data, _) = client
                .get_data(&format!("{root}/from-{m}"), false)
                .expect("get from-m");
            assert_eq!(
                data.as_deref(),
                Some(format!("written via {m}").as_bytes()),
                "from-{m} on server {n}"
            );
        }
        let (data, stat) = client.get_data(&shared, false).expect("get shared");
        assert_eq!(
            data.as_deref(),
            Some(last.as_bytes()),
            "shared on server {n}"
        );
        assert_eq!(
            stat.version,
            cluster.size() as i32,
            "shared's version on {n}"
        );
        assert_eq!(
            synced_children(client, &seq_parent),
            seq_names,
            "sequential nodes on server {n}"
        );
    }

    // An ephemeral created through a follower: on every server while its session lives,
    // on none once the session is closed.
    let follower = *modes
        .iter()
        .find(|(_, m)| m.as_str() == "follower")
        .expect("a follower")
        .0;
    let eph = format!("{root}/eph");
    let owner = connect(&cluster.client_addr(follower));
    owner
        .create(&eph, Some(b"e"), &open(), CreateMode::Ephemeral)
        .expect("create ephemeral through a follower");
    let session = owner.session_id();
    for (i, client) in pinned.iter().enumerate() {
        client.sync(root).expect("sync");
        let stat = client
            .exists(&eph, false)
            .expect("exists")
            .unwrap_or_else(|| panic!("ephemeral missing on server {}", i + 1));
        assert_eq!(stat.ephemeral_owner, session, "owner on server {}", i + 1);
    }
    owner.close().expect("close the owner's session");
    for (i, client) in pinned.iter().enumerate() {
        client.sync(root).expect("sync");
        assert_eq!(
            client.exists(&eph, false).expect("exists"),
            None,
            "ephemeral still on server {} after its session closed",
            i + 1
        );
    }
}

/// Outcomes of creates: acknowledged, or unknown (the connection was lost before the
/// reply, so the create may or may not have happened).
#[derive(Default)]
struct Ledger {
    acked: BTreeSet<String>,
    unknown: BTreeSet<String>,
}

impl Ledger {
    /// One create attempt; true if acknowledged. Any error but ConnectionLoss fails the test.
    fn create(&mut self, client: &Client, root: &str, name: &str) -> bool {
        match client.create(
            &format!("{root}/{name}"),
            Some(name.as_bytes()),
            &open(),
            CreateMode::Persistent,
        ) {
            Ok(_) => {
                self.acked.insert(name.to_string());
                true
            }
            Err(e) if e.code() == Some(ErrorCode::ConnectionLoss) => {
                self.unknown.insert(name.to_string());
                false
            }
            Err(e) => panic!("create {name}: {e}"),
        }
    }
}

/// Creates `{prefix}{i}` for i from 0 until `count` are acknowledged, with a fresh name
/// per attempt; fails the test at `until`.
fn create_acked(
    client: &Client,
    ledger: &mut Ledger,
    root: &str,
    prefix: &str,
    count: usize,
    until: Instant,
) {
    let mut attempt = 0;
    let mut acked = 0;
    while acked < count {
        assert!(
            Instant::now() < until,
            "{prefix}: only {acked} of {count} creates acknowledged in time"
        );
        if ledger.create(client, root, &format!("{prefix}{attempt}")) {
            acked += 1;
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
        attempt += 1;
    }
}

/// Tells the background writer to stop when the test ends, failing or not.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn leader_kill_elects_a_new_leader_and_old_rejoins() {
    let mut cluster = TestCluster::start(3, 1);
    cluster.wait_modes(deadline(SETTLE_S));
    let old_leader = cluster.leader();
    let root = "/cluster-failover";
    let client = connect(&cluster.hosts());
    client
        .create(root, None, &open(), CreateMode::Persistent)
        .expect("create root");
    let mut ledger = Ledger::default();
    create_acked(&client, &mut ledger, root, "before-", 20, deadline(20));

    // A second session writes without pause through the kill.
    let ledger_bg = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_exit = StopOnDrop(Arc::clone(&stop));
    let writer = {
        let ledger_bg = Arc::clone(&ledger_bg);
        let stop = Arc::clone(&stop);
        let hosts = cluster.hosts();
        std::thread::spawn(move || {
            let client = connect(&hosts);
            let until = deadline(50);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                let ok = ledger_bg.lock().unwrap_or_else(|p| p.into_inner()).create(
                    &client,
                    root,
                    &format!("w-{i}"),
                );
                // Pacing, so that the writer does not starve the servers of the two cores.
                std::thread::sleep(Duration::from_millis(if ok { 5 } else { 50 }));
                i += 1;
            }
        })
    };
    let wait_bg_acks = |at_least: usize, until: Instant| {
        while ledger_bg
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .acked
            .len()
            < at_least
        {
            assert!(Instant::now() < until, "the background writer stalled");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_bg_acks(10, deadline(20));

    cluster.kill9(old_leader);
    let killed_at = Instant::now();
    let bg_acked_at_kill = ledger_bg
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .acked
        .len();

    // First acknowledged write after the kill, by the session that wrote before it.
    let failover_until = killed_at + Duration::from_secs(FAILOVER_S);
    create_acked(&client, &mut ledger, root, "after-", 1, failover_until);
    let first_write = killed_at.elapsed();
    let modes = cluster.wait_modes(failover_until);
    let election = killed_at.elapsed();
    let new_leader = cluster.leader();
    eprintln!(
        "{:?}: kill -9 of leader {old_leader} -> first acknowledged write {} ms, new leader {new_leader} \
         seen by srvr {} ms",
        cluster.flavor,
        first_write.as_millis(),
        election.as_millis()
    );
    assert_ne!(new_leader, old_leader);
    assert!(
        !cluster.is_observer(new_leader),
        "the observer became leader"
    );
    assert!(cluster.participants().contains(&new_leader));
    assert_eq!(modes.len(), 3, "{modes:?}");
    assert!(!modes.contains_key(&old_leader));

    // Writes while the old leader is down, then it comes back as a follower.
    create_acked(&client, &mut ledger, root, "down-", 20, deadline(20));
    wait_bg_acks(bg_acked_at_kill + 10, deadline(20));
    cluster.restart(old_leader);
    let modes = cluster.wait_modes(deadline(SETTLE_S));
    assert_eq!(modes.get(&old_leader).map(String::as_str), Some("follower"));
    assert_eq!(
        cluster.leader(),
        new_leader,
        "leadership moved on the rejoin"
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("background writer");

    let bg = ledger_bg.lock().unwrap_or_else(|p| p.into_inner());
    let acked: BTreeSet<String> = ledger.acked.union(&bg.acked).cloned().collect();
    let attempted: BTreeSet<String> = acked
        .iter()
        .chain(ledger.unknown.iter())
        .chain(bg.unknown.iter())
        .cloned()
        .collect();
    let down: BTreeSet<String> = ledger
        .acked
        .iter()
        .filter(|n| n.starts_with("down-"))
        .cloned()
        .collect();
    assert_eq!(down.len(), 20);

    let mut first_view: Option<BTreeSet<String>> = None;
    for n in 1..=cluster.size() {
        let pinned = connect(&cluster.client_addr(n));
        let seen = synced_children(&pinned, root);
        let lost: Vec<&String> = acked.difference(&seen).collect();
        assert!(
            lost.is_empty(),
            "server {n} lost acknowledged writes: {lost:?}"
        );
        let phantom: Vec<&String> = seen.difference(&attempted).collect();
        assert!(
            phantom.is_empty(),
            "server {n} has nodes never written: {phantom:?}"
        );
        if n == old_leader {
            assert!(
                seen.is_superset(&down),
                "the old leader misses writes made while it was down"
            );
        }
        match &first_view {
            None => first_view = Some(seen),
            Some(v) => assert_eq!(&seen, v, "server {n} differs from server 1"),
        }
    }
    eprintln!(
        "{:?}: {} acknowledged creates ({} through the kill by the background writer), {} unknown outcomes, all on every server",
        cluster.flavor,
        acked.len(),
        bg.acked.len(),
        ledger.unknown.len() + bg.unknown.len()
    );
}

/// A member that lost its data comes back empty, too far behind the others' logs for a
/// DIFF (they took snapshots since): the leader sends it a snapshot, and it serves the
/// whole tree.
#[test]
fn emptied_member_is_synced_by_snapshot() {
    emptied_member_is_synced_by_snapshot_with("");
}

/// The same with the client sessions on each node's ZAB executor (`corral.shards=0`, the
/// pseudo-cluster profile's choice): shard 0, which captures the snapshots, then shares
/// the executor with the ZAB loop.
#[test]
fn emptied_member_is_synced_by_snapshot_without_shard_executors() {
    if Flavor::from_env() != Flavor::Corral {
        return;
    }
    emptied_member_is_synced_by_snapshot_with("corral.shards=0\n");
}

/// The same with `corral.snapshot.logInMemoryKb` the only reason for snapshots
/// (`snapCount` too high, `snapSizeLimitInKb` off; the later lines win): a replicated
/// server keeps the records since its newest snapshot in memory, and that bound asks for
/// snapshots every kilobyte of them, so the survivors' histories no longer reach back to
/// the start.
#[test]
fn emptied_member_is_synced_by_snapshot_when_the_in_memory_log_is_bounded() {
    emptied_member_is_synced_by_snapshot_with(
        "snapCount=1000000\nsnapSizeLimitInKb=-1\ncorral.snapshot.logInMemoryKb=1\n",
    );
}

fn emptied_member_is_synced_by_snapshot_with(extra_config: &str) {
    let mut cluster = TestCluster::configure(3, 1);
    // Snapshots every few txns, so the logs no longer reach back to the start.
    cluster.add_config(&format!("snapCount=10\n{extra_config}"));
    for n in 1..=cluster.size() {
        cluster.start_node(n);
    }
    cluster.wait_modes(deadline(SETTLE_S));
    let root = "/snap-sync";
    {
        let client = connect(&cluster.hosts());
        client
            .create(root, Some(b""), &open(), CreateMode::Persistent)
            .expect("create the root");
        for i in 0..60 {
            client
                .create(
                    &format!("{root}/n-{i}"),
                    Some(format!("v{i}").as_bytes()),
                    &open(),
                    CreateMode::Persistent,
                )
                .expect("create");
        }
    }
    // Stop everyone, empty server 1, start everyone: the survivors start from their
    // snapshots, so server 1's empty history is below every leader's log.
    for n in 1..=cluster.size() {
        cluster.kill9(n);
    }
    if cluster.flavor == Flavor::Corral {
        for n in 2..=cluster.size() {
            assert!(cluster.has_snapshot(n), "server {n} took no snapshot");
        }
    }
    cluster.wipe_data(1);
    for n in 1..=cluster.size() {
        cluster.start_node(n);
    }
    let modes = cluster.wait_modes(deadline(SETTLE_S));
    assert_eq!(modes.get(&1).map(String::as_str), Some("follower"));
    if cluster.flavor == Flavor::Corral {
        let leader = cluster.leader();
        assert!(
            cluster
                .log(leader)
                .contains("syncing a learner by snapshot"),
            "server 1 was not synced by snapshot"
        );
    }
    let pinned = connect(&cluster.client_addr(1));
    let children = synced_children(&pinned, root);
    assert_eq!(children.len(), 60, "server 1 after its sync: {children:?}");
    let (data, _) = pinned
        .get_data(&format!("{root}/n-59"), false)
        .expect("read through server 1");
    assert_eq!(data.as_deref(), Some(&b"v59"[..]));
    // A write through server 1 after its snapshot sync reaches everyone.
    pinned
        .create(
            &format!("{root}/after"),
            Some(b""),
            &open(),
            CreateMode::Persistent,
        )
        .expect("write through server 1");
    for n in 1..=cluster.size() {
        let c = connect(&cluster.client_addr(n));
        assert!(
            synced_children(&c, root).contains("after"),
            "server {n} misses the write made through server 1"
        );
    }
}

/// Snapshots copied in steps while writes go on: a walk every ten txns, one node per turn
/// of shard 0 (`corral.snapshot.stepNodes=1`, on the ZAB executor), over a tree of 4 000
/// znodes, under sixteen writers that set, delete and create again. A follower emptied
/// meanwhile, and started again once the leader's in-memory history has moved past it, is
/// synced from a snapshot the leader copies under those writes; afterwards
/// every server, and every server restarted from its own newest snapshot (taken under the
/// writes too), holds exactly what the writers were acknowledged. A copy showing a change
/// after its zxid, or missing one before it, breaks the replay after it (a create over a
/// node, a delete of none) or the final state.
#[test]
fn snapshots_copied_in_steps_under_writes_restore_and_sync_exactly() {
    const BALLAST: usize = 4000;
    const KEYS: usize = 160;
    const WRITERS: usize = 16;
    /// Acknowledged writes to wait for before and after the emptied follower's sync.
    const WRITES_BETWEEN: usize = 300;
    const ROUNDS_MAX: usize = 500;
    /// Committed records a leader keeps to sync a learner by DIFF (`COMMITTED_LOG_MAX`).
    const LEADER_HISTORY_RECORDS: usize = 10_000;
    let mut cluster = TestCluster::configure(3, 1);
    if cluster.flavor != Flavor::Corral {
        return;
    }
    cluster.add_config("snapCount=10\ncorral.snapshot.stepNodes=1\ncorral.shards=0");
    start_all(&mut cluster);
    let root = "/steps";
    {
        let client = connect(&cluster.hosts());
        client
            .create(root, Some(b""), &open(), CreateMode::Persistent)
            .expect("create the root");
        client
            .create("/ballast", Some(b""), &open(), CreateMode::Persistent)
            .expect("create the ballast root");
        for batch in 0..BALLAST / 500 {
            let ops: Vec<corral::client::Op> = (0..500)
                .map(|i| corral::client::Op::Create {
                    path: format!("/ballast/b-{batch}-{i}"),
                    data: Some(b"ballast".to_vec()),
                    acl: open(),
                    mode: CreateMode::Persistent,
                    ttl_ms: None,
                })
                .collect();
            client.multi(&ops).expect("create ballast");
        }
        for k in 0..KEYS {
            client
                .create(
                    &format!("{root}/k-{k}"),
                    Some(b"0"),
                    &open(),
                    CreateMode::Persistent,
                )
                .expect("create a key");
        }
    }
    let leader = cluster.leader();
    let victim = (1..=3)
        .find(|&n| n != leader)
        .expect("a follower among three voters");
    // The writers use every server but the one to be emptied.
    let addrs: Vec<String> = (1..=cluster.size())
        .filter(|&n| n != victim)
        .map(|n| cluster.client_addr(n))
        .collect();
    // Acknowledged writes, counted under a lock the main thread waits on.
    let acked = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // Each writer owns the keys k with k % WRITERS == w and knows their final state.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let addr = addrs[w % addrs.len()].clone();
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = connect(&addr);
                let mut state: Vec<(String, Option<String>)> = (w..KEYS)
                    .step_by(WRITERS)
                    .map(|k| (format!("k-{k}"), Some("0".to_string())))
                    .collect();
                'rounds: for round in 0..ROUNDS_MAX {
                    for (key, value) in state.iter_mut() {
                        if stop.load(Ordering::Relaxed) {
                            break 'rounds;
                        }
                        let path = format!("{root}/{key}");
                        let v = format!("r{round}");
                        *value = match value {
                            Some(_) if round % 2 == 0 => {
                                client
                                    .set_data(&path, Some(v.as_bytes()), -1)
                                    .expect("setData");
                                Some(v)
                            }
                            Some(_) => {
                                client.delete(&path, -1).expect("delete");
                                None
                            }
                            None => {
                                client
                                    .create(
                                        &path,
                                        Some(v.as_bytes()),
                                        &open(),
                                        CreateMode::Persistent,
                                    )
                                    .expect("create again");
                                Some(v)
                            }
                        };
                        *acked.0.lock().expect("count lock") += 1;
                        acked.1.notify_all();
                    }
                }
                state
            })
        })
        .collect();
    let acked_now = || *acked.0.lock().expect("count lock");
    let acked_at_least = |n: usize, what: &str| {
        let (count, _) = acked
            .1
            .wait_timeout_while(
                acked.0.lock().expect("count lock"),
                Duration::from_secs(60),
                |count| *count < n,
            )
            .expect("count lock");
        assert!(*count >= n, "{what}: {} of {n} writes within 60 s", *count);
    };
    acked_at_least(WRITES_BETWEEN, "the writers under way");
    cluster.kill9(victim);
    cluster.wipe_data(victim);
    // Past the leader's in-memory history, so the emptied follower gets a snapshot.
    let past_history = acked_now() + LEADER_HISTORY_RECORDS + WRITES_BETWEEN;
    acked_at_least(past_history, "writes past the leader's in-memory history");
    cluster.start_node(victim);
    wait_mode(&cluster, victim, "follower", deadline(SETTLE_S));
    let after_sync = acked_now() + WRITES_BETWEEN;
    acked_at_least(after_sync, "writes after the emptied follower's sync");
    stop.store(true, Ordering::Relaxed);
    let mut expected = std::collections::BTreeMap::new();
    for writer in writers {
        expected.extend(writer.join().expect("writer thread"));
    }
    let leader_log = cluster.log(cluster.leader());
    assert!(
        leader_log.contains("syncing a learner by snapshot"),
        "server {victim} was not synced by snapshot: {}",
        leader_log
            .lines()
            .filter(|l| l.contains("syncing learner"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let check = |cluster: &TestCluster, when: &str| {
        for n in 1..=cluster.size() {
            let client = connect(&cluster.client_addr(n));
            let children = synced_children(&client, root);
            for (key, value) in &expected {
                assert_eq!(
                    children.contains(key),
                    value.is_some(),
                    "{when}: server {n} on {key}"
                );
                if let Some(v) = value {
                    let (data, _) = client
                        .get_data(&format!("{root}/{key}"), false)
                        .expect("read a key");
                    assert_eq!(
                        data.as_deref(),
                        Some(v.as_bytes()),
                        "{when}: server {n} on {key}"
                    );
                }
            }
            assert_eq!(
                children.len(),
                expected.values().filter(|v| v.is_some()).count(),
                "{when}: server {n}"
            );
            assert_eq!(
                synced_children(&client, "/ballast").len(),
                BALLAST,
                "{when}: server {n}"
            );
        }
    };
    check(&cluster, "after the writes");
    for n in 1..=cluster.size() {
        cluster.kill9(n);
    }
    start_all(&mut cluster);
    check(&cluster, "after a restart from the snapshots");
}

/// `readonlymode.enabled`: a server cut off from its quorum serves read-only sessions
/// (reads from its data, writes refused with NotReadOnly, `isro` says `ro`, `srvr` says
/// `Mode: read-only`) and goes back to normal once the quorum is back. ZooKeeper reads
/// this setting only as a Java system property, so the test runs against Corral alone.
#[test]
fn cut_off_server_serves_read_only_sessions() {
    let mut cluster = TestCluster::configure(3, 1);
    if cluster.flavor != Flavor::Corral {
        return;
    }
    cluster.add_config("readonlymode.enabled=true");
    for n in 1..=cluster.size() {
        cluster.start_node(n);
    }
    cluster.wait_modes(deadline(SETTLE_S));
    {
        let client = connect(&cluster.hosts());
        client
            .create("/ro", Some(b"before"), &open(), CreateMode::Persistent)
            .expect("create before the cut");
        assert_eq!(client.sync("/ro").expect("sync"), "/ro");
    }
    // Leave one participant: no quorum.
    let survivor = 1;
    for n in cluster.participants() {
        if n != survivor {
            cluster.kill9(n);
        }
    }
    let until = deadline(20);
    while cluster.four_letter(survivor, "isro").as_deref() != Some("ro") {
        assert!(
            Instant::now() < until,
            "server {survivor} never went read-only"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let srvr = cluster.four_letter(survivor, "srvr").unwrap_or_default();
    assert!(srvr.contains("Mode: read-only\n"), "srvr: {srvr}");
    let config = ClientConfig {
        read_only: true,
        ..ClientConfig::default()
    };
    let ro = Client::connect(&cluster.client_addr(survivor), config).expect("connect string");
    assert!(
        ro.wait_connected(Duration::from_secs(CONNECT_S)),
        "no read-only session"
    );
    assert_eq!(ro.state(), corral::client::States::ConnectedReadOnly);
    let (data, _) = ro.get_data("/ro", false).expect("read in read-only mode");
    assert_eq!(data.as_deref(), Some(&b"before"[..]));
    match ro.create("/ro/new", Some(b""), &open(), CreateMode::Persistent) {
        Err(corral::client::Error::Keeper {
            code: ErrorCode::NotReadOnly,
            ..
        }) => {}
        other => panic!("a write in read-only mode gave {other:?}"),
    }
    // A client that does not accept read-only sessions gets none.
    let rw = Client::connect(&cluster.client_addr(survivor), ClientConfig::default())
        .expect("connect string");
    assert!(
        !rw.wait_connected(Duration::from_secs(3)),
        "a read-write session while cut off"
    );
    drop(rw);
    // The quorum comes back: normal service, read-only sessions closed.
    for n in cluster.participants() {
        if n != survivor {
            cluster.start_node(n);
        }
    }
    cluster.wait_modes(deadline(SETTLE_S));
    assert_eq!(cluster.four_letter(survivor, "isro").as_deref(), Some("rw"));
    let client = connect(&cluster.client_addr(survivor));
    client
        .create("/ro/after", Some(b""), &open(), CreateMode::Persistent)
        .expect("write once the quorum is back");
}

/// `super:secret` as ZooKeeper's `DigestAuthenticationProvider.superDigest` wants it
/// (base64 of the SHA-1 of `super:secret`). ZooKeeper turns an unknown zoo.cfg key into the
/// system property `zookeeper.<key>`, so the same line configures both flavors.
const SUPER_DIGEST: &str = "super:lK75jTNcA+U9vtVEw5vB51mj/w4=";

/// The `/zookeeper/config` data of `client`'s server after a `sync`.
fn synced_config(client: &Client) -> String {
    client.sync("/").expect("sync");
    let (data, _) = client.get_config(false).expect("get config");
    String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8 config")
}

/// Polls `srvr` on server `n` until its mode is `mode`; panics at `until`.
fn wait_mode(cluster: &TestCluster, n: usize, mode: &str, until: Instant) {
    loop {
        let now = cluster.mode(n);
        if now.as_deref() == Some(mode) {
            return;
        }
        assert!(
            Instant::now() < until,
            "server {n} not {mode} in time (last mode {now:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reconfig_is_refused_when_disabled() {
    // reconfigEnabled defaults to false: ZooKeeper 3.8 answers ReconfigDisabled (-123)
    // before it looks at the request or the caller.
    let mut cluster = TestCluster::start(3, 0);
    cluster.wait_modes(deadline(SETTLE_S));
    let client = connect(&cluster.hosts());
    let err = client
        .reconfig(None, Some("3"), None, -1)
        .expect_err("reconfig while disabled");
    assert_eq!(err.code(), Some(ErrorCode::ReconfigDisabled), "{err}");
    assert_eq!(synced_config(&client), cluster.expected_config());
}

#[test]
fn reconfig_removes_and_adds_observers_and_followers() {
    let started = Instant::now();
    let mut cluster = reconfig_cluster("");
    start_all(&mut cluster);
    let participants: Vec<String> = (1..=3).map(|n| cluster.client_addr(n)).collect();
    let hosts = participants.join(",");
    let line = |n: usize, role: &str| format!("server.{n}={}:{role}", cluster.server_address(n));

    // /zookeeper/config is world-readable only: anyone else gets NoAuth, checked last.
    let anonymous = connect(&hosts);
    let err = anonymous
        .reconfig(None, Some("4"), None, -1)
        .expect_err("reconfig without permission");
    assert_eq!(err.code(), Some(ErrorCode::NoAuth), "{err}");

    let (events_tx, events_rx) = std::sync::mpsc::channel();
    let events_tx = Mutex::new(events_tx);
    let watcher: corral::client::Watcher = Arc::new(move |e: &corral::client::WatchedEvent| {
        if let Ok(tx) = events_tx.lock() {
            let _ = tx.send(e.clone());
        }
    });
    let admin = Client::connect(
        &hosts,
        ClientConfig {
            watcher: Some(watcher),
            ..ClientConfig::default()
        },
    )
    .expect("connect string");
    assert!(admin.wait_connected(Duration::from_secs(CONNECT_S)));
    admin.add_auth("digest", b"super:secret");
    admin.get_config(true).expect("watch the config");

    // Remove the observer.
    let (data, stat) = admin
        .reconfig(None, Some("4"), None, -1)
        .expect("remove the observer");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    let version = format!("{:x}", stat.mzxid);
    let expected = format!(
        "{}\n{}\n{}\nversion={version}",
        line(1, "participant"),
        line(2, "participant"),
        line(3, "participant")
    );
    assert_eq!(text, expected);
    assert_eq!(stat.version, -1, "a reconfig leaves dataVersion -1");
    assert_eq!(stat.data_length as usize, text.len());
    let until = deadline(10);
    let event = loop {
        let e = events_rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .expect("the config watch fires");
        if e.path.is_some() {
            break e;
        }
    };
    assert_eq!(event.path.as_deref(), Some("/zookeeper/config"));
    assert_eq!(event.event_type, corral::proto::event::NODE_DATA_CHANGED);
    for n in 1..=3 {
        let c = connect(&cluster.client_addr(n));
        assert_eq!(synced_config(&c), expected, "server {n}");
        // `conf` shows the membership in force.
        let conf = cluster.four_letter(n, "conf").unwrap_or_default();
        assert!(conf.contains(&expected), "server {n}'s conf:\n{conf}");
    }
    // The dynamic file of that version, and the static config pointing at it.
    let conf_dir = cluster
        .config_path(1)
        .parent()
        .expect("conf dir")
        .to_path_buf();
    for n in 1..=3 {
        let dynamic_name = format!("zoo{n}.cfg.dynamic.{version}");
        let dynamic = std::fs::read_to_string(conf_dir.join(&dynamic_name))
            .unwrap_or_else(|e| panic!("server {n}'s {dynamic_name}: {e}"));
        assert_eq!(
            dynamic.trim_end(),
            expected
                .rsplit_once('\n')
                .map(|(lines, _)| lines)
                .unwrap_or("")
        );
        let static_text = std::fs::read_to_string(cluster.config_path(n)).expect("zooN.cfg");
        assert!(
            static_text
                .lines()
                .any(|l| l.starts_with("dynamicConfigFile=") && l.ends_with(&dynamic_name)),
            "server {n}'s static config names {dynamic_name}:\n{static_text}"
        );
        assert!(
            !static_text.lines().any(|l| l.starts_with("server.")),
            "server lines left in server {n}'s static config:\n{static_text}"
        );
    }

    // fromConfig must name the version in force.
    let err = admin
        .reconfig(None, Some("3"), None, stat.mzxid + 1)
        .expect_err("reconfig from a stale version");
    assert_eq!(err.code(), Some(ErrorCode::BadVersion), "{err}");
    // A joining server needs its client port.
    let err = admin
        .reconfig(Some(&line(4, "observer")), None, None, -1)
        .expect_err("a joiner without client port");
    assert_eq!(err.code(), Some(ErrorCode::BadArguments), "{err}");

    // Add it back as an observer: it observes again.
    let joiner = format!("{};{}", line(4, "observer"), cluster.client_port(4));
    let (data, stat) = admin
        .reconfig(Some(&joiner), None, None, -1)
        .expect("add the observer back");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert!(
        text.contains(&format!(
            "{};0.0.0.0:{}\n",
            line(4, "observer"),
            cluster.client_port(4)
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("version={:x}", stat.mzxid)),
        "{text}"
    );
    wait_mode(&cluster, 4, "observer", deadline(40));

    // Remove a follower: two voters remain and writes go on.
    let leader = cluster.leader();
    let follower = (1..=3).find(|&n| n != leader).expect("a follower");
    let (data, _) = admin
        .reconfig(None, Some(&follower.to_string()), None, -1)
        .expect("remove a follower");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert!(!text.contains(&format!("server.{follower}=")), "{text}");
    let writer = connect(&cluster.client_addr(leader));
    writer
        .create("/after-remove", Some(b"x"), &open(), CreateMode::Persistent)
        .expect("write with two voters");

    // And back as a participant: three voters again.
    let joiner = format!(
        "{};{}",
        line(follower, "participant"),
        cluster.client_port(follower)
    );
    let (data, _) = admin
        .reconfig(Some(&joiner), None, None, -1)
        .expect("add the follower back");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert_eq!(text.matches(":participant").count(), 3, "{text}");
    wait_mode(&cluster, follower, "follower", deadline(40));
    writer
        .create("/after-add", Some(b"x"), &open(), CreateMode::Persistent)
        .expect("write with three voters");
    let c = connect(&cluster.client_addr(follower));
    assert_eq!(synced_config(&c), text);
    assert!(c.exists("/after-add", false).expect("exists").is_some());
    eprintln!(
        "reconfig test ({:?}) took {:.1} s",
        cluster.flavor,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn reconfig_adds_a_new_server_and_changes_its_role() {
    let started = Instant::now();
    let mut cluster = reconfig_cluster("");
    // Server 4 is not a member yet: it starts later with a config naming the members and
    // itself, and joins through a reconfig.
    cluster.leave_out_of_configs(4);
    for n in 1..=3 {
        cluster.start_node(n);
    }
    cluster.wait_modes(deadline(SETTLE_S));
    let hosts = (1..=3)
        .map(|n| cluster.client_addr(n))
        .collect::<Vec<_>>()
        .join(",");
    let admin = connect(&hosts);
    admin.add_auth("digest", b"super:secret");
    admin
        .create("/before", Some(b"old"), &open(), CreateMode::Persistent)
        .expect("write before the join");
    cluster.start_node(4);
    // Before a reconfig names it, the joiner (an observer in its own config) syncs as a
    // follower without a vote and shows the ensemble's configuration, not its own static
    // one: it took the leader's from NEWLEADER.
    wait_mode(&cluster, 4, "follower", deadline(40));
    let ensemble_config = synced_config(&admin);
    assert!(!ensemble_config.contains("server.4="), "{ensemble_config}");
    assert_eq!(
        synced_config(&connect(&cluster.client_addr(4))),
        ensemble_config
    );
    let spec = |n: usize, role: &str| {
        format!(
            "server.{n}={}:{role};{}",
            cluster.server_address(n),
            cluster.client_port(n)
        )
    };
    let shown = |n: usize, role: &str| {
        format!(
            "server.{n}={}:{role};0.0.0.0:{}",
            cluster.server_address(n),
            cluster.client_port(n)
        )
    };

    // Add it as an observer: it syncs and serves what was written before.
    let (data, stat) = admin
        .reconfig(Some(&spec(4, "observer")), None, None, -1)
        .expect("add server 4");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert!(
        text.contains(&format!("{}\n", shown(4, "observer"))),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("version={:x}", stat.mzxid)),
        "{text}"
    );
    wait_mode(&cluster, 4, "observer", deadline(40));
    let on4 = connect(&cluster.client_addr(4));
    assert_eq!(synced_config(&on4), text);
    let (before, _) = on4
        .get_data("/before", false)
        .expect("read on the new server");
    assert_eq!(before.as_deref(), Some(&b"old"[..]));

    // Role change: re-added as a participant, it follows (four voters).
    let (data, _) = admin
        .reconfig(Some(&spec(4, "participant")), None, None, -1)
        .expect("make server 4 a participant");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert_eq!(text.matches(":participant").count(), 4, "{text}");
    wait_mode(&cluster, 4, "follower", deadline(40));
    admin
        .create("/four-voters", None, &open(), CreateMode::Persistent)
        .expect("write with four voters");

    // Non-incremental: the whole membership, server 4 an observer again.
    let members = format!(
        "{},{},{},{}",
        spec(1, "participant"),
        spec(2, "participant"),
        spec(3, "participant"),
        spec(4, "observer")
    );
    let (data, stat) = admin
        .reconfig(None, None, Some(&members), -1)
        .expect("-members");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert_eq!(
        text,
        format!(
            "{}\n{}\n{}\n{}\nversion={:x}",
            shown(1, "participant"),
            shown(2, "participant"),
            shown(3, "participant"),
            shown(4, "observer"),
            stat.mzxid
        )
    );
    wait_mode(&cluster, 4, "observer", deadline(40));
    let on4 = connect(&cluster.client_addr(4));
    assert_eq!(synced_config(&on4), text);
    assert!(on4.exists("/four-voters", false).expect("exists").is_some());

    // Remove the leader, asking through a follower. Corral answers before the leader
    // leaves; ZooKeeper 3.8 closes the follower's connections first (ConnectionLoss). Either
    // way the remaining voters go on under a new leader without the removed one.
    let leader = cluster.leader();
    let follower = (1..=3).find(|&n| n != leader).expect("a follower");
    let asker = connect(&cluster.client_addr(follower));
    asker.add_auth("digest", b"super:secret");
    let removed_line = format!("server.{leader}=");
    match asker.reconfig(None, Some(&leader.to_string()), None, -1) {
        Ok((data, _)) => {
            let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
            assert!(!text.contains(&removed_line), "{text}");
        }
        Err(e) if e.code() == Some(ErrorCode::ConnectionLoss) => {
            assert_eq!(cluster.flavor, Flavor::ZooKeeper, "Corral answers: {e}")
        }
        Err(e) => panic!("remove the leader: {e}"),
    }
    let remaining: Vec<String> = (1..=3)
        .filter(|&n| n != leader)
        .map(|n| cluster.client_addr(n))
        .collect();
    let writer = connect(&remaining.join(","));
    let until = deadline(FAILOVER_S);
    loop {
        match writer.create(
            "/after-leader-removed",
            None,
            &open(),
            CreateMode::Persistent,
        ) {
            Ok(_)
            | Err(corral::client::Error::Keeper {
                code: ErrorCode::NodeExists,
                ..
            }) => break,
            Err(e) => {
                assert!(
                    Instant::now() < until,
                    "no write after removing the leader: {e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let text = synced_config(&writer);
    assert!(!text.contains(&removed_line), "{text}");
    assert_eq!(text.matches(":participant").count(), 2, "{text}");
    eprintln!(
        "reconfig join test ({:?}) took {:.1} s",
        cluster.flavor,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn reconfig_reaches_a_member_synced_by_snapshot() {
    let mut cluster = reconfig_cluster("snapCount=10");
    start_all(&mut cluster);
    let leader = cluster.leader();
    let down = (1..=3).find(|&n| n != leader).expect("a follower");
    cluster.kill9(down);
    let hosts = (1..=3)
        .filter(|&n| n != down)
        .map(|n| cluster.client_addr(n))
        .collect::<Vec<_>>()
        .join(",");
    let admin = connect(&hosts);
    admin.add_auth("digest", b"super:secret");
    // The observer leaves while `down` is away, then enough writes that the logs no
    // longer reach back to where `down` stopped.
    let (data, stat) = admin
        .reconfig(None, Some("4"), None, -1)
        .expect("remove the observer");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    admin
        .create("/snap", None, &open(), CreateMode::Persistent)
        .expect("create");
    for i in 0..60 {
        admin
            .create(
                &format!("/snap/n-{i}"),
                None,
                &open(),
                CreateMode::Persistent,
            )
            .expect("create");
    }
    // Everyone restarts from their snapshots (server 4, no member any more, stays down),
    // so `down`'s history is below every leader's log: it is synced by snapshot.
    cluster.kill9(4);
    for n in (1..=3).filter(|&n| n != down) {
        cluster.kill9(n);
    }
    for n in 1..=3 {
        cluster.start_node(n);
    }
    cluster.wait_modes(deadline(SETTLE_S));
    let client = connect(&cluster.client_addr(down));
    assert_eq!(synced_config(&client), text);
    let dynamic = cluster
        .config_path(down)
        .with_file_name(format!("zoo{down}.cfg.dynamic.{:x}", stat.mzxid));
    let written =
        std::fs::read_to_string(&dynamic).unwrap_or_else(|e| panic!("{}: {e}", dynamic.display()));
    assert_eq!(written.matches(":participant").count(), 3, "{written}");
    assert!(!written.contains("server.4="), "{written}");
    if cluster.flavor == Flavor::Corral {
        assert!(
            (1..=3).any(|n| cluster.log(n).contains("syncing a learner by snapshot")),
            "the member was synced by snapshot"
        );
    }
}

/// Polls `read` until it gives `Some`, or panics at `until` naming `what`.
fn poll_until<T>(what: &str, until: Instant, mut read: impl FnMut() -> Option<T>) -> T {
    loop {
        if let Some(v) = read() {
            return v;
        }
        assert!(Instant::now() < until, "{what}: not in time");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn reconfig_enabled_first_start_versions_the_static_membership() {
    // ZooKeeper 3.8 with reconfigEnabled and the membership in zoo.cfg: every server keeps
    // a copy of its zoo.cfg as zoo.cfg.bak when it starts; once the first epoch is
    // established the membership gets that epoch's first zxid as its version, goes to
    // zooN.cfg.dynamic.100000000 (the server lines, no version line, no final newline) and
    // zooN.cfg loses its server lines and ends with dynamicConfigFile=<that file>. A
    // restart keeps all of it.
    let mut cluster = reconfig_cluster("");
    let originals: Vec<String> = (1..=4)
        .map(|n| std::fs::read_to_string(cluster.config_path(n)).expect("zooN.cfg"))
        .collect();
    start_all(&mut cluster);
    let version = "100000000";
    let expected = cluster
        .expected_config()
        .replace("version=0", &format!("version={version}"));
    let server_lines = expected
        .rsplit_once('\n')
        .map(|(lines, _)| lines.to_string())
        .unwrap_or_default();
    for n in 1..=4 {
        let client = connect(&cluster.client_addr(n));
        assert_eq!(synced_config(&client), expected, "server {n}");
        let (_, stat) = client.get_config(false).expect("get config");
        assert_eq!(
            stat.mzxid, 0x1_0000_0000,
            "server {n}: mZxid is the version"
        );
        assert_eq!(stat.version, -1, "server {n}: dataVersion");
        let conf = cluster.four_letter(n, "conf").unwrap_or_default();
        assert!(
            conf.contains(&format!("membership: \n{expected}")),
            "server {n}'s conf:\n{conf}"
        );
    }
    let files = |cluster: &TestCluster, n: usize| {
        let static_path = cluster.config_path(n);
        let dynamic_name = format!("zoo{n}.cfg.dynamic.{version}");
        let dynamic_path = static_path.with_file_name(&dynamic_name);
        let mut backup = static_path.clone().into_os_string();
        backup.push(".bak");
        (static_path, dynamic_path, std::path::PathBuf::from(backup))
    };
    let mut split: Vec<String> = Vec::new();
    for n in 1..=4 {
        let (static_path, dynamic_path, backup) = files(&cluster, n);
        let dynamic = poll_until(
            &format!("server {n}'s {}", dynamic_path.display()),
            deadline(10),
            || std::fs::read_to_string(&dynamic_path).ok(),
        );
        assert_eq!(dynamic, server_lines, "server {n}'s dynamic file");
        assert_eq!(
            std::fs::read_to_string(&backup).expect("zooN.cfg.bak"),
            originals[n - 1],
            "server {n}'s backup is its zoo.cfg as it was"
        );
        // ZooKeeper writes the other keys back in hash order, Corral in theirs: the lines
        // are the same.
        let text = std::fs::read_to_string(&static_path).expect("zooN.cfg");
        let pointer = format!("dynamicConfigFile={}", dynamic_path.display());
        assert_eq!(text.lines().last(), Some(pointer.as_str()), "{text}");
        let mut got: Vec<&str> = text.lines().collect();
        got.sort_unstable();
        let mut want: Vec<&str> = originals[n - 1]
            .lines()
            .filter(|l| !l.starts_with("server."))
            .chain(std::iter::once(pointer.as_str()))
            .collect();
        want.sort_unstable();
        assert_eq!(got, want, "server {n}'s static config");
        split.push(text);
    }

    // A restart of every server changes nothing: the version stays, no file is written.
    for n in 1..=4 {
        cluster.kill9(n);
    }
    start_all(&mut cluster);
    for n in 1..=4 {
        let client = connect(&cluster.client_addr(n));
        assert_eq!(
            synced_config(&client),
            expected,
            "server {n} after the restart"
        );
        let (_, stat) = client.get_config(false).expect("get config");
        assert_eq!(
            stat.mzxid, 0x1_0000_0000,
            "server {n}: mZxid after the restart"
        );
        let (static_path, _, backup) = files(&cluster, n);
        assert_eq!(
            std::fs::read_to_string(&static_path).expect("zooN.cfg"),
            split[n - 1]
        );
        assert_eq!(
            std::fs::read_to_string(&backup).expect("zooN.cfg.bak"),
            originals[n - 1]
        );
        let conf_dir = static_path.parent().expect("conf dir");
        let dynamic_files: Vec<String> = std::fs::read_dir(conf_dir)
            .expect("list conf")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&format!("zoo{n}.cfg.dynamic.")))
            .collect();
        assert_eq!(
            dynamic_files,
            vec![format!("zoo{n}.cfg.dynamic.{version}")],
            "server {n}"
        );
    }
}

#[test]
fn reconfig_disabled_keeps_version_zero_and_the_files() {
    let mut cluster = TestCluster::configure(3, 1);
    let originals: Vec<String> = (1..=4)
        .map(|n| std::fs::read_to_string(cluster.config_path(n)).expect("zooN.cfg"))
        .collect();
    start_all(&mut cluster);
    for n in 1..=4 {
        let client = connect(&cluster.client_addr(n));
        assert_eq!(synced_config(&client), cluster.expected_config());
        let (_, stat) = client.get_config(false).expect("get config");
        assert_eq!((stat.mzxid, stat.version), (0, -1), "server {n}");
        assert_eq!(
            std::fs::read_to_string(cluster.config_path(n)).expect("zooN.cfg"),
            originals[n - 1]
        );
    }
    let conf_dir = cluster
        .config_path(1)
        .parent()
        .expect("conf dir")
        .to_path_buf();
    let mut names: Vec<String> = std::fs::read_dir(conf_dir)
        .expect("list conf")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["zoo1.cfg", "zoo2.cfg", "zoo3.cfg", "zoo4.cfg"]);
}

#[test]
fn reconfig_removed_server_does_not_start_again() {
    // ZooKeeper 3.8: a follower removed by a reconfig goes on as a non-voting follower
    // and its files now leave it out; started again on them it exits ("My id N not in the
    // peer list").
    let mut cluster = reconfig_cluster("");
    start_all(&mut cluster);
    let leader = cluster.leader();
    let removed = (1..=3).find(|&n| n != leader).expect("a follower");
    let admin = connect(&cluster.client_addr(leader));
    admin.add_auth("digest", b"super:secret");
    let (data, stat) = admin
        .reconfig(None, Some(&removed.to_string()), None, -1)
        .expect("remove a follower");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert!(!text.contains(&format!("server.{removed}=")), "{text}");
    wait_mode(&cluster, removed, "follower", deadline(20));
    let dynamic_name = format!("zoo{removed}.cfg.dynamic.{:x}", stat.mzxid);
    let static_path = cluster.config_path(removed);
    poll_until(
        &format!("server {removed}'s static config names {dynamic_name}"),
        deadline(10),
        || {
            let text = std::fs::read_to_string(&static_path).ok()?;
            text.lines()
                .any(|l| l.starts_with("dynamicConfigFile=") && l.ends_with(&dynamic_name))
                .then_some(())
        },
    );

    cluster.kill9(removed);
    cluster.start_node(removed);
    let status = cluster
        .wait_exit(removed, deadline(SETTLE_S))
        .expect("the removed server exits");
    assert!(!status.success(), "{status}");
    let log = cluster.log(removed).to_lowercase();
    assert!(
        log.contains(&format!("my id {removed}")) && log.contains("not in the peer list"),
        "server {removed}'s log says why"
    );
    assert!(cluster.four_letter(removed, "srvr").is_none());
    // The others go on.
    let writer = connect(&cluster.client_addr(leader));
    writer
        .create("/after-removal", None, &open(), CreateMode::Persistent)
        .expect("write without the removed server");
}

/// The body of a create of `path` (data `x`, world:anyone with every permission,
/// persistent).
fn raw_create_body(path: &str) -> Vec<u8> {
    let mut body = common::jute_string(path);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.push(b'x');
    body.extend_from_slice(&1i32.to_be_bytes());
    push_acl_entry(&mut body, "world", b"anyone");
    body.extend_from_slice(&0i32.to_be_bytes());
    body
}

/// Appends one ACL entry with every permission: perms, scheme, and `id` as raw bytes.
fn push_acl_entry(body: &mut Vec<u8>, scheme: &str, id: &[u8]) {
    body.extend_from_slice(&31i32.to_be_bytes());
    body.extend_from_slice(&common::jute_string(scheme));
    body.extend_from_slice(&(id.len() as i32).to_be_bytes());
    body.extend_from_slice(id);
}

#[test]
fn session_moved_between_learners_fails_the_old_connections_writes() {
    // ZooKeeper 3.8: a session resumed on follower B leaves its connection on follower A
    // open; A still answers reads, pings and syncs on it, but a write there takes a zxid as
    // a failed (SessionMoved) txn and A closes the connection without an answer.
    let mut cluster = TestCluster::start(3, 1);
    cluster.wait_modes(deadline(SETTLE_S));
    let leader = cluster.leader();
    let followers: Vec<usize> = (1..=3).filter(|&n| n != leader).collect();
    let addr = |n: usize| -> std::net::SocketAddr {
        cluster.client_addr(n).parse().expect("client address")
    };
    let mut a = common::RawClient::connect(addr(followers[0]));
    let (_, session, passwd) = a.handshake(0, 0, &[0; 16]).expect("session on A");
    let (_, _, err, _) = a
        .request(1, 1, &raw_create_body("/moved-before"))
        .expect("create on A");
    assert_eq!(err, 0);
    let mut b = common::RawClient::connect(addr(followers[1]));
    let (_, resumed, _) = b.handshake(0, session, &passwd).expect("resume on B");
    assert_eq!(resumed, session, "the same session on B");
    let mut exists = common::jute_string("/moved-before");
    exists.push(0);
    let (_, _, err, _) = b.request(1, 3, &exists).expect("exists on B");
    assert_eq!(err, 0);

    let mut get_root = common::jute_string("/");
    get_root.push(0);
    let (_, _, err, _) = a
        .request(2, 4, &get_root)
        .expect("a read on A after the move");
    assert_eq!(err, 0);
    let (xid, _, err, _) = a.request(-2, 11, &[]).expect("a ping on A after the move");
    assert_eq!((xid, err), (-2, 0));
    let (_, _, err, _) = a
        .request(3, 9, &common::jute_string("/"))
        .expect("a sync on A after the move");
    assert_eq!(err, 0);
    // B's answers carry the zxid it has applied; a sync first makes that the leader's.
    let sync_root = common::jute_string("/");
    b.request(10, 9, &sync_root).expect("sync on B");
    let (_, zxid_before, _, _) = b.request(2, 3, &exists).expect("exists on B");

    let asked = Instant::now();
    let answer = a.request(4, 1, &raw_create_body("/moved-after"));
    assert!(
        answer.is_none(),
        "a write on the old connection is answered: {answer:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "the old connection was closed, not left silent"
    );
    let mut after = common::jute_string("/moved-after");
    after.push(0);
    b.request(11, 9, &sync_root).expect("sync on B");
    let (_, zxid_after, err, _) = b.request(3, 3, &after).expect("exists on B");
    assert_eq!(
        err,
        ErrorCode::NoNode as i32,
        "the moved write did not happen"
    );
    assert!(
        zxid_after > zxid_before,
        "the failed write took a zxid ({zxid_before:#x} -> {zxid_after:#x})"
    );
    let (_, _, err, _) = b
        .request(4, 1, &raw_create_body("/moved-via-b"))
        .expect("create on B");
    assert_eq!(err, 0, "the session works on B");
}

/// Polls until `done` holds, at most `within_s` seconds; panics naming `what`.
fn wait_for(what: &str, within_s: u64, mut done: impl FnMut() -> bool) {
    let until = deadline(within_s);
    while !done() {
        assert!(Instant::now() < until, "{what}: not within {within_s} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A hierarchical quorum with weights (`group.N`, `weight.N`), as ZooKeeper 3.8 counts it:
/// server 1 weighs 2 of its group's 4, so servers 2 and 3 together (2 of 4) are no quorum
/// although they are two of three, while server 1 with either of them is one.
#[test]
fn weighted_quorum_counts_weights_not_servers() {
    let mut cluster = TestCluster::configure(3, 1);
    cluster.add_config("group.1=1:2:3\nweight.1=2\nweight.2=1\nweight.3=1");
    start_all(&mut cluster);
    let serving = |cluster: &TestCluster, n: usize| {
        matches!(cluster.mode(n).as_deref(), Some("leader" | "follower"))
    };

    // Without server 2 (weight 1): 1 and 3 weigh 3 of 4, a quorum.
    cluster.kill9(2);
    let survivors = format!("{},{}", cluster.client_addr(1), cluster.client_addr(3));
    let client = connect(&survivors);
    wait_for("a write without server 2", FAILOVER_S, || {
        client
            .create("/weighted", Some(b"1"), &open(), CreateMode::Persistent)
            .is_ok()
    });
    cluster.restart(2);
    cluster.wait_modes(deadline(SETTLE_S));

    // Without server 1 (weight 2): 2 and 3 weigh 2 of 4, no quorum; nobody leads.
    cluster.kill9(1);
    wait_for("2 and 3 stop serving without server 1", FAILOVER_S, || {
        !serving(&cluster, 2) && !serving(&cluster, 3)
    });
    let watched_until = deadline(5);
    while Instant::now() < watched_until {
        for n in [2, 3] {
            assert!(
                !serving(&cluster, n),
                "server {n} serves without a quorum by weight: {:?}",
                cluster.mode(n)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Server 1 back: a quorum again, and the write made without server 2 is there.
    cluster.restart(1);
    cluster.wait_modes(deadline(SETTLE_S));
    let client = connect(&cluster.hosts());
    let (data, _) = client.get_data("/weighted", false).expect("getData");
    assert_eq!(data.as_deref(), Some(&b"1"[..]));
}

#[test]
fn reconfig_missed_while_down_is_taken_from_the_election() {
    // ZooKeeper 3.8: election notifications carry the sender's configuration. A server
    // that was down while a reconfig removed one of its fellow voters, which then stopped,
    // finds too few of its old voters to elect; it takes the newer configuration from the
    // first notification it hears, and follows.
    let mut cluster = reconfig_cluster("");
    start_all(&mut cluster);
    let leader = cluster.leader();
    let mut others = (1..=3).filter(|&n| n != leader);
    let (missed, removed) = match (others.next(), others.next()) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!("two followers besides leader {leader}"),
    };
    let admin = connect(&cluster.client_addr(leader));
    admin.add_auth("digest", b"super:secret");
    // Server 4 made a voter with only the leader beside it: an observer never acks a
    // proposal, so this could never commit, and ZooKeeper refuses it (its
    // `isQuorumSynced` counts followers only).
    let spec = |n: usize, role: &str| {
        format!(
            "server.{n}={}:{role};{}",
            cluster.server_address(n),
            cluster.client_port(n)
        )
    };
    let two_voters = format!(
        "{},{},{},{}",
        spec(leader, "participant"),
        spec(4, "participant"),
        spec(missed, "observer"),
        spec(removed, "observer")
    );
    let err = admin
        .reconfig(None, None, Some(&two_voters), -1)
        .expect_err("no synced quorum of the new voters");
    assert_eq!(err.code(), Some(ErrorCode::NewConfigNoQuorum), "{err}");
    // Four voters first, so that the removal below still has a quorum of followers.
    let server_4 = format!(
        "server.4={}:participant;{}",
        cluster.server_address(4),
        cluster.client_port(4)
    );
    admin
        .reconfig(Some(&server_4), None, None, -1)
        .expect("make server 4 a participant");
    wait_mode(&cluster, 4, "follower", deadline(40));
    cluster.kill9(missed);
    let (data, _) = admin
        .reconfig(None, Some(&removed.to_string()), None, -1)
        .expect("remove a follower while another is down");
    let text = String::from_utf8(data.unwrap_or_default().to_vec()).expect("utf-8");
    assert!(!text.contains(&format!("server.{removed}=")), "{text}");
    cluster.kill9(removed);
    // Its voters are 1..=4, of which two answer: no quorum of its own.
    cluster.start_node(missed);
    wait_mode(&cluster, missed, "follower", deadline(SETTLE_S));
    let on_missed = connect(&cluster.client_addr(missed));
    assert_eq!(synced_config(&on_missed), text);
    on_missed
        .create("/after-rejoin", None, &open(), CreateMode::Persistent)
        .expect("write through the server that missed the reconfig");
}

/// The body of a create of `path` (no data, persistent) whose ACL is `(31, sasl, id)`,
/// `id` sent as raw bytes, plus world:anyone with every permission.
fn raw_create_with_sasl_id(path: &str, id: &[u8]) -> Vec<u8> {
    let mut body = common::jute_string(path);
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&2i32.to_be_bytes());
    push_acl_entry(&mut body, "sasl", id);
    push_acl_entry(&mut body, "world", b"anyone");
    body.extend_from_slice(&0i32.to_be_bytes());
    body
}

#[test]
fn writes_whose_txns_outgrow_their_requests_replicate_or_fail_in_order() {
    // A request's invalid UTF-8 is read as U+FFFD, three bytes each: with jute.maxbuffer at
    // 8 MiB, a create whose ACL id is 3 MB of 0xFF makes a 9 MB txn (beyond the request
    // limit the quorum wire once had: the proposal was dropped and the followers' trees
    // went apart), and one of 6 MB an 18 MB txn, beyond any log record and any forwarded
    // request. The first must reach every server; the second is MarshallingError whether
    // it comes through a follower or the leader, and the session's next write is answered.
    let mut cluster = TestCluster::configure(3, 0);
    cluster.add_config("jute.maxbuffer=8388608");
    for n in 1..=3 {
        cluster.start_node(n);
    }
    cluster.wait_modes(deadline(SETTLE_S));
    let leader = cluster.leader();
    let followers: Vec<usize> = (1..=3).filter(|&n| n != leader).collect();
    // Server n's client address is addrs[n - 1].
    let addrs: Vec<std::net::SocketAddr> = (1..=3)
        .map(|n| cluster.client_addr(n).parse().expect("client address"))
        .collect();
    let raw = |n: usize| -> common::RawClient {
        let mut c = common::RawClient::connect(addrs[n - 1]);
        c.stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        c.handshake(0, 0, &[0; 16]).expect("session");
        c
    };

    let mut a = raw(followers[0]);
    let (_, _, err, _) = a
        .request(
            1,
            1,
            &raw_create_with_sasl_id("/grown", &vec![0xff; 3_000_000]),
        )
        .expect("create /grown through a follower");
    assert_eq!(err, 0, "a 9 MB txn is within a log record");

    let (_, _, err, _) = a
        .request(
            2,
            1,
            &raw_create_with_sasl_id("/too-big-f", &vec![0xff; 6_000_000]),
        )
        .expect("an answer, not silence");
    assert_eq!(
        err,
        ErrorCode::MarshallingError as i32,
        "through a follower"
    );
    let (_, _, err, _) = a
        .request(3, 1, &raw_create_body("/after-f"))
        .expect("the session's next write through the follower");
    assert_eq!(err, 0);

    let mut l = raw(leader);
    let (_, _, err, _) = l
        .request(
            1,
            1,
            &raw_create_with_sasl_id("/too-big-l", &vec![0xff; 6_000_000]),
        )
        .expect("an answer, not silence");
    assert_eq!(err, ErrorCode::MarshallingError as i32, "on the leader");
    let (_, _, err, _) = l
        .request(2, 1, &raw_create_body("/after-l"))
        .expect("the session's next write on the leader");
    assert_eq!(err, 0);

    // A write on the grown node through the other follower: it has the node too.
    let mut b = raw(followers[1]);
    let mut set = common::jute_string("/grown");
    set.extend_from_slice(&1i32.to_be_bytes());
    set.push(b'y');
    set.extend_from_slice(&(-1i32).to_be_bytes());
    let (_, _, err, _) = b.request(1, 5, &set).expect("setData /grown");
    assert_eq!(err, 0);

    for n in 1..=3 {
        let mut c = raw(n);
        c.request(1, 9, &common::jute_string("/")).expect("sync");
        for (xid, path, present) in [
            (2, "/grown", true),
            (3, "/after-f", true),
            (4, "/after-l", true),
            (5, "/too-big-f", false),
            (6, "/too-big-l", false),
        ] {
            let mut exists = common::jute_string(path);
            exists.push(0);
            let (_, _, err, _) = c.request(xid, 3, &exists).expect("exists");
            let want = if present { 0 } else { ErrorCode::NoNode as i32 };
            assert_eq!(err, want, "{path} on server {n}");
        }
        assert!(
            cluster.is_running(n),
            "server {n} died: {}",
            cluster.log_tails()
        );
    }
}
