//! Ensemble membership: `server.N`, `group.N` and `weight.N` lines, hosts, and the
//! `/zookeeper/config` text.
//!
//! Matches ZooKeeper's `QuorumPeer.QuorumServer` (line syntax), `ConfigUtils.getHostAndPort`
//! (IPv6 in brackets) and `QuorumMaj` / `QuorumHierarchical.toString` (the rendered text).
//!
//! `server.<id>=<host>:<quorumPort>:<electionPort>[:participant|:observer][;[<clientHost>:]<clientPort>]`
//! - at most one `;`; the server part may hold several `|`-separated addresses only with
//!   `multiAddress.enabled=true`;
//! - `[v6addr]` for IPv6 hosts, in both parts; a client part without a host means 0.0.0.0;
//! - quorum and election ports differ; the role is case-insensitive, default participant.
//!
//! Stricter than ZooKeeper (which accepts these and fails later, or never): ids outside
//! 1..=255 (ids are the high byte of session ids), empty hosts, port 0 for quorum or
//! election, a group naming an unknown or observer server, a weight for an unknown server.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Highest server id: ids are the top byte of session ids (`SessionTracker`).
pub const SERVER_ID_MAX: u64 = 255;
/// Highest server id when TTL nodes are on: a 0xFF top byte marks extended ephemeral owners.
pub const SERVER_ID_MAX_EXTENDED_TYPES: u64 = 254;

/// A host as written in the config: an IP literal or a name resolved when used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// Parses `1.2.3.4`, `::1`, `[::1]` or a DNS name. `None` for empty or odd text.
    pub fn parse(text: &str) -> Option<Host> {
        let inner = match text.strip_prefix('[') {
            Some(rest) => rest.strip_suffix(']')?,
            None => text,
        };
        if let Ok(ip) = inner.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        if inner.len() != text.len() {
            // Brackets around something that is not an IPv6 literal.
            return None;
        }
        let valid = !inner.is_empty()
            && inner.len() <= 253
            && inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        valid.then(|| Host::Name(inner.to_string()))
    }

    /// The wildcard address ZooKeeper binds when only a port is given.
    pub fn wildcard() -> Host {
        Host::Ip(IpAddr::from([0, 0, 0, 0]))
    }

    /// The host as Java's `InetAddress.getHostAddress` / `getHostString` prints it: IPv6
    /// uncompressed (`0:0:0:0:0:0:0:1`), names unchanged.
    pub fn java_form(&self) -> String {
        match self {
            Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
            Host::Ip(IpAddr::V6(v6)) => java_ipv6(v6),
            Host::Name(name) => name.clone(),
        }
    }

    /// `host:port` in Java's form, IPv6 in brackets.
    pub fn java_form_with_port(&self, port: u16) -> String {
        match self {
            Host::Ip(IpAddr::V6(_)) => format!("[{}]:{}", self.java_form(), port),
            _ => format!("{}:{}", self.java_form(), port),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => write!(f, "{name}"),
        }
    }
}

fn java_ipv6(v6: &Ipv6Addr) -> String {
    let groups: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
    groups.join(":")
}

/// Whether a member votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Votes, can lead (ZooKeeper's `LearnerType.PARTICIPANT`, ordinal 0).
    Participant,
    /// Serves reads, forwards writes, never votes (`LearnerType.OBSERVER`, ordinal 1).
    Observer,
}

impl Role {
    /// The word used in `server.N` lines and `/zookeeper/config`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        }
    }

    /// The number the `conf` four-letter word prints as `peerType=`.
    pub fn ordinal(self) -> u8 {
        match self {
            Role::Participant => 0,
            Role::Observer => 1,
        }
    }

    /// Parses `participant` / `observer`, case-insensitively as ZooKeeper does.
    pub fn parse(text: &str) -> Option<Role> {
        if text.eq_ignore_ascii_case("participant") {
            Some(Role::Participant)
        } else if text.eq_ignore_ascii_case("observer") {
            Some(Role::Observer)
        } else {
            None
        }
    }
}

