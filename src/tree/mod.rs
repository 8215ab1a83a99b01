//! The data tree: znodes, their Stat, ephemerals by session, containers, TTL nodes and
//! quota usage, and [`DataTree::apply`], the one way it changes.
//!
//! Every shard holds a replica and the ZAB executor holds the copy at the last proposed
//! zxid; all of them apply the same transaction stream, so `apply` must be deterministic
//! and must accept only transactions the sequencer validated (it asserts what the
//! sequencer guarantees). Matches `org.apache.zookeeper.server.DataTree` / `DataNode`.
//!
//! cversion: like ZooKeeper, a node stores the number of child *creations*
//! (`cversion_creations`) and reports `2 * creations - numChildren` (= creates + deletes);
//! the sequential suffix uses the stored count.

pub mod acl;
pub mod preimages;
pub mod quota;
pub mod replay;
pub mod restore;
pub mod txn;
pub mod watches;

use crate::proto::{
    path, Acl, ErrorCode, SessionId, Stat, CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH,
};
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
pub use txn::{CreateTxn, Txn, TxnRecord};

/// Length of znode data (null counts as 0).
pub fn data_len(data: &Option<Bytes>) -> usize {
    data.as_ref().map_or(0, |d| d.len())
}

/// One znode. `data` is `None` when a client wrote jute's null buffer: ZooKeeper keeps the
/// null and answers getData with it (zkCli prints `null`).
#[derive(Debug, Clone)]
pub struct Node {
    pub data: Option<Bytes>,
    pub acl: Arc<Vec<Acl>>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime_ms: i64,
    pub mtime_ms: i64,
    pub version: i32,
    pub cversion_creations: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
    pub children: Children,
}

/// A node's fields without its children: what a snapshot copies (it derives the children
/// from the paths) and what a pre-image keeps (`preimages`).
#[derive(Debug, Clone)]
pub struct NodeCopy {
    pub data: Option<Bytes>,
    pub acl: Arc<Vec<Acl>>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime_ms: i64,
    pub mtime_ms: i64,
    pub version: i32,
    pub cversion_creations: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

/// A node's children, held by their full paths: the very `Arc`s that key the node map, so
/// a child costs no allocation of its own (a name per child per tree was ~50 bytes a znode).
/// All children share the prefix `parent/`, so path order is name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children(BTreeSet<Arc<str>>);

impl Children {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The children's full paths, in name order.
    pub fn paths(&self) -> impl DoubleEndedIterator<Item = &Arc<str>> + ExactSizeIterator {
        self.0.iter()
    }

    /// The children's names (what getChildren answers), in name order.
    pub fn names(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.0.iter().map(|p| path::name(p))
    }

    fn insert(&mut self, child_path: Arc<str>) {
        self.0.insert(child_path);
    }

    fn remove(&mut self, child_path: &str) {
        self.0.remove(child_path);
    }

    /// Adds child paths (drained); a sorted run into an empty set is one bulk build.
    fn adopt(&mut self, child_paths: &mut Vec<Arc<str>>) {
        if self.0.is_empty() {
            self.0 = child_paths.drain(..).collect();
        } else {
            self.0.extend(child_paths.drain(..));
        }
    }
}

/// /zookeeper/config: world-readable only, and aclVersion -1 as ZooKeeper reports it
/// (its ACL is set without a setACL transaction).
fn config_node(config_data: Bytes) -> Node {
    let mut n = Node::new(Some(config_data), Arc::new(Acl::read_unsafe()));
    n.aversion = -1;
    n
}

impl Node {
    fn new(data: Option<Bytes>, acl: Arc<Vec<Acl>>) -> Node {
        Node {
            data,
            acl,
            czxid: 0,
            mzxid: 0,
            ctime_ms: 0,
            mtime_ms: 0,
            version: 0,
            cversion_creations: 0,
            aversion: 0,
            ephemeral_owner: 0,
            pzxid: 0,
            children: Children::default(),
        }
    }

    /// Every field but the children (data and ACL shared by refcount).
    pub fn copy_fields(&self) -> NodeCopy {
        NodeCopy {
            data: self.data.clone(),
            acl: self.acl.clone(),
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime_ms: self.ctime_ms,
            mtime_ms: self.mtime_ms,
            version: self.version,
            cversion_creations: self.cversion_creations,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            pzxid: self.pzxid,
        }
    }

