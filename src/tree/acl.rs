//! ACL checks and the ACL fix-up applied on create and setACL.
//! Matches `ZooKeeperServer.checkACL` and `PrepRequestProcessor.fixupACL`.

use crate::proto::acl::{ip_matches, is_valid_id};
use crate::proto::{Acl, ErrorCode, Id};

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
/// the caller's authenticated ids, rejects empty lists, unknown schemes and bad ids.
pub fn fixup(acl: &[Acl], auth_ids: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let mut push = |a: Acl| {
        if !out.contains(&a) {
            out.push(a);
        }
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
                        });
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
                push(a.clone());
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
