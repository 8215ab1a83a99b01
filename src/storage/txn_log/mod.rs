//! The transaction log: segment files, their header, record framing, and a scanner that
//! classifies every byte of a segment (shared by recovery and `corral logdump`).
//!
//! A segment is `<dataLogDir>/version-2/log.<first zxid, lowercase hex>`, like ZooKeeper's
//! `FileTxnLog`. It starts with a [`SEGMENT_HEADER_BYTES`]-byte header, then records framed as
//! `[len u32][crc32c u32][payload]` (little-endian), then zeros up to the preallocated size.
//! A zero length marks the end. The crc covers the four length bytes and the payload, so a
//! flipped length is caught as surely as a flipped payload byte. Layout tables:
//! `docs/storage.md`.
//!
//! Invariants the writer keeps and recovery relies on:
//! - records in a segment have strictly increasing zxids, the first equal to the header's;
//! - a segment is created under a temporary name, zero-filled, fsynced and renamed, so a
//!   file named `log.*` always has a whole header;
//! - the writer moves to a new segment only after every record of the old one is synced,
//!   so only the newest segment holding records can end in a torn write.

pub mod layout;
pub mod writer;

pub use writer::{LogOptions, LogWriter, SyncDone, SyncJob};

use crate::storage::fs::{Fs, StdFs};
use crate::storage::record::{self, RecordError, RECORD_FORMAT_VERSION, RECORD_HEADER_BYTES};
use std::path::{Path, PathBuf};

/// `CORRALTL`: Corral transaction log.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CORRALTL";
/// The segment layout this code writes and reads.
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Header size; records start here.
pub const SEGMENT_HEADER_BYTES: usize = 32;
/// Bytes before each payload: length and crc32c.
pub const FRAME_HEADER_BYTES: usize = 8;
/// Largest payload accepted. A request is at most `jute.maxbuffer` (1 MiB by default);
/// its transaction adds paths and ACLs, so 16 MiB leaves room and still bounds a corrupt
/// length before it is believed.
pub const RECORD_BYTES_MAX: usize = 16 << 20;

const _: () = assert!(RECORD_BYTES_MAX < u32::MAX as usize);
const _: () = assert!(RECORD_HEADER_BYTES + 1 < RECORD_BYTES_MAX);

/// The file name prefix of log segments (as ZooKeeper's).
pub const SEGMENT_PREFIX: &str = "log.";

/// `<dir>/log.<zxid hex>`.
pub fn segment_path(dir: &Path, first_zxid: i64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{:x}", first_zxid as u64))
}

/// The zxid in a `log.<hex>` (or `snapshot.<hex>`) file name.
pub fn zxid_of_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

/// Segments in `dir`, sorted by first zxid.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    list_by_zxid(dir, SEGMENT_PREFIX)
}

/// [`list_segments`] on any [`Fs`].
pub fn list_segments_in(fs: &impl Fs, dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    list_by_zxid_in(fs, dir, SEGMENT_PREFIX)
}

/// Files in `dir` named `<prefix><zxid hex>`, sorted by zxid; none if `dir` is missing.
pub fn list_by_zxid(dir: &Path, prefix: &str) -> std::io::Result<Vec<(i64, PathBuf)>> {
    list_by_zxid_in(&StdFs, dir, prefix)
}

/// [`list_by_zxid`] on any [`Fs`].
pub fn list_by_zxid_in(
    fs: &impl Fs,
    dir: &Path,
    prefix: &str,
) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut out: Vec<(i64, PathBuf)> = fs
        .list_dir(dir)?
        .into_iter()
        .filter_map(|name| zxid_of_name(&name, prefix).map(|zxid| (zxid, dir.join(name))))
        .collect();
    out.sort();
    Ok(out)
}

/// The header bytes of a segment starting at `first_zxid`.
pub fn encode_segment_header(first_zxid: i64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut h = [0u8; SEGMENT_HEADER_BYTES];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
    h[16..24].copy_from_slice(&first_zxid.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a segment header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("file shorter than the {SEGMENT_HEADER_BYTES}-byte header")]
    Short,
    #[error("bad magic (not a Corral log segment)")]
    Magic,
    #[error("header checksum mismatch")]
    Checksum,
    #[error("unsupported segment format version {0}")]
    Version(u32),
}

/// Parses a segment header; returns its first zxid.
pub fn decode_segment_header(bytes: &[u8]) -> Result<i64, HeaderError> {
    let h = bytes
        .get(..SEGMENT_HEADER_BYTES)
        .ok_or(HeaderError::Short)?;
    if h[0..8] != SEGMENT_MAGIC {
        return Err(HeaderError::Magic);
    }
    let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    if crc32c::crc32c(&h[0..28]) != crc {
        return Err(HeaderError::Checksum);
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    let header_bytes = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    if version != SEGMENT_FORMAT_VERSION || header_bytes as usize != SEGMENT_HEADER_BYTES {
        return Err(HeaderError::Version(version));
    }
    Ok(i64::from_le_bytes([
        h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23],
    ]))
}

