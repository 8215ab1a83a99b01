//! The log writer the ZAB executor drives: `append` encodes into a buffer (no I/O), `sync`
//! writes everything appended so far with one io_uring write that returns once the bytes
//! are on stable storage (`O_DSYNC`; see [`DurableHandle`]).
//!
//! Group commit is the caller's loop: a sync covers every record appended before it began.
//! The server's loops split it in two ([`LogWriter::start_sync`], [`LogWriter::finish_sync`])
//! and append the next batch while the first one's [`SyncJob`] runs; `sync` does both in one
//! go (tools, tests). A write may be acknowledged only after the sync that covered its zxid
//! returned `Ok` (the returned zxid says which).
//!
//! Record batches go through glommio's `DmaFile` (`O_DIRECT | O_DSYNC`), or a `BufferedFile`
//! with `O_DSYNC` where the file system has no direct I/O; headers and zeros through a
//! `BufferedFile` and an fdatasync. `docs/storage.md` has the measurements behind the choice.
//! Segments are preallocated: each is made whole (zeros over `pre_alloc_bytes`, capped,
//! fdatasync, directory entry) before its first record, normally ahead of time as the
//! spare, and the log rolls to the next one when a batch does not fit. So a sync never
//! changes metadata (no size or extent change to journal), not even while the next
//! segment is being made. ZooKeeper's `FileTxnLog` + `FilePadding` extend the one file
//! instead.
//!
//! Bounds: a batch is whatever was appended since the last sync started; the caller bounds
//! it (`corral.commit.maxBatch` records of client input per batch); one record is at most
//! [`super::RECORD_BYTES_MAX`].
//!
//! Errors. A `sync` first makes room for its batch (a new segment when the current one has
//! no room left), then writes the batch into that room and fdatasyncs it. Only a
//! failure of the first part for want of space (`ENOSPC`, `EDQUOT`) is recoverable
//! ([`LogError::NoSpace`]): no byte of the batch was written anywhere, the segment, its
//! offsets and the pending batch are exactly as before, and an unfinished `log.tmp` is
//! removed. The caller retries later ([`LogWriter::probe_space`]) or drops the batch
//! ([`LogWriter::discard_pending`]). Any other failure, and any failure of a record write
//! or an fdatasync, is [`LogError::Io`]: the writer must not be used again.

use super::layout::{self, SegmentCursor, DIRECT_ZERO_CHUNK_BYTES, ZERO_CHUNK_BYTES};
use super::{
    encode_frame, encode_frame_payload, encode_segment_header, segment_path, FrameFault,
    SEGMENT_HEADER_BYTES,
};
use crate::storage::LogError;
use crate::tree::TxnRecord;
use glommio::io::{BufferedFile, Directory, DmaFile, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A roll that waited this long for its spare segment is logged (the disk did not keep up
/// with making segments ahead).
const SPARE_WAIT_LOGGED_MS: u64 = 5;

/// The largest batch buffer kept for the next batch; a larger one (a burst of big records)
/// is freed after its write.
const PENDING_REUSE_BYTES_MAX: usize = 4 << 20;

/// While the log is busy, a spare is made by the time the segment it follows is this
/// fraction full (1/2): its zeros may reach `spare bytes / (segment bytes / 2)` times the log
/// bytes written since it was begun, plus one chunk ([`SparePace`]).
const SPARE_DONE_AT_SEGMENT_FRACTION_INVERSE: u64 = 2;

/// The log counts as idle (the spare is then zero-filled as fast as the device takes it)
/// when no write is in flight and none ended for this long.
const LOG_IDLE_FOR_SPARE: Duration = Duration::from_millis(10);

/// How often a spare out of credit looks again at what the log wrote.
const SPARE_PACE_POLL: Duration = Duration::from_millis(1);

/// Writer settings, from zoo.cfg.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// `preAllocSize` in bytes: the size segments are made (zero-filled) with, capped.
    pub pre_alloc_bytes: u64,
    /// `forceSync`: false skips fdatasync (tests and throwaway setups only).
    pub force_sync: bool,
    /// `fsync.warningthresholdms`: syncs slower than this are logged.
    pub fsync_warning_threshold_ms: u64,
    /// `txnLogSizeLimitInKb` in bytes: start a new segment once a segment is this big.
    pub segment_bytes_max: Option<u64>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            pre_alloc_bytes: 64 << 20,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            segment_bytes_max: None,
        }
    }
}

struct Segment {
    /// Plain handle: the header, inline zero-fills, and every write when `forceSync=no`.
    file: BufferedFile,
    /// The handle record batches go through when `forceSync` is on (see [`DurableHandle`]).
    durable: Option<DurableHandle>,
    path: PathBuf,
    /// Where the next frame goes.
    write_offset: u64,
    /// Bytes zero-filled so far (the file's size).
    allocated_bytes: u64,
    has_records: bool,
    /// A segment switched to from a spare: its rename from the spare's name to `path`, in
    /// the background (None for a segment created under its name).
    naming: Option<Naming>,
}

impl Segment {
    /// The file's name on disk now: the spare's until its rename is done.
    fn current_path(&self) -> &Path {
        match &self.naming {
            Some(n) if !n.done.get() => &n.spare_path,
            _ => &self.path,
        }
    }
}

/// The rename of a segment from its spare's name to `log.<zxid>` and the directory's fsync,
/// run in the background once the header is durable: the log writes and acknowledges
/// records in the segment meanwhile (recovery adopts a spare with a header whose rename
/// did not reach the disk), so a roll waits for no journal commit.
struct Naming {
    spare_path: PathBuf,
    done: std::rc::Rc<std::cell::Cell<bool>>,
    task: glommio::task::JoinHandle<Result<(), String>>,
}

/// The next segment's file, made ahead by [`LogWriter::prepare_spare`]: `bytes` of zeros,
/// synced, its directory entry synced, under a spare name.
struct Spare {
    path: PathBuf,
    file: BufferedFile,
    bytes: u64,
}

