//! [`SimDisk`]: files as byte vectors with a durable and a volatile image, directories with
//! durable and volatile entries, and [`SimDisk::power_loss`]. The fault model is in the
//! module doc of [`super`].

use super::SimRng;
use crate::storage::fs::Fs;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Page cache granularity: an unsynced write reaches the disk page by page, in any order.
pub const PAGE_BYTES: u64 = 4096;
/// Device atomicity: a page being written when power fails may land only partly, in whole
/// sectors.
pub const SECTOR_BYTES: u64 = 512;

/// A file's identity (an inode): survives renames, like an open descriptor's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ino(usize);

/// A change to a file's data not yet made durable by a sync of that file.
#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, bytes: Vec<u8> },
    Zeros { offset: u64, len: u64 },
    Truncate,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    volatile: Vec<u8>,
    unsynced: Vec<Change>,
}

/// A change to a directory not yet made durable by a sync of that directory.
#[derive(Debug, Clone)]
enum DirOp {
    Link { name: String, ino: Ino },
    Rename { from: String, to: String },
    Unlink { name: String },
}

#[derive(Debug, Clone, Default)]
struct Dir {
    durable: BTreeMap<String, Ino>,
    volatile: BTreeMap<String, Ino>,
    unsynced: Vec<DirOp>,
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<String, Ino>) {
        match self {
            DirOp::Link { name, ino } => {
                entries.insert(name.clone(), *ino);
            }
            DirOp::Rename { from, to } => {
                if let Some(ino) = entries.remove(from) {
                    entries.insert(to.clone(), ino);
                }
            }
            DirOp::Unlink { name } => {
                entries.remove(name);
            }
        }
    }
}

/// How the last [`SimDisk::power_loss`] treated unsynced state (for reports).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerLossReport {
    /// Percent chance each unsynced page had of landing whole (the rest: a third torn, two
    /// thirds lost).
    pub landing_percent: u64,
    pub pages_landed: u64,
    pub pages_torn: u64,
    pub pages_lost: u64,
    pub dir_ops_kept: u64,
    pub dir_ops_lost: u64,
}

/// A deterministic in-memory disk. Every mutating operation counts toward an optional crash
/// budget ([`SimDisk::crash_after`]): the operation that exceeds it is not performed, fails
/// with [`SimDisk::is_crash`]-recognisable error, and so does everything after it until
/// [`SimDisk::power_loss`].
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    inodes: Vec<Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    ops_left: Option<u64>,
    ops_done: u64,
    crashed: bool,
}

const CRASH_MESSAGE: &str = "simulated power loss";

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    Ok((dir, name.to_string()))
}

