//! Snapshots: the whole tree and the session table, archived with rkyv, in
//! `<dataDir>/version-2/snapshot.<zxid hex>`.
//!
//! File = a 40-byte header (magic, version, zxid, body length, body crc32c, header crc32c)
//! then the rkyv archive of [`SnapshotBody`]. Written to `snapshot.<zxid>.tmp`, fsynced,
//! renamed, and the directory fsynced, so a `snapshot.*` file is always whole. Loading reads
//! the body into an aligned buffer, checks its crc32c, validates the archive (bytecheck via
//! `rkyv::access`) and rebuilds the tree with `DataTree::restore`. Layout: `docs/storage.md`.
//!
//! **Taken in steps while writes go on.** [`SnapshotCapture`] copies the tree a step of
//! nodes at a time (every node's data and ACL shared by refcount): a standalone server's
//! walk is *fuzzy* (each node as of some moment after the snapshot's zxid, replayed at
//! recovery with `DataTree::apply_replayed`, which changes only what a copy does not already
//! show), a replicated server's is *exact* at its zxid (the pre-images the tree keeps while
//! it runs). Encoding and writing run off the executor. `docs/storage.md` ("Snapshots while
//! writes continue") has the rules. Matches `FileSnap` / `SnapStream` in role.

use super::fs::{Fs, StdFs};
use super::txn_log::zxid_of_name;
use crate::proto::{Acl, Id, SessionId};
use crate::tree::preimages::Preimage;
use crate::tree::{Children, DataTree, Node, NodeCopy};
use bytes::Bytes;
use rkyv::util::AlignedVec;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `CORRALSN`: Corral snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"CORRALSN";
/// The layout this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;
/// Header size; the archive starts here.
pub const SNAPSHOT_HEADER_BYTES: usize = 40;
/// The file name prefix (as ZooKeeper's).
pub const SNAPSHOT_PREFIX: &str = "snapshot.";
/// Largest body accepted on load (a corrupt length must not allocate the machine).
pub const SNAPSHOT_BODY_BYTES_MAX: u64 = 1 << 40;

/// A snapshot that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{op} {path}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("{file}: bad snapshot header: {reason}")]
    BadHeader { file: PathBuf, reason: &'static str },
    #[error("{file}: body is {actual} bytes, header says {expected}")]
    LengthMismatch {
        file: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{file}: body checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch {
        file: PathBuf,
        stored: u32,
        computed: u32,
    },
    #[error("{file}: archive fails validation: {reason}")]
    InvalidArchive { file: PathBuf, reason: String },
    #[error(
        "{file}: header zxid {header_zxid:#x} differs from the name or the body ({body_zxid:#x})"
    )]
    ZxidMismatch {
        file: PathBuf,
        header_zxid: i64,
        body_zxid: i64,
    },
    #[error("{file}: not a tree: {source}")]
    NotATree {
        file: PathBuf,
        source: crate::tree::restore::RestoreError,
    },
    #[error("{dir}: no snapshot loads (newest {newest}); refusing to start from an empty tree")]
    NoValidSnapshot { dir: PathBuf, newest: PathBuf },
    #[error("encoding snapshot: {reason}")]
    Encode { reason: String },
}

/// One ACL entry as archived.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SnapAcl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

/// One znode as archived. `acl` indexes [`SnapshotBody::acls`] (ACL lists are shared by many
/// nodes, as ZooKeeper's `ReferenceCountedACLCache` shares them).
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SnapNode {
    pub path: String,
    /// `None` = null data (distinct from empty).
    pub data: Option<Bytes>,
    pub acl: u32,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime_ms: i64,
    pub mtime_ms: i64,
    pub version: i32,
    pub cversion_creations: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

/// One live session.
#[derive(Debug, Clone, Copy, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SnapSession {
    pub id: i64,
    pub timeout_ms: i32,
}

/// The archived root.
#[derive(Debug, Clone, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SnapshotBody {
    pub zxid: i64,
    pub acls: Vec<Vec<SnapAcl>>,
    /// Sorted by path (parents before children; stable output for tools and diffs).
    pub nodes: Vec<SnapNode>,
    pub sessions: Vec<SnapSession>,
}

