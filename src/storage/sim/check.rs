//! The seeded power-loss check: a random workload through [`SimLogWriter`] (and snapshots and
//! purge through the real `Fs` code), a crash at a random disk operation, power loss, then
//! the real `storage::open` and `recover_log_in` on what survived. See [`sim_power_loss`].

use super::disk::{SimDisk, PAGE_BYTES, SECTOR_BYTES};
use super::log::SimLogWriter;
use super::SimRng;
use crate::proto::{Acl, ErrorCode};
use crate::storage::fs::Fs;
use crate::storage::recovery::{recover_log_in, RecoveryError, RecoveryMode};
use crate::storage::snapshot::{self, SnapshotBody, SnapshotImage, SNAPSHOT_PREFIX};
use crate::storage::txn_log::{
    encode_frame, list_segments_in, read_frame, scan_segment, zxid_of_name, Frame, LogOptions,
    SEGMENT_HEADER_BYTES,
};
use crate::storage::{open_in, purge_in, version_dir, OpenError, OpenOptions};
use crate::tree::txn::{CreateTxn, Txn, TxnRecord};
use crate::tree::DataTree;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// zxids of the workload: epoch 1, counter from 1.
const ZXID_BASE: i64 = 1 << 32;

const CONFIG_DATA: &[u8] = b"server.1=127.0.0.1:2888:3888:participant\nversion=0";

/// What one seed did, summed over its crash cycles (for `--nocapture` output and for the
/// simulator's own reports).
#[derive(Debug, Clone, Default)]
pub struct PowerLossOutcome {
    pub seed: u64,
    pub cycles: u64,
    /// Disk operations the workloads would have performed without a crash.
    pub ops_total: u64,
    pub records_written: usize,
    pub records_acknowledged: usize,
    pub records_recovered: usize,
    pub snapshots_written: usize,
    /// Snapshot files visible before a power loss and gone after it (rename not yet durable).
    pub snapshots_vanished: usize,
    pub recoveries_from_snapshot: usize,
    pub crashes_during_recovery: usize,
    pub corruptions_refused: usize,
    pub pages_torn: u64,
    pub pages_lost: u64,
    pub dir_ops_lost: u64,
}

/// The shape of one seed's workload.
#[derive(Debug, Clone)]
struct Plan {
    opts: LogOptions,
    data_dir: PathBuf,
    log_dir_root: PathBuf,
    batches: u64,
    batch_records_max: u64,
    snapshot_percent: u64,
    purge_percent: u64,
}

impl Plan {
    fn draw(rng: &mut SimRng) -> Plan {
        const PRE_ALLOC: [u64; 5] = [4096, 8192, 16384, 65536, 3 << 19];
        let pre_alloc_bytes = if rng.chance(1, 16) {
            PRE_ALLOC[4]
        } else {
            PRE_ALLOC[rng.below(4) as usize]
        };
        let segment_bytes_max = if rng.chance(1, 3) {
            None
        } else {
            Some(rng.range(1024, 64 << 10))
        };
        let data_dir = PathBuf::from("/sim/data");
        let log_dir_root = if rng.chance(1, 2) {
            data_dir.clone()
        } else {
            PathBuf::from("/sim/datalog")
        };
        Plan {
            opts: LogOptions {
                pre_alloc_bytes,
                force_sync: true,
                fsync_warning_threshold_ms: 1000,
                segment_bytes_max,
            },
            data_dir,
            log_dir_root,
            batches: rng.range(1, 30),
            batch_records_max: if rng.chance(1, 4) { 24 } else { 6 },
            snapshot_percent: [0, 5, 20][rng.below(3) as usize],
            purge_percent: [0, 50, 100][rng.below(3) as usize],
        }
    }

    fn snap_dir(&self) -> PathBuf {
        version_dir(&self.data_dir)
    }

    fn log_dir(&self) -> PathBuf {
        version_dir(&self.log_dir_root)
    }
}

