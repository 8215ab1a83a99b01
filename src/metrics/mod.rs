//! Measurements and their views: `mntr` (ZooKeeper's key set plus Corral's own), the admin
//! server's `monitor` JSON and the Prometheus text exposition all read the one list
//! [`collect`] builds from a gather (`server::fourlw::Gathered`).
//!
//! Ownership: every number belongs to the executor that produces it, as plain fields (no
//! atomics, no locks). Shards keep a [`ShardStats`] in their state (request latency by
//! class, bytes, connections accepted and refused); the ZAB executor keeps a [`ZabStats`] in
//! a thread-local of its own thread (fdatasync latency, records per group commit,
//! append-to-sync latency, snapshots), which keeps the additions to its loop to a few lines.
//! A scrape asks every shard and the ZAB executor for a copy through the four-letter-word
//! gather, then sums counters and merges histograms.
//!
//! Units: Corral measures durations in microseconds where it has them (fdatasync, group
//! commit, snapshots) and in milliseconds for request latency (the shards' clock). ZooKeeper's
//! keys keep ZooKeeper's units (milliseconds); Corral's own Prometheus metrics are in seconds.

pub mod prometheus;
pub mod summary;
pub mod zk_names;

use crate::server::fourlw::Gathered;
pub use summary::Summary;
use zk_names::{ZkKey, ZK38_MNTR};

/// What one shard counts (summed over shards at scrape). Reset never: Prometheus counters
/// must only grow (`srst` resets the separate `ShardCounters` that `srvr` reports).
#[derive(Debug, Clone, Default)]
pub struct ShardStats {
    /// Reads, from arrival to the reply encoded (ms): ZooKeeper's `readlatency`.
    pub read_latency_ms: Summary,
    /// Writes and syncs, from arrival to the reply encoded (ms): `updatelatency`.
    pub write_latency_ms: Summary,
    /// Bytes read from client sockets: `bytes_received_count`.
    pub bytes_received: u64,
    /// Bytes written to client sockets: `response_bytes`.
    pub bytes_sent: u64,
    /// Connections accepted: `connection_request_count`.
    pub connections_accepted: u64,
    /// Connections refused by `maxClientCnxns`: `connection_rejected`.
    pub connections_rejected: u64,
    /// Sizes of the replies and notifications framed: `*_client_response_size`.
    pub response_sizes: ResponseSizes,
}

/// Sizes of the frames a shard wrote to clients (replies and watch notifications, not the
/// connect response, as ZooKeeper counts them): header and body, without the 4-byte length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseSizes {
    /// Frames counted; while 0 the sizes below mean nothing (ZooKeeper prints -1).
    pub count: u64,
    pub last_bytes: i64,
    pub min_bytes: i64,
    pub max_bytes: i64,
    /// When the last one was framed (ms since the epoch): the newest across shards is `last`.
    pub last_at_ms: i64,
}

impl ResponseSizes {
    /// Counts one frame of `len_bytes`.
    pub fn record(&mut self, len_bytes: usize, now_ms: i64) {
        let len_bytes = len_bytes as i64;
        if self.count == 0 {
            self.min_bytes = len_bytes;
            self.max_bytes = len_bytes;
        } else {
            self.min_bytes = self.min_bytes.min(len_bytes);
            self.max_bytes = self.max_bytes.max(len_bytes);
        }
        self.count += 1;
        self.last_bytes = len_bytes;
        self.last_at_ms = now_ms;
    }

    /// Folds another shard's sizes into these.
    pub fn merge(&mut self, other: &ResponseSizes) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        self.min_bytes = self.min_bytes.min(other.min_bytes);
        self.max_bytes = self.max_bytes.max(other.max_bytes);
        if other.last_at_ms >= self.last_at_ms {
            self.last_bytes = other.last_bytes;
            self.last_at_ms = other.last_at_ms;
        }
        self.count += other.count;
    }

    /// (last, min, max), or ZooKeeper's -1 for each before the first frame.
    pub fn zk_values(&self) -> (i64, i64, i64) {
        if self.count == 0 {
            (-1, -1, -1)
        } else {
            (self.last_bytes, self.min_bytes, self.max_bytes)
        }
    }
}

