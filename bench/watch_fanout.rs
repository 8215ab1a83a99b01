//! Micro-bench of a data watch firing to N watchers on one shard, without sockets.
//!
//! `deliver/N`: the whole path a committed setData takes through a shard whose N
//! connections each hold a data watch on the node: `ShardCtx::handle_from_zab(Deliver)`
//! -> `DataTree::apply` (the trigger) -> `fire_watches` (`WatchRegistry::trigger`, then a
//! NodeDataChanged notification encoded into each watcher's output buffer and its
//! connection woken). `trigger/N`: `WatchRegistry::trigger` alone (the table's part).
//! N = 1, 100, 10 000. One-shot watches are consumed by each firing, so every iteration
//! re-arms them (and clears the output buffers) in an untimed setup.
//!
//! Before timing, `check_fanout` asserts that one delivery leaves exactly one
//! notification (NodeDataChanged, the node's path) in every watcher's output buffer and
//! no watch behind.

use bytes::{Bytes, BytesMut};
use corral::jute::frame::{split_frame, FrameStatus};
use corral::jute::{Reader, Record};
use corral::proto::{event, xid, Acl, ReplyHeader};
use corral::runtime::Notify;
use corral::server::msg::ToShard;
use corral::server::settings::Settings;
use corral::shard::{Conn, ConnState, Handshake, ShardCtx};
use corral::tree::watches::{WatchKind, WatchRegistry};
use corral::tree::{CreateTxn, Txn, TxnRecord};
use corral::zab::Committed;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

const NODE_PATH: &str = "/bench/watched";
const DATA_BYTES: usize = 128;
const WATCHERS: [usize; 3] = [1, 100, 10_000];

/// A shard whose replica holds NODE_PATH and which has `n` established connections.
fn shard(n: usize) -> (Rc<ShardCtx>, Vec<Rc<Conn>>) {
    let settings = Settings::from_config(corral::config::Config::embedded_default())
        .expect("the embedded default config is servable");
    let shared = Arc::new(corral::server::Shared::default());
    shared
        .committed_zxid
        .store(2, std::sync::atomic::Ordering::Release);
    let tree = corral::tree::DataTree::new(settings.config_node_data.clone());
    let ctx = ShardCtx::new(0, Arc::new(settings), shared, tree);
    let deliver = |zxid: i64, path: &str| {
        ctx.handle_from_zab(ToShard::Deliver(Arc::new(vec![Committed {
            rec: Some(TxnRecord {
                zxid,
                time_ms: 0,
                session_id: 0,
                cxid: 0,
                txn: Txn::Create(CreateTxn {
                    path: Arc::from(path),
                    data: Some(Bytes::from(vec![b'v'; DATA_BYTES])),
                    acl: Arc::new(Acl::open_unsafe()),
                    ephemeral_owner: 0,
                    parent_cversion: 1,
                    with_stat: false,
                }),
            }),
            reply_to: None,
            sync_path: None,
        }])))
    };
    deliver(1, "/bench");
    deliver(2, NODE_PATH);
    let peer: std::net::SocketAddr = "127.0.0.1:1".parse().expect("literal address");
    let conns: Vec<Rc<Conn>> = (1..=n as u64)
        .map(|id| {
            Rc::new(Conn {
                id,
                peer,
                established_ms: 0,
                st: RefCell::new(ConnState {
                    session_id: 0x100 + id as i64,
                    timeout_ms: 30_000,
                    auth_ids: Arc::from(vec![]),
                    out: BytesMut::with_capacity(256),
                    handshake: Handshake::Done,
                    ..ConnState::new(peer)
                }),
                wake: Notify::default(),
            })
        })
        .collect();
    {
        let mut st = ctx.state.borrow_mut();
        for c in &conns {
            st.conns.insert(c.id, c.clone());
        }
    }
    (ctx, conns)
}

/// Arms a data watch for every connection and empties their output buffers.
fn arm(ctx: &ShardCtx, conns: &[Rc<Conn>]) {
    let mut st = ctx.state.borrow_mut();
    for c in conns {
        st.watches.add(c.id, NODE_PATH, WatchKind::Data);
        c.st.borrow_mut().out.clear();
    }
}

/// A committed setData of NODE_PATH at `zxid`.
fn set_data(zxid: i64, data: &Bytes) -> ToShard {
    ToShard::Deliver(Arc::new(vec![Committed {
        rec: Some(TxnRecord {
            zxid,
            time_ms: 0,
            session_id: 0,
            cxid: 0,
            txn: Txn::SetData {
                path: Arc::from(NODE_PATH),
                data: Some(data.clone()),
                version: (zxid - 2) as i32,
            },
        }),
        reply_to: None,
        sync_path: None,
    }]))
}

fn check_fanout(ctx: &Rc<ShardCtx>, conns: &[Rc<Conn>], zxid: i64, data: &Bytes) {
    arm(ctx, conns);
    assert_eq!(ctx.state.borrow().watches.watch_count(), conns.len());
    ctx.handle_from_zab(set_data(zxid, data));
    assert_eq!(
        ctx.state.borrow().watches.watch_count(),
        0,
        "one-shot watches left after firing"
    );
    for c in conns {
        let mut cs = c.st.borrow_mut();
        let FrameStatus::Frame(frame) = split_frame(&mut cs.out, 1 << 20) else {
            panic!("connection {} got no notification", c.id);
        };
        assert!(
            cs.out.is_empty(),
            "connection {} got more than one frame",
            c.id
        );
        let mut r = Reader::new(frame);
        let hdr = ReplyHeader::decode(&mut r).expect("notification header");
        assert_eq!(hdr.xid, xid::NOTIFICATION);
        assert_eq!(r.i32().expect("event type"), event::NODE_DATA_CHANGED);
        let _state = r.i32().expect("keeper state");
        assert_eq!(r.string().expect("path").as_str(), NODE_PATH);
    }
}

fn benches(c: &mut Criterion) {
    let data = Bytes::from(vec![b'w'; DATA_BYTES]);
    let mut g = c.benchmark_group("watch_fanout");
    for n in WATCHERS {
        let (ctx, conns) = shard(n);
        // zxids must grow across every delivery to this shard's replica.
        let zxid = Cell::new(3i64);
        check_fanout(&ctx, &conns, zxid.get(), &data);
        zxid.set(zxid.get() + 1);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("deliver/{n}"), |b| {
            b.iter_batched(
                || {
                    arm(&ctx, &conns);
                    let z = zxid.get();
                    zxid.set(z + 1);
                    set_data(z, &data)
                },
                |msg| ctx.handle_from_zab(black_box(msg)),
                BatchSize::PerIteration,
            )
        });

        let ids: Vec<u64> = conns.iter().map(|c| c.id).collect();
        let mut out = Vec::with_capacity(n);
        g.bench_function(format!("trigger/{n}"), |b| {
            b.iter_batched_ref(
                || {
                    let mut reg = WatchRegistry::default();
                    for id in &ids {
                        reg.add(*id, NODE_PATH, WatchKind::Data);
                    }
                    reg
                },
                |reg| {
                    reg.trigger(NODE_PATH, event::NODE_DATA_CHANGED, &mut out);
                    black_box(out.len())
                },
                BatchSize::PerIteration,
            )
        });
        assert_eq!(out.len(), n, "trigger found every watcher");
    }
    g.finish();
}

criterion_group!(watch_fanout, benches);
criterion_main!(watch_fanout);
