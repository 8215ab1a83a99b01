//! Client-side path checks and chroot mapping.
//!
//! [`validate_path`] is the Java client's `PathUtils.validatePath` with its exact messages
//! (zkCli prints them): positions are counted in UTF-16 units, as Java's `char` indexes,
//! and a character outside the Basic Multilingual Plane is refused at its high surrogate,
//! as Java refuses U+D800..U+F8FF. The server applies its own checks again
//! ([`crate::proto::path`]); these only make the client fail early with Java's text.
//!
//! Chroot mapping follows `ZooKeeper.prependChroot` and `ClientCnxn`'s notification path
//! conversion: the chroot is purely client-side.

/// Checks a znode path; the error is Java's `IllegalArgumentException` message.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".to_string());
    }
    let chars: Vec<u16> = path.encode_utf16().collect();
    if chars[0] != u16::from(b'/') {
        return Err("Path must start with / character".to_string());
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == u16::from(b'/') {
        return Err("Path must not end with / character".to_string());
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    let ends_component = |i: usize| i + 1 == chars.len() || chars[i + 1] == slash;
    let mut reason = None;
    let mut last = slash;
    for i in 1..chars.len() {
        let c = chars[i];
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == slash && last == slash {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == dot && last == dot {
            if chars[i - 2] == slash && ends_component(i) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == dot {
            if chars[i - 1] == slash && ends_component(i) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || (0xfff0..=0xffff).contains(&c)
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
        last = c;
    }
    match reason {
        Some(reason) => Err(format!("Invalid path string \"{path}\" caused by {reason}")),
        None => Ok(()),
    }
}

/// Checks the path a sequential create will produce (Java appends a digit first, so
/// `/a/` is a valid sequential prefix).
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), String> {
    if sequential {
        validate_path(&format!("{path}1"))
    } else {
        validate_path(path)
    }
}

/// The server's view of a client path.
pub fn prepend_chroot(chroot: Option<&str>, client_path: &str) -> String {
    match chroot {
        Some(root) if client_path == "/" => root.to_string(),
        Some(root) => format!("{root}{client_path}"),
        None => client_path.to_string(),
    }
}

/// The client's view of a server path: the chroot itself becomes `/`; a path that does
/// not reach below the chroot is left as it is (Java logs and keeps it).
pub fn strip_chroot(chroot: Option<&str>, server_path: &str) -> String {
    match chroot {
        Some(root) if server_path == root => "/".to_string(),
        Some(root) if server_path.len() > root.len() && server_path.starts_with(root) => {
            server_path[root.len()..].to_string()
        }
        _ => server_path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_messages() {
        assert_eq!(validate_path("/"), Ok(()));
        assert_eq!(validate_path("/a/b.c/..d"), Ok(()));
        assert_eq!(validate_path("").unwrap_err(), "Path length must be > 0");
        assert_eq!(
            validate_path("a").unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a/").unwrap_err(),
            "Path must not end with / character"
        );
        assert_eq!(
            validate_path("/a//b").unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/../b").unwrap_err(),
            "Invalid path string \"/a/../b\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            validate_path("/.").unwrap_err(),
            "Invalid path string \"/.\" caused by relative paths not allowed @1"
        );
        assert_eq!(
            validate_path("/a\u{1}").unwrap_err(),
            "Invalid path string \"/a\u{1}\" caused by invalid character @2"
        );
        assert_eq!(
            validate_path("/a\u{0}").unwrap_err(),
            "Invalid path string \"/a\u{0}\" caused by null character not allowed @2"
        );
        // U+1F600 is two UTF-16 units; Java stops at the first (a surrogate).
        assert_eq!(
            validate_path("/é\u{1F600}").unwrap_err(),
            "Invalid path string \"/é\u{1F600}\" caused by invalid character @2"
        );
        assert_eq!(validate_create_path("/a/", true), Ok(()));
        assert!(validate_create_path("/a/", false).is_err());
    }

    #[test]
    fn chroot_mapping() {
        assert_eq!(prepend_chroot(None, "/a"), "/a");
        assert_eq!(prepend_chroot(Some("/app"), "/"), "/app");
        assert_eq!(prepend_chroot(Some("/app"), "/a/b"), "/app/a/b");
        assert_eq!(strip_chroot(Some("/app"), "/app"), "/");
        assert_eq!(strip_chroot(Some("/app"), "/app/a"), "/a");
        assert_eq!(strip_chroot(Some("/app"), "/other"), "/other");
        assert_eq!(strip_chroot(None, "/x"), "/x");
    }
}
