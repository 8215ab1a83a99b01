//! The global session tracker (sans-IO): creation, touches, expiry by tick buckets.
//!
//! Matches `SessionTrackerImpl`: a session's deadline is `now + timeout` rounded up to the
//! next tick boundary, pushed forward by any packet from its client (shards batch these
//! touches). Expired sessions are reported once; the caller turns them into closeSession
//! transactions. Time is given by the caller (`now_ms`); nothing here reads a clock.

use crate::proto::SessionId;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most live sessions a server tracks; beyond it new sessions are refused.
pub const SESSIONS_MAX: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct Session {
    pub timeout_ms: i32,
    pub expires_at_ms: i64,
    /// A closeSession is ordered; the session takes no more requests.
    pub closing: bool,
}

#[derive(Debug)]
pub struct SessionTracker {
    tick_ms: i64,
    next_id: i64,
    sessions: HashMap<SessionId, Session>,
    /// Expiry bucket (a tick boundary) -> sessions due then.
    buckets: BTreeMap<i64, HashSet<SessionId>>,
}

impl SessionTracker {
    /// `server_id` becomes the high byte of every session id, as in ZooKeeper; `now_ms` is
    /// wall-clock milliseconds, which keeps ids unique across restarts.
    pub fn new(server_id: u8, tick_ms: u32, now_ms: i64) -> SessionTracker {
        let base = ((server_id as i64) << 56) | (((now_ms << 24) as u64 >> 8) as i64);
        SessionTracker {
            tick_ms: tick_ms.max(1) as i64,
            next_id: base,
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    fn bucket_of(&self, t_ms: i64) -> i64 {
        (t_ms / self.tick_ms + 1) * self.tick_ms
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Is the session alive and not closing?
    pub fn is_active(&self, id: SessionId) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    /// A fresh session id (the session itself is added when its createSession commits).
    pub fn next_session_id(&mut self) -> SessionId {
        let mut id = self.next_id;
        // Long.MIN_VALUE is the container marker; never hand it out.
        if id == i64::MIN {
            id += 1;
        }
        self.next_id = id.wrapping_add(1);
        id
    }

    pub fn add(&mut self, id: SessionId, timeout_ms: i32, now_ms: i64) {
        let expires_at_ms = self.bucket_of(now_ms + timeout_ms as i64);
        if let Some(old) = self.sessions.insert(
            id,
            Session {
                timeout_ms,
                expires_at_ms,
                closing: false,
            },
        ) {
            self.unbucket(id, old.expires_at_ms);
        }
        self.buckets.entry(expires_at_ms).or_default().insert(id);
    }

    fn unbucket(&mut self, id: SessionId, at: i64) {
        if let Some(set) = self.buckets.get_mut(&at) {
            set.remove(&id);
            if set.is_empty() {
                self.buckets.remove(&at);
            }
        }
    }

    /// Pushes the deadline forward; false if the session is unknown or closing.
    pub fn touch(&mut self, id: SessionId, now_ms: i64) -> bool {
        let tick_ms = self.tick_ms;
        let Some(s) = self.sessions.get_mut(&id) else {
            return false;
        };
        if s.closing {
            return false;
        }
        let new_at = (now_ms + s.timeout_ms as i64) / tick_ms * tick_ms + tick_ms;
        if new_at <= s.expires_at_ms {
            return true;
        }
        let old = s.expires_at_ms;
        s.expires_at_ms = new_at;
        self.unbucket(id, old);
        self.buckets.entry(new_at).or_default().insert(id);
        true
    }

    /// Marks a session closing (its closeSession is ordered).
    pub fn set_closing(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    pub fn remove(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.remove(&id) {
            self.unbucket(id, s.expires_at_ms);
        }
    }

    /// Sessions whose deadline passed, marked closing so they are reported once.
    pub fn poll_expired(&mut self, now_ms: i64) -> Vec<SessionId> {
        let mut out = Vec::new();
        while let Some((&at, _)) = self.buckets.first_key_value() {
            if at > now_ms {
                break;
            }
            let Some(set) = self.buckets.remove(&at) else {
                break;
            };
            for id in set {
                if let Some(s) = self.sessions.get_mut(&id) {
                    if !s.closing {
                        s.closing = true;
                        out.push(id);
                    }
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// (bucket deadline, sessions) for the `dump` four-letter word.
    pub fn buckets(&self) -> impl Iterator<Item = (&i64, &HashSet<SessionId>)> {
        self.buckets.iter()
    }

    pub fn ids(&self) -> impl Iterator<Item = (&SessionId, &Session)> {
        self.sessions.iter()
    }
}

/// The 16-byte session password. Derived from the id so that any server of an ensemble
/// can check it without a shared table, as ZooKeeper does; it guards against mistakes,
/// not attackers (ZooKeeper's is likewise derived from the id alone).
pub fn password_for(id: SessionId) -> [u8; 16] {
    let mut h = sha1_smol::Sha1::new();
    h.update(b"corral-session-password");
    h.update(&id.to_be_bytes());
    let d = h.digest().bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_server_id_and_are_unique() {
        let mut t = SessionTracker::new(3, 2000, 1_700_000_000_000);
        let a = t.next_session_id();
        let b = t.next_session_id();
        assert_eq!(a >> 56, 3);
        assert_ne!(a, b);
    }

    #[test]
    fn expiry_rounds_to_ticks_and_touch_defers_it() {
        let mut t = SessionTracker::new(1, 1000, 0);
        t.add(7, 4000, 500);
        assert!(t.poll_expired(4999).is_empty());
        assert!(t.touch(7, 2500));
        assert!(t.poll_expired(6000).is_empty());
        assert_eq!(t.poll_expired(7000), vec![7]);
        assert!(t.poll_expired(100_000).is_empty(), "reported once");
        assert!(!t.touch(7, 7001));
        t.remove(7);
        assert!(t.is_empty());
    }

    #[test]
    fn passwords_are_deterministic_per_id() {
        assert_eq!(password_for(1), password_for(1));
        assert_ne!(password_for(1), password_for(2));
    }
}
