//! Messages between executors: shards to the ZAB executor and back, and the reports a
//! four-letter word gathers from every shard.

use crate::proto::SessionId;
use crate::zab::{Committed, Input, Origin, ReplyTo};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug)]
pub enum ToZab {
    Input(Input),
    /// A four-letter word on `origin` wants every shard's report.
    Gather {
        origin: Origin,
        query_id: u64,
        /// Also list every session's ephemerals and the expiry buckets (`dump`): whole-table
        /// work on the ZAB executor, so only when asked.
        detail: bool,
    },
    /// One shard's answer to a gather.
    Report {
        query_id: u64,
        report: Box<ShardReport>,
    },
    /// A snapshot file (its bytes, or why there are none) of this shard's replica, asked
    /// for by [`ToShard::CaptureSnapshot`] for server `peer` (one message per peer asked).
    SnapshotReady {
        peer: u64,
        file: Result<bytes::Bytes, String>,
    },
}

#[derive(Debug)]
pub enum ToShard {
    Deliver(Arc<Vec<Committed>>),
    Revalidated {
        origin: Origin,
        session_id: SessionId,
        timeout_ms: Option<i32>,
    },
    SessionMoved {
        session_id: SessionId,
        keep: Origin,
    },
    /// Grant `origin` a read-only session (a replicated server cut off from its quorum,
    /// `readonlymode.enabled`): reads are served from this replica, writes fail with
    /// NotReadOnly.
    ReadOnlySession {
        origin: Origin,
        session_id: SessionId,
        timeout_ms: i32,
    },
    /// Close this connection: the server cannot take its session now (a replicated server
    /// with no leader); the client tries another server.
    Refuse {
        origin: Origin,
    },
    /// Answer this write with `err`: it was not applied, and takes no zxid (a standalone
    /// server whose log disk is full refuses writes with `SystemError`).
    Fail {
        reply_to: ReplyTo,
        err: crate::proto::ErrorCode,
    },
    /// Capture this replica (only committed txns) as a snapshot file with `sessions`, encode
    /// it off the executor and answer [`ToZab::SnapshotReady`] for each of `peers`: this
    /// server's own snapshot, and learners too far behind for a DIFF. The copy is taken in
    /// steps between which the shard goes on applying and serving, exact at the zxid it
    /// began at; one at a time (the ZAB executor asks again once every peer was answered).
    CaptureSnapshot {
        peers: Vec<u64>,
        sessions: Vec<(SessionId, i32)>,
    },
    /// Replace the replica (a learner installed a snapshot from its leader; no connection
    /// is open while it syncs).
    ReplaceTree(Box<crate::tree::DataTree>),
    /// Set `/zookeeper/config` outside the txn stream: the static membership got its first
    /// version when the first epoch was established (`reconfigEnabled`, as ZooKeeper's
    /// `initConfigInZKDatabase`).
    ConfigNode {
        data: bytes::Bytes,
        version_zxid: i64,
        time_ms: i64,
    },
    /// Close the read-only sessions' connections (the server rejoined its quorum).
    CloseReadOnly,
    /// Close every client connection (a replicated server lost its role; its clients
    /// reconnect elsewhere or after the next election, as ZooKeeper's do).
    CloseAll,
    /// Send your report for `query_id` to the ZAB executor.
    ReportRequest {
        query_id: u64,
    },
    /// All reports for a gather this shard asked for.
    Gathered {
        query_id: u64,
        reports: Vec<ShardReport>,
        zab: Box<ZabReport>,
    },
}

impl ToShard {
    /// The shard holding the connection a message is about, if it is about one.
    pub fn origin_shard(&self) -> Option<usize> {
        match self {
            ToShard::Revalidated { origin, .. }
            | ToShard::Refuse { origin }
            | ToShard::ReadOnlySession { origin, .. } => Some(origin.shard),
            ToShard::Fail { reply_to, .. } => Some(reply_to.origin.shard),
            _ => None,
        }
    }