/// A copy of the tree and sessions named by one zxid, ready to encode off the executor
/// (`Send`). Paths, data and ACLs are shared with the live tree by reference count.
///
/// Either exact ([`SnapshotImage::capture`]: every node as of `zxid`), or *fuzzy*
/// ([`SnapshotCapture`]: nodes copied a few at a time while writes go on, each as of some
/// moment after `zxid`), which recovery makes exact by replaying the log after `zxid`
/// with [`DataTree::apply_replayed`]. Sorting, ACL de-duplication and the owned strings of
/// the archive ([`SnapshotImage::to_body`]) happen on the thread that encodes.
pub struct SnapshotImage {
    pub zxid: i64,
    nodes: Vec<(Arc<str>, NodeCopy)>,
    sessions: Vec<(SessionId, i32)>,
}

/// A node's archived form, with its path and its index into the ACL table.
fn to_snap(n: &NodeCopy, path: String, acl: u32) -> SnapNode {
    SnapNode {
        path,
        data: n.data.clone(),
        acl,
        czxid: n.czxid,
        mzxid: n.mzxid,
        ctime_ms: n.ctime_ms,
        mtime_ms: n.mtime_ms,
        version: n.version,
        cversion_creations: n.cversion_creations,
        aversion: n.aversion,
        ephemeral_owner: n.ephemeral_owner,
        pzxid: n.pzxid,
    }
}

/// A snapshot taken a few nodes at a time, so that the executor holding the tree never
/// stops for long (at a million znodes a whole copy took ~0.2 s; see `bench/storage.rs`).
///
/// A walk from `/`, parents before children, each node copied when it is reached: the
/// snapshot never holds a node without its parent. Two kinds:
///
/// - **Fuzzy** ([`start`](Self::start), [`step`](Self::step); the standalone ZAB
///   executor's own snapshots): nodes created after the walk passed their parent are
///   missing and nodes deleted meanwhile may still be there; the log after `zxid` (the
///   last zxid when the walk began) sets both right at recovery, because a fuzzy snapshot
///   is replayed with [`DataTree::apply_replayed`] (ZooKeeper's "fuzzy snapshot" scheme,
///   with our stamps deciding what a copy already shows).
/// - **Exact** ([`start_exact`](Self::start_exact), [`step_exact`](Self::step_exact); a
///   replicated server's shard 0, whose snapshots learners install): the tree keeps
///   pre-images of what changes during the walk (`tree::preimages`), so the image is the
///   tree at `zxid` exactly, as [`SnapshotImage::capture`] would have copied it then.
pub struct SnapshotCapture {
    zxid: i64,
    sessions: Vec<(SessionId, i32)>,
    /// Paths still to visit; the root first.
    to_visit: Vec<Arc<str>>,
    nodes: Vec<(Arc<str>, NodeCopy)>,
    /// Exact walks: the id the tree keeps pre-images under.
    exact_walk: Option<u64>,
}

/// An exact walk's tree no longer keeps its pre-images: it was replaced by another (a
/// learner installed its leader's snapshot). The walk cannot finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeReplaced;

impl SnapshotCapture {
    /// A fuzzy walk from `tree.last_zxid()` (the snapshot is replayed from there). Its
    /// image may show any change up to the tree's zxid when the walk ends: it may be
    /// written only once the log is durable that far. `sessions` are the live sessions at
    /// the walk's start.
    pub fn start(tree: &DataTree, sessions: impl IntoIterator<Item = (SessionId, i32)>) -> Self {
        SnapshotCapture {
            zxid: tree.last_zxid(),
            sessions: sessions.into_iter().collect(),
            to_visit: vec![Arc::from("/")],
            nodes: Vec::with_capacity(tree.node_count()),
            exact_walk: None,
        }
    }