/// One address pair of a member (more than one only with `multiAddress.enabled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAddress {
    pub host: Host,
    pub quorum_port: u16,
    pub election_port: u16,
}

/// One `server.N` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// N, in 1..=255.
    pub id: u64,
    /// First (usually only) address: followers reach the leader on `quorum_port`, elections
    /// run on `election_port`.
    pub host: Host,
    pub quorum_port: u16,
    pub election_port: u16,
    pub role: Role,
    /// The `;[host:]port` part: where this member serves clients (host 0.0.0.0 if omitted).
    pub client_address: Option<(Host, u16)>,
    /// Further `|`-separated addresses (multiAddress).
    pub extra_addresses: Vec<QuorumAddress>,
}

/// One `group.N=a:b:c` line of a hierarchical quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub id: u64,
    pub members: Vec<u64>,
}

/// The voting configuration: what `/zookeeper/config` shows and reconfig replaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// Sorted by id.
    pub servers: Vec<ServerSpec>,
    /// Empty for a majority quorum.
    pub groups: Vec<GroupSpec>,
    /// Explicit `weight.N` values; members of a group without one weigh 1.
    pub weights: BTreeMap<u64, u64>,
    /// Zxid of the reconfig that produced this membership; 0 for a static config.
    pub version: u64,
}

/// Renders `/zookeeper/config` (and the `membership:` part of `conf`): one line per member
/// (`server.1=127.0.0.1:2888:3888:participant`, `;clientHost:clientPort` when the line had a
/// client part), then `group.N` and `weight.N` lines for hierarchical quorums, then
/// `version=<hex>`. No trailing newline, as ZooKeeper.
pub fn render_membership(membership: &Membership) -> String {
    let mut out = String::new();
    for server in &membership.servers {
        out.push_str(&format!("server.{}=", server.id));
        let first = QuorumAddress {
            host: server.host.clone(),
            quorum_port: server.quorum_port,
            election_port: server.election_port,
        };
        let addresses: Vec<String> = std::iter::once(&first)
            .chain(server.extra_addresses.iter())
            .map(|a| {
                format!(
                    "{}:{}",
                    a.host.java_form_with_port(a.quorum_port),
                    a.election_port
                )
            })
            .collect();
        out.push_str(&addresses.join("|"));
        out.push(':');
        out.push_str(server.role.as_str());
        if let Some((host, port)) = &server.client_address {
            out.push(';');
            out.push_str(&host.java_form_with_port(*port));
        }
        out.push('\n');
    }
    if !membership.groups.is_empty() {
        for group in &membership.groups {
            let members: Vec<String> = group.members.iter().map(u64::to_string).collect();
            out.push_str(&format!("group.{}={}\n", group.id, members.join(":")));
        }
        for server in membership
            .servers
            .iter()
            .filter(|s| s.role == Role::Participant)
        {
            let weight = membership.weights.get(&server.id).copied().unwrap_or(1);
            out.push_str(&format!("weight.{}={}\n", server.id, weight));
        }
    }
    out.push_str(&format!("version={:x}", membership.version));
    out
}

/// Why a member line was refused; the caller adds file, line, key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberError(pub String);

const SERVER_FORM: &str =
    "expected host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]";

/// Parses the id in `server.N`, `group.N`, `weight.N`.
pub(crate) fn parse_member_id(text: &str, max: u64) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u64 = text.parse().ok()?;
    (1..=max).contains(&id).then_some(id)
}