/// crc32c of a frame: its length bytes, then its payload.
pub fn frame_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload)
}

/// Appends one framed record to `out`: `[len][crc32c][payload]`. Returns the frame size.
pub fn encode_frame(rec: &crate::tree::TxnRecord, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    let payload_len = record::encode(rec, out);
    // Paired with the reader's bound: a record we could not read back is never written.
    assert!(
        payload_len <= RECORD_BYTES_MAX,
        "record of {payload_len} bytes exceeds RECORD_BYTES_MAX"
    );
    assert!(payload_len > RECORD_HEADER_BYTES, "a record has a txn tag");
    seal_frame(out, start);
    out.len() - start
}

/// Frames a record already encoded by [`record::encode`] (a proposal received from the
/// leader). Refuses a payload the reader would refuse, so nothing unreadable is logged.
pub fn encode_frame_payload(payload: &[u8], out: &mut Vec<u8>) -> Result<usize, FrameFault> {
    if payload.len() > RECORD_BYTES_MAX || payload.len() <= RECORD_HEADER_BYTES {
        return Err(FrameFault::LengthOutOfRange {
            len: payload.len() as u32,
        });
    }
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    out.extend_from_slice(payload);
    seal_frame(out, start);
    Ok(out.len() - start)
}

/// Writes the length and crc of the frame at `start` (its payload follows the header).
fn seal_frame(out: &mut [u8], start: usize) {
    let payload_len = out.len() - start - FRAME_HEADER_BYTES;
    let len_bytes = (payload_len as u32).to_le_bytes();
    let crc = frame_crc(len_bytes, &out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Drops every record above `to` from the segments in `dir`, durably (blocking I/O; the
/// writer runs it off its executor). A segment starting above `to` is removed; in the
/// newest one starting at or below it, the records after `to` are overwritten with zeros,
/// which reads as the clean end of the log. Errors carry the step and the path.
pub fn truncate_dir_after(
    dir: &std::path::Path,
    to: i64,
) -> Result<(), (&'static str, std::path::PathBuf, std::io::Error)> {
    use std::io::{Seek, Write};
    let segments = list_segments(dir).map_err(|e| ("listing", dir.to_path_buf(), e))?;
    for (first_zxid, path) in segments.iter().rev() {
        if *first_zxid > to {
            std::fs::remove_file(path).map_err(|e| ("removing", path.clone(), e))?;
            continue;
        }
        let bytes = std::fs::read(path).map_err(|e| ("reading", path.clone(), e))?;
        let Ok(scan) = scan_segment(&bytes) else {
            break;
        };
        let cut = scan
            .records
            .iter()
            .find(|(_, rec)| rec.zxid > to)
            .map(|(offset, _)| *offset);
        if let Some(cut) = cut {
            let end = scan.end_offset.max(cut);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| ("opening", path.clone(), e))?;
            file.seek(std::io::SeekFrom::Start(cut as u64))
                .map_err(|e| ("seeking", path.clone(), e))?;
            file.write_all(&vec![0u8; end - cut])
                .map_err(|e| ("zeroing", path.clone(), e))?;
            file.sync_data()
                .map_err(|e| ("fdatasync", path.clone(), e))?;
        }
        break;
    }
    crate::storage::epoch::sync_dir(dir).map_err(|e| ("fsync", dir.to_path_buf(), e))?;
    Ok(())
}

/// Why the frame at some offset is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameFault {
    #[error("frame header cut short ({available} of {FRAME_HEADER_BYTES} bytes)")]
    ShortHeader { available: usize },
    #[error("length {len} out of range")]
    LengthOutOfRange { len: u32 },
    #[error("payload cut short ({available} of {len} bytes)")]
    ShortPayload { len: u32, available: usize },
    #[error("crc32c mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch { stored: u32, computed: u32 },
}

/// One frame read from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A zero length: the end of the records.
    End,
    /// A frame whose length and crc check out (the payload may still fail to decode).
    Record {
        payload: &'a [u8],
        frame_bytes: usize,
    },
    /// Incomplete or failing its checks.
    Bad(FrameFault),
}

