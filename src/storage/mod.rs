//! Durability: the transaction log, snapshots, recovery, epoch files and purge.
//!
//! Layout on disk, as ZooKeeper's: `<dataLogDir>/version-2/log.<zxid>` (see [`txn_log`]),
//! `<dataDir>/version-2/snapshot.<zxid>` (see [`snapshot`]), `<dataDir>/version-2/acceptedEpoch`
//! and `currentEpoch` (see [`epoch`]). Byte tables: `docs/storage.md`.
//!
//! How the ZAB executor uses this module:
//! 1. At start, [`open`] loads the newest valid snapshot, replays the log after it (repairing
//!    a torn tail, refusing to start on corruption) and returns a [`Recovered`]: the tree, the
//!    session table and the last zxid. Blocking std I/O: it runs before serving.
//! 2. On the ZAB executor, [`txn_log::LogWriter::open`] with `Recovered::last_zxid`; then
//!    `append` each record as it is ordered, and one sync at a time
//!    ([`txn_log::LogWriter::start_sync`], run by a task, [`txn_log::LogWriter::finish_sync`])
//!    covers everything appended before it began; acknowledge up to the zxid it returns
//!    (group commit).
//! 3. After each sync, [`SnapshotPolicy::after_sync`] says whether to snapshot; if so, the
//!    executor starts a [`snapshot::SnapshotCapture`] at its tree's last zxid (the log
//!    goes on in its segment), copies a step of nodes per loop turn while writes go on (a fuzzy
//!    snapshot, replayed at recovery with [`crate::tree::DataTree::apply_replayed`]), and
//!    once the log is synced up to the tree's zxid at the walk's end writes the image off
//!    the executor ([`snapshot::write_snapshot_async`]). Then [`purge`] if configured.
//!
//! Matches `FileTxnSnapLog`, `FileTxnLog`, `FileSnap`, `PurgeTxnLog`.

pub mod epoch;
pub mod fs;
pub mod purge;
pub mod record;
pub mod recovery;
pub mod sim;
pub mod snapshot;
pub mod txn_log;
pub mod zk_import;

pub use purge::{purge, purge_in};
pub use recovery::{recover_log, LogRecovery, RecoveryError, RecoveryMode};
pub use snapshot::{SnapshotError, SnapshotImage};
pub use txn_log::{LogOptions, LogWriter};

use crate::proto::SessionId;
use crate::tree::DataTree;
use bytes::Bytes;
use std::path::{Path, PathBuf};

/// The sub-directory ZooKeeper keeps its files in (its on-disk format version 2). We keep
/// the name so operators find files where they expect them; the files inside are ours.
pub const VERSION_DIR: &str = "version-2";

/// `<dir>/version-2`.
pub fn version_dir(dir: &Path) -> PathBuf {
    dir.join(VERSION_DIR)
}

/// An I/O failure of the log writer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Any failure but a clean allocation failure: the writer must not be used again (after
    /// a failed write or fdatasync the page cache is in an unknown state).
    #[error("{op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    /// `ENOSPC` or `EDQUOT` while creating a segment or zero-filling the room for a batch,
    /// before any byte of the batch was written. The writer is exactly as before the
    /// `sync` that failed (its batch still pending): the caller may retry, or drop the batch
    /// with [`LogWriter::discard_pending`].
    #[error("{op} {path}: {source}")]
    NoSpace {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

impl LogError {
    /// Whether the writer may be used again (see [`LogError::NoSpace`]).
    pub fn is_no_space(&self) -> bool {
        matches!(self, LogError::NoSpace { .. })
    }

    /// The file the failed operation was about.
    pub fn path(&self) -> &Path {
        match self {
            LogError::Io { path, .. } | LogError::NoSpace { path, .. } => path,
        }
    }
}

/// A failure to start from what is on disk.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

/// What [`open`] needs besides the directories.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Data of `/zookeeper/config` (from the running config, not from disk).
    pub config_node_data: Bytes,
    /// Snapshots that fail validation are skipped (with an error log line) until one loads;
    /// at most this many are tried, as ZooKeeper tries its newest few.
    pub snapshots_tried_max: usize,
    /// Apply the log after the snapshot to the tree (standalone). A replicated server does
    /// not: a logged record may be a proposal that never committed, so its tree starts at
    /// the snapshot and the records come back in [`Recovered::unapplied`] for ZAB to
    /// commit (or truncate) once a leader is known.
    pub replay_log: bool,
    /// Repair what a crash left (remove unfinished `*.tmp` files, zero a torn log tail).
    /// Off when a running server reloads its own files (rebuilding its tree after a refused
    /// batch or a lost role): its snapshot writer may be writing a `.tmp` file right then,
    /// and its log has no torn tail to repair.
    pub repair: bool,
}

