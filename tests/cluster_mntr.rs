//! `mntr` of a 3 participants + 1 observer ensemble: the keys ZooKeeper 3.8 adds in
//! replicated mode, in its order, with the values a settled ensemble has. The expected key
//! lists are what a ZooKeeper 3.8.0 ensemble's leader, follower and observer printed
//! (`tests/fixtures/zk38_mntr_keys_{leader,follower,observer}.txt`; left out of them, as
//! of Corral's, are the dynamic sets named by learner id or top-level znode).
//!
//! `CORRAL_CLUSTER_TEST_TARGET=zookeeper` runs the same test against Apache ZooKeeper 3.8.

mod common;

use common::cluster::{Flavor, TestCluster};
use corral::client::{Client, ClientConfig};
use corral::proto::{Acl, CreateMode};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Bound on the cluster's first election (JVM start-up included), and then on the
/// leader's counts reaching every learner.
const SETTLE_S: u64 = 60;

/// Keys that name a learner or a top-level znode: dynamic in ZooKeeper, not in the lists.
fn is_dynamic(key: &str) -> bool {
    key.contains("_learner_handler_qp_") || key.ends_with("_per_namespace")
}

/// `mntr` of server `n` as (key, value) in order, without Corral's own `zk_corral_*` keys
/// and the dynamic sets; None while it does not answer with keys.
fn mntr(cluster: &TestCluster, n: usize) -> Option<Vec<(String, String)>> {
    let text = cluster.four_letter(n, "mntr")?;
    let pairs: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(k, _)| !k.starts_with("zk_corral_") && !is_dynamic(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (!pairs.is_empty()).then_some(pairs)
}

fn expected_keys(role: &str) -> Vec<String> {
    let path = format!(
        "{}/tests/fixtures/zk38_mntr_keys_{role}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn mntr_has_zookeepers_ensemble_keys_in_its_order() {
    let mut cluster = TestCluster::start(3, 1);
    let modes = cluster.wait_modes(Instant::now() + Duration::from_secs(SETTLE_S));
    let leader = cluster.leader();
    let until = Instant::now() + Duration::from_secs(SETTLE_S);
    // Learners are counted once synced: poll the leader until all three are.
    let leader_values: BTreeMap<String, String> = loop {
        let values: BTreeMap<String, String> = mntr(&cluster, leader)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let synced = |k: &str| values.get(k).map(String::as_str);
        if synced("zk_synced_followers") == Some("2") && synced("zk_synced_observers") == Some("1")
        {
            break values;
        }
        assert!(
            Instant::now() < until,
            "the leader's mntr did not count 2 synced followers and 1 observer within {SETTLE_S} s: {values:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    for (n, mode) in &modes {
        let pairs = mntr(&cluster, *n).unwrap_or_else(|| panic!("no mntr from server {n}"));
        let keys: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(
            keys,
            expected_keys(mode),
            "server {n} ({mode}): mntr keys or their order differ from ZooKeeper 3.8's"
        );
        let values: BTreeMap<&str, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(values["zk_server_state"], mode.as_str(), "server {n}");
        let peer_state = match mode.as_str() {
            "leader" => "leading - broadcast",
            "follower" => "following - broadcast",
            "observer" => "observing - broadcast",
            other => panic!("server {n}: unexpected mode {other}"),
        };
        assert_eq!(values["zk_peer_state"], peer_state, "server {n}");
        assert_eq!(values["zk_quorum_size"], "3", "server {n}");
        if mode == "observer" {
            assert_eq!(
                values["zk_observer_master_id"],
                leader.to_string(),
                "the observer learns from the leader"
            );
        }
    }

    assert_eq!(leader_values["zk_learners"], "3");
    assert_eq!(leader_values["zk_synced_non_voting_followers"], "0");
    assert_eq!(leader_values["zk_pending_syncs"], "0");
    let uptime_ms: i64 = leader_values["zk_leader_uptime"]
        .parse()
        .expect("leader_uptime is a number");
    assert!(uptime_ms >= 0, "leader_uptime {uptime_ms}");
    // No proposal yet on ZooKeeper; Corral's leader proposes nothing before a client does.
    if Flavor::from_env() == Flavor::Corral {
        assert_eq!(leader_values["zk_last_proposal_size"], "-1");
    }

    counts_replication_and_response_sizes(&cluster, &modes);
}

/// Writes through the leader, reads a 1 KiB node on every server, and checks the counters
/// ZooKeeper's quorum keeps (`proposal_count`, `learner_*_received_count`, `diff_count` +
/// `snap_count`, the latency summaries) and the response sizes, by their meaning: the same
/// assertions hold against ZooKeeper 3.8.
fn counts_replication_and_response_sizes(cluster: &TestCluster, modes: &BTreeMap<usize, String>) {
    const WRITES: i64 = 20;
    const VALUE_BYTES: usize = 1024;
    let leader = cluster.leader();
    let client = Client::connect(&cluster.client_addr(leader), ClientConfig::default())
        .expect("connect string");
    assert!(client.wait_connected(Duration::from_secs(SETTLE_S)));
    let acl = Acl::open_unsafe();
    client
        .create(
            "/mntr-counts",
            Some(&[7u8; VALUE_BYTES]),
            &acl,
            CreateMode::Persistent,
        )
        .expect("create the 1 KiB node");
    for i in 1..WRITES {
        client
            .create(
                &format!("/mntr-counts-{i}"),
                None,
                &acl,
                CreateMode::Persistent,
            )
            .expect("create");
    }
    for n in modes.keys() {
        let pinned =
            Client::connect(&cluster.client_addr(*n), ClientConfig::default()).expect("connect");
        assert!(pinned.wait_connected(Duration::from_secs(SETTLE_S)));
        pinned.sync("/mntr-counts").expect("sync");
        let (data, _) = pinned.get_data("/mntr-counts", false).expect("getData");
        assert_eq!(data.map(|d| d.len()), Some(VALUE_BYTES), "server {n}");
    }

    let int = |values: &BTreeMap<String, String>, key: &str| -> i64 {
        values
            .get(key)
            .unwrap_or_else(|| panic!("no {key}"))
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not an integer"))
    };
    let until = Instant::now() + Duration::from_secs(SETTLE_S);
    for (n, mode) in modes {
        // The commits reach the learners after the leader answered: poll until counted.
        let values = loop {
            let values: BTreeMap<String, String> =
                mntr(cluster, *n).unwrap_or_default().into_iter().collect();
            let counted = match mode.as_str() {
                "leader" => "zk_commit_count",
                _ => "zk_learner_commit_received_count",
            };
            if values.contains_key(counted) && int(&values, counted) >= WRITES {
                break values;
            }
            assert!(
                Instant::now() < until,
                "server {n} ({mode}) did not count {WRITES} commits within {SETTLE_S} s: {values:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let at_least = |key: &str, floor: i64| {
            let v = int(&values, key);
            assert!(
                v >= floor,
                "server {n} ({mode}): {key} = {v}, expected >= {floor}"
            );
        };
        // A header-only reply is 16 bytes; the largest reply here carried the 1 KiB value.
        at_least("zk_min_client_response_size", 16);
        at_least("zk_last_client_response_size", 16);
        at_least("zk_max_client_response_size", VALUE_BYTES as i64);
        at_least("zk_looking_count", 1);
        match mode.as_str() {
            "leader" => {
                at_least("zk_proposal_count", WRITES);
                at_least("zk_cnt_quorum_ack_latency", WRITES);
                at_least("zk_cnt_election_time", 1);
                let syncs = int(&values, "zk_diff_count") + int(&values, "zk_snap_count");
                assert!(
                    syncs >= 3,
                    "the leader synced {syncs} learners, expected >= 3"
                );
                assert_eq!(int(&values, "zk_learner_proposal_received_count"), 0);
            }
            "follower" => {
                at_least("zk_learner_proposal_received_count", WRITES);
                at_least("zk_cnt_proposal_latency", WRITES);
                at_least("zk_cnt_follower_sync_time", 1);
                at_least("zk_cnt_election_time", 1);
                assert_eq!(int(&values, "zk_proposal_count"), 0, "server {n}");
            }
            _ => {
                // Observers get INFORM, never PROPOSAL.
                assert_eq!(int(&values, "zk_learner_proposal_received_count"), 0);
                assert_eq!(int(&values, "zk_proposal_count"), 0, "server {n}");
            }
        }
    }
}
