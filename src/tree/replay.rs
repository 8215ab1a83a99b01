//! Replaying the log over a *fuzzy* snapshot: one whose nodes were copied a few at a time
//! while writes went on (`storage::snapshot::SnapshotCapture`), as ZooKeeper's are.
//!
//! The snapshot is named by the zxid Z at which copying began. Every node in it is a copy
//! taken at some moment after Z, so it may already show the effect of transactions after Z.
//! Recovery replays every logged transaction after Z; a transaction must then change only
//! what the copy does not already show. Each node carries the stamps to tell:
//!
//! | transaction at zxid m on path p        | the copy already shows it when                   | then                         |
//! |----------------------------------------|--------------------------------------------------|------------------------------|
//! | create p                               | p exists with `czxid >= m`                        | skip p; update the parent     |
//! | create p, p exists with `czxid < m`     | (an older incarnation whose delete was deferred) | take the create's fields, keep p's children |
//! | create p, parent missing               | the parent is deleted later (so is p)             | skip                          |
//! | delete p                               | p is missing, or `czxid >= m` (a later incarnation) | skip p; update the parent  |
//! | delete p, p has children               | they belong to a later incarnation of p (see below) | defer: keep p for the create that follows |
//! | setData p                              | p missing, `czxid > m`, or `mzxid >= m`           | skip                          |
//! | setACL p                               | p missing, `czxid > m`, or `aversion >= the txn's`| skip                          |
//! | parent's cversion and pzxid            | the parent's `pzxid >= m`                          | skip                          |
//!
//! Operations of one multi share a zxid; a path touched by an earlier operation of the same
//! multi is applied plainly by the later ones (they see the state the earlier one made).
//!
//! Why a delete of a node with children is deferred: the copy of p was taken before it was
//! deleted at m, and children in the snapshot under p were copied after, so they belong to
//! a later incarnation of p (they could not exist under the old one at its deletion), which
//! a create after m brings back; that create then takes over p in place with its children.
//!
//! Copying parents before children (a walk from `/`) means the snapshot never holds a node
//! without its parent. With an exact snapshot every stamp is below every replayed zxid and
//! each transaction applies as [`DataTree::apply`] would.

use super::{data_len, path, txn, DataTree, Trigger, Txn, TxnRecord};
use std::collections::HashSet;
use std::sync::Arc;

/// What earlier operations of the transaction being replayed changed.
#[derive(Default)]
struct Touched {
    /// Nodes created, deleted or changed.
    nodes: HashSet<Arc<str>>,
    /// Parents whose pzxid/cversion were set.
    parents: HashSet<Arc<str>>,
}

impl DataTree {
    /// Applies `rec`, logged after the zxid of the (possibly fuzzy) snapshot this tree was
    /// restored from, changing only what the tree does not already show. See the module doc.
    pub fn apply_replayed(&mut self, rec: &TxnRecord) {
        debug_assert!(
            self.preimages.is_none(),
            "recovery replays into a tree no snapshot walk copies"
        );
        if rec.zxid <= self.last_zxid {
            return;
        }
        let mut touched = Touched::default();
        let mut triggers = Vec::new();
        self.replay_txn(rec, &rec.txn, &mut touched, &mut triggers);
        self.last_zxid = rec.zxid;
    }

    fn replay_txn(
        &mut self,
        rec: &TxnRecord,
        t: &Txn,
        touched: &mut Touched,
        triggers: &mut Vec<Trigger>,
    ) {
        let m = rec.zxid;
        match t {
            Txn::CreateSession { .. } | Txn::Check { .. } | Txn::Error { .. } => {}
            Txn::Multi { ops } => {
                for op in ops {
                    self.replay_txn(rec, op, touched, triggers);
                }
            }
            Txn::CloseSession { ephemerals } => {
                // Exactly the session's ephemerals, each removed as a delete would be.
                for p in ephemerals {
                    let delete = Txn::Delete { path: p.clone() };
                    self.replay_txn(rec, &delete, touched, triggers);
                }
                if self
                    .ephemerals
                    .get(&rec.session_id)
                    .is_some_and(|left| left.is_empty())
                {
                    self.ephemerals.remove(&rec.session_id);
                }
            }
            Txn::Create(c) => {
                let Some(parent_path) = path::parent(&c.path) else {
                    return;
                };
                if !self.nodes.contains_key(parent_path) {
                    return;
                }
                let existing_czxid = self.nodes.get(&*c.path).map(|n| n.czxid);
                match existing_czxid {
                    None => {
                        let keep = self.parent_side_shown(parent_path, m, touched);
                        self.create_node(c, m, rec.time_ms, triggers);
                        self.restore_parent_side(parent_path, keep);
                        touched.nodes.insert(c.path.clone());
                    }
                    Some(czxid) if czxid >= m && !touched.nodes.contains(&*c.path) => {
                        self.replay_parent_change(parent_path, m, Some(c.parent_cversion), touched);
                    }
                    Some(_) => {
                        // An older incarnation kept by a deferred delete: this create
                        // brings the node back in place, with the children the copy holds.
                        self.recreate_in_place(c, m, rec.time_ms);
                        self.replay_parent_change(parent_path, m, Some(c.parent_cversion), touched);
                        touched.nodes.insert(c.path.clone());
                    }
                }
            }
            Txn::Delete { path: p } | Txn::DeleteContainer { path: p } => {
                let state = self
                    .nodes
                    .get(&**p)
                    .map(|n| (n.czxid, n.children.is_empty()));
                let parent_path = path::parent(p);
                let mine = |czxid: i64| czxid < m || touched.nodes.contains(&**p);
                match (state, parent_path) {
                    (Some((czxid, true)), Some(pp)) if mine(czxid) => {
                        let keep = self.parent_side_shown(pp, m, touched);
                        self.delete_node(p, m, triggers);
                        self.restore_parent_side(pp, keep);
                        touched.nodes.insert(p.clone());
                    }
                    // A node with children is deferred (see the module doc); a missing node
                    // or a later incarnation is already shown. The parent still records it.
                    (_, Some(pp)) => self.replay_parent_change(pp, m, None, touched),
                    (_, None) => {}
                }
            }
            Txn::SetData {
                path: p,
                data,
                version,
            } => {
                let apply = self
                    .nodes
                    .get(&**p)
                    .is_some_and(|n| touched.nodes.contains(&**p) || (n.czxid <= m && n.mzxid < m));
                if apply && self.write_data(p, data, *version, m, rec.time_ms) {
                    touched.nodes.insert(p.clone());
                }
            }
            Txn::SetAcl {
                path: p,
                acl,
                aversion,
            } => {
                if let Some(n) = self.nodes.get_mut(&**p) {
                    if touched.nodes.contains(&**p) || (n.czxid <= m && n.aversion < *aversion) {
                        n.acl = self.acls.intern(acl);
                        n.aversion = *aversion;
                        touched.nodes.insert(p.clone());
                    }
                }
            }
        }
    }