/// What the log has written, as the task making the spare sees it: its zeros keep pace
/// with the log instead of going to the device as fast as it takes them. Zeros written
/// flat out took the device from the log for a second or more per 64 MiB spare (the four
/// nodes of a pseudo-cluster roll at the same zxid, so all four at once): the log's syncs
/// in that second took about 10 ms, where they otherwise took 1 (docs/storage.md, "Log
/// segment"). Paced, the same zeros are spread over half a segment's worth of log.
struct SparePace {
    /// Bytes of batches the log wrote since the writer opened.
    log_bytes: std::cell::Cell<u64>,
    /// A batch is being written (a slow sync is not an idle log).
    writing: std::cell::Cell<bool>,
    /// When the log last started or finished writing a batch.
    last_write_at: std::cell::Cell<Instant>,
    /// Someone waits for the spare (a roll, a truncation's next segment): no more pacing.
    hurry: std::cell::Cell<bool>,
    /// The writer is closing: the spare is not wanted, stop making it.
    abandoned: std::cell::Cell<bool>,
    /// [`LOG_IDLE_FOR_SPARE`]; tests make it long, so that only the log's bytes count.
    idle_after: std::cell::Cell<Duration>,
}

/// One spare's claim on the log's [`SparePace`]: where the log stood when the spare was
/// begun, and how many bytes of zeros each byte of log since then allows.
struct SpareCredit {
    pace: std::rc::Rc<SparePace>,
    log_bytes_at_start: u64,
    zeros_per_log_byte: u64,
}

impl SparePace {
    fn new() -> SparePace {
        SparePace {
            log_bytes: std::cell::Cell::new(0),
            writing: std::cell::Cell::new(false),
            last_write_at: std::cell::Cell::new(Instant::now()),
            hurry: std::cell::Cell::new(false),
            abandoned: std::cell::Cell::new(false),
            idle_after: std::cell::Cell::new(LOG_IDLE_FOR_SPARE),
        }
    }
}

impl SpareCredit {
    /// Waits until the spare may hold `zeros_bytes` of zeros: at once when someone waits
    /// for it or the log is idle, else once the log has written enough since the spare
    /// was begun. `false`: the spare was abandoned, stop.
    async fn allows(&self, zeros_bytes: u64) -> bool {
        let pace = &*self.pace;
        loop {
            if pace.abandoned.get() {
                return false;
            }
            let logged = pace.log_bytes.get().saturating_sub(self.log_bytes_at_start);
            let allowed = logged
                .saturating_mul(self.zeros_per_log_byte)
                .saturating_add(DIRECT_ZERO_CHUNK_BYTES as u64);
            let idle =
                !pace.writing.get() && pace.last_write_at.get().elapsed() >= pace.idle_after.get();
            if zeros_bytes <= allowed || pace.hurry.get() || idle {
                return true;
            }
            glommio::timer::sleep(SPARE_PACE_POLL).await;
        }
    }
}

/// With `forceSync` on, a batch is written by one io_uring write that returns once the
/// bytes are on stable storage (`O_DSYNC`), where a write and an fdatasync took two ring
/// operations. The range written is what the sync covers; zeros and size changes are
/// synced where they are made (segment creation), so nothing else in the file needs it.
enum DurableHandle {
    /// `O_DIRECT | O_DSYNC`: the batch goes from our buffer to the device, with no copy
    /// into the page cache and no io-wq worker in between (the profile of a loaded
    /// standalone server had ~17 % of all CPU in that copy).
    Direct(DirectLog),
    /// `O_DSYNC` through the page cache, where the file system has no `O_DIRECT` (tmpfs)
    /// or the segment size is not a whole number of blocks.
    Buffered(BufferedFile),
}

/// Direct writes start and end on block boundaries, so each one repeats the bytes already
/// in the block where the batch begins (`tail`) and pads the last block with zeros, which
/// are what the file holds past the end of the log anyway (the end marker). The repeated
/// bytes are identical to those on disk, so a torn write of that block leaves the records
/// of earlier syncs as they were.
struct DirectLog {
    file: DmaFile,
    block_bytes: u64,
    /// The log's bytes from the start of the block holding `write_offset` up to it.
    tail: Vec<u8>,
}

impl DirectLog {
    /// Writes `batch` at `at` (the segment's write offset, `tail.len()` past a block start).
    async fn write(&mut self, batch: &[u8], at: u64) -> glommio::Result<(), ()> {
        let block_start = at - self.tail.len() as u64;
        debug_assert_eq!(block_start % self.block_bytes, 0, "tail starts a block");
        let end = at + batch.len() as u64;
        let data_bytes = self.tail.len() + batch.len();
        let padded_bytes = (data_bytes as u64).div_ceil(self.block_bytes) * self.block_bytes;
        let mut buf = self.file.alloc_dma_buffer(padded_bytes as usize);
        let bytes = buf.as_bytes_mut();
        bytes[..self.tail.len()].copy_from_slice(&self.tail);
        bytes[self.tail.len()..data_bytes].copy_from_slice(batch);
        bytes[data_bytes..].fill(0);
        // The next write starts at the block holding `end`.
        let next_block_start = end - end % self.block_bytes;
        let next_tail = &bytes[(next_block_start - block_start) as usize..data_bytes];
        self.tail.clear();
        self.tail.extend_from_slice(next_tail);
        let written = self.file.write_at(buf, block_start).await?;
        if (written as u64) < padded_bytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {padded_bytes} bytes at offset {block_start}"),
            )
            .into());
        }
        Ok(())
    }
}

/// Appends records to the newest segment of `<dataLogDir>/version-2`. Lives on one glommio
/// executor (its files are bound to it).
pub struct LogWriter {
    dir: PathBuf,
    opts: LogOptions,
    segment: Option<Segment>,
    /// Framed records appended since the last sync.
    pending: Vec<u8>,
    /// zxid of the first pending record (names a new segment).
    pending_first_zxid: Option<i64>,
    last_appended_zxid: i64,
    synced_zxid: i64,
    /// A [`SyncJob`] is out: the segment is with it.
    sync_in_flight: bool,
    /// The buffer a direct write handed back, for the batch after the next one.
    reusable_pending: Option<Vec<u8>>,
    roll_requested: bool,
    /// The next segment's file being made in the background (see [`Self::prepare_spare`]).
    spare: Option<glommio::task::JoinHandle<Result<Spare, String>>>,
    /// Set by the spare's task when it has finished (made or failed): a requested roll
    /// waits for it while the current segment has room (see [`Self::start_sync`]).
    spare_finished: std::rc::Rc<std::cell::Cell<bool>>,
    /// What the log wrote, for the pace of the spare's zeros.
    spare_pace: std::rc::Rc<SparePace>,
    /// The size of the new segment the last `sync` could not make for want of space (a
    /// segment is never extended, so that is the only allocation that fails), until
    /// [`Self::probe_space`] or a `sync` makes one.
    failed_segment_bytes: Option<u64>,
    /// Tests: bytes the writer may still allocate before it fails with `ENOSPC` (None:
    /// no limit). No spare is made ahead while it is set.
    #[cfg(test)]
    allocation_budget: Option<u64>,
    /// Tests: the block size direct writes align to, instead of the device's.
    #[cfg(test)]
    direct_block_bytes: Option<u64>,
}

