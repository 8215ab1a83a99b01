//! ZooKeeper's logged transactions (`org.apache.zookeeper.txn.*`), decoded from one log
//! record's payload: `TxnHeader`, then the record its type selects, then (3.6+, when
//! `zookeeper.digest.enabled`, the default) a `TxnDigest`. Matches
//! `SerializeUtils.deserializeTxn` and the sub-record switch of `DataTree.processTxn`.

use super::format::{acl_vec_at, buffer_at, string_at, FormatError};
use crate::jute::Reader;
use crate::proto::{op, Acl};
use crate::tree::txn::{ttl_owner, CONTAINER_OWNER, TTL_MAX_MS};
use bytes::Bytes;

/// `TxnHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time_ms: i64,
    pub txn_type: i32,
}

/// clientId 8 + cxid 4 + zxid 8 + time 8 + type 4.
pub const TXN_HEADER_BYTES: usize = 32;
/// `TxnDigest`: version i32 + treeDigest i64.
pub const TXN_DIGEST_BYTES: usize = 12;

/// `TxnDigest`: the tree digest ZooKeeper expects after applying the txn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnDigest {
    pub version: i32,
    pub tree_digest: i64,
}

/// A create of any kind, its owner already resolved (session id for an ephemeral,
/// [`CONTAINER_OWNER`], a TTL encoding, or 0).
#[derive(Debug, Clone, PartialEq)]
pub struct ZkCreate {
    pub path: String,
    pub data: Option<Bytes>,
    /// `None` = the null ACL vector, which ZooKeeper stores as OPEN_ACL_UNSAFE.
    pub acl: Option<Vec<Acl>>,
    pub ephemeral_owner: i64,
    /// -1 means "the parent's current cversion + 1" (pre-3.3 logs).
    pub parent_cversion: i32,
    /// Op 1 (plain create) only: replaying it over an existing node still moves the
    /// parent's cversion and pzxid forward, as `DataTree.processTxn` does.
    pub fix_parent_on_exists: bool,
}

/// One ZooKeeper transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum ZkTxn {
    CreateSession {
        timeout_ms: i32,
    },
    /// `paths` = the ephemerals the leader listed (3.6+), or empty for older logs.
    CloseSession {
        paths: Vec<String>,
    },
    Create(ZkCreate),
    /// delete and deleteContainer.
    Delete {
        path: String,
    },
    /// setData, and reconfig (which sets `/zookeeper/config`).
    SetData {
        path: String,
        data: Option<Bytes>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Option<Vec<Acl>>,
        version: i32,
    },
    Check,
    Error {
        err: i32,
    },
    Multi {
        ops: Vec<ZkTxn>,
    },
}

/// One decoded log record.
#[derive(Debug, Clone, PartialEq)]
pub struct ZkEntry {
    pub header: TxnHeader,
    pub txn: ZkTxn,
    pub digest: Option<TxnDigest>,
}

fn i32_at(r: &mut Reader) -> Result<i32, FormatError> {
    let at = r.offset();
    r.i32().map_err(|e| FormatError::decode(at, e))
}

fn i64_at(r: &mut Reader) -> Result<i64, FormatError> {
    let at = r.offset();
    r.i64().map_err(|e| FormatError::decode(at, e))
}

fn bool_at(r: &mut Reader) -> Result<bool, FormatError> {
    let at = r.offset();
    r.bool().map_err(|e| FormatError::decode(at, e))
}

/// Decodes a log record's payload. Offsets in errors are relative to the payload.
pub fn decode_entry(payload: Bytes) -> Result<ZkEntry, FormatError> {
    let mut r = Reader::new(payload.clone());
    let header = TxnHeader {
        client_id: i64_at(&mut r)?,
        cxid: i32_at(&mut r)?,
        zxid: i64_at(&mut r)?,
        time_ms: i64_at(&mut r)?,
        txn_type: i32_at(&mut r)?,
    };
    let body_at = r.offset();
    let body = payload.slice(body_at..);
    let shift = |e: FormatError| FormatError {
        offset: e.offset + body_at as u64,
        reason: e.reason,
    };
    let (txn, used) = if header.txn_type == op::CLOSE_SESSION {
        close_session(&body).map_err(shift)?
    } else {
        let mut r = Reader::new(body.clone());
        let txn = decode_txn(&mut r, header.txn_type, header.client_id, true).map_err(shift)?;
        (txn, r.offset())
    };
    let digest = match body.len() - used {
        0 => None,
        TXN_DIGEST_BYTES => {
            let mut r = Reader::new(body.slice(used..));
            Some(TxnDigest {
                version: i32_at(&mut r).map_err(shift)?,
                tree_digest: i64_at(&mut r).map_err(shift)?,
            })
        }
        n => {
            return Err(FormatError::at(
                body_at + used,
                format!(
                    "{n} unexpected bytes after the txn of type {}",
                    header.txn_type
                ),
            ))
        }
    };
    Ok(ZkEntry {
        header,
        txn,
        digest,
    })
}

