//! setquota, listquota, delquota: the quota nodes under `/zookeeper/quota` that the
//! client creates and edits with ordinary creates and setData, as zkCli's
//! `SetQuotaCommand`, `ListQuotaCommand` and `DelQuotaCommand` do, with `StatsTrack`'s
//! text format (`count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1`).

use super::options::{opt, CommandLine, GroupSpec, OptSpec, Options};
use super::{err, out, Failure, Session};
use crate::client::Error;
use crate::proto::{Acl, CreateMode, ErrorCode, QUOTA_PATH, ZOOKEEPER_PATH};
use std::collections::BTreeMap;

pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

const COUNT: &str = "count";
const BYTES: &str = "bytes";
const COUNT_HARD: &str = "countHardLimit";
const BYTES_HARD: &str = "byteHardLimit";

pub fn quota_path(path: &str) -> String {
    format!("{QUOTA_PATH}{path}")
}

pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_PATH}{path}/{LIMIT_NODE}")
}

pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_PATH}{path}/{STAT_NODE}")
}

fn trim_quota_path(quota_path: &str) -> &str {
    quota_path.get(QUOTA_PATH.len()..).unwrap_or("")
}

/// Why a StatsTrack text did not parse; Java throws NumberFormatException (an
/// IllegalArgumentException, which the quota commands catch) or an index error (which
/// nothing catches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsParseError {
    Number(String),
    MissingValue,
}

impl StatsParseError {
    pub fn into_failure(self) -> Failure {
        match self {
            StatsParseError::Number(input) => {
                Failure::cli(format!("For input string: \"{input}\""))
            }
            StatsParseError::MissingValue => Failure::Crash(
                "java.lang.ArrayIndexOutOfBoundsException: Index 1 out of bounds for length 1"
                    .to_string(),
            ),
        }
    }
}

/// StatsTrack: named limits or usage figures, -1 meaning unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    pub fn parse(text: &str) -> Result<StatsTrack, StatsParseError> {
        let mut track = StatsTrack::default();
        if text.is_empty() {
            return Ok(track);
        }
        // Pattern "[,;]+".split: runs of separators are one; trailing empties go.
        let mut pairs: Vec<&str> = text.split([',', ';']).collect();
        let leading_empty = pairs.first().is_some_and(|p| p.is_empty());
        pairs.retain(|p| !p.is_empty());
        if leading_empty {
            pairs.insert(0, "");
        }
        for pair in pairs {
            let kv = super::acl::java_split(pair, '=');
            let (Some(key), Some(value)) = (kv.first(), kv.get(1)) else {
                return Err(StatsParseError::MissingValue);
            };
            let value = if value.is_empty() {
                -1
            } else {
                value
                    .parse::<i64>()
                    .map_err(|_| StatsParseError::Number(value.to_string()))?
            };
            track.stats.insert(key.to_string(), value);
        }
        Ok(track)
    }

    pub fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.stats.insert(key.to_string(), value);
    }

    pub fn count(&self) -> i64 {
        self.get(COUNT)
    }

    pub fn bytes(&self) -> i64 {
        self.get(BYTES)
    }

    pub fn count_hard(&self) -> i64 {
        self.get(COUNT_HARD)
    }

    pub fn bytes_hard(&self) -> i64 {
        self.get(BYTES_HARD)
    }
}