    /// The Stat clients see.
    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime_ms,
            mtime: self.mtime_ms,
            version: self.version,
            cversion: self
                .cversion_creations
                .wrapping_mul(2)
                .wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: txn::visible_owner(self.ephemeral_owner),
            data_length: data_len(&self.data) as i32,
            num_children,
            pzxid: self.pzxid,
        }
    }
}

/// A watch trigger produced by `apply`: which path, which event, and the ACL of the node
/// the event is about as it was then (the changed, created or deleted node; the parent for
/// NodeChildrenChanged). Only a watcher that may READ under it is told (ZooKeeper 3.8 with
/// the fix for CVE-2024-23944).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub path: Arc<str>,
    pub event_type: i32,
    pub acl: Arc<Vec<Acl>>,
}

/// The result of one applied op, for the reply to the client that asked.
#[derive(Debug, Clone, PartialEq)]
pub enum OpResult {
    /// `extended`: a container or TTL node (answered as create2 inside a multi).
    Created {
        path: Arc<str>,
        stat: Stat,
        extended: bool,
    },
    Deleted,
    SetData {
        stat: Stat,
    },
    /// A reconfig: the new `/zookeeper/config` data and its Stat (answered as getData).
    Reconfigured {
        data: Option<Bytes>,
        stat: Stat,
    },
    SetAcl {
        stat: Stat,
    },
    Checked,
    SessionCreated,
    SessionClosed,
    Error(ErrorCode),
    Multi(Vec<OpResult>),
}

/// `Clone` is for startup (every shard starts from the recovered tree); data and ACLs
/// are shared by refcount.
/// Path -> node. ahash instead of SipHash: lookups hash the whole path, and at a million
/// nodes the hashing was a fifth of a restart (`bench/storage.rs`).
type NodeMap = HashMap<Arc<str>, Box<Node>, ahash::RandomState>;

#[derive(Debug, Clone, Default)]
pub struct DataTree {
    /// Boxed so that growing the map moves 24-byte entries, not whole nodes: with nodes
    /// inline, a resize at ~1M nodes stalled apply for hundreds of milliseconds.
    nodes: NodeMap,
    ephemerals: HashMap<SessionId, BTreeSet<Arc<str>>>,
    /// Containers and TTL nodes: candidates for the reaper.
    extended: HashSet<Arc<str>>,
    quotas: quota::QuotaIndex,
    last_zxid: i64,
    data_bytes: u64,
    /// Every node's ACL list comes from here (shared by content).
    acls: acl::AclCache,
    /// While an exact snapshot is copied in steps: nodes as they were when it began.
    preimages: Option<Box<preimages::Preimages>>,
}

impl DataTree {
    /// A fresh tree with `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new(config_data: Bytes) -> DataTree {
        let mut tree = DataTree::default();
        // Interned like every other list, so the first client node with this ACL shares it.
        let open = tree.acls.intern(&Acl::open_unsafe());
        let (zk_path, quota_path, config_path): (Arc<str>, Arc<str>, Arc<str>) = (
            Arc::from(ZOOKEEPER_PATH),
            Arc::from(QUOTA_PATH),
            Arc::from(CONFIG_PATH),
        );
        let mut root = Node::new(Some(Bytes::new()), open.clone());
        root.children.insert(zk_path.clone());
        let mut zk = Node::new(Some(Bytes::new()), open.clone());
        zk.children.insert(quota_path.clone());
        zk.children.insert(config_path.clone());
        tree.nodes.insert(Arc::from("/"), Box::new(root));
        tree.nodes.insert(zk_path, Box::new(zk));
        tree.nodes
            .insert(quota_path, Box::new(Node::new(Some(Bytes::new()), open)));
        tree.data_bytes = config_data.len() as u64;
        tree.nodes
            .insert(config_path, Box::new(config_node(config_data)));
        tree
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// The node at `path` with the map's own key (shared, so holding it costs no copy).
    pub fn get_with_key(&self, path: &str) -> Option<(&Arc<str>, &Node)> {
        self.nodes.get_key_value(path).map(|(k, n)| (k, &**n))
    }

    /// The ACL list a new txn should carry for `acl`: the list nodes already share when
    /// there is one, else `acl` as its own copy (a txn must not pin the request frame its
    /// ids were read from).
    pub fn shared_acl(&self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        self.acls
            .get(&acl)
            .unwrap_or_else(|| Arc::new(acl::owned_copy(&acl)))
    }

