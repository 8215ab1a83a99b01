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
    /// addWatch PERSISTENT: registered as two halves (data and child), which
    /// removeWatches can take away one at a time, as in ZooKeeper's two watch tables.
    Persistent,
    PersistentRecursive,
}

/// The tables a watch lives in. ZooKeeper keeps a data table (one-shot data/exist
/// watches, the data half of persistent watches, recursive watches) and a child table
/// (one-shot child watches, the child half of persistent watches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Data = 0,
    Child = 1,
    PersistentData = 2,
    PersistentChild = 3,
    Recursive = 4,
}

const TABLES: usize = 5;
const DATA_TABLES: [Table; 3] = [Table::Data, Table::PersistentData, Table::Recursive];
const CHILD_TABLES: [Table; 2] = [Table::Child, Table::PersistentChild];
const ALL_TABLES: [Table; 5] = [
    Table::Data,
    Table::Child,
    Table::PersistentData,
    Table::PersistentChild,
    Table::Recursive,
];

fn tables_of(kind: WatchKind) -> &'static [Table] {
    match kind {
        WatchKind::Data => &[Table::Data],
        WatchKind::Child => &[Table::Child],
        WatchKind::Persistent => &[Table::PersistentData, Table::PersistentChild],
        WatchKind::PersistentRecursive => &[Table::Recursive],
    }
}

#[derive(Debug, Default)]
pub struct WatchRegistry {
    by_path: [HashMap<Arc<str>, HashSet<ConnId>>; TABLES],
    by_conn: HashMap<ConnId, [HashSet<Arc<str>>; TABLES]>,
}

impl WatchRegistry {
    pub fn add(&mut self, conn: ConnId, path: &str, kind: WatchKind) {
        for t in tables_of(kind) {
            let i = *t as usize;
            let path: Arc<str> = match self.by_path[i].get_key_value(path) {
                Some((k, _)) => k.clone(),
                None => Arc::from(path),
            };
            self.by_path[i]
                .entry(path.clone())
                .or_default()
                .insert(conn);
            self.by_conn.entry(conn).or_default()[i].insert(path);
        }
    }

    fn remove_one(&mut self, conn: ConnId, path: &str, table: Table) -> bool {
        let i = table as usize;
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

    fn has(&self, conn: ConnId, path: &str, table: Table) -> bool {
        self.by_path[table as usize]
            .get(path)
            .is_some_and(|s| s.contains(&conn))
    }

    fn tables_for(wtype: i32) -> &'static [Table] {
        match wtype {
            watcher_type::CHILDREN => &CHILD_TABLES,
            watcher_type::DATA => &DATA_TABLES,
            _ => &ALL_TABLES,
        }
    }

    /// checkWatches: does `conn` hold a watch of `wtype` on `path`?
    pub fn check(&self, conn: ConnId, path: &str, wtype: i32) -> bool {
        Self::tables_for(wtype)
            .iter()
            .any(|t| self.has(conn, path, *t))
    }