/// Reads the frame at `offset` of `seg` (a whole segment file).
pub fn read_frame(seg: &[u8], offset: usize) -> Frame<'_> {
    let rest = &seg[offset.min(seg.len())..];
    if rest.len() < FRAME_HEADER_BYTES {
        if rest.iter().all(|&b| b == 0) {
            return Frame::End;
        }
        return Frame::Bad(FrameFault::ShortHeader {
            available: rest.len(),
        });
    }
    let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
    let len = u32::from_le_bytes(len_bytes);
    if len == 0 {
        return Frame::End;
    }
    if (len as usize) > RECORD_BYTES_MAX || (len as usize) <= RECORD_HEADER_BYTES {
        return Frame::Bad(FrameFault::LengthOutOfRange { len });
    }
    let available = rest.len() - FRAME_HEADER_BYTES;
    if (len as usize) > available {
        return Frame::Bad(FrameFault::ShortPayload { len, available });
    }
    let payload = &rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len as usize];
    let stored = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let computed = frame_crc(len_bytes, payload);
    if stored != computed {
        return Frame::Bad(FrameFault::ChecksumMismatch { stored, computed });
    }
    Frame::Record {
        payload,
        frame_bytes: FRAME_HEADER_BYTES + len as usize,
    }
}

/// Does any valid frame (good length, good crc, a payload of our format) start anywhere in
/// `seg[from..]`? Used to tell a torn tail (nothing valid after the bad bytes) from
/// corruption in the middle of the log (valid records after the bad bytes).
pub fn valid_frame_after(seg: &[u8], from: usize) -> Option<usize> {
    let end = seg.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let mut at = from;
    while at + FRAME_HEADER_BYTES + RECORD_HEADER_BYTES < end {
        // Cheap filters first: a plausible length and our version byte.
        let len = u32::from_le_bytes([seg[at], seg[at + 1], seg[at + 2], seg[at + 3]]) as usize;
        if len > RECORD_HEADER_BYTES
            && len <= RECORD_BYTES_MAX
            && at + FRAME_HEADER_BYTES + len <= seg.len()
            && seg[at + FRAME_HEADER_BYTES] == RECORD_FORMAT_VERSION
        {
            if let Frame::Record { payload, .. } = read_frame(seg, at) {
                if record::decode(payload).is_ok() {
                    return Some(at);
                }
            }
        }
        at += 1;
    }
    None
}

/// The sector size torn writes are judged at: a device writes a 512-byte sector whole or not
/// at all (4 KiB-sector devices tear at 4 KiB, which is whole 512-byte runs too).
pub const SECTOR_BYTES: usize = 512;

/// Are the bad bytes at `bad`, before the valid frame at `next_valid`, the trace of one
/// unsynced write whose sectors reached the disk out of order (power failed after a later
/// sector of the write landed but before an earlier one did)?
///
/// Every byte the writer writes lands on zeros (the segment is zero-filled and synced
/// first, or extended past its synced end, where a hole reads as zeros), so a sector that
/// did not land reads as zeros from the write's start on. The evidence is therefore:
/// - a whole sector of zeros between `bad` and `next_valid` (a record's own bytes hold no
///   512 zero bytes in a row unless its data does, see below); or
/// - zeros from `bad` to the end of its sector, at least 5 bytes (the whole length and part
///   of the crc: a flipped byte cannot zero a frame header, whose length is never 0); or
/// - zeros from `bad` to the end of its sector, 1 to 4 bytes (the low bytes of the length),
///   and the frame checks out with the length that ends it exactly at `next_valid`: the
///   frame is whole but for the length bytes its first sector held.
///
/// Corruption (a flipped byte) in an acknowledged record followed by valid ones leaves
/// none of these, so it is still refused. Two cases are indistinguishable from a lost
/// sector and are truncated as one: a record whose data holds a 512-byte aligned run of
/// zeros *and* has a corrupt byte elsewhere, and a byte flipped to zero that was the only
/// non-zero byte between a frame's start and the end of its sector.
pub fn torn_evidence(seg: &[u8], bad: usize, next_valid: usize) -> bool {
    let next_valid = next_valid.min(seg.len());
    if bad >= next_valid {
        return false;
    }
    let first_boundary = (bad / SECTOR_BYTES + 1) * SECTOR_BYTES;
    let zeros = |r: std::ops::Range<usize>| seg[r].iter().all(|&b| b == 0);
    let mut sector = first_boundary;
    while sector + SECTOR_BYTES <= next_valid {
        if zeros(sector..sector + SECTOR_BYTES) {
            return true;
        }
        sector += SECTOR_BYTES;
    }
    if first_boundary > next_valid || !zeros(bad..first_boundary) {
        return false;
    }
    let lost = first_boundary - bad;
    if lost >= 5 {
        return true;
    }
    // Only low length bytes lost: the rest of the header and the payload must match the
    // frame that would end at `next_valid`.
    if bad + FRAME_HEADER_BYTES > next_valid {
        return false;
    }
    let len = next_valid - bad - FRAME_HEADER_BYTES;
    if len <= RECORD_HEADER_BYTES || len > RECORD_BYTES_MAX {
        return false;
    }
    let len_bytes = (len as u32).to_le_bytes();
    let stored = u32::from_le_bytes([seg[bad + 4], seg[bad + 5], seg[bad + 6], seg[bad + 7]]);
    seg[bad + lost..bad + 4] == len_bytes[lost..]
        && frame_crc(len_bytes, &seg[bad + FRAME_HEADER_BYTES..next_valid]) == stored
}

