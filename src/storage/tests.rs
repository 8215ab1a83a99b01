//! Storage tests: record round-trips (proptest), snapshots, startup (`open`), purge, epochs,
//! the snapshot policy. Log writer and recovery tests are in `txn_log/tests.rs`.

use super::*;
use crate::proto::{Acl, ErrorCode};
use crate::tree::txn::{CreateTxn, Txn, TxnRecord};
use proptest::prelude::*;
use std::sync::Arc;

/// Helpers shared with `txn_log/tests.rs`.
pub(crate) mod support {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let p = std::env::temp_dir()
                .join(format!("corral-{tag}-{}-{n}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `f` on a small glommio executor and returns its result.
    pub fn run<T: Send + 'static, F, Fut>(f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
    {
        crate::runtime::spawn_unpinned("storage-test", f)
            .expect("executor")
            .join()
            .expect("join")
    }

    /// A valid transaction stream: creates, setData, deletes, sessions, multis. Applying it
    /// to `tree` as it goes keeps every txn valid (parents exist, cversions right).
    pub struct Workload {
        pub tree: crate::tree::DataTree,
        pub zxid: i64,
        rng: u64,
        paths: Vec<Arc<str>>,
        next_name: u64,
        pub sessions: std::collections::BTreeMap<i64, i32>,
    }

    impl Workload {
        pub fn new(seed: u64) -> Workload {
            Workload {
                tree: crate::tree::DataTree::new(Bytes::from_static(b"cfg")),
                zxid: 0,
                rng: seed | 1,
                paths: Vec::new(),
                next_name: 0,
                sessions: Default::default(),
            }
        }

        fn rand(&mut self) -> u64 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            self.rng
        }

        fn create_txn(&mut self, owner: i64) -> Txn {
            let parent: Arc<str> = if self.paths.is_empty() || self.rand().is_multiple_of(3) {
                Arc::from("/")
            } else {
                let i = (self.rand() % self.paths.len() as u64) as usize;
                self.paths[i].clone()
            };
            self.next_name += 1;
            let path: Arc<str> = Arc::from(crate::proto::path::join(
                &parent,
                &format!("n{}", self.next_name),
            ));
            let parent_cversion = self.tree.get(&parent).expect("parent").cversion_creations + 1;
            let data = match self.rand() % 4 {
                0 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(vec![
                    self.rand() as u8;
                    (self.rand() % 64) as usize
                ])),
            };
            Txn::Create(CreateTxn {
                path,
                data,
                acl: Arc::new(Acl::open_unsafe()),
                ephemeral_owner: owner,
                parent_cversion,
                with_stat: false,
            })
        }

        /// The next record (already applied to `self.tree`).
        pub fn next(&mut self) -> TxnRecord {
            self.zxid += 1;
            let mut session_id = 0;
            let txn = match self.rand() % 8 {
                0 => {
                    session_id = 0x0100_0000_0000_0000 + self.zxid;
                    Txn::CreateSession { timeout_ms: 4000 }
                }
                1 if !self.sessions.is_empty() => {
                    let id = *self.sessions.keys().next().expect("not empty");
                    session_id = id;
                    let ephemerals = self.tree.ephemerals_of(id).cloned().collect();
                    Txn::CloseSession { ephemerals }
                }
                2 if !self.sessions.is_empty() => {
                    let id = *self.sessions.keys().last().expect("not empty");
                    session_id = id;
                    self.create_txn(id)
                }
                3 if !self.paths.is_empty() => {
                    let i = (self.rand() % self.paths.len() as u64) as usize;
                    let p = self.paths[i].clone();
                    let version = self.tree.get(&p).expect("live").version + 1;
                    Txn::SetData {
                        path: p,
                        data: Some(Bytes::from(format!("v{version}"))),
                        version,
                    }
                }
                4 => {
                    // A leaf that is not ephemeral (so CloseSession lists stay right).
                    let leaf = self.paths.iter().find(|p| {
                        self.tree
                            .get(p)
                            .is_some_and(|n| n.children.is_empty() && n.ephemeral_owner == 0)
                    });
                    match leaf {
                        Some(p) => Txn::Delete { path: p.clone() },
                        None => Txn::Error {
                            err: ErrorCode::NoNode,
                        },
                    }
                }
                5 => Txn::Multi {
                    ops: vec![
                        Txn::Check {
                            path: Arc::from("/"),
                        },
                        Txn::Error {
                            err: ErrorCode::BadVersion,
                        },
                    ],
                },
                _ => self.create_txn(0),
            };
            let rec = TxnRecord {
                zxid: self.zxid,
                time_ms: 1_700_000_000_000 + self.zxid,
                session_id,
                cxid: self.zxid as i32,
                txn,
            };
            self.tree.apply(&rec, &mut Vec::new());
            match &rec.txn {
                Txn::CreateSession { timeout_ms } => {
                    self.sessions.insert(session_id, *timeout_ms);
                }
                Txn::CloseSession { .. } => {
                    self.sessions.remove(&session_id);
                }
                // Ephemerals cannot have children and go with their session: not reused.
                Txn::Create(c) if c.ephemeral_owner == 0 => self.paths.push(c.path.clone()),
                Txn::Delete { path } => self.paths.retain(|p| p != path),
                _ => {}
            }
            rec.clone()
        }
    }