    /// An exact walk of `tree` as it is now (`sessions` as of now too); `walk_id` names it
    /// to the tree, which keeps pre-images for it until [`finish_exact`](Self::finish_exact).
    pub fn start_exact(
        tree: &mut DataTree,
        sessions: impl IntoIterator<Item = (SessionId, i32)>,
        walk_id: u64,
    ) -> Self {
        let mut walk = Self::start(tree, sessions);
        walk.zxid = tree.keep_preimages(walk_id);
        walk.exact_walk = Some(walk_id);
        walk
    }

    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Copies up to `max_nodes` more nodes of `tree` as it is now (a fuzzy walk). True
    /// when the walk is complete.
    pub fn step(&mut self, tree: &DataTree, max_nodes: usize) -> bool {
        debug_assert!(
            self.exact_walk.is_none(),
            "an exact walk steps with step_exact"
        );
        self.walk(max_nodes, |path, to_visit| {
            let node = tree.get(path)?;
            push_children(to_visit, node);
            Some(node.copy_fields())
        })
    }

    /// Copies up to `max_nodes` more nodes of `tree` as they were at [`zxid`](Self::zxid)
    /// (an exact walk). True when the walk is complete.
    pub fn step_exact(
        &mut self,
        tree: &mut DataTree,
        max_nodes: usize,
    ) -> Result<bool, TreeReplaced> {
        self.check_tree(tree)?;
        let as_of = self.zxid;
        Ok(self.walk(max_nodes, |path, to_visit| {
            let before = tree.take_preimage(path);
            let live = tree.get(path);
            match before {
                // Changed or deleted since: as it was then. Its children then are the live
                // ones that were there then (the walk skips the newer ones) and the deleted
                // ones, whose pre-images `finish_exact` adds.
                Preimage::Before(node) => {
                    if let Some(live) = live {
                        push_children(to_visit, live);
                    }
                    Some(node)
                }
                Preimage::Taken => None,
                Preimage::Unchanged => {
                    let live = live?;
                    // Created since the walk began, and so is everything below it.
                    if live.czxid > as_of {
                        return None;
                    }
                    push_children(to_visit, live);
                    Some(live.copy_fields())
                }
            }
        }))
    }

    /// An exact walk whose pre-images `tree` keeps.
    fn check_tree(&self, tree: &DataTree) -> Result<(), TreeReplaced> {
        match self.exact_walk {
            Some(id) if tree.preimages_walk() == Some(id) => Ok(()),
            _ => Err(TreeReplaced),
        }
    }

    /// Pops paths and copies what `reach` finds there (it pushes the children to visit)
    /// until `max_nodes` were visited or none is left to visit.
    fn walk(
        &mut self,
        max_nodes: usize,
        mut reach: impl FnMut(&str, &mut Vec<Arc<str>>) -> Option<NodeCopy>,
    ) -> bool {
        for _ in 0..max_nodes {
            let Some(path) = self.to_visit.pop() else {
                return true;
            };
            // None: gone since its parent was copied (a fuzzy walk: its deletion is in the
            // log after `zxid`), or not part of the tree at `zxid` (an exact walk).
            if let Some(node) = reach(&path, &mut self.to_visit) {
                self.nodes.push((path, node));
            }
        }
        self.to_visit.is_empty()
    }

    /// The image of a fuzzy walk, once [`step`](Self::step) returned true.
    pub fn finish(self) -> SnapshotImage {
        SnapshotImage {
            zxid: self.zxid,
            nodes: self.nodes,
            sessions: self.sessions,
        }
    }

    /// The image of an exact walk, once [`step_exact`](Self::step_exact) returned true:
    /// with the nodes deleted before the walk reached them. `tree` stops keeping
    /// pre-images.
    pub fn finish_exact(mut self, tree: &mut DataTree) -> Result<SnapshotImage, TreeReplaced> {
        self.check_tree(tree)?;
        // Copies of nodes changed after the walk took them are here too: they equal the
        // walk's copy (nothing changed them before), and `to_body` keeps one per path.
        for (path, node) in tree.stop_keeping_preimages() {
            self.nodes.push((path, node));
        }
        Ok(self.finish())
    }
}

/// Reversed, so the stack pops children in name order (parents still come first).
fn push_children(to_visit: &mut Vec<Arc<str>>, node: &Node) {
    to_visit.extend(node.children.paths().rev().cloned());
}