    /// How many distinct ACL lists the tree's nodes share.
    pub fn acl_lists_cached(&self) -> usize {
        self.acls.len()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Sum of data lengths (mntr's zk_approximate_data_size counts paths too).
    pub fn approximate_data_bytes(&self) -> u64 {
        self.data_bytes
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn ephemerals_of(&self, session: SessionId) -> impl Iterator<Item = &Arc<str>> {
        self.ephemerals.get(&session).into_iter().flatten()
    }

    /// Sessions that own ephemerals, for the `dump` four-letter word.
    pub fn ephemeral_sessions(&self) -> impl Iterator<Item = (&SessionId, &BTreeSet<Arc<str>>)> {
        self.ephemerals.iter()
    }

    /// Containers and TTL nodes, for the reaper.
    pub fn extended_nodes(&self) -> impl Iterator<Item = &Arc<str>> {
        self.extended.iter()
    }

    /// Number of descendants of `path` (not counting itself).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack: Vec<&str> = vec![path];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p) {
                count += n.children.len();
                stack.extend(n.children.paths().map(|c| &**c));
            }
        }
        count
    }

    /// Interned path if present (lets transactions share the tree's allocation).
    pub fn interned(&self, path: &str) -> Option<Arc<str>> {
        self.nodes.get_key_value(path).map(|(k, _)| k.clone())
    }

    /// Applies one ordered transaction. Returns the op result and the watch triggers,
    /// in the order ZooKeeper fires them.
    pub fn apply(&mut self, rec: &TxnRecord, triggers: &mut Vec<Trigger>) -> OpResult {
        assert!(
            rec.zxid >= self.last_zxid,
            "transactions apply in zxid order: {} after {}",
            rec.zxid,
            self.last_zxid
        );
        debug_assert!(
            self.preimages
                .as_deref()
                .is_none_or(|p| rec.zxid > p.as_of_zxid()),
            "a snapshot walk's pre-images need every later record above its zxid"
        );
        self.last_zxid = rec.zxid;
        self.apply_txn(&rec.txn, rec.zxid, rec.time_ms, rec.session_id, triggers)
    }

    fn apply_txn(
        &mut self,
        txn: &Txn,
        zxid: i64,
        time_ms: i64,
        session: SessionId,
        triggers: &mut Vec<Trigger>,
    ) -> OpResult {
        match txn {
            Txn::CreateSession { .. } => OpResult::SessionCreated,
            Txn::CloseSession { ephemerals } => {
                for p in ephemerals {
                    // The sequencer lists exactly the session's ephemerals; a node already
                    // gone (deleted in the same batch by the client) is simply skipped.
                    if self.nodes.contains_key(&**p) {
                        self.delete_node(p, zxid, triggers);
                    }
                }
                self.ephemerals.remove(&session);
                OpResult::SessionClosed
            }
            Txn::Create(c) => self.create_node(c, zxid, time_ms, triggers),
            Txn::Delete { path } | Txn::DeleteContainer { path } => {
                self.delete_node(path, zxid, triggers);
                OpResult::Deleted
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                assert!(
                    self.write_data(path, data, *version, zxid, time_ms),
                    "setData txn on missing node {path}"
                );
                let (stat, acl) = self
                    .nodes
                    .get(&**path)
                    .map(|n| (n.stat(), n.acl.clone()))
                    .unwrap_or_default();
                triggers.push(Trigger {
                    path: path.clone(),
                    event_type: crate::proto::event::NODE_DATA_CHANGED,
                    acl,
                });
                // ZooKeeper's reconfig is this setData with version -1 (a client's setData
                // never leaves a negative version); its reply carries the data too.
                if *version == -1 && &**path == CONFIG_PATH {
                    return OpResult::Reconfigured {
                        data: data.clone(),
                        stat,
                    };
                }
                OpResult::SetData { stat }
            }
            Txn::SetAcl {
                path,
                acl,
                aversion,
            } => {
                self.before_change(path);
                let node = self
                    .nodes
                    .get_mut(&**path)
                    .unwrap_or_else(|| panic!("setACL txn on missing node {path}"));
                node.acl = self.acls.intern(acl);
                node.aversion = *aversion;
                OpResult::SetAcl { stat: node.stat() }
            }
            Txn::Check { .. } => OpResult::Checked,
            Txn::Error { err } => OpResult::Error(*err),
            Txn::Multi { ops } => {
                let results = ops
                    .iter()
                    .map(|op| self.apply_txn(op, zxid, time_ms, session, triggers))
                    .collect();
                OpResult::Multi(results)
            }
        }
    }

