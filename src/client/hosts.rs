//! Connect strings (`h1:p1,h2:p2[/chroot]`) and the rotation over their hosts.
//!
//! Matches the Java client's `ConnectStringParser` (chroot = everything from the first `/`,
//! `/` alone means none; hosts split on `,`, trimmed, empty ones dropped; `[v6]:port`;
//! a missing or trailing-colon port means 2181) and `StaticHostProvider` (the list is
//! shuffled once; `next` walks it round-robin and pauses when it comes back to the host it
//! last connected to). Names are resolved at connect time, not at parse time, so a host
//! that does not resolve only costs one attempt.

use super::path::validate_path;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The port used when a host has none.
pub const PORT_DEFAULT: u16 = 2181;

/// How long `next` pauses after a full round of hosts failed (StaticHostProvider's
/// spin delay), so that a dead ensemble is not hammered.
pub const ROUND_PAUSE_MS: u64 = 1000;

/// Why a connect string was refused. Messages are the Java client's exception texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectStringError {
    /// Java: `NumberFormatException` from `Integer.parseInt(port)`.
    #[error("For input string: \"{0}\"")]
    InvalidPort(String),
    /// Java: `IllegalArgumentException` from the chroot's path validation or an IPv6 form.
    #[error("{0}")]
    Invalid(String),
    /// Java: `IllegalArgumentException("A HostProvider may not be empty!")`.
    #[error("A HostProvider may not be empty!")]
    NoHosts,
}

/// One unresolved `host:port` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    pub hosts: Vec<HostPort>,
    /// The chroot without trailing `/`; `None` when absent or `/`.
    pub chroot: Option<String>,
}

impl ConnectString {
    pub fn parse(connect_string: &str) -> Result<ConnectString, ConnectStringError> {
        let (host_part, chroot) = match connect_string.find('/') {
            Some(at) => {
                let chroot = &connect_string[at..];
                let chroot = if chroot.len() == 1 {
                    None
                } else {
                    validate_path(chroot).map_err(ConnectStringError::Invalid)?;
                    Some(chroot.to_string())
                };
                (&connect_string[..at], chroot)
            }
            None => (connect_string, None),
        };
        let mut hosts = Vec::new();
        for entry in host_part
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
        {
            hosts.push(parse_host_port(entry)?);
        }
        if hosts.is_empty() {
            return Err(ConnectStringError::NoHosts);
        }
        Ok(ConnectString { hosts, chroot })
    }
}

fn parse_port(text: &str) -> Result<u16, ConnectStringError> {
    // Java parses an int first (NumberFormatException), then InetSocketAddress refuses
    // values outside 0..=65535 with its own message.
    let port: i32 = text
        .parse()
        .map_err(|_| ConnectStringError::InvalidPort(text.to_string()))?;
    u16::try_from(port)
        .map_err(|_| ConnectStringError::Invalid(format!("port out of range:{port}")))
}

fn parse_host_port(entry: &str) -> Result<HostPort, ConnectStringError> {
    if let Some(rest) = entry.strip_prefix('[') {
        let Some(close) = rest.rfind(']') else {
            return Err(ConnectStringError::Invalid(format!(
                "{entry} starts with '[' but has no matching ']'"
            )));
        };
        let host = &rest[..close];
        if host.is_empty() {
            return Err(ConnectStringError::Invalid(format!("{host} is empty.")));
        }
        let after = &rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => PORT_DEFAULT,
            None => {
                return Err(ConnectStringError::Invalid(format!(
                    "Port must be separated from the IPv6 address with :, found: {entry}"
                )))
            }
        };
        return Ok(HostPort {
            host: host.to_string(),
            port,
        });
    }
    let (host, port) = match entry.rfind(':') {
        // A colon at the very end is ignored, as Java does.
        Some(at) if at + 1 < entry.len() => (&entry[..at], parse_port(&entry[at + 1..])?),
        Some(at) => (&entry[..at], PORT_DEFAULT),
        None => (entry, PORT_DEFAULT),
    };
    Ok(HostPort {
        host: host.to_string(),
        port,
    })
}

/// A random `u64` from the standard library's per-process hash keys: enough to shuffle a
/// host list without a random-number crate.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// The rotation over a connect string's hosts (StaticHostProvider).
#[derive(Debug)]
pub struct HostList {
    hosts: Vec<HostPort>,
    /// Index of the host tried last; `None` before the first attempt.
    current: Option<usize>,
    /// Index of the host we last connected to (or the first one tried).
    last_connected: Option<usize>,
}

