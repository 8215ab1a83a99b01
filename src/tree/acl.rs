//! ACL checks and the ACL fix-up applied on create and setACL.
//! Matches `ZooKeeperServer.checkACL` and `PrepRequestProcessor.fixupACL`.

use crate::proto::acl::{ip_matches, is_valid_id};
use crate::proto::{Acl, ErrorCode, Id};
use std::collections::HashSet;
use std::sync::Arc;

/// ACL lists interned by content, one shared list per distinct ACL, as ZooKeeper's
/// `ReferenceCountedACLCache` does. Without it every znode held its own list, and a list
/// from a client's request kept its ids as slices of the connection's read buffer: each
/// node pinned a whole 16–64 KiB buffer, ~250 bytes a znode at a million nodes (heaptrack),
/// and every snapshot's ACL table had one entry per node.
///
/// The cache keeps its own copies (ids in their own allocations). Lists no node uses any
/// more are dropped when the cache has doubled since the last sweep, so the sweep costs
/// O(1) per insert over time.
#[derive(Debug, Default)]
pub struct AclCache {
    lists: HashSet<CachedList, ahash::RandomState>,
    sweep_at_len: usize,
}

/// A cached list, found by its content (`HashSet::get` with a `&[Acl]`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct CachedList(Arc<Vec<Acl>>);

impl std::borrow::Borrow<[Acl]> for CachedList {
    fn borrow(&self) -> &[Acl] {
        &self.0
    }
}

/// The fewest lists the cache holds before it sweeps.
const ACL_CACHE_MIN_SWEEP_LEN: usize = 64;

impl Clone for AclCache {
    /// A clone starts empty: two trees sharing cache entries would each count the other's
    /// reference as a use and never drop them. The clone's nodes still share their lists.
    fn clone(&self) -> AclCache {
        AclCache::default()
    }
}

impl AclCache {
    /// The cached list equal to `acl`, if there is one.
    pub fn get(&self, acl: &[Acl]) -> Option<Arc<Vec<Acl>>> {
        self.lists.get(acl).map(|cached| cached.0.clone())
    }

    /// The cached list equal to `acl`, cached first (as its own copy) if it is new.
    pub fn intern(&mut self, acl: &[Acl]) -> Arc<Vec<Acl>> {
        if let Some(hit) = self.lists.get(acl) {
            return hit.0.clone();
        }
        if self.lists.len() >= self.sweep_at_len.max(ACL_CACHE_MIN_SWEEP_LEN) {
            self.lists.retain(|cached| Arc::strong_count(&cached.0) > 1);
            self.sweep_at_len = self.lists.len() * 2;
        }
        let owned = Arc::new(owned_copy(acl));
        self.lists.insert(CachedList(owned.clone()));
        owned
    }

    /// How many lists are cached.
    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

/// `acl` with every id copied into its own allocation, so the list holds no slice of a
/// larger buffer (a request frame, a log batch).
pub fn owned_copy(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| Acl {
            perms: a.perms,
            id: Id::new(&a.id.scheme, &a.id.id),
        })
        .collect()
}

/// Does one of `auth_ids` hold `perm` under `acl`?
pub fn check(acl: &[Acl], perm: i32, auth_ids: &[Id], skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() {
        return true;
    }
    if auth_ids.iter().any(|id| &*id.scheme == "super") {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm != 0
            && (a.id.scheme.as_str() == "world" && a.id.id.as_str() == "anyone"
                || auth_ids.iter().any(|id| {
                    id.scheme == a.id.scheme
                        && match id.scheme.as_str() {
                            "ip" => ip_matches(&a.id.id, &id.id),
                            _ => id.id == a.id.id,
                        }
                }))
    })
}