thread_local! {
    /// A shard's response sizes: the reply encoders have only the output buffer at hand, and
    /// each shard is one thread, so the shard reads its own copy when it reports.
    static RESPONSE_SIZES: std::cell::Cell<ResponseSizes> =
        std::cell::Cell::new(ResponseSizes::default());
}

/// Counts one frame written to a client by this shard's thread.
pub fn response_framed(len_bytes: usize) {
    RESPONSE_SIZES.with(|c| {
        let mut sizes = c.get();
        sizes.record(len_bytes, crate::runtime::now_ms());
        c.set(sizes);
    });
}

/// Forgets this shard thread's response sizes (`srst`).
pub fn reset_response_sizes() {
    RESPONSE_SIZES.with(|c| c.set(ResponseSizes::default()));
}

/// This shard thread's response sizes so far.
pub fn response_sizes() -> ResponseSizes {
    RESPONSE_SIZES.with(|c| c.get())
}

/// What the ZAB executor measures.
#[derive(Debug, Clone, Default)]
pub struct ZabStats {
    /// One fdatasync of the transaction log (µs).
    pub fdatasync_us: Summary,
    /// Records covered by one fdatasync.
    pub batch_records: Summary,
    /// From the group commit's first input to its fdatasync done, once per record (µs):
    /// append-to-durable, which in standalone mode is proposal-to-commit.
    pub append_to_sync_us: Summary,
    /// From capturing the tree to the snapshot file written (µs).
    pub snapshot_us: Summary,
    /// Snapshots that failed to write.
    pub snapshot_failures: u64,
    /// The last snapshot written (before any: the state recovered at startup).
    pub last_snapshot: LastSnapshot,
    /// Replication (all zero in standalone mode).
    pub quorum: QuorumStats,
}

/// What the ZAB executor counts of replication: ZooKeeper's quorum metrics, with its names.
#[derive(Debug, Clone, Default)]
pub struct QuorumStats {
    /// Times this server started looking for a leader: `looking_count`.
    pub looking_count: u64,
    /// From starting to look to the election decided (ms): `election_time`.
    pub election_time_ms: Summary,
    /// Learners synced by DIFF or TRUNC (leader): `diff_count`.
    pub diff_syncs: u64,
    /// Learners synced by a snapshot (leader): `snap_count`.
    pub snap_syncs: u64,
    /// Proposals made (leader): `proposal_count`.
    pub proposals: u64,
    /// Proposals committed (leader): `commit_count`.
    pub commits: u64,
    /// PROPOSAL frames received (follower): `learner_proposal_received_count`.
    pub proposals_received: u64,
    /// COMMIT (follower) and INFORM (observer) frames received:
    /// `learner_commit_received_count`.
    pub commits_received: u64,
    /// From the election decided to UPTODATE (learner, ms): `follower_sync_time`.
    pub follower_sync_time_ms: Summary,
    /// From a proposal to its commit (leader, ms): `quorum_ack_latency`.
    pub quorum_ack_latency_ms: Summary,
    /// From a txn's time (the leader's wall clock) to its PROPOSAL arriving (follower, ms):
    /// `proposal_latency`. Negative gaps (clock skew) are skipped, as ZooKeeper skips them.
    pub proposal_latency_ms: Summary,
}

/// A snapshot's zxid and when it was written (ms since the epoch).
#[derive(Debug, Clone, Copy, Default)]
pub struct LastSnapshot {
    pub zxid: i64,
    pub time_ms: i64,
}

thread_local! {
    /// The ZAB executor's measurements; only its thread ever touches this copy.
    static ZAB_STATS: std::cell::RefCell<ZabStats> = std::cell::RefCell::new(ZabStats::default());
}

/// Records one group commit: `batch_started` is when the loop began gathering it,
/// `sync_started` when its fdatasync was issued (both on the ZAB executor, now is done).
pub fn zab_synced(
    batch_started: std::time::Instant,
    sync_started: std::time::Instant,
    records: usize,
) {
    let fdatasync_us = sync_started.elapsed().as_micros() as u64;
    let append_to_sync_us = batch_started.elapsed().as_micros() as u64;
    ZAB_STATS.with(|s| {
        let mut s = s.borrow_mut();
        s.fdatasync_us.record(fdatasync_us);
        s.batch_records.record(records as u64);
        s.append_to_sync_us
            .record_n(append_to_sync_us, records as u64);
    });
}