impl SnapshotImage {
    /// An exact copy of `tree` at `tree.last_zxid()` with `sessions`, taken in one go
    /// (tools, tests; the server takes a [`SnapshotCapture`] in steps).
    pub fn capture(tree: &DataTree, sessions: impl IntoIterator<Item = (SessionId, i32)>) -> Self {
        let mut walk = SnapshotCapture::start(tree, sessions);
        walk.step(tree, usize::MAX);
        walk.finish()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The archive's root: nodes sorted by path, ACL lists de-duplicated into a table,
    /// sessions sorted by id.
    pub fn to_body(&self) -> SnapshotBody {
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.sort_unstable_by(|&a, &b| self.nodes[a].0.cmp(&self.nodes[b].0));
        // An exact walk may hold two equal copies of a node (see `finish_exact`).
        order.dedup_by(|a, b| self.nodes[*a].0 == self.nodes[*b].0);
        let mut acl_index: HashMap<*const Vec<Acl>, u32> = HashMap::new();
        let mut acls: Vec<Vec<SnapAcl>> = Vec::new();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for i in order {
            let (p, n) = &self.nodes[i];
            let acl = *acl_index.entry(Arc::as_ptr(&n.acl)).or_insert_with(|| {
                acls.push(
                    n.acl
                        .iter()
                        .map(|a| SnapAcl {
                            perms: a.perms,
                            scheme: a.id.scheme.to_string(),
                            id: a.id.id.to_string(),
                        })
                        .collect(),
                );
                (acls.len() - 1) as u32
            });
            nodes.push(to_snap(n, p.to_string(), acl));
        }
        let mut sessions: Vec<SnapSession> = self
            .sessions
            .iter()
            .map(|&(id, timeout_ms)| SnapSession { id, timeout_ms })
            .collect();
        sessions.sort_unstable_by_key(|s| s.id);
        SnapshotBody {
            zxid: self.zxid,
            acls,
            nodes,
            sessions,
        }
    }

    /// The whole file: header + archive.
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        self.to_body().encode()
    }
}

impl SnapshotBody {
    /// The whole file: header + archive. The archive is serialized straight after room for
    /// the header, into a buffer sized for it up front: a growing buffer copied behind the
    /// header would move a large snapshot's tens of MiB two more times.
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        let mut file = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + self.body_bytes_estimate());
        file.resize(SNAPSHOT_HEADER_BYTES, 0);
        let AfterHeader(mut file) =
            rkyv::api::high::to_bytes_in::<_, rkyv::rancor::Error>(self, AfterHeader(file))
                .map_err(|e| SnapshotError::Encode {
                    reason: e.to_string(),
                })?;
        let header = encode_header(self.zxid, &file[SNAPSHOT_HEADER_BYTES..]);
        file[..SNAPSHOT_HEADER_BYTES].copy_from_slice(&header);
        Ok(file)
    }

    /// About the archive's size, a little over: each node's path and data plus room for its
    /// fixed fields and relative pointers, and the ACL table and sessions likewise.
    pub(crate) fn body_bytes_estimate(&self) -> usize {
        const NODE_FIXED_BYTES: usize = 128;
        const ACL_ENTRY_FIXED_BYTES: usize = 32;
        const SESSION_BYTES: usize = 16;
        let nodes: usize = self
            .nodes
            .iter()
            .map(|n| NODE_FIXED_BYTES + n.path.len() + n.data.as_ref().map_or(0, Bytes::len))
            .sum();
        let acls: usize = self
            .acls
            .iter()
            .flatten()
            .map(|a| ACL_ENTRY_FIXED_BYTES + a.scheme.len() + a.id.len())
            .sum();
        nodes + acls + SESSION_BYTES * self.sessions.len() + 4096
    }
}

/// rkyv's writer for [`SnapshotBody::encode`]: bytes go after the header's room, and
/// positions count from the archive's start, so the archive is byte for byte the one
/// serialized on its own (rkyv pads by position, never by address).
struct AfterHeader(Vec<u8>);

impl rkyv::ser::Positional for AfterHeader {
    fn pos(&self) -> usize {
        self.0.len() - SNAPSHOT_HEADER_BYTES
    }
}

