//! The watch registry of one shard: which connection watches which path, and how.
//!
//! Matches `WatchManager` (3.6+): one-shot data/exist and child watches, persistent and
//! persistent-recursive watches. One event per connection per trigger, even when it watches
//! the path in several ways. Persistent-recursive watches never see NodeChildrenChanged.

use crate::proto::{event, watcher_type};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A connection's id within its shard.
pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// Set by getData, or by exists (whether or not the node exists).
    Data,
    /// Set by getChildren.
    Child,
    Persistent,
    PersistentRecursive,
}

const KINDS: [WatchKind; 4] = [
    WatchKind::Data,
    WatchKind::Child,
    WatchKind::Persistent,
    WatchKind::PersistentRecursive,
];

#[derive(Debug, Default)]
pub struct WatchRegistry {
    by_path: [HashMap<Arc<str>, HashSet<ConnId>>; 4],
    by_conn: HashMap<ConnId, [HashSet<Arc<str>>; 4]>,
}

fn idx(kind: WatchKind) -> usize {
    match kind {
        WatchKind::Data => 0,
        WatchKind::Child => 1,
        WatchKind::Persistent => 2,
        WatchKind::PersistentRecursive => 3,
    }
}

impl WatchRegistry {
    pub fn add(&mut self, conn: ConnId, path: &str, kind: WatchKind) {
        let path: Arc<str> = match self.by_path[idx(kind)].get_key_value(path) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        self.by_path[idx(kind)]
            .entry(path.clone())
            .or_default()
            .insert(conn);
        self.by_conn.entry(conn).or_default()[idx(kind)].insert(path);
    }

    fn remove_one(&mut self, conn: ConnId, path: &str, kind: WatchKind) -> bool {
        let i = idx(kind);
        let mut removed = false;
        if let Some(set) = self.by_path[i].get_mut(path) {
            removed = set.remove(&conn);
            if set.is_empty() {
                self.by_path[i].remove(path);
            }
        }
        if let Some(per) = self.by_conn.get_mut(&conn) {
            per[i].remove(path);
            if per.iter().all(|s| s.is_empty()) {
                self.by_conn.remove(&conn);
            }
        }
        removed
    }

    fn has(&self, conn: ConnId, path: &str, kind: WatchKind) -> bool {
        self.by_path[idx(kind)]
            .get(path)
            .is_some_and(|s| s.contains(&conn))
    }

