//! The binary encoding of one [`TxnRecord`]: the payload of a log record (framing, length
//! and crc32c are the log's business, see [`crate::storage::txn_log`]).
//!
//! Little-endian, versioned by the first byte, every length bounded by the bytes that are
//! left (so a corrupt count never allocates more than the record holds). Null data is kept
//! distinct from empty data (length -1 vs 0), as jute does. The byte layout is the table in
//! `docs/storage.md`; a change of layout is a new [`RECORD_FORMAT_VERSION`] and the decoder
//! keeps reading the old ones. Plays the role of ZooKeeper's `TxnHeader` + `*Txn` jute records
//! (`SerializeUtils.deserializeTxn`), in our own format.

use crate::proto::{Acl, ErrorCode, Id};
use crate::tree::txn::{CreateTxn, Txn, TxnRecord};
use bytes::Bytes;
use std::sync::Arc;

/// The layout this code writes.
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// Bytes before the txn tag: version, zxid, time, session, cxid.
pub const RECORD_HEADER_BYTES: usize = 1 + 8 + 8 + 8 + 4;

/// Txn tags (byte after the record header and before each op of a multi).
mod tag {
    pub const CREATE_SESSION: u8 = 1;
    pub const CLOSE_SESSION: u8 = 2;
    pub const CREATE: u8 = 3;
    pub const DELETE: u8 = 4;
    pub const SET_DATA: u8 = 5;
    pub const SET_ACL: u8 = 6;
    pub const CHECK: u8 = 7;
    pub const ERROR: u8 = 8;
    pub const MULTI: u8 = 9;
    pub const DELETE_CONTAINER: u8 = 10;
}

/// A payload that is not a valid record. Offsets count from the payload's first byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record truncated: {needed} bytes needed at payload offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("unknown record format version {version}")]
    UnknownVersion { version: u8 },
    #[error("unknown txn tag {tag} at payload offset {offset}")]
    UnknownTag { offset: usize, tag: u8 },
    #[error("string at payload offset {offset} is not UTF-8")]
    InvalidUtf8 { offset: usize },
    #[error("unknown error code {code} at payload offset {offset}")]
    UnknownErrorCode { offset: usize, code: i32 },
    #[error("invalid length {len} at payload offset {offset}")]
    InvalidLength { offset: usize, len: i64 },
    #[error("multi nested in a multi at payload offset {offset}")]
    NestedMulti { offset: usize },
    #[error("invalid boolean {value} at payload offset {offset}")]
    InvalidBool { offset: usize, value: u8 },
    #[error("{trailing_bytes} bytes after the record")]
    TrailingBytes { trailing_bytes: usize },
}

/// A capacity for [`encode`]'s output that holds most records without growing: the fixed
/// fields plus the bytes of the paths and data (ACLs and multis are estimated). Encoding a
/// 1 KiB setData into an empty `Vec` reallocated it ~9 times.
pub fn encoded_size_hint(rec: &TxnRecord) -> usize {
    /// Header, version, zxid, time, session, cxid and a txn's own fixed fields, rounded up.
    const FIXED_BYTES: usize = 64;
    /// One ACL entry: perms, scheme and id.
    const ACL_BYTES: usize = 48;
    fn txn_bytes(txn: &Txn) -> usize {
        let data_len = |d: &Option<bytes::Bytes>| d.as_ref().map_or(0, |d| d.len());
        match txn {
            Txn::Create(c) => c.path.len() + data_len(&c.data) + ACL_BYTES * c.acl.len(),
            Txn::SetData { path, data, .. } => path.len() + data_len(data),
            Txn::Delete { path } | Txn::Check { path } | Txn::DeleteContainer { path } => {
                path.len()
            }
            Txn::SetAcl { path, acl, .. } => path.len() + ACL_BYTES * acl.len(),
            Txn::CloseSession { ephemerals } => ephemerals.iter().map(|p| 4 + p.len()).sum(),
            Txn::Multi { ops } => ops.iter().map(|op| 16 + txn_bytes(op)).sum(),
            Txn::CreateSession { .. } | Txn::Error { .. } => 0,
        }
    }
    FIXED_BYTES + txn_bytes(&rec.txn)
}

/// The bytes [`encode`] writes before the txn: version, zxid, time, session and cxid.
pub const RECORD_FIELDS_BYTES: usize = 1 + 8 + 8 + 8 + 4;

/// The exact length [`encode`] gives `rec`, without encoding it.
pub fn encoded_len(rec: &TxnRecord) -> usize {
    RECORD_FIELDS_BYTES + txn_encoded_len(&rec.txn)
}

