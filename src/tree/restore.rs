//! Rebuilding a [`DataTree`] from a flat list of nodes (a snapshot), and the read access a
//! snapshot needs. Everything derived is recomputed here rather than stored: children sets
//! (from paths), the ephemerals-by-session index, the container/TTL set, quota usage and the
//! data size. So a snapshot cannot disagree with itself about them. Matches what
//! `DataTree.deserialize` rebuilds in ZooKeeper (children, ephemerals, containers, TTLs,
//! quota trie).

use super::{config_node, quota, txn, Children, DataTree, Node};
use crate::proto::{path, Acl, CONFIG_PATH};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;

type AclList = Arc<Vec<Acl>>;

/// A node list that cannot be a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("path {path:?} appears twice")]
    DuplicatePath { path: String },
    #[error("no root node")]
    MissingRoot,
    #[error("node {path:?} has no parent node")]
    MissingParent { path: String },
    #[error("invalid path {path:?}")]
    InvalidPath { path: String },
}

impl DataTree {
    /// Every node with its path, in no particular order (for snapshots).
    pub fn iter_nodes(&self) -> impl Iterator<Item = (&Arc<str>, &Node)> {
        self.nodes.iter().map(|(p, n)| (p, &**n))
    }

    /// Builds a tree from `nodes` (their `children` are ignored and recomputed) at
    /// `last_zxid`. `/zookeeper/config` takes `config_data` from the running config, as a
    /// fresh tree does.
    pub fn restore(
        nodes: impl IntoIterator<Item = (Arc<str>, Node)>,
        last_zxid: i64,
        config_data: Bytes,
    ) -> Result<DataTree, RestoreError> {
        let nodes = nodes.into_iter();
        let mut tree = DataTree::default();
        // Sized once: growing a million-entry map step by step rehashes it ~20 times.
        tree.nodes.reserve(nodes.size_hint().0);
        let mut paths: Vec<Arc<str>> = Vec::with_capacity(nodes.size_hint().0);
        // A snapshot's nodes share one list per entry of its ACL table: each list is looked
        // up in the cache once, not once per node. The memo holds each list it has seen, so
        // no address in it can be freed and reused by another list.
        let mut interned: HashMap<*const Vec<Acl>, (AclList, AclList)> = HashMap::new();
        for (p, mut node) in nodes {
            node.acl = interned
                .entry(Arc::as_ptr(&node.acl))
                .or_insert_with(|| (node.acl.clone(), tree.acls.intern(&node.acl)))
                .1
                .clone();
            if p.as_ref() != "/" && path::validate(&p).is_err() {
                return Err(RestoreError::InvalidPath {
                    path: p.to_string(),
                });
            }
            node.children = Children::default();
            tree.data_bytes += super::data_len(&node.data) as u64;
            let owner = node.ephemeral_owner;
            if txn::is_session_owner(owner) {
                tree.ephemerals.entry(owner).or_default().insert(p.clone());
            } else if owner != 0 {
                tree.extended.insert(p.clone());
            }
            if tree.nodes.insert(p.clone(), Box::new(node)).is_some() {
                return Err(RestoreError::DuplicatePath {
                    path: p.to_string(),
                });
            }
            paths.push(p);
        }
        if !tree.nodes.contains_key("/") {
            return Err(RestoreError::MissingRoot);
        }
        // Children sets from paths. A snapshot lists nodes sorted by path, so the children of
        // one parent come in runs, in name order: each run is handed to its parent at once
        // (one lookup per run, and an ordered bulk insert), which at a million nodes is
        // several times faster than a lookup and a B-tree insert per node. Any order is
        // still correct, only slower.
        let mut run_parent: Option<&str> = None;
        let mut run: Vec<Arc<str>> = Vec::new();
        for p in &paths {
            let Some(parent) = path::parent(p) else {
                continue;
            };
            if run_parent != Some(parent) {
                if let Some(done) = run_parent {
                    tree.adopt_children(done, &mut run)?;
                }
                run_parent = Some(parent);
            }
            run.push(p.clone());
        }
        if let Some(done) = run_parent {
            tree.adopt_children(done, &mut run)?;
        }
        // The config node reflects the running configuration, not the one snapshotted,
        // unless the snapshot holds a newer one (a reconfig this server missed: a learner
        // synced by snapshot then activates it).
        match tree.nodes.get_mut(CONFIG_PATH) {
            Some(n)
                if config_version(Some(&config_data[..]))
                    .is_some_and(|running| config_version(n.data.as_deref()) > Some(running)) => {}
            Some(n) => {
                tree.data_bytes =
                    tree.data_bytes - super::data_len(&n.data) as u64 + config_data.len() as u64;
                n.data = Some(config_data);
            }
            None => {
                if let Some(zk) = tree.nodes.get_mut(crate::proto::ZOOKEEPER_PATH) {
                    let config_path: Arc<str> = Arc::from(CONFIG_PATH);
                    zk.children.insert(config_path.clone());
                    tree.data_bytes += config_data.len() as u64;
                    tree.nodes
                        .insert(config_path, Box::new(config_node(config_data)));
                }
            }
        }
        // Quota tracking: recount every subtree that has a limits node, as applying its
        // creation did.
        let mut limits: Vec<&Arc<str>> = paths
            .iter()
            .filter(|p| path::name(p) == quota::LIMITS_NODE)
            .collect();
        limits.sort();
        for p in limits {
            tree.after_quota_node_change(p);
        }
        tree.last_zxid = last_zxid;
        Ok(tree)
    }

