//! Quota bookkeeping: which subtrees have limits, and their current usage.
//!
//! Layout as ZooKeeper's `Quotas`/`StatsTrack`: for a quota on `/app` the client creates
//! `/zookeeper/quota/app/zookeeper_limits` (limits) and `.../zookeeper_stats` (usage, which
//! the server keeps up to date). Usage counts the root node itself. Soft limits only log;
//! hard limits are enforced by the sequencer when `enforceQuota` is on.

use crate::proto::{path, QUOTA_PATH};
use std::collections::HashMap;

pub const LIMITS_NODE: &str = "zookeeper_limits";
pub const STATS_NODE: &str = "zookeeper_stats";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub count: i64,
    pub bytes: i64,
}

/// Limits from a `zookeeper_limits` node; -1 = unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub count: i64,
    pub bytes: i64,
    pub count_hard: i64,
    pub bytes_hard: i64,
}

impl Limits {
    /// Parses `count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=20` and older forms.
    pub fn parse(text: &str) -> Limits {
        let mut l = Limits {
            count: -1,
            bytes: -1,
            count_hard: -1,
            bytes_hard: -1,
        };
        for pair in text.split([',', ';']) {
            let Some((key, rest)) = pair.split_once('=') else {
                continue;
            };
            let value = rest.split('=').next().unwrap_or("");
            let value = if value.is_empty() {
                -1
            } else {
                value.trim().parse().unwrap_or(-1)
            };
            match key.trim() {
                "count" => l.count = value,
                "bytes" => l.bytes = value,
                "countHardLimit" => l.count_hard = value,
                "byteHardLimit" => l.bytes_hard = value,
                _ => {}
            }
        }
        l
    }
}

pub fn limits_path(root: &str) -> String {
    format!("{QUOTA_PATH}{root}/{LIMITS_NODE}")
}

pub fn stats_path(root: &str) -> String {
    format!("{QUOTA_PATH}{root}/{STATS_NODE}")
}

/// For `/zookeeper/quota/app/zookeeper_limits` (or `_stats`), the quota root `/app`.
pub fn quota_root_of_quota_node(p: &str) -> Option<String> {
    let rest = p.strip_prefix(QUOTA_PATH)?;
    let name = path::name(rest);
    if name != LIMITS_NODE && name != STATS_NODE {
        return None;
    }
    let root = path::parent(rest)?;
    (root != "/" && !root.is_empty()).then(|| root.to_string())
}

#[derive(Debug, Clone, Default)]
pub struct QuotaIndex {
    roots: HashMap<String, Usage>,
}

impl QuotaIndex {
    pub fn track(&mut self, root: &str, count: i64, bytes: i64) {
        self.roots.insert(root.to_string(), Usage { count, bytes });
    }

    pub fn untrack(&mut self, root: &str) {
        self.roots.remove(root);
    }

    /// The nearest quota root at or above `p`, with its usage.
    pub fn covering(&self, p: &str) -> Option<(String, Usage)> {
        if self.roots.is_empty() || p.starts_with(QUOTA_PATH) {
            return None;
        }
        let mut cur = p;
        loop {
            if let Some(u) = self.roots.get(cur) {
                return Some((cur.to_string(), *u));
            }
            cur = path::parent(cur)?;
        }
    }

    fn adjust(&mut self, p: &str, count_delta: i64, bytes_delta: i64) {
        if let Some((root, _)) = self.covering(p) {
            if let Some(u) = self.roots.get_mut(&root) {
                u.count += count_delta;
                u.bytes += bytes_delta;
            }
        }
    }

    pub fn on_create(&mut self, p: &str, bytes: i64) {
        self.adjust(p, 1, bytes);
    }

    pub fn on_delete(&mut self, p: &str, bytes: i64) {
        self.adjust(p, -1, -bytes);
    }

    pub fn on_data_change(&mut self, p: &str, bytes_delta: i64) {
        self.adjust(p, 0, bytes_delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_old_and_new_limit_formats() {
        let l = Limits::parse("count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=20");
        assert_eq!(
            (l.count, l.bytes, l.count_hard, l.bytes_hard),
            (10, -1, 20, -1)
        );
        let l = Limits::parse("count=-1,bytes=100");
        assert_eq!((l.count, l.bytes, l.count_hard), (-1, 100, -1));
    }

    #[test]
    fn quota_node_roots() {
        assert_eq!(
            quota_root_of_quota_node("/zookeeper/quota/a/b/zookeeper_limits").as_deref(),
            Some("/a/b")
        );
        assert_eq!(quota_root_of_quota_node("/zookeeper/quota/a"), None);
        assert_eq!(quota_root_of_quota_node("/a/zookeeper_limits"), None);
    }
}
