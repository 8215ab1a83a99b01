//! Micro-bench of a read's path through a shard, as `src/shard/conn.rs` runs it:
//! frame split -> RequestHeader -> Request body -> `ShardCtx::dispatch` (which answers
//! the read from the replica, `src/shard/read.rs`) -> reply encoded into the connection's
//! output buffer. The shard state is driven directly, without a glommio executor: dispatch
//! of a read touches no I/O.
//!
//! Cases: getData of a 1 KiB node and exists of the same node; each as `decode` (split +
//! header + body) and as `dispatch` (the whole path above, input copy included).
//!
//! Before timing anything, `check_zero_copy` asserts what design.md asks of a read ("a
//! read must not copy its path or data more than once"): the decoded path points into
//! the received frame, the tree holds the very bytes the transaction carried, and the
//! reply's data bytes are the node's bytes.

use bytes::{Bytes, BytesMut};
use corral::jute::frame::{begin_frame, end_frame, split_frame, FrameStatus};
use corral::jute::{Reader, Record, Writer};
use corral::proto::{op, Acl, ReplyHeader, Request, RequestHeader, Stat};
use corral::runtime::Notify;
use corral::server::settings::Settings;
use corral::shard::{Conn, ConnState, Handshake, ShardCtx};
use corral::tree::{CreateTxn, Txn, TxnRecord};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

const NODE_PATH: &str = "/bench/node";
const DATA_BYTES: usize = 1024;
const XID: i32 = 7;

/// A shard whose replica holds `/bench/node` with `data`, and one established connection.
fn shard(data: &Bytes) -> (Rc<ShardCtx>, Rc<Conn>) {
    let settings = Settings::from_config(corral::config::Config::embedded_default())
        .expect("the embedded default config is servable");
    // The committed zxid every shard has seen: the node's, so reads need not wait.
    let shared = Arc::new(corral::server::Shared {
        committed_zxid: AtomicI64::new(2),
        read_only: Default::default(),
        clients: Default::default(),
    });
    let tree = corral::tree::DataTree::new(settings.config_node_data.clone());
    let ctx = ShardCtx::new(0, Arc::new(settings), shared, tree);
    {
        let mut st = ctx.state.borrow_mut();
        let mut triggers = Vec::new();
        for (zxid, path, d) in [(1, "/bench", Bytes::new()), (2, NODE_PATH, data.clone())] {
            st.tree.apply(
                &TxnRecord {
                    zxid,
                    time_ms: 0,
                    session_id: 0,
                    cxid: 0,
                    txn: Txn::Create(CreateTxn {
                        path: Arc::from(path),
                        data: Some(d),
                        acl: Arc::new(Acl::open_unsafe()),
                        ephemeral_owner: 0,
                        parent_cversion: 1,
                        with_stat: false,
                    }),
                },
                &mut triggers,
            );
        }
    }
    let peer: std::net::SocketAddr = "127.0.0.1:1".parse().expect("literal address");
    let conn = Rc::new(Conn {
        id: 1,
        peer,
        established_ms: 0,
        st: RefCell::new(ConnState {
            session_id: 0x100,
            timeout_ms: 30_000,
            auth_ids: Arc::from(vec![]),
            out: BytesMut::with_capacity(64 * 1024),
            handshake: Handshake::Done,
            ..ConnState::new(peer)
        }),
        wake: Notify::default(),
    });
    ctx.state.borrow_mut().conns.insert(conn.id, conn.clone());
    (ctx, conn)
}

/// The bytes a client sends for `opcode` (getData or exists) of NODE_PATH, no watch.
fn request_wire(opcode: i32) -> Bytes {
    let mut w = BytesMut::new();
    let at = begin_frame(&mut w);
    RequestHeader {
        xid: XID,
        op: opcode,
    }
    .encode(&mut w);
    w.put_string(NODE_PATH);
    w.put_bool(false);
    end_frame(&mut w, at);
    w.freeze()
}

/// Split + header + body, as `conn::handle_request` does. Returns the frame too.
fn decode(input: &mut BytesMut, wire: &[u8]) -> (Bytes, RequestHeader, Request) {
    // Stands for the socket read, which copies the bytes into the input buffer.
    input.extend_from_slice(wire);
    let frame = match split_frame(input, corral::proto::JUTE_MAX_BUFFER_DEFAULT) {
        FrameStatus::Frame(f) => f,
        other => panic!("whole frame expected, got {other:?}"),
    };
    let mut r = Reader::new(frame.clone());
    let hdr = RequestHeader::decode(&mut r).expect("valid header");
    let body = frame.slice(r.offset()..);
    let req = Request::decode(hdr.op, body)
        .expect("valid body")
        .expect("known op");
    (frame, hdr, req)
}

