//! The few file-system operations recovery, snapshots, epoch files and purge perform, behind
//! a trait: [`StdFs`] is the real file system (blocking std I/O, used at startup and off the
//! executor); [`super::sim::SimDisk`] is the deterministic in-memory disk the power-loss check
//! and the cluster simulator run the same code on.
//!
//! The operations are the ones the code needs, not a general file API: a file written whole
//! and synced through one descriptor (`write_new_synced`, so a writeback error is reported to
//! the descriptor that wrote), a range zeroed and synced (the torn-tail repair), rename,
//! remove, and a directory fsync. The log writer (glommio, on the ZAB executor) does not go
//! through this trait; the simulator mirrors its operations with the shared layout functions
//! of [`super::txn_log::layout`].

use super::snapshot::{SnapshotError, SnapshotFile};
use std::io::{self, Write};
use std::path::Path;

/// File-system operations of the storage layer (all paths absolute or relative to the
/// process's working directory, as the caller gives them).
pub trait Fs {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()>;
    /// The names of the entries of `dir` that are UTF-8; none if `dir` does not exist.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates (or truncates) `path`, writes `bytes`, fsyncs the file (data and size). The
    /// name is durable only after [`Fs::sync_dir`] of its directory.
    fn write_new_synced(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Overwrites `[from, to)` of an existing file with zeros, then fdatasyncs it. The file
    /// keeps its size.
    fn zero_range_synced(&mut self, path: &Path, from: u64, to: u64) -> io::Result<()>;
    /// Renames `from` to `to` (replacing `to`); durable after [`Fs::sync_dir`].
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file; durable after [`Fs::sync_dir`].
    fn remove_file(&mut self, path: &Path) -> io::Result<()>;
    /// fsyncs a directory: the creates, renames and removes in it so far become durable.
    fn sync_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Reads and validates a snapshot file (header, length, crc32c, archive).
    fn read_snapshot(&self, path: &Path) -> Result<SnapshotFile, SnapshotError> {
        let bytes = self.read(path).map_err(|source| SnapshotError::Io {
            path: path.to_path_buf(),
            op: "reading",
            source,
        })?;
        SnapshotFile::from_bytes(path, &bytes)
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

/// How much of a large file [`StdFs::write_new_synced`] lets the kernel write back at a
/// time. A snapshot written whole and then fsynced puts all of it (tens of MiB) in the
/// device's queue at once, and the transaction log's syncs on the same device wait behind
/// it: with a 200 000-znode tree (36 MiB, ~85 ms at this VM's 450 MB/s) a 3-node
/// pseudo-cluster's write p99 went from 10 to ~90 ms while snapshots were taken. Written
/// back 1 MiB at a time, a log sync waits for at most that much (~2 ms here).
const WRITEBACK_CHUNK_BYTES: usize = 1 << 20;

/// Writes back `[offset, offset + len)` of `f` and waits for it (`sync_file_range`: data
/// only, no metadata, no device cache flush; the final fsync does those). A write-back
/// error is returned: once reported here, the same descriptor's fsync would not report it
/// again. A file system without the call is fine: the fsync writes everything.
fn write_back(f: &std::fs::File, offset: usize, len: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: `f` is an open file for the whole call, so its descriptor is valid; the call
    // takes no pointer, and offsets past the end of the file are allowed (nothing to write).
    let rc = unsafe { libc::sync_file_range(f.as_raw_fd(), offset as i64, len as i64, flags) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::ESPIPE) => Ok(()),
        _ => Err(e),
    }
}

impl Fs for StdFs {
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn write_new_synced(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        let mut offset = 0;
        for chunk in bytes.chunks(WRITEBACK_CHUNK_BYTES) {
            f.write_all(chunk)?;
            write_back(&f, offset, chunk.len())?;
            offset += chunk.len();
        }
        f.sync_all()
    }

    fn zero_range_synced(&mut self, path: &Path, from: u64, to: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        if to > from {
            f.write_all_at(&vec![0u8; (to - from) as usize], from)?;
        }
        f.sync_data()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    /// Streams the body into aligned memory (no second copy of a large snapshot).
    fn read_snapshot(&self, path: &Path) -> Result<SnapshotFile, SnapshotError> {
        SnapshotFile::read(path)
    }
}
