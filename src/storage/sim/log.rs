//! [`SimLogWriter`]: the operations [`crate::storage::LogWriter`] performs, in the same
//! order, on a [`SimDisk`]. The bytes come from the same functions (`encode_frame`,
//! `encode_segment_header`) and every placement decision from [`layout`], so the segment
//! files are byte for byte the real writer's. What differs is only the I/O mechanism, and
//! the spare: the real writer makes the next segment ahead under a spare name, this one
//! makes it at the roll under its own (the same bytes; recovery adopts a spare by its
//! header, checked in the real writer's tests).

use super::disk::{Ino, SimDisk};
use crate::storage::fs::Fs;
use crate::storage::txn_log::layout::{self, SegmentCursor, ZERO_CHUNK_BYTES};
use crate::storage::txn_log::{encode_frame, encode_segment_header, segment_path};
use crate::storage::txn_log::{LogOptions, SEGMENT_HEADER_BYTES};
use crate::tree::TxnRecord;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
struct Segment {
    ino: Ino,
    write_offset: u64,
    allocated_bytes: u64,
    has_records: bool,
}

/// The log writer's disk operations on a [`SimDisk`]; the API of `LogWriter` without async.
#[derive(Debug)]
pub struct SimLogWriter {
    dir: PathBuf,
    opts: LogOptions,
    segment: Option<Segment>,
    pending: Vec<u8>,
    pending_first_zxid: Option<i64>,
    last_appended_zxid: i64,
    synced_zxid: i64,
    roll_requested: bool,
}

impl SimLogWriter {
    /// As `LogWriter::open`: nothing is written until the first `sync`.
    pub fn open(
        disk: &mut SimDisk,
        log_dir: &Path,
        opts: LogOptions,
        last_zxid: i64,
    ) -> io::Result<Self> {
        assert!(opts.pre_alloc_bytes > 0, "preAllocSize is positive");
        disk.create_dir_all(log_dir)?;
        Ok(SimLogWriter {
            dir: log_dir.to_path_buf(),
            opts,
            segment: None,
            pending: Vec::new(),
            pending_first_zxid: None,
            last_appended_zxid: last_zxid,
            synced_zxid: last_zxid,
            roll_requested: false,
        })
    }

    pub fn synced_zxid(&self) -> i64 {
        self.synced_zxid
    }

    pub fn last_appended_zxid(&self) -> i64 {
        self.last_appended_zxid
    }

    /// Where the next batch would start in the current segment, and whether it holds
    /// records (for workloads aiming at segment limits).
    pub fn cursor(&self) -> Option<SegmentCursor> {
        self.segment.as_ref().map(|s| SegmentCursor {
            write_offset: s.write_offset,
            has_records: s.has_records,
            allocated_bytes: s.allocated_bytes,
        })
    }

    /// Bytes appended and not yet synced.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// The size the current segment is zero-filled to.
    pub fn allocated_bytes(&self) -> Option<u64> {
        self.segment.as_ref().map(|s| s.allocated_bytes)
    }

    pub fn append(&mut self, records: &[TxnRecord]) -> usize {
        let before = self.pending.len();
        for rec in records {
            assert!(
                rec.zxid > self.last_appended_zxid,
                "log append out of order"
            );
            if self.pending_first_zxid.is_none() {
                self.pending_first_zxid = Some(rec.zxid);
            }
            encode_frame(rec, &mut self.pending);
            self.last_appended_zxid = rec.zxid;
        }
        self.pending.len() - before
    }

    pub fn roll(&mut self) {
        self.roll_requested = true;
    }

    fn zero_fill(&mut self, disk: &mut SimDisk, ino: Ino, from: u64, to: u64) -> io::Result<()> {
        let mut at = from;
        while at < to {
            let n = (to - at).min(ZERO_CHUNK_BYTES as u64);
            disk.write_zeros(ino, at, n)?;
            at += n;
        }
        Ok(())
    }

    /// As `LogWriter::sync`. `Err` = the disk crashed; the writer must not be used again.
    pub fn sync(&mut self, disk: &mut SimDisk) -> io::Result<i64> {
        let Some(first_zxid) = self.pending_first_zxid else {
            return Ok(self.synced_zxid);
        };
        let batch = std::mem::take(&mut self.pending);
        self.pending_first_zxid = None;
        let needs_new = layout::needs_new_segment(
            self.cursor(),
            self.roll_requested,
            self.opts.segment_bytes_max,
            batch.len() as u64,
        );
        if needs_new {
            let seg = self.create_segment(disk, first_zxid, batch.len() as u64)?;
            self.segment = Some(seg);
            self.roll_requested = false;
        }
        let Some(mut seg) = self.segment.take() else {
            unreachable!("a segment was just ensured");
        };
        let result = self.write_and_sync(disk, &mut seg, &batch);
        self.segment = Some(seg);
        result?;
        self.synced_zxid = self.last_appended_zxid;
        Ok(self.synced_zxid)
    }

    fn prealloc_bytes(&self) -> u64 {
        layout::prealloc_bytes(self.opts.pre_alloc_bytes)
    }

    fn write_and_sync(
        &mut self,
        disk: &mut SimDisk,
        seg: &mut Segment,
        batch: &[u8],
    ) -> io::Result<()> {
        let len = batch.len() as u64;
        assert!(
            layout::bytes_needed(seg.write_offset, len) <= seg.allocated_bytes,
            "a segment is made with room for its batches"
        );
        disk.write(seg.ino, seg.write_offset, batch)?;
        seg.write_offset += len;
        seg.has_records = true;
        if self.opts.force_sync {
            disk.sync_file(seg.ino)?;
        }
        Ok(())
    }

    /// As `LogWriter::create_segment`: temp name, zeros, header, fdatasync, rename, fsync
    /// of the directory.
    fn create_segment(
        &mut self,
        disk: &mut SimDisk,
        first_zxid: i64,
        first_batch: u64,
    ) -> io::Result<Segment> {
        let path = segment_path(&self.dir, first_zxid);
        let tmp = layout::segment_temp_path(&path);
        let allocated_bytes = layout::new_segment_bytes(self.prealloc_bytes(), first_batch);
        let ino = disk.create(&tmp)?;
        self.zero_fill(disk, ino, 0, allocated_bytes)?;
        disk.write(ino, 0, &encode_segment_header(first_zxid))?;
        disk.sync_file(ino)?;
        disk.rename(&tmp, &path)?;
        disk.sync_dir(&self.dir)?;
        Ok(Segment {
            ino,
            write_offset: SEGMENT_HEADER_BYTES as u64,
            allocated_bytes,
            has_records: false,
        })
    }
}