/// StatsTrack.toString: count and bytes first for old readers, the others after an
/// extra `=` (which old parsers ignore), sorted by name.
impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.count(), self.bytes())?;
        let others: Vec<(&String, &i64)> = self
            .stats
            .iter()
            .filter(|(k, _)| k.as_str() != COUNT && k.as_str() != BYTES)
            .collect();
        if !others.is_empty() {
            f.write_str("=")?;
            for (k, v) in others {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

fn wrap(e: Error) -> Failure {
    Failure::from_client(e)
}

fn is_code(e: &Error, code: ErrorCode) -> bool {
    e.code() == Some(code)
}

const SETQUOTA_OPTS: &[OptSpec] = &[
    opt("n", true, "num soft quota"),
    opt("b", true, "bytes soft quota"),
    opt("N", true, "num hard quota"),
    opt("B", true, "bytes hard quota"),
];
pub const SETQUOTA: Options = Options {
    opts: SETQUOTA_OPTS,
    groups: &[GroupSpec {
        members: &["n", "b", "N", "B"],
        required: true,
    }],
};
pub const SETQUOTA_USAGE: &str = "setquota -n|-b|-N|-B val path";

const DELQUOTA_OPTS: &[OptSpec] = &[
    opt("n", false, "num soft quota"),
    opt("b", false, "bytes soft quota"),
    opt("N", false, "num hard quota"),
    opt("B", false, "bytes hard quota"),
];
pub const DELQUOTA: Options = Options {
    opts: DELQUOTA_OPTS,
    groups: &[GroupSpec {
        members: &["n", "b", "N", "B"],
        required: false,
    }],
};

pub fn setquota(session: &Session, cl: &CommandLine) -> Result<(), Failure> {
    let path = &cl.args[1];
    if path.starts_with(QUOTA_PATH) {
        err(&format!("cannot set a quota under the path: {QUOTA_PATH}"));
        return Ok(());
    }
    let mut quota = StatsTrack::default();
    for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
        quota.set(key, -1);
    }
    // checkOptionValue: each problem is printed and the command ends "successfully".
    for (flag, key, is_count) in [
        ("n", COUNT, true),
        ("b", BYTES, false),
        ("N", COUNT_HARD, true),
        ("B", BYTES_HARD, false),
    ] {
        let Some(text) = cl.value(flag) else {
            continue;
        };
        let parsed = if is_count {
            text.parse::<i32>().map(i64::from).ok()
        } else {
            text.parse::<i64>().ok()
        };
        let Some(value) = parsed else {
            err("NumberFormatException happens when parsing the option value");
            return Ok(());
        };
        if is_count && value <= 0 {
            err("the num quota must be greater than zero");
            return Ok(());
        }
        if !is_count && value < 0 {
            err("the bytes quota must be greater than or equal to zero");
            return Ok(());
        }
        quota.set(key, value);
    }
    create_quota(session, path, &quota)
}

fn create_quota(session: &Session, path: &str, quota: &StatsTrack) -> Result<(), Failure> {
    let zk = session.zk();
    let exists = zk.exists(path, false).map_err(wrap)?;
    if exists.is_none() {
        return Err(Failure::cli(format!("{path} does not exist.")));
    }
    check_if_child_quota(session, path)?;
    check_if_parent_quota(session, path)?;
    let open = Acl::open_unsafe();
    if zk.exists(QUOTA_PATH, false).map_err(wrap)?.is_none() {
        for p in [ZOOKEEPER_PATH, QUOTA_PATH] {
            match zk.create(p, None, &open, CreateMode::Persistent) {
                Ok(_) => {}
                // Java wraps both creates in one try: an existing /zookeeper ends it.
                Err(e) if is_code(&e, ErrorCode::NodeExists) => break,
                Err(e) => return Err(wrap(e)),
            }
        }
    }
    let mut node = QUOTA_PATH.to_string();
    for part in super::acl::java_split(path, '/').into_iter().skip(1) {
        node.push('/');
        node.push_str(part);
        if zk.exists(&node, false).map_err(wrap)?.is_none() {
            match zk.create(&node, None, &open, CreateMode::Persistent) {
                Ok(_) => {}
                Err(e) if is_code(&e, ErrorCode::NodeExists) => {}
                Err(e) => return Err(wrap(e)),
            }
        }
    }
    let stat_node = format!("{node}/{STAT_NODE}");
    let limit_node = format!("{node}/{LIMIT_NODE}");
    if zk.exists(&limit_node, false).map_err(wrap)?.is_none() {
        zk.create(
            &limit_node,
            Some(quota.to_string().as_bytes()),
            &open,
            CreateMode::Persistent,
        )
        .map_err(wrap)?;
        let mut stats = StatsTrack::default();
        stats.set(COUNT, 0);
        stats.set(BYTES, 0);
        zk.create(
            &stat_node,
            Some(stats.to_string().as_bytes()),
            &open,
            CreateMode::Persistent,
        )
        .map_err(wrap)?;
        let limits = read_track(session, &limit_node)?;
        let usage = read_track(session, &stat_node)?;
        check_quota(&limits, &usage);
    } else {
        let mut limits = read_track(session, &limit_node)?;
        for key in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
            if quota.get(key) > -1 {
                limits.set(key, quota.get(key));
            }
        }
        let usage = read_track(session, &stat_node)?;
        check_quota(&limits, &usage);
        zk.set_data(&limit_node, Some(limits.to_string().as_bytes()), -1)
            .map_err(wrap)?;
    }
    Ok(())
}

