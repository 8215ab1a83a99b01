//! ACL records, the digest scheme's hashing and the ip scheme's matching.
//! Matches `DigestAuthenticationProvider` and `IPAuthenticationProvider`.

use crate::jute::{DecodeError, JStr, Reader, Record, Writer};
use base64::Engine;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub scheme: JStr,
    pub id: JStr,
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

impl Record for Id {
    const MIN_ENCODED_BYTES: usize = 8;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Id {
            scheme: r.string()?,
            id: r.string()?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_string(&self.scheme);
        w.put_string(&self.id);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    /// OPEN_ACL_UNSAFE: everything for everyone.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(super::perms::ALL, "world", "anyone")]
    }

    /// READ_ACL_UNSAFE, the ACL of /zookeeper/config.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(super::perms::READ, "world", "anyone")]
    }
}

impl Record for Acl {
    const MIN_ENCODED_BYTES: usize = 12;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Acl {
            perms: r.i32()?,
            id: Id::decode(r)?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i32(self.perms);
        self.id.encode(w);
    }
}

/// `user:BASE64(SHA1("user:password"))`, the id the digest scheme stores.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = sha1_smol::Sha1::from(user_password.as_bytes())
        .digest()
        .bytes();
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Is `id` a well-formed id for `scheme`? (The provider's isValid.)
pub fn is_valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        "world" => id == "anyone",
        "digest" => id.matches(':').count() == 1,
        // ZooKeeper 3.8's ip provider knows IPv4 addresses only: `::1` is an InvalidACL.
        "ip" => parse_ip_pattern(id).is_some_and(|(addr, _)| addr.is_ipv4()),
        "x509" | "sasl" => !id.is_empty(),
        _ => false,
    }
}

/// Parses `addr` or `addr/bits`.
pub fn parse_ip_pattern(pattern: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (pattern, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max_bits = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max_bits);
    (bits <= max_bits).then_some((addr, bits))
}

/// Does the ACL pattern `pattern` (ip scheme) cover the client address `client`?
pub fn ip_matches(pattern: &str, client: &str) -> bool {
    let Some((net, bits)) = parse_ip_pattern(pattern) else {
        return false;
    };
    let Ok(client) = client.parse::<IpAddr>() else {
        return false;
    };
    let (net, client, width_bits) = match (net, client) {
        (IpAddr::V4(n), IpAddr::V4(c)) => (u32::from(n) as u128, u32::from(c) as u128, 32),
        (IpAddr::V6(n), IpAddr::V6(c)) => (u128::from(n), u128::from(c), 128),
        (IpAddr::V4(n), IpAddr::V6(c)) => match c.to_ipv4_mapped() {
            Some(c) => (u32::from(n) as u128, u32::from(c) as u128, 32),
            None => return false,
        },
        (IpAddr::V6(_), IpAddr::V4(_)) => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width_bits - bits as u32;
    (net >> shift) == (client >> shift)
}

/// zkCli's `cdrwa` rendering of permission bits (in that order).
pub fn perms_to_letters(perms: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (super::perms::CREATE, 'c'),
        (super::perms::DELETE, 'd'),
        (super::perms::READ, 'r'),
        (super::perms::WRITE, 'w'),
        (super::perms::ADMIN, 'a'),
    ] {
        if perms & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Parses zkCli's permission letters; `None` on an unknown letter.
pub fn letters_to_perms(letters: &str) -> Option<i32> {
    let mut perms = 0;
    for c in letters.chars() {
        perms |= match c {
            'r' => super::perms::READ,
            'w' => super::perms::WRITE,
            'c' => super::perms::CREATE,
            'd' => super::perms::DELETE,
            'a' => super::perms::ADMIN,
            _ => return None,
        };
    }
    Some(perms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper_documented_example() {
        // Values printed by ZooKeeper 3.8's own DigestAuthenticationProvider main().
        assert_eq!(
            digest_id("super:superpw"),
            "super:g9oN2HttPfn8MMWJZ2r45Np/LIA="
        );
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn ip_patterns_match_by_prefix() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("127.0.0.2", "127.0.0.1"));
        assert!(ip_matches("127.0.0.0/8", "127.9.8.7"));
        assert!(!ip_matches("10.0.0.0/8", "127.9.8.7"));
        assert!(ip_matches("0.0.0.0/0", "1.2.3.4"));
        assert!(ip_matches("::1", "::1"));
        assert!(ip_matches("fe80::/16", "fe80::1"));
        assert!(!is_valid_id("ip", "300.1.1.1"));
        assert!(!is_valid_id("ip", "1.1.1.1/33"));
        assert!(is_valid_id("ip", "127.0.0.2/31"));
        assert!(is_valid_id("ip", "127.0.0.9/0"));
        assert!(!is_valid_id("ip", "::1"));
        assert!(!is_valid_id("ip", "::1/128"));
        assert!(!is_valid_id("ip", "127.0.0/8"));
        assert!(!is_valid_id("ip", "127.0.0.1/"));
        assert!(is_valid_id("digest", "u:abc="));
        assert!(!is_valid_id("digest", "nocolon"));
        assert!(!is_valid_id("world", "someone"));
    }

    #[test]
    fn perm_letters_round_trip() {
        assert_eq!(perms_to_letters(31), "cdrwa");
        assert_eq!(perms_to_letters(1), "r");
        assert_eq!(letters_to_perms("rw"), Some(3));
        assert_eq!(letters_to_perms("x"), None);
    }
}
