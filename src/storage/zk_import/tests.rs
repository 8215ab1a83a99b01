//! Byte images of ZooKeeper files, built here field by field (plus two small files written
//! by a real ZooKeeper 3.8.0 in `testdata/`), read back, replayed, corrupted.

use super::format::*;
use super::replay::{Applied, ZkTree};
use super::txn::*;
use super::*;
use crate::jute::Writer;
use crate::proto::{op, Acl};
use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

const SESSION: i64 = 0x0100_0000_0000_0007;

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let p = std::env::temp_dir().join(format!(
        "corral-zkimport-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(p.join("version-2")).unwrap();
    p
}

fn stat(czxid: i64, cversion: i32, owner: i64) -> StatPersisted {
    StatPersisted {
        czxid,
        mzxid: czxid,
        ctime: 1000 + czxid,
        mtime: 1000 + czxid,
        version: 0,
        cversion,
        aversion: 0,
        ephemeral_owner: owner,
        pzxid: czxid,
    }
}

fn put_stat(w: &mut BytesMut, s: &StatPersisted) {
    w.put_i64(s.czxid);
    w.put_i64(s.mzxid);
    w.put_i64(s.ctime);
    w.put_i64(s.mtime);
    w.put_i32(s.version);
    w.put_i32(s.cversion);
    w.put_i32(s.aversion);
    w.put_i64(s.ephemeral_owner);
    w.put_i64(s.pzxid);
}

fn put_acls(w: &mut BytesMut, acls: &[Acl]) {
    w.put_i32(acls.len() as i32);
    for a in acls {
        w.put_i32(a.perms);
        w.put_string(&a.id.scheme);
        w.put_string(&a.id.id);
    }
}

fn seal(w: &mut BytesMut) {
    let sum = adler32(w);
    w.put_i64(sum as i64);
    w.put_string("/");
}

/// A snapshot image: sessions, ACL lists, (path, data, acl id, stat), optional digest.
struct Snap {
    sessions: Vec<(i64, i32)>,
    acls: Vec<(i64, Vec<Acl>)>,
    nodes: Vec<(&'static str, Option<&'static [u8]>, i64, StatPersisted)>,
    digest: Option<ZxidDigest>,
}

impl Snap {
    /// `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config` (as ZooKeeper writes
    /// them) and `/a` (zxid 1) with an ephemeral `/a/e` (zxid 2) of [`SESSION`].
    fn base() -> Snap {
        Snap {
            sessions: vec![(SESSION, 10_000)],
            acls: vec![
                (1, Acl::read_unsafe()),
                (2, vec![Acl::new(31, "digest", "u:abc=")]),
            ],
            nodes: vec![
                ("", Some(b""), -1, stat(0, 1, 0)),
                ("/zookeeper", Some(b""), -1, stat(0, 0, 0)),
                ("/zookeeper/config", Some(b""), 1, stat(0, 0, 0)),
                ("/zookeeper/quota", Some(b""), -1, stat(0, 0, 0)),
                ("/a", None, 2, stat(1, 1, 0)),
                ("/a/e", Some(b"eph"), -1, stat(2, 0, SESSION)),
            ],
            digest: None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut w = BytesMut::new();
        w.put_slice(b"ZKSN");
        w.put_i32(2);
        w.put_i64(-1);
        w.put_i32(self.sessions.len() as i32);
        for (id, t) in &self.sessions {
            w.put_i64(*id);
            w.put_i32(*t);
        }
        w.put_i32(self.acls.len() as i32);
        for (id, list) in &self.acls {
            w.put_i64(*id);
            put_acls(&mut w, list);
        }
        for (path, data, acl, s) in &self.nodes {
            w.put_string(path);
            w.put_buffer_opt(*data);
            w.put_i64(*acl);
            put_stat(&mut w, s);
        }
        w.put_string("/");
        seal(&mut w);
        if let Some(d) = self.digest {
            w.put_i64(d.zxid);
            w.put_i32(d.version);
            w.put_i64(d.digest);
            seal(&mut w);
        }
        w.to_vec()
    }
}

fn header(zxid: i64, txn_type: i32) -> TxnHeader {
    TxnHeader {
        client_id: SESSION,
        cxid: zxid as i32,
        zxid,
        time_ms: 5000 + zxid,
        txn_type,
    }
}

fn payload(h: &TxnHeader, body: &[u8], digest: Option<i64>) -> Vec<u8> {
    let mut w = BytesMut::new();
    w.put_i64(h.client_id);
    w.put_i32(h.cxid);
    w.put_i64(h.zxid);
    w.put_i64(h.time_ms);
    w.put_i32(h.txn_type);
    w.put_slice(body);
    if let Some(d) = digest {
        w.put_i32(DIGEST_VERSION);
        w.put_i64(d);
    }
    w.to_vec()
}

fn create_body(path: &str, data: &[u8], ephemeral: bool, parent_cversion: i32) -> Vec<u8> {
    let mut w = BytesMut::new();
    w.put_string(path);
    w.put_buffer(data);
    put_acls(&mut w, &Acl::open_unsafe());
    w.put_u8(ephemeral as u8);
    w.put_i32(parent_cversion);
    w.to_vec()
}

fn path_body(path: &str) -> Vec<u8> {
    let mut w = BytesMut::new();
    w.put_string(path);
    w.to_vec()
}

fn set_data_body(path: &str, data: &[u8], version: i32) -> Vec<u8> {
    let mut w = BytesMut::new();
    w.put_string(path);
    w.put_buffer(data);
    w.put_i32(version);
    w.to_vec()
}

/// A log file: header, framed records, then `zeros` bytes of preallocation.
fn log_bytes(payloads: &[Vec<u8>], zeros: usize) -> Vec<u8> {
    let mut w = BytesMut::new();
    w.put_slice(b"ZKLG");
    w.put_i32(2);
    w.put_i64(0);
    for p in payloads {
        w.put_i64(adler32(p) as i64);
        w.put_buffer(p);
        w.put_u8(END_OF_RECORD);
    }
    w.put_bytes(0, zeros);
    w.to_vec()
}

/// Record offsets in a log built by [`log_bytes`].
fn record_offsets(payloads: &[Vec<u8>]) -> Vec<usize> {
    let mut at = FILE_HEADER_BYTES;
    payloads
        .iter()
        .map(|p| {
            let here = at;
            at += 12 + p.len() + 1;
            here
        })
        .collect()
}

/// The txns of [`Snap::base`] + this log: zxids 3.. .
fn base_log() -> Vec<Vec<u8>> {
    vec![
        payload(
            &header(3, op::CREATE),
            &create_body("/a/b", b"bee", false, 2),
            None,
        ),
        payload(
            &header(4, op::SET_DATA),
            &set_data_body("/a/b", b"bee2", 1),
            None,
        ),
        payload(
            &header(5, op::CREATE),
            &create_body("/c", b"", false, 2),
            None,
        ),
        payload(&header(6, op::DELETE), &path_body("/c"), None),
    ]
}

fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        std::fs::write(dir.join("version-2").join(name), bytes).unwrap();
    }
}