/// Validates and normalises an ACL list from a client: dedupes, expands `auth` entries to
/// the caller's authenticated ids, rejects empty lists, unknown schemes and bad ids
/// (InvalidAcl) and lists too long for any txn (MarshallingError).
pub fn fixup(acl: &[Acl], auth_ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    /// Lists up to this long are de-duplicated by scanning (most ACLs have 1-3 entries);
    /// longer ones through a set, so a request's 60 000-entry list is not 10^9 compares.
    const SCAN_DEDUP_MAX: usize = 8;
    /// Encoded, each entry takes at least 12 bytes (perms and two string lengths): a
    /// list longer than this cannot be in a log record, and expanding `auth` entries into
    /// it (entries x the caller's ids) stops here instead of filling memory.
    const ENTRIES_MAX: usize = crate::storage::txn_log::RECORD_BYTES_MAX / 12;
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len().min(ENTRIES_MAX));
    let mut seen: Option<std::collections::HashSet<Acl>> = None;
    let mut push = |a: Acl| -> Result<(), ErrorCode> {
        if out.len() < SCAN_DEDUP_MAX {
            if !out.contains(&a) {
                out.push(a);
            }
            return Ok(());
        }
        let seen = seen.get_or_insert_with(|| out.iter().cloned().collect());
        if seen.insert(a.clone()) {
            if out.len() >= ENTRIES_MAX {
                return Err(ErrorCode::MarshallingError);
            }
            out.push(a);
        }
        Ok(())
    };
    for a in acl {
        match a.id.scheme.as_str() {
            "auth" => {
                let mut any = false;
                for id in auth_ids {
                    // ip ids are implicit on every connection and not "authenticated" users;
                    // ZooKeeper expands only ids whose provider isAuthenticated().
                    if matches!(id.scheme.as_str(), "digest" | "x509" | "sasl") {
                        any = true;
                        push(Acl {
                            perms: a.perms,
                            id: id.clone(),
                        })?;
                    }
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            scheme => {
                if !is_valid_id(scheme, &a.id.id) {
                    return Err(ErrorCode::InvalidAcl);
                }
                push(a.clone())?;
            }
        }
    }
    Ok(out)
}

/// getACL without ADMIN masks digest ids as `user:x` (ZooKeeper 3.8's behaviour).
pub fn masked_for_reader(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme.as_str() == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl::new(a.perms, "digest", &format!("{user}:x"))
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::perms;

    #[test]
    fn fixup_dedups_long_lists_in_order() {
        // Past the scanned prefix the set takes over; both keep the first of each entry.
        let acl: Vec<Acl> = (0..3000)
            .map(|i: i32| Acl::new(1 + i % 1000, "world", "anyone"))
            .collect();
        let out = fixup(&acl, &[]).unwrap();
        let perms: Vec<i32> = out.iter().map(|a| a.perms).collect();
        assert_eq!(perms, (1..=1000).collect::<Vec<i32>>());
        let short = [
            Acl::new(1, "world", "anyone"),
            Acl::new(2, "world", "anyone"),
            Acl::new(1, "world", "anyone"),
        ];
        assert_eq!(fixup(&short, &[]).unwrap().len(), 2);
    }

    #[test]
    fn world_digest_ip_and_super() {
        let ids = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h=")];
        assert!(check(&Acl::open_unsafe(), perms::WRITE, &ids, false));
        assert!(!check(&Acl::read_unsafe(), perms::WRITE, &ids, false));
        assert!(check(
            &[Acl::new(31, "digest", "u:h=")],
            perms::READ,
            &ids,
            false
        ));
        assert!(!check(
            &[Acl::new(31, "digest", "v:h=")],
            perms::READ,
            &ids,
            false
        ));
        assert!(check(
            &[Acl::new(1, "ip", "127.0.0.0/8")],
            perms::READ,
            &ids,
            false
        ));
        assert!(!check(
            &[Acl::new(1, "ip", "10.0.0.0/8")],
            perms::READ,
            &ids,
            false
        ));
        assert!(!check(
            &[Acl::new(2, "ip", "127.0.0.1")],
            perms::READ,
            &ids,
            false
        ));
        let sup = vec![Id::new("super", "")];
        assert!(check(
            &[Acl::new(1, "digest", "v:h=")],
            perms::ADMIN,
            &sup,
            false
        ));
        assert!(check(
            &[Acl::new(1, "digest", "v:h=")],
            perms::ADMIN,
            &[],
            true
        ));
        assert!(check(&[], perms::ADMIN, &[], false));
    }

    #[test]
    fn fixup_rules() {
        let ids = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:h=")];
        assert_eq!(fixup(&[], &ids), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup(&[Acl::new(31, "auth", "")], &ids),
            Ok(vec![Acl::new(31, "digest", "u:h=")])
        );
        assert_eq!(
            fixup(&[Acl::new(31, "auth", "")], &ids[..1]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(31, "world", "nobody")], &ids),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[Acl::new(31, "foo", "bar")], &ids),
            Err(ErrorCode::InvalidAcl)
        );
        let twice = [
            Acl::new(1, "world", "anyone"),
            Acl::new(1, "world", "anyone"),
        ];
        assert_eq!(fixup(&twice, &ids).unwrap().len(), 1);
    }
}
