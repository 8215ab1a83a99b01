//! Fuzzy snapshots: a snapshot copied a few nodes at a time while writes go on, restored and
//! replayed with `apply_replayed`, must give exactly the tree that applying every write gave.
//!
//! The writes come from a small universe of paths, so names are deleted and created again
//! (with and without children), inside multis too (delete then create, create then delete,
//! create then setData, delete a child then its parent, change two siblings), with setACL,
//! ephemerals and session closes, containers and TTL nodes removed by DeleteContainer: the
//! cases where a copy and the log overlap. The comparison covers every node's Stat, data,
//! ACL and children, and the ephemerals-by-session and container/TTL indexes. Replay with `CORRAL_FUZZY_SEED=N cargo test --lib fuzzy`.

use super::snapshot::{self, SnapshotCapture};
use super::tests::support::{assert_same_tree, TempDir};
use crate::proto::{path, Acl, Id};
use crate::tree::txn::{CreateTxn, Txn, TxnRecord};
use crate::tree::DataTree;
use bytes::Bytes;
use std::sync::Arc;

/// Top-level names, names below them, and leaves: 3 + 9 + 18 paths.
fn universe() -> Vec<String> {
    let mut out = Vec::new();
    for a in ["a", "b", "c"] {
        out.push(format!("/{a}"));
        for x in ["x", "y", "z"] {
            out.push(format!("/{a}/{x}"));
            for l in ["p", "q"] {
                out.push(format!("/{a}/{x}/{l}"));
            }
        }
    }
    out
}

