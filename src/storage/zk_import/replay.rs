//! ZooKeeper's tree as ZooKeeper rebuilds it at start: a snapshot, then every logged txn
//! after it applied with `DataTree.processTxn`'s rules, including its tolerance.
//!
//! Why not Corral's `DataTree::apply`: a ZooKeeper snapshot is *fuzzy* (serialised while
//! the tree kept changing), so txns after the snapshot's zxid may already be in it.
//! ZooKeeper relies on replaying them being harmless: a create over an existing node or
//! a delete of a missing one fails with NodeExists / NoNode, which is ignored; the parent's
//! cversion and pzxid only move forward. Corral's `apply` asserts instead (there, such a
//! txn is a bug), so this module keeps ZooKeeper's own rules and hands Corral a finished
//! node list. Matches `DataTree.createNode`, `deleteNode`, `setData`, `setACL`,
//! `killSession`, `setCversionPzxid`, `processTxn` (multi), and `DigestCalculator`.

use super::format::{crc32_ieee, StatPersisted, ZkSnapshot, OPEN_UNSAFE_ACL_ID};
use super::txn::{TxnHeader, ZkCreate, ZkTxn};
use crate::proto::{Acl, SessionId};
use crate::tree::{txn::is_session_owner, Node};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// One znode.
#[derive(Debug, Clone, PartialEq)]
pub struct ZkNode {
    pub data: Option<Bytes>,
    pub acl: Arc<Vec<Acl>>,
    pub stat: StatPersisted,
    pub children: BTreeSet<String>,
}

/// What applying one txn did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Changed the tree (or was a session / error / check txn).
    Ok,
    /// Failed with NoNode or NodeExists and was ignored, as ZooKeeper ignores it: the
    /// change was already in the (fuzzy) snapshot.
    Ignored,
}

/// The tree, the session table and the last zxid.
#[derive(Debug, Clone, Default)]
pub struct ZkTree {
    /// Keyed by path; the root is `"/"`.
    nodes: HashMap<String, ZkNode>,
    /// Ephemerals by owner session, as ZooKeeper's `ephemerals` map.
    ephemerals: HashMap<SessionId, BTreeSet<String>>,
    pub sessions: BTreeMap<SessionId, i32>,
    pub last_zxid: i64,
    /// One shared allocation per distinct ACL list (ZooKeeper's ACL cache does the same).
    acl_lists: HashMap<Vec<Acl>, Arc<Vec<Acl>>>,
}

/// `(parent, name)` of a path other than the root.
fn split(path: &str) -> Result<(&str, &str), String> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Ok(("/", &path[1..])),
        Some(i) if i > 0 && i + 1 < path.len() && path.starts_with('/') => {
            Ok((&path[..i], &path[i + 1..]))
        }
        _ => Err(format!("invalid path {path:?}")),
    }
}

impl ZkTree {
    /// The tree a snapshot holds, at `zxid` (the snapshot file's name), checked as
    /// ZooKeeper's `DataTree.deserialize` checks it (every node's parent came before it).
    pub fn from_snapshot(snap: &ZkSnapshot, zxid: i64) -> Result<ZkTree, String> {
        let mut tree = ZkTree {
            last_zxid: zxid,
            sessions: snap.sessions.iter().copied().collect(),
            ..ZkTree::default()
        };
        let mut lists: HashMap<i64, Arc<Vec<Acl>>> = HashMap::new();
        for (id, list) in &snap.acls {
            lists.insert(*id, tree.intern_acl(Some(list.clone())));
        }
        let open = tree.intern_acl(None);
        for n in &snap.nodes {
            let acl = if n.acl == OPEN_UNSAFE_ACL_ID {
                open.clone()
            } else {
                lists
                    .get(&n.acl)
                    .cloned()
                    .ok_or_else(|| format!("node {:?}: unknown ACL list {}", n.path, n.acl))?
            };
            let path = if n.path.is_empty() {
                "/".to_string()
            } else {
                let (parent, name) = split(&n.path)?;
                let parent = tree.nodes.get_mut(parent).ok_or_else(|| {
                    format!("node {:?} comes before its parent {parent:?}", n.path)
                })?;
                parent.children.insert(name.to_string());
                n.path.clone()
            };
            let owner = n.stat.ephemeral_owner;
            if is_session_owner(owner) {
                tree.ephemerals
                    .entry(owner)
                    .or_default()
                    .insert(path.clone());
            }
            let node = ZkNode {
                data: n.data.clone(),
                acl,
                stat: n.stat,
                children: BTreeSet::new(),
            };
            if tree.nodes.insert(path.clone(), node).is_some() {
                return Err(format!("node {path:?} appears twice"));
            }
        }
        if !tree.nodes.contains_key("/") {
            return Err("no root node".into());
        }
        Ok(tree)
    }