    /// Whether the parent's copy already shows transaction `m` (its pzxid is at or past
    /// `m` and no earlier operation of this transaction changed it during replay). If so,
    /// returns its (pzxid, cversion) to put back after a create or delete that also
    /// changes the children set.
    fn parent_side_shown(
        &self,
        parent_path: &str,
        m: i64,
        touched: &mut Touched,
    ) -> Option<(i64, i32)> {
        let parent = self.nodes.get(parent_path)?;
        let changed_here =
            touched.parents.contains(parent_path) || touched.nodes.contains(parent_path);
        if parent.pzxid >= m && !changed_here {
            return Some((parent.pzxid, parent.cversion_creations));
        }
        touched.parents.insert(Arc::from(parent_path));
        None
    }

    fn restore_parent_side(&mut self, parent_path: &str, keep: Option<(i64, i32)>) {
        if let (Some((pzxid, creations)), Some(parent)) = (keep, self.nodes.get_mut(parent_path)) {
            parent.pzxid = pzxid;
            parent.cversion_creations = creations;
        }
    }

    /// The parent's side of a child created or deleted at `m` whose own change the copy
    /// already shows: cversion (creates only) and pzxid, unless the parent's copy is newer.
    fn replay_parent_change(
        &mut self,
        parent_path: &str,
        m: i64,
        cversion: Option<i32>,
        touched: &mut Touched,
    ) {
        if self.parent_side_shown(parent_path, m, touched).is_some() {
            return;
        }
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.pzxid = m;
            if let Some(c) = cversion {
                parent.cversion_creations = c;
            }
        }
    }

    /// Gives the node at `c.path` the fields a create at `m` sets, keeping its children.
    fn recreate_in_place(&mut self, c: &super::CreateTxn, m: i64, time_ms: i64) {
        let Some(n) = self.nodes.get_mut(&*c.path) else {
            return;
        };
        let old_len = data_len(&n.data) as i64;
        let new_len = data_len(&c.data) as i64;
        let old_owner = n.ephemeral_owner;
        n.data = c.data.clone();
        n.acl = self.acls.intern(&c.acl);
        n.czxid = m;
        n.mzxid = m;
        n.pzxid = n.pzxid.max(m);
        n.ctime_ms = time_ms;
        n.mtime_ms = time_ms;
        n.version = 0;
        n.aversion = 0;
        n.cversion_creations = 0;
        n.ephemeral_owner = c.ephemeral_owner;
        self.data_bytes = self.data_bytes - old_len as u64 + new_len as u64;
        if old_owner != c.ephemeral_owner {
            if txn::is_session_owner(old_owner) {
                if let Some(set) = self.ephemerals.get_mut(&old_owner) {
                    set.remove(&*c.path);
                    if set.is_empty() {
                        self.ephemerals.remove(&old_owner);
                    }
                }
            } else if old_owner != 0 {
                self.extended.remove(&*c.path);
            }
            if txn::is_session_owner(c.ephemeral_owner) {
                self.ephemerals
                    .entry(c.ephemeral_owner)
                    .or_default()
                    .insert(c.path.clone());
            } else if c.ephemeral_owner != 0 {
                self.extended.insert(c.path.clone());
            }
        }
        self.quotas.on_data_change(&c.path, new_len - old_len);
        self.refresh_quota_stats_for(&c.path);
    }
}