/// Parses the value of `server.<id>`.
pub(crate) fn parse_server(
    id: u64,
    value: &str,
    multi_address_enabled: bool,
) -> Result<ServerSpec, MemberError> {
    let mut parts = value.split(';');
    let server_part = parts.next().unwrap_or("");
    let client_part = parts.next();
    if parts.next().is_some() {
        return Err(MemberError(format!("more than one ';' ({SERVER_FORM})")));
    }
    let mut addresses = Vec::new();
    let mut role: Option<Role> = None;
    for address_text in server_part.split('|') {
        let fields = split_host_and_ports(address_text)?;
        if fields.len() != 3 && fields.len() != 4 {
            return Err(MemberError(SERVER_FORM.to_string()));
        }
        let host = parse_host(fields[0])?;
        let quorum_port = parse_port(fields[1], "quorum port")?;
        let election_port = parse_port(fields[2], "election port")?;
        if quorum_port == election_port {
            return Err(MemberError(format!(
                "quorum port and election port must differ (both {quorum_port})"
            )));
        }
        let address_role = match fields.get(3) {
            Some(word) => Role::parse(word).ok_or_else(|| {
                MemberError(format!(
                    "unrecognised peer type {word:?} (participant or observer)"
                ))
            })?,
            None => Role::Participant,
        };
        if role.is_some_and(|r| r != address_role) {
            return Err(MemberError(
                "addresses of one server disagree on its role".to_string(),
            ));
        }
        role = Some(address_role);
        addresses.push(QuorumAddress {
            host,
            quorum_port,
            election_port,
        });
    }
    if addresses.len() > 1 && !multi_address_enabled {
        return Err(MemberError(format!(
            "multiple addresses for server {id}, but multiAddress.enabled is not true"
        )));
    }
    let client_address = match client_part {
        None => None,
        Some(text) => Some(parse_client_part(text)?),
    };
    let mut addresses = addresses.into_iter();
    let Some(first) = addresses.next() else {
        // `split` always yields at least one item, and each item either parsed or returned.
        return Err(MemberError(SERVER_FORM.to_string()));
    };
    Ok(ServerSpec {
        id,
        host: first.host,
        quorum_port: first.quorum_port,
        election_port: first.election_port,
        role: role.unwrap_or(Role::Participant),
        client_address,
        extra_addresses: addresses.collect(),
    })
}

/// `port`, `host:port` or `[v6]:port`.
fn parse_client_part(text: &str) -> Result<(Host, u16), MemberError> {
    let fields = split_host_and_ports(text)?;
    match fields.as_slice() {
        [port] => Ok((Host::wildcard(), parse_port(port, "client port")?)),
        [host, port] => Ok((parse_host(host)?, parse_port(port, "client port")?)),
        _ => Err(MemberError(format!(
            "client part {text:?} is not port or host:port"
        ))),
    }
}

/// Splits on `:`, keeping a leading `[v6]` whole (brackets stripped), as
/// `ConfigUtils.getHostAndPort`.
fn split_host_and_ports(text: &str) -> Result<Vec<&str>, MemberError> {
    if let Some(rest) = text.strip_prefix('[') {
        let Some(end) = rest.find("]:") else {
            return Err(MemberError(
                "starts with '[' but has no matching ']:'".to_string(),
            ));
        };
        let mut fields = vec![&rest[..end]];
        fields.extend(rest[end + 2..].split(':'));
        return Ok(fields);
    }
    Ok(text.split(':').collect())
}

fn parse_host(text: &str) -> Result<Host, MemberError> {
    Host::parse(text).ok_or_else(|| MemberError(format!("invalid host {text:?}")))
}

fn parse_port(text: &str, what: &str) -> Result<u16, MemberError> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(MemberError(format!(
            "{what} {text:?} is not a port number (1-65535)"
        ))),
    }
}

/// Parses the value of `group.<id>`: server ids separated by `:`.
pub(crate) fn parse_group(id: u64, value: &str) -> Result<GroupSpec, MemberError> {
    let mut members = Vec::new();
    for text in value.split(':') {
        let member = parse_member_id(text, SERVER_ID_MAX)
            .ok_or_else(|| MemberError(format!("{text:?} is not a server id (1-255)")))?;
        if members.contains(&member) {
            return Err(MemberError(format!("server {member} is listed twice")));
        }
        members.push(member);
    }
    Ok(GroupSpec { id, members })
}