    /// removeWatches: removes them; false when there was none (NoWatcher). Removing
    /// Data from a persistent watch leaves its child half armed, and the reverse.
    pub fn remove(&mut self, conn: ConnId, path: &str, wtype: i32) -> bool {
        let mut any = false;
        for t in Self::tables_for(wtype) {
            any |= self.remove_one(conn, path, *t);
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

    fn fire_one_shot(
        &mut self,
        table: Table,
        path: &str,
        seen: &mut HashSet<ConnId>,
        out: &mut Vec<ConnId>,
    ) {
        let i = table as usize;
        if let Some(set) = self.by_path[i].remove(path) {
            for c in set {
                if let Some(per) = self.by_conn.get_mut(&c) {
                    per[i].remove(path);
                }
                if seen.insert(c) {
                    out.push(c);
                }
            }
        }
    }

    fn fire_persistent(
        &self,
        table: Table,
        path: &str,
        seen: &mut HashSet<ConnId>,
        out: &mut Vec<ConnId>,
    ) {
        if let Some(set) = self.by_path[table as usize].get(path) {
            for c in set {
                if seen.insert(*c) {
                    out.push(*c);
                }
            }
        }
    }

    /// Connections to notify for `event_type` on `path`, one-shot watches consumed.
    pub fn trigger(&mut self, path: &str, event_type: i32, out: &mut Vec<ConnId>) {
        out.clear();
        let mut seen: HashSet<ConnId> = HashSet::new();
        if event_type == event::NODE_CHILDREN_CHANGED {
            self.fire_one_shot(Table::Child, path, &mut seen, out);
            self.fire_persistent(Table::PersistentChild, path, &mut seen, out);
        } else {
            self.fire_one_shot(Table::Data, path, &mut seen, out);
            self.fire_persistent(Table::PersistentData, path, &mut seen, out);
            if event_type == event::NODE_DELETED {
                self.fire_one_shot(Table::Child, path, &mut seen, out);
                self.fire_persistent(Table::PersistentChild, path, &mut seen, out);
            }
            if !self.by_path[Table::Recursive as usize].is_empty() {
                let mut cur = Some(path);
                while let Some(p) = cur {
                    self.fire_persistent(Table::Recursive, p, &mut seen, out);
                    cur = crate::proto::path::parent(p);
                }
            }
        }
        out.sort_unstable();
    }

    /// Watches in ZooKeeper's data table (what `wchs`, `wchc` and `wchp` report:
    /// one-shot child watches are not listed there).
    fn reported(&self) -> impl Iterator<Item = &HashMap<Arc<str>, HashSet<ConnId>>> {
        DATA_TABLES.iter().map(|t| &self.by_path[*t as usize])
    }

    /// Total watches of any kind (mntr's zk_watch_count counts both tables).
    pub fn watch_count(&self) -> usize {
        self.by_path
            .iter()
            .map(|m| m.values().map(|s| s.len()).sum::<usize>())
            .sum()
    }

    /// Watches in the data table, for `wchs`'s "Total watches".
    pub fn reported_watch_count(&self) -> usize {
        self.reported()
            .map(|m| m.values().map(|s| s.len()).sum::<usize>())
            .sum()
    }

    /// Distinct paths in the data table, for `wchs`.
    pub fn path_count(&self) -> usize {
        let mut paths: HashSet<&Arc<str>> = HashSet::new();
        for m in self.reported() {
            paths.extend(m.keys());
        }
        paths.len()
    }

    /// Connections with at least one watch in the data table, for `wchs`.
    pub fn connection_count(&self) -> usize {
        self.by_conn
            .values()
            .filter(|per| DATA_TABLES.iter().any(|t| !per[*t as usize].is_empty()))
            .count()
    }

    /// Paths `conn` watches in the data table, sorted, for `wchc`.
    pub fn paths_of(&self, conn: ConnId) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = self
            .by_conn
            .get(&conn)
            .map(|per| {
                DATA_TABLES
                    .iter()
                    .flat_map(|t| per[*t as usize].iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    }

    /// Connections watching each path in the data table, for `wchp`.
    pub fn by_path_all(&self) -> Vec<(Arc<str>, Vec<ConnId>)> {
        let mut m: HashMap<Arc<str>, HashSet<ConnId>> = HashMap::new();
        for kind_map in self.reported() {
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
        // Removing the data half leaves the child half armed.
        assert!(r.remove(1, "/p", watcher_type::DATA));
        assert_eq!(fired(&mut r, "/p", event::NODE_DATA_CHANGED), vec![2]);
        assert_eq!(fired(&mut r, "/p", event::NODE_CHILDREN_CHANGED), vec![1]);
        assert!(r.remove(1, "/p", watcher_type::ANY));
        assert!(!r.remove(1, "/p", watcher_type::ANY));
        r.remove_conn(2);
        assert_eq!(r.watch_count(), 0);
        assert_eq!(r.connection_count(), 0);
    }
}