struct Gen {
    rng: u64,
    tree: DataTree,
    zxid: i64,
    sessions: Vec<i64>,
    universe: Vec<String>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: seed,
            tree: DataTree::new(Bytes::from_static(b"cfg")),
            zxid: 0,
            sessions: Vec::new(),
            universe: universe(),
        }
    }

    fn rand(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick(&mut self, n: usize) -> usize {
        (self.rand() % n as u64) as usize
    }

    fn data(&mut self) -> Option<Bytes> {
        match self.rand() % 4 {
            0 => None,
            1 => Some(Bytes::new()),
            _ => Some(Bytes::from(format!("d{}", self.rand() % 1000))),
        }
    }

    fn acl(&mut self) -> Arc<Vec<Acl>> {
        let perms = 1 + (self.rand() % 31) as i32;
        Arc::new(vec![Acl {
            perms,
            id: Id::new("world", "anyone"),
        }])
    }

    /// A create of `p` (parent must exist in `view`), with the parent's next cversion.
    fn create(&mut self, view: &View, p: &str, leaf: bool) -> Txn {
        let parent = path::parent(p).unwrap_or("/");
        let owner = if leaf && !self.sessions.is_empty() && self.rand().is_multiple_of(3) {
            let i = self.pick(self.sessions.len());
            self.sessions[i]
        } else if self.rand().is_multiple_of(5) {
            // Containers and TTL nodes: the reaper's set, and DeleteContainer.
            if self.rand().is_multiple_of(2) {
                crate::tree::txn::CONTAINER_OWNER
            } else {
                crate::tree::txn::ttl_owner(60_000)
            }
        } else {
            0
        };
        Txn::Create(CreateTxn {
            path: Arc::from(p),
            data: self.data(),
            acl: self.acl(),
            ephemeral_owner: owner,
            parent_cversion: view.creations(parent) + 1,
            with_stat: false,
        })
    }

    fn next_txn(&mut self) -> (i64, Txn) {
        let view = View::of(&self.tree);
        let i = self.pick(self.universe.len());
        let p = self.universe[i].clone();
        let leaf = p.matches('/').count() == 3;
        let parent_exists = view.exists(path::parent(&p).unwrap_or("/"));
        match (view.exists(&p), self.rand() % 10) {
            (_, 0) => {
                let id = 0x0100_0000_0000_0000 + self.zxid + 1;
                self.sessions.push(id);
                (id, Txn::CreateSession { timeout_ms: 4000 })
            }
            (_, 1) if !self.sessions.is_empty() => {
                let i = self.pick(self.sessions.len());
                let id = self.sessions.remove(i);
                let ephemerals = self.tree.ephemerals_of(id).cloned().collect();
                (id, Txn::CloseSession { ephemerals })
            }
            (false, k) if parent_exists => {
                let create = self.create(&view, &p, leaf);
                if k < 5 || !leaf {
                    // Sometimes a child in the same multi.
                    if !leaf && k >= 7 {
                        let names = if p.matches('/').count() == 1 {
                            ["x", "y"]
                        } else {
                            ["p", "q"]
                        };
                        let child = format!("{p}/{}", names[self.pick(2)]);
                        let child_create = Txn::Create(CreateTxn {
                            path: Arc::from(child.as_str()),
                            data: self.data(),
                            acl: self.acl(),
                            ephemeral_owner: 0,
                            parent_cversion: 1,
                            with_stat: false,
                        });
                        return (
                            0,
                            Txn::Multi {
                                ops: vec![create, child_create],
                            },
                        );
                    }
                    (0, create)
                } else if k < 8 {
                    // Create then change it, in one multi.
                    let set = Txn::SetData {
                        path: Arc::from(p.as_str()),
                        data: self.data(),
                        version: 1,
                    };
                    (
                        0,
                        Txn::Multi {
                            ops: vec![create, set],
                        },
                    )
                } else {
                    // Create then delete it, in one multi.
                    let del = Txn::Delete {
                        path: Arc::from(p.as_str()),
                    };
                    (
                        0,
                        Txn::Multi {
                            ops: vec![create, del],
                        },
                    )
                }
            }
            (true, k) => {
                let n = self.tree.get(&p).expect("exists");
                let (version, aversion, childless, owner) = (
                    n.version,
                    n.aversion,
                    n.children.is_empty(),
                    n.ephemeral_owner,
                );
                match k {
                    2..=4 => (
                        0,
                        Txn::SetData {
                            path: Arc::from(p.as_str()),
                            data: self.data(),
                            version: version + 1,
                        },
                    ),
                    5 => (
                        0,
                        Txn::SetAcl {
                            path: Arc::from(p.as_str()),
                            acl: self.acl(),
                            aversion: aversion + 1,
                        },
                    ),
                    6..=7 if childless && owner == 0 => (
                        0,
                        Txn::Delete {
                            path: Arc::from(p.as_str()),
                        },
                    ),
                    6..=7 if childless && !crate::tree::txn::is_session_owner(owner) => (
                        0,
                        Txn::DeleteContainer {
                            path: Arc::from(p.as_str()),
                        },
                    ),
                    6..=7 => {
                        // A node with exactly one childless, non-ephemeral child: delete the
                        // child and then the node in one multi. Else change two children.
                        let kid_paths: Vec<String> =
                            n.children.paths().map(|k| k.to_string()).collect();
                        let plain_leaf = |q: &str| {
                            self.tree
                                .get(q)
                                .is_some_and(|c| c.children.is_empty() && c.ephemeral_owner == 0)
                        };
                        if kid_paths.len() == 1 && owner == 0 && plain_leaf(&kid_paths[0]) {
                            let ops = vec![
                                Txn::Delete {
                                    path: Arc::from(kid_paths[0].as_str()),
                                },
                                Txn::Delete {
                                    path: Arc::from(p.as_str()),
                                },
                            ];
                            (0, Txn::Multi { ops })
                        } else {
                            let ops = kid_paths
                                .iter()
                                .take(2)
                                .map(|q| {
                                    let version = self.tree.get(q).map_or(0, |c| c.version) + 1;
                                    Txn::SetData {
                                        path: Arc::from(q.as_str()),
                                        data: Some(Bytes::from(format!("sib{version}"))),
                                        version,
                                    }
                                })
                                .collect();
                            (0, Txn::Multi { ops })
                        }
                    }
                    _ if childless && owner == 0 => {
                        // Delete and create again under the same name, in one multi.
                        let parent = path::parent(&p).unwrap_or("/");
                        let del = Txn::Delete {
                            path: Arc::from(p.as_str()),
                        };
                        let again = Txn::Create(CreateTxn {
                            path: Arc::from(p.as_str()),
                            data: self.data(),
                            acl: self.acl(),
                            ephemeral_owner: 0,
                            parent_cversion: view.creations(parent) + 1,
                            with_stat: false,
                        });
                        (
                            0,
                            Txn::Multi {
                                ops: vec![del, again],
                            },
                        )
                    }
                    _ => (
                        0,
                        Txn::Check {
                            path: Arc::from(p.as_str()),
                        },
                    ),
                }
            }
            _ => (
                0,
                Txn::Check {
                    path: Arc::from("/"),
                },
            ),
        }
    }

    /// Applies a create of `p` with `data` (its parent exists).
    fn put(&mut self, p: &str, data: &str) {
        let parent = path::parent(p).unwrap_or("/");
        let parent_cversion = View::of(&self.tree).creations(parent) + 1;
        let txn = Txn::Create(CreateTxn {
            path: Arc::from(p),
            data: Some(Bytes::from(data.to_string())),
            acl: self.acl(),
            ephemeral_owner: 0,
            parent_cversion,
            with_stat: false,
        });
        self.apply_next(0, txn);
    }

    fn next(&mut self) -> TxnRecord {
        let (session_id, txn) = self.next_txn();
        self.apply_next(session_id, txn)
    }

    /// Applies `txn` as the next zxid's record.
    fn apply_next(&mut self, session_id: i64, txn: Txn) -> TxnRecord {
        self.zxid += 1;
        let rec = TxnRecord {
            zxid: self.zxid,
            time_ms: 1_700_000_000_000 + self.zxid,
            session_id,
            cxid: self.zxid as i32,
            txn,
        };
        self.tree.apply(&rec, &mut Vec::new());
        rec
    }
}

