//! `corral import-zk`: an Apache ZooKeeper 3.8 data directory (its `snapshot.*` and
//! `log.*` files) converted into Corral's formats.
//!
//! Reading ([`read`]) is what ZooKeeper does when it starts (`FileTxnSnapLog.restore`):
//! the newest snapshot that validates (Adler-32 seal), then every log record after its
//! zxid, in zxid order, applied with ZooKeeper's tolerant rules ([`replay`]); then the
//! ephemerals of sessions no longer in the session table are deleted, as
//! `ZooKeeperServer.loadData` does. Writing ([`write`]) builds a Corral `DataTree` from
//! the result and writes it with Corral's own snapshot writer at the last zxid, so
//! `corral server` starts from it like from any Corral snapshot.
//!
//! Decisions, per file (the log's mirror Corral's own recovery table):
//!
//! | found | newest log | older log | snapshot |
//! |-------|------------|-----------|----------|
//! | bad magic / version | error | error | skipped (next older tried) |
//! | checksum or structure fails | — | — | skipped; error if none validates |
//! | compressed (`.gz`, `.snappy`) newest | — | — | error: not supported |
//! | bad record, nothing valid after it | torn tail: tolerated, reported | the same, and the next log must continue the zxids | — |
//! | bad record, a valid record after it | error (`CorruptRecord`) | error | — |
//! | record that does not decode, unknown txn type | error | error | — |
//! | zxid gap within an epoch, or zxid going back | error | error | — |
//!
//! A torn tail is tolerated in an older log too, as ZooKeeper tolerates it (its reader
//! moves on to the next log at the first incomplete record): ZooKeeper does not sync a
//! log before starting the next one on a restart, and the record cut by the crash is
//! written again, with the same zxid, at the start of the next log. What makes that safe
//! to accept is the zxid check: within an epoch every zxid must follow the previous one,
//! so a torn tail that lost txns shows up as a gap.
//!
//! Every error names the file and the byte offset. After replay, ZooKeeper's own tree
//! digest (3.6+: stored after each txn) is recomputed and compared when the last txn
//! carries one: a mismatch means the replay differs from what ZooKeeper had, and the
//! import stops (unless told to skip the check).

pub mod format;
pub mod replay;
pub mod txn;

use crate::proto::SessionId;
use crate::storage::epoch::{self, EpochError};
use crate::storage::snapshot::{self, SnapshotError, SnapshotImage};
use crate::storage::{txn_log, version_dir, VERSION_DIR};
use crate::tree::DataTree;
use bytes::Bytes;
use format::{parse_snapshot, scan_log, FormatError, LogEnd, DIGEST_VERSION};
use replay::{Applied, ZkTree};
use std::path::{Path, PathBuf};
use txn::decode_entry;

/// ZooKeeper's file prefixes (`FileSnap.SNAPSHOT_FILE_PREFIX`, `FileTxnLog.LOG_FILE_PREFIX`).
pub const ZK_SNAPSHOT_PREFIX: &str = "snapshot.";
pub const ZK_LOG_PREFIX: &str = "log.";
/// Snapshots tried, newest first (ZooKeeper tries up to 100).
pub const SNAPSHOTS_TRIED_MAX: usize = 100;