/// Checks a hierarchical quorum against the servers: each participant in exactly one group,
/// only participants in groups, weights only for participants.
pub(crate) fn check_groups(
    servers: &[ServerSpec],
    groups: &[GroupSpec],
    weights: &BTreeMap<u64, u64>,
) -> Result<(), MemberError> {
    let role_of = |id: u64| servers.iter().find(|s| s.id == id).map(|s| s.role);
    for id in weights.keys() {
        if role_of(*id) != Some(Role::Participant) {
            return Err(MemberError(format!(
                "weight.{id} names no participant server"
            )));
        }
    }
    if groups.is_empty() {
        return Ok(());
    }
    let mut group_of: BTreeMap<u64, u64> = BTreeMap::new();
    for group in groups {
        for &member in &group.members {
            match role_of(member) {
                None => {
                    return Err(MemberError(format!(
                        "group.{} names server {member}, which has no server.{member} line",
                        group.id
                    )))
                }
                Some(Role::Observer) => {
                    return Err(MemberError(format!(
                        "group.{} names server {member}, an observer",
                        group.id
                    )))
                }
                Some(Role::Participant) => {}
            }
            if let Some(other) = group_of.insert(member, group.id) {
                return Err(MemberError(format!(
                    "server {member} is in group.{other} and group.{}",
                    group.id
                )));
            }
        }
    }
    for server in servers.iter().filter(|s| s.role == Role::Participant) {
        if !group_of.contains_key(&server.id) {
            return Err(MemberError(format!(
                "server {} is not in a group",
                server.id
            )));
        }
    }
    Ok(())
}

/// Parses the text of `/zookeeper/config` (what [`render_membership`] writes): `server.N`
/// lines and a `version=<hex>` line. Group and weight lines are refused (hierarchical
/// quorums do not reconfigure here). Used when a committed reconfig is activated and when a
/// server reads the membership a snapshot brought.
pub fn parse_membership_text(text: &str) -> Result<Membership, String> {
    let mut servers: Vec<ServerSpec> = Vec::new();
    let mut version = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("not key=value: {line:?}"));
        };
        if key == "version" {
            version = Some(
                u64::from_str_radix(value, 16)
                    .map_err(|_| format!("version {value:?} is not hex"))?,
            );
            continue;
        }
        let id = key
            .strip_prefix("server.")
            .and_then(|n| parse_member_id(n, SERVER_ID_MAX))
            .ok_or_else(|| format!("unexpected key {key:?}"))?;
        let spec = parse_server(id, value, true).map_err(|e| format!("server.{id}: {}", e.0))?;
        if servers.iter().any(|s| s.id == id) {
            return Err(format!("server.{id} twice"));
        }
        servers.push(spec);
    }
    servers.sort_by_key(|s| s.id);
    Ok(Membership {
        servers,
        groups: Vec::new(),
        weights: BTreeMap::new(),
        version: version.ok_or("no version line")?,
    })
}

/// What a `reconfig` asks for (ZooKeeper's `ReconfigRequest`, already split).
#[derive(Debug, Clone, Default)]
pub struct ReconfigChange<'a> {
    /// `-add`: comma-separated `server.N=...` specs.
    pub joining: Option<&'a str>,
    /// `-remove`: comma-separated ids.
    pub leaving: Option<&'a str>,
    /// `-members`: the whole new membership, comma- or newline-separated.
    pub new_members: Option<&'a str>,
}