impl LogWriter {
    /// A writer for `log_dir` (the `version-2` directory, created if missing) whose first
    /// record must have a zxid above `last_zxid` (the last one recovery found). Records always
    /// go to a new segment, as ZooKeeper starts a new log on every start; the segment is
    /// created at the first `sync`, named by the first zxid it holds. Its file is made
    /// ahead from here on, as the spare, so the first write after a start does not wait
    /// for a whole segment of zeros.
    pub async fn open(log_dir: &Path, opts: LogOptions, last_zxid: i64) -> Result<Self, LogError> {
        assert!(opts.pre_alloc_bytes > 0, "preAllocSize is positive");
        std::fs::create_dir_all(log_dir).map_err(|source| LogError::Io {
            path: log_dir.to_path_buf(),
            op: "creating",
            source,
        })?;
        if !opts.force_sync {
            tracing::warn!(
                "forceSync=no: the transaction log is not fsynced; acknowledged writes can be lost on power failure"
            );
        }
        let mut writer = LogWriter {
            dir: log_dir.to_path_buf(),
            opts,
            segment: None,
            pending: Vec::new(),
            pending_first_zxid: None,
            last_appended_zxid: last_zxid,
            synced_zxid: last_zxid,
            sync_in_flight: false,
            reusable_pending: None,
            roll_requested: false,
            spare: None,
            spare_finished: std::rc::Rc::new(std::cell::Cell::new(false)),
            spare_pace: std::rc::Rc::new(SparePace::new()),
            failed_segment_bytes: None,
            #[cfg(test)]
            allocation_budget: None,
            #[cfg(test)]
            direct_block_bytes: None,
        };
        writer.prepare_spare();
        Ok(writer)
    }

    /// Tests: fail every allocation past `bytes` more with `ENOSPC` (None: no limit).
    /// The spare made since `open` is removed first (it took no budget).
    #[cfg(test)]
    pub(crate) async fn set_allocation_budget(&mut self, bytes: Option<u64>) {
        self.spare_pace.hurry.set(true);
        if let Some(task) = self.spare.take() {
            if let Some(Ok(spare)) = task.await {
                discard(spare.file, &spare.path).await;
            }
        }
        self.allocation_budget = bytes;
    }

    /// Tests: whether the current segment is a spare the log switched to.
    #[cfg(test)]
    pub(crate) fn on_spare_segment(&self) -> bool {
        self.segment.as_ref().is_some_and(|s| s.naming.is_some())
    }

    /// Tests: waits until the spare being made is ready (as it is under a steady load).
    #[cfg(test)]
    pub(crate) async fn spare_ready(&mut self) {
        self.spare_pace.hurry.set(true);
        if self.spare_made_unhurried().await {
            self.spare_finished.set(true);
        }
    }

    /// Tests: the spare (made, see [`Self::spare_ready`]) counts as still being made, until
    /// the next `spare_ready` (nothing else sets it back: a requested roll then waits until
    /// the segment is full).
    #[cfg(test)]
    pub(crate) fn spare_in_progress(&mut self) {
        self.spare_finished.set(false);
    }

    /// Tests: waits until the spare being made is ready, without hurrying it (its pace
    /// alone decides when); keeps it as the spare. `false`: there was none.
    #[cfg(test)]
    pub(crate) async fn spare_made_unhurried(&mut self) -> bool {
        let Some(task) = self.spare.take() else {
            return false;
        };
        let Some(made) = task.await else {
            return false;
        };
        self.spare = Some(glommio::spawn_local(async move { made }).detach());
        true
    }

    /// Tests: the log counts as idle for the spare's pace only after `idle_after`.
    #[cfg(test)]
    pub(crate) fn set_spare_idle_after(&mut self, idle_after: Duration) {
        self.spare_pace.idle_after.set(idle_after);
    }

    /// Tests: the log bytes the spare's pace has seen, and whether the spare is made.
    #[cfg(test)]
    pub(crate) fn spare_pace_seen(&self) -> (u64, bool) {
        (self.spare_pace.log_bytes.get(), self.spare_finished.get())
    }

    /// Tests: align direct writes to `bytes` instead of the device's block size.
    #[cfg(test)]
    pub(crate) fn set_direct_block_bytes(&mut self, bytes: u64) {
        self.direct_block_bytes = Some(bytes);
    }