/// Records one snapshot of `zxid` (ZAB executor), written or failed.
pub fn zab_snapshot_done(started: std::time::Instant, zxid: i64, ok: bool) {
    let us = started.elapsed().as_micros() as u64;
    ZAB_STATS.with(|s| {
        let mut s = s.borrow_mut();
        if ok {
            s.snapshot_us.record(us);
            s.last_snapshot = LastSnapshot {
                zxid,
                time_ms: crate::runtime::now_ms(),
            };
        } else {
            s.snapshot_failures += 1;
        }
    });
}

/// Updates the replication counters (ZAB executor).
pub fn zab_quorum(update: impl FnOnce(&mut QuorumStats)) {
    ZAB_STATS.with(|s| update(&mut s.borrow_mut().quorum));
}

/// A copy of the ZAB executor's measurements (call on the ZAB executor).
pub fn zab_stats() -> ZabStats {
    let mut stats = ZAB_STATS.with(|s| s.borrow().clone());
    if stats.last_snapshot.time_ms == 0 {
        let startup = STARTUP.get().copied().unwrap_or_default();
        stats.last_snapshot = LastSnapshot {
            zxid: startup.last_zxid,
            time_ms: crate::server::fourlw::started_ms(),
        };
    }
    stats
}

/// Facts about startup (recovery), set once before the executors start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Startup {
    pub recovery_ms: u64,
    pub txns_replayed: u64,
    pub last_zxid: i64,
}

static STARTUP: std::sync::OnceLock<Startup> = std::sync::OnceLock::new();

/// Remembers how recovery went (for `dbinittime`, `startup_txns_loaded`).
pub fn set_startup(s: Startup) {
    let _ = STARTUP.set(s);
}

/// One value of `mntr` / `monitor`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Value {
    /// As `mntr` prints it (floats the way Java prints a double rounded to 4 places).
    pub fn text(&self) -> String {
        match self {
            Value::Int(v) => v.to_string(),
            Value::Float(v) => java_double(*v),
            Value::Str(s) => s.clone(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            Value::Str(_) => None,
        }
    }
}

/// `1.0`, `0.2273`: a double rounded to 4 decimals, printed as Java's `Double.toString`
/// prints it (always a decimal point).
pub fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return "0.0".to_string();
    }
    let r = (v * 10_000.0).round() / 10_000.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        format!("{r}")
    }
}

/// Sums over shards and what the ZAB executor reported: everything the views need.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub received: u64,
    pub sent: u64,
    pub connections: usize,
    pub outstanding: usize,
    pub lat_min: i64,
    pub lat_avg: f64,
    pub lat_max: i64,
    pub watches: usize,
    pub reported_watches: usize,
    pub watch_paths: usize,
    pub watch_conns: usize,
    pub ephemerals: usize,
    pub shard: ShardStats,
}

/// Adds up the shards' reports.
pub fn totals(g: &Gathered) -> Totals {
    let mut t = Totals {
        lat_min: i64::MAX,
        ..Totals::default()
    };
    let mut count = 0u64;
    let mut sum = 0i64;
    for r in &g.reports {
        t.received += r.counters.packets_received;
        t.sent += r.counters.packets_sent;
        t.connections += r.conns.len();
        t.outstanding += r.outstanding;
        t.lat_min = t.lat_min.min(r.counters.latency_min_ms);
        t.lat_max = t.lat_max.max(r.counters.latency_max_ms);
        count += r.counters.latency_count;
        sum += r.counters.latency_sum_ms;
        t.watches += r.watch_count;
        t.reported_watches += r.reported_watch_count;
        t.watch_paths += r.watch_paths;
        t.watch_conns += r.watch_conns;
        let s = &r.stats;
        t.shard.read_latency_ms.merge(&s.read_latency_ms);
        t.shard.write_latency_ms.merge(&s.write_latency_ms);
        t.shard.bytes_received += s.bytes_received;
        t.shard.bytes_sent += s.bytes_sent;
        t.shard.connections_accepted += s.connections_accepted;
        t.shard.connections_rejected += s.connections_rejected;
        t.shard.response_sizes.merge(&s.response_sizes);
    }
    if count == 0 {
        t.lat_min = 0;
    } else {
        t.lat_avg = sum as f64 / count as f64;
    }
    t.ephemerals = g.zab.ephemeral_count;
    t
}

