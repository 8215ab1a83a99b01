//! ZooKeeper 3.8's file formats, read: the snapshot (`FileSnap` + `SnapStream`,
//! `SerializeUtils.serializeSnapshot`, `DataTree.serialize`, `ReferenceCountedACLCache`)
//! and the transaction log (`FileTxnLog`, `Util.marshallTxnEntry`). Both are jute
//! (big-endian) behind a 16-byte `FileHeader`; byte tables in `docs/storage.md`.
//!
//! Everything here takes a whole file as [`Bytes`] and returns either the decoded content
//! or a [`FormatError`] carrying the byte offset where decoding failed; the caller adds
//! the file name. No panics on any input: every length is checked against the bytes left.

use crate::jute::{DecodeError, Reader};
use crate::proto::Acl;
use bytes::Bytes;
use std::collections::HashMap;

/// `ZKSN` as a big-endian int (`FileSnap.SNAP_MAGIC`).
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// `ZKLG` as a big-endian int (`FileTxnLog.TXNLOG_MAGIC`).
pub const LOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// The only on-disk version ZooKeeper 3.x writes (hence `version-2`).
pub const FILE_VERSION: i32 = 2;
/// `FileHeader`: magic i32, version i32, dbid i64.
pub const FILE_HEADER_BYTES: usize = 16;
/// The end-of-record byte after every log entry (`'B'`).
pub const END_OF_RECORD: u8 = 0x42;
/// The ACL cache id that means OPEN_ACL_UNSAFE without an entry in the map.
pub const OPEN_UNSAFE_ACL_ID: i64 = -1;
/// The digest version ZooKeeper 3.8 computes (`DigestCalculator.DIGEST_VERSION`).
pub const DIGEST_VERSION: i32 = 2;

/// Where and why decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub offset: u64,
    pub reason: String,
}

impl FormatError {
    pub fn at(offset: usize, reason: impl Into<String>) -> FormatError {
        FormatError {
            offset: offset as u64,
            reason: reason.into(),
        }
    }

    pub fn decode(at: usize, e: DecodeError) -> FormatError {
        // `DecodeError` offsets are relative to the reader's start, which is the file's.
        let offset = match &e {
            DecodeError::Truncated { offset, .. } | DecodeError::NegativeLength { offset, .. } => {
                *offset
            }
            _ => at,
        };
        let reason = match e {
            DecodeError::Truncated { needed_bytes, .. } => {
                format!("file ends early ({needed_bytes} more bytes needed)")
            }
            DecodeError::NegativeLength { len, .. } => format!("negative length {len}"),
            e => e.to_string(),
        };
        FormatError::at(offset, reason)
    }
}