/// A valid transaction stream (every txn applies to the tree built so far), with data
/// sizes from a few bytes to several pages, some aimed at page, sector, preallocation and
/// segment boundaries.
struct Generator {
    rng: SimRng,
    tree: DataTree,
    zxid: i64,
    sessions: BTreeMap<i64, i32>,
    /// Persistent nodes (may get children, setData, delete).
    paths: Vec<Arc<str>>,
}

impl Generator {
    /// Continues after `prior` (the records a restart recovered).
    fn resume(rng: SimRng, prior: &[TxnRecord]) -> Generator {
        let mut g = Generator {
            rng,
            tree: DataTree::new(Bytes::from_static(CONFIG_DATA)),
            zxid: ZXID_BASE,
            sessions: BTreeMap::new(),
            paths: Vec::new(),
        };
        for rec in prior {
            g.observe(rec);
        }
        g
    }

    fn observe(&mut self, rec: &TxnRecord) {
        self.zxid = rec.zxid;
        apply(&mut self.tree, &mut self.sessions, rec);
        match &rec.txn {
            Txn::Create(c) if c.ephemeral_owner == 0 => self.paths.push(c.path.clone()),
            Txn::Delete { path } => self.paths.retain(|p| p != path),
            _ => {}
        }
    }

    /// Random bytes: no long zero runs, so a zeroed sector inside a record is never data.
    fn data(&mut self, len: usize) -> Bytes {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        v.truncate(len);
        Bytes::from(v)
    }

    fn data_len(&mut self) -> usize {
        match self.rng.below(100) {
            0..45 => self.rng.below(48) as usize,
            45..70 => self.rng.range(48, 1500) as usize,
            _ => self.rng.range(1500, 12_000) as usize,
        }
    }

    /// Picks a parent, a new name and an owner for a create.
    fn create_site(&mut self) -> (Arc<str>, i32, i64) {
        let parent: Arc<str> = if self.paths.is_empty() || self.rng.chance(1, 3) {
            Arc::from("/")
        } else {
            self.paths[self.rng.below(self.paths.len() as u64) as usize].clone()
        };
        // Named by zxid: unique among live nodes, also after a restart lost some records.
        let path: Arc<str> = Arc::from(crate::proto::path::join(
            &parent,
            &format!("n{}", self.zxid - ZXID_BASE),
        ));
        let parent_cversion = self
            .tree
            .get(&parent)
            .map_or(0, |n| n.cversion_creations + 1);
        let owner = match self.sessions.keys().last() {
            Some(&id) if self.rng.chance(1, 4) => id,
            _ => 0,
        };
        (path, parent_cversion, owner)
    }

    fn create((path, parent_cversion, ephemeral_owner): (Arc<str>, i32, i64), data: Bytes) -> Txn {
        Txn::Create(CreateTxn {
            path,
            data: Some(data),
            acl: Arc::new(Acl::open_unsafe()),
            ephemeral_owner,
            parent_cversion,
            with_stat: false,
        })
    }

    /// The next record; `frame_bytes` asks for a create whose frame has about that size.
    fn next(&mut self, frame_bytes: Option<usize>) -> TxnRecord {
        self.zxid += 1;
        let mut session_id = 0;
        let txn = if let Some(target) = frame_bytes {
            let site = self.create_site();
            let probe = TxnRecord {
                zxid: self.zxid,
                time_ms: 0,
                session_id: 0,
                cxid: 0,
                txn: Self::create(site.clone(), Bytes::new()),
            };
            let overhead = encode_frame(&probe, &mut Vec::new());
            let data = self.data(target.saturating_sub(overhead));
            Self::create(site, data)
        } else {
            match self.rng.below(10) {
                0 => {
                    session_id = 0x0200_0000_0000_0000 + self.zxid;
                    Txn::CreateSession { timeout_ms: 4000 }
                }
                1 if !self.sessions.is_empty() => {
                    let id = *self.sessions.keys().next().expect("not empty");
                    session_id = id;
                    let ephemerals = self.tree.ephemerals_of(id).cloned().collect();
                    Txn::CloseSession { ephemerals }
                }
                2 | 3 if !self.paths.is_empty() => {
                    let p = self.paths[self.rng.below(self.paths.len() as u64) as usize].clone();
                    let version = self.tree.get(&p).map_or(0, |n| n.version + 1);
                    let len = self.data_len();
                    Txn::SetData {
                        path: p,
                        data: Some(self.data(len)),
                        version,
                    }
                }
                4 => {
                    let leaf = self.paths.iter().find(|p| {
                        self.tree
                            .get(p)
                            .is_some_and(|n| n.children.is_empty() && n.ephemeral_owner == 0)
                    });
                    match leaf {
                        Some(p) => Txn::Delete { path: p.clone() },
                        None => Txn::Error {
                            err: ErrorCode::NoNode,
                        },
                    }
                }
                _ => {
                    let site = self.create_site();
                    let len = self.data_len();
                    let data = self.data(len);
                    Self::create(site, data)
                }
            }
        };
        let rec = TxnRecord {
            zxid: self.zxid,
            time_ms: 1_700_000_000_000 + self.zxid,
            session_id,
            cxid: self.zxid as i32,
            txn,
        };
        self.observe(&rec);
        rec
    }
}