    /// Tests: how the current segment's batches are written ("direct", "buffered-dsync",
    /// "buffered" for `forceSync=no`), None before the first segment.
    #[cfg(test)]
    pub(crate) fn durable_kind(&self) -> Option<&'static str> {
        self.segment.as_ref().map(|seg| match seg.durable {
            Some(DurableHandle::Direct(_)) => "direct",
            Some(DurableHandle::Buffered(_)) => "buffered-dsync",
            None => "buffered",
        })
    }

    /// Whether the last `sync` failed for want of space and no allocation succeeded since.
    pub fn out_of_space(&self) -> bool {
        self.failed_segment_bytes.is_some()
    }

    /// Drops the records appended since the last sync (a batch that could not be logged
    /// for want of space, refused to its clients): the next record may take their zxids.
    pub fn discard_pending(&mut self) {
        assert!(
            !self.sync_in_flight,
            "pending records dropped with a sync in flight"
        );
        self.pending.clear();
        self.pending_first_zxid = None;
        self.last_appended_zxid = self.synced_zxid;
    }

    /// After [`LogError::NoSpace`]: tries again the allocation that failed, without a
    /// batch: the new segment is created as `log.tmp`, zero-filled and removed again,
    /// which proves the room is there (the next sync creates the real one). `Ok` when there is room (or
    /// nothing had failed); [`LogError::NoSpace`] while there is none; any other error is
    /// fatal as in `sync`.
    pub async fn probe_space(&mut self) -> Result<(), LogError> {
        assert!(!self.sync_in_flight, "space probed with a sync in flight");
        let Some(bytes) = self.failed_segment_bytes else {
            return Ok(());
        };
        let tmp = layout::segment_temp_path(&segment_path(&self.dir, 0));
        let file = self.allocate_file(&tmp, bytes).await?;
        let _ = file.close().await;
        glommio::io::remove(&tmp)
            .await
            .map_err(|e| io_err(&tmp, "removing", e))?;
        self.failed_segment_bytes = None;
        Ok(())
    }

    /// The highest zxid appended (synced or not).
    pub fn last_appended_zxid(&self) -> i64 {
        self.last_appended_zxid
    }

    /// The highest zxid a completed sync covered (`sync` or `finish_sync`).
    pub fn synced_zxid(&self) -> i64 {
        self.synced_zxid
    }

    /// Bytes appended and not yet synced.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The segment being written, if one is open.
    pub fn segment_path(&self) -> Option<&Path> {
        self.segment.as_ref().map(|s| s.path.as_path())
    }

    /// Encodes `records` after the ones already appended. No I/O. Returns the bytes added.
    /// zxids must increase (the sequencer's order); a violation is our bug, so it panics.
    pub fn append(&mut self, records: &[TxnRecord]) -> usize {
        let before = self.pending.len();
        for rec in records {
            assert!(
                rec.zxid > self.last_appended_zxid,
                "log append out of order: {:#x} after {:#x}",
                rec.zxid,
                self.last_appended_zxid
            );
            if self.pending_first_zxid.is_none() {
                self.pending_first_zxid = Some(rec.zxid);
            }
            encode_frame(rec, &mut self.pending);
            self.last_appended_zxid = rec.zxid;
        }
        self.pending.len() - before
    }

    /// Appends a record received already encoded (a proposal from the leader), after
    /// checking its length and that it carries `zxid`. No I/O.
    pub fn append_payload(&mut self, zxid: i64, payload: &[u8]) -> Result<usize, FrameFault> {
        if zxid <= self.last_appended_zxid
            || crate::storage::record::peek_zxid(payload) != Some(zxid)
        {
            return Err(FrameFault::LengthOutOfRange {
                len: payload.len() as u32,
            });
        }
        let before = self.pending.len();
        encode_frame_payload(payload, &mut self.pending)?;
        if self.pending_first_zxid.is_none() {
            self.pending_first_zxid = Some(zxid);
        }
        self.last_appended_zxid = zxid;
        Ok(self.pending.len() - before)
    }

    /// Drops every record above `to`, durably (ZAB's TRUNC: a proposal of an epoch that
    /// never committed). Records not yet synced are discarded; on disk, segments starting
    /// after `to` are removed and the records after `to` in the one holding it are zeroed
    /// (their place reads as the clean end of the log). The next record starts a new
    /// segment.
    pub async fn truncate_after(&mut self, to: i64) -> Result<(), LogError> {
        assert!(!self.sync_in_flight, "log truncated with a sync in flight");
        // The next batch starts a new segment: the spare's zeros go on while this runs.
        self.spare_pace.hurry.set(true);
        self.pending.clear();
        self.pending_first_zxid = None;
        if let Some(seg) = self.segment.take() {
            self.close_segment(seg).await?;
        }
        let dir = self.dir.clone();
        glommio::executor()
            .spawn_blocking(move || super::truncate_dir_after(&dir, to))
            .await
            .map_err(|(op, path, source)| LogError::Io { path, op, source })?;
        self.last_appended_zxid = self.last_appended_zxid.min(to);
        self.synced_zxid = self.synced_zxid.min(to);
        self.roll_requested = true;
        Ok(())
    }

    /// Ask for the next sync to start a new segment, once the spare is made or the current
    /// segment is full. ZooKeeper rolls at each snapshot; the server does not (its segments
    /// roll when full, or after a truncation, which leaves no current segment;
    /// docs/storage.md, "Log segment"). Tests and tools use it to place a segment boundary.
    pub fn roll(&mut self) {
        self.roll_requested = true;
    }

    /// Writes everything appended so far and fdatasyncs it (unless `forceSync=no`).
    /// Returns the highest zxid now durable. Nothing appended: returns at once.
    /// [`Self::start_sync`], [`SyncJob::run`] and [`Self::finish_sync`] in one go.
    ///
    /// On [`LogError::NoSpace`] nothing of the batch was written and the writer is as it
    /// was (see the module doc). On any other `Err` the writer is unusable: the caller must
    /// stop (a failed fsync leaves the page cache in an unknown state; retrying it can
    /// report success for lost data).
    pub async fn sync(&mut self) -> Result<i64, LogError> {
        match self.start_sync().await? {
            None => Ok(self.synced_zxid),
            Some(job) => {
                let done = job.run().await;
                self.finish_sync(done)
            }
        }
    }

    /// The first half of a sync: makes room for everything appended so far (a new segment
    /// when the current one has none left) and takes the batch out of the writer, with the
    /// segment it goes to, as a [`SyncJob`]. The job's write and fdatasync borrow nothing
    /// of the writer, so the caller may go on appending (the next batch) while it runs;
    /// it hands the outcome back with [`Self::finish_sync`]. Until then the writer has no
    /// segment: only `append`, `append_payload`, `roll` and the getters may be called, and
    /// no second job may start. `Ok(None)`: nothing was appended.
    ///
    /// Errors as [`Self::sync`]: [`LogError::NoSpace`] leaves the writer as it was.
    pub async fn start_sync(&mut self) -> Result<Option<SyncJob>, LogError> {
        assert!(
            !self.sync_in_flight,
            "a second log sync started before the first finished"
        );
        let Some(first_zxid) = self.pending_first_zxid else {
            return Ok(None);
        };
        let batch_bytes = self.pending.len() as u64;
        // A roll asked for (`roll`) while the spare is still being made waits for it, as
        // long as the current segment has room: rolling now would wait for the spare,
        // holding every write (up to the ~0.1 s a 64 MiB spare takes here).
        let roll_now = self.roll_requested && (self.spare.is_none() || self.spare_finished.get());
        let needs_new = layout::needs_new_segment(
            self.segment.as_ref().map(|s| SegmentCursor {
                write_offset: s.write_offset,
                has_records: s.has_records,
                allocated_bytes: s.allocated_bytes,
            }),
            roll_now,
            self.opts.segment_bytes_max,
            batch_bytes,
        );
        if needs_new {
            // Created before the old one is closed, so a creation that fails for want of
            // space leaves the writer as it was. The new segment holds room for the whole
            // batch (`layout::new_segment_bytes`); a segment that holds records is never
            // extended (`layout::needs_new_segment` rolls when the batch does not fit), so
            // the room is always there when the batch is written.
            let new = self.create_segment(first_zxid, batch_bytes).await?;
            self.roll_requested = false;
            // The old segment is fully synced here (its last job finished before this one
            // could start), which is what lets recovery call a torn tail in any segment
            // but the newest one corruption.
            if let Some(old) = self.segment.replace(new) {
                self.close_segment(old).await?;
            }
        }
        let Some(seg) = self.segment.take() else {
            unreachable!("a segment was just ensured");
        };
        self.failed_segment_bytes = None;
        // The next batch goes into the buffer the last direct write handed back, if any
        // (a fresh one per sync was ~2 % of a loaded leader's CPU in malloc, and page
        // faults), else into one of this batch's size.
        let next = self.reusable_pending.take().unwrap_or_else(|| {
            Vec::with_capacity(self.pending.capacity().min(PENDING_REUSE_BYTES_MAX))
        });
        let batch = std::mem::replace(&mut self.pending, next);
        self.pending_first_zxid = None;
        self.sync_in_flight = true;
        self.spare_pace.writing.set(true);
        self.spare_pace.last_write_at.set(Instant::now());
        Ok(Some(SyncJob {
            seg,
            batch,
            up_to_zxid: self.last_appended_zxid,
            force_sync: self.opts.force_sync,
            fsync_warning_threshold_ms: self.opts.fsync_warning_threshold_ms,
        }))
    }

    /// The second half of a sync: takes the segment back from a finished [`SyncJob`].
    /// Returns the highest zxid now durable (the job's last; records appended while it ran
    /// are the next batch). Any `Err` is fatal, as in [`Self::sync`].
    pub fn finish_sync(&mut self, done: SyncDone) -> Result<i64, LogError> {
        self.sync_in_flight = false;
        self.spare_pace.writing.set(false);
        self.spare_pace.last_write_at.set(Instant::now());
        let SyncDone {
            seg,
            up_to_zxid,
            batch_bytes,
            took: _,
            result,
        } = done;
        self.segment = Some(seg);
        if let Some(mut copied) = result? {
            if copied.capacity() <= PENDING_REUSE_BYTES_MAX {
                copied.clear();
                self.reusable_pending = Some(copied);
            }
        }
        let pace = &self.spare_pace;
        pace.log_bytes.set(pace.log_bytes.get() + batch_bytes);
        self.synced_zxid = up_to_zxid;
        Ok(up_to_zxid)
    }

    /// Whether a [`SyncJob`] is out (started and not finished).
    pub fn sync_in_flight(&self) -> bool {
        self.sync_in_flight
    }

    /// The size segments are made with (see [`layout::prealloc_bytes`]).
    fn prealloc_bytes(&self) -> u64 {
        layout::prealloc_bytes(self.opts.pre_alloc_bytes)
    }

    /// Creates `log.<first_zxid>`: temp name, zeros, header, fsync, rename, fsync dir.
    /// When a spare is ready (see [`Self::prepare_spare`]) the segment is the spare instead,
    /// and the roll waits for one durable write of the header only.
    async fn create_segment(
        &mut self,
        first_zxid: i64,
        first_batch: u64,
    ) -> Result<Segment, LogError> {
        let path = segment_path(&self.dir, first_zxid);
        let tmp = layout::segment_temp_path(&path);
        let allocated_bytes = layout::new_segment_bytes(self.prealloc_bytes(), first_batch);
        if let Some(spare) = self.take_spare(allocated_bytes).await {
            return self.switch_to_spare(spare, first_zxid, path).await;
        }
        let mut file = match self.allocate_file(&tmp, allocated_bytes).await {
            Ok(file) => file,
            Err(e) => {
                if e.is_no_space() {
                    self.failed_segment_bytes = Some(allocated_bytes);
                }
                return Err(e);
            }
        };
        let header = encode_segment_header(first_zxid);
        write_all(&file, header.to_vec(), 0)
            .await
            .map_err(|e| io_err(&tmp, "writing", e))?;
        // The file's size changed: fdatasync flushes it too (size is needed to read data).
        file.fdatasync()
            .await
            .map_err(|e| io_err(&tmp, "fdatasync", e))?;
        file.rename(&path)
            .await
            .map_err(|e| io_err(&path, "renaming", e))?;
        sync_dir(&self.dir).await?;
        let durable = if self.opts.force_sync {
            Some(self.open_durable(&path, &header).await?)
        } else {
            None
        };
        tracing::info!(segment = %path.display(), zxid = format_args!("{first_zxid:#x}"), "new transaction log segment");
        self.prepare_spare();
        Ok(Segment {
            file,
            durable,
            path,
            write_offset: SEGMENT_HEADER_BYTES as u64,
            allocated_bytes,
            has_records: false,
            naming: None,
        })
    }

    /// Makes `spare` the segment `path` (whose first record is `first_zxid`): its header
    /// written durably at offset 0 (the zeros, the size and the directory entry were synced
    /// when it was made), then its rename to `path` and the directory's fsync started in the
    /// background. Until that rename is durable, a crash leaves the records under the
    /// spare's name, and recovery adopts the file by its header.
    async fn switch_to_spare(
        &mut self,
        spare: Spare,
        first_zxid: i64,
        path: PathBuf,
    ) -> Result<Segment, LogError> {
        let header = encode_segment_header(first_zxid);
        // No tail for a direct handle: the header is not on disk yet, its write is the first.
        let durable = if self.opts.force_sync {
            Some(self.open_durable(&spare.path, &[]).await?)
        } else {
            None
        };
        // Under the spare's name until the header is durable and the rename starts.
        let mut seg = Segment {
            file: spare.file,
            durable,
            path: spare.path.clone(),
            write_offset: SEGMENT_HEADER_BYTES as u64,
            allocated_bytes: spare.bytes,
            has_records: false,
            naming: None,
        };
        let spare_path = spare.path;
        write_through(&mut seg, header.to_vec(), 0).await?;
        seg.path = path;
        let done = std::rc::Rc::new(std::cell::Cell::new(false));
        let task = {
            let (from, to, dir, done) = (
                spare_path.clone(),
                seg.path.clone(),
                self.dir.clone(),
                done.clone(),
            );
            glommio::spawn_local(async move {
                glommio::io::rename(&from, &to)
                    .await
                    .map_err(|e| format!("renaming {} to {}: {e}", from.display(), to.display()))?;
                done.set(true);
                sync_dir(&dir).await.map_err(|e| e.to_string())
            })
            .detach()
        };
        seg.naming = Some(Naming {
            spare_path,
            done,
            task,
        });
        tracing::info!(segment = %seg.path.display(), zxid = format_args!("{first_zxid:#x}"), "new transaction log segment (made ahead)");
        self.prepare_spare();
        Ok(seg)
    }

    /// Starts making the next segment's file in the background: its zeros (written
    /// directly, a chunk at a time, keeping pace with the log: [`zero_fill_paced`]), its
    /// fdatasync and the directory's. A segment made at the roll held every write for
    /// 6-17 ms here (the fdatasync that allocates the file's blocks and the rename wait for
    /// ext4's journal), and under load a segment fills about once a second. A failure (a
    /// full disk) only means the next roll makes its segment inline.
    fn prepare_spare(&mut self) {
        if self.spare.is_some() {
            return;
        }
        #[cfg(test)]
        if self.allocation_budget.is_some() {
            return;
        }
        // Numbered across the process, so that a spare still being made for a writer that
        // was dropped never shares a name with a newer writer's.
        static SPARES_MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SPARES_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir.join(layout::spare_segment_name(n));
        let (dir, bytes) = (self.dir.clone(), self.prealloc_bytes());
        let finished = std::rc::Rc::new(std::cell::Cell::new(false));
        self.spare_finished = finished.clone();
        self.spare_pace.hurry.set(false);
        // The segment this spare follows may roll before it reaches `bytes`
        // (txnLogSizeLimitInKb): the spare is due by half of what it will hold.
        let segment_bytes = self
            .opts
            .segment_bytes_max
            .map_or(bytes, |max| max.clamp(1, bytes));
        let credit = SpareCredit {
            pace: self.spare_pace.clone(),
            log_bytes_at_start: self.spare_pace.log_bytes.get(),
            zeros_per_log_byte: (bytes * SPARE_DONE_AT_SEGMENT_FRACTION_INVERSE)
                .div_ceil(segment_bytes),
        };
        let task = glommio::spawn_local(async move {
            let made = make_spare(path, dir, bytes, &credit).await;
            finished.set(true);
            made
        });
        self.spare = Some(task.detach());
    }

    /// The spare, if it was made and holds exactly `bytes` (one preallocation; a first
    /// batch that needs more does not fit, and the spare is removed). Waits for it if it is
    /// still being made.
    async fn take_spare(&mut self, bytes: u64) -> Option<Spare> {
        let task = self.spare.take()?;
        let waited = (!self.spare_finished.get()).then(Instant::now);
        self.spare_pace.hurry.set(true);
        let made = task.await?;
        if let Some(since) = waited {
            // The log outran the making of its next segment: every write waited here.
            let waited_ms = since.elapsed().as_millis() as u64;
            if waited_ms >= SPARE_WAIT_LOGGED_MS {
                tracing::info!(
                    waited_ms,
                    "a log roll waited for the next segment to be made"
                );
            }
        }
        let spare = match made {
            Ok(spare) => spare,
            Err(reason) => {
                tracing::warn!(%reason, "the next log segment could not be made ahead; making it now");
                return None;
            }
        };
        if spare.bytes == bytes {
            return Some(spare);
        }
        discard(spare.file, &spare.path).await;
        None
    }

    /// Opens the handle a new segment's batches are written through (see
    /// [`DurableHandle`]), just after its `header` was written and synced.
    async fn open_durable(&self, path: &Path, header: &[u8]) -> Result<DurableHandle, LogError> {
        // Write-only: glommio probes a direct file's device for polled I/O with a read,
        // which then fails, so the writes go to the ordinary ring and the executor sleeps
        // while the device works (a polled ring would spin it through every sync).
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .dma_open(path)
            .await;
        if let Ok(file) = direct {
            let block_bytes = file.alignment().max(1);
            #[cfg(test)]
            let block_bytes = self.direct_block_bytes.unwrap_or(block_bytes);
            if self.prealloc_bytes().is_multiple_of(block_bytes) {
                // The first write starts at the block holding the header's end.
                let tail_from = header.len() - header.len() % block_bytes as usize;
                return Ok(DurableHandle::Direct(DirectLog {
                    file,
                    block_bytes,
                    tail: header[tail_from..].to_vec(),
                }));
            }
            let _ = file.close().await;
        }
        Ok(DurableHandle::Buffered(open_dsync_buffered(path).await?))
    }

    /// Creates (or truncates) `tmp` and zero-fills `bytes` of it. For want of space: the
    /// file is closed and removed again (its partial zeros freed), and the error is
    /// [`LogError::NoSpace`].
    async fn allocate_file(&mut self, tmp: &Path, bytes: u64) -> Result<BufferedFile, LogError> {
        let file = create_for_zeros(tmp)
            .await
            .map_err(|e| self.alloc_err(tmp, "creating", e))?;
        let filled = match self.charge_allocation(bytes) {
            Ok(()) => zero_fill(&file, bytes, None).await,
            Err(e) => Err(e),
        };
        if let Err(e) = filled {
            let e = self.alloc_err(tmp, "preallocating", e);
            discard(file, tmp).await;
            return Err(e);
        }
        Ok(file)
    }

    /// Tests: takes `bytes` from the allocation budget, or fails as a full disk would.
    fn charge_allocation(&mut self, bytes: u64) -> glommio::Result<(), ()> {
        #[cfg(test)]
        if let Some(left) = self.allocation_budget.as_mut() {
            if bytes > *left {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC).into());
            }
            *left -= bytes;
        }
        let _ = bytes;
        Ok(())
    }

    /// An allocation's error: [`LogError::NoSpace`] for `ENOSPC` / `EDQUOT`, else fatal.
    fn alloc_err(&self, path: &Path, op: &'static str, e: glommio::GlommioError<()>) -> LogError {
        let no_space = matches!(raw_os_error(&e), Some(libc::ENOSPC | libc::EDQUOT));
        if no_space {
            LogError::NoSpace {
                path: path.to_path_buf(),
                op,
                source: e.into(),
            }
        } else {
            io_err(path, op, e)
        }
    }

    /// Closes the current segment and removes the spare (tests and orderly shutdown;
    /// dropping is also safe: recovery removes a spare left without a header).
    pub async fn close(mut self) -> Result<(), LogError> {
        assert!(!self.sync_in_flight, "log closed with a sync in flight");
        if let Some(seg) = self.segment.take() {
            self.close_segment(seg).await?;
        }
        if let Some(task) = self.spare.take() {
            // Not wanted any more: its task stops at the next chunk and removes the file.
            self.spare_pace.abandoned.set(true);
            if let Some(Ok(spare)) = task.await {
                let _ = spare.file.close().await;
                glommio::io::remove(&spare.path)
                    .await
                    .map_err(|e| io_err(&spare.path, "removing", e))?;
            }
        }
        Ok(())
    }

    /// Closes both handles of a segment, once its rename (if it was a spare) is durable.
    async fn close_segment(&self, seg: Segment) -> Result<(), LogError> {
        if let Some(naming) = seg.naming {
            if let Some(Err(reason)) = naming.task.await {
                return Err(LogError::Io {
                    path: seg.path.clone(),
                    op: "naming",
                    source: std::io::Error::other(reason),
                });
            }
        }
        let closed = match seg.durable {
            Some(DurableHandle::Direct(d)) => d.file.close().await,
            Some(DurableHandle::Buffered(f)) => f.close().await,
            None => Ok(()),
        };
        closed.map_err(|e| io_err(&seg.path, "closing", e))?;
        seg.file
            .close()
            .await
            .map_err(|e| io_err(&seg.path, "closing", e))
    }
}