    /// Sets `/zookeeper/config` outside the txn stream, as ZooKeeper's
    /// `ZKDatabase.initConfigInZKDatabase` does when the static membership gets its first
    /// version (the first zxid of the first established epoch, with `reconfigEnabled`):
    /// the data, dataVersion -1, mZxid the version, mtime `time_ms`. No txn carries it, so
    /// the tree's last zxid stays. False if there is no config node.
    pub fn set_config_node(&mut self, data: Bytes, version_zxid: i64, time_ms: i64) -> bool {
        let path: Arc<str> = Arc::from(CONFIG_PATH);
        self.write_data(&path, &Some(data), -1, version_zxid, time_ms)
    }

    /// A setData's effect on the node at `path` and the tree's accounting; false if there
    /// is no such node.
    fn write_data(
        &mut self,
        path: &Arc<str>,
        data: &Option<Bytes>,
        version: i32,
        zxid: i64,
        time_ms: i64,
    ) -> bool {
        self.before_change(path);
        let Some(node) = self.nodes.get_mut(&**path) else {
            return false;
        };
        let old_len = data_len(&node.data) as i64;
        let new_len = data_len(data) as i64;
        self.data_bytes = self.data_bytes - old_len as u64 + new_len as u64;
        node.data = data.clone();
        node.version = version;
        node.mzxid = zxid;
        node.mtime_ms = time_ms;
        self.quotas.on_data_change(path, new_len - old_len);
        self.refresh_quota_stats_for(path);
        true
    }

    fn create_node(
        &mut self,
        c: &CreateTxn,
        zxid: i64,
        time_ms: i64,
        triggers: &mut Vec<Trigger>,
    ) -> OpResult {
        let parent_path = path::parent(&c.path).expect("create txn for /");
        self.before_change(parent_path);
        let parent = self
            .nodes
            .get_mut(parent_path)
            .unwrap_or_else(|| panic!("create txn {} without parent", c.path));
        parent.children.insert(c.path.clone());
        parent.cversion_creations = c.parent_cversion;
        parent.pzxid = zxid;
        let parent_acl = parent.acl.clone();
        let parent_key = self.interned(parent_path).expect("parent present");
        let mut node = Node::new(c.data.clone(), self.acls.intern(&c.acl));
        node.czxid = zxid;
        node.mzxid = zxid;
        node.pzxid = zxid;
        node.ctime_ms = time_ms;
        node.mtime_ms = time_ms;
        node.ephemeral_owner = c.ephemeral_owner;
        let stat = node.stat();
        self.data_bytes += data_len(&c.data) as u64;
        let previous = self.nodes.insert(c.path.clone(), Box::new(node));
        assert!(previous.is_none(), "create txn over existing {}", c.path);
        if txn::is_session_owner(c.ephemeral_owner) {
            self.ephemerals
                .entry(c.ephemeral_owner)
                .or_default()
                .insert(c.path.clone());
        } else if c.ephemeral_owner != 0 {
            self.extended.insert(c.path.clone());
        }
        self.quotas.on_create(&c.path, data_len(&c.data) as i64);
        self.after_quota_node_change(&c.path);
        self.refresh_quota_stats_for(&c.path);
        triggers.push(Trigger {
            path: c.path.clone(),
            event_type: crate::proto::event::NODE_CREATED,
            acl: c.acl.clone(),
        });
        triggers.push(Trigger {
            path: parent_key,
            event_type: crate::proto::event::NODE_CHILDREN_CHANGED,
            acl: parent_acl,
        });
        OpResult::Created {
            path: c.path.clone(),
            stat,
            extended: c.ephemeral_owner != 0 && !txn::is_session_owner(c.ephemeral_owner),
        }
    }