fn read_track(session: &Session, path: &str) -> Result<StatsTrack, Failure> {
    let (data, _) = session.zk().get_data(path, false).map_err(wrap)?;
    let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"null")).into_owned();
    StatsTrack::parse(&text).map_err(StatsParseError::into_failure)
}

/// The warnings setquota prints (to stdout) when a new limit is already exceeded.
fn check_quota(limits: &StatsTrack, usage: &StatsTrack) {
    let over = |limit: i64, used: i64| limit > -1 && limit < used;
    if over(limits.count(), usage.count()) || over(limits.count_hard(), usage.count()) {
        out(&format!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            usage.count()
        ));
    }
    if over(limits.bytes(), usage.bytes()) || over(limits.bytes_hard(), usage.bytes()) {
        out(&format!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            usage.bytes()
        ));
    }
}

fn check_if_child_quota(session: &Session, path: &str) -> Result<(), Failure> {
    let real_path = quota_path(path);
    let own = format!("{QUOTA_PATH}{path}");
    let zk = session.zk();
    let visit = super::commands::visit_sub_tree_dfs(session, &real_path, false, &mut |node| {
        let children = match zk.get_children(node, false) {
            Ok(c) => c,
            Err(e) if is_code(&e, ErrorCode::NoNode) => return Ok(()),
            // Java prints a stack trace here and goes on with no children.
            Err(_) => Vec::new(),
        };
        if node != own && children.iter().any(|c| c == LIMIT_NODE) {
            return Err(Failure::cli(format!(
                "{path} has a child {} which has a quota",
                trim_quota_path(node)
            )));
        }
        Ok(())
    });
    match visit {
        Err(Failure::Client(e)) if is_code(&e, ErrorCode::NoNode) => Ok(()),
        other => other,
    }
}

fn check_if_parent_quota(session: &Session, path: &str) -> Result<(), Failure> {
    let parts = super::acl::java_split(path, '/');
    let own = quota_path(path);
    let mut node = QUOTA_PATH.to_string();
    for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
        node.push('/');
        node.push_str(part);
        let children = match session.zk().get_children(&node, false) {
            Ok(c) => c,
            Err(e) if is_code(&e, ErrorCode::NoNode) => return Ok(()),
            Err(e) => return Err(wrap(e)),
        };
        if children.is_empty() {
            return Ok(());
        }
        if node != own && children.iter().any(|c| c == LIMIT_NODE) {
            return Err(Failure::cli(format!(
                "{path} has a parent {} which has a quota",
                trim_quota_path(&node)
            )));
        }
    }
    Ok(())
}

pub fn listquota(session: &Session, cl: &CommandLine) -> Result<(), Failure> {
    let path = &cl.args[1];
    err(&format!("absolute path is {}", limit_path(path)));
    let read = |p: &str| -> Result<Option<StatsTrack>, Failure> {
        match session.zk().get_data(p, false) {
            Ok((data, _)) => {
                let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"null")).into_owned();
                StatsTrack::parse(&text)
                    .map(Some)
                    .map_err(StatsParseError::into_failure)
            }
            Err(e) if is_code(&e, ErrorCode::NoNode) => Ok(None),
            Err(e) => Err(wrap(e)),
        }
    };
    let limits = read(&limit_path(path))?;
    let usage = match limits {
        Some(_) => read(&stat_path(path))?,
        None => None,
    };
    match (limits, usage) {
        (Some(limits), Some(usage)) => {
            out(&format!("Output quota for {path} {limits}"));
            out(&format!("Output stat for {path} {usage}"));
        }
        _ => err(&format!("quota for {path} does not exist.")),
    }
    Ok(())
}

