//! Micro-bench of the storage layer: what the ZAB executor pays per write for the log
//! (record encode + frame + crc32c), what it pays to start a snapshot (the capture pause,
//! during which it orders no write), what the background thread pays to encode one, and what
//! a restart pays (snapshot read + validate + tree rebuild, then log replay: `storage::open`).
//!
//! The big trees are `CORRAL_BENCH_NODES` znodes (default 1 000 000) of 100 bytes under
//! 1 000 parents, the shape of a service registry; set it lower for a quick run.

use bytes::Bytes;
use corral::proto::Acl;
use corral::storage::snapshot::{write_snapshot, SnapshotImage};
use corral::storage::txn_log::encode_frame;
use corral::storage::{open, OpenOptions};
use corral::tree::{CreateTxn, DataTree, Txn, TxnRecord};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const SESSION: i64 = 0x0100_0000_0000_0001;
const PARENTS: usize = 1000;

fn nodes() -> usize {
    std::env::var("CORRAL_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn record(zxid: i64, txn: Txn) -> TxnRecord {
    TxnRecord {
        zxid,
        time_ms: zxid,
        session_id: SESSION,
        cxid: zxid as i32,
        txn,
    }
}

fn create(path: String, data: &Bytes, acl: &Arc<Vec<Acl>>, parent_cversion: i32) -> Txn {
    Txn::Create(CreateTxn {
        path: Arc::from(path),
        data: Some(data.clone()),
        acl: acl.clone(),
        ephemeral_owner: 0,
        parent_cversion,
        with_stat: false,
    })
}

/// `n` nodes of 100 bytes spread over [`PARENTS`] parents.
fn big_tree(n: usize) -> DataTree {
    let mut tree = DataTree::new(Bytes::new());
    let acl = Arc::new(Acl::open_unsafe());
    let data = Bytes::from(vec![b'v'; 100]);
    let mut triggers = Vec::new();
    let mut zxid = 0i64;
    for p in 0..PARENTS {
        zxid += 1;
        let txn = create(format!("/svc{p}"), &Bytes::new(), &acl, p as i32 + 1);
        tree.apply(&record(zxid, txn), &mut triggers);
    }
    for i in 0..n.saturating_sub(PARENTS) {
        zxid += 1;
        let parent = i % PARENTS;
        let txn = create(
            format!("/svc{parent}/n{i}"),
            &data,
            &acl,
            (i / PARENTS) as i32 + 1,
        );
        tree.apply(&record(zxid, txn), &mut triggers);
        triggers.clear();
    }
    tree
}

fn set_data_record(zxid: i64, len_bytes: usize) -> TxnRecord {
    record(
        zxid,
        Txn::SetData {
            path: Arc::from("/svc1/n1"),
            data: Some(Bytes::from(vec![b'w'; len_bytes])),
            version: 1,
        },
    )
}

fn log_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("log_append");
    for len_bytes in [128usize, 1024, 16 * 1024] {
        let rec = set_data_record(42, len_bytes);
        g.throughput(Throughput::Bytes(len_bytes as u64));
        let mut out = Vec::with_capacity(1 << 20);
        g.bench_function(format!("setData_{len_bytes}B"), |b| {
            b.iter(|| {
                out.clear();
                black_box(encode_frame(black_box(&rec), &mut out));
            })
        });
    }
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let n = nodes();
    let tree = big_tree(n);
    let sessions: Vec<(i64, i32)> = (0..1000).map(|i| (SESSION + i, 30_000)).collect();
    let mut g = c.benchmark_group(format!("snapshot_{n}_nodes"));
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    // The pause: the ZAB executor orders no write while it captures.
    g.bench_function("capture", |b| {
        b.iter_with_large_drop(|| SnapshotImage::capture(&tree, sessions.iter().copied()))
    });
    let image = SnapshotImage::capture(&tree, sessions.iter().copied());
    g.bench_function("encode", |b| {
        b.iter(|| black_box(image.encode().map(|v| v.len()).unwrap_or(0)))
    });
    g.finish();
}