/// Why an import cannot go on. One line each, naming the file and, for content, the offset.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{dir}: not a ZooKeeper data directory (no version-2 directory with snapshot.* or log.* files)")]
    NotZooKeeperDir { dir: PathBuf },
    #[error("{dir}: log files but no snapshot (ZooKeeper writes snapshot.0 when it first starts, and refuses to start without one too)")]
    NoSnapshot { dir: PathBuf },
    #[error("{file}: compressed snapshot ({method}) is not supported; restart ZooKeeper without zookeeper.snapshot.compression.method so that it writes an uncompressed snapshot, then import")]
    CompressedSnapshot { file: PathBuf, method: String },
    #[error("{file}: offset {offset}: {reason} (and no older snapshot validates)")]
    NoValidSnapshot {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{file}: offset {offset}: {reason}")]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{file}: offset {offset}: corrupt record ({reason}); a valid record follows at offset {next_valid}")]
    CorruptRecord {
        file: PathBuf,
        offset: u64,
        reason: String,
        next_valid: u64,
    },
    #[error("{file}: offset {offset}: zxid {zxid:#x} after {previous:#x}: {reason}")]
    ZxidOrder {
        file: PathBuf,
        offset: u64,
        zxid: i64,
        previous: i64,
        reason: &'static str,
    },
    #[error("{file}: offset {offset}: tree digest after zxid {zxid:#x} is {actual:#x}, ZooKeeper recorded {expected:#x}: the replayed tree differs from ZooKeeper's (--skip-digest-check imports anyway)")]
    DigestMismatch {
        file: PathBuf,
        offset: u64,
        zxid: i64,
        expected: i64,
        actual: i64,
    },
    #[error("the imported tree is not a valid Corral tree: {0}")]
    NotATree(#[from] crate::tree::restore::RestoreError),
    #[error("{file}: Corral data is already there; pass --force to replace it")]
    DestinationNotEmpty { file: PathBuf },
    #[error(
        "{dir}: the destination is the ZooKeeper directory itself; import into another directory"
    )]
    DestinationIsSource { dir: PathBuf },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Epoch(#[from] EpochError),
}

fn io<'p>(path: &'p Path, op: &'static str) -> impl FnOnce(std::io::Error) -> ImportError + 'p {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// A ZooKeeper directory given on the command line: the one holding `version-2`, or
/// `version-2` itself. Returns the `version-2` directory.
pub fn zk_version_dir(dir: &Path) -> PathBuf {
    if dir.file_name().is_some_and(|n| n == VERSION_DIR) {
        dir.to_path_buf()
    } else {
        version_dir(dir)
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// ZooKeeper's `<dataDir>/version-2`.
    pub snap_dir: PathBuf,
    /// ZooKeeper's `<dataLogDir>/version-2` (the same as `snap_dir` unless it had one).
    pub log_dir: PathBuf,
    /// Compare ZooKeeper's recorded tree digest with the replayed tree.
    pub check_digest: bool,
}

/// The outcome of the digest comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestCheck {
    /// Matched ZooKeeper's digest recorded at this zxid.
    Verified { zxid: i64 },
    /// Nothing to compare with (digests off, or an older ZooKeeper).
    NotRecorded,
    /// Asked not to.
    Skipped,
}

/// A torn last record of a log, tolerated as ZooKeeper tolerates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// ZooKeeper's state, read and replayed.
#[derive(Debug)]
pub struct Imported {
    pub tree: ZkTree,
    pub snapshot: PathBuf,
    pub snapshot_zxid: i64,
    /// Newer snapshots that did not validate: (file, why).
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    /// Logs read, in order, with how many of their txns were applied.
    pub logs: Vec<(PathBuf, usize)>,
    pub txns: usize,
    /// Txns that failed with NoNode/NodeExists and were ignored (already in the snapshot).
    pub txns_ignored: usize,
    pub orphan_ephemerals_removed: usize,
    /// Torn tails skipped, in log order.
    pub torn: Vec<TornTail>,
    pub digest: DigestCheck,
    /// `acceptedEpoch` / `currentEpoch`, when ZooKeeper had them (a quorum member).
    pub accepted_epoch: Option<u32>,
    pub current_epoch: Option<u32>,
}

/// `prefix<hex zxid>[.ext]` files of `dir`, sorted by zxid, with the extension (if any).
fn list_zk_files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf, String)>, ImportError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir, "listing")(e)),
    };
    for e in entries {
        let e = e.map_err(io(dir, "listing"))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let (hex, ext) = rest.split_once('.').unwrap_or((rest, ""));
        if let Ok(z) = u64::from_str_radix(hex, 16) {
            out.push((z as i64, e.path(), ext.to_string()));
        }
    }
    out.sort_by_key(|(z, _, _)| *z);
    Ok(out)
}

fn read_bytes(path: &Path) -> Result<Bytes, ImportError> {
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(io(path, "reading"))
}