    /// Every node's stat, data, ACL and children equal.
    pub fn assert_same_tree(a: &crate::tree::DataTree, b: &crate::tree::DataTree) {
        assert_eq!(a.node_count(), b.node_count());
        assert_eq!(a.last_zxid(), b.last_zxid());
        assert_eq!(a.approximate_data_bytes(), b.approximate_data_bytes());
        assert_eq!(a.ephemeral_count(), b.ephemeral_count());
        let sessions = |t: &crate::tree::DataTree| {
            let mut v: Vec<(i64, Vec<Arc<str>>)> = t
                .ephemeral_sessions()
                .map(|(s, p)| (*s, p.iter().cloned().collect()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(sessions(a), sessions(b), "ephemerals by session");
        let extended = |t: &crate::tree::DataTree| {
            let mut v: Vec<Arc<str>> = t.extended_nodes().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(extended(a), extended(b), "containers and TTL nodes");
        for (p, n) in a.iter_nodes() {
            let m = b.get(p).unwrap_or_else(|| panic!("{p} missing"));
            assert_eq!(n.stat(), m.stat(), "{p}");
            assert_eq!(n.data, m.data, "{p}");
            assert_eq!(n.acl, m.acl, "{p}");
            assert_eq!(n.children, m.children, "{p}");
        }
    }
}

use support::*;

fn arb_str() -> impl Strategy<Value = Arc<str>> {
    "(/[a-zA-Z0-9é\u{1F600}_.-]{0,12}){1,3}".prop_map(|s| Arc::from(s.as_str()))
}

fn arb_data() -> impl Strategy<Value = Option<Bytes>> {
    prop_oneof![
        Just(None),
        Just(Some(Bytes::new())),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|v| Some(Bytes::from(v))),
    ]
}

fn arb_acl() -> impl Strategy<Value = Arc<Vec<Acl>>> {
    proptest::collection::vec((any::<i32>(), "[a-z]{0,8}", ".{0,20}"), 0..4).prop_map(|v| {
        Arc::new(
            v.into_iter()
                .map(|(perms, scheme, id)| Acl::new(perms, &scheme, &id))
                .collect(),
        )
    })
}

fn arb_error() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Ok),
        Just(ErrorCode::NoNode),
        Just(ErrorCode::NodeExists),
        Just(ErrorCode::BadVersion),
        Just(ErrorCode::RuntimeInconsistency),
        Just(ErrorCode::SessionExpired),
    ]
}

fn arb_simple_txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        any::<i32>().prop_map(|timeout_ms| Txn::CreateSession { timeout_ms }),
        proptest::collection::vec(arb_str(), 0..5)
            .prop_map(|ephemerals| Txn::CloseSession { ephemerals }),
        (
            arb_str(),
            arb_data(),
            arb_acl(),
            any::<i64>(),
            any::<i32>(),
            any::<bool>()
        )
            .prop_map(
                |(path, data, acl, ephemeral_owner, parent_cversion, with_stat)| Txn::Create(
                    CreateTxn {
                        path,
                        data,
                        acl,
                        ephemeral_owner,
                        parent_cversion,
                        with_stat,
                    }
                )
            ),
        arb_str().prop_map(|path| Txn::Delete { path }),
        (arb_str(), arb_data(), any::<i32>()).prop_map(|(path, data, version)| Txn::SetData {
            path,
            data,
            version
        }),
        (arb_str(), arb_acl(), any::<i32>()).prop_map(|(path, acl, aversion)| Txn::SetAcl {
            path,
            acl,
            aversion
        }),
        arb_str().prop_map(|path| Txn::Check { path }),
        arb_error().prop_map(|err| Txn::Error { err }),
        arb_str().prop_map(|path| Txn::DeleteContainer { path }),
    ]
}