    /// A copy for every shard, for the messages all shards get (session moved, closes).
    pub fn broadcast_copy(&self) -> Option<ToShard> {
        match self {
            ToShard::SessionMoved { session_id, keep } => Some(ToShard::SessionMoved {
                session_id: *session_id,
                keep: *keep,
            }),
            ToShard::CloseAll => Some(ToShard::CloseAll),
            ToShard::ConfigNode {
                data,
                version_zxid,
                time_ms,
            } => Some(ToShard::ConfigNode {
                data: data.clone(),
                version_zxid: *version_zxid,
                time_ms: *time_ms,
            }),
            ToShard::CloseReadOnly => Some(ToShard::CloseReadOnly),
            _ => None,
        }
    }
}

/// One client connection as `cons` shows it.
#[derive(Debug, Clone, Default)]
pub struct ConnReport {
    pub peer: Option<SocketAddr>,
    pub session_id: SessionId,
    pub timeout_ms: i32,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub established_ms: i64,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: i64,
    pub min_latency_ms: i64,
    pub avg_latency_ms: f64,
    pub max_latency_ms: i64,
    pub watched_paths: Vec<Arc<str>>,
}

/// Request counters and latency of one shard since the last `srst`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardCounters {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency_count: u64,
    pub latency_sum_ms: i64,
    pub latency_min_ms: i64,
    pub latency_max_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    pub shard: usize,
    pub conns: Vec<ConnReport>,
    pub counters: ShardCounters,
    pub outstanding: usize,
    /// All watches (mntr's zk_watch_count).
    pub watch_count: usize,
    /// Watches in the data table (what `wchs` reports).
    pub reported_watch_count: usize,
    pub watch_paths: usize,
    pub watch_conns: usize,
    pub watchers_by_path: Vec<(Arc<str>, Vec<SessionId>)>,
    pub last_zxid: i64,
    /// Latency histograms and byte/connection counters (`metrics`).
    pub stats: crate::metrics::ShardStats,
}

/// A replicated server's place in the ensemble, for the keys ZooKeeper's `mntr` adds in
/// replicated mode.
#[derive(Debug, Clone, Default)]
pub struct QuorumReport {
    /// ZooKeeper's `peer_state`: the role and the ZAB phase, `leading - broadcast`,
    /// `following - synchronization`, `looking - election`, ...
    pub peer_state: &'static str,
    /// Voting members of the ensemble.
    pub quorum_size: usize,
    /// On an observer: the server it learns from.
    pub observer_master_id: Option<u64>,
    /// On a leader: its learners, and milliseconds since it took the lead.
    pub leader: Option<(crate::quorum::peer::LearnerCounts, i64)>,
}

/// What only the ZAB executor knows.
#[derive(Debug, Clone, Default)]
pub struct ZabReport {
    /// `standalone`, `leader`, `follower` or `observer` (what `srvr` prints as Mode).
    pub mode: &'static str,
    /// False while a replicated server has no established role (electing, syncing): the
    /// words that report on the data answer as ZooKeeper's do then.
    pub serving: bool,
    /// On a leader: bytes of the last, smallest and largest proposal (-1 before the first).
    pub proposal_sizes: Option<(i64, i64, i64)>,
    /// A replicated server's place in the ensemble (`None` standalone).
    pub quorum: Option<QuorumReport>,
    pub last_zxid: i64,
    pub node_count: usize,
    pub approximate_data_bytes: u64,
    pub session_count: usize,
    pub ephemeral_count: usize,
    /// Filled only for a gather with `detail`.
    pub ephemerals: Vec<(SessionId, Vec<Arc<str>>)>,
    /// Filled only for a gather with `detail`.
    pub expiry_buckets: Vec<(i64, Vec<SessionId>)>,
    /// fdatasync, group-commit and snapshot measurements (`metrics`).
    pub stats: crate::metrics::ZabStats,
}