/// One batch of the log on its way to disk, with the segment it goes to (see
/// [`LogWriter::start_sync`]).
pub struct SyncJob {
    seg: Segment,
    batch: Vec<u8>,
    /// The last zxid in `batch`.
    up_to_zxid: i64,
    force_sync: bool,
    fsync_warning_threshold_ms: u64,
}

/// What a [`SyncJob`] hands back to [`LogWriter::finish_sync`].
pub struct SyncDone {
    seg: Segment,
    up_to_zxid: i64,
    batch_bytes: u64,
    /// How long the write (and its sync) took.
    took: Duration,
    /// The batch's buffer when the write copied it (a direct write), for reuse.
    result: Result<Option<Vec<u8>>, LogError>,
}

impl SyncDone {
    /// How long the job's write (and its sync) took, not counting any wait for the caller
    /// to collect it.
    pub fn took(&self) -> Duration {
        self.took
    }
}

impl SyncJob {
    /// The bytes this job writes.
    pub fn batch_bytes(&self) -> u64 {
        self.batch.len() as u64
    }

    /// Writes the batch and makes it durable. Never fails by itself: a failure is in the
    /// outcome, for [`LogWriter::finish_sync`] to report.
    pub async fn run(self) -> SyncDone {
        let SyncJob {
            mut seg,
            batch,
            up_to_zxid,
            force_sync,
            fsync_warning_threshold_ms,
        } = self;
        let batch_bytes = batch.len() as u64;
        let started = Instant::now();
        let result = write_and_sync(&mut seg, batch, force_sync, fsync_warning_threshold_ms).await;
        SyncDone {
            seg,
            up_to_zxid,
            batch_bytes,
            took: started.elapsed(),
            result,
        }
    }
}