/// Adler-32 (RFC 1950), the checksum of ZooKeeper's snapshots and log records
/// (`java.util.zip.Adler32`).
pub fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 is the largest n with 255 n (n + 1) / 2 + (n + 1)(MOD - 1) < 2^32: sums of that
    // many bytes cannot overflow before the reduction.
    const CHUNK: usize = 5_552;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(CHUNK) {
        for &byte in chunk {
            a += byte as u32;
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// CRC-32 (IEEE, reflected, as `java.util.zip.CRC32`), for ZooKeeper's tree digest.
pub fn crc32_ieee(parts: &[&[u8]]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &byte in *part {
            crc = TABLE[((crc ^ byte as u32) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

/// `FileHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub magic: i32,
    pub version: i32,
    pub dbid: i64,
}

/// Reads and checks the header: `magic` and version 2.
pub fn read_file_header(r: &mut Reader, magic: i32) -> Result<FileHeader, FormatError> {
    let h = FileHeader {
        magic: r.i32().map_err(|e| FormatError::decode(0, e))?,
        version: r.i32().map_err(|e| FormatError::decode(4, e))?,
        dbid: r.i64().map_err(|e| FormatError::decode(8, e))?,
    };
    if h.magic != magic {
        let want = String::from_utf8_lossy(&magic.to_be_bytes()).into_owned();
        return Err(FormatError::at(
            0,
            format!(
                "bad magic {:#010x} (expected {want:?}): not a ZooKeeper file",
                h.magic
            ),
        ));
    }
    if h.version != FILE_VERSION {
        return Err(FormatError::at(
            4,
            format!(
                "unsupported file version {} (expected {FILE_VERSION})",
                h.version
            ),
        ));
    }
    Ok(h)
}

/// `StatPersisted`: the stat ZooKeeper stores. `cversion` counts child creations (what
/// Corral calls `cversion_creations`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatPersisted {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

/// One `DataNode` as serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapNode {
    /// As stored: `""` is the root.
    pub path: String,
    pub data: Option<Bytes>,
    /// Key into [`ZkSnapshot::acls`], or [`OPEN_UNSAFE_ACL_ID`].
    pub acl: i64,
    pub stat: StatPersisted,
}

/// `DataTree.ZxidDigest`: the tree digest at `zxid` when the snapshot was finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

/// A decoded snapshot file.
#[derive(Debug, Clone, PartialEq)]
pub struct ZkSnapshot {
    pub header: FileHeader,
    pub sessions: Vec<(i64, i32)>,
    pub acls: HashMap<i64, Vec<Acl>>,
    /// In file order (a parent before its children).
    pub nodes: Vec<SnapNode>,
    pub digest: Option<ZxidDigest>,
}

fn i32_at(r: &mut Reader) -> Result<i32, FormatError> {
    let at = r.offset();
    r.i32().map_err(|e| FormatError::decode(at, e))
}

fn i64_at(r: &mut Reader) -> Result<i64, FormatError> {
    let at = r.offset();
    r.i64().map_err(|e| FormatError::decode(at, e))
}

/// A count that must be non-negative and whose elements (each at least `min_bytes`)
/// must fit in what is left, so a corrupt count never allocates.
fn count_at(r: &mut Reader, what: &str, min_bytes: usize) -> Result<usize, FormatError> {
    let at = r.offset();
    let n = i32_at(r)?;
    if n < 0 || (n as usize).saturating_mul(min_bytes) > r.remaining() {
        return Err(FormatError::at(
            at,
            format!(
                "{what} count {n} does not fit in the {} bytes left",
                r.remaining()
            ),
        ));
    }
    Ok(n as usize)
}

/// A string that must not be null; invalid UTF-8 is refused (a path is never lossy).
pub fn string_at(r: &mut Reader, what: &str) -> Result<String, FormatError> {
    let at = r.offset();
    match r.buffer_opt().map_err(|e| FormatError::decode(at, e))? {
        None => Err(FormatError::at(at, format!("{what} is null"))),
        Some(b) => String::from_utf8(b.to_vec())
            .map_err(|_| FormatError::at(at, format!("{what} is not UTF-8"))),
    }
}

pub fn buffer_at(r: &mut Reader) -> Result<Option<Bytes>, FormatError> {
    let at = r.offset();
    r.buffer_opt().map_err(|e| FormatError::decode(at, e))
}

/// One `ACL` record: perms, scheme, id.
pub fn acl_at(r: &mut Reader) -> Result<Acl, FormatError> {
    let perms = i32_at(r)?;
    let scheme = string_at(r, "ACL scheme")?;
    let id = string_at(r, "ACL id")?;
    Ok(Acl::new(perms, &scheme, &id))
}

/// A `vector<ACL>`; `None` for the null vector (ZooKeeper maps it to OPEN_ACL_UNSAFE).
pub fn acl_vec_at(r: &mut Reader) -> Result<Option<Vec<Acl>>, FormatError> {
    let at = r.offset();
    let n = i32_at(r)?;
    if n == -1 {
        return Ok(None);
    }
    if n < 0 || (n as usize).saturating_mul(12) > r.remaining() {
        return Err(FormatError::at(
            at,
            format!("ACL count {n} does not fit in the bytes left"),
        ));
    }
    (0..n)
        .map(|_| acl_at(r))
        .collect::<Result<_, _>>()
        .map(Some)
}

fn stat_at(r: &mut Reader) -> Result<StatPersisted, FormatError> {
    Ok(StatPersisted {
        czxid: i64_at(r)?,
        mzxid: i64_at(r)?,
        ctime: i64_at(r)?,
        mtime: i64_at(r)?,
        version: i32_at(r)?,
        cversion: i32_at(r)?,
        aversion: i32_at(r)?,
        ephemeral_owner: i64_at(r)?,
        pzxid: i64_at(r)?,
    })
}

/// Checks a `SnapStream` seal at the reader's position: the Adler-32 of every byte before
/// it (as a long), then the string `"/"`.
fn seal_at(r: &mut Reader, file: &[u8]) -> Result<(), FormatError> {
    let at = r.offset();
    let computed = adler32(&file[..at]);
    let stored = i64_at(r)?;
    let slash_at = r.offset();
    let slash = string_at(r, "seal")?;
    if stored != computed as i64 {
        return Err(FormatError::at(
            at,
            format!("checksum mismatch (stored {stored:#x}, computed {computed:#x})"),
        ));
    }
    if slash != "/" {
        return Err(FormatError::at(slash_at, "seal is not \"/\""));
    }
    Ok(())
}

/// Decodes and validates a whole snapshot file (uncompressed, ZooKeeper's default).
pub fn parse_snapshot(file: Bytes) -> Result<ZkSnapshot, FormatError> {
    let mut r = Reader::new(file.clone());
    let header = read_file_header(&mut r, SNAP_MAGIC)?;
    let n = count_at(&mut r, "session", 12)?;
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push((i64_at(&mut r)?, i32_at(&mut r)?));
    }
    let n = count_at(&mut r, "ACL list", 12)?;
    let mut acls = HashMap::with_capacity(n);
    for _ in 0..n {
        let at = r.offset();
        let id = i64_at(&mut r)?;
        let list = acl_vec_at(&mut r)?
            .ok_or_else(|| FormatError::at(at, format!("ACL list {id} is null (missing acls)")))?;
        if acls.insert(id, list).is_some() {
            return Err(FormatError::at(at, format!("ACL list {id} appears twice")));
        }
    }
    let mut nodes = Vec::new();
    loop {
        let at = r.offset();
        let path = string_at(&mut r, "path")?;
        if path == "/" {
            break;
        }
        let data = buffer_at(&mut r)?;
        let acl = i64_at(&mut r)?;
        if acl != OPEN_UNSAFE_ACL_ID && !acls.contains_key(&acl) {
            return Err(FormatError::at(
                at,
                format!("node {path:?} refers to ACL list {acl}, which the snapshot lacks"),
            ));
        }
        let stat = stat_at(&mut r)?;
        nodes.push(SnapNode {
            path,
            data,
            acl,
            stat,
        });
    }
    seal_at(&mut r, &file)?;
    // 3.6+: the digest, sealed again (the checksum now also covers the first seal).
    let mut digest = None;
    if r.remaining() > 0 {
        let zxid = i64_at(&mut r)?;
        let version = i32_at(&mut r)?;
        let value = if version < 2 {
            // Older digests were a hex string.
            let at = r.offset();
            let text = string_at(&mut r, "digest")?;
            u64::from_str_radix(&text, 16)
                .map_err(|_| FormatError::at(at, format!("digest {text:?} is not hex")))?
                as i64
        } else {
            i64_at(&mut r)?
        };
        seal_at(&mut r, &file)?;
        digest = Some(ZxidDigest {
            zxid,
            version,
            digest: value,
        });
    }
    if r.remaining() > 0 {
        return Err(FormatError::at(
            r.offset(),
            format!("{} unexpected bytes after the end", r.remaining()),
        ));
    }
    Ok(ZkSnapshot {
        header,
        sessions,
        acls,
        nodes,
        digest,
    })
}

/// How a log file's records end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// A zero length (ZooKeeper's end marker in the preallocated zeros) or the file's end,
    /// with only zeros after it.
    Clean,
    /// A record that is cut short, lacks its end byte or fails its checksum, with no
    /// valid record anywhere after it: a write that never completed.
    Torn { offset: u64, reason: String },
    /// A bad record (or a zero length) followed by a valid record: corruption.
    Corrupt {
        offset: u64,
        reason: String,
        next_valid: u64,
    },
}

/// A log file's records: (offset of the record, its payload = `TxnHeader` + txn [+ digest]).
#[derive(Debug, Clone)]
pub struct LogScan {
    pub header: FileHeader,
    pub records: Vec<(u64, Bytes)>,
    pub end: LogEnd,
}

/// crc long (8) + length int (4).
const RECORD_PREFIX_BYTES: usize = 12;

/// Checks the frame at `at`: checksum, length, end byte. Ok = the payload range.
fn frame_at(file: &[u8], at: usize) -> Result<Option<(usize, usize)>, String> {
    let left = file.len() - at;
    if left < RECORD_PREFIX_BYTES {
        return if file[at..].iter().all(|&b| b == 0) {
            Ok(None)
        } else {
            Err(format!("record header cut short ({left} bytes left)"))
        };
    }
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&file[at..at + 8]);
    let crc = i64::from_be_bytes(crc);
    let len = i32::from_be_bytes([file[at + 8], file[at + 9], file[at + 10], file[at + 11]]);
    if len == 0 {
        return Ok(None);
    }
    let start = at + RECORD_PREFIX_BYTES;
    if len < 0 || len as usize >= file.len() - start {
        return Err(format!("record length {len} runs past the end of the file"));
    }
    let end = start + len as usize;
    if file[end] != END_OF_RECORD {
        return Err(format!(
            "end-of-record byte is {:#04x}, not 0x42",
            file[end]
        ));
    }
    let computed = adler32(&file[start..end]);
    if crc != computed as i64 {
        return Err(format!(
            "checksum mismatch (stored {crc:#x}, computed {computed:#x})"
        ));
    }
    Ok(Some((start, end)))
}

/// The first offset after `from` where a whole valid record starts, if any.
fn next_valid_frame(file: &[u8], from: usize) -> Option<usize> {
    (from + 1..file.len())
        .find(|&at| plausible_frame(file, at) && matches!(frame_at(file, at), Ok(Some(_))))
}

/// Cheap checks before [`frame_at`]'s checksum, which covers up to the rest of the file:
/// scanning garbage for a record would otherwise sum megabytes at every offset whose
/// length fits and whose end byte happens to be 0x42. A record holds a `TxnHeader` whose
/// type is one ZooKeeper logs (closeSession -11 up to createTTL 21).
fn plausible_frame(file: &[u8], at: usize) -> bool {
    /// The header's type field, from the payload's start.
    const TYPE_OFFSET: usize = 28;
    let start = at + RECORD_PREFIX_BYTES;
    if start + super::txn::TXN_HEADER_BYTES >= file.len() {
        return false;
    }
    let len = i32::from_be_bytes([file[at + 8], file[at + 9], file[at + 10], file[at + 11]]);
    if len < super::txn::TXN_HEADER_BYTES as i32 || len as usize >= file.len() - start {
        return false;
    }
    let type_at = start + TYPE_OFFSET;
    let txn_type = i32::from_be_bytes([
        file[type_at],
        file[type_at + 1],
        file[type_at + 2],
        file[type_at + 3],
    ]);
    file[start + len as usize] == END_OF_RECORD && (-11..=21).contains(&txn_type)
}

/// Splits a log file into records. Decoding the payloads is the caller's (it needs the
/// txn types); this checks framing only, and classifies the end per the table in
/// [`LogEnd`].
pub fn scan_log(file: Bytes) -> Result<LogScan, FormatError> {
    let mut r = Reader::new(file.clone());
    let header = read_file_header(&mut r, LOG_MAGIC)?;
    let mut at = FILE_HEADER_BYTES;
    let mut records = Vec::new();
    let end = loop {
        if at == file.len() {
            break LogEnd::Clean;
        }
        match frame_at(&file, at) {
            Ok(Some((start, end))) => {
                records.push((at as u64, file.slice(start..end)));
                at = end + 1;
            }
            Ok(None) => {
                // The end marker: nothing but zeros may follow, and certainly no record.
                break match next_valid_frame(&file, at) {
                    Some(next) => LogEnd::Corrupt {
                        offset: at as u64,
                        reason: "zero length before the end of the records".into(),
                        next_valid: next as u64,
                    },
                    None if file[at..].iter().all(|&b| b == 0) => LogEnd::Clean,
                    None => LogEnd::Torn {
                        offset: at as u64,
                        reason: "non-zero bytes after the end marker".into(),
                    },
                };
            }
            Err(reason) => {
                break match next_valid_frame(&file, at) {
                    Some(next) => LogEnd::Corrupt {
                        offset: at as u64,
                        reason,
                        next_valid: next as u64,
                    },
                    None => LogEnd::Torn {
                        offset: at as u64,
                        reason,
                    },
                };
            }
        }
    };
    Ok(LogScan {
        header,
        records,
        end,
    })
}