impl OpenOptions {
    pub fn new(config_node_data: Bytes) -> Self {
        OpenOptions {
            config_node_data,
            snapshots_tried_max: 3,
            replay_log: true,
            repair: true,
        }
    }
}

/// The state a server starts from.
#[derive(Debug)]
pub struct Recovered {
    pub tree: DataTree,
    /// Live sessions (id, timeout): add them to the tracker so they expire normally if
    /// their clients are gone.
    pub sessions: Vec<(SessionId, i32)>,
    /// The last zxid in the tree (snapshot + replayed log).
    pub last_zxid: i64,
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    /// Records replayed from the log.
    pub replayed: usize,
    /// `<dataLogDir>/version-2`, for [`LogWriter::open`].
    pub log_dir: PathBuf,
    /// `<dataDir>/version-2`, for snapshots.
    pub snap_dir: PathBuf,
    /// The log's records after the snapshot, when `replay_log` was off (else empty).
    pub unapplied: Vec<crate::tree::TxnRecord>,
    /// The last zxid in the log (or the snapshot's, if the log holds nothing after it).
    pub last_logged_zxid: i64,
}

/// Loads the newest valid snapshot and replays the log after it. Repairs a torn log tail
/// (with a warn line); refuses to start on corruption. Blocking I/O: call at startup.
pub fn open(
    data_dir: &Path,
    data_log_dir: &Path,
    opts: &OpenOptions,
) -> Result<Recovered, OpenError> {
    open_in(&mut fs::StdFs, data_dir, data_log_dir, opts)
}

/// [`open`] on any [`fs::Fs`] (the power-loss check and the simulator run it on a
/// [`sim::SimDisk`]).
pub fn open_in(
    fs: &mut impl fs::Fs,
    data_dir: &Path,
    data_log_dir: &Path,
    opts: &OpenOptions,
) -> Result<Recovered, OpenError> {
    let snap_dir = version_dir(data_dir);
    let log_dir = version_dir(data_log_dir);
    for dir in [&snap_dir, &log_dir] {
        let io = |op, source| OpenError::Io {
            path: dir.clone(),
            op,
            source,
        };
        let parent = dir.parent().unwrap_or(Path::new("."));
        let existed = fs
            .list_dir(parent)
            .map_err(|e| io("listing the parent of", e))?
            .iter()
            .any(|name| name == VERSION_DIR);
        fs.create_dir_all(dir).map_err(|e| io("creating", e))?;
        if !existed {
            // The new directory's name must be durable before anything in it is: the
            // segments and snapshots written there are fsynced with their directory, not
            // with its parent.
            fs.sync_dir(parent)
                .map_err(|e| io("fsync of the parent of", e))?;
        }
    }
    if opts.repair {
        snapshot::remove_temp_files_in(fs, &snap_dir);
    }
    let mut loaded = None;
    let candidates =
        snapshot::list_snapshots_in(fs, &snap_dir).map_err(|source| OpenError::Io {
            path: snap_dir.clone(),
            op: "listing",
            source,
        })?;
    for (zxid, path) in candidates.iter().rev().take(opts.snapshots_tried_max) {
        match snapshot::load_in(fs, path, opts.config_node_data.clone()) {
            Ok(s) => {
                tracing::info!(snapshot = %path.display(), zxid = format_args!("{zxid:#x}"), nodes = s.tree.node_count(), "loaded snapshot");
                loaded = Some((path.clone(), s));
                break;
            }
            Err(e) => tracing::error!(error = %e, "skipping invalid snapshot"),
        }
    }
    if let (None, Some((_, newest))) = (&loaded, candidates.last()) {
        // Starting from the empty tree while snapshots exist would replay an incomplete log
        // and silently drop everything the snapshots hold.
        return Err(SnapshotError::NoValidSnapshot {
            dir: snap_dir,
            newest: newest.clone(),
        }
        .into());
    }
    let (snapshot_path, mut tree, mut sessions) = match loaded {
        Some((p, s)) => (Some(p), s.tree, s.sessions),
        None => (
            None,
            DataTree::new(opts.config_node_data.clone()),
            Vec::new(),
        ),
    };
    let after_zxid = tree.last_zxid();
    let mode = if opts.repair {
        RecoveryMode::Repair
    } else {
        RecoveryMode::ReadOnly
    };
    let log = recovery::recover_log_in(fs, &log_dir, after_zxid, mode)?;
    let mut live: std::collections::BTreeMap<SessionId, i32> = sessions.drain(..).collect();
    let last_logged_zxid = log.records.last().map_or(after_zxid, |r| r.zxid);
    if !opts.replay_log {
        let last_zxid = tree.last_zxid();
        tracing::info!(
            last_zxid = format_args!("{last_zxid:#x}"),
            last_logged_zxid = format_args!("{last_logged_zxid:#x}"),
            logged = log.records.len(),
            "recovered the snapshot; logged records wait for the leader"
        );
        return Ok(Recovered {
            tree,
            sessions: live.into_iter().collect(),
            last_zxid,
            snapshot: snapshot_path,
            replayed: 0,
            log_dir,
            snap_dir,
            unapplied: log.records,
            last_logged_zxid,
        });
    }
    for rec in &log.records {
        // The snapshot may be fuzzy (taken while writes went on): replay changes only what
        // it does not already show.
        tree.apply_replayed(rec);
        match &rec.txn {
            crate::tree::Txn::CreateSession { timeout_ms } => {
                live.insert(rec.session_id, *timeout_ms);
            }
            crate::tree::Txn::CloseSession { .. } => {
                live.remove(&rec.session_id);
            }
            _ => {}
        }
    }
    let last_zxid = tree.last_zxid();
    tracing::info!(
        last_zxid = format_args!("{last_zxid:#x}"),
        replayed = log.records.len(),
        sessions = live.len(),
        "recovered"
    );
    Ok(Recovered {
        tree,
        sessions: live.into_iter().collect(),
        last_zxid,
        snapshot: snapshot_path,
        replayed: log.records.len(),
        log_dir,
        snap_dir,
        unapplied: Vec::new(),
        last_logged_zxid,
    })
}

