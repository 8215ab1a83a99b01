//! Idempotent transactions: what the ZAB executor decides and every replica applies.
//!
//! A transaction carries final values (the sequential path already chosen, the new version,
//! the parent's new cversion), never "increment" instructions, so applying it twice or on
//! any replica gives the same tree. Matches `org.apache.zookeeper.txn.*`.

use crate::proto::{Acl, ErrorCode, SessionId};
use bytes::Bytes;
use std::sync::Arc;

/// One transaction, with the zxid and time it was ordered at.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnRecord {
    pub zxid: i64,
    pub time_ms: i64,
    pub session_id: SessionId,
    pub cxid: i32,
    pub txn: Txn,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Txn {
    CreateSession {
        timeout_ms: i32,
    },
    /// Ends a session; `ephemerals` are deleted in this one transaction.
    CloseSession {
        ephemerals: Vec<Arc<str>>,
    },
    Create(CreateTxn),
    Delete {
        path: Arc<str>,
    },
    SetData {
        path: Arc<str>,
        data: Option<Bytes>,
        version: i32,
    },
    SetAcl {
        path: Arc<str>,
        acl: Arc<Vec<Acl>>,
        aversion: i32,
    },
    /// A check op inside a multi: changes nothing.
    Check {
        path: Arc<str>,
    },
    /// A write that failed validation still takes a zxid, as in ZooKeeper.
    Error {
        err: ErrorCode,
    },
    /// Atomic multi. On failure `ops` holds one `Error` per op (see `multi_error`).
    Multi {
        ops: Vec<Txn>,
    },
    /// The container reaper removing an empty container or expired TTL node.
    DeleteContainer {
        path: Arc<str>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTxn {
    pub path: Arc<str>,
    pub data: Option<Bytes>,
    pub acl: Arc<Vec<Acl>>,
    /// Session id for ephemerals, [`CONTAINER_OWNER`] or a TTL encoding, else 0.
    pub ephemeral_owner: i64,
    /// The parent's internal cversion (count of child creations) after this create.
    pub parent_cversion: i32,
    /// Answer with Create2Response (stat) rather than CreateResponse.
    pub with_stat: bool,
}

/// ephemeralOwner marker of a container node (Long.MIN_VALUE in ZooKeeper).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// The largest TTL ZooKeeper accepts: 2^40 - 1 ms.
pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// ephemeralOwner encoding of a TTL node: high byte 0xFF, feature bits 0, ttl in the low 40.
pub fn ttl_owner(ttl_ms: i64) -> i64 {
    ((0xFFu64 << 56) as i64) | (ttl_ms & TTL_MAX_MS)
}

/// The TTL of a node whose ephemeralOwner says it is a TTL node.
pub fn ttl_of(owner: i64) -> Option<i64> {
    let high = (owner as u64) >> 56;
    let feature = ((owner as u64) >> 40) & 0xFFFF;
    (high == 0xFF && feature == 0 && owner != CONTAINER_OWNER).then_some(owner & TTL_MAX_MS)
}

/// Is this ephemeralOwner a real session (not persistent, container or TTL)?
pub fn is_session_owner(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_OWNER && ttl_of(owner).is_none()
}

/// What clients see as ephemeralOwner (containers and TTL nodes show 0).
pub fn visible_owner(owner: i64) -> i64 {
    if is_session_owner(owner) {
        owner
    } else {
        0
    }
}

/// Per-op errors of a failed multi: earlier ops Ok, the failing op its code, later ops
/// RuntimeInconsistency.
pub fn multi_error(op_count: usize, failed_index: usize, err: ErrorCode) -> Txn {
    let ops = (0..op_count)
        .map(|i| Txn::Error {
            err: if i < failed_index {
                ErrorCode::Ok
            } else if i == failed_index {
                err
            } else {
                ErrorCode::RuntimeInconsistency
            },
        })
        .collect();
    Txn::Multi { ops }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_encodings_are_distinct() {
        let ttl = ttl_owner(1000);
        assert_eq!(ttl_of(ttl), Some(1000));
        assert_eq!(ttl_of(CONTAINER_OWNER), None);
        assert_eq!(ttl_of(0x0100_0000_0000_0001), None);
        assert!(!is_session_owner(ttl));
        assert!(!is_session_owner(CONTAINER_OWNER));
        assert!(!is_session_owner(0));
        assert!(is_session_owner(0x0100_0000_0000_0001));
        assert_eq!(visible_owner(ttl), 0);
        assert_eq!(visible_owner(7), 7);
    }
}