/// The exact length of a txn's encoding in a record (the sequencer refuses a write whose
/// txn would not fit in a log record or a proposal).
pub fn txn_encoded_len(txn: &Txn) -> usize {
    fn str_len(s: &str) -> usize {
        4 + s.len()
    }
    fn data_len(d: &Option<Bytes>) -> usize {
        4 + d.as_ref().map_or(0, |d| d.len())
    }
    fn acl_len(acl: &[Acl]) -> usize {
        4 + acl
            .iter()
            .map(|a| 4 + str_len(&a.id.scheme) + str_len(&a.id.id))
            .sum::<usize>()
    }
    1 + match txn {
        Txn::CreateSession { .. } | Txn::Error { .. } => 4,
        Txn::CloseSession { ephemerals } => {
            4 + ephemerals.iter().map(|p| str_len(p)).sum::<usize>()
        }
        Txn::Create(c) => str_len(&c.path) + data_len(&c.data) + acl_len(&c.acl) + 8 + 4 + 1,
        Txn::Delete { path } | Txn::Check { path } | Txn::DeleteContainer { path } => str_len(path),
        Txn::SetData { path, data, .. } => str_len(path) + data_len(data) + 4,
        Txn::SetAcl { path, acl, .. } => str_len(path) + acl_len(acl) + 4,
        Txn::Multi { ops } => 4 + ops.iter().map(txn_encoded_len).sum::<usize>(),
    }
}