/// closeSession's record is optional (`zookeeper.closeSessionTxn.enabled`, on by default
/// in 3.8): a `CloseSessionTxn` (a vector of paths) when it parses and leaves nothing or
/// exactly a digest; otherwise, when the body is nothing or a digest, no record.
/// Returns the txn and the bytes it used.
fn close_session(body: &Bytes) -> Result<(ZkTxn, usize), FormatError> {
    let mut r = Reader::new(body.clone());
    let parsed = (|| -> Result<Vec<String>, FormatError> {
        let n = i32_at(&mut r)?;
        if n < 0 || (n as usize).saturating_mul(4) > r.remaining() {
            return Err(FormatError::at(0, "bad path count"));
        }
        let paths = (0..n)
            .map(|_| string_at(&mut r, "path"))
            .collect::<Result<Vec<_>, _>>()?;
        if paths.iter().any(|p| !p.starts_with('/')) {
            return Err(FormatError::at(0, "not a path"));
        }
        Ok(paths)
    })();
    match parsed {
        Ok(paths) if matches!(r.remaining(), 0 | TXN_DIGEST_BYTES) => {
            Ok((ZkTxn::CloseSession { paths }, r.offset()))
        }
        _ if matches!(body.len(), 0 | TXN_DIGEST_BYTES) => {
            Ok((ZkTxn::CloseSession { paths: vec![] }, 0))
        }
        _ => Err(FormatError::at(0, "closeSession record does not decode")),
    }
}

/// Decodes the record of `txn_type` (a top-level txn or a multi's sub-txn).
fn decode_txn(
    r: &mut Reader,
    txn_type: i32,
    client_id: i64,
    top_level: bool,
) -> Result<ZkTxn, FormatError> {
    let at = r.offset();
    let create = |r: &mut Reader, kind: i32| -> Result<ZkTxn, FormatError> {
        let path = string_at(r, "path")?;
        let data = buffer_at(r)?;
        let acl = acl_vec_at(r)?;
        let (ephemeral_owner, parent_cversion) = match kind {
            op::CREATE | op::CREATE2 => {
                let ephemeral = bool_at(r)?;
                let parent_cversion = i32_at(r)?;
                (if ephemeral { client_id } else { 0 }, parent_cversion)
            }
            op::CREATE_CONTAINER => (CONTAINER_OWNER, i32_at(r)?),
            _ => {
                let parent_cversion = i32_at(r)?;
                let ttl_at = r.offset();
                let ttl = i64_at(r)?;
                if ttl <= 0 || ttl > TTL_MAX_MS {
                    return Err(FormatError::at(ttl_at, format!("TTL {ttl} out of range")));
                }
                (ttl_owner(ttl), parent_cversion)
            }
        };
        Ok(ZkTxn::Create(ZkCreate {
            path,
            data,
            acl,
            ephemeral_owner,
            parent_cversion,
            fix_parent_on_exists: kind == op::CREATE,
        }))
    };
    let txn = match txn_type {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => create(r, txn_type)?,
        op::DELETE | op::DELETE_CONTAINER => ZkTxn::Delete {
            path: string_at(r, "path")?,
        },
        op::SET_DATA => ZkTxn::SetData {
            path: string_at(r, "path")?,
            data: buffer_at(r)?,
            version: i32_at(r)?,
        },
        op::RECONFIG if top_level => ZkTxn::SetData {
            path: string_at(r, "path")?,
            data: buffer_at(r)?,
            version: i32_at(r)?,
        },
        op::SET_ACL if top_level => ZkTxn::SetAcl {
            path: string_at(r, "path")?,
            acl: acl_vec_at(r)?,
            version: i32_at(r)?,
        },
        op::CHECK => {
            string_at(r, "path")?;
            i32_at(r)?;
            ZkTxn::Check
        }
        op::ERROR => ZkTxn::Error { err: i32_at(r)? },
        op::CREATE_SESSION if top_level => ZkTxn::CreateSession {
            timeout_ms: i32_at(r)?,
        },
        op::MULTI if top_level => {
            let count_at = r.offset();
            let n = i32_at(r)?;
            // Each `Txn` is at least a type and a buffer length.
            if n < 0 || (n as usize).saturating_mul(8) > r.remaining() {
                return Err(FormatError::at(
                    count_at,
                    format!("multi op count {n} does not fit in the bytes left"),
                ));
            }
            let mut ops = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let sub_type = i32_at(r)?;
                let data_at = r.offset();
                let data = buffer_at(r)?.ok_or_else(|| {
                    FormatError::at(data_at, "multi sub-txn has null data".to_string())
                })?;
                let mut sub = Reader::new(data);
                let txn = decode_txn(&mut sub, sub_type, client_id, false)
                    .map_err(|e| FormatError::at(data_at + 4 + e.offset as usize, e.reason))?;
                if sub.remaining() != 0 {
                    return Err(FormatError::at(
                        data_at,
                        format!(
                            "{} unexpected bytes after multi sub-txn of type {sub_type}",
                            sub.remaining()
                        ),
                    ));
                }
                ops.push(txn);
            }
            ZkTxn::Multi { ops }
        }
        other => {
            return Err(FormatError::at(
                at,
                format!(
                    "unknown txn type {other}{}",
                    if top_level { "" } else { " inside a multi" }
                ),
            ))
        }
    };
    Ok(txn)
}
