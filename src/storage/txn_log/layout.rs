//! Where the log writer puts bytes, as pure functions: when a new segment starts and how
//! much of it is zero-filled (a segment is never extended). Shared by
//! [`super::LogWriter`] (glommio files) and the simulated writer of
//! [`crate::storage::sim`], so that the power-loss check produces segment files byte for
//! byte as the real writer does. The bytes themselves come from [`super::encode_frame`] and
//! [`super::encode_segment_header`].

use super::{FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use std::path::{Path, PathBuf};

/// Zero-fill writes are issued in chunks of this size.
pub const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// The chunk a spare segment is zero-filled with, by direct writes one at a time (the same
/// zeroed buffer each time): under 0.1 ms of the test VM's disk, the longest a log write
/// queues behind one.
pub const DIRECT_ZERO_CHUNK_BYTES: usize = 128 << 10;

/// The largest segment made at once, whatever `preAllocSize` says. A segment is made
/// whole (zeros, fdatasync, directory entry) before its first record is written, normally
/// in the background as the spare (see `LogWriter::prepare_spare`), and it is never
/// extended while records go to it: the log rolls to the next segment when a batch does
/// not fit. Extending the file being written made the fdatasync of the log wait for the
/// zeros and the new size to be journalled, once per extension: 1 % of syncs took 2 ms
/// instead of 0.15 ms here, and those were the p99 of writes under load. The cap bounds
/// a segment made inline, on the write path (when the spare could not be made or is too
/// small for the first batch): 64 MiB at once held every write for ~200 ms here.
pub const PREALLOC_BYTES_MAX: u64 = 64 << 20;

/// How big a segment is made: `preAllocSize`, capped (see [`PREALLOC_BYTES_MAX`]); a
/// first batch larger than that gets whole multiples of it ([`new_segment_bytes`]).
pub fn prealloc_bytes(pre_alloc_bytes: u64) -> u64 {
    pre_alloc_bytes.clamp(1, PREALLOC_BYTES_MAX)
}

/// The segment being written, as the layout decisions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCursor {
    /// Where the next frame goes.
    pub write_offset: u64,
    pub has_records: bool,
    /// The size the segment is zero-filled to.
    pub allocated_bytes: u64,
}

/// Does the batch about to be written go to a new segment? Yes when there is none, or the
/// current one holds records and a roll was asked for, the batch does not fit in its
/// zero-filled room, or it would take the segment past `txnLogSizeLimitInKb`. A segment
/// without records is never left behind.
pub fn needs_new_segment(
    current: Option<SegmentCursor>,
    roll_requested: bool,
    segment_bytes_max: Option<u64>,
    batch_bytes: u64,
) -> bool {
    match current {
        None => true,
        Some(s) => {
            s.has_records
                && (roll_requested
                    || bytes_needed(s.write_offset, batch_bytes) > s.allocated_bytes
                    || segment_bytes_max.is_some_and(|max| s.write_offset + batch_bytes > max))
        }
    }
}

/// The size a new segment is zero-filled to before its header is written: whole multiples
/// of `prealloc_bytes` covering the header, the first batch and the zeroed frame header
/// after it (the end marker), so the first batch always fits: creating the segment is the
/// only allocation it can fail on, and a failed creation leaves no segment behind.
pub fn new_segment_bytes(prealloc_bytes: u64, first_batch_bytes: u64) -> u64 {
    (SEGMENT_HEADER_BYTES as u64 + first_batch_bytes + FRAME_HEADER_BYTES as u64)
        .div_ceil(prealloc_bytes)
        .max(1)
        * prealloc_bytes
}

/// The file size a batch of `batch_bytes` at `write_offset` needs: the batch and a zeroed
/// frame header after it (the end marker).
pub fn bytes_needed(write_offset: u64, batch_bytes: u64) -> u64 {
    write_offset + batch_bytes + FRAME_HEADER_BYTES as u64
}

/// The name of the `n`th spare segment made in this process: a file zero-filled and synced
/// ahead of the roll that will use it (see `LogWriter::prepare_spare`). Each spare has a
/// name of its own, so making the next never touches the one the log may still be writing
/// under its spare name.
pub fn spare_segment_name(n: u64) -> String {
    format!("{SPARE_SEGMENT_PREFIX}{n}.tmp")
}

/// Spare segments are `log.next.<n>.tmp`: a `.tmp` name, so recovery removes one that
/// holds no header, and adopts one that does (the log switched to it and its rename to
/// `log.<zxid>` did not reach the disk).
pub const SPARE_SEGMENT_PREFIX: &str = "log.next.";

/// Whether `name` is a spare segment's name.
pub fn is_spare_segment_name(name: &str) -> bool {
    name.starts_with(SPARE_SEGMENT_PREFIX) && name.ends_with(".tmp")
}

/// The temporary name a segment is created under (renamed to `path` once its header and
/// zeros are synced). `log.<hex>` has the extension `<hex>`, so this is `log.tmp`.
pub fn segment_temp_path(path: &Path) -> PathBuf {
    path.with_extension("tmp")
}