/// Writes `batch` at the segment's write offset and, with `forceSync`, makes it durable.
/// Returns the batch's buffer when the write copied it (see [`write_through`]).
async fn write_and_sync(
    seg: &mut Segment,
    batch: Vec<u8>,
    force_sync: bool,
    fsync_warning_threshold_ms: u64,
) -> Result<Option<Vec<u8>>, LogError> {
    let len = batch.len() as u64;
    let end = seg.write_offset + len;
    // Never a record byte where no zeros were allocated: a full disk must fail the
    // allocation (recoverably), never this write.
    assert!(
        layout::bytes_needed(seg.write_offset, len) <= seg.allocated_bytes,
        "log batch of {len} bytes at {} past the allocated {} bytes",
        seg.write_offset,
        seg.allocated_bytes
    );
    let started = Instant::now();
    let at = seg.write_offset;
    let copied = write_through(seg, batch, at).await?;
    seg.write_offset = end;
    seg.has_records = true;
    if force_sync {
        if seg.durable.is_none() {
            seg.file
                .fdatasync()
                .await
                .map_err(|e| io_err(&seg.path, "fdatasync", e))?;
        }
        let took = started.elapsed();
        if took > Duration::from_millis(fsync_warning_threshold_ms) {
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                threshold_ms = fsync_warning_threshold_ms,
                bytes = len,
                "fsync-ing the write ahead log took long"
            );
        }
    }
    Ok(copied)
}