fn corrupt(file: &Path, e: FormatError) -> ImportError {
    ImportError::Corrupt {
        file: file.to_path_buf(),
        offset: e.offset,
        reason: e.reason,
    }
}

/// Reads ZooKeeper's newest valid snapshot and replays its logs. Touches nothing on disk.
pub fn read(opts: &ReadOptions) -> Result<Imported, ImportError> {
    let snaps = list_zk_files(&opts.snap_dir, ZK_SNAPSHOT_PREFIX)?;
    let logs = list_zk_files(&opts.log_dir, ZK_LOG_PREFIX)?;
    if snaps.is_empty() && logs.is_empty() {
        let dir = opts.snap_dir.parent().unwrap_or(&opts.snap_dir);
        return Err(ImportError::NotZooKeeperDir {
            dir: dir.to_path_buf(),
        });
    }
    if snaps.is_empty() {
        return Err(ImportError::NoSnapshot {
            dir: opts.snap_dir.clone(),
        });
    }

    // The newest snapshot that validates.
    let mut skipped = Vec::new();
    let mut first_failure: Option<(PathBuf, FormatError)> = None;
    let mut loaded = None;
    for (zxid, path, ext) in snaps.iter().rev().take(SNAPSHOTS_TRIED_MAX) {
        if !ext.is_empty() {
            // The newest usable one is compressed: an older one may lack logs, so stop.
            if first_failure.is_none() {
                return Err(ImportError::CompressedSnapshot {
                    file: path.clone(),
                    method: ext.clone(),
                });
            }
            continue;
        }
        // A snapshot that decodes but is not a tree is skipped too, as ZooKeeper skips it.
        let parsed = parse_snapshot(read_bytes(path)?).and_then(|s| {
            let tree = ZkTree::from_snapshot(&s, *zxid).map_err(|r| FormatError::at(0, r))?;
            Ok((s, tree))
        });
        match parsed {
            Ok((s, tree)) => {
                loaded = Some((*zxid, path.clone(), s, tree));
                break;
            }
            Err(e) => {
                skipped.push((path.clone(), format!("offset {}: {}", e.offset, e.reason)));
                first_failure.get_or_insert((path.clone(), e));
            }
        }
    }
    let Some((snapshot_zxid, snapshot, snap, mut tree)) = loaded else {
        let (file, e) = first_failure.unwrap_or_else(|| {
            (
                opts.snap_dir.clone(),
                FormatError::at(0, "no snapshot could be read"),
            )
        });
        return Err(ImportError::NoValidSnapshot {
            file,
            offset: e.offset,
            reason: e.reason,
        });
    };

    // The logs that can hold txns after the snapshot: the last one starting at or before
    // snapshot_zxid + 1, and every later one (`FileTxnLog.getLogFiles`).
    let from = logs
        .iter()
        .rposition(|(z, _, _)| *z <= snapshot_zxid.saturating_add(1))
        .unwrap_or(0);
    let logs = &logs[from..];
    let mut out_logs = Vec::new();
    let mut txns = 0;
    let mut txns_ignored = 0;
    let mut torn = Vec::new();
    let mut previous = snapshot_zxid;
    let mut last_digest = None;
    for (_, path, _) in logs {
        let bytes = read_bytes(path)?;
        let scan = match scan_log(bytes.clone()) {
            Ok(scan) => scan,
            // ZooKeeper creates a log, then writes its header: a crash in between leaves
            // a log with no (or a zero) header and no records.
            Err(e)
                if e.offset < format::FILE_HEADER_BYTES as u64 && bytes.iter().all(|&b| b == 0) =>
            {
                torn.push(TornTail {
                    file: path.clone(),
                    offset: 0,
                    reason: "log file without a header".into(),
                });
                out_logs.push((path.clone(), 0));
                continue;
            }
            Err(e) => return Err(corrupt(path, e)),
        };
        let mut applied_here = 0;
        for (offset, payload) in scan.records {
            let entry = decode_entry(payload).map_err(|e| ImportError::Corrupt {
                file: path.clone(),
                offset: offset + 12 + e.offset,
                reason: e.reason,
            })?;
            let zxid = entry.header.zxid;
            if zxid <= snapshot_zxid {
                continue;
            }
            if zxid <= previous {
                return Err(ImportError::ZxidOrder {
                    file: path.clone(),
                    offset,
                    zxid,
                    previous,
                    reason: "zxids must increase",
                });
            }
            if zxid >> 32 == previous >> 32 && zxid != previous + 1 {
                return Err(ImportError::ZxidOrder {
                    file: path.clone(),
                    offset,
                    zxid,
                    previous,
                    reason: "txns are missing (a log deleted or cut short?)",
                });
            }
            previous = zxid;
            let applied =
                tree.apply(&entry.header, &entry.txn)
                    .map_err(|reason| ImportError::Corrupt {
                        file: path.clone(),
                        offset,
                        reason,
                    })?;
            if applied == Applied::Ignored {
                txns_ignored += 1;
            }
            txns += 1;
            applied_here += 1;
            last_digest = entry.digest.map(|d| (d, path.clone(), offset, zxid));
        }
        match scan.end {
            LogEnd::Clean => {}
            LogEnd::Corrupt {
                offset,
                reason,
                next_valid,
            } => {
                return Err(ImportError::CorruptRecord {
                    file: path.clone(),
                    offset,
                    reason,
                    next_valid,
                })
            }
            LogEnd::Torn { offset, reason } => torn.push(TornTail {
                file: path.clone(),
                offset,
                reason,
            }),
        }
        out_logs.push((path.clone(), applied_here));
    }

    let digest = if !opts.check_digest {
        DigestCheck::Skipped
    } else {
        // The last txn's digest, or (no txn replayed) the snapshot's own when it was
        // taken at exactly its zxid.
        let recorded = match &last_digest {
            Some((d, file, offset, zxid)) => Some((d.version, d.tree_digest, file, *offset, *zxid)),
            None if txns == 0 => snap
                .digest
                .filter(|d| d.zxid == snapshot_zxid && d.zxid > 0)
                .map(|d| (d.version, d.digest, &snapshot, 0, d.zxid)),
            None => None,
        };
        match recorded {
            Some((version, expected, file, offset, zxid)) if version == DIGEST_VERSION => {
                let actual = tree.digest();
                if actual != expected {
                    return Err(ImportError::DigestMismatch {
                        file: file.clone(),
                        offset,
                        zxid,
                        expected,
                        actual,
                    });
                }
                DigestCheck::Verified { zxid }
            }
            _ => DigestCheck::NotRecorded,
        }
    };

    let orphan_ephemerals_removed =
        tree.remove_orphan_ephemerals()
            .map_err(|reason| ImportError::Corrupt {
                file: snapshot.clone(),
                offset: 0,
                reason,
            })?;
    let accepted_epoch = epoch::read_epoch(&opts.snap_dir, epoch::ACCEPTED_EPOCH_FILE)?;
    let current_epoch = epoch::read_epoch(&opts.snap_dir, epoch::CURRENT_EPOCH_FILE)?;
    Ok(Imported {
        tree,
        snapshot,
        snapshot_zxid,
        skipped_snapshots: skipped,
        logs: out_logs,
        txns,
        txns_ignored,
        orphan_ephemerals_removed,
        torn,
        digest,
        accepted_epoch,
        current_epoch,
    })
}