impl<E> rkyv::ser::Writer<E> for AfterHeader {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// The header of a snapshot file holding `body` (the rkyv archive) at `zxid`: magic,
/// format version, header length, zxid, body length and crc32c, and the header's own
/// crc32c. Public for tools that re-seal a body (the fuzz targets).
pub fn encode_header(zxid: i64, body: &[u8]) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut h = [0u8; SNAPSHOT_HEADER_BYTES];
    h[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    h[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SNAPSHOT_HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&zxid.to_le_bytes());
    h[24..32].copy_from_slice(&(body.len() as u64).to_le_bytes());
    h[32..36].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    let crc = crc32c::crc32c(&h[0..36]);
    h[36..40].copy_from_slice(&crc.to_le_bytes());
    h
}

/// `<dir>/snapshot.<zxid hex>`.
pub fn snapshot_path(dir: &Path, zxid: i64) -> PathBuf {
    dir.join(format!("{SNAPSHOT_PREFIX}{:x}", zxid as u64))
}

/// Snapshots in `dir`, sorted by zxid.
pub fn list_snapshots(dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    list_snapshots_in(&StdFs, dir)
}

/// [`list_snapshots`] on any [`Fs`].
pub fn list_snapshots_in(fs: &impl Fs, dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    crate::storage::txn_log::list_by_zxid_in(fs, dir, SNAPSHOT_PREFIX)
}

/// Removes `snapshot.*.tmp` left by a crash while writing.
pub fn remove_temp_files(dir: &Path) {
    remove_temp_files_in(&mut StdFs, dir)
}

/// [`remove_temp_files`] on any [`Fs`].
pub fn remove_temp_files_in(fs: &mut impl Fs, dir: &Path) {
    let Ok(names) = fs.list_dir(dir) else {
        return;
    };
    for name in names {
        if name.starts_with(SNAPSHOT_PREFIX) && name.ends_with(".tmp") {
            let path = dir.join(&name);
            tracing::warn!(file = %path.display(), "removing unfinished snapshot");
            let _ = fs.remove_file(&path);
        }
    }
}

/// Writes `file_bytes` (from [`SnapshotBody::encode`]) as `snapshot.<zxid>` in `dir`
/// atomically: temp file, fsync, rename, fsync dir. Blocking: run it off the executor.
pub fn write_snapshot(dir: &Path, zxid: i64, file_bytes: &[u8]) -> Result<PathBuf, SnapshotError> {
    write_snapshot_in(&mut StdFs, dir, zxid, file_bytes)
}

/// [`write_snapshot`] on any [`Fs`].
pub fn write_snapshot_in(
    fs: &mut impl Fs,
    dir: &Path,
    zxid: i64,
    file_bytes: &[u8],
) -> Result<PathBuf, SnapshotError> {
    let path = snapshot_path(dir, zxid);
    super::epoch::write_atomically_in(fs, &path, file_bytes).map_err(|(op, p, source)| {
        SnapshotError::Io {
            path: p,
            op,
            source,
        }
    })?;
    Ok(path)
}

/// Encodes and writes `image` on a glommio blocking thread, so the calling executor keeps
/// serving. Returns the path written.
pub async fn write_snapshot_async(
    dir: PathBuf,
    image: SnapshotImage,
) -> Result<PathBuf, SnapshotError> {
    glommio::executor()
        .spawn_blocking(move || {
            let started = std::time::Instant::now();
            let bytes = image.encode()?;
            let (zxid, nodes) = (image.zxid, image.node_count());
            drop(image);
            let written = write_snapshot(&dir, zxid, &bytes);
            let len_bytes = bytes.len();
            drop(bytes);
            crate::runtime::release_free_memory();
            let path = written?;
            tracing::info!(
                snapshot = %path.display(),
                nodes,
                bytes = len_bytes,
                took_ms = started.elapsed().as_millis() as u64,
                "snapshot written"
            );
            Ok(path)
        })
        .await
}

/// The zxid a snapshot file's header names (no other check: for files this server just
/// encoded). `None` if the bytes do not start with a snapshot header.
pub fn file_zxid(bytes: &[u8]) -> Option<i64> {
    let h = bytes.first_chunk::<SNAPSHOT_HEADER_BYTES>()?;
    (h[0..8] == SNAPSHOT_MAGIC).then(|| header_u64(h, 16) as i64)
}

fn header_u32(h: &[u8; SNAPSHOT_HEADER_BYTES], i: usize) -> u32 {
    u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]])
}

