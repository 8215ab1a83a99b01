//! Micro-bench of the write side's CPU work: `DataTree::apply` of create and setData
//! transactions (every shard replica and the ZAB executor run it per write), validation
//! plus apply (`zab::prep::prepare` then `apply`, what the sequencer does per write), and
//! the sequencer's whole `handle` + `poll_action` turn for one write.
//!
//! Creates grow the tree, so they are timed in chunks of [`CHUNK`] on a fresh tree (the
//! tree's setup and drop are outside the timing); setData cycles over [`KEYS`] nodes.

use bytes::Bytes;
use corral::jute::JStr;
use corral::proto::request::{CreateRequest, SetDataRequest};
use corral::proto::{op, Acl, Request};
use corral::tree::{CreateTxn, DataTree, Trigger, Txn, TxnRecord};
use corral::zab::prep::{prepare, Caller, PrepConfig};
use corral::zab::{Action, Input, Origin, ReplyTo, Sequencer, SequencerConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DATA_BYTES: usize = 1024;
const KEYS: usize = 1000;
const CHUNK: u64 = 10_000;
const SESSION: i64 = 0x0100_0000_0000_0001;

fn data() -> Bytes {
    Bytes::from(vec![b'v'; DATA_BYTES])
}

fn key(i: usize) -> String {
    format!("/bench/k{i}")
}

fn create_txn(path: &str, data: &Bytes, acl: &Arc<Vec<Acl>>, parent_cversion: i32) -> Txn {
    Txn::Create(CreateTxn {
        path: Arc::from(path),
        data: Some(data.clone()),
        acl: acl.clone(),
        ephemeral_owner: 0,
        parent_cversion,
        with_stat: false,
    })
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

/// A tree with `/bench` and `keys` nodes under it; returns it and its last zxid.
fn tree_with_keys(keys: usize) -> (DataTree, i64) {
    let mut tree = DataTree::new(Bytes::new());
    let acl = Arc::new(Acl::open_unsafe());
    let mut triggers = Vec::new();
    tree.apply(
        &record(1, create_txn("/bench", &Bytes::new(), &acl, 1)),
        &mut triggers,
    );
    let d = data();
    for i in 0..keys {
        let zxid = 2 + i as i64;
        tree.apply(
            &record(zxid, create_txn(&key(i), &d, &acl, i as i32 + 1)),
            &mut triggers,
        );
    }
    (tree, 1 + keys as i64)
}

fn set_data_request(i: usize, d: &Bytes) -> Request {
    Request::SetData(SetDataRequest {
        path: JStr::from(key(i)),
        data: Some(d.clone()),
        version: -1,
    })
}

fn create_request(path: String, d: &Bytes) -> Request {
    Request::Create {
        op: op::CREATE,
        req: CreateRequest {
            path: JStr::from(path),
            data: Some(d.clone()),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: None,
        },
    }
}

/// Times `iters` operations, `CHUNK` at a time: `fresh()` builds untimed state,
/// `prepare_chunk` builds the chunk's inputs untimed, `run` is timed.
fn chunked<S, I>(
    iters: u64,
    mut fresh: impl FnMut() -> S,
    mut prepare_chunk: impl FnMut(&S, u64) -> Vec<I>,
    mut run: impl FnMut(&mut S, I),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let mut state = fresh();
        let inputs = prepare_chunk(&state, n);
        let t = Instant::now();
        for input in inputs {
            run(&mut state, input);
        }
        total += t.elapsed();
        drop(black_box(state));
        left -= n;
    }
    total
}

fn tree_benches(c: &mut Criterion) {
    let d = data();
    let acl = Arc::new(Acl::open_unsafe());
    let mut g = c.benchmark_group("tree_apply");
    g.throughput(Throughput::Elements(1));

    g.bench_function("create_1KiB", |b| {
        b.iter_custom(|iters| {
            let mut triggers: Vec<Trigger> = Vec::new();
            chunked(
                iters,
                || tree_with_keys(0),
                |_, n| {
                    (0..n)
                        .map(|i| {
                            let t = create_txn(&key(i as usize), &d, &acl, i as i32 + 1);
                            record(2 + i as i64, t)
                        })
                        .collect()
                },
                |(tree, _), rec| {
                    triggers.clear();
                    black_box(tree.apply(&rec, &mut triggers));
                },
            )
        })
    });

    let (mut tree, mut zxid) = tree_with_keys(KEYS);
    let paths: Vec<Arc<str>> = (0..KEYS)
        .map(|i| tree.interned(&key(i)).expect("key present"))
        .collect();
    let mut triggers: Vec<Trigger> = Vec::new();
    let mut i = 0usize;
    g.bench_function("setData_1KiB", |b| {
        b.iter(|| {
            zxid += 1;
            i = (i + 1) % KEYS;
            let rec = record(
                zxid,
                Txn::SetData {
                    path: paths[i].clone(),
                    data: Some(d.clone()),
                    version: (zxid & 0x7fff_ffff) as i32,
                },
            );
            triggers.clear();
            black_box(tree.apply(&rec, &mut triggers))
        })
    });
    g.finish();
}

fn prep_benches(c: &mut Criterion) {
    let d = data();
    let cfg = PrepConfig::default();
    let caller = Caller {
        session_id: SESSION,
        auth_ids: &[],
    };
    let mut g = c.benchmark_group("prep_apply");
    g.throughput(Throughput::Elements(1));

    let (mut tree, mut zxid) = tree_with_keys(KEYS);
    let requests: Vec<Request> = (0..KEYS).map(|i| set_data_request(i, &d)).collect();
    let mut triggers: Vec<Trigger> = Vec::new();
    let mut i = 0usize;
    g.bench_function("setData_1KiB", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let txn = prepare(&tree, &requests[i], &caller, &cfg);
            zxid += 1;
            triggers.clear();
            black_box(tree.apply(&record(zxid, txn), &mut triggers))
        })
    });

    g.bench_function("create_1KiB", |b| {
        b.iter_custom(|iters| {
            let mut triggers: Vec<Trigger> = Vec::new();
            chunked(
                iters,
                || tree_with_keys(0),
                |_, n| {
                    (0..n)
                        .map(|i| create_request(key(i as usize), &d))
                        .collect()
                },
                |(tree, zxid), req| {
                    let txn = prepare(tree, &req, &caller, &cfg);
                    *zxid += 1;
                    triggers.clear();
                    black_box(tree.apply(&record(*zxid, txn), &mut triggers));
                },
            )
        })
    });
    g.finish();
}

