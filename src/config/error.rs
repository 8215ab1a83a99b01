//! `ConfigError`: every way a zoo.cfg (or a file it pulls in) can be refused.
//!
//! Each variant renders as one line that starts with the place (`file:line` when the fault
//! sits on a line, `file` alone when something is missing) and names the key, so an operator
//! can go straight to the line. Values are printed with Rust's debug quoting, which escapes
//! control characters: a message never spans two lines.

use std::fmt;
use std::io;

/// Where a key, a value or a fault was found: a file as the operator named it, and a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as given on the command line or in the including file (not canonicalised).
    pub file: String,
    /// 1-based line of the key; `None` when the fault is about the whole file (a missing key).
    pub line: Option<u32>,
}

impl Location {
    /// A place on a line of `file`.
    pub fn line(file: &str, line: u32) -> Location {
        Location {
            file: file.to_string(),
            line: Some(line),
        }
    }

    /// The whole of `file`.
    pub fn file(file: &str) -> Location {
        Location {
            file: file.to_string(),
            line: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.file, line),
            None => write!(f, "{}", self.file),
        }
    }
}

/// A zoo.cfg that Corral refuses to run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, a directory).
    #[error("{file}: cannot read: {source}")]
    Unreadable {
        file: String,
        #[source]
        source: io::Error,
    },

    /// The file is larger than `CONFIG_BYTES_MAX`; zoo.cfg files are a few KiB.
    #[error("{file}: file is {size_bytes} bytes, more than the {limit_bytes} a config may have")]
    TooLarge {
        file: String,
        size_bytes: u64,
        limit_bytes: u64,
    },

    /// The Java-properties text itself is malformed (a bad `\uXXXX` escape).
    #[error("{at}: {message}")]
    Syntax { at: Location, message: String },

    /// A value does not parse as what its key takes.
    #[error("{at}: {key}: expected {expected}, got {value:?}")]
    InvalidValue {
        at: Location,
        key: String,
        expected: &'static str,
        value: String,
    },

    /// A key that must be set is absent (or set to ZooKeeper's "unset" value, like tickTime=0).
    #[error("{at}: {key} is not set")]
    NotSet { at: Location, key: String },

    /// A `server.N`, `group.N` or `weight.N` line does not follow ZooKeeper's syntax.
    #[error("{at}: {key}: {reason}: {value:?}")]
    BadMember {
        at: Location,
        key: String,
        value: String,
        reason: String,
    },

    /// Each value parses, but together they break a rule (min > max, ports equal, ...).
    #[error("{at}: {key}: {message}")]
    Inconsistent {
        at: Location,
        key: String,
        message: String,
    },

    /// A key in the `corral.` namespace that Corral does not know: a typo, refused loudly.
    #[error("{at}: {key}: unknown Corral key (known: {known})")]
    UnknownCorralKey {
        at: Location,
        key: String,
        known: &'static str,
    },

    /// Quorum mode needs `<dataDir>/myid`.
    #[error("{at}: myid file is missing: {path}")]
    MyidMissing { at: Location, path: String },

    /// `<dataDir>/myid` exists but its first line is not a usable server id.
    #[error("{path}:1: myid: {reason}, got {content:?}")]
    BadMyid {
        path: String,
        content: String,
        reason: String,
    },

    /// The id in myid has no `server.N` line (also a server a reconfig removed, whose
    /// dynamic file leaves it out: ZooKeeper 3.8 exits then with "My id N not in the peer
    /// list").
    #[error("{at}: myid {id} (from {path}) matches no server.N line: my id {id} is not in the peer list")]
    MyidNotListed { at: Location, id: u64, path: String },
}