/// Applies `rec` to a tree and its session table, as `storage::open` does.
fn apply(tree: &mut DataTree, sessions: &mut BTreeMap<i64, i32>, rec: &TxnRecord) {
    tree.apply(rec, &mut Vec::new());
    match &rec.txn {
        Txn::CreateSession { timeout_ms } => {
            sessions.insert(rec.session_id, *timeout_ms);
        }
        Txn::CloseSession { .. } => {
            sessions.remove(&rec.session_id);
        }
        _ => {}
    }
}

/// What a workload run did before it finished or the disk crashed.
#[derive(Debug, Default)]
struct Run {
    /// Every record of the history: the ones a previous restart recovered, then this run's.
    written: Vec<TxnRecord>,
    /// Records known durable: the recovered ones, then those covered by a completed sync.
    acknowledged: usize,
    /// zxids of snapshots whose write returned `Ok`.
    snapshots: Vec<i64>,
}

/// A frame size aimed at a boundary near where the next record will start.
fn aimed_frame_bytes(rng: &mut SimRng, w: &SimLogWriter, opts: &LogOptions) -> Option<usize> {
    let start = match w.cursor() {
        Some(c) => c.write_offset,
        None => SEGMENT_HEADER_BYTES as u64,
    } + w.pending_bytes() as u64;
    let next_multiple = |unit: u64| (start / unit + 1) * unit;
    let boundary = match rng.below(4) {
        0 => opts.segment_bytes_max.filter(|&m| m > start)?,
        1 => w.allocated_bytes().filter(|&a| a > start)?,
        2 => next_multiple(PAGE_BYTES) + PAGE_BYTES * rng.below(3),
        _ => next_multiple(SECTOR_BYTES),
    };
    let jitter = rng.range(0, 24) as i64 - 12;
    let target = (boundary - start) as i64 + jitter;
    (target > 200).then_some(target as usize)
}

