//! The client's record of the watches it holds on the server, by client path.
//!
//! Matches the Java client's `ZKWatchManager` for a client with one default watcher (as
//! zkCli is): which one-shot watches a notification consumes, which kinds a
//! removeWatches takes away, and the lists a reconnect re-sends with SetWatches /
//! SetWatches2 so that watches survive a change of server.
//!
//! Registration happens when a read's reply arrives, with its error code: a getData
//! watch only on success, an exists watch on success (as a data watch) or on NoNode (as
//! an exist watch), a getChildren watch only on success.

use crate::proto::request::SetWatches;
use crate::proto::{add_watch_mode, event, op, watcher_type, ErrorCode};
use std::collections::BTreeSet;

/// Paths per watch kind are a few bytes each; a reconnect sends them in batches of
/// about this many path bytes, as Java does, so that no SetWatches frame nears the
/// server's frame limit.
pub const SET_WATCHES_BATCH_BYTES_MAX: usize = 128 * 1024;

/// A watch a request asks for, registered when its reply comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRegistration {
    Data(String),
    Exists(String),
    Child(String),
    Persistent(String),
    PersistentRecursive(String),
}

impl WatchRegistration {
    pub fn for_add_watch(path: String, mode: i32) -> WatchRegistration {
        if mode == add_watch_mode::PERSISTENT_RECURSIVE {
            WatchRegistration::PersistentRecursive(path)
        } else {
            WatchRegistration::Persistent(path)
        }
    }
}

/// Which kinds a removal took away, for the local "removed" events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub child: bool,
    pub data: bool,
    pub persistent: bool,
}

impl Removed {
    pub fn any(self) -> bool {
        self.child || self.data || self.persistent
    }

