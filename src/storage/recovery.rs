//! Reading the log back at start: every segment in zxid order, every record checked
//! (length bound, crc32c, decode, zxid order), the records after a given zxid returned.
//!
//! Decision table. "Bad frame" = a frame header cut short, a length out of range, a payload
//! cut short, or a crc32c mismatch. "Valid frame" = good length and crc and a payload that
//! decodes. The writer only starts a segment after the previous one is synced, so only the
//! newest segment file may end in an unsynced (torn) write.
//!
//! | found at offset X of segment S                                      | S is the newest segment | S is older            |
//! |---------------------------------------------------------------------|-------------------------|-----------------------|
//! | records, then a zero length (or end of file) and only zeros          | clean end               | clean end             |
//! | bad frame at X, no valid frame anywhere after X in S                  | torn tail: zero X..end, fdatasync, warn | `TornTailBeforeNewerSegment` |
//! | zero length at X, then non-zero bytes holding no valid frame         | torn tail (later pages of an unsynced write landed first): zero them, warn | `TornTailBeforeNewerSegment` |
//! | bad frame or zero length at X, zeros where a sector of the write did not land (see `txn_log::torn_evidence`), then valid frames from Y | torn tail: the frames from Y are later sectors of the same unsynced write; zero X..end, warn | `TornTailBeforeNewerSegment` |
//! | bad frame or zero length at X, then a valid frame at Y > X, no such zeros | `CorruptRecord { S, X }` | `CorruptRecord { S, X }` |
//! | good crc, payload does not decode                                     | `UndecodableRecord`     | `UndecodableRecord`   |
//! | zxid not above the previous record's (in S or across segments)       | `ZxidOutOfOrder`        | `ZxidOutOfOrder`      |
//! | header unreadable, or its zxid differs from the file name            | `BadSegmentHeader` / `SegmentNameMismatch` | same |
//! | first record after `after_zxid` leaves a gap in the same epoch        | `LogGap`                | `LogGap`              |
//! | `log.next.<n>.tmp` with a valid header (a spare the log switched to; its rename did not reach the disk) | renamed to `log.<header zxid>`, then read as that segment | read in place as that segment |
//! | `log.*.tmp` (a segment whose creation did not finish)                 | removed (it holds no records) | —                |
//!
//! Never is an acknowledged record dropped: the only bytes removed are a torn tail, i.e.
//! the part of the last write whose sync never returned. Valid frames after a hole are
//! removed with it only when the hole is the trace of sectors that did not land (the
//! pages of one unsynced write reach the disk in any order); a hole without that trace is
//! corruption. `storage::sim` checks this under simulated power loss. In
//! [`RecoveryMode::ReadOnly`] (tools) the torn tail is reported, not zeroed.
//! Matches what `FileTxnLog`'s iterator does on a truncated tail (ZooKeeper stops at the
//! first bad record; we also tell torn from corrupt).

use super::fs::{Fs, StdFs};
use super::txn_log::{self, list_segments_in, scan_segment, HeaderError, ScanEnd};
use crate::tree::TxnRecord;
use std::path::{Path, PathBuf};

/// Whether recovery may modify the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Zero a torn tail (and fdatasync) so the next start finds a clean end.
    Repair,
    /// Touch nothing (tools, `--verify`).
    ReadOnly,
}

/// The log cannot be trusted: the server must not start. Each names file and offset.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{file}: bad segment header: {reason}")]
    BadSegmentHeader { file: PathBuf, reason: HeaderError },
    #[error("{file}: header says first zxid {header_zxid:#x}, the name says otherwise")]
    SegmentNameMismatch { file: PathBuf, header_zxid: i64 },
    #[error("{file}: corrupt record at offset {offset} ({fault}); a valid record follows at offset {next_valid}: refusing to start")]
    CorruptRecord {
        file: PathBuf,
        offset: usize,
        fault: String,
        next_valid: usize,
    },
    #[error("{file}: torn record at offset {offset} ({fault}) in a segment older than {newer}: refusing to start")]
    TornTailBeforeNewerSegment {
        file: PathBuf,
        offset: usize,
        fault: String,
        newer: PathBuf,
    },
    #[error("{file}: record at offset {offset}: {fault}: refusing to start")]
    UndecodableRecord {
        file: PathBuf,
        offset: usize,
        fault: String,
    },
    #[error("{file}: zxid {zxid:#x} at offset {offset} does not follow {previous:#x}")]
    ZxidOutOfOrder {
        file: PathBuf,
        offset: usize,
        zxid: i64,
        previous: i64,
    },
    #[error("log gap: state is at zxid {after_zxid:#x} but the log continues at {next_zxid:#x} ({file})")]
    LogGap {
        after_zxid: i64,
        next_zxid: i64,
        file: PathBuf,
    },
}