/// Runs a server's write path from the state `prior` left, until its batches are done or
/// the disk crashes (after `crash_at` more operations).
fn run_workload(
    seed: u64,
    plan: &Plan,
    disk: &mut SimDisk,
    prior: &[TxnRecord],
    crash_at: Option<u64>,
) -> Result<Run, String> {
    let mut rng = SimRng::new(seed);
    let mut gen = Generator::resume(rng.fork(), prior);
    let mut run = Run {
        written: prior.to_vec(),
        acknowledged: prior.len(),
        snapshots: Vec::new(),
    };
    if let Some(ops) = crash_at {
        disk.crash_after(ops);
    }
    let crash_or = |disk: &SimDisk, what: String| -> Result<(), String> {
        if disk.crashed() {
            Ok(())
        } else {
            Err(what)
        }
    };
    let snap_dir = plan.snap_dir();
    disk.create_dir_all(&snap_dir)
        .map_err(|e| format!("creating {}: {e}", snap_dir.display()))?;
    let mut writer = SimLogWriter::open(disk, &plan.log_dir(), plan.opts.clone(), gen.zxid)
        .map_err(|e| format!("opening the log: {e}"))?;
    for _ in 0..plan.batches {
        let n = rng.range(1, plan.batch_records_max);
        for _ in 0..n {
            let aim = if rng.chance(1, 8) {
                aimed_frame_bytes(&mut rng, &writer, &plan.opts)
            } else {
                None
            };
            let rec = gen.next(aim);
            writer.append(std::slice::from_ref(&rec));
            run.written.push(rec);
        }
        match writer.sync(disk) {
            Ok(zxid) => {
                let acknowledged = (zxid - ZXID_BASE) as usize;
                if acknowledged != run.written.len() {
                    return Err(format!(
                        "sync returned zxid {zxid:#x}, {} records written",
                        run.written.len()
                    ));
                }
                run.acknowledged = acknowledged;
            }
            Err(e) => {
                crash_or(disk, format!("log sync failed: {e}"))?;
                break;
            }
        }
        if !rng.chance(plan.snapshot_percent, 100) {
            continue;
        }
        // As the ZAB executor: capture right after a sync, write the image. The server's
        // log goes on in its segment; at every other snapshot this one asks for a roll
        // (without a draw, so seeds keep their runs), so that runs hold snapshots inside
        // segments and at their starts.
        let image = SnapshotImage::capture(&gen.tree, gen.sessions.iter().map(|(k, v)| (*k, *v)));
        if run.snapshots.len() % 2 == 1 {
            writer.roll();
        }
        let bytes = image
            .encode()
            .map_err(|e| format!("encoding snapshot: {e}"))?;
        if let Err(e) = snapshot::write_snapshot_in(disk, &snap_dir, image.zxid, &bytes) {
            crash_or(disk, format!("snapshot write failed: {e}"))?;
            break;
        }
        run.snapshots.push(image.zxid);
        if rng.chance(plan.purge_percent, 100) {
            let retain = rng.range(1, 3) as usize;
            if let Err(e) = purge_in(disk, &plan.data_dir, &plan.log_dir_root, retain) {
                crash_or(disk, format!("purge failed: {e}"))?;
                break;
            }
        }
    }
    Ok(run)
}

/// Index in the written sequence just past `zxid` (0 for "nothing").
fn count_through(zxid: i64) -> usize {
    if zxid <= ZXID_BASE {
        0
    } else {
        (zxid - ZXID_BASE) as usize
    }
}

fn zxid_of_snapshot(path: &Path) -> Option<i64> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| zxid_of_name(n, SNAPSHOT_PREFIX))
}

/// The tree and sessions after the first `n` written records.
fn model_after(written: &[TxnRecord], n: usize) -> SnapshotBody {
    let mut tree = DataTree::new(Bytes::from_static(CONFIG_DATA));
    let mut sessions = BTreeMap::new();
    for rec in &written[..n] {
        apply(&mut tree, &mut sessions, rec);
    }
    SnapshotImage::capture(&tree, sessions).to_body()
}

/// Equal trees and sessions: every node's path, data, stat fields and ACL (resolved: the
/// ACL table's order depends on the tree's hash-map order), and the session table.
fn same_state(got: &SnapshotBody, want: &SnapshotBody) -> Result<(), String> {
    if got.zxid != want.zxid {
        return Err(format!("zxid {:#x}, expected {:#x}", got.zxid, want.zxid));
    }
    if got.sessions != want.sessions {
        return Err(format!(
            "sessions {:?}, expected {:?}",
            got.sessions, want.sessions
        ));
    }
    if got.nodes.len() != want.nodes.len() {
        return Err(format!(
            "{} nodes, expected {}",
            got.nodes.len(),
            want.nodes.len()
        ));
    }
    for (g, w) in got.nodes.iter().zip(&want.nodes) {
        let acl = |img: &SnapshotBody, i: u32| img.acls.get(i as usize).cloned();
        let (mut g2, mut w2) = (g.clone(), w.clone());
        g2.acl = 0;
        w2.acl = 0;
        if g2 != w2 || acl(got, g.acl) != acl(want, w.acl) {
            return Err(format!("node {} differs: {g:?} vs {w:?}", w.path));
        }
    }
    Ok(())
}

