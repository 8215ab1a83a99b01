//! Encoding answers straight into a connection's output buffer (no intermediate records).

use crate::jute::frame::{begin_frame, end_frame};
use crate::jute::{Record, Writer};
use crate::proto::{op, xid, ErrorCode, MultiHeader, ReplyHeader};
use crate::tree::OpResult;
use bytes::{BufMut, BytesMut};

/// Ends a reply or notification frame and counts its size for `*_client_response_size`
/// (the connect response is not counted, as ZooKeeper does not count it).
fn end_counted_frame(out: &mut BytesMut, at: usize) {
    end_frame(out, at);
    crate::metrics::response_framed(out.len() - at - 4);
}

pub fn header(out: &mut BytesMut, xid: i32, zxid: i64, err: ErrorCode) {
    ReplyHeader {
        xid,
        zxid,
        err: err.code(),
    }
    .encode(out);
}

/// A reply carrying only a header (errors, delete, ping, auth, setWatches, ...).
pub fn header_only(out: &mut BytesMut, xid: i32, zxid: i64, err: ErrorCode) {
    let at = begin_frame(out);
    header(out, xid, zxid, err);
    end_counted_frame(out, at);
}

/// A reply with a body written by `body` (only for err == Ok).
pub fn with_body(out: &mut BytesMut, xid: i32, zxid: i64, body: impl FnOnce(&mut BytesMut)) {
    let at = begin_frame(out);
    header(out, xid, zxid, ErrorCode::Ok);
    body(out);
    end_counted_frame(out, at);
}

pub fn notification(out: &mut BytesMut, event_type: i32, path: &str) {
    let at = begin_frame(out);
    header(out, xid::NOTIFICATION, -1, ErrorCode::Ok);
    out.put_i32(event_type);
    out.put_i32(crate::proto::state::SYNC_CONNECTED);
    out.put_string(path);
    end_counted_frame(out, at);
}

pub fn connect_response(
    out: &mut BytesMut,
    timeout_ms: i32,
    session_id: i64,
    passwd: &[u8],
    read_only: Option<bool>,
) {
    let at = begin_frame(out);
    out.put_i32(0);
    out.put_i32(timeout_ms);
    out.put_i64(session_id);
    out.put_buffer(passwd);
    // Only to a client that sent its canBeReadOnly byte: whether this session is read-only.
    if let Some(read_only) = read_only {
        out.put_bool(read_only);
    }
    end_frame(out, at);
}

pub fn sync_response(out: &mut BytesMut, xid: i32, zxid: i64, path: &str) {
    with_body(out, xid, zxid, |o| o.put_string(path));
}

pub fn write_response(out: &mut BytesMut, xid: i32, zxid: i64, opcode: i32, r: &OpResult) {
    match r {
        OpResult::Error(err) => header_only(out, xid, zxid, *err),
        OpResult::Created { path, stat, .. } => with_body(out, xid, zxid, |o| {
            o.put_string(path);
            if opcode != op::CREATE {
                stat.encode(o);
            }
        }),
        OpResult::SetData { stat } | OpResult::SetAcl { stat } => {
            with_body(out, xid, zxid, |o| stat.encode(o))
        }
        OpResult::Reconfigured { data, stat } => with_body(out, xid, zxid, |o| {
            o.put_buffer_opt(data.as_deref());
            stat.encode(o);
        }),
        OpResult::Deleted
        | OpResult::Checked
        | OpResult::SessionClosed
        | OpResult::SessionCreated => header_only(out, xid, zxid, ErrorCode::Ok),
        OpResult::Multi(results) => with_body(out, xid, zxid, |o| {
            for r in results {
                encode_multi_result(o, r);
            }
            MultiHeader::END.encode(o);
        }),
    }
}

fn encode_multi_result(o: &mut BytesMut, r: &OpResult) {
    let mh = |o: &mut BytesMut, op: i32, err: i32| {
        MultiHeader {
            op,
            done: false,
            err,
        }
        .encode(o)
    };
    match r {
        OpResult::Created {
            path,
            stat,
            extended,
        } => {
            // ZooKeeper answers container and TTL creates inside a multi with create2
            // results (path + stat), every other create with a plain create result.
            let t = if *extended { op::CREATE2 } else { op::CREATE };
            mh(o, t, 0);
            o.put_string(path);
            if *extended {
                stat.encode(o);
            }
        }
        OpResult::Deleted => mh(o, op::DELETE, 0),
        OpResult::SetData { stat } => {
            mh(o, op::SET_DATA, 0);
            stat.encode(o);
        }
        OpResult::Checked => mh(o, op::CHECK, 0),
        OpResult::Error(err) => {
            mh(o, op::ERROR, err.code());
            o.put_i32(err.code());
        }
        other => {
            // Only the four multi op kinds reach here; anything else is a sequencer bug.
            panic!("unexpected result inside multi: {other:?}")
        }
    }
}