/// What the scan of one segment found.
#[derive(Debug)]
pub struct SegmentScan {
    pub first_zxid: i64,
    /// (offset, zxid, record) of every valid record, in file order.
    pub records: Vec<(usize, crate::tree::TxnRecord)>,
    /// Where the records end (the offset of the end marker or of the first bad frame).
    pub end_offset: usize,
    pub end: ScanEnd,
}

/// How a segment's records end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// A zero length (or end of file) with nothing but zeros after it.
    Clean,
    /// Bad bytes at `end_offset` and no valid frame after them in this segment: a torn
    /// tail if this is the newest segment with records, corruption otherwise.
    Torn { fault: String, garbage_end: usize },
    /// Bad bytes at `end_offset` followed by a valid frame at `next_valid`: corruption.
    Corrupt { fault: String, next_valid: usize },
    /// A frame with a good crc that does not decode, or a zxid out of order: corruption
    /// (a crc cannot fail to notice a torn write, so this is not one).
    Invalid { fault: String },
}

/// Scans a whole segment (already read into memory). `Err` = the header is unusable.
pub fn scan_segment(seg: &[u8]) -> Result<SegmentScan, HeaderError> {
    let first_zxid = decode_segment_header(seg)?;
    let mut records = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut previous: Option<i64> = None;
    let end = loop {
        match read_frame(seg, offset) {
            Frame::End => {
                if let Some(next_valid) = valid_frame_after(seg, offset) {
                    if torn_evidence(seg, offset, next_valid) {
                        break torn_before_valid("zero length", seg, offset, next_valid);
                    }
                    break ScanEnd::Corrupt {
                        fault: "zero length before later records".into(),
                        next_valid,
                    };
                }
                if seg[offset.min(seg.len())..].iter().any(|&b| b != 0) {
                    let garbage_end = seg.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    break ScanEnd::Torn {
                        fault: "non-zero bytes after the end marker".into(),
                        garbage_end,
                    };
                }
                break ScanEnd::Clean;
            }
            Frame::Bad(fault) => {
                if let Some(next_valid) = valid_frame_after(seg, offset + 1) {
                    if torn_evidence(seg, offset, next_valid) {
                        break torn_before_valid(&fault.to_string(), seg, offset, next_valid);
                    }
                    break ScanEnd::Corrupt {
                        fault: fault.to_string(),
                        next_valid,
                    };
                }
                let garbage_end = seg.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                break ScanEnd::Torn {
                    fault: fault.to_string(),
                    garbage_end: garbage_end.max(offset),
                };
            }
            Frame::Record {
                payload,
                frame_bytes,
            } => {
                let rec = match record::decode(payload) {
                    Ok(r) => r,
                    Err(e) => {
                        break ScanEnd::Invalid {
                            fault: format!("record does not decode: {e}"),
                        }
                    }
                };
                let expected_first = previous.is_none() && rec.zxid != first_zxid;
                if expected_first {
                    break ScanEnd::Invalid {
                        fault: format!(
                            "first record has zxid {:#x}, header says {:#x}",
                            rec.zxid, first_zxid
                        ),
                    };
                }
                if let Some(p) = previous.filter(|&p| rec.zxid <= p) {
                    break ScanEnd::Invalid {
                        fault: format!("zxid {:#x} after {:#x}", rec.zxid, p),
                    };
                }
                previous = Some(rec.zxid);
                records.push((offset, rec));
                offset += frame_bytes;
            }
        }
    };
    Ok(SegmentScan {
        first_zxid,
        records,
        end_offset: offset,
        end,
    })
}

/// A torn tail whose write landed out of order: valid-looking frames after the hole are
/// part of the same unsynced write and go with it.
fn torn_before_valid(fault: &str, seg: &[u8], offset: usize, next_valid: usize) -> ScanEnd {
    let garbage_end = seg.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    ScanEnd::Torn {
        fault: format!(
            "{fault}, then zeros where sectors of an unsynced write did not land; \
             the frames from offset {next_valid} on are later bytes of that write"
        ),
        garbage_end: garbage_end.max(offset),
    }
}

/// The decode error of a payload, for tools.
pub fn decode_payload(payload: &[u8]) -> Result<crate::tree::TxnRecord, RecordError> {
    record::decode(payload)
}

#[cfg(test)]
mod tests;