    /// Adds `child_paths` (drained) to the children of `parent`; sorted input makes a
    /// fresh set in one bulk build.
    fn adopt_children(
        &mut self,
        parent: &str,
        child_paths: &mut Vec<Arc<str>>,
    ) -> Result<(), RestoreError> {
        let Some(parent_node) = self.nodes.get_mut(parent) else {
            return Err(RestoreError::MissingParent {
                path: child_paths
                    .first()
                    .map_or_else(|| parent.to_string(), |c| c.to_string()),
            });
        };
        parent_node.children.adopt(child_paths);
        Ok(())
    }
}

/// The `version=<hex>` of a `/zookeeper/config` text; `None` if it has none (standalone).
fn config_version(data: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(data?)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("version="))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;
    use crate::tree::{CreateTxn, Txn, TxnRecord};

    fn create(tree: &mut DataTree, zxid: i64, path: &str, owner: i64) {
        let parent = path::parent(path).unwrap();
        let parent_cversion = tree.get(parent).unwrap().cversion_creations + 1;
        let rec = TxnRecord {
            zxid,
            time_ms: zxid * 10,
            session_id: 1,
            cxid: 0,
            txn: Txn::Create(CreateTxn {
                path: Arc::from(path),
                data: Some(Bytes::from(format!("d{zxid}"))),
                acl: Arc::new(Acl::open_unsafe()),
                ephemeral_owner: owner,
                parent_cversion,
                with_stat: false,
            }),
        };
        tree.apply(&rec, &mut Vec::new());
    }

    #[test]
    fn restore_recomputes_derived_state() {
        let mut t = DataTree::new(Bytes::from_static(b"cfg"));
        create(&mut t, 1, "/a", 0);
        create(&mut t, 2, "/a/e", 0x0100_0000_0000_0001);
        create(&mut t, 3, "/c", txn::CONTAINER_OWNER);
        create(&mut t, 4, "/zookeeper/quota/a", 0);
        create(&mut t, 5, "/zookeeper/quota/a/zookeeper_limits", 0);
        create(&mut t, 6, "/zookeeper/quota/a/zookeeper_stats", 0);
        let nodes = t.iter_nodes().map(|(p, n)| (p.clone(), n.clone()));
        let r = DataTree::restore(nodes, t.last_zxid(), Bytes::from_static(b"cfg")).unwrap();
        assert_eq!(r.node_count(), t.node_count());
        assert_eq!(r.last_zxid(), 6);
        assert_eq!(r.approximate_data_bytes(), t.approximate_data_bytes());
        assert_eq!(r.ephemeral_count(), 1);
        assert_eq!(r.extended_nodes().count(), 1);
        for (p, n) in t.iter_nodes() {
            assert_eq!(r.get(p).unwrap().stat(), n.stat(), "{p}");
            assert_eq!(r.get(p).unwrap().children, n.children, "{p}");
        }
        assert_eq!(
            r.quota_for("/a").map(|q| q.1),
            t.quota_for("/a").map(|q| q.1)
        );
    }

    #[test]
    fn config_version_reads_the_version_line() {
        assert_eq!(
            config_version(Some(b"server.1=a:1:2:participant\nversion=1a")),
            Some(26)
        );
        assert_eq!(config_version(Some(b"")), None);
        assert_eq!(config_version(None), None);
    }

    #[test]
    fn restore_refuses_orphans() {
        let t = DataTree::new(Bytes::new());
        let mut nodes: Vec<_> = t
            .iter_nodes()
            .map(|(p, n)| (p.clone(), n.clone()))
            .collect();
        let orphan = nodes[0].1.clone();
        nodes.push((Arc::from("/x/y"), orphan));
        assert_eq!(
            DataTree::restore(nodes, 0, Bytes::new()).unwrap_err(),
            RestoreError::MissingParent {
                path: "/x/y".into()
            }
        );
    }
}