/// ZooKeeper's node count includes the root twice (its tree maps both "" and "/"),
/// and monitoring compares against that number.
pub fn node_count(g: &Gathered) -> usize {
    g.zab.node_count + 1
}

/// Milliseconds since the server started.
pub fn uptime_ms() -> i64 {
    crate::runtime::now_ms() - crate::server::fourlw::started_ms()
}

/// The value of a ZooKeeper gauge or counter, where Corral has the concept.
fn zk_plain(name: &str, g: &Gathered, t: &Totals) -> Option<Value> {
    use Value::{Float, Int, Str};
    let zab = &g.zab.stats;
    Some(match name {
        "version" => Str(crate::server::fourlw::version_line()),
        "server_state" => Str(g.zab.mode.to_string()),
        "ephemerals_count" => Int(t.ephemerals as i64),
        "num_alive_connections" => Int(t.connections as i64),
        "avg_latency" => Float(t.lat_avg),
        "min_latency" => Int(t.lat_min),
        "max_latency" => Int(t.lat_max),
        "outstanding_requests" => Int(t.outstanding as i64),
        "znode_count" => Int(node_count(g) as i64),
        "global_sessions" => Int(g.zab.session_count as i64),
        "packets_sent" => Int(t.sent as i64),
        "packets_received" => Int(t.received as i64),
        "watch_count" => Int(t.watches as i64),
        "approximate_data_size" => Int(g.zab.approximate_data_bytes as i64),
        "open_file_descriptor_count" => Int(crate::util::fd_counts().0 as i64),
        "max_file_descriptor_count" => Int(crate::util::fd_counts().1 as i64),
        "uptime" => Int(uptime_ms()),
        "connection_drop_probability" => Float(0.0),
        // Plaintext connections from loopback vs elsewhere would need a per-connection
        // split; every Corral connection is non-mTLS, so all are counted as remote.
        "non_mtls_remote_conn_count" => Int(t.connections as i64),
        "last_client_response_size" => Int(t.shard.response_sizes.zk_values().0),
        "min_client_response_size" => Int(t.shard.response_sizes.zk_values().1),
        "max_client_response_size" => Int(t.shard.response_sizes.zk_values().2),
        "bytes_received_count" => Int(t.shard.bytes_received as i64),
        "response_bytes" => Int(t.shard.bytes_sent as i64),
        "connection_request_count" => Int(t.shard.connections_accepted as i64),
        "connection_rejected" => Int(t.shard.connections_rejected as i64),
        "looking_count" => Int(zab.quorum.looking_count as i64),
        "diff_count" => Int(zab.quorum.diff_syncs as i64),
        "snap_count" => Int(zab.quorum.snap_syncs as i64),
        "proposal_count" => Int(zab.quorum.proposals as i64),
        "commit_count" => Int(zab.quorum.commits as i64),
        "learner_proposal_received_count" => Int(zab.quorum.proposals_received as i64),
        "learner_commit_received_count" => Int(zab.quorum.commits_received as i64),
        "unrecoverable_error_count" => Int(zab.snapshot_failures as i64),
        _ => return None,
    })
}