const ORIGIN: Origin = Origin { shard: 0, conn: 1 };

/// A sequencer over a tree with `keys` nodes, and one open session.
fn sequencer(keys: usize) -> (Sequencer, i64) {
    let (tree, _) = tree_with_keys(keys);
    let mut s = Sequencer::new(
        SequencerConfig {
            server_id: 1,
            tick_ms: 2000,
            prep: PrepConfig::default(),
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            txn_bytes_max: corral::storage::txn_log::RECORD_BYTES_MAX,
        },
        tree,
        0,
    );
    s.handle(
        0,
        Input::CreateSession {
            can_be_read_only: false,
            origin: ORIGIN,
            timeout_ms: 30_000,
        },
    );
    let mut session = 0;
    while let Some(a) = s.poll_action() {
        if let Action::Deliver(batch) = a {
            for c in batch.iter() {
                if let Some(rec) = &c.rec {
                    session = rec.session_id;
                }
            }
        }
    }
    assert_ne!(session, 0, "the sequencer opened a session");
    (s, session)
}

fn write(session: i64, xid: i32, req: Request) -> Input {
    Input::Write {
        reply_to: ReplyTo {
            origin: ORIGIN,
            xid,
            op: req.op(),
        },
        session_id: session,
        auth_ids: Arc::from(vec![]),
        req,
    }
}

/// One write through the sequencer; the delivered batch is dropped (as after every shard
/// has its `Arc`).
fn turn(s: &mut Sequencer, now_ms: i64, input: Input) {
    s.handle(now_ms, input);
    while let Some(a) = s.poll_action() {
        black_box(a);
    }
}

fn sequencer_benches(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("sequencer");
    g.throughput(Throughput::Elements(1));

    let (mut s, session) = sequencer(KEYS);
    let requests: Vec<Request> = (0..KEYS).map(|i| set_data_request(i, &d)).collect();
    let mut i = 0usize;
    let mut xid = 0i32;
    g.bench_function("setData_1KiB", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            xid = xid.wrapping_add(1) & 0x7fff_ffff;
            turn(&mut s, 1, write(session, xid, requests[i].clone()));
        })
    });

    g.bench_function("create_1KiB", |b| {
        b.iter_custom(|iters| {
            chunked(
                iters,
                || sequencer(0),
                |(_, session), n| {
                    (0..n)
                        .map(|i| write(*session, i as i32 + 1, create_request(key(i as usize), &d)))
                        .collect()
                },
                |(s, _), input| turn(s, 1, input),
            )
        })
    });
    g.finish();
}

criterion_group!(tree_apply, tree_benches, prep_benches, sequencer_benches);
criterion_main!(tree_apply);