/// Writes `bytes` at `offset` of `image`, growing it with zeros (a hole) as needed.
fn put(image: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[offset as usize..end].copy_from_slice(bytes);
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// From now, allow `ops` more mutating operations; the next one fails (the crash).
    pub fn crash_after(&mut self, ops: u64) {
        self.ops_left = Some(ops);
    }

    /// Lifts the crash budget (the disk goes on without crashing).
    pub fn no_crash(&mut self) {
        self.ops_left = None;
    }

    /// Mutating operations performed so far.
    pub fn ops_done(&self) -> u64 {
        self.ops_done
    }

    /// Has the crash budget run out?
    pub fn crashed(&self) -> bool {
        self.crashed
    }

    /// Is `e` the error of an operation refused because the disk crashed?
    pub fn is_crash(e: &io::Error) -> bool {
        e.kind() == io::ErrorKind::Other && e.to_string() == CRASH_MESSAGE
    }

    fn tick(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other(CRASH_MESSAGE));
        }
        if let Some(left) = self.ops_left {
            if left == 0 {
                self.crashed = true;
                return Err(io::Error::other(CRASH_MESSAGE));
            }
            self.ops_left = Some(left - 1);
        }
        self.ops_done += 1;
        Ok(())
    }

    fn dir_mut(&mut self, dir: PathBuf) -> &mut Dir {
        self.dirs.entry(dir).or_default()
    }

    /// The file named `path` now (volatile view).
    pub fn lookup(&self, path: &Path) -> io::Result<Ino> {
        let (dir, name) = split(path)?;
        self.dirs
            .get(&dir)
            .and_then(|d| d.volatile.get(&name))
            .copied()
            .ok_or_else(|| not_found(path))
    }

    /// Opens `path` for writing, creating it or truncating it (`O_CREAT | O_TRUNC`).
    pub fn create(&mut self, path: &Path) -> io::Result<Ino> {
        self.tick()?;
        if let Ok(ino) = self.lookup(path) {
            let inode = &mut self.inodes[ino.0];
            inode.volatile.clear();
            inode.unsynced.push(Change::Truncate);
            return Ok(ino);
        }
        let (dir, name) = split(path)?;
        let ino = Ino(self.inodes.len());
        self.inodes.push(Inode::default());
        let d = self.dir_mut(dir);
        d.volatile.insert(name.clone(), ino);
        d.unsynced.push(DirOp::Link { name, ino });
        Ok(ino)
    }

    /// `pwrite`: lands in the volatile image only.
    pub fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.tick()?;
        let inode = &mut self.inodes[ino.0];
        put(&mut inode.volatile, offset, bytes);
        inode.unsynced.push(Change::Write {
            offset,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    /// `pwrite` of `len` zeros (kept as a length, not a buffer).
    pub fn write_zeros(&mut self, ino: Ino, offset: u64, len: u64) -> io::Result<()> {
        self.tick()?;
        let inode = &mut self.inodes[ino.0];
        let end = (offset + len) as usize;
        if inode.volatile.len() < end {
            inode.volatile.resize(end, 0);
        }
        inode.volatile[offset as usize..end].fill(0);
        inode.unsynced.push(Change::Zeros { offset, len });
        Ok(())
    }

    /// `fdatasync` / `fsync` of a file: its volatile image becomes durable (data and size).
    /// Its name is not made durable: that takes a sync of its directory.
    pub fn sync_file(&mut self, ino: Ino) -> io::Result<()> {
        self.tick()?;
        let inode = &mut self.inodes[ino.0];
        inode.durable.clone_from(&inode.volatile);
        inode.unsynced.clear();
        Ok(())
    }

    /// The current (volatile) bytes of a file.
    pub fn contents(&self, ino: Ino) -> &[u8] {
        &self.inodes[ino.0].volatile
    }

    /// Overwrites bytes of a file's image as if the medium changed under it (corruption
    /// injection; not an operation of the code under test, so no crash accounting).
    pub fn corrupt(&mut self, path: &Path, offset: usize, value: u8) -> io::Result<()> {
        let ino = self.lookup(path)?;
        let inode = &mut self.inodes[ino.0];
        for image in [&mut inode.volatile, &mut inode.durable] {
            if let Some(b) = image.get_mut(offset) {
                *b = value;
            }
        }
        Ok(())
    }

    /// Power fails. For every directory, a prefix of its unsynced operations survives (a
    /// journalling file system commits metadata in order). For every file, its unsynced
    /// changes are replayed in order onto its durable image, each 4 KiB page of each write
    /// landing whole, not at all, or torn (any subset of its 512-byte sectors); bytes past
    /// the old end of a file that did not land read as zeros. Afterwards durable = volatile,
    /// and the crash budget is cleared.
    pub fn power_loss(&mut self, rng: &mut SimRng) -> PowerLossReport {
        const LANDING_PERCENT: [u64; 5] = [0, 10, 50, 90, 100];
        let landing_percent = LANDING_PERCENT[rng.below(LANDING_PERCENT.len() as u64) as usize];
        let mut report = PowerLossReport {
            landing_percent,
            ..Default::default()
        };
        for dir in self.dirs.values_mut() {
            let kept = rng.below(dir.unsynced.len() as u64 + 1) as usize;
            for op in &dir.unsynced[..kept] {
                op.apply(&mut dir.durable);
            }
            report.dir_ops_kept += kept as u64;
            report.dir_ops_lost += (dir.unsynced.len() - kept) as u64;
            dir.unsynced.clear();
            dir.volatile.clone_from(&dir.durable);
        }
        for inode in &mut self.inodes {
            for change in std::mem::take(&mut inode.unsynced) {
                match change {
                    Change::Truncate => {
                        if rng.chance(landing_percent, 100) {
                            inode.durable.clear();
                        }
                    }
                    Change::Write { offset, bytes } => land(
                        &mut inode.durable,
                        offset,
                        &bytes,
                        landing_percent,
                        rng,
                        &mut report,
                    ),
                    Change::Zeros { offset, len } => {
                        let zeros = vec![0u8; len as usize];
                        land(
                            &mut inode.durable,
                            offset,
                            &zeros,
                            landing_percent,
                            rng,
                            &mut report,
                        )
                    }
                }
            }
            inode.volatile.clone_from(&inode.durable);
        }
        self.ops_left = None;
        self.crashed = false;
        report
    }
}

/// Lands the pages of one write: each whole, lost, or torn at sector boundaries.
fn land(
    image: &mut Vec<u8>,
    offset: u64,
    bytes: &[u8],
    landing_percent: u64,
    rng: &mut SimRng,
    report: &mut PowerLossReport,
) {
    let end = offset + bytes.len() as u64;
    let mut at = offset;
    while at < end {
        let page_end = ((at / PAGE_BYTES) + 1) * PAGE_BYTES;
        let piece_end = page_end.min(end);
        let piece = |from: u64, to: u64| &bytes[(from - offset) as usize..(to - offset) as usize];
        if rng.chance(landing_percent, 100) {
            put(image, at, piece(at, piece_end));
            report.pages_landed += 1;
        } else if rng.chance(1, 3) {
            let mut s = at;
            while s < piece_end {
                let sector_end = (((s / SECTOR_BYTES) + 1) * SECTOR_BYTES).min(piece_end);
                if rng.chance(1, 2) {
                    put(image, s, piece(s, sector_end));
                }
                s = sector_end;
            }
            report.pages_torn += 1;
        } else {
            report.pages_lost += 1;
        }
        at = piece_end;
    }
}

impl Fs for SimDisk {
    /// Directories exist once named (the model has no durable state for directories
    /// themselves: Corral creates them once, before any file in them matters).
    fn create_dir_all(&mut self, dir: &Path) -> io::Result<()> {
        self.dir_mut(dir.to_path_buf());
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .dirs
            .get(dir)
            .map(|d| d.volatile.keys().cloned().collect())
            .unwrap_or_default();
        let subdirs = self.dirs.keys().filter(|d| d.parent() == Some(dir));
        names.extend(subdirs.filter_map(|d| Some(d.file_name()?.to_str()?.to_string())));
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let ino = self.lookup(path)?;
        Ok(self.inodes[ino.0].volatile.clone())
    }

    fn write_new_synced(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let ino = self.create(path)?;
        self.write(ino, 0, bytes)?;
        self.sync_file(ino)
    }

    fn zero_range_synced(&mut self, path: &Path, from: u64, to: u64) -> io::Result<()> {
        let ino = self.lookup(path)?;
        if to > from {
            self.write_zeros(ino, from, to - from)?;
        }
        self.sync_file(ino)
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.tick()?;
        let (dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        if dir != to_dir {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "rename across directories is not modelled",
            ));
        }
        let d = self.dir_mut(dir);
        let ino = d
            .volatile
            .remove(&from_name)
            .ok_or_else(|| not_found(from))?;
        d.volatile.insert(to_name.clone(), ino);
        d.unsynced.push(DirOp::Rename {
            from: from_name,
            to: to_name,
        });
        Ok(())
    }

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        self.tick()?;
        let (dir, name) = split(path)?;
        let d = self.dir_mut(dir);
        if d.volatile.remove(&name).is_none() {
            return Err(not_found(path));
        }
        d.unsynced.push(DirOp::Unlink { name });
        Ok(())
    }

    fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.tick()?;
        let d = self.dir_mut(dir.to_path_buf());
        d.durable.clone_from(&d.volatile);
        d.unsynced.clear();
        Ok(())
    }
}