impl HostList {
    /// Shuffles `hosts` with `seed` (Fisher-Yates); seed 0 keeps the given order.
    pub fn new(mut hosts: Vec<HostPort>, seed: u64) -> HostList {
        assert!(!hosts.is_empty(), "a host list is never empty");
        if seed != 0 {
            let mut state = seed;
            for i in (1..hosts.len()).rev() {
                // xorshift64: cheap and good enough to spread clients over an ensemble.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                hosts.swap(i, (state % (i as u64 + 1)) as usize);
            }
        }
        HostList {
            hosts,
            current: None,
            last_connected: None,
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    pub fn hosts(&self) -> &[HostPort] {
        &self.hosts
    }

    /// The next host to try, and how long to pause before trying it (a pause only when a
    /// whole round has failed since the last successful connection).
    pub fn next_host(&mut self) -> (HostPort, Duration) {
        let next = match self.current {
            Some(i) if i + 1 < self.hosts.len() => i + 1,
            _ => 0,
        };
        self.current = Some(next);
        let pause = if self.last_connected == Some(next) {
            Duration::from_millis(ROUND_PAUSE_MS)
        } else {
            Duration::ZERO
        };
        if self.last_connected.is_none() {
            // The very first attempt does not pause; later rounds pause when they wrap
            // back to this host.
            self.last_connected = Some(next);
        }
        (self.hosts[next].clone(), pause)
    }

    /// Records that the host returned last by `next` accepted the session.
    pub fn on_connected(&mut self) {
        self.last_connected = self.current;
    }
}

/// Resolves a host entry; the first address wins (Java resolves and shuffles all of them,
/// which only matters for names with several addresses).
pub fn resolve(host: &HostPort) -> std::io::Result<SocketAddr> {
    (host.host.as_str(), host.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses_hosts_ports_and_chroot() {
        let cs = ConnectString::parse("a:1, b ,c:/app/x").unwrap();
        assert_eq!(cs.hosts, vec![hp("a", 1), hp("b", 2181), hp("c", 2181)]);
        assert_eq!(cs.chroot.as_deref(), Some("/app/x"));
        let cs = ConnectString::parse("127.0.0.1:22281/").unwrap();
        assert_eq!(cs.hosts, vec![hp("127.0.0.1", 22281)]);
        assert_eq!(cs.chroot, None);
        let cs = ConnectString::parse("[::1]:3000,[fe80::1]").unwrap();
        assert_eq!(cs.hosts, vec![hp("::1", 3000), hp("fe80::1", 2181)]);
        assert_eq!(cs.hosts[0].to_string(), "[::1]:3000");
    }

    #[test]
    fn refuses_what_java_refuses() {
        assert_eq!(
            ConnectString::parse("a:x"),
            Err(ConnectStringError::InvalidPort("x".into()))
        );
        assert_eq!(
            ConnectString::parse("a:1/bad/").unwrap_err().to_string(),
            "Path must not end with / character"
        );
        assert_eq!(
            ConnectString::parse(" , /x"),
            Err(ConnectStringError::NoHosts)
        );
        assert!(ConnectString::parse("[::1").is_err());
    }

    #[test]
    fn rotation_pauses_only_after_a_full_failed_round() {
        let mut list = HostList::new(vec![hp("a", 1), hp("b", 2)], 0);
        assert_eq!(list.next_host(), (hp("a", 1), Duration::ZERO));
        assert_eq!(list.next_host(), (hp("b", 2), Duration::ZERO));
        assert_eq!(list.next_host().1, Duration::from_millis(ROUND_PAUSE_MS));
        list.next_host();
        list.on_connected();
        // Connected to b: the next round starts at a and pauses when it comes back to b.
        assert_eq!(list.next_host(), (hp("a", 1), Duration::ZERO));
        assert_eq!(
            list.next_host(),
            (hp("b", 2), Duration::from_millis(ROUND_PAUSE_MS))
        );
    }

    #[test]
    fn shuffle_keeps_every_host() {
        let hosts: Vec<HostPort> = (0..7).map(|i| hp("h", i)).collect();
        let list = HostList::new(hosts.clone(), 0x1234_5678_9abc_def1);
        let mut ports: Vec<u16> = list.hosts().iter().map(|h| h.port).collect();
        ports.sort();
        assert_eq!(ports, (0..7).collect::<Vec<u16>>());
    }
}
