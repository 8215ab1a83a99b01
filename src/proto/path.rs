//! Znode path rules (PathUtils.validatePath) and path helpers.

/// Why a path is not a valid znode path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid path string \"{path}\": {reason}")]
pub struct InvalidPath {
    pub path: String,
    pub reason: &'static str,
}

/// Checks a full path as ZooKeeper does. `/` alone is valid. (U+D800..U+DFFF cannot occur
/// in a Rust string, so the surrogate part of ZooKeeper's U+D800..U+F8FF range is moot.)
pub fn validate(path: &str) -> Result<(), InvalidPath> {
    let fail = |reason| {
        Err(InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return fail("Path length must be > 0");
    }
    if !path.starts_with('/') {
        return fail("Path must start with / character");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return fail("Path must not end with / character");
    }
    for component in path[1..].split('/') {
        match component {
            "" => return fail("empty node name specified"),
            "." | ".." => return fail("relative paths not allowed"),
            _ => {}
        }
    }
    // Printable ASCII (the usual path) holds none of the characters refused below.
    if path.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    for c in path.chars() {
        let bad = matches!(
            c,
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}'
        );
        if bad {
            return fail("invalid character");
        }
    }
    Ok(())
}

/// The parent of a valid path (`/` for top-level nodes). `None` for `/` itself.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// The last component of a path.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Is `path` equal to `prefix` or below it? (`/` covers everything.)
pub fn is_at_or_below(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zookeeper_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/..a", "/a/b c", "/ü"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\u{0}",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/\u{fff0}",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        // Every ASCII character inside a name: only controls and DEL are refused.
        for b in 0u8..0x80 {
            let p = format!("/a{}b", b as char);
            assert_eq!(validate(&p).is_err(), b < 0x20 || b == 0x7f, "{p:?}");
        }
    }

    #[test]
    fn parent_and_name() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(is_at_or_below("/a", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
        assert!(is_at_or_below("/ab", "/"));
    }

    proptest! {
        #[test]
        fn valid_paths_have_a_valid_parent(s in "(/[a-z.]{1,3}){1,4}") {
            if validate(&s).is_ok() {
                let p = parent(&s).unwrap();
                prop_assert!(validate(p).is_ok());
                prop_assert_eq!(join(p, name(&s)), s.clone());
            }
        }
    }
}