/// A data directory holding a snapshot of the big tree and `log_records` setData records
/// after it, as a server leaves it; returns (dir, log records written).
fn data_dir_with(tree: &DataTree, log_records: usize) -> tempfile_dir::Dir {
    let dir = tempfile_dir::Dir::new("corral-bench-recovery");
    let snap_dir = corral::storage::version_dir(dir.path());
    std::fs::create_dir_all(&snap_dir).unwrap_or_else(|e| panic!("{e}"));
    let image = SnapshotImage::capture(tree, std::iter::empty());
    let bytes = image
        .encode()
        .unwrap_or_else(|e| panic!("encoding the snapshot: {e}"));
    write_snapshot(&snap_dir, image.zxid, &bytes).unwrap_or_else(|e| panic!("{e}"));
    // The log after it, in the real segment format.
    let mut seg = corral::storage::txn_log::encode_segment_header(image.zxid + 1).to_vec();
    for i in 0..log_records {
        encode_frame(&set_data_record(image.zxid + 1 + i as i64, 1024), &mut seg);
    }
    seg.resize(seg.len() + 4096, 0);
    let seg_path = corral::storage::txn_log::segment_path(&snap_dir, image.zxid + 1);
    std::fs::write(seg_path, seg).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn recovery(c: &mut Criterion) {
    let n = nodes();
    let tree = big_tree(n);
    let log_records = 100_000;
    let dir = data_dir_with(&tree, log_records);
    drop(tree);
    // One timed pass first, split into its two halves, so a regression shows where. CPU
    // time is printed next to wall time: on a shared machine it is the steadier figure.
    let started = std::time::Instant::now();
    let cpu_started = thread_cpu_ms();
    let snap_dir = corral::storage::version_dir(dir.path());
    let newest = corral::storage::snapshot::list_snapshots(&snap_dir)
        .ok()
        .and_then(|v| v.last().cloned())
        .unwrap_or_else(|| panic!("no snapshot in {}", snap_dir.display()));
    let loaded = corral::storage::snapshot::load(&newest.1, Bytes::new())
        .unwrap_or_else(|e| panic!("loading the snapshot: {e}"));
    let load_ms = started.elapsed().as_millis();
    let load_cpu_ms = thread_cpu_ms() - cpu_started;
    drop(loaded);
    let started = std::time::Instant::now();
    let cpu_started = thread_cpu_ms();
    let r = open(dir.path(), dir.path(), &OpenOptions::new(Bytes::new()))
        .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    eprintln!(
        "recovery of {} nodes + {} log records: {} ms ({} ms CPU); the snapshot load alone: {load_ms} ms ({load_cpu_ms} ms CPU)",
        r.tree.node_count(),
        r.replayed,
        started.elapsed().as_millis(),
        thread_cpu_ms() - cpu_started,
    );
    drop(r);
    let mut g = c.benchmark_group(format!("recovery_{n}_nodes"));
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    // A restart: newest snapshot read, validated, turned into the tree, then 100k log
    // records (1 KiB setData) checked and replayed.
    g.bench_function("open_snapshot_plus_100k_records", |b| {
        b.iter_with_large_drop(|| {
            let r = open(dir.path(), dir.path(), &OpenOptions::new(Bytes::new()))
                .unwrap_or_else(|e| panic!("recovery failed: {e}"));
            assert_eq!(r.replayed, log_records);
            r
        })
    });
    g.finish();
}

/// CPU time of the calling thread (user + system), in milliseconds.
fn thread_cpu_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_THREAD_CPUTIME_ID is supported by every Linux kernel Corral runs on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// A temporary directory removed on drop (no extra crate for one directory).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{e}"));
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

criterion_group!(benches, log_append, snapshot, recovery);
criterion_main!(benches);