/// Runs `run` for the seed `CORRAL_FUZZY_SEED` alone, else for seeds 1 to
/// `CORRAL_FUZZY_SEEDS` (600).
fn for_each_seed(run: fn(u64)) {
    if let Some(seed) = std::env::var("CORRAL_FUZZY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run(seed);
        return;
    }
    let seeds: u64 = std::env::var("CORRAL_FUZZY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    for seed in 1..=seeds {
        run(seed);
    }
}

/// What a txn generator needs to know of the tree before the txn.
struct View {
    creations: std::collections::HashMap<String, i32>,
}

impl View {
    fn of(tree: &DataTree) -> View {
        View {
            creations: tree
                .iter_nodes()
                .map(|(p, n)| (p.to_string(), n.cversion_creations))
                .collect(),
        }
    }

    fn exists(&self, p: &str) -> bool {
        self.creations.contains_key(p)
    }

    fn creations(&self, p: &str) -> i32 {
        self.creations.get(p).copied().unwrap_or(0)
    }
}

/// One seed: writes, a capture interleaved with more writes, then restore + replay.
fn run_seed(seed: u64) {
    let mut g = Gen::new(seed);
    let warmup = 20 + g.pick(200);
    let mut log = Vec::new();
    for _ in 0..warmup {
        g.next();
    }
    let sessions: Vec<(i64, i32)> = g.sessions.iter().map(|&id| (id, 4000)).collect();
    let mut walk = SnapshotCapture::start(&g.tree, sessions);
    loop {
        let chunk = 1 + g.pick(4);
        if walk.step(&g.tree, chunk) {
            break;
        }
        for _ in 0..g.pick(4) {
            log.push(g.next());
        }
    }
    for _ in 0..g.pick(30) {
        log.push(g.next());
    }
    let image = walk.finish();
    let dir = TempDir::new("fuzzy");
    let bytes = image.encode().expect("encode");
    let file = snapshot::write_snapshot(&dir.0, image.zxid, &bytes).expect("write");
    let mut restored = snapshot::load(&file, Bytes::from_static(b"cfg"))
        .unwrap_or_else(|e| panic!("seed {seed}: the fuzzy snapshot does not load: {e}"))
        .tree;
    for rec in log.iter().filter(|r| r.zxid > image.zxid) {
        restored.apply_replayed(rec);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_same_tree(&g.tree, &restored)
    }));
    if let Err(e) = outcome {
        panic!(
            "seed {seed}: replay over the fuzzy snapshot differs from the live tree: {:?}\n\
             replay: CORRAL_FUZZY_SEED={seed} cargo test --lib fuzzy -- --nocapture",
            e.downcast_ref::<String>()
        );
    }
}