/// Writes `bytes` at `at` through the segment's durable handle (plain writes with
/// `forceSync=no`). Returns `bytes` when the write copied them (a direct write), for
/// the caller to reuse; a buffered write hands them to the kernel.
async fn write_through(
    seg: &mut Segment,
    bytes: Vec<u8>,
    at: u64,
) -> Result<Option<Vec<u8>>, LogError> {
    let written = match seg.durable.as_mut() {
        Some(DurableHandle::Direct(direct)) => match direct.write(&bytes, at).await {
            // EINVAL: the device wants a coarser alignment than the one found for it
            // (a stacked or virtual device). Nothing was written: the segment goes on
            // through the page cache. (Only a segment's first write can meet it, before
            // any rename of the file has started.)
            Err(e) if raw_os_error(&e) == Some(libc::EINVAL) => {
                tracing::warn!(
                    segment = %seg.path.display(),
                    error = %e,
                    "direct I/O refused; writing the log through the page cache with O_DSYNC"
                );
                let file = open_dsync_buffered(seg.current_path()).await?;
                let written = write_all(&file, bytes, at).await.map(|()| None);
                if let Some(DurableHandle::Direct(direct)) =
                    seg.durable.replace(DurableHandle::Buffered(file))
                {
                    let _ = direct.file.close().await;
                }
                written
            }
            other => other.map(|()| Some(bytes)),
        },
        Some(DurableHandle::Buffered(file)) => write_all(file, bytes, at).await.map(|()| None),
        None => write_all(&seg.file, bytes, at).await.map(|()| None),
    };
    written.map_err(|e| io_err(&seg.path, "writing", e))
}

/// A page-cache handle whose writes return once on stable storage.
async fn open_dsync_buffered(path: &Path) -> Result<BufferedFile, LogError> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .buffered_open(path)
        .await
        .map_err(|e| io_err(path, "opening", e))
}

fn io_err(path: &Path, op: &'static str, e: glommio::GlommioError<()>) -> LogError {
    LogError::Io {
        path: path.to_path_buf(),
        op,
        source: e.into(),
    }
}

