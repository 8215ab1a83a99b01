//! Pre-images: what lets an *exact* snapshot be copied a few nodes at a time while the
//! tree goes on changing (`storage::snapshot::SnapshotCapture::start_exact`).
//!
//! From [`DataTree::keep_preimages`] on, the first change to a node that existed at that
//! moment (zxid `as_of`) keeps a copy of the node as it was (its children left out: a
//! snapshot derives them from the paths). The walk then takes, for each path it reaches,
//! that copy if there is one, else the live node, which has not changed since `as_of`;
//! it skips nodes created since (`czxid > as_of`). Nodes deleted before the walk reached
//! them are left among the copies and added when the walk ends. So the image is the tree
//! at `as_of`, with no replay needed at recovery: a replicated server's snapshot must be
//! exact, because it is also what a learner installs and the point its log is trimmed to.
//!
//! Each applied record's zxid is above `as_of` (zxids name one txn each), which is what
//! makes `czxid > as_of` mean "created since".

use super::{DataTree, NodeCopy};
use std::collections::HashMap;
use std::sync::Arc;

/// The copies kept for one walk.
#[derive(Debug, Clone)]
pub(super) struct Preimages {
    /// Names the walk these are for (a tree replaced meanwhile has none, or another's).
    walk_id: u64,
    as_of_zxid: i64,
    /// Path -> the node as it was at `as_of_zxid`; `None` once the walk has taken it (so a
    /// later change keeps nothing more).
    kept: HashMap<Arc<str>, Option<NodeCopy>, ahash::RandomState>,
}

/// What [`DataTree::take_preimage`] found for a path.
#[derive(Debug)]
pub enum Preimage {
    /// No change since the walk began: the live node (if any) is as it was then, unless it
    /// was created since.
    Unchanged,
    /// The node as it was when the walk began.
    Before(NodeCopy),
    /// The walk took this path's copy already.
    Taken,
}

impl Preimages {
    /// The zxid the walk copies the tree at.
    pub(super) fn as_of_zxid(&self) -> i64 {
        self.as_of_zxid
    }
}

impl DataTree {
    /// Starts keeping pre-images for walk `walk_id` (replacing any earlier walk's); returns
    /// the zxid the walk copies the tree at (the last applied).
    pub fn keep_preimages(&mut self, walk_id: u64) -> i64 {
        self.preimages = Some(Box::new(Preimages {
            walk_id,
            as_of_zxid: self.last_zxid,
            kept: HashMap::default(),
        }));
        self.last_zxid
    }

    /// The walk pre-images are kept for, if any.
    pub fn preimages_walk(&self) -> Option<u64> {
        self.preimages.as_ref().map(|p| p.walk_id)
    }

    /// The copy kept for `path`, handed over once.
    pub fn take_preimage(&mut self, path: &str) -> Preimage {
        let Some(p) = self.preimages.as_deref_mut() else {
            return Preimage::Unchanged;
        };
        match p.kept.get_mut(path) {
            None => Preimage::Unchanged,
            Some(slot) => slot.take().map_or(Preimage::Taken, Preimage::Before),
        }
    }

    /// Stops keeping pre-images; returns the copies the walk did not take (nodes deleted
    /// before it reached them, and nodes changed after it copied them: those equal its copy).
    pub fn stop_keeping_preimages(&mut self) -> Vec<(Arc<str>, NodeCopy)> {
        let Some(p) = self.preimages.take() else {
            return Vec::new();
        };
        p.kept
            .into_iter()
            .filter_map(|(path, node)| node.map(|n| (path, n)))
            .collect()
    }

    /// Called before the node at `path` changes or goes away (its data, ACL, Stat or
    /// children): keeps its pre-image if a walk needs one.
    pub(super) fn before_change(&mut self, path: &str) {
        let Some(p) = self.preimages.as_deref_mut() else {
            return;
        };
        if p.kept.contains_key(path) {
            return;
        }
        if let Some((key, node)) = self.nodes.get_key_value(path) {
            if node.czxid <= p.as_of_zxid {
                p.kept.insert(key.clone(), Some(node.copy_fields()));
            }
        }
    }
}