fn arb_txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        4 => arb_simple_txn(),
        1 => proptest::collection::vec(arb_simple_txn(), 0..6).prop_map(|ops| Txn::Multi { ops }),
    ]
}

fn arb_record() -> impl Strategy<Value = TxnRecord> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        any::<i32>(),
        arb_txn(),
    )
        .prop_map(|(zxid, time_ms, session_id, cxid, txn)| TxnRecord {
            zxid,
            time_ms,
            session_id,
            cxid,
            txn,
        })
}

proptest! {
    #[test]
    fn record_round_trips(rec in arb_record()) {
        let mut buf = Vec::new();
        let n = record::encode(&rec, &mut buf);
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(record::encoded_len(&rec), n);
        prop_assert_eq!(record::decode(&buf).unwrap(), rec.clone());
        prop_assert_eq!(record::peek_zxid(&buf), Some(rec.zxid));
        prop_assert_eq!(record::peek_time_ms(&buf), Some(rec.time_ms));
        // Every strict prefix is refused, never mis-decoded.
        for cut in 0..buf.len() {
            prop_assert!(record::decode(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn record_decoder_survives_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = record::decode(&bytes);
    }
}

#[test]
fn null_data_differs_from_empty() {
    let rec = |data| TxnRecord {
        zxid: 1,
        time_ms: 2,
        session_id: 3,
        cxid: 4,
        txn: Txn::SetData {
            path: Arc::from("/a"),
            data,
            version: 1,
        },
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    record::encode(&rec(None), &mut a);
    record::encode(&rec(Some(Bytes::new())), &mut b);
    assert_ne!(a, b);
    assert_eq!(record::decode(&a).unwrap(), rec(None));
    assert_eq!(record::decode(&b).unwrap(), rec(Some(Bytes::new())));
}

#[test]
fn decoder_refuses_nested_multi_unknown_codes_and_versions() {
    let mut buf = Vec::new();
    record::encode(
        &TxnRecord {
            zxid: 1,
            time_ms: 0,
            session_id: 0,
            cxid: 0,
            txn: Txn::Error {
                err: ErrorCode::NoNode,
            },
        },
        &mut buf,
    );
    let mut bad_code = buf.clone();
    let at = record::RECORD_HEADER_BYTES + 1;
    bad_code[at..at + 4].copy_from_slice(&12345i32.to_le_bytes());
    assert!(matches!(
        record::decode(&bad_code),
        Err(record::RecordError::UnknownErrorCode { code: 12345, .. })
    ));
    let mut bad_version = buf.clone();
    bad_version[0] = 99;
    assert!(matches!(
        record::decode(&bad_version),
        Err(record::RecordError::UnknownVersion { version: 99 })
    ));
    // A multi holding a multi: tag 9, count 1, tag 9, count 0.
    let mut nested = buf[..record::RECORD_HEADER_BYTES].to_vec();
    nested.extend_from_slice(&[9, 1, 0, 0, 0, 9, 0, 0, 0, 0]);
    assert!(matches!(
        record::decode(&nested),
        Err(record::RecordError::NestedMulti { .. })
    ));
    // A huge count with few bytes left is refused before allocating.
    let mut huge = buf[..record::RECORD_HEADER_BYTES].to_vec();
    huge.extend_from_slice(&[2, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(
        record::decode(&huge),
        Err(record::RecordError::InvalidLength { .. })
    ));
}

#[test]
fn snapshot_round_trips_tree_and_sessions() {
    let dir = TempDir::new("snap");
    let mut w = Workload::new(7);
    for _ in 0..500 {
        w.next();
    }
    let sessions: Vec<(i64, i32)> = w.sessions.iter().map(|(k, v)| (*k, *v)).collect();
    let image = SnapshotImage::capture(&w.tree, sessions.clone());
    let bytes = image.encode().unwrap();
    let path = snapshot::write_snapshot(&dir.0, image.zxid, &bytes).unwrap();
    assert_eq!(path, snapshot::snapshot_path(&dir.0, 500));
    let loaded = snapshot::load(&path, Bytes::from_static(b"cfg")).unwrap();
    assert_same_tree(&w.tree, &loaded.tree);
    assert_eq!(loaded.sessions, sessions);
    assert!(!dir.0.join("snapshot.1f4.tmp").exists());
}

/// The file is the header followed by the archive exactly as rkyv serializes it on its own:
/// serializing behind the header's room changes no byte (rkyv pads by position, which
/// counts from the archive's start), and the buffer was sized for it up front.
#[test]
fn a_snapshot_file_is_its_header_and_the_archive_alone() {
    let mut w = Workload::new(11);
    for _ in 0..300 {
        w.next();
    }
    let sessions: Vec<(i64, i32)> = w.sessions.iter().map(|(k, v)| (*k, *v)).collect();
    let body = SnapshotImage::capture(&w.tree, sessions).to_body();
    let alone = rkyv::to_bytes::<rkyv::rancor::Error>(&body).unwrap();
    let file = body.encode().unwrap();
    let header_bytes = snapshot::SNAPSHOT_HEADER_BYTES;
    assert_eq!(
        file[..header_bytes],
        snapshot::encode_header(body.zxid, &alone)
    );
    assert!(file[header_bytes..] == alone[..], "the archive differs");
    assert!(
        body.body_bytes_estimate() >= alone.len(),
        "estimate {} below the archive's {} bytes",
        body.body_bytes_estimate(),
        alone.len()
    );
}

/// The same tree encodes to the same bytes, whatever the order of the tree's hash map:
/// ACL lists are numbered by first use in path order.
#[test]
fn snapshot_bytes_do_not_depend_on_hash_order() {
    let build = || {
        let mut tree = crate::tree::DataTree::new(Bytes::from_static(b"cfg"));
        for i in 0..200 {
            let acl = Arc::new(vec![Acl::new(31, "digest", &format!("user{}:x", i % 7))]);
            let rec = TxnRecord {
                zxid: i + 1,
                time_ms: 0,
                session_id: 0,
                cxid: 0,
                txn: Txn::Create(CreateTxn {
                    path: Arc::from(format!("/n{i}")),
                    data: None,
                    acl,
                    ephemeral_owner: 0,
                    parent_cversion: i as i32 + 2,
                    with_stat: false,
                }),
            };
            tree.apply(&rec, &mut Vec::new());
        }
        SnapshotImage::capture(&tree, []).encode().unwrap()
    };
    let first = build();
    for _ in 0..4 {
        assert_eq!(build(), first);
    }
}

#[test]
fn snapshot_corruption_is_detected() {
    let dir = TempDir::new("snapbad");
    let mut w = Workload::new(9);
    for _ in 0..50 {
        w.next();
    }
    let image = SnapshotImage::capture(&w.tree, []);
    let bytes = image.encode().unwrap();
    let path = snapshot::write_snapshot(&dir.0, image.zxid, &bytes).unwrap();
    for at in [3, 20, snapshot::SNAPSHOT_HEADER_BYTES + 5, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        std::fs::write(&path, &b).unwrap();
        assert!(snapshot::load(&path, Bytes::new()).is_err(), "flip at {at}");
    }
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(
        snapshot::load(&path, Bytes::new()),
        Err(SnapshotError::LengthMismatch { .. })
    ));
}

/// The startup path: snapshot in the middle of a log (inside a segment, as the server takes
/// them: it does not roll the log at a snapshot), more writes, a restart rebuilds the same
/// tree and session table. The snapshot comes after the first segment is full (a 16 KiB
/// segment holds fewer than 400 of these records), so purge has one to delete.
#[test]
fn open_loads_snapshot_and_replays_log_after_it() {
    let data = TempDir::new("open");
    let root = data.0.clone();
    let (tree_nodes, sessions, last) = run(move || async move {
        let log_dir = version_dir(&root);
        let opts = LogOptions {
            pre_alloc_bytes: 16 << 10,
            ..Default::default()
        };
        let mut writer = LogWriter::open(&log_dir, opts, 0).await.unwrap();
        let mut w = Workload::new(11);
        for batch in 0..60 {
            let recs: Vec<TxnRecord> = (0..10).map(|_| w.next()).collect();
            writer.append(&recs);
            assert_eq!(writer.sync().await.unwrap(), w.zxid);
            if batch == 47 {
                let image =
                    SnapshotImage::capture(&w.tree, w.sessions.iter().map(|(k, v)| (*k, *v)));
                snapshot::write_snapshot_async(version_dir(&root), image)
                    .await
                    .unwrap();
            }
        }
        writer.close().await.unwrap();
        let sessions: Vec<(i64, i32)> = w.sessions.iter().map(|(k, v)| (*k, *v)).collect();
        (w.tree.node_count(), sessions, w.zxid)
    });
    let r = open(
        &data.0,
        &data.0,
        &OpenOptions::new(Bytes::from_static(b"cfg")),
    )
    .unwrap();
    assert_eq!(r.last_zxid, last);
    assert_eq!(r.tree.node_count(), tree_nodes);
    assert_eq!(r.sessions, sessions);
    assert_eq!(r.replayed, 600 - 480);
    assert!(r.snapshot.is_some());
    // Compare against a replay of the same workload from scratch.
    let mut w = Workload::new(11);
    for _ in 0..last {
        w.next();
    }
    assert_same_tree(&w.tree, &r.tree);
    // Purge keeping one snapshot deletes only segments before it.
    let purged = purge(&data.0, &data.0, 1).unwrap();
    assert!(purged.snapshots.is_empty());
    assert!(!purged.segments.is_empty());
    let again = open(
        &data.0,
        &data.0,
        &OpenOptions::new(Bytes::from_static(b"cfg")),
    )
    .unwrap();
    assert_same_tree(&r.tree, &again.tree);
}

#[test]
fn open_refuses_when_no_snapshot_loads() {
    let data = TempDir::new("nosnap");
    let snap_dir = version_dir(&data.0);
    std::fs::create_dir_all(&snap_dir).unwrap();
    std::fs::write(snapshot::snapshot_path(&snap_dir, 5), b"garbage").unwrap();
    let err = open(&data.0, &data.0, &OpenOptions::new(Bytes::new())).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Snapshot(SnapshotError::NoValidSnapshot { .. })
        ),
        "{err}"
    );
}

#[test]
fn epoch_files_round_trip() {
    let dir = TempDir::new("epoch");
    assert_eq!(
        epoch::read_epoch(&dir.0, epoch::CURRENT_EPOCH_FILE).unwrap(),
        None
    );
    epoch::write_epoch(&dir.0, epoch::CURRENT_EPOCH_FILE, 7).unwrap();
    epoch::write_epoch(&dir.0, epoch::CURRENT_EPOCH_FILE, 8).unwrap();
    assert_eq!(
        epoch::read_epoch(&dir.0, epoch::CURRENT_EPOCH_FILE).unwrap(),
        Some(8)
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("currentEpoch")).unwrap(),
        "8\n"
    );
    std::fs::write(dir.0.join(epoch::ACCEPTED_EPOCH_FILE), "x").unwrap();
    assert!(epoch::read_epoch(&dir.0, epoch::ACCEPTED_EPOCH_FILE).is_err());
}

#[test]
fn snapshot_policy_thresholds_are_randomised_within_bounds() {
    let mut p = SnapshotPolicy::new(100, None, 42);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let t = p.threshold_txns();
        assert!((51..=100).contains(&t), "{t}");
        seen.insert(t);
        assert!(!p.after_sync(t - 1, 0));
        assert!(p.after_sync(1, 0));
        assert!(!p.after_sync(0, 0), "one snapshot at a time");
        p.snapshot_done();
    }
    assert!(seen.len() > 10, "thresholds vary");
    let mut by_size = SnapshotPolicy::new(1_000_000, Some(1), 1);
    assert!(!by_size.after_sync(1, 1000));
    assert!(by_size.after_sync(1, 100));
}