    /// The local events Java queues for a removal, in a fixed order (Java's order comes
    /// from a hash map and is not specified).
    pub fn event_types(self) -> Vec<i32> {
        let mut types = Vec::new();
        if self.child {
            types.push(event::CHILD_WATCH_REMOVED);
        }
        if self.data {
            types.push(event::DATA_WATCH_REMOVED);
        }
        if self.persistent {
            types.push(event::PERSISTENT_WATCH_REMOVED);
        }
        types
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WatchRegistry {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    persistent_recursive: BTreeSet<String>,
}

impl WatchRegistry {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.persistent_recursive.is_empty()
    }

    /// Records `reg` according to the reply's error code `err`.
    pub fn register(&mut self, reg: WatchRegistration, err: i32) {
        let ok = err == ErrorCode::Ok.code();
        match reg {
            WatchRegistration::Data(p) if ok => {
                self.data.insert(p);
            }
            WatchRegistration::Exists(p) if ok => {
                self.data.insert(p);
            }
            WatchRegistration::Exists(p) if err == ErrorCode::NoNode.code() => {
                self.exist.insert(p);
            }
            WatchRegistration::Child(p) if ok => {
                self.child.insert(p);
            }
            WatchRegistration::Persistent(p) if ok => {
                self.persistent.insert(p);
            }
            WatchRegistration::PersistentRecursive(p) if ok => {
                self.persistent_recursive.insert(p);
            }
            _ => {}
        }
    }

    /// Consumes the one-shot watches a notification fires (persistent ones stay).
    pub fn on_event(&mut self, event_type: i32, path: &str) {
        match event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                self.data.remove(path);
                self.exist.remove(path);
            }
            event::NODE_CHILDREN_CHANGED => {
                self.child.remove(path);
            }
            event::NODE_DELETED => {
                self.data.remove(path);
                self.exist.remove(path);
                self.child.remove(path);
            }
            _ => {}
        }
    }

    /// Does the client hold a watch of `kind` (a WatcherType) on `path`?
    pub fn contains(&self, path: &str, kind: i32) -> bool {
        let child = self.child.contains(path);
        let data = self.data.contains(path) || self.exist.contains(path);
        let persistent = self.persistent.contains(path) || self.persistent_recursive.contains(path);
        match kind {
            watcher_type::CHILDREN => child || persistent,
            watcher_type::DATA => data || persistent,
            _ => child || data || persistent,
        }
    }

    /// Removes the watches of `kind` on `path` (Java's removeWatcher with no watcher
    /// object: every watch of those kinds goes). Persistent watches only go with `Any`.
    pub fn remove(&mut self, path: &str, kind: i32) -> Removed {
        let mut removed = Removed::default();
        if kind == watcher_type::CHILDREN || kind == watcher_type::ANY {
            removed.child = self.child.remove(path);
        }
        if kind == watcher_type::DATA || kind == watcher_type::ANY {
            let data = self.data.remove(path);
            let exist = self.exist.remove(path);
            removed.data = data || exist;
        }
        if kind == watcher_type::ANY {
            let persistent = self.persistent.remove(path);
            let recursive = self.persistent_recursive.remove(path);
            removed.persistent = persistent || recursive;
        }
        removed
    }

    /// The SetWatches (op 101) or SetWatches2 (op 105, when a batch holds persistent
    /// watches) records that restore every watch, with server paths from `to_server`.
    pub fn set_watches_batches(
        &self,
        relative_zxid: i64,
        to_server: impl Fn(&str) -> String,
    ) -> Vec<(i32, SetWatches)> {
        let mut batches = Vec::new();
        let mut lists = [
            self.data.iter(),
            self.exist.iter(),
            self.child.iter(),
            self.persistent.iter(),
            self.persistent_recursive.iter(),
        ];
        loop {
            let mut batch = SetWatches {
                relative_zxid,
                ..SetWatches::default()
            };
            let mut batch_bytes = 0;
            let mut any = false;
            'fill: while batch_bytes < SET_WATCHES_BATCH_BYTES_MAX {
                for (kind, list) in lists.iter_mut().enumerate() {
                    if let Some(path) = list.next() {
                        let server_path = to_server(path);
                        batch_bytes += server_path.len();
                        let target = match kind {
                            0 => &mut batch.data_watches,
                            1 => &mut batch.exist_watches,
                            2 => &mut batch.child_watches,
                            3 => &mut batch.persistent_watches,
                            _ => &mut batch.persistent_recursive_watches,
                        };
                        target.push(server_path.into());
                        any = true;
                        continue 'fill;
                    }
                }
                break;
            }
            if !any {
                return batches;
            }
            let op = if batch.persistent_watches.is_empty()
                && batch.persistent_recursive_watches.is_empty()
            {
                op::SET_WATCHES
            } else {
                op::SET_WATCHES2
            };
            batches.push((op, batch));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_follows_the_reply_code() {
        let mut w = WatchRegistry::default();
        w.register(
            WatchRegistration::Data("/a".into()),
            ErrorCode::NoNode.code(),
        );
        assert!(w.is_empty());
        w.register(
            WatchRegistration::Exists("/b".into()),
            ErrorCode::NoNode.code(),
        );
        assert!(w.contains("/b", watcher_type::DATA));
        w.register(WatchRegistration::Child("/c".into()), 0);
        assert!(w.contains("/c", watcher_type::CHILDREN));
        assert!(!w.contains("/c", watcher_type::DATA));
    }

    #[test]
    fn events_consume_one_shot_watches_only() {
        let mut w = WatchRegistry::default();
        w.register(WatchRegistration::Data("/a".into()), 0);
        w.register(WatchRegistration::Child("/a".into()), 0);
        w.register(WatchRegistration::Persistent("/a".into()), 0);
        w.on_event(event::NODE_DATA_CHANGED, "/a");
        assert!(!w.data.contains("/a"));
        assert!(w.child.contains("/a"));
        w.on_event(event::NODE_DELETED, "/a");
        assert!(w.child.is_empty());
        assert!(w.contains("/a", watcher_type::ANY));
        let removed = w.remove("/a", watcher_type::DATA);
        assert!(!removed.any());
        let removed = w.remove("/a", watcher_type::ANY);
        assert_eq!(removed.event_types(), vec![event::PERSISTENT_WATCH_REMOVED]);
        assert!(w.is_empty());
    }

    #[test]
    fn set_watches_uses_op_105_only_for_persistent_watches() {
        let mut w = WatchRegistry::default();
        w.register(WatchRegistration::Data("/d".into()), 0);
        w.register(
            WatchRegistration::Exists("/e".into()),
            ErrorCode::NoNode.code(),
        );
        let batches = w.set_watches_batches(7, |p| format!("/app{p}"));
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].0, op::SET_WATCHES);
        assert_eq!(batches[0].1.relative_zxid, 7);
        assert_eq!(batches[0].1.data_watches[0].as_str(), "/app/d");
        assert_eq!(batches[0].1.exist_watches[0].as_str(), "/app/e");
        w.register(WatchRegistration::for_add_watch("/p".into(), 1), 0);
        let batches = w.set_watches_batches(7, |p| p.to_string());
        assert_eq!(batches[0].0, op::SET_WATCHES2);
        assert_eq!(batches[0].1.persistent_recursive_watches.len(), 1);
    }

    #[test]
    fn set_watches_batches_are_bounded() {
        let mut w = WatchRegistry::default();
        let long = "x".repeat(1000);
        for i in 0..300 {
            w.register(WatchRegistration::Child(format!("/{long}{i}")), 0);
        }
        let batches = w.set_watches_batches(0, |p| p.to_string());
        assert_eq!(batches.len(), 3);
        let total: usize = batches.iter().map(|b| b.1.child_watches.len()).sum();
        assert_eq!(total, 300);
    }
}