/// The membership a reconfig leads to, from `current`, as ZooKeeper's
/// `PrepRequestProcessor` builds it: non-incremental (`new_members`) replaces every line;
/// incremental removes the leaving ids, then adds (or replaces) the joining servers, each
/// of which must name a client port (`;port`). `Err` is the message of ZooKeeper's
/// `BadArgumentsException`. The version is left to the caller (the reconfig's zxid).
pub fn apply_reconfig(current: &Membership, change: &ReconfigChange) -> Result<Membership, String> {
    let mut next: BTreeMap<u64, ServerSpec> = BTreeMap::new();
    let spec_of = |text: &str| -> Result<ServerSpec, String> {
        let Some((key, value)) = text.trim().split_once('=') else {
            return Err("Wrong format of server string".to_string());
        };
        let id_text = key.trim().rsplit('.').next().unwrap_or("");
        let id = parse_member_id(id_text, SERVER_ID_MAX)
            .ok_or_else(|| "Reconfiguration failed".to_string())?;
        parse_server(id, value.trim(), true).map_err(|_| "Reconfiguration failed".to_string())
    };
    if let Some(members) = change.new_members {
        for line in members
            .split([',', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let spec = spec_of(line)?;
            next.insert(spec.id, spec);
        }
    } else {
        if !current.groups.is_empty() || !current.weights.is_empty() {
            return Err("Incremental reconfiguration requested but last configuration seen has a non-majority quorum system".to_string());
        }
        next.extend(current.servers.iter().map(|s| (s.id, s.clone())));
        for leaving in change.leaving.unwrap_or("").split(',').map(str::trim) {
            if leaving.is_empty() {
                continue;
            }
            let id: u64 = leaving
                .parse()
                .map_err(|_| "Reconfiguration failed".to_string())?;
            next.remove(&id);
        }
        for joining in change.joining.unwrap_or("").split(',') {
            if joining.trim().is_empty() {
                continue;
            }
            let spec = spec_of(joining)?;
            if spec.client_address.is_none() {
                return Err(
                    "Wrong format of server string - each server should have 3 ports specified"
                        .to_string(),
                );
            }
            for other in next.values().filter(|o| o.id != spec.id) {
                let clash = other.host == spec.host
                    && [other.quorum_port, other.election_port]
                        .iter()
                        .any(|p| *p == spec.quorum_port || *p == spec.election_port);
                if clash {
                    return Err("Reconfiguration failed".to_string());
                }
            }
            next.insert(spec.id, spec);
        }
    }
    Ok(Membership {
        servers: next.into_values().collect(),
        groups: Vec::new(),
        weights: BTreeMap::new(),
        version: current.version,
    })
}

/// The text of a dynamic config file (`zoo.cfg.dynamic.<hex version>`), as ZooKeeper's
/// `QuorumPeerConfig.writeDynamicConfig` writes it: the membership's lines without the
/// version (which is in the file name), no newline after the last.
pub fn render_dynamic_file(membership: &Membership) -> String {
    let text = render_membership(membership);
    match text.rsplit_once('\n') {
        Some((lines, _version)) => lines.to_string(),
        None => String::new(),
    }
}

/// The name of the dynamic file of version `version` next to static config `static_name`
/// (`zoo.cfg` -> `zoo.cfg.dynamic.100000000`), as `QuorumPeer.makeDynamicConfigFilename`.
pub fn dynamic_file_name(static_name: &str, version: u64) -> String {
    format!("{static_name}.dynamic.{version:x}")
}

/// A static config pointed at a dynamic file, as ZooKeeper's `editStaticConfig` leaves
/// it: every line but the membership ones (`server.N`, `group.N`, `weight.N`), `peerType`
/// (the role is in the membership) and any old `dynamicConfigFile`, then
/// `dynamicConfigFile=<path>`. Unlike ZooKeeper, the other lines
/// keep their order and comments (Java rewrites them in hash order).
pub fn edit_static_config(text: &str, dynamic_path: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let key = line
            .trim_start()
            .split(['=', ':', ' ', '\t'])
            .next()
            .unwrap_or("");
        let membership_line = ["server.", "group.", "weight."]
            .iter()
            .any(|prefix| key.starts_with(prefix));
        if membership_line || key == "dynamicConfigFile" || key == "peerType" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("dynamicConfigFile={dynamic_path}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(text: &str) -> Host {
        Host::Ip(text.parse().expect("ip literal"))
    }

    #[test]
    fn plain_server_line() {
        let s = parse_server(1, "127.0.0.1:2888:3888", false).expect("valid");
        assert_eq!(s.id, 1);
        assert_eq!(s.host, ip("127.0.0.1"));
        assert_eq!((s.quorum_port, s.election_port), (2888, 3888));
        assert_eq!(s.role, Role::Participant);
        assert_eq!(s.client_address, None);
        assert!(s.extra_addresses.is_empty());
    }

    #[test]
    fn roles_case_insensitive() {
        assert_eq!(
            parse_server(4, "h:1:2:observer", false).expect("ok").role,
            Role::Observer
        );
        assert_eq!(
            parse_server(4, "h:1:2:OBSERVER", false).expect("ok").role,
            Role::Observer
        );
        assert_eq!(
            parse_server(4, "h:1:2:participant", false)
                .expect("ok")
                .role,
            Role::Participant
        );
        let err = parse_server(4, "h:1:2:leader", false).expect_err("bad role");
        assert!(err.0.contains("unrecognised peer type"), "{}", err.0);
    }

    #[test]
    fn client_part_forms() {
        let s = parse_server(1, "10.0.0.1:2888:3888;2181", false).expect("ok");
        assert_eq!(s.client_address, Some((Host::wildcard(), 2181)));
        let s =
            parse_server(1, "10.0.0.1:2888:3888:participant;127.0.0.1:2182", false).expect("ok");
        assert_eq!(s.client_address, Some((ip("127.0.0.1"), 2182)));
        let s = parse_server(1, "zk1.example:2888:3888;zk1.example:2183", false).expect("ok");
        assert_eq!(s.host, Host::Name("zk1.example".into()));
        assert_eq!(
            s.client_address,
            Some((Host::Name("zk1.example".into()), 2183))
        );
    }

    #[test]
    fn ipv6_in_brackets() {
        let s = parse_server(1, "[::1]:2888:3888:observer;[::1]:2181", false).expect("ok");
        assert_eq!(s.host, ip("::1"));
        assert_eq!(s.role, Role::Observer);
        assert_eq!(s.client_address, Some((ip("::1"), 2181)));
        let s = parse_server(2, "[fe80::1:2]:2889:3889", false).expect("ok");
        assert_eq!(s.host, ip("fe80::1:2"));
    }

    #[test]
    fn ipv6_errors() {
        let err = parse_server(1, "[::1:2888:3888", false).expect_err("no ]:");
        assert!(err.0.contains("no matching ']:'"), "{}", err.0);
        // Unbracketed IPv6 splits into too many fields.
        assert!(parse_server(1, "::1:2888:3888", false).is_err());
        // Brackets around a name are stripped, as ConfigUtils.getHostAndPort does.
        let s = parse_server(1, "[zk1]:2888:3888", false).expect("bracketed name");
        assert_eq!(s.host, Host::Name("zk1".into()));
    }

    #[test]
    fn wrong_shapes() {
        for value in [
            "127.0.0.1:2888",
            "127.0.0.1",
            "",
            "127.0.0.1:2888:3888:participant:extra",
            "127.0.0.1:2888:3888;a;b",
            "127.0.0.1:2888:3888;h:1:2",
        ] {
            assert!(parse_server(1, value, false).is_err(), "{value}");
        }
    }

    #[test]
    fn bad_ports() {
        for value in [
            "h:abc:3888",
            "h:70000:3888",
            "h:0:3888",
            "h:2888:-1",
            "h:1:2;x",
            "h:1:2;h:0",
        ] {
            let err = parse_server(1, value, false).expect_err(value);
            assert!(err.0.contains("port"), "{value}: {}", err.0);
        }
    }

    #[test]
    fn equal_quorum_and_election_ports() {
        let err = parse_server(1, "127.0.0.1:2888:2888", false).expect_err("same port");
        assert!(err.0.contains("must differ"), "{}", err.0);
    }

    #[test]
    fn empty_or_odd_host() {
        assert!(parse_server(1, ":2888:3888", false).is_err());
        assert!(parse_server(1, "a b:2888:3888", false).is_err());
        assert!(parse_server(1, "h/x:2888:3888", false).is_err());
    }

    #[test]
    fn multi_address_needs_the_switch() {
        let value = "127.0.0.1:2888:3888|127.0.0.2:2888:3888";
        let err = parse_server(1, value, false).expect_err("disabled");
        assert!(err.0.contains("multiAddress.enabled"), "{}", err.0);
        let s = parse_server(1, value, true).expect("enabled");
        assert_eq!(s.extra_addresses.len(), 1);
        assert_eq!(s.extra_addresses[0].host, ip("127.0.0.2"));
    }

    #[test]
    fn member_ids() {
        assert_eq!(parse_member_id("1", 255), Some(1));
        assert_eq!(parse_member_id("255", 255), Some(255));
        assert_eq!(parse_member_id("007", 255), Some(7));
        for bad in [
            "0",
            "256",
            "-1",
            "+1",
            "x",
            "",
            "1.5",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_member_id(bad, 255), None, "{bad}");
        }
    }

    fn server(id: u64, role: Role) -> ServerSpec {
        ServerSpec {
            id,
            host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            quorum_port: 2887 + id as u16,
            election_port: 3887 + id as u16,
            role,
            client_address: None,
            extra_addresses: Vec::new(),
        }
    }

    #[test]
    fn renders_the_walkthrough_membership() {
        let servers = vec![
            server(1, Role::Participant),
            server(2, Role::Participant),
            server(3, Role::Participant),
            server(4, Role::Observer),
        ];
        let text = render_membership(&Membership {
            servers,
            ..Membership::default()
        });
        assert_eq!(
            text,
            "server.1=127.0.0.1:2888:3888:participant\n\
             server.2=127.0.0.1:2889:3889:participant\n\
             server.3=127.0.0.1:2890:3890:participant\n\
             server.4=127.0.0.1:2891:3891:observer\n\
             version=0"
        );
    }

    #[test]
    fn renders_client_parts_ipv6_and_hex_version() {
        let mut a = parse_server(1, "127.0.0.1:2888:3888;127.0.0.1:2181", false).expect("ok");
        a.id = 1;
        let b = parse_server(2, "[::1]:2889:3889;2182", false).expect("ok");
        let text = render_membership(&Membership {
            servers: vec![a, b],
            version: 0x1_0000_0000,
            ..Membership::default()
        });
        assert_eq!(
            text,
            "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
             server.2=[0:0:0:0:0:0:0:1]:2889:3889:participant;0.0.0.0:2182\n\
             version=100000000"
        );
    }

    #[test]
    fn renders_groups_and_weights() {
        let servers = vec![
            server(1, Role::Participant),
            server(2, Role::Participant),
            server(3, Role::Participant),
        ];
        let groups = vec![
            GroupSpec {
                id: 1,
                members: vec![1, 2],
            },
            GroupSpec {
                id: 2,
                members: vec![3],
            },
        ];
        let weights = BTreeMap::from([(1, 2)]);
        check_groups(&servers, &groups, &weights).expect("valid hierarchy");
        let text = render_membership(&Membership {
            servers,
            groups,
            weights,
            version: 0,
        });
        assert!(
            text.ends_with("group.1=1:2\ngroup.2=3\nweight.1=2\nweight.2=1\nweight.3=1\nversion=0"),
            "{text}"
        );
    }

    #[test]
    fn group_rules() {
        let servers = vec![
            server(1, Role::Participant),
            server(2, Role::Participant),
            server(3, Role::Observer),
        ];
        let none = BTreeMap::new();
        let g = |id, members: &[u64]| GroupSpec {
            id,
            members: members.to_vec(),
        };
        let err = check_groups(&servers, &[g(1, &[1])], &none).expect_err("2 not grouped");
        assert!(err.0.contains("server 2 is not in a group"), "{}", err.0);
        let err = check_groups(&servers, &[g(1, &[1, 2, 7])], &none).expect_err("unknown");
        assert!(err.0.contains("no server.7 line"), "{}", err.0);
        let err = check_groups(&servers, &[g(1, &[1, 2, 3])], &none).expect_err("observer");
        assert!(err.0.contains("observer"), "{}", err.0);
        let err = check_groups(&servers, &[g(1, &[1, 2]), g(2, &[2])], &none).expect_err("twice");
        assert!(err.0.contains("group.1 and group.2"), "{}", err.0);
        let err = check_groups(&servers, &[], &BTreeMap::from([(5, 1)])).expect_err("weight");
        assert!(err.0.contains("weight.5"), "{}", err.0);
        assert!(parse_group(1, "1:x").is_err());
        assert!(parse_group(1, "1:1").is_err());
        assert_eq!(parse_group(3, "1:2").expect("ok").members, vec![1, 2]);
    }

    #[test]
    fn host_parsing_and_java_form() {
        assert_eq!(Host::parse("[::1]"), Some(ip("::1")));
        assert_eq!(Host::parse("::1"), Some(ip("::1")));
        assert_eq!(
            Host::parse("localhost"),
            Some(Host::Name("localhost".into()))
        );
        assert_eq!(Host::parse(""), None);
        assert_eq!(Host::parse("[]"), None);
        assert_eq!(Host::parse("[::1"), None);
        assert_eq!(ip("::1").java_form(), "0:0:0:0:0:0:0:1");
        assert_eq!(
            ip("fe80::a:b").java_form_with_port(1),
            "[fe80:0:0:0:0:0:a:b]:1"
        );
        assert_eq!(ip("10.1.2.3").java_form_with_port(2181), "10.1.2.3:2181");
    }

    #[test]
    fn membership_text_round_trips_and_reconfig_changes_it() {
        let text = "server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\nserver.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183\nversion=100000000";
        let m = parse_membership_text(text).unwrap();
        assert_eq!(m.version, 0x1_0000_0000);
        assert_eq!(render_membership(&m), text);
        let removed = apply_reconfig(
            &m,
            &ReconfigChange {
                leaving: Some("3"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(removed.servers.len(), 2);
        let no_client = apply_reconfig(
            &m,
            &ReconfigChange {
                joining: Some("server.4=127.0.0.1:2891:3891:participant"),
                ..Default::default()
            },
        );
        assert!(no_client.unwrap_err().contains("3 ports"));
        let changed = apply_reconfig(
            &m,
            &ReconfigChange {
                joining: Some("server.3=127.0.0.1:2890:3890:participant;2183"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(changed.servers[2].role, Role::Participant);
        let clash = apply_reconfig(
            &m,
            &ReconfigChange {
                joining: Some("server.4=127.0.0.1:2888:3999:participant;2184"),
                ..Default::default()
            },
        );
        assert!(clash.is_err());
        let members = apply_reconfig(
            &m,
            &ReconfigChange {
                new_members: Some(
                    "server.1=127.0.0.1:2888:3888;2181,server.2=127.0.0.1:2889:3889;2182",
                ),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(members.servers.len(), 2);
        assert_eq!(
            render_dynamic_file(&removed),
            "server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant"
        );
        assert!(parse_membership_text("server.1=x\nversion=1").is_err());
        assert!(parse_membership_text("server.1=127.0.0.1:1:2").is_err());
    }

    #[test]
    fn static_config_points_at_the_dynamic_file() {
        let text = "tickTime=2000\nserver.1=127.0.0.1:2888:3888\n# note\ndynamicConfigFile=old\npeerType=participant\nclientPort=2181\n";
        assert_eq!(
            edit_static_config(text, "conf/zoo.cfg.dynamic.100000000"),
            "tickTime=2000\n# note\nclientPort=2181\ndynamicConfigFile=conf/zoo.cfg.dynamic.100000000\n"
        );
        assert_eq!(
            dynamic_file_name("zoo.cfg", 0x1_0000_0005),
            "zoo.cfg.dynamic.100000005"
        );
    }
}