/// Appends the encoding of `rec` to `out`; returns the number of bytes written.
pub fn encode(rec: &TxnRecord, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.push(RECORD_FORMAT_VERSION);
    out.extend_from_slice(&rec.zxid.to_le_bytes());
    out.extend_from_slice(&rec.time_ms.to_le_bytes());
    out.extend_from_slice(&rec.session_id.to_le_bytes());
    out.extend_from_slice(&rec.cxid.to_le_bytes());
    encode_txn(&rec.txn, out);
    out.len() - start
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

fn put_data(out: &mut Vec<u8>, data: &Option<Bytes>) {
    match data {
        None => put_i32(out, -1),
        Some(d) => {
            put_i32(out, d.len() as i32);
            out.extend_from_slice(d);
        }
    }
}

fn put_acl(out: &mut Vec<u8>, acl: &[Acl]) {
    put_u32(out, acl.len() as u32);
    for a in acl {
        put_i32(out, a.perms);
        put_str(out, &a.id.scheme);
        put_str(out, &a.id.id);
    }
}

fn encode_txn(txn: &Txn, out: &mut Vec<u8>) {
    match txn {
        Txn::CreateSession { timeout_ms } => {
            out.push(tag::CREATE_SESSION);
            put_i32(out, *timeout_ms);
        }
        Txn::CloseSession { ephemerals } => {
            out.push(tag::CLOSE_SESSION);
            put_u32(out, ephemerals.len() as u32);
            for p in ephemerals {
                put_str(out, p);
            }
        }
        Txn::Create(c) => {
            out.push(tag::CREATE);
            put_str(out, &c.path);
            put_data(out, &c.data);
            put_acl(out, &c.acl);
            out.extend_from_slice(&c.ephemeral_owner.to_le_bytes());
            put_i32(out, c.parent_cversion);
            out.push(c.with_stat as u8);
        }
        Txn::Delete { path } => {
            out.push(tag::DELETE);
            put_str(out, path);
        }
        Txn::SetData {
            path,
            data,
            version,
        } => {
            out.push(tag::SET_DATA);
            put_str(out, path);
            put_data(out, data);
            put_i32(out, *version);
        }
        Txn::SetAcl {
            path,
            acl,
            aversion,
        } => {
            out.push(tag::SET_ACL);
            put_str(out, path);
            put_acl(out, acl);
            put_i32(out, *aversion);
        }
        Txn::Check { path } => {
            out.push(tag::CHECK);
            put_str(out, path);
        }
        Txn::Error { err } => {
            out.push(tag::ERROR);
            put_i32(out, err.code());
        }
        Txn::Multi { ops } => {
            // The sequencer never nests multis (ZooKeeper refuses them); the decoder relies
            // on it to bound recursion.
            assert!(
                ops.iter().all(|op| !matches!(op, Txn::Multi { .. })),
                "nested multi txn"
            );
            out.push(tag::MULTI);
            put_u32(out, ops.len() as u32);
            for op in ops {
                encode_txn(op, out);
            }
        }
        Txn::DeleteContainer { path } => {
            out.push(tag::DELETE_CONTAINER);
            put_str(out, path);
        }
    }
}

/// Decodes one whole payload (no bytes may follow the record).
pub fn decode(payload: &[u8]) -> Result<TxnRecord, RecordError> {
    let mut r = Cursor {
        buf: payload,
        at: 0,
    };
    let version = r.u8()?;
    if version != RECORD_FORMAT_VERSION {
        return Err(RecordError::UnknownVersion { version });
    }
    let zxid = r.i64()?;
    let time_ms = r.i64()?;
    let session_id = r.i64()?;
    let cxid = r.i32()?;
    let txn = decode_txn(&mut r, false)?;
    let trailing_bytes = payload.len() - r.at;
    if trailing_bytes != 0 {
        return Err(RecordError::TrailingBytes { trailing_bytes });
    }
    Ok(TxnRecord {
        zxid,
        time_ms,
        session_id,
        cxid,
        txn,
    })
}

/// Reads the zxid of a payload without decoding the rest (for tools that skip records).
pub fn peek_zxid(payload: &[u8]) -> Option<i64> {
    let bytes = payload.get(1..9)?;
    Some(i64::from_le_bytes(bytes.try_into().ok()?))
}

/// Reads the txn time (ms since the epoch, the leader's clock) of a payload without
/// decoding the rest (a learner's `proposal_latency`).
pub fn peek_time_ms(payload: &[u8]) -> Option<i64> {
    let bytes = payload.get(9..17)?;
    Some(i64::from_le_bytes(bytes.try_into().ok()?))
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], RecordError> {
        let left = self.buf.len() - self.at;
        if len > left {
            return Err(RecordError::Truncated {
                offset: self.at,
                needed: len,
            });
        }
        let s = &self.buf[self.at..self.at + len];
        self.at += len;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn bool(&mut self) -> Result<bool, RecordError> {
        let offset = self.at;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(RecordError::InvalidBool { offset, value }),
        }
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(self.i32()? as u32)
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    /// A count of elements each at least `min_element_bytes` long: refused when the
    /// bytes left cannot hold that many, so a corrupt count never allocates.
    fn count(&mut self, min_element_bytes: usize) -> Result<usize, RecordError> {
        let offset = self.at;
        let n = self.u32()? as usize;
        let left = self.buf.len() - self.at;
        if n.saturating_mul(min_element_bytes) > left {
            return Err(RecordError::InvalidLength {
                offset,
                len: n as i64,
            });
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<Arc<str>, RecordError> {
        let offset = self.at;
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| RecordError::InvalidUtf8 { offset })?;
        Ok(Arc::from(s))
    }

    fn data(&mut self) -> Result<Option<Bytes>, RecordError> {
        let offset = self.at;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(RecordError::InvalidLength {
                offset,
                len: len as i64,
            });
        }
        Ok(Some(Bytes::copy_from_slice(self.take(len as usize)?)))
    }

    fn acl(&mut self) -> Result<Arc<Vec<Acl>>, RecordError> {
        let n = self.count(4 + 4 + 4)?;
        let mut acl = Vec::with_capacity(n);
        for _ in 0..n {
            let perms = self.i32()?;
            let scheme = self.str()?;
            let id = self.str()?;
            acl.push(Acl {
                perms,
                id: Id {
                    scheme: (&*scheme).into(),
                    id: (&*id).into(),
                },
            });
        }
        Ok(Arc::new(acl))
    }
}

fn decode_txn(r: &mut Cursor<'_>, in_multi: bool) -> Result<Txn, RecordError> {
    let offset = r.at;
    let t = r.u8()?;
    Ok(match t {
        tag::CREATE_SESSION => Txn::CreateSession {
            timeout_ms: r.i32()?,
        },
        tag::CLOSE_SESSION => {
            let n = r.count(4)?;
            let mut ephemerals = Vec::with_capacity(n);
            for _ in 0..n {
                ephemerals.push(r.str()?);
            }
            Txn::CloseSession { ephemerals }
        }
        tag::CREATE => Txn::Create(CreateTxn {
            path: r.str()?,
            data: r.data()?,
            acl: r.acl()?,
            ephemeral_owner: r.i64()?,
            parent_cversion: r.i32()?,
            with_stat: r.bool()?,
        }),
        tag::DELETE => Txn::Delete { path: r.str()? },
        tag::SET_DATA => Txn::SetData {
            path: r.str()?,
            data: r.data()?,
            version: r.i32()?,
        },
        tag::SET_ACL => Txn::SetAcl {
            path: r.str()?,
            acl: r.acl()?,
            aversion: r.i32()?,
        },
        tag::CHECK => Txn::Check { path: r.str()? },
        tag::ERROR => {
            let at = r.at;
            let code = r.i32()?;
            let err = ErrorCode::from_code(code);
            // from_code maps unknown codes to SystemError; a stored code must round-trip.
            if err.code() != code {
                return Err(RecordError::UnknownErrorCode { offset: at, code });
            }
            Txn::Error { err }
        }
        tag::MULTI => {
            if in_multi {
                return Err(RecordError::NestedMulti { offset });
            }
            let n = r.count(1)?;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                ops.push(decode_txn(r, true)?);
            }
            Txn::Multi { ops }
        }
        tag::DELETE_CONTAINER => Txn::DeleteContainer { path: r.str()? },
        tag => return Err(RecordError::UnknownTag { offset, tag }),
    })
}

/// The name of a txn's type as zkTxnLogToolkit prints it.
pub fn txn_type_name(txn: &Txn) -> &'static str {
    match txn {
        Txn::CreateSession { .. } => "createSession",
        Txn::CloseSession { .. } => "closeSession",
        Txn::Create(c) if c.ephemeral_owner == crate::tree::txn::CONTAINER_OWNER => {
            "createContainer"
        }
        Txn::Create(c) if crate::tree::txn::ttl_of(c.ephemeral_owner).is_some() => "createTTL",
        Txn::Create(_) => "create",
        Txn::Delete { .. } => "delete",
        Txn::SetData { .. } => "setData",
        Txn::SetAcl { .. } => "setACL",
        Txn::Check { .. } => "check",
        Txn::Error { .. } => "error",
        Txn::Multi { .. } => "multi",
        Txn::DeleteContainer { .. } => "deleteContainer",
    }
}