fn opts(dir: &Path) -> ReadOptions {
    ReadOptions {
        snap_dir: dir.join("version-2"),
        log_dir: dir.join("version-2"),
        check_digest: true,
    }
}

#[test]
fn checksums_match_java_util_zip() {
    assert_eq!(adler32(b""), 1);
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    // Long input: the chunked reduction equals the naive one.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + 3) as u8).collect();
    let (mut a, mut b) = (1u64, 0u64);
    for &x in &big {
        a = (a + x as u64) % 65_521;
        b = (b + a) % 65_521;
    }
    assert_eq!(adler32(&big) as u64, (b << 16) | a);
    assert_eq!(crc32_ieee(&[b"123456789"]), 0xCBF4_3926);
    assert_eq!(crc32_ieee(&[b"1234", b"56789"]), 0xCBF4_3926);
}

#[test]
fn reads_files_written_by_zookeeper_3_8() {
    let snap = include_bytes!("testdata/snapshot.0");
    let log = include_bytes!("testdata/log.1");
    let s = parse_snapshot(Bytes::from_static(snap)).unwrap();
    assert_eq!(s.header.version, 2);
    let paths: Vec<&str> = s.nodes.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(
        paths,
        ["", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"]
    );
    let scan = scan_log(Bytes::from_static(log)).unwrap();
    assert_eq!(scan.end, LogEnd::Clean);
    let entries: Vec<ZkEntry> = scan
        .records
        .iter()
        .map(|(_, p)| decode_entry(p.clone()).unwrap())
        .collect();
    assert_eq!(entries[0].header.txn_type, op::CREATE_SESSION);
    assert!(entries.iter().all(|e| e.digest.is_some()));
    let dir = temp_dir("real");
    write_files(&dir, &[("snapshot.0", snap), ("log.1", log)]);
    let imported = read(&opts(&dir)).unwrap();
    let last = entries.last().unwrap().header.zxid;
    assert_eq!(imported.txns, entries.len());
    assert_eq!(imported.tree.last_zxid, last);
    // ZooKeeper's own digest, recomputed over the replayed tree, matches.
    assert_eq!(imported.digest, DigestCheck::Verified { zxid: last });
    let last_set = entries
        .iter()
        .rev()
        .find_map(|e| match &e.txn {
            ZkTxn::SetData { path, data, .. } if path == "/a" => Some(data.clone()),
            _ => None,
        })
        .expect("the fixture sets /a");
    assert_eq!(imported.tree.get("/a").unwrap().data, last_set);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn snapshot_round_trips_and_keeps_null_empty_and_acls() {
    let mut snap = Snap::base();
    snap.digest = Some(ZxidDigest {
        zxid: 2,
        version: 2,
        digest: 77,
    });
    let s = parse_snapshot(Bytes::from(snap.bytes())).unwrap();
    assert_eq!(s.sessions, vec![(SESSION, 10_000)]);
    assert_eq!(s.acls[&2], vec![Acl::new(31, "digest", "u:abc=")]);
    assert_eq!(s.nodes[4].data, None);
    assert_eq!(s.nodes[5].data.as_deref(), Some(&b"eph"[..]));
    assert_eq!(s.nodes[5].stat, stat(2, 0, SESSION));
    assert_eq!(s.digest.map(|d| d.digest), Some(77));
    let t = ZkTree::from_snapshot(&s, 2).unwrap();
    assert_eq!(t.node_count(), 6);
    assert_eq!(t.get("/a").unwrap().acl[0].id.scheme.as_str(), "digest");
    assert_eq!(
        t.get("/zookeeper/config").unwrap().acl.as_slice(),
        Acl::read_unsafe()
    );
    assert_eq!(t.get("/").unwrap().acl.as_slice(), Acl::open_unsafe());
}

#[test]
fn snapshot_corruption_names_the_offset() {
    let good = Snap::base().bytes();
    let seal_at = good.len() - 13;
    // A flipped data byte: the seal's checksum no longer matches.
    let mut flipped = good.clone();
    let eph_at = good.windows(3).position(|w| w == b"eph").unwrap();
    flipped[eph_at] ^= 1;
    let e = parse_snapshot(Bytes::from(flipped)).unwrap_err();
    assert_eq!(e.offset, seal_at as u64);
    assert!(e.reason.contains("checksum mismatch"), "{e:?}");
    // Cut short anywhere: an error, never a panic.
    for cut in [0, 3, 15, 20, eph_at, seal_at, good.len() - 1] {
        assert!(
            parse_snapshot(Bytes::copy_from_slice(&good[..cut])).is_err(),
            "cut {cut}"
        );
    }
    let mut magic = good.clone();
    magic[0] = b'X';
    let e = parse_snapshot(Bytes::from(magic)).unwrap_err();
    assert_eq!(e.offset, 0);
    assert!(e.reason.contains("not a ZooKeeper file"), "{e:?}");
    // A node pointing at an ACL list the snapshot lacks.
    let mut snap = Snap::base();
    snap.nodes[4].2 = 9;
    let e = parse_snapshot(Bytes::from(snap.bytes())).unwrap_err();
    assert!(e.reason.contains("ACL list 9"), "{e:?}");
    // A node before its parent: refused when building the tree, as ZooKeeper refuses it.
    let mut snap = Snap::base();
    snap.nodes.swap(4, 5);
    let s = parse_snapshot(Bytes::from(snap.bytes())).unwrap();
    assert!(ZkTree::from_snapshot(&s, 2)
        .unwrap_err()
        .contains("before its parent"));
}

#[test]
fn replays_the_log_after_the_snapshot() {
    let dir = temp_dir("replay");
    let log = base_log();
    write_files(
        &dir,
        &[
            ("snapshot.2", &Snap::base().bytes()),
            ("log.3", &log_bytes(&log, 100)),
        ],
    );
    let i = read(&opts(&dir)).unwrap();
    assert_eq!((i.txns, i.txns_ignored, i.tree.last_zxid), (4, 0, 6));
    assert_eq!(i.digest, DigestCheck::NotRecorded);
    let b = i.tree.get("/a/b").unwrap();
    assert_eq!(b.data.as_deref(), Some(&b"bee2"[..]));
    assert_eq!((b.stat.czxid, b.stat.mzxid, b.stat.version), (3, 4, 1));
    let a = i.tree.get("/a").unwrap();
    assert_eq!((a.stat.cversion, a.stat.pzxid), (2, 3));
    let root = i.tree.get("/").unwrap();
    // /c created (cversion 2) and deleted (pzxid moves, cversion stays).
    assert_eq!((root.stat.cversion, root.stat.pzxid), (2, 6));
    assert!(i.tree.get("/c").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fuzzy_snapshot_txns_are_ignored_as_zookeeper_ignores_them() {
    // The snapshot is named 2 but already holds /a/b (zxid 3) and lacks /c's creation
    // and deletion (zxids 5, 6): replaying 3..6 must give the same tree as a clean one.
    let mut snap = Snap::base();
    snap.nodes.push((
        "/a/b",
        Some(b"bee"),
        -1,
        StatPersisted {
            ctime: 5003,
            mtime: 5003,
            ..stat(3, 0, 0)
        },
    ));
    snap.nodes[4].3 = StatPersisted {
        cversion: 2,
        pzxid: 3,
        ..stat(1, 1, 0)
    };
    let mut s =
        ZkTree::from_snapshot(&parse_snapshot(Bytes::from(snap.bytes())).unwrap(), 2).unwrap();
    let mut clean = ZkTree::from_snapshot(
        &parse_snapshot(Bytes::from(Snap::base().bytes())).unwrap(),
        2,
    )
    .unwrap();
    let mut ignored = 0;
    for p in base_log() {
        let e = decode_entry(Bytes::from(p)).unwrap();
        if s.apply(&e.header, &e.txn).unwrap() == Applied::Ignored {
            ignored += 1;
        }
        assert_eq!(clean.apply(&e.header, &e.txn).unwrap(), Applied::Ok);
    }
    assert_eq!(ignored, 1, "the create of /a/b");
    assert_eq!(s.digest(), clean.digest());
    for p in ["/", "/a", "/a/b", "/a/e"] {
        assert_eq!(s.get(p), clean.get(p), "{p}");
    }
    // A delete of a node that is already gone still moves the parent's pzxid.
    let e = decode_entry(Bytes::from(payload(
        &header(7, op::DELETE),
        &path_body("/a/zz"),
        None,
    )))
    .unwrap();
    assert_eq!(s.apply(&e.header, &e.txn).unwrap(), Applied::Ignored);
    assert_eq!(s.get("/a").unwrap().stat.pzxid, 7);
}

#[test]
fn multi_close_session_and_orphans() {
    let snap = parse_snapshot(Bytes::from(Snap::base().bytes())).unwrap();
    let mut t = ZkTree::from_snapshot(&snap, 2).unwrap();
    // A multi with an error op changes nothing.
    let mut body = BytesMut::new();
    body.put_i32(2);
    body.put_i32(op::CREATE);
    body.put_buffer(&create_body("/x", b"", false, 2));
    body.put_i32(op::ERROR);
    body.put_buffer(&(-101i32).to_be_bytes());
    let e = decode_entry(Bytes::from(payload(&header(3, op::MULTI), &body, None))).unwrap();
    assert!(matches!(&e.txn, ZkTxn::Multi { ops } if ops.len() == 2));
    t.apply(&e.header, &e.txn).unwrap();
    assert!(t.get("/x").is_none());
    // A successful multi applies every op at the same zxid.
    let mut body = BytesMut::new();
    body.put_i32(2);
    body.put_i32(op::CREATE);
    body.put_buffer(&create_body("/x", b"1", false, 2));
    body.put_i32(op::SET_DATA);
    body.put_buffer(&set_data_body("/x", b"2", 1));
    let e = decode_entry(Bytes::from(payload(&header(4, op::MULTI), &body, Some(5)))).unwrap();
    assert_eq!(e.digest.map(|d| d.tree_digest), Some(5));
    t.apply(&e.header, &e.txn).unwrap();
    let x = t.get("/x").unwrap();
    assert_eq!((x.stat.czxid, x.stat.mzxid, x.stat.version), (4, 4, 1));
    // closeSession: the session and its ephemerals go.
    let mut body = BytesMut::new();
    body.put_string_vec(&["/a/e"]);
    let e = decode_entry(Bytes::from(payload(
        &header(5, op::CLOSE_SESSION),
        &body,
        Some(1),
    )))
    .unwrap();
    assert_eq!(
        e.txn,
        ZkTxn::CloseSession {
            paths: vec!["/a/e".into()]
        }
    );
    t.apply(&e.header, &e.txn).unwrap();
    assert!(t.get("/a/e").is_none());
    assert!(t.sessions.is_empty());
    // closeSession without its record (older format), digest only.
    let e = decode_entry(Bytes::from(payload(
        &header(6, op::CLOSE_SESSION),
        &[],
        Some(3),
    )))
    .unwrap();
    assert_eq!(e.txn, ZkTxn::CloseSession { paths: vec![] });
    // An ephemeral whose session is not in the table goes at import, as at ZooKeeper start.
    let mut snap = Snap::base();
    snap.sessions.clear();
    let mut t =
        ZkTree::from_snapshot(&parse_snapshot(Bytes::from(snap.bytes())).unwrap(), 2).unwrap();
    assert_eq!(t.remove_orphan_ephemerals().unwrap(), 1);
    assert!(t.get("/a/e").is_none());
    assert_eq!(t.get("/a").unwrap().stat.pzxid, 2);
}

#[test]
fn log_torn_tail_is_tolerated_when_the_zxids_go_on() {
    let log = base_log();
    let full = log_bytes(&log, 64);
    let offsets = record_offsets(&log);
    // The last record (zxid 6) cut in the middle, zeros after (preallocated space).
    let mut torn = full[..offsets[3] + 20].to_vec();
    torn.resize(full.len(), 0);
    let dir = temp_dir("torn");
    write_files(
        &dir,
        &[("snapshot.2", &Snap::base().bytes()), ("log.3", &torn)],
    );
    let i = read(&opts(&dir)).unwrap();
    assert_eq!((i.txns, i.tree.last_zxid), (3, 5));
    assert_eq!(i.torn.len(), 1);
    assert_eq!(i.torn[0].offset, offsets[3] as u64);
    // ZooKeeper restarted: the next log starts again at zxid 6.
    let again = log_bytes(
        &[payload(
            &header(6, op::CREATE),
            &create_body("/d", b"", false, 3),
            None,
        )],
        16,
    );
    write_files(&dir, &[("log.6", &again)]);
    let i = read(&opts(&dir)).unwrap();
    assert_eq!((i.txns, i.tree.last_zxid, i.torn.len()), (4, 6, 1));
    assert!(i.tree.get("/d").is_some() && i.tree.get("/c").is_some());
    // A next log that starts later: the cut record is lost data.
    std::fs::remove_file(dir.join("version-2").join("log.6")).unwrap();
    let later = log_bytes(
        &[payload(
            &header(7, op::CREATE),
            &create_body("/d", b"", false, 3),
            None,
        )],
        16,
    );
    write_files(&dir, &[("log.7", &later)]);
    let e = read(&opts(&dir)).unwrap_err();
    assert!(
        matches!(
            &e,
            ImportError::ZxidOrder {
                zxid: 7,
                previous: 5,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("log.7: offset 16"), "{e}");
    // A log holding only zeros (created, crashed before its header) is a torn tail too.
    std::fs::remove_file(dir.join("version-2").join("log.7")).unwrap();
    write_files(&dir, &[("log.9", &[0u8; 10])]);
    let i = read(&opts(&dir)).unwrap();
    assert_eq!(i.torn.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn log_corruption_before_a_valid_record_is_an_error() {
    let log = base_log();
    let offsets = record_offsets(&log);
    let mut bad = log_bytes(&log, 64);
    bad[offsets[1] + 30] ^= 0x40;
    let dir = temp_dir("corrupt");
    write_files(
        &dir,
        &[("snapshot.2", &Snap::base().bytes()), ("log.3", &bad)],
    );
    let e = read(&opts(&dir)).unwrap_err();
    match &e {
        ImportError::CorruptRecord {
            offset, next_valid, ..
        } => {
            assert_eq!(*offset, offsets[1] as u64);
            assert_eq!(*next_valid, offsets[2] as u64);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("log.3: offset"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_txn_types_and_gaps_are_errors() {
    let dir = temp_dir("unknown");
    let mut log = base_log();
    log[1] = payload(&header(4, 99), &[0, 0, 0, 0], None);
    let offsets = record_offsets(&log);
    write_files(
        &dir,
        &[
            ("snapshot.2", &Snap::base().bytes()),
            ("log.3", &log_bytes(&log, 16)),
        ],
    );
    let e = read(&opts(&dir)).unwrap_err().to_string();
    assert!(e.contains("unknown txn type 99"), "{e}");
    assert!(
        e.contains(&format!("offset {}", offsets[1] + 12 + TXN_HEADER_BYTES)),
        "{e}"
    );
    // A missing txn (zxid 4) in the same epoch.
    let mut log = base_log();
    log.remove(1);
    write_files(&dir, &[("log.3", &log_bytes(&log, 16))]);
    let e = read(&opts(&dir)).unwrap_err().to_string();
    assert!(e.contains("txns are missing"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn snapshot_choice_fallback_compression_and_not_a_zk_dir() {
    let dir = temp_dir("choice");
    let e = read(&opts(&dir)).unwrap_err();
    assert!(matches!(e, ImportError::NotZooKeeperDir { .. }), "{e}");
    let mut broken = Snap::base().bytes();
    let n = broken.len();
    broken.truncate(n - 7);
    write_files(
        &dir,
        &[
            ("snapshot.2", &Snap::base().bytes()),
            ("snapshot.5", &broken),
            ("log.3", &log_bytes(&base_log(), 16)),
        ],
    );
    let i = read(&opts(&dir)).unwrap();
    assert!(i.snapshot.ends_with("snapshot.2"));
    assert_eq!(i.skipped_snapshots.len(), 1);
    assert_eq!(i.tree.last_zxid, 6);
    write_files(&dir, &[("snapshot.9.gz", b"\x1f\x8b")]);
    let e = read(&opts(&dir)).unwrap_err();
    assert!(matches!(e, ImportError::CompressedSnapshot { .. }), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn digest_mismatch_stops_the_import() {
    let dir = temp_dir("digest");
    // Compute the right digest, then record a wrong one.
    let snap = parse_snapshot(Bytes::from(Snap::base().bytes())).unwrap();
    let mut t = ZkTree::from_snapshot(&snap, 2).unwrap();
    let mut log = base_log();
    for p in &log {
        let e = decode_entry(Bytes::from(p.clone())).unwrap();
        t.apply(&e.header, &e.txn).unwrap();
    }
    log[3] = payload(&header(6, op::DELETE), &path_body("/c"), Some(t.digest()));
    write_files(
        &dir,
        &[
            ("snapshot.2", &Snap::base().bytes()),
            ("log.3", &log_bytes(&log, 16)),
        ],
    );
    assert_eq!(
        read(&opts(&dir)).unwrap().digest,
        DigestCheck::Verified { zxid: 6 }
    );
    log[3] = payload(
        &header(6, op::DELETE),
        &path_body("/c"),
        Some(t.digest() ^ 1),
    );
    write_files(&dir, &[("log.3", &log_bytes(&log, 16))]);
    let e = read(&opts(&dir)).unwrap_err();
    assert!(
        matches!(e, ImportError::DigestMismatch { zxid: 6, .. }),
        "{e}"
    );
    let mut o = opts(&dir);
    o.check_digest = false;
    assert_eq!(read(&o).unwrap().digest, DigestCheck::Skipped);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn writes_a_snapshot_corral_recovery_loads() {
    let zk = temp_dir("src");
    write_files(
        &zk,
        &[
            ("snapshot.2", &Snap::base().bytes()),
            ("log.3", &log_bytes(&base_log(), 16)),
            ("currentEpoch", b"0\n"),
        ],
    );
    let out = temp_dir("dst");
    let _ = std::fs::remove_dir_all(out.join("version-2"));
    let dest = Destination {
        data_dir: out.clone(),
        data_log_dir: out.clone(),
        force: false,
    };
    let source = opts(&zk);
    check_destination(&dest, &source).unwrap();
    let imported = read(&source).unwrap();
    let expected: Vec<_> = ["/", "/a", "/a/b", "/a/e"]
        .iter()
        .map(|p| (p.to_string(), imported.tree.get(p).unwrap().clone()))
        .collect();
    let w = write(imported, &dest, &source).unwrap();
    assert_eq!((w.zxid, w.nodes, w.sessions), (6, 7, 1));
    let r =
        crate::storage::open(&out, &out, &crate::storage::OpenOptions::new(Bytes::new())).unwrap();
    assert_eq!(r.last_zxid, 6);
    assert_eq!(r.replayed, 0);
    assert_eq!(r.sessions, vec![(SESSION, 10_000)]);
    for (p, zk_node) in expected {
        let n = r.tree.get(&p).unwrap();
        let s = n.stat();
        assert_eq!(n.data, zk_node.data, "{p}");
        assert_eq!(n.acl, zk_node.acl, "{p}");
        assert_eq!(
            (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.version, s.aversion),
            (
                zk_node.stat.czxid,
                zk_node.stat.mzxid,
                zk_node.stat.pzxid,
                zk_node.stat.ctime,
                zk_node.stat.mtime,
                zk_node.stat.version,
                zk_node.stat.aversion
            ),
            "{p}"
        );
        assert_eq!(n.cversion_creations, zk_node.stat.cversion, "{p}");
        assert_eq!(n.ephemeral_owner, zk_node.stat.ephemeral_owner, "{p}");
    }
    assert_eq!(r.tree.ephemerals_of(SESSION).count(), 1);
    assert_eq!(
        epoch::read_epoch(&out.join("version-2"), epoch::CURRENT_EPOCH_FILE).unwrap(),
        Some(0)
    );
    // A second import is refused; with force it replaces the files.
    let e = check_destination(&dest, &source).unwrap_err();
    assert!(matches!(e, ImportError::DestinationNotEmpty { .. }), "{e}");
    let forced = Destination {
        force: true,
        ..dest
    };
    let w = write(read(&source).unwrap(), &forced, &source).unwrap();
    assert_eq!(w.replaced.len(), 2, "{:?}", w.replaced);
    // Never into the ZooKeeper directory itself.
    let into_source = Destination {
        data_dir: zk.clone(),
        data_log_dir: zk.clone(),
        force: true,
    };
    let e = check_destination(&into_source, &source).unwrap_err();
    assert!(matches!(e, ImportError::DestinationIsSource { .. }), "{e}");
    let _ = std::fs::remove_dir_all(&zk);
    let _ = std::fs::remove_dir_all(&out);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any truncation or byte flip of a snapshot or a log decodes or fails, never panics.
    #[test]
    fn damaged_files_never_panic(cut in 0usize..2000, flip_at in 0usize..2000, bit in 0u8..8) {
        let mut snap = Snap::base();
        snap.digest = Some(ZxidDigest { zxid: 2, version: 2, digest: 1 });
        let log = base_log();
        for good in [snap.bytes(), log_bytes(&log, 32)] {
            let mut bytes = good.clone();
            let i = flip_at % bytes.len();
            bytes[i] ^= 1 << bit;
            bytes.truncate(cut);
            let _ = parse_snapshot(Bytes::from(bytes.clone()));
            if let Ok(scan) = scan_log(Bytes::from(bytes)) {
                for (_, p) in scan.records {
                    if let Ok(e) = decode_entry(p) {
                        let mut t = ZkTree::from_snapshot(
                            &parse_snapshot(Bytes::from(Snap::base().bytes())).unwrap(), 2).unwrap();
                        let _ = t.apply(&e.header, &e.txn);
                    }
                }
            }
        }
    }
}
