//! zkCli's ACL argument (`scheme:id:perms[,...]`), as `AclParser` reads it: entries that
//! do not have two colons are reported and skipped, unknown permission letters are
//! reported and ignored, the id is everything between the first and the last colon
//! (so `digest:user:hash:cdrwa` works).

use crate::proto::{perms, Acl};

/// Java's `String.split(",")`: trailing empty pieces are dropped, and an empty string
/// is one empty piece.
pub fn java_split(s: &str, separator: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(separator).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// The ACL list and the warnings zkCli prints to stderr while reading it.
pub fn parse_acl(text: &str) -> (Vec<Acl>, Vec<String>) {
    let mut acl = Vec::new();
    let mut warnings = Vec::new();
    for entry in java_split(text, ',') {
        let (Some(first), Some(last)) = (entry.find(':'), entry.rfind(':')) else {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            warnings.push(format!("{entry} does not have the form scheme:id:perm"));
            continue;
        }
        let mut bits = 0;
        for c in entry[last + 1..].chars() {
            bits |= match c {
                'r' => perms::READ,
                'w' => perms::WRITE,
                'c' => perms::CREATE,
                'd' => perms::DELETE,
                'a' => perms::ADMIN,
                other => {
                    warnings.push(format!("Unknown perm type: {other}"));
                    0
                }
            };
        }
        acl.push(Acl::new(bits, &entry[..first], &entry[first + 1..last]));
    }
    (acl, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_acl_parser() {
        let (acl, warnings) = parse_acl("world:anyone:r,digest:u:p:cdrwa");
        assert_eq!(
            acl,
            vec![
                Acl::new(1, "world", "anyone"),
                Acl::new(31, "digest", "u:p")
            ]
        );
        assert!(warnings.is_empty());
        let (acl, warnings) = parse_acl("world:anyone:r,digest:bad");
        assert_eq!(acl.len(), 1);
        assert_eq!(
            warnings,
            vec!["digest:bad does not have the form scheme:id:perm"]
        );
        let (acl, warnings) = parse_acl("ip:1.2.3.4:rwx");
        assert_eq!(acl, vec![Acl::new(3, "ip", "1.2.3.4")]);
        assert_eq!(warnings, vec!["Unknown perm type: x"]);
        let (acl, warnings) = parse_acl("foo");
        assert!(acl.is_empty());
        assert_eq!(warnings, vec!["foo does not have the form scheme:id:perm"]);
        let (acl, _) = parse_acl("world:anyone:,");
        assert_eq!(acl, vec![Acl::new(0, "world", "anyone")]);
    }

    #[test]
    fn split_drops_trailing_empties_like_java() {
        assert_eq!(java_split("a,,b,,", ','), vec!["a", "", "b"]);
        assert_eq!(java_split("", ','), vec![""]);
        assert_eq!(java_split(",", ','), Vec::<&str>::new());
        assert_eq!(java_split(",a", ','), vec!["", "a"]);
    }
}