/// The OS error number behind a glommio I/O error, if there is one.
fn raw_os_error(e: &glommio::GlommioError<()>) -> Option<i32> {
    match e {
        glommio::GlommioError::IoError(source)
        | glommio::GlommioError::EnhancedIoError { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// Why a spare's zero-fill stopped when its writer closed.
fn abandoned() -> glommio::GlommioError<()> {
    std::io::Error::new(std::io::ErrorKind::Interrupted, "the log writer closed").into()
}

/// Makes a spare segment file at `path` in `dir`: `bytes` of zeros at the log's pace
/// ([`zero_fill_paced`]), its fdatasync, the directory's fsync. On failure the partial file
/// is removed.
async fn make_spare(
    path: PathBuf,
    dir: PathBuf,
    bytes: u64,
    credit: &SpareCredit,
) -> Result<Spare, String> {
    let file = create_for_zeros(&path)
        .await
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    let spare = Spare { path, file, bytes };
    let filled = match zero_fill_paced(&spare.path, &spare.file, bytes, credit).await {
        Ok(()) => spare.file.fdatasync().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let synced = match filled {
        Ok(()) => sync_dir(&dir).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match synced {
        Ok(()) => Ok(spare),
        Err(e) => {
            let reason = format!("making {}: {e}", spare.path.display());
            discard(spare.file, &spare.path).await;
            Err(reason)
        }
    }
}

/// fsyncs a directory so a create or rename in it is durable.
pub(crate) async fn sync_dir(dir: &Path) -> Result<(), LogError> {
    let io = |op, e: glommio::GlommioError<()>| LogError::Io {
        path: dir.to_path_buf(),
        op,
        source: e.into(),
    };
    let d = Directory::open(dir).await.map_err(|e| io("opening", e))?;
    d.sync().await.map_err(|e| io("fsync", e))?;
    d.close().await.map_err(|e| io("closing", e))?;
    Ok(())
}

/// Creates (or truncates) `path`, to be zero-filled: a new segment's file or a spare.
async fn create_for_zeros(path: &Path) -> glommio::Result<BufferedFile, ()> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(path)
        .await
}

/// Closes `file` and removes `path`: an allocation or spare that is not kept, with its
/// partial zeros. Not made durable: a `.tmp` a crash leaves behind is removed at the next
/// start.
async fn discard(file: BufferedFile, path: &Path) {
    let _ = file.close().await;
    let _ = glommio::io::remove(path).await;
}

/// Writes `bytes` at `pos`. The buffer is handed to the io_uring write as it is (glommio's
/// `write_at` takes ownership), so a batch is not copied again on its way to the file. A
/// short write (the page cache refusing: a full disk) is an error, which stops the writer.
async fn write_all(file: &BufferedFile, bytes: Vec<u8>, pos: u64) -> glommio::Result<(), ()> {
    let len = bytes.len();
    let written = file.write_at(bytes, pos).await?;
    if written < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write: {written} of {len} bytes at offset {pos}"),
        )
        .into());
    }
    Ok(())
}

/// Zero-fills the new file `path` (open as `file`) up to `bytes` with direct writes of
/// [`DIRECT_ZERO_CHUNK_BYTES`], one in flight at a time, so that making a spare never has
/// more than one chunk queued at the device ahead of the log's own writes, and leaves no
/// dirty pages for an fdatasync to flush at once: through the page cache, the 64 MiB of a
/// spare went to the device in one burst at its fdatasync and held the log's syncs for
/// ~30 ms. No faster than `credit` allows either ([`SpareCredit::allows`]: in step with what the
/// log wrote since the spare was begun, unless the log is idle or someone waits for the
/// spare). Falls back to [`zero_fill`] through `file` (paced the same) where the file cannot be opened for
/// direct I/O, where `bytes` is not a whole number of the device's blocks and of chunks,
/// and where the device refuses the first direct write (`EINVAL`: it wants a coarser
/// alignment than glommio found). On a file system without `O_DIRECT` (tmpfs) glommio
/// opens the file buffered and the chunks go through the page cache.
async fn zero_fill_paced(
    path: &Path,
    file: &BufferedFile,
    bytes: u64,
    credit: &SpareCredit,
) -> glommio::Result<(), ()> {
    let direct = match OpenOptions::new().write(true).dma_open(path).await {
        Ok(direct) => direct,
        Err(_) => return zero_fill(file, bytes, Some(credit)).await,
    };
    let chunk_bytes = DIRECT_ZERO_CHUNK_BYTES as u64;
    let block_bytes = direct.alignment().max(1);
    let whole_chunks = bytes <= chunk_bytes || bytes.is_multiple_of(chunk_bytes);
    if !bytes.is_multiple_of(block_bytes)
        || !chunk_bytes.is_multiple_of(block_bytes)
        || !whole_chunks
    {
        let _ = direct.close().await;
        return zero_fill(file, bytes, Some(credit)).await;
    }
    // One zeroed buffer for every chunk (the file's size is a whole number of chunks or
    // smaller than one).
    let n = bytes.min(chunk_bytes) as usize;
    let mut zeros = direct.alloc_dma_buffer(n);
    zeros.as_bytes_mut().fill(0);
    let zeros = std::rc::Rc::new(zeros);
    let mut at = 0;
    while at < bytes {
        if !credit.allows(at + n as u64).await {
            let _ = direct.close().await;
            return Err(abandoned());
        }
        let written = match direct.write_rc_at(zeros.clone(), at).await {
            Ok(written) => written,
            Err(e) => {
                let _ = direct.close().await;
                if at == 0 && raw_os_error(&e) == Some(libc::EINVAL) {
                    return zero_fill(file, bytes, Some(credit)).await;
                }
                return Err(e);
            }
        };
        if written < n {
            let _ = direct.close().await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {n} bytes at offset {at}"),
            )
            .into());
        }
        at += n as u64;
    }
    direct.close().await
}

/// Zero-fills the first `bytes` of `file` through the page cache, 1 MiB a write; a spare's
/// at the log's pace (`credit`), a segment made inline at once.
async fn zero_fill(
    file: &BufferedFile,
    bytes: u64,
    credit: Option<&SpareCredit>,
) -> glommio::Result<(), ()> {
    let mut at = 0;
    while at < bytes {
        let n = ((bytes - at) as usize).min(ZERO_CHUNK_BYTES);
        if let Some(credit) = credit {
            if !credit.allows(at + n as u64).await {
                return Err(abandoned());
            }
        }
        // A fresh zeroed Vec per write: calloc'd pages, no copy.
        let written = file.write_at(vec![0u8; n], at).await?;
        if written == 0 {
            return Err(
                std::io::Error::new(std::io::ErrorKind::WriteZero, "write returned 0").into(),
            );
        }
        at += written as u64;
    }
    Ok(())
}
