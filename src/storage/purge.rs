//! Purge: keep the newest `retain_count` snapshots and the log segments they need, delete
//! the rest. Matches `PurgeTxnLog.purge` (`autopurge.snapRetainCount`, `zkCleanup.sh`).
//!
//! The oldest kept snapshot at zxid S needs every record after S: the segment that holds
//! S+1 is the newest segment whose first zxid is <= S+1 (it may start before S), and every
//! segment after it. Older segments and snapshots go. Only files with our names are touched.

use super::fs::{Fs, StdFs};
use super::snapshot::list_snapshots_in;
use super::txn_log::list_segments_in;
use super::version_dir;
use std::path::{Path, PathBuf};

/// What a purge deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    pub snapshots: Vec<PathBuf>,
    pub segments: Vec<PathBuf>,
}

/// Deletes snapshots beyond the newest `retain_count` (at least 1) and the log segments no
/// kept snapshot needs. With no snapshot at all, nothing is deleted.
pub fn purge(data_dir: &Path, data_log_dir: &Path, retain_count: usize) -> std::io::Result<Purged> {
    purge_in(&mut StdFs, data_dir, data_log_dir, retain_count)
}

/// [`purge`] on any [`Fs`]. The removals are not fsynced: after a power failure some may
/// be undone, which leaves more files than needed, never fewer.
pub fn purge_in(
    fs: &mut impl Fs,
    data_dir: &Path,
    data_log_dir: &Path,
    retain_count: usize,
) -> std::io::Result<Purged> {
    let retain_count = retain_count.max(1);
    let snap_dir = version_dir(data_dir);
    let log_dir = version_dir(data_log_dir);
    let snaps = list_snapshots_in(fs, &snap_dir)?;
    let mut out = Purged::default();
    let keep_from = snaps.len().saturating_sub(retain_count);
    let Some((oldest_kept, _)) = snaps.get(keep_from) else {
        return Ok(out);
    };
    let segments = list_segments_in(fs, &log_dir)?;
    // The newest segment starting at or before oldest_kept + 1 holds the first record the
    // oldest kept snapshot needs; everything before it can go.
    let needed_from = segments
        .iter()
        .rposition(|(first, _)| *first <= oldest_kept.saturating_add(1))
        .unwrap_or(0);
    for (_, p) in &snaps[..keep_from] {
        fs.remove_file(p)?;
        out.snapshots.push(p.clone());
    }
    for (_, p) in &segments[..needed_from] {
        fs.remove_file(p)?;
        out.segments.push(p.clone());
    }
    if !out.snapshots.is_empty() || !out.segments.is_empty() {
        tracing::info!(
            snapshots = out.snapshots.len(),
            segments = out.segments.len(),
            "purged old snapshots and logs"
        );
    }
    Ok(out)
}