fn header_u64(h: &[u8; SNAPSHOT_HEADER_BYTES], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&h[i..i + 8]);
    u64::from_le_bytes(a)
}

/// Checks magic, header crc, version and the body length against the file length;
/// returns (zxid, body length).
fn check_header(
    path: &Path,
    h: &[u8; SNAPSHOT_HEADER_BYTES],
    file_len: u64,
) -> Result<(i64, u64), SnapshotError> {
    let bad = |reason| SnapshotError::BadHeader {
        file: path.to_path_buf(),
        reason,
    };
    if h[0..8] != SNAPSHOT_MAGIC {
        return Err(bad("bad magic (not a Corral snapshot)"));
    }
    if crc32c::crc32c(&h[0..36]) != header_u32(h, 36) {
        return Err(bad("header checksum mismatch"));
    }
    if header_u32(h, 8) != SNAPSHOT_FORMAT_VERSION
        || header_u32(h, 12) as usize != SNAPSHOT_HEADER_BYTES
    {
        return Err(bad("unsupported format version"));
    }
    let zxid = header_u64(h, 16) as i64;
    let body_len = header_u64(h, 24);
    let actual = file_len - SNAPSHOT_HEADER_BYTES as u64;
    if body_len != actual || body_len > SNAPSHOT_BODY_BYTES_MAX {
        return Err(SnapshotError::LengthMismatch {
            file: path.to_path_buf(),
            expected: body_len,
            actual,
        });
    }
    Ok((zxid, body_len))
}

/// A snapshot's archive read into aligned memory and validated.
pub struct SnapshotFile {
    pub zxid: i64,
    body: AlignedVec,
}

impl SnapshotFile {
    /// Reads and checks header, length, crc32c and archive structure. Streams the body
    /// into aligned memory.
    pub fn read(path: &Path) -> Result<SnapshotFile, SnapshotError> {
        let io = |op, source| SnapshotError::Io {
            path: path.to_path_buf(),
            op,
            source,
        };
        let mut f = std::fs::File::open(path).map_err(|e| io("opening", e))?;
        let file_len = f.metadata().map_err(|e| io("stat", e))?.len();
        let mut h = [0u8; SNAPSHOT_HEADER_BYTES];
        if file_len < SNAPSHOT_HEADER_BYTES as u64 {
            return Err(SnapshotError::BadHeader {
                file: path.to_path_buf(),
                reason: "shorter than the header",
            });
        }
        f.read_exact(&mut h).map_err(|e| io("reading", e))?;
        let (zxid, body_len) = check_header(path, &h, file_len)?;
        let mut body = AlignedVec::with_capacity(body_len as usize);
        body.extend_from_reader(&mut f)
            .map_err(|e| io("reading", e))?;
        Self::check_body(path, &h, zxid, body)
    }