    fn kinds_for(wtype: i32) -> &'static [WatchKind] {
        match wtype {
            watcher_type::CHILDREN => &[WatchKind::Child],
            watcher_type::DATA => &[WatchKind::Data],
            _ => &KINDS,
        }
    }

    /// checkWatches: does `conn` hold a watch of `wtype` on `path`?
    pub fn check(&self, conn: ConnId, path: &str, wtype: i32) -> bool {
        Self::kinds_for(wtype)
            .iter()
            .any(|k| self.has(conn, path, *k))
    }

    /// removeWatches: removes them; false when there was none (NoWatcher).
    pub fn remove(&mut self, conn: ConnId, path: &str, wtype: i32) -> bool {
        let mut any = false;
        for k in Self::kinds_for(wtype) {
            any |= self.remove_one(conn, path, *k);
        }
        any
    }

    /// Drops every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        let Some(per) = self.by_conn.remove(&conn) else {
            return;
        };
        for (i, paths) in per.iter().enumerate() {
            for p in paths {
                if let Some(set) = self.by_path[i].get_mut(p) {
                    set.remove(&conn);
                    if set.is_empty() {
                        self.by_path[i].remove(p);
                    }
                }
            }
        }
    }

    /// Connections to notify for `event_type` on `path`, one-shot watches consumed.
    pub fn trigger(&mut self, path: &str, event_type: i32, out: &mut Vec<ConnId>) {
        out.clear();
        let mut seen: HashSet<ConnId> = HashSet::new();
        let mut fire_one_shot = |reg: &mut Self, kind: WatchKind, out: &mut Vec<ConnId>| {
            if let Some(set) = reg.by_path[idx(kind)].remove(path) {
                for c in set {
                    if let Some(per) = reg.by_conn.get_mut(&c) {
                        per[idx(kind)].remove(path);
                    }
                    if seen.insert(c) {
                        out.push(c);
                    }
                }
            }
        };
        match event_type {
            event::NODE_CHILDREN_CHANGED => {
                fire_one_shot(self, WatchKind::Child, out);
                if let Some(set) = self.by_path[idx(WatchKind::Persistent)].get(path) {
                    for c in set {
                        if seen.insert(*c) {
                            out.push(*c);
                        }
                    }
                }
            }
            _ => {
                fire_one_shot(self, WatchKind::Data, out);
                if event_type == event::NODE_DELETED {
                    fire_one_shot(self, WatchKind::Child, out);
                }
                if let Some(set) = self.by_path[idx(WatchKind::Persistent)].get(path) {
                    for c in set {
                        if seen.insert(*c) {
                            out.push(*c);
                        }
                    }
                }
                let recursive = &self.by_path[idx(WatchKind::PersistentRecursive)];
                if !recursive.is_empty() {
                    let mut cur = Some(path);
                    while let Some(p) = cur {
                        if let Some(set) = recursive.get(p) {
                            for c in set {
                                if seen.insert(*c) {
                                    out.push(*c);
                                }
                            }
                        }
                        cur = crate::proto::path::parent(p);
                    }
                }
            }
        }
        // Drop emptied per-connection entries lazily: keeps trigger O(watchers).
        out.sort_unstable();
    }

    /// Total watches (all kinds), for `wchs` and mntr.
    pub fn watch_count(&self) -> usize {
        self.by_path
            .iter()
            .map(|m| m.values().map(|s| s.len()).sum::<usize>())
            .sum()
    }

    /// Distinct watched paths, for `wchs`.
    pub fn path_count(&self) -> usize {
        let mut paths: HashSet<&Arc<str>> = HashSet::new();
        for m in &self.by_path {
            paths.extend(m.keys());
        }
        paths.len()
    }

    /// Connections holding at least one watch.
    pub fn connection_count(&self) -> usize {
        self.by_conn
            .values()
            .filter(|per| per.iter().any(|s| !s.is_empty()))
            .count()
    }

    /// Paths watched by `conn` (any kind), sorted, for `wchc`.
    pub fn paths_of(&self, conn: ConnId) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = self
            .by_conn
            .get(&conn)
            .map(|per| per.iter().flatten().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    }

    /// Connections watching each path, for `wchp`.
    pub fn by_path_all(&self) -> Vec<(Arc<str>, Vec<ConnId>)> {
        let mut m: HashMap<Arc<str>, HashSet<ConnId>> = HashMap::new();
        for kind_map in &self.by_path {
            for (p, set) in kind_map {
                m.entry(p.clone()).or_default().extend(set.iter().copied());
            }
        }
        let mut v: Vec<(Arc<str>, Vec<ConnId>)> = m
            .into_iter()
            .map(|(p, s)| {
                let mut c: Vec<ConnId> = s.into_iter().collect();
                c.sort_unstable();
                (p, c)
            })
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(reg: &mut WatchRegistry, path: &str, ev: i32) -> Vec<ConnId> {
        let mut out = Vec::new();
        reg.trigger(path, ev, &mut out);
        out
    }

    #[test]
    fn one_shot_watches_fire_once() {
        let mut r = WatchRegistry::default();
        r.add(1, "/a", WatchKind::Data);
        r.add(1, "/a", WatchKind::Child);
        assert_eq!(fired(&mut r, "/a", event::NODE_DATA_CHANGED), vec![1]);
        assert_eq!(
            fired(&mut r, "/a", event::NODE_DATA_CHANGED),
            Vec::<u64>::new()
        );
        // Deleted fires the child watch too, once per connection.
        r.add(1, "/a", WatchKind::Data);
        assert_eq!(fired(&mut r, "/a", event::NODE_DELETED), vec![1]);
        assert_eq!(r.watch_count(), 0);
    }

    #[test]
    fn persistent_and_recursive_rules() {
        let mut r = WatchRegistry::default();
        r.add(1, "/p", WatchKind::Persistent);
        r.add(2, "/p", WatchKind::PersistentRecursive);
        assert_eq!(fired(&mut r, "/p", event::NODE_CHILDREN_CHANGED), vec![1]);
        assert_eq!(fired(&mut r, "/p/c", event::NODE_CREATED), vec![2]);
        assert_eq!(fired(&mut r, "/p", event::NODE_DATA_CHANGED), vec![1, 2]);
        assert_eq!(fired(&mut r, "/p", event::NODE_DATA_CHANGED), vec![1, 2]);
        assert!(r.check(1, "/p", watcher_type::ANY));
        assert!(!r.remove(1, "/p", watcher_type::DATA));
        assert!(r.remove(1, "/p", watcher_type::ANY));
        r.remove_conn(2);
        assert_eq!(r.watch_count(), 0);
        assert_eq!(r.connection_count(), 0);
    }
}