    fn intern_acl(&mut self, acl: Option<Vec<Acl>>) -> Arc<Vec<Acl>> {
        let list = acl.unwrap_or_else(Acl::open_unsafe);
        self.acl_lists
            .entry(list.clone())
            .or_insert_with(|| Arc::new(list))
            .clone()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn get(&self, path: &str) -> Option<&ZkNode> {
        self.nodes.get(path)
    }

    /// Applies one logged txn. `Err` = the txn cannot be applied at all (a malformed path),
    /// which ZooKeeper would fail on too.
    pub fn apply(&mut self, h: &TxnHeader, txn: &ZkTxn) -> Result<Applied, String> {
        let applied = match txn {
            ZkTxn::CreateSession { timeout_ms } => {
                self.sessions.insert(h.client_id, *timeout_ms);
                Applied::Ok
            }
            ZkTxn::CloseSession { paths } => {
                self.sessions.remove(&h.client_id);
                self.kill_session(h.client_id, h.zxid, paths)?;
                Applied::Ok
            }
            ZkTxn::Multi { ops } => {
                // One failed op turns the whole multi into errors: nothing changes.
                if !ops.iter().any(|o| matches!(o, ZkTxn::Error { .. })) {
                    for op in ops {
                        // Sub-op failures are ignored one by one, as ZooKeeper does.
                        self.apply_op(h, op)?;
                    }
                }
                Applied::Ok
            }
            op => self.apply_op(h, op)?,
        };
        if h.zxid > self.last_zxid {
            self.last_zxid = h.zxid;
        }
        Ok(applied)
    }

    fn apply_op(&mut self, h: &TxnHeader, txn: &ZkTxn) -> Result<Applied, String> {
        Ok(match txn {
            ZkTxn::Create(c) => self.create(c, h.zxid, h.time_ms)?,
            ZkTxn::Delete { path } => self.delete(path, h.zxid)?,
            ZkTxn::SetData {
                path,
                data,
                version,
            } => match self.nodes.get_mut(path.as_str()) {
                None => Applied::Ignored,
                Some(n) => {
                    n.data = data.clone();
                    n.stat.mtime = h.time_ms;
                    n.stat.mzxid = h.zxid;
                    n.stat.version = *version;
                    Applied::Ok
                }
            },
            ZkTxn::SetAcl { path, acl, version } => {
                let acl = self.intern_acl(acl.clone());
                match self.nodes.get_mut(path.as_str()) {
                    None => Applied::Ignored,
                    Some(n) => {
                        n.stat.aversion = *version;
                        n.acl = acl;
                        Applied::Ok
                    }
                }
            }
            ZkTxn::Check | ZkTxn::Error { .. } => Applied::Ok,
            ZkTxn::CreateSession { .. } | ZkTxn::CloseSession { .. } | ZkTxn::Multi { .. } => {
                return Err("session or multi txn inside a multi".into())
            }
        })
    }

    fn create(&mut self, c: &ZkCreate, zxid: i64, time_ms: i64) -> Result<Applied, String> {
        let (parent_path, name) = split(&c.path)?;
        let acl = self.intern_acl(c.acl.clone());
        if !self.nodes.contains_key(parent_path) {
            return Ok(Applied::Ignored);
        }
        if let Some(existing) = self.nodes.get_mut(c.path.as_str()) {
            // ZooKeeper gives the existing node the txn's ACL before failing.
            existing.acl = acl;
            if c.fix_parent_on_exists {
                self.raise_cversion(parent_path, c.parent_cversion, zxid);
            }
            return Ok(Applied::Ignored);
        }
        self.raise_cversion(parent_path, c.parent_cversion, zxid);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.insert(name.to_string());
        }
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: c.ephemeral_owner,
            pzxid: zxid,
        };
        self.nodes.insert(
            c.path.clone(),
            ZkNode {
                data: c.data.clone(),
                acl,
                stat,
                children: BTreeSet::new(),
            },
        );
        if is_session_owner(c.ephemeral_owner) {
            self.ephemerals
                .entry(c.ephemeral_owner)
                .or_default()
                .insert(c.path.clone());
        }
        Ok(Applied::Ok)
    }

    /// `setCversionPzxid` / the cversion step of `createNode`: only ever forward.
    fn raise_cversion(&mut self, path: &str, parent_cversion: i32, zxid: i64) {
        if let Some(parent) = self.nodes.get_mut(path) {
            let cversion = if parent_cversion == -1 {
                parent.stat.cversion.wrapping_add(1)
            } else {
                parent_cversion
            };
            if cversion > parent.stat.cversion {
                parent.stat.cversion = cversion;
                parent.stat.pzxid = zxid;
            }
        }
    }

    fn delete(&mut self, path: &str, zxid: i64) -> Result<Applied, String> {
        let (parent_path, name) = split(path)?;
        // The parent is updated even when the child is already gone (fuzzy snapshot).
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return Ok(Applied::Ignored);
        };
        parent.children.remove(name);
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let Some(node) = self.nodes.remove(path) else {
            return Ok(Applied::Ignored);
        };
        let owner = node.stat.ephemeral_owner;
        if is_session_owner(owner) {
            if let Some(set) = self.ephemerals.get_mut(&owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        Ok(Applied::Ok)
    }

    /// `killSession`: the paths the txn lists, then any other ephemeral of the session.
    fn kill_session(
        &mut self,
        session: SessionId,
        zxid: i64,
        paths: &[String],
    ) -> Result<(), String> {
        let mut own = self.ephemerals.remove(&session).unwrap_or_default();
        for p in paths {
            own.remove(p);
            self.delete(p, zxid)?;
        }
        for p in own {
            self.delete(&p, zxid)?;
        }
        Ok(())
    }

    /// Deletes ephemerals whose session is not in the session table, as ZooKeeper does
    /// when it starts (`ZooKeeperServer.loadData`, "clean up dead sessions"), at the last
    /// zxid. Returns how many nodes went.
    pub fn remove_orphan_ephemerals(&mut self) -> Result<usize, String> {
        let dead: Vec<SessionId> = self
            .ephemerals
            .keys()
            .filter(|s| !self.sessions.contains_key(s))
            .copied()
            .collect();
        let mut removed = 0;
        for s in dead {
            removed += self.ephemerals.get(&s).map_or(0, |set| set.len());
            self.kill_session(s, self.last_zxid, &[])?;
        }
        Ok(removed)
    }

    /// ZooKeeper's tree digest (`DigestCalculator` v2 summed as `AdHash`): per node, the
    /// CRC-32 of path (`""` for the root), data and the stat fields; nodes under
    /// `/zookeeper/` are left out, as ZooKeeper leaves them out.
    pub fn digest(&self) -> i64 {
        let mut sum = 0i64;
        for (path, n) in &self.nodes {
            if path.starts_with("/zookeeper/") {
                continue;
            }
            let path = if path == "/" { "" } else { path.as_str() };
            let s = &n.stat;
            let mut stat = [0u8; 60];
            let mut at = 0;
            for v in [s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime] {
                stat[at..at + 8].copy_from_slice(&v.to_be_bytes());
                at += 8;
            }
            for v in [s.version, s.cversion, s.aversion] {
                stat[at..at + 4].copy_from_slice(&v.to_be_bytes());
                at += 4;
            }
            stat[at..at + 8].copy_from_slice(&s.ephemeral_owner.to_be_bytes());
            let data = n.data.as_deref().unwrap_or_default();
            sum = sum.wrapping_add(crc32_ieee(&[path.as_bytes(), data, &stat]) as i64);
        }
        sum
    }

    /// The nodes reachable from the root (as ZooKeeper's next snapshot would write them:
    /// a node whose parent a fuzzy replay deleted is not), converted to Corral's `Node`.
    pub fn into_corral_nodes(self) -> Vec<(Arc<str>, Node)> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec!["/".to_string()];
        while let Some(path) = stack.pop() {
            let Some(n) = self.nodes.get(&path) else {
                continue;
            };
            for c in &n.children {
                stack.push(if path == "/" {
                    format!("/{c}")
                } else {
                    format!("{path}/{c}")
                });
            }
            let s = n.stat;
            out.push((
                Arc::from(path.as_str()),
                Node {
                    data: n.data.clone(),
                    acl: n.acl.clone(),
                    czxid: s.czxid,
                    mzxid: s.mzxid,
                    ctime_ms: s.ctime,
                    mtime_ms: s.mtime,
                    version: s.version,
                    cversion_creations: s.cversion,
                    aversion: s.aversion,
                    ephemeral_owner: s.ephemeral_owner,
                    pzxid: s.pzxid,
                    children: crate::tree::Children::default(),
                },
            ));
        }
        out
    }
}