/// A torn tail found (and, in `Repair` mode, zeroed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: usize,
    pub bytes: usize,
    pub fault: String,
}

/// What [`recover_log`] found.
#[derive(Debug, Default)]
pub struct LogRecovery {
    /// Records with zxid above `after_zxid`, in order.
    pub records: Vec<TxnRecord>,
    /// The last valid zxid in the log (or `after_zxid` if the log has nothing newer).
    pub last_zxid: i64,
    /// Segments read (first zxid, path).
    pub segments: Vec<(i64, PathBuf)>,
    pub torn: Option<TornTail>,
}

/// Reads `log_dir` (a `version-2` directory) and returns the records after `after_zxid`.
pub fn recover_log(
    log_dir: &Path,
    after_zxid: i64,
    mode: RecoveryMode,
) -> Result<LogRecovery, RecoveryError> {
    recover_log_in(&mut StdFs, log_dir, after_zxid, mode)
}

/// [`recover_log`] on any [`Fs`] (the power-loss check runs it on a simulated disk).
pub fn recover_log_in(
    fs: &mut impl Fs,
    log_dir: &Path,
    after_zxid: i64,
    mode: RecoveryMode,
) -> Result<LogRecovery, RecoveryError> {
    let io = |path: &Path, op: &'static str, source| RecoveryError::Io {
        path: path.to_path_buf(),
        op,
        source,
    };
    let spares = switched_spares(fs, log_dir).map_err(|e| io(log_dir, "listing", e))?;
    if mode == RecoveryMode::Repair {
        for (zxid, spare) in &spares {
            let named = txn_log::segment_path(log_dir, *zxid);
            tracing::warn!(spare = %spare.display(), segment = %named.display(), "adopting the log segment a crash left under its spare name");
            fs.rename(spare, &named)
                .map_err(|e| io(spare, "renaming", e))?;
            fs.sync_dir(log_dir)
                .map_err(|e| io(log_dir, "syncing", e))?;
        }
        remove_temp_segments(fs, log_dir);
    }
    let mut all = list_segments_in(fs, log_dir).map_err(|e| io(log_dir, "listing", e))?;
    if mode == RecoveryMode::ReadOnly {
        // Read in place. A running server's own log may be renamed meanwhile: the segment
        // then shows under both names, and the final one (sorted first) is kept.
        all.extend(spares);
        all.sort();
        all.dedup_by_key(|(zxid, _)| *zxid);
    }
    // Segment i holds zxids below segment i+1's first: skip those entirely at or below
    // `after_zxid` (purge keeps the one that straddles it).
    let start = all
        .iter()
        .enumerate()
        .skip(1)
        .take_while(|(_, (first, _))| *first <= after_zxid.saturating_add(1))
        .map(|(i, _)| i)
        .last()
        .unwrap_or(0);
    let segments: Vec<(i64, PathBuf)> = all[start.min(all.len())..].to_vec();
    let mut out = LogRecovery {
        last_zxid: after_zxid,
        segments: segments.clone(),
        ..Default::default()
    };
    let mut previous: Option<i64> = None;
    for (i, (name_zxid, path)) in segments.iter().enumerate() {
        let newest = i + 1 == segments.len();
        let bytes = match fs.read(path) {
            // A spare read in place that was renamed since the listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_spare(path) => {
                let named = txn_log::segment_path(log_dir, *name_zxid);
                fs.read(&named).map_err(|e| io(&named, "reading", e))?
            }
            read => read.map_err(|e| io(path, "reading", e))?,
        };
        let scan = scan_segment(&bytes).map_err(|reason| RecoveryError::BadSegmentHeader {
            file: path.clone(),
            reason,
        })?;
        if scan.first_zxid != *name_zxid {
            return Err(RecoveryError::SegmentNameMismatch {
                file: path.clone(),
                header_zxid: scan.first_zxid,
            });
        }
        for (offset, rec) in scan.records {
            if let Some(p) = previous.filter(|&p| rec.zxid <= p) {
                return Err(RecoveryError::ZxidOutOfOrder {
                    file: path.clone(),
                    offset,
                    zxid: rec.zxid,
                    previous: p,
                });
            }
            previous = Some(rec.zxid);
            if rec.zxid > after_zxid {
                let prev = out.records.last().map_or(after_zxid, |r| r.zxid);
                let same_epoch = (prev >> 32) == (rec.zxid >> 32);
                if same_epoch && rec.zxid != prev + 1 {
                    return Err(RecoveryError::LogGap {
                        after_zxid: prev,
                        next_zxid: rec.zxid,
                        file: path.clone(),
                    });
                }
                out.last_zxid = rec.zxid;
                out.records.push(rec);
            }
        }
        match scan.end {
            ScanEnd::Clean => {}
            ScanEnd::Corrupt { fault, next_valid } => {
                return Err(RecoveryError::CorruptRecord {
                    file: path.clone(),
                    offset: scan.end_offset,
                    fault,
                    next_valid,
                })
            }
            ScanEnd::Invalid { fault } => {
                return Err(RecoveryError::UndecodableRecord {
                    file: path.clone(),
                    offset: scan.end_offset,
                    fault,
                })
            }
            ScanEnd::Torn { fault, garbage_end } => {
                if !newest {
                    return Err(RecoveryError::TornTailBeforeNewerSegment {
                        file: path.clone(),
                        offset: scan.end_offset,
                        fault,
                        newer: segments[i + 1].1.clone(),
                    });
                }
                let torn = TornTail {
                    file: path.clone(),
                    offset: scan.end_offset,
                    bytes: garbage_end.saturating_sub(scan.end_offset),
                    fault,
                };
                if mode == RecoveryMode::Repair {
                    fs.zero_range_synced(path, torn.offset as u64, garbage_end as u64)
                        .map_err(|e| io(path, "truncating torn tail of", e))?;
                    tracing::warn!(
                        file = %path.display(),
                        offset = torn.offset,
                        bytes = torn.bytes,
                        fault = %torn.fault,
                        "truncated torn tail of the transaction log (a write that was never acknowledged)"
                    );
                }
                out.torn = Some(torn);
            }
        }
    }
    Ok(out)
}