pub fn delquota(session: &Session, cl: &CommandLine) -> Result<(), Failure> {
    let path = &cl.args[1];
    let flags: Vec<&str> = ["n", "b", "N", "B"]
        .into_iter()
        .filter(|f| cl.has(f))
        .collect();
    match del_quota(session, path, &flags) {
        Err(Failure::Client(e)) if is_code(&e, ErrorCode::NoNode) => {
            err(&format!("quota for {path} does not exist."));
            Ok(())
        }
        other => other,
    }
}

fn del_quota(session: &Session, path: &str, flags: &[&str]) -> Result<(), Failure> {
    let zk = session.zk();
    let parent = quota_path(path);
    let limit = limit_path(path);
    if zk.exists(&limit, false).map_err(Failure::Client)?.is_none() {
        out(&format!("Quota does not exist for {path}"));
        return Ok(());
    }
    let (data, _) = zk.get_data(&limit, false).map_err(Failure::Client)?;
    let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"null")).into_owned();
    let mut track = StatsTrack::parse(&text).map_err(StatsParseError::into_failure)?;
    if flags.is_empty() {
        for child in zk.get_children(&parent, false).map_err(Failure::Client)? {
            zk.delete(&format!("{parent}/{child}"), -1)
                .map_err(Failure::Client)?;
        }
        trim_proc_quotas(session, &parent)?;
    } else {
        for (flag, key) in [
            ("n", COUNT),
            ("b", BYTES),
            ("N", COUNT_HARD),
            ("B", BYTES_HARD),
        ] {
            if flags.contains(&flag) {
                track.set(key, -1);
            }
        }
        zk.set_data(&limit, Some(track.to_string().as_bytes()), -1)
            .map_err(Failure::Client)?;
    }
    Ok(())
}

/// Deletes now-empty quota nodes upwards, stopping at `/zookeeper/quota`. Bounded by
/// the depth of the path.
fn trim_proc_quotas(session: &Session, path: &str) -> Result<(), Failure> {
    let mut node = path.to_string();
    while node != QUOTA_PATH {
        let zk = session.zk();
        if !zk
            .get_children(&node, false)
            .map_err(Failure::Client)?
            .is_empty()
        {
            return Ok(());
        }
        zk.delete(&node, -1).map_err(Failure::Client)?;
        match node.rfind('/') {
            Some(at) => node.truncate(at),
            None => return Ok(()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_text_round_trips() {
        let t = StatsTrack::parse("count=5,bytes=-1=;byteHardLimit=100;countHardLimit=-1").unwrap();
        assert_eq!(t.count(), 5);
        assert_eq!(t.bytes(), -1);
        assert_eq!(t.bytes_hard(), 100);
        assert_eq!(
            t.to_string(),
            "count=5,bytes=-1=;byteHardLimit=100;countHardLimit=-1"
        );
        let t = StatsTrack::parse("count=2,bytes=0").unwrap();
        assert_eq!(t.to_string(), "count=2,bytes=0");
        assert_eq!(StatsTrack::default().to_string(), "count=-1,bytes=-1");
        // Java's split drops trailing empty pieces: only an inner empty value is -1.
        let t = StatsTrack::parse("count==5,bytes=7").unwrap();
        assert_eq!((t.count(), t.bytes()), (-1, 7));
    }

    #[test]
    fn stats_track_errors() {
        assert_eq!(
            StatsTrack::parse("count=x"),
            Err(StatsParseError::Number("x".into()))
        );
        assert_eq!(
            StatsTrack::parse("count"),
            Err(StatsParseError::MissingValue)
        );
        assert_eq!(
            StatsTrack::parse("count="),
            Err(StatsParseError::MissingValue)
        );
        assert_eq!(
            StatsTrack::parse("null"),
            Err(StatsParseError::MissingValue)
        );
    }

    #[test]
    fn quota_paths() {
        assert_eq!(limit_path("/a"), "/zookeeper/quota/a/zookeeper_limits");
        assert_eq!(stat_path("/a/b"), "/zookeeper/quota/a/b/zookeeper_stats");
        assert_eq!(trim_quota_path("/zookeeper/quota/a"), "/a");
    }
}