    fn delete_node(&mut self, p: &Arc<str>, zxid: i64, triggers: &mut Vec<Trigger>) {
        self.before_change(p);
        let node = self
            .nodes
            .remove(&**p)
            .unwrap_or_else(|| panic!("delete txn on missing node {p}"));
        assert!(node.children.is_empty(), "delete txn on non-empty {p}");
        self.data_bytes -= data_len(&node.data) as u64;
        if txn::is_session_owner(node.ephemeral_owner) {
            if let Some(set) = self.ephemerals.get_mut(&node.ephemeral_owner) {
                set.remove(&**p);
                if set.is_empty() {
                    self.ephemerals.remove(&node.ephemeral_owner);
                }
            }
        } else if node.ephemeral_owner != 0 {
            self.extended.remove(&**p);
        }
        let parent_path = path::parent(p).expect("delete txn for /");
        let parent_key = self.interned(parent_path).expect("parent of a node exists");
        let mut parent_acl = Arc::default();
        self.before_change(parent_path);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.remove(p);
            parent.pzxid = zxid;
            parent_acl = parent.acl.clone();
        }
        self.quotas.on_delete(p, data_len(&node.data) as i64);
        self.after_quota_node_change(p);
        self.refresh_quota_stats_for(p);
        triggers.push(Trigger {
            path: p.clone(),
            event_type: crate::proto::event::NODE_DELETED,
            acl: node.acl.clone(),
        });
        triggers.push(Trigger {
            path: parent_key,
            event_type: crate::proto::event::NODE_CHILDREN_CHANGED,
            acl: parent_acl,
        });
    }

    /// A `zookeeper_limits` node appearing or going away changes which subtrees are
    /// tracked; a `zookeeper_stats` node appearing asks for a recount (as ZooKeeper does).
    fn after_quota_node_change(&mut self, changed: &str) {
        let Some(root) = quota::quota_root_of_quota_node(changed) else {
            return;
        };
        let limits_path = quota::limits_path(&root);
        if self.nodes.contains_key(limits_path.as_str()) {
            let (count, bytes) = self.subtree_usage(&root);
            self.quotas.track(&root, count, bytes);
            self.write_quota_stats(&root, quota::Usage { count, bytes });
        } else {
            self.quotas.untrack(&root);
        }
    }

    /// Rewrites the `zookeeper_stats` node of the quota root covering `changed`.
    fn refresh_quota_stats_for(&mut self, changed: &str) {
        let Some((root, usage)) = self.quotas.covering(changed) else {
            return;
        };
        self.write_quota_stats(&root, usage);
    }

    fn write_quota_stats(&mut self, root: &str, usage: quota::Usage) {
        let stats_path = quota::stats_path(root);
        let text = format!("count={},bytes={}", usage.count, usage.bytes);
        self.before_change(&stats_path);
        if let Some(stats) = self.nodes.get_mut(stats_path.as_str()) {
            if stats.data.as_deref() != Some(text.as_bytes()) {
                self.data_bytes =
                    self.data_bytes - data_len(&stats.data) as u64 + text.len() as u64;
                stats.data = Some(Bytes::from(text));
            }
        }
    }

    /// (count, bytes) of the subtree at `root`, counting `root` itself.
    pub fn subtree_usage(&self, root: &str) -> (i64, i64) {
        let mut count = 0;
        let mut bytes = 0;
        let mut stack: Vec<&str> = vec![root];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p) {
                count += 1;
                bytes += data_len(&n.data) as i64;
                stack.extend(n.children.paths().map(|c| &**c));
            }
        }
        (count, bytes)
    }

    /// Quota usage and limits covering `path`, for enforcement in the sequencer. As in
    /// ZooKeeper, a quota is enforced only while its `zookeeper_stats` node exists.
    pub fn quota_for(&self, path: &str) -> Option<(String, quota::Usage, quota::Limits)> {
        let (root, usage) = self.quotas.covering(path)?;
        self.nodes.get(quota::stats_path(&root).as_str())?;
        let limits_node = self.nodes.get(quota::limits_path(&root).as_str())?;
        let limits = quota::Limits::parse(&String::from_utf8_lossy(
            limits_node.data.as_deref().unwrap_or_default(),
        ));
        Some((root, usage, limits))
    }

    /// All paths, for 4lw `dump`-style walks and tests; not for hot paths.
    pub fn paths(&self) -> impl Iterator<Item = &Arc<str>> {
        self.nodes.keys()
    }
}

#[cfg(test)]
mod tests;