/// When to take a snapshot, as ZooKeeper's `SyncRequestProcessor`: after a randomised count
/// of transactions in `[snapCount/2 + 1, snapCount]` (so the servers of an ensemble do not
/// all snapshot at once), or once the log written since the last snapshot exceeds
/// `snapSizeLimitInKb`. Sans-IO: the randomness is a seed the caller supplies.
#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    snap_count: u32,
    snap_size_limit_bytes: Option<u64>,
    rng: u64,
    txns_since: u64,
    bytes_since: u64,
    threshold_txns: u64,
    in_progress: bool,
}

impl SnapshotPolicy {
    /// `snap_count` >= 2 (the config enforces it); `seed` from the caller's randomness.
    pub fn new(snap_count: u32, snap_size_limit_kb: Option<u64>, seed: u64) -> Self {
        assert!(snap_count >= 2, "snapCount is at least 2");
        let mut p = SnapshotPolicy {
            snap_count,
            snap_size_limit_bytes: snap_size_limit_kb.map(|kb| kb.saturating_mul(1024)),
            rng: seed | 1,
            txns_since: 0,
            bytes_since: 0,
            threshold_txns: 0,
            in_progress: false,
        };
        p.threshold_txns = p.draw();
        p
    }

    fn draw(&mut self) -> u64 {
        // xorshift64: enough to spread thresholds; not a security boundary.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = self.snap_count as u64 / 2;
        let span = self.snap_count as u64 - half; // values in [half+1, snap_count]
        half + 1 + self.rng % span
    }

    /// The transaction count that triggers the next snapshot.
    pub fn threshold_txns(&self) -> u64 {
        self.threshold_txns
    }

    /// Record a synced batch; true = take a snapshot now (and call [`Self::snapshot_done`]
    /// when it is written). While one is being written no other is asked for.
    pub fn after_sync(&mut self, txns: u64, bytes: u64) -> bool {
        self.txns_since += txns;
        self.bytes_since += bytes;
        if self.in_progress {
            return false;
        }
        let by_count = self.txns_since >= self.threshold_txns;
        let by_size = self
            .snap_size_limit_bytes
            .is_some_and(|limit| self.bytes_since >= limit);
        if by_count || by_size {
            self.in_progress = true;
            self.txns_since = 0;
            self.bytes_since = 0;
            self.threshold_txns = self.draw();
            return true;
        }
        false
    }

    /// The snapshot asked for by `after_sync` finished (written or failed).
    pub fn snapshot_done(&mut self) {
        self.in_progress = false;
    }
}

#[cfg(test)]
mod fuzzy_tests;
#[cfg(test)]
mod tests;