    /// The same checks on a whole file already in memory (the simulated disk).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<SnapshotFile, SnapshotError> {
        let Some(h) = bytes.first_chunk::<SNAPSHOT_HEADER_BYTES>() else {
            return Err(SnapshotError::BadHeader {
                file: path.to_path_buf(),
                reason: "shorter than the header",
            });
        };
        let (zxid, _) = check_header(path, h, bytes.len() as u64)?;
        let mut body = AlignedVec::with_capacity(bytes.len() - SNAPSHOT_HEADER_BYTES);
        body.extend_from_slice(&bytes[SNAPSHOT_HEADER_BYTES..]);
        Self::check_body(path, h, zxid, body)
    }

    fn check_body(
        path: &Path,
        h: &[u8; SNAPSHOT_HEADER_BYTES],
        zxid: i64,
        body: AlignedVec,
    ) -> Result<SnapshotFile, SnapshotError> {
        let body_len = header_u64(h, 24);
        if body.len() as u64 != body_len {
            return Err(SnapshotError::LengthMismatch {
                file: path.to_path_buf(),
                expected: body_len,
                actual: body.len() as u64,
            });
        }
        let stored = header_u32(h, 32);
        let computed = crc32c::crc32c(&body);
        if stored != computed {
            return Err(SnapshotError::ChecksumMismatch {
                file: path.to_path_buf(),
                stored,
                computed,
            });
        }
        let s = SnapshotFile { zxid, body };
        let archived = s.archived_checked(path)?;
        let body_zxid = archived.zxid.to_native();
        let name_zxid = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| zxid_of_name(n, SNAPSHOT_PREFIX));
        if body_zxid != zxid || name_zxid.is_some_and(|z| z != zxid) {
            return Err(SnapshotError::ZxidMismatch {
                file: path.to_path_buf(),
                header_zxid: zxid,
                body_zxid,
            });
        }
        Ok(s)
    }

    fn archived_checked(&self, path: &Path) -> Result<&ArchivedSnapshotBody, SnapshotError> {
        rkyv::access::<ArchivedSnapshotBody, rkyv::rancor::Error>(&self.body).map_err(|e| {
            SnapshotError::InvalidArchive {
                file: path.to_path_buf(),
                reason: e.to_string(),
            }
        })
    }

    /// The validated archive (validated once in `read`; checked again here, cheaply
    /// relative to rebuilding, because the caller might hold a file read by other code).
    pub fn archived(&self) -> &ArchivedSnapshotBody {
        // The body passed `rkyv::access` in `read` and is immutable since.
        rkyv::access::<ArchivedSnapshotBody, rkyv::rancor::Error>(&self.body)
            .expect("validated in SnapshotFile::read")
    }
}

/// A loaded snapshot.
#[derive(Debug)]
pub struct Loaded {
    pub tree: DataTree,
    pub sessions: Vec<(SessionId, i32)>,
}

/// Reads, validates and rebuilds a snapshot.
pub fn load(path: &Path, config_data: Bytes) -> Result<Loaded, SnapshotError> {
    load_in(&StdFs, path, config_data)
}

/// [`load`] on any [`Fs`].
pub fn load_in(fs: &impl Fs, path: &Path, config_data: Bytes) -> Result<Loaded, SnapshotError> {
    let file = fs.read_snapshot(path)?;
    let a = file.archived();
    let invalid = |reason: String| SnapshotError::InvalidArchive {
        file: path.to_path_buf(),
        reason,
    };
    let acls: Vec<Arc<Vec<Acl>>> = a
        .acls
        .iter()
        .map(|list| {
            Arc::new(
                list.iter()
                    .map(|e| Acl {
                        perms: e.perms.to_native(),
                        id: Id::new(e.scheme.as_str(), e.id.as_str()),
                    })
                    .collect(),
            )
        })
        .collect();
    let mut nodes = Vec::with_capacity(a.nodes.len());
    for n in a.nodes.iter() {
        let acl_at = n.acl.to_native() as usize;
        let acl = acls
            .get(acl_at)
            .ok_or_else(|| {
                invalid(format!(
                    "node {} has ACL index {acl_at} of {}",
                    n.path,
                    acls.len()
                ))
            })?
            .clone();
        let node = Node {
            data: n
                .data
                .as_ref()
                .map(|d| Bytes::copy_from_slice(d.as_slice())),
            acl,
            czxid: n.czxid.to_native(),
            mzxid: n.mzxid.to_native(),
            ctime_ms: n.ctime_ms.to_native(),
            mtime_ms: n.mtime_ms.to_native(),
            version: n.version.to_native(),
            cversion_creations: n.cversion_creations.to_native(),
            aversion: n.aversion.to_native(),
            ephemeral_owner: n.ephemeral_owner.to_native(),
            pzxid: n.pzxid.to_native(),
            children: Children::default(),
        };
        nodes.push((Arc::<str>::from(n.path.as_str()), node));
    }
    let tree = DataTree::restore(nodes, file.zxid, config_data).map_err(|source| {
        SnapshotError::NotATree {
            file: path.to_path_buf(),
            source,
        }
    })?;
    let sessions = a
        .sessions
        .iter()
        .map(|s| (s.id.to_native(), s.timeout_ms.to_native()))
        .collect();
    Ok(Loaded { tree, sessions })
}