/// The size hint holds the usual records whole (a 1 KiB setData, a create with the open
/// ACL, a delete, a multi of setData, a session's close), so proposing one allocates once.
#[test]
fn encoded_size_hint_holds_the_usual_records() {
    let data = Some(bytes::Bytes::from(vec![7u8; 1024]));
    let path: Arc<str> = Arc::from("/corral-bench/k123");
    let set = Txn::SetData {
        path: path.clone(),
        data: data.clone(),
        version: 3,
    };
    let txns = [
        set.clone(),
        Txn::Create(CreateTxn {
            path: path.clone(),
            data: data.clone(),
            acl: Arc::new(Acl::open_unsafe()),
            ephemeral_owner: 0,
            parent_cversion: 4,
            with_stat: true,
        }),
        Txn::Delete { path: path.clone() },
        Txn::Multi {
            ops: vec![set.clone(), set.clone(), set],
        },
        Txn::CloseSession {
            ephemerals: vec![path.clone(), path],
        },
    ];
    for txn in txns {
        let rec = TxnRecord {
            zxid: 0x1_0000_0001,
            time_ms: 1_700_000_000_000,
            session_id: 0x100,
            cxid: 9,
            txn,
        };
        let mut buf = Vec::new();
        record::encode(&rec, &mut buf);
        assert!(
            buf.len() <= record::encoded_size_hint(&rec),
            "{} bytes, hint {}: {:?}",
            buf.len(),
            record::encoded_size_hint(&rec),
            rec.txn
        );
    }
}