/// The summary behind a ZooKeeper summary key, in ZooKeeper's unit, where Corral has one.
pub(crate) fn zk_summary(name: &str, g: &Gathered, t: &Totals) -> Option<Summary> {
    let zab = &g.zab.stats;
    let startup = STARTUP.get().copied().unwrap_or_default();
    let one = |v: u64| {
        let mut s = Summary::default();
        s.record(v);
        s
    };
    Some(match name {
        "fsynctime" => zab.fdatasync_us.scaled_down(1000),
        "sync_processor_batch_size" => zab.batch_records.clone(),
        "sync_processor_queue_and_flush_time_ms" => zab.append_to_sync_us.scaled_down(1000),
        "snapshottime" => zab.snapshot_us.scaled_down(1000),
        "election_time" => zab.quorum.election_time_ms.clone(),
        "follower_sync_time" => zab.quorum.follower_sync_time_ms.clone(),
        "quorum_ack_latency" => zab.quorum.quorum_ack_latency_ms.clone(),
        "proposal_latency" => zab.quorum.proposal_latency_ms.clone(),
        "readlatency" => t.shard.read_latency_ms.clone(),
        "updatelatency" => t.shard.write_latency_ms.clone(),
        "dbinittime" if STARTUP.get().is_some() => one(startup.recovery_ms),
        "startup_txns_loaded" if STARTUP.get().is_some() => one(startup.txns_replayed),
        _ => return None,
    })
}

/// Every `mntr` key and value, without the `zk_` prefix: ZooKeeper 3.8's keys in its
/// order, then Corral's own (`corral_*`).
pub fn collect(g: &Gathered) -> Vec<(String, Value)> {
    let t = totals(g);
    let mut out: Vec<(String, Value)> = Vec::with_capacity(ZK38_MNTR.len() * 5 + 32);
    for key in ZK38_MNTR {
        match *key {
            ZkKey::Gauge(name) | ZkKey::Counter(name) => {
                let v = zk_plain(name, g, &t).unwrap_or(Value::Int(0));
                out.push((name.to_string(), v));
            }
            ZkKey::Summary(name) | ZkKey::Quantiles(name) => {
                let s = zk_summary(name, g, &t).unwrap_or_default();
                out.push((format!("avg_{name}"), Value::Float(s.mean())));
                out.push((format!("min_{name}"), Value::Int(s.min() as i64)));
                out.push((format!("max_{name}"), Value::Int(s.max() as i64)));
                out.push((format!("cnt_{name}"), Value::Int(s.count() as i64)));
                out.push((format!("sum_{name}"), Value::Int(s.sum() as i64)));
                if matches!(key, ZkKey::Quantiles(_)) {
                    for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)]
                    {
                        out.push((format!("{label}_{name}"), Value::Int(s.quantile(q) as i64)));
                    }
                }
            }
        }
    }
    quorum_keys(g, &mut out);
    corral_keys(g, &mut out);
    out
}

/// The gauges ZooKeeper 3.8's `mntr` adds in replicated mode, numeric ones only (for
/// Prometheus, which exports them as gauges under the same names).
pub const QUORUM_GAUGES: &[&str] = &[
    "observer_master_id",
    "min_proposal_size",
    "max_proposal_size",
    "synced_followers",
    "synced_non_voting_followers",
    "synced_observers",
    "last_proposal_size",
    "pending_syncs",
    "leader_uptime",
    "learners",
    "quorum_size",
];

/// The keys ZooKeeper 3.8's `mntr` adds in replicated mode, each where a 3.8.0 ensemble's
/// leader, follower and observer printed it: right after the key named first. Left out, as
/// the per-namespace sets are: the leader's per-learner summary sets
/// (`zk_*_<id>_learner_handler_qp_size`, `..._qp_time_ms`), named by learner id.
fn quorum_keys(g: &Gathered, out: &mut Vec<(String, Value)>) {
    use Value::{Int, Str};
    let Some(q) = &g.zab.quorum else { return };
    let mut after = |anchor: &str, key: &str, v: Value| {
        let at = out
            .iter()
            .position(|(k, _)| k == anchor)
            .map_or(out.len(), |i| i + 1);
        out.insert(at, (key.to_string(), v));
    };
    after("server_state", "peer_state", Str(q.peer_state.to_string()));
    if let Some(id) = q.observer_master_id {
        after("peer_state", "observer_master_id", Int(id as i64));
    }
    if let Some((learners, uptime_ms)) = q.leader {
        let (last, min, max) = g.zab.proposal_sizes.unwrap_or((-1, -1, -1));
        let count = |n: usize| Int(n as i64);
        after("avg_latency", "min_proposal_size", Int(min));
        after("packets_received", "max_proposal_size", Int(max));
        after(
            "max_client_response_size",
            "synced_followers",
            count(learners.synced_followers),
        );
        after(
            "watch_count",
            "synced_non_voting_followers",
            count(learners.synced_non_voting_followers),
        );
        after(
            "synced_non_voting_followers",
            "synced_observers",
            count(learners.synced_observers),
        );
        after(
            "open_file_descriptor_count",
            "last_proposal_size",
            Int(last),
        );
        after(
            "last_proposal_size",
            "pending_syncs",
            count(learners.pending_syncs),
        );
        after("pending_syncs", "leader_uptime", Int(uptime_ms));
        after(
            "outstanding_tls_handshake",
            "learners",
            count(learners.learners),
        );
    }
    after(
        "non_mtls_local_conn_count",
        "quorum_size",
        Int(q.quorum_size as i64),
    );
}