/// Corral's files in the destination that an import would conflict with: snapshots,
/// logs and epoch files (and their unfinished `.tmp`s).
fn existing_files(snap_dir: &Path, log_dir: &Path) -> Result<Vec<PathBuf>, ImportError> {
    let mut out = Vec::new();
    for (dir, prefixes) in [
        (
            snap_dir,
            &[
                snapshot::SNAPSHOT_PREFIX,
                epoch::ACCEPTED_EPOCH_FILE,
                epoch::CURRENT_EPOCH_FILE,
            ][..],
        ),
        (log_dir, &[txn_log::SEGMENT_PREFIX][..]),
    ] {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(dir, "listing")(e)),
        };
        for e in entries {
            let e = e.map_err(io(dir, "listing"))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if prefixes.iter().any(|p| name.starts_with(p)) && e.path().is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where the Corral data goes.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Corral's dataDir (snapshots, epoch files go to its `version-2`).
    pub data_dir: PathBuf,
    /// Corral's dataLogDir (checked for old logs; the server writes new ones there).
    pub data_log_dir: PathBuf,
    /// Replace existing Corral files instead of refusing.
    pub force: bool,
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuses a destination that holds Corral data (unless `force`) or that is the
/// ZooKeeper directory. Changes nothing: call it before [`read`] to fail early.
pub fn check_destination(dest: &Destination, source: &ReadOptions) -> Result<(), ImportError> {
    let snap_dir = version_dir(&dest.data_dir);
    let log_dir = version_dir(&dest.data_log_dir);
    for d in [&snap_dir, &log_dir] {
        if same_dir(d, &source.snap_dir) || same_dir(d, &source.log_dir) {
            return Err(ImportError::DestinationIsSource { dir: d.clone() });
        }
    }
    if !dest.force {
        if let Some(file) = existing_files(&snap_dir, &log_dir)?.into_iter().next() {
            return Err(ImportError::DestinationNotEmpty { file });
        }
    }
    Ok(())
}

/// What [`write`] wrote.
#[derive(Debug)]
pub struct Written {
    pub snapshot: PathBuf,
    pub zxid: i64,
    pub nodes: usize,
    pub sessions: usize,
    /// Corral files deleted because of `force`.
    pub replaced: Vec<PathBuf>,
}

/// Writes `imported` as a Corral snapshot at its last zxid (with the epoch files when
/// ZooKeeper had them), after [`check_destination`]. The snapshot is read back and
/// checked before returning.
pub fn write(
    imported: Imported,
    dest: &Destination,
    source: &ReadOptions,
) -> Result<Written, ImportError> {
    check_destination(dest, source)?;
    let snap_dir = version_dir(&dest.data_dir);
    let log_dir = version_dir(&dest.data_log_dir);
    let replaced = existing_files(&snap_dir, &log_dir)?;
    for f in &replaced {
        std::fs::remove_file(f).map_err(io(f, "removing"))?;
    }
    for d in [&snap_dir, &log_dir] {
        std::fs::create_dir_all(d).map_err(io(d, "creating"))?;
    }
    let zxid = imported.tree.last_zxid;
    let sessions: Vec<(SessionId, i32)> = imported
        .tree
        .sessions
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    let config_data = imported
        .tree
        .get(crate::proto::CONFIG_PATH)
        .and_then(|n| n.data.clone())
        .unwrap_or_default();
    let nodes = imported.tree.into_corral_nodes();
    let node_count = nodes.len();
    let tree = DataTree::restore(nodes, zxid, config_data.clone())?;
    let image = SnapshotImage::capture(&tree, sessions.iter().copied());
    let bytes = image.encode()?;
    let path = snapshot::write_snapshot(&snap_dir, zxid, &bytes)?;
    // Read back what recovery will read, and check it is what was meant.
    let back = snapshot::load(&path, config_data)?;
    if back.tree.node_count() != tree.node_count()
        || back.tree.last_zxid() != zxid
        || back.sessions.len() != sessions.len()
    {
        return Err(ImportError::Corrupt {
            file: path,
            offset: 0,
            reason: "the written snapshot reads back differently".into(),
        });
    }
    if let Some(e) = imported.accepted_epoch {
        epoch::write_epoch(&snap_dir, epoch::ACCEPTED_EPOCH_FILE, e)?;
    }
    if let Some(e) = imported.current_epoch {
        epoch::write_epoch(&snap_dir, epoch::CURRENT_EPOCH_FILE, e)?;
    }
    Ok(Written {
        snapshot: path,
        zxid,
        nodes: node_count,
        sessions: sessions.len(),
        replaced,
    })
}

#[cfg(test)]
mod tests;