fn dispatch(ctx: &ShardCtx, conn: &Rc<Conn>, hdr: RequestHeader, req: Request) {
    let mut st = ctx.state.borrow_mut();
    ctx.dispatch(&mut st, conn, hdr.xid, req, 0);
}

/// Takes the one reply frame out of the connection's output buffer.
fn take_reply(conn: &Conn) -> (ReplyHeader, Reader) {
    let mut cs = conn.st.borrow_mut();
    let FrameStatus::Frame(frame) = split_frame(&mut cs.out, usize::MAX >> 1) else {
        panic!("a whole reply frame in the output buffer");
    };
    assert!(cs.out.is_empty(), "exactly one reply");
    let mut r = Reader::new(frame);
    let hdr = ReplyHeader::decode(&mut r).expect("reply header");
    (hdr, r)
}

fn check_zero_copy(ctx: &ShardCtx, conn: &Rc<Conn>, data: &Bytes) {
    // The tree keeps the transaction's bytes: no copy on apply.
    {
        let st = ctx.state.borrow();
        let node = st.tree.get(NODE_PATH).expect("node present");
        let stored = node.data.as_ref().expect("data present");
        assert_eq!(stored.as_ptr(), data.as_ptr(), "the tree copied the data");
    }

    let mut input = BytesMut::with_capacity(64 * 1024);
    let (frame, hdr, req) = decode(&mut input, &request_wire(op::GET_DATA));
    let Request::GetData(pw) = &req else {
        panic!("getData decoded as {req:?}")
    };
    let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
    let path_at = pw.path.as_bytes().as_ptr() as usize;
    assert!(
        frame_range.contains(&path_at),
        "the decoded path is a copy, not a slice of the frame"
    );
    assert_eq!(pw.path.as_str(), NODE_PATH);

    dispatch(ctx, conn, hdr, req);
    let (rh, mut r) = take_reply(conn);
    assert_eq!((rh.xid, rh.err), (XID, 0));
    let reply_data = r.buffer().expect("data in the reply");
    assert_eq!(
        reply_data, *data,
        "the reply's data are not the node's bytes"
    );
    let stat = Stat::decode(&mut r).expect("stat in the reply");
    assert_eq!(stat.data_length as usize, DATA_BYTES);
    r.finish().expect("nothing after the stat");

    let (_, hdr, req) = decode(&mut input, &request_wire(op::EXISTS));
    dispatch(ctx, conn, hdr, req);
    let (rh, mut r) = take_reply(conn);
    assert_eq!((rh.xid, rh.err), (XID, 0));
    let stat = Stat::decode(&mut r).expect("stat in the reply");
    assert_eq!(stat.data_length as usize, DATA_BYTES);
}

fn benches(c: &mut Criterion) {
    let data = Bytes::from((0..DATA_BYTES).map(|i| i as u8).collect::<Vec<u8>>());
    let (ctx, conn) = shard(&data);
    check_zero_copy(&ctx, &conn, &data);

    let mut g = c.benchmark_group("frame_dispatch");
    g.throughput(Throughput::Elements(1));
    for (name, opcode) in [("getData_1KiB", op::GET_DATA), ("exists", op::EXISTS)] {
        let wire = request_wire(opcode);
        let mut input = BytesMut::with_capacity(64 * 1024);
        g.bench_function(format!("{name}/decode"), |b| {
            b.iter(|| black_box(decode(&mut input, black_box(&wire))))
        });
        g.bench_function(format!("{name}/dispatch"), |b| {
            b.iter(|| {
                let (_frame, hdr, req) = decode(&mut input, black_box(&wire));
                dispatch(&ctx, &conn, hdr, req);
                // The connection task hands the buffer to the socket; here it is dropped.
                let mut cs = conn.st.borrow_mut();
                black_box(&cs.out);
                cs.out.clear();
            })
        });
    }
    g.finish();
}

criterion_group!(frame_dispatch, benches);
criterion_main!(frame_dispatch);