/// Corral's own `mntr` keys.
fn corral_keys(g: &Gathered, out: &mut Vec<(String, Value)>) {
    let zab = &g.zab.stats;
    let mut push = |k: String, v: Value| out.push((k, v));
    push("corral_shards".into(), Value::Int(g.reports.len() as i64));
    let quantiles = |push: &mut dyn FnMut(String, Value), base: &str, s: &Summary| {
        push(format!("{base}_count"), Value::Int(s.count() as i64));
        push(format!("{base}_avg"), Value::Float(s.mean()));
        for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
            push(format!("{base}_{label}"), Value::Int(s.quantile(q) as i64));
        }
        push(format!("{base}_max"), Value::Int(s.max() as i64));
    };
    quantiles(&mut push, "corral_fdatasync_us", &zab.fdatasync_us);
    quantiles(&mut push, "corral_group_commit_records", &zab.batch_records);
    quantiles(
        &mut push,
        "corral_append_to_sync_us",
        &zab.append_to_sync_us,
    );
    quantiles(&mut push, "corral_snapshot_us", &zab.snapshot_us);
    push(
        "corral_snapshot_failures".into(),
        Value::Int(zab.snapshot_failures as i64),
    );
    for r in &g.reports {
        let id = r.shard;
        push(
            format!("corral_shard{id}_connections"),
            Value::Int(r.conns.len() as i64),
        );
        push(
            format!("corral_shard{id}_outstanding_requests"),
            Value::Int(r.outstanding as i64),
        );
    }
}

/// The `mntr` text: one `zk_<key>\t<value>` line per key.
pub fn mntr_text(g: &Gathered) -> String {
    let mut s = String::new();
    for (k, v) in collect(g) {
        s.push_str("zk_");
        s.push_str(&k);
        s.push('\t');
        s.push_str(&v.text());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_double_prints_like_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(2.6), "2.6");
        assert_eq!(java_double(0.227_272_7), "0.2273");
        assert_eq!(java_double(f64::NAN), "0.0");
    }

    #[test]
    fn response_sizes_merge_keeps_the_newest_last_and_the_extremes() {
        assert_eq!(ResponseSizes::default().zk_values(), (-1, -1, -1));
        let mut a = ResponseSizes::default();
        a.record(16, 100);
        a.record(4, 200);
        let mut b = ResponseSizes::default();
        b.record(1024, 150);
        let mut total = ResponseSizes::default();
        total.merge(&ResponseSizes::default());
        total.merge(&b);
        total.merge(&a);
        assert_eq!(total.zk_values(), (4, 4, 1024));
        assert_eq!(total.count, 3);
        let mut reversed = a;
        reversed.merge(&b);
        assert_eq!(
            reversed.zk_values(),
            (4, 4, 1024),
            "the order of shards does not matter"
        );
    }

    #[test]
    fn zk_key_table_has_every_key_of_the_real_server() {
        let mut n = 0;
        for k in ZK38_MNTR {
            n += match k {
                ZkKey::Gauge(_) | ZkKey::Counter(_) => 1,
                ZkKey::Summary(_) => 5,
                ZkKey::Quantiles(_) => 9,
            };
        }
        // The count of keys a ZooKeeper 3.8.0 standalone server printed.
        assert_eq!(n, 485);
    }
}