#[test]
fn replay_over_a_fuzzy_snapshot_gives_the_live_tree() {
    for_each_seed(run_seed);
}

/// The same replay over an exact snapshot is plain application.
#[test]
fn replay_over_an_exact_snapshot_gives_the_live_tree() {
    for seed in 1..=200u64 {
        let mut g = Gen::new(seed);
        for _ in 0..100 {
            g.next();
        }
        let image = snapshot::SnapshotImage::capture(&g.tree, []);
        let log: Vec<TxnRecord> = (0..100).map(|_| g.next()).collect();
        let dir = TempDir::new("exact");
        let file = snapshot::write_snapshot(&dir.0, image.zxid, &image.encode().expect("encode"))
            .expect("write");
        let mut restored = snapshot::load(&file, Bytes::from_static(b"cfg"))
            .expect("load")
            .tree;
        for rec in &log {
            restored.apply_replayed(rec);
        }
        assert_same_tree(&g.tree, &restored);
    }
}

/// One seed of an exact walk: copied a few nodes at a time while writes go on, it must
/// give the very image a one-step copy gave when it began.
fn run_exact_seed(seed: u64) {
    let mut g = Gen::new(seed);
    // A quota on /a: its stats node changes with every create and delete below /a.
    g.put("/zookeeper/quota/a", "");
    g.put("/zookeeper/quota/a/zookeeper_limits", "count=-1,bytes=-1");
    g.put("/zookeeper/quota/a/zookeeper_stats", "count=0,bytes=0");
    for _ in 0..20 + g.pick(200) {
        g.next();
    }
    let sessions: Vec<(i64, i32)> = g.sessions.iter().map(|&id| (id, 4000)).collect();
    let expected = snapshot::SnapshotImage::capture(&g.tree, sessions.iter().copied()).to_body();
    let mut walk = SnapshotCapture::start_exact(&mut g.tree, sessions, seed);
    loop {
        let chunk = 1 + g.pick(4);
        if walk.step_exact(&mut g.tree, chunk).expect("same tree") {
            break;
        }
        for _ in 0..g.pick(4) {
            g.next();
        }
    }
    for _ in 0..g.pick(10) {
        g.next();
    }
    let got = walk.finish_exact(&mut g.tree).expect("same tree").to_body();
    assert!(
        g.tree.preimages_walk().is_none(),
        "seed {seed}: still keeping pre-images"
    );
    if got != expected {
        let paths = |b: &snapshot::SnapshotBody| -> Vec<String> {
            b.nodes.iter().map(|n| format!("{n:?}")).collect()
        };
        let (got_nodes, expected_nodes) = (paths(&got), paths(&expected));
        let missing: Vec<_> = expected_nodes
            .iter()
            .filter(|n| !got_nodes.contains(n))
            .collect();
        let extra: Vec<_> = got_nodes
            .iter()
            .filter(|n| !expected_nodes.contains(n))
            .collect();
        panic!(
            "seed {seed}: the exact walk differs from the copy at its zxid\n\
             missing: {missing:#?}\nextra: {extra:#?}\n\
             replay: CORRAL_FUZZY_SEED={seed} cargo test --lib exact_walk -- --nocapture"
        );
    }
}

#[test]
fn an_exact_walk_in_steps_gives_the_tree_at_its_start() {
    for_each_seed(run_exact_seed);
}

#[test]
fn an_exact_walk_stops_when_its_tree_is_replaced() {
    let mut tree = DataTree::new(Bytes::from_static(b"cfg"));
    let mut walk = SnapshotCapture::start_exact(&mut tree, [], 7);
    assert_eq!(walk.step_exact(&mut tree, 1), Ok(false));
    // The tree a learner installs from its leader keeps no pre-images for this walk.
    let mut installed = DataTree::new(Bytes::from_static(b"cfg"));
    assert!(walk.step_exact(&mut installed, 100).is_err());
    installed.keep_preimages(8);
    assert!(walk.step_exact(&mut installed, 100).is_err());
    assert!(walk.finish_exact(&mut installed).is_err());
    assert_eq!(
        installed.preimages_walk(),
        Some(8),
        "another walk's pre-images are kept"
    );
}