fn open_opts() -> OpenOptions {
    OpenOptions::new(Bytes::from_static(CONFIG_DATA))
}

/// One seed of the power-loss check. `Err` describes the first property that failed.
///
/// A seed draws a plan (preallocation, segment limit, same or separate log directory,
/// batches, snapshot and purge rates) and runs 1 to 3 crash cycles. Each cycle:
/// 1. Runs the write path from the state the previous cycle recovered (records through
///    [`SimLogWriter`], snapshots after syncs, purge), first on a copy of the disk to count
///    its disk operations, then for real with a crash at a random one of them: between a
///    write and its fdatasync, inside a segment roll, inside a snapshot's
///    temp-fsync-rename-fsync, inside purge, or after the last.
/// 2. Power loss ([`SimDisk::power_loss`]). Every `snapshot.*` file left must validate, and
///    the newest snapshot whose write returned must be there.
/// 3. The real `storage::open` — on half the cycles first interrupted by another power loss
///    at a random operation of its own repair — must succeed (power loss alone never reads
///    as corruption) and yield the state after exactly N records, where N is at least every
///    acknowledged record and at most every written one: tree and sessions equal to the
///    model's, the newest snapshot used, the log's frames after it byte-identical to the
///    written frames, and no torn tail left.
/// 4. A second `open` finds a clean log and the same state (recovery is idempotent).
/// 5. On a copy: a flipped byte in an acknowledged record that is followed by a valid
///    record makes `open` refuse, naming that segment and the record's offset
///    (`CorruptRecord`, or `TornTailBeforeNewerSegment` for a segment's last record).
pub fn sim_power_loss(seed: u64) -> Result<PowerLossOutcome, String> {
    let mut rng = SimRng::new(seed);
    let plan = Plan::draw(&mut rng);
    let cycles = rng.range(1, 3);
    let mut outcome = PowerLossOutcome {
        seed,
        cycles,
        ..Default::default()
    };
    let mut disk = SimDisk::new();
    let mut recovered: Vec<TxnRecord> = Vec::new();
    for cycle in 0..cycles {
        let r = one_cycle(&mut rng, &plan, &mut disk, &recovered, &mut outcome)
            .map_err(|e| format!("cycle {} of {cycles}: {e}", cycle + 1))?;
        recovered = r;
    }
    Ok(outcome)
}

