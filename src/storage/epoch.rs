//! The epoch files `acceptedEpoch` and `currentEpoch` in `<dataDir>/version-2`, and the
//! atomic file replacement they and snapshots use (temp file, fsync, rename, fsync dir).
//!
//! Format as ZooKeeper's (`QuorumPeer.writeLongToFile`): the epoch in decimal ASCII and a
//! newline. A crash leaves either the old file or the new one, never a mix; a stray
//! `*.tmp` is ignored (and overwritten by the next write).

use super::fs::{Fs, StdFs};
use std::path::{Path, PathBuf};

/// The epoch the server accepted in a NEWEPOCH (ZooKeeper's name).
pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
/// The epoch of the leader the server last synced with (ZooKeeper's name).
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";

/// An epoch file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    #[error("{op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{path}: not an epoch: {text:?}")]
    Malformed { path: PathBuf, text: String },
}

/// Replaces `path` with `bytes`: `<path>.tmp`, write, fsync, rename, fsync the directory.
/// The error carries the step, the path it failed on and the cause.
pub fn write_atomically(
    path: &Path,
    bytes: &[u8],
) -> Result<(), (&'static str, PathBuf, std::io::Error)> {
    write_atomically_in(&mut StdFs, path, bytes)
}

/// [`write_atomically`] on any [`Fs`] (the power-loss check runs it on a simulated disk).
/// After a crash at any point the directory holds the old file or the new one, whole;
/// once this returns `Ok` the new one survives power loss.
pub fn write_atomically_in(
    fs: &mut impl Fs,
    path: &Path,
    bytes: &[u8],
) -> Result<(), (&'static str, PathBuf, std::io::Error)> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    type Failure = (&'static str, PathBuf, std::io::Error);
    fn step<'p>(op: &'static str, p: &'p Path) -> impl FnOnce(std::io::Error) -> Failure + 'p {
        move |e| (op, p.to_path_buf(), e)
    }
    fs.write_new_synced(&tmp, bytes)
        .map_err(step("writing", &tmp))?;
    fs.rename(&tmp, path).map_err(step("renaming", path))?;
    // Without this the rename may be lost on power failure: the new file would vanish
    // (the old one reappears), although the caller was told it was written.
    fs.sync_dir(dir).map_err(step("fsync", dir))?;
    Ok(())
}

/// fsyncs a directory (makes a create or rename in it durable).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    StdFs.sync_dir(dir)
}

/// Reads an epoch file; `Ok(None)` when it does not exist (a new server).
pub fn read_epoch(snap_dir: &Path, name: &str) -> Result<Option<u32>, EpochError> {
    let path = snap_dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(EpochError::Io {
                path,
                op: "reading",
                source,
            })
        }
    };
    match text.trim().parse::<u32>() {
        Ok(epoch) => Ok(Some(epoch)),
        Err(_) => Err(EpochError::Malformed { path, text }),
    }
}

/// Writes an epoch file atomically.
pub fn write_epoch(snap_dir: &Path, name: &str, epoch: u32) -> Result<(), EpochError> {
    write_atomically(&snap_dir.join(name), format!("{epoch}\n").as_bytes())
        .map_err(|(op, path, source)| EpochError::Io { path, op, source })
}