/// Spare segments (`log.next.<n>.tmp`) that hold a valid header, with its zxid: the writer
/// switched to each and wrote records in it, and its rename to `log.<zxid>` did not reach
/// the disk before a crash. (A spare without a header was never used: it is only zeros.)
/// One whose name is taken by a segment is left out.
fn switched_spares(fs: &impl Fs, log_dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let names = fs.list_dir(log_dir)?;
    let mut out = Vec::new();
    for name in names
        .iter()
        .filter(|n| txn_log::layout::is_spare_segment_name(n))
    {
        let path = log_dir.join(name);
        let bytes = match fs.read(&path) {
            Ok(bytes) => bytes,
            // Renamed (or removed) by a running writer since the listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let Ok(zxid) = txn_log::decode_segment_header(&bytes) else {
            continue;
        };
        let named = txn_log::segment_path(log_dir, zxid);
        let taken = named
            .file_name()
            .is_some_and(|n| names.iter().any(|m| std::ffi::OsStr::new(m) == n));
        if !taken {
            out.push((zxid, path));
        }
    }
    Ok(out)
}

fn is_spare(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(txn_log::layout::is_spare_segment_name)
}

fn remove_temp_segments(fs: &mut impl Fs, log_dir: &Path) {
    let Ok(names) = fs.list_dir(log_dir) else {
        return;
    };
    for name in names {
        if name.starts_with(txn_log::SEGMENT_PREFIX) && name.ends_with(".tmp") {
            let path = log_dir.join(&name);
            tracing::warn!(file = %path.display(), "removing unfinished log segment");
            let _ = fs.remove_file(&path);
        }
    }
}