/// One crash cycle of [`sim_power_loss`]; returns the records recovered.
fn one_cycle(
    rng: &mut SimRng,
    plan: &Plan,
    disk: &mut SimDisk,
    prior: &[TxnRecord],
    outcome: &mut PowerLossOutcome,
) -> Result<Vec<TxnRecord>, String> {
    let workload_seed = rng.next_u64();
    let mut counting = disk.clone();
    let ops_before = counting.ops_done();
    let full = run_workload(workload_seed, plan, &mut counting, prior, None)?;
    let ops = counting.ops_done() - ops_before;
    let crash_at = rng.below(ops + 1);
    outcome.ops_total += ops;
    let run = run_workload(workload_seed, plan, disk, prior, Some(crash_at))?;
    if full.written.get(..run.written.len()) != Some(&run.written[..]) {
        return Err("the workload is not deterministic".into());
    }
    outcome.records_written += run.written.len() - prior.len();
    outcome.records_acknowledged += run.acknowledged - prior.len();
    outcome.snapshots_written += run.snapshots.len();

    let snap_dir = plan.snap_dir();
    let list_snapshots = |disk: &SimDisk| {
        snapshot::list_snapshots_in(disk, &snap_dir).map_err(|e| format!("listing snapshots: {e}"))
    };
    let visible_before = list_snapshots(disk)?;
    let loss = disk.power_loss(rng);
    outcome.pages_torn += loss.pages_torn;
    outcome.pages_lost += loss.pages_lost;
    outcome.dir_ops_lost += loss.dir_ops_lost;

    // Snapshots: whole or absent; a completed one present.
    let snaps = list_snapshots(disk)?;
    for (_, path) in &snaps {
        if let Err(e) = disk.read_snapshot(path) {
            return Err(format!("a snapshot survived power loss partly: {e}"));
        }
    }
    outcome.snapshots_vanished += visible_before
        .iter()
        .filter(|(z, _)| !snaps.iter().any(|(y, _)| y == z))
        .count();
    if let Some(&newest) = run.snapshots.last() {
        if !snaps.iter().any(|(z, _)| *z == newest) {
            return Err(format!(
                "snapshot {newest:#x} was written (fsync, rename, fsync dir) but is gone"
            ));
        }
    }

    // Recovery, perhaps interrupted by another power loss in the middle of its repair.
    let mut trial = disk.clone();
    let trial_ops_before = trial.ops_done();
    let trial_result = open_in(&mut trial, &plan.data_dir, &plan.log_dir_root, &open_opts());
    let repair_ops = trial.ops_done() - trial_ops_before;
    if trial_result.is_ok() && repair_ops > 0 && rng.chance(1, 2) {
        disk.crash_after(rng.below(repair_ops));
        // Ok is possible: removing a leftover temp file ignores errors, the crash too.
        let _ = open_in(disk, &plan.data_dir, &plan.log_dir_root, &open_opts());
        if !disk.crashed() {
            return Err("recovery did not crash where its trial run wrote".into());
        }
        outcome.crashes_during_recovery += 1;
        disk.power_loss(rng);
    }
    let first = open_in(disk, &plan.data_dir, &plan.log_dir_root, &open_opts())
        .map_err(|e| format!("recovery refused after power loss: {e}"))?;
    let recovered = count_through(first.last_zxid);
    outcome.records_recovered += recovered.saturating_sub(prior.len());
    if recovered < run.acknowledged {
        return Err(format!(
            "lost acknowledged records: {} acknowledged, recovered through zxid {:#x} ({recovered})",
            run.acknowledged, first.last_zxid
        ));
    }
    if recovered > run.written.len() {
        return Err(format!(
            "recovered {recovered} records, only {} were written",
            run.written.len()
        ));
    }
    let expected = model_after(&run.written, recovered);
    let got = SnapshotImage::capture(&first.tree, first.sessions.iter().copied()).to_body();
    same_state(&got, &expected).map_err(|e| {
        format!(
            "recovered state at zxid {:#x} is not the written records': {e}",
            first.last_zxid
        )
    })?;
    let snap_zxid = first.snapshot.as_deref().and_then(zxid_of_snapshot);
    outcome.recoveries_from_snapshot += snap_zxid.is_some() as usize;
    if let Some((newest, _)) = snaps.last() {
        if snap_zxid != Some(*newest) {
            return Err(format!(
                "recovery used snapshot {snap_zxid:?}, the newest valid one is {newest:#x}"
            ));
        }
    }

    // The log itself: clean now, and the frames after the snapshot are the written ones.
    let after = snap_zxid.unwrap_or(0);
    let log_dir = plan.log_dir();
    let log = recover_log_in(disk, &log_dir, after, RecoveryMode::ReadOnly)
        .map_err(|e| format!("the repaired log does not read back: {e}"))?;
    if let Some(t) = &log.torn {
        return Err(format!("the repaired log still has a torn tail: {t:?}"));
    }
    let from = count_through(after);
    if log.records.len() != recovered.saturating_sub(from) {
        return Err(format!(
            "log after {after:#x} has {} records, expected {}",
            log.records.len(),
            recovered.saturating_sub(from)
        ));
    }
    for (_, path) in &log.segments {
        let bytes = disk
            .read(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let scan = scan_segment(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        for (offset, rec) in scan.records.iter().filter(|(_, r)| r.zxid > after) {
            let Frame::Record { frame_bytes, .. } = read_frame(&bytes, *offset) else {
                return Err(format!(
                    "{}: frame at {offset} does not read",
                    path.display()
                ));
            };
            let i = count_through(rec.zxid) - 1;
            let mut want = Vec::new();
            encode_frame(&run.written[i], &mut want);
            if bytes[*offset..offset + frame_bytes] != want[..] {
                return Err(format!(
                    "{}: record {:#x} at offset {offset} is not the written frame",
                    path.display(),
                    rec.zxid
                ));
            }
        }
    }

    // Idempotent: a second start finds the same state and nothing to repair.
    let second = open_in(disk, &plan.data_dir, &plan.log_dir_root, &open_opts())
        .map_err(|e| format!("second recovery refused: {e}"))?;
    same_state(
        &SnapshotImage::capture(&second.tree, second.sessions.iter().copied()).to_body(),
        &expected,
    )
    .map_err(|e| format!("second recovery differs: {e}"))?;
    let again = recover_log_in(disk, &log_dir, after, RecoveryMode::Repair)
        .map_err(|e| format!("third log read refused: {e}"))?;
    if again.torn.is_some() {
        return Err("the second recovery found a torn tail again".into());
    }

    outcome.corruptions_refused +=
        check_corruption(rng, disk, plan, &log, run.acknowledged)? as usize;
    Ok(run.written[..recovered].to_vec())
}

/// Flips one byte of an acknowledged record that has a valid record after it and checks
/// that `open` refuses with that segment and offset. `Ok(false)`: no such record.
fn check_corruption(
    rng: &mut SimRng,
    disk: &SimDisk,
    plan: &Plan,
    log: &crate::storage::LogRecovery,
    acknowledged: usize,
) -> Result<bool, String> {
    // (segment, frame offset, frame bytes, expect CorruptRecord rather than a torn tail
    // before a newer segment)
    let mut candidates: Vec<(PathBuf, usize, usize, bool)> = Vec::new();
    let segments = list_segments_in(disk, &plan.log_dir()).map_err(|e| e.to_string())?;
    let read: Vec<PathBuf> = log.segments.iter().map(|(_, p)| p.clone()).collect();
    for (i, (_, path)) in segments.iter().enumerate() {
        if !read.contains(path) {
            continue;
        }
        let newest = i + 1 == segments.len();
        let bytes = disk.read(path).map_err(|e| e.to_string())?;
        let scan = scan_segment(&bytes).map_err(|e| e.to_string())?;
        let n = scan.records.len();
        for (j, (offset, rec)) in scan.records.iter().enumerate() {
            let last = j + 1 == n;
            if count_through(rec.zxid) > acknowledged || (last && newest) {
                continue;
            }
            let Frame::Record { frame_bytes, .. } = read_frame(&bytes, *offset) else {
                continue;
            };
            candidates.push((path.clone(), *offset, frame_bytes, !last));
        }
    }
    if candidates.is_empty() {
        return Ok(false);
    }
    let (path, offset, frame_bytes, followed) =
        candidates[rng.below(candidates.len() as u64) as usize].clone();
    let at = offset + rng.below(frame_bytes as u64) as usize;
    let mut disk = disk.clone();
    let old = disk.read(&path).map_err(|e| e.to_string())?[at];
    // A flip to a non-zero value: a byte flipped to zero at the very start of a frame can
    // be indistinguishable from a lost sector (see `txn_log::torn_evidence`).
    let mut new = old ^ (1 << rng.below(8));
    if new == 0 {
        new = old ^ 0xff;
    }
    disk.corrupt(&path, at, new).map_err(|e| e.to_string())?;
    let result = open_in(&mut disk, &plan.data_dir, &plan.log_dir_root, &open_opts());
    let what = format!(
        "byte {at} of the record at {}:{offset} flipped",
        path.display()
    );
    match result {
        Err(OpenError::Recovery(RecoveryError::CorruptRecord {
            file, offset: o, ..
        })) if followed && file == path && o == offset => Ok(true),
        Err(OpenError::Recovery(RecoveryError::TornTailBeforeNewerSegment {
            file,
            offset: o,
            ..
        })) if !followed && file == path && o == offset => Ok(true),
        Err(e) => Err(format!("{what}: refused, but with {e}")),
        Ok(r) => Err(format!(
            "{what}: recovery accepted it (through zxid {:#x})",
            r.last_zxid
        )),
    }
}
