//! One client connection's task: read frames, decode, dispatch; flush replies in batches.
//!
//! A single task per connection alternates between flushing its output buffer and waiting
//! for either input or a wake-up (replies and watch events produced by other tasks of the
//! shard). Reads are readiness-based, so abandoning a pending read loses nothing.
//!
//! Bad input (design.md guarantee 7): an oversized or negative length prefix, an
//! undecodable handshake or garbage where a request header should be closes the
//! connection with one log line; an undecodable request body is answered with
//! MarshallingError, an unknown op code with Unimplemented.

use super::reply;
use super::{Conn, ConnState, Handshake, ShardCtx};
use crate::jute::frame::{split_frame, FrameStatus};
use crate::jute::{Reader, Record};
use crate::proto::{op, ConnectRequest, ErrorCode, Id, Request, RequestHeader};
use crate::runtime::{now_ms, Notify};
use bytes::BytesMut;
use futures_lite::future;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// How long closing a connection may wait to flush (a TLS close_notify).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes read per syscall at most; a frame larger than this grows the buffer once.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// The first read window of a connection. Idle connections keep it (10 000 connections
/// hold 40 MiB of read buffers, not 640 MiB); a read that fills the window doubles it, up
/// to [`READ_CHUNK_BYTES`], and one that fills less than a quarter of it halves it again
/// (see [`next_read_window`]).
const READ_WINDOW_MIN_BYTES: usize = 4 * 1024;
/// Replies queued while decoding one batch of input before it is flushed: the rest of the
/// input waits until the client has taken these, so pipelined reads of large nodes cannot
/// pile up output faster than the client reads it.
const OUT_FLUSH_BYTES: usize = 256 * 1024;
/// An input buffer grown beyond this for one large frame is given back once empty.
const INPUT_KEEP_BYTES: usize = 2 * READ_CHUNK_BYTES;

enum Woke {
    Read(std::io::Result<usize>),
    Wake,
    /// No ConnectRequest arrived in time.
    HandshakeTimeout,
}

/// Why [`process_input`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Processed {
    /// Every complete frame was handled (or the handshake is in flight).
    Drained,
    /// Complete frames remain, held back by output to flush or by throttling.
    HeldBack,
}

/// Serves a connection until it closes.
pub async fn serve(ctx: Rc<ShardCtx>, stream: TcpStream) {
    let Ok(peer) = stream.peer_addr() else { return };
    if !admit(&ctx, peer) {
        return;
    }
    let _ = stream.set_nodelay(true);
    serve_stream(ctx, stream, peer, Vec::new()).await;
}

/// Counts a new connection from `peer` against `maxClientCnxns` and `maxCnxns`; false (and
/// the log line) when it is refused. An admitted connection is released by
/// [`serve_stream`], or by its caller if it never gets there.
pub fn admit(ctx: &ShardCtx, peer: std::net::SocketAddr) -> bool {
    let s = &ctx.settings;
    if let Err(refused) = ctx
        .shared
        .clients
        .admit(peer.ip(), s.max_client_cnxns, s.max_cnxns)
    {
        // As ZooKeeper 3.8 (NIO): the connection is closed before anything is read from
        // it, and the log line has ZooKeeper's words.
        match refused {
            super::Refused::PerIp { limit } => tracing::warn!(
                %peer,
                "Error accepting new connection: Too many connections from /{} - max is {limit}",
                peer.ip()
            ),
            super::Refused::Total { limit } => tracing::warn!(
                %peer,
                "Error accepting new connection: Too many connections max allowed is {limit}"
            ),
        }
        ctx.state.borrow_mut().stats.connections_rejected += 1;
        return false;
    }
    true
}

/// Serves a connection from `peer` (plain TCP or TLS, [`admit`]ted) until it closes;
/// `transport_ids` are identities its transport already authenticated (a TLS client
/// certificate's `x509` id).
pub async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: Rc<ShardCtx>,
    mut stream: S,
    peer: std::net::SocketAddr,
    transport_ids: Vec<Id>,
) {
    let conn = {
        let mut st = ctx.state.borrow_mut();
        st.stats.connections_accepted += 1;
        let id = st.next_conn_id;
        st.next_conn_id += 1;
        let conn = Rc::new(Conn {
            id,
            peer,
            established_ms: now_ms(),
            st: RefCell::new(ConnState::new(peer)),
            wake: Notify::default(),
        });
        if !transport_ids.is_empty() {
            let mut cs = conn.st.borrow_mut();
            // Listed first, as ZooKeeper lists them.
            cs.auth_ids = transport_ids
                .into_iter()
                .chain(cs.auth_ids.iter().cloned())
                .collect();
        }
        st.conns.insert(id, conn.clone());
        conn
    };
    let result = run(&ctx, &conn, &mut stream).await;
    let sid = conn.st.borrow().session_id;
    if let Err(reason) = result {
        tracing::info!(%peer, session = format_args!("0x{sid:x}"), reason, "closing client connection");
    }
    // The place is given back before the socket closes, as ZooKeeper's `close` removes the
    // connection before closing its socket: a client that sees the end of this connection
    // (a `ruok` answered, a session closed) and connects again at once finds it free, even
    // on another shard.
    ctx.shared.clients.release(peer.ip());
    // A TLS close writes close_notify: never wait long on a peer that is not reading.
    future::or(
        async {
            let _ = stream.close().await;
        },
        glommio::timer::sleep(CLOSE_WAIT),
    )
    .await;
    let mut st = ctx.state.borrow_mut();
    st.conns.remove(&conn.id);
    st.watches.remove_conn(conn.id);
    {
        let mut cs = conn.st.borrow_mut();
        // Writes still in flight are answered to nobody: they no longer count.
        st.outstanding -= cs.slots.len();
        cs.slots.clear();
        cs.out = BytesMut::new();
    }
    st.lagging.remove(&conn.id);
    ctx.release_throttled(&mut st);
    if st.by_session.get(&sid) == Some(&conn.id) {
        // The session lives on until it expires or the client resumes it elsewhere.
        st.by_session.remove(&sid);
    }
}

/// The reason logged when a connection is closed for not reading.
fn overflow_reason(ctx: &ShardCtx, pending_bytes: usize) -> String {
    format!(
        "client is not reading: {pending_bytes} bytes of replies and watch events pending, \
         over corral.client.maxOutputBytes={}",
        ctx.settings.max_output_bytes
    )
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Rc<ShardCtx>,
    conn: &Rc<Conn>,
    stream: &mut S,
) -> Result<(), String> {
    let mut input = BytesMut::new();
    let mut window_bytes = READ_WINDOW_MIN_BYTES;
    let mut held_back = false;
    loop {
        let chunk = {
            let mut cs = conn.st.borrow_mut();
            if ctx.limit_output(conn, &mut cs) {
                let pending = cs.overflowed_bytes.unwrap_or(0);
                return Err(overflow_reason(ctx, pending));
            }
            cs.out.split().freeze()
        };
        if !chunk.is_empty() {
            // The write may wait for as long as the client does not read; meanwhile watch
            // events keep arriving, and the output limit must still close the connection.
            let written = future::or(async { Some(stream.write_all(&chunk).await) }, async {
                loop {
                    conn.wake.wait().await;
                    if conn.st.borrow().overflowed_bytes.is_some() {
                        return None;
                    }
                }
            })
            .await;
            match written {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(format!("write failed: {e}")),
                None => {
                    let pending = conn.st.borrow().overflowed_bytes.unwrap_or(0);
                    return Err(overflow_reason(ctx, pending + chunk.len()));
                }
            }
            ctx.state.borrow_mut().stats.bytes_sent += chunk.len() as u64;
            continue;
        }
        let (closing, paused) = {
            let mut st = ctx.state.borrow_mut();
            let cs = conn.st.borrow();
            let throttled = ctx.must_throttle(&st, &cs);
            let paused = throttled || matches!(cs.handshake, Handshake::Pending { .. });
            let closing = cs.closing;
            drop(cs);
            if throttled && !closing {
                ctx.throttle(&mut st, conn);
            }
            (closing, paused)
        };
        if closing {
            return Ok(());
        }
        if held_back && !paused {
            // Frames already read wait for no new input.
            held_back = process_input(ctx, conn, &mut input, stream).await? == Processed::HeldBack;
            continue;
        }
        let woke = if paused {
            conn.wake.wait().await;
            Woke::Wake
        } else {
            if input.is_empty() && input.capacity() > INPUT_KEEP_BYTES {
                input = BytesMut::new();
            }
            let start = input.len();
            if input.capacity() - start < window_bytes {
                input.reserve(window_bytes);
            }
            input.resize(start + window_bytes, 0);
            // A connection that never completes its handshake would hold its slot forever:
            // it gets one maximum session timeout to send a ConnectRequest.
            let handshake_wait_ms = if conn.st.borrow().handshake == Handshake::Awaiting {
                let waited_ms = now_ms() - conn.established_ms;
                Some((ctx.settings.max_session_timeout_ms as i64 - waited_ms).max(0) as u64)
            } else {
                None
            };
            let w = future::or(
                future::or(
                    async { Woke::Read(stream.read(&mut input[start..]).await) },
                    async {
                        conn.wake.wait().await;
                        Woke::Wake
                    },
                ),
                async {
                    match handshake_wait_ms {
                        Some(ms) => {
                            glommio::timer::sleep(std::time::Duration::from_millis(ms)).await;
                            Woke::HandshakeTimeout
                        }
                        None => future::pending().await,
                    }
                },
            )
            .await;
            match &w {
                Woke::Read(Ok(n)) => {
                    input.truncate(start + n);
                    window_bytes = next_read_window(window_bytes, *n);
                    ctx.state.borrow_mut().stats.bytes_received += *n as u64;
                }
                _ => input.truncate(start),
            }
            w
        };
        match woke {
            Woke::Wake => {}
            Woke::HandshakeTimeout => {
                return Err("no handshake within the maximum session timeout".into())
            }
            Woke::Read(Err(e)) => return Err(format!("read failed: {e}")),
            Woke::Read(Ok(0)) => return Err("client closed the connection".into()),
            Woke::Read(Ok(_)) => {}
        }
        held_back = process_input(ctx, conn, &mut input, stream).await? == Processed::HeldBack;
    }
}

/// The read window after a read of `read_bytes` into one of `window_bytes`. Each read
/// zero-fills its whole window first (the socket reads into initialised bytes), so a
/// window far larger than what arrives costs a memset of the difference per read: under
/// a write load of 1 KiB requests a 64 KiB window took ~1.6 % of the executor for that.
fn next_read_window(window_bytes: usize, read_bytes: usize) -> usize {
    if read_bytes == window_bytes {
        (window_bytes * 2).min(READ_CHUNK_BYTES)
    } else if read_bytes < window_bytes / 4 {
        (window_bytes / 2).max(READ_WINDOW_MIN_BYTES)
    } else {
        window_bytes
    }
}

/// Handles every complete frame in `input` (unless the handshake is in flight).
async fn process_input<S: AsyncRead + AsyncWrite + Unpin>(
    ctx: &Rc<ShardCtx>,
    conn: &Rc<Conn>,
    input: &mut BytesMut,
    stream: &mut S,
) -> Result<Processed, String> {
    loop {
        let handshake = conn.st.borrow().handshake;
        if let Handshake::Awaiting = handshake {
            if input.len() >= 4 {
                if let Some(word) = crate::server::fourlw::recognize(&input[..4]) {
                    let answered =
                        crate::server::fourlw::answer(ctx, conn, word, input, stream).await;
                    // A four-letter word is the whole conversation: close after it.
                    conn.st.borrow_mut().closing = true;
                    return answered.map(|()| Processed::Drained);
                }
            }
        }
        if let Handshake::Pending { .. } = handshake {
            return Ok(Processed::Drained);
        }
        {
            let st = ctx.state.borrow();
            let cs = conn.st.borrow();
            if cs.closing {
                return Ok(Processed::Drained);
            }
            if handshake == Handshake::Done
                && input.len() >= 4
                && (cs.out.len() >= OUT_FLUSH_BYTES || ctx.must_throttle(&st, &cs))
            {
                return Ok(Processed::HeldBack);
            }
        }
        let frame = match split_frame(input, ctx.settings.max_frame_bytes) {
            FrameStatus::Frame(f) => f,
            FrameStatus::Incomplete { needed_bytes } => {
                if needed_bytes > input.capacity() - input.len() {
                    input.reserve(needed_bytes);
                }
                return Ok(Processed::Drained);
            }
            FrameStatus::BadLength { len } => {
                return Err(format!(
                    "Len error {len}: frame length outside 0..={} (jute.maxbuffer)",
                    ctx.settings.max_frame_bytes
                ))
            }
        };
        match handshake {
            Handshake::Awaiting => handle_connect(ctx, conn, frame)?,
            _ => handle_request(ctx, conn, frame)?,
        }
    }
}

fn handle_connect(ctx: &Rc<ShardCtx>, conn: &Rc<Conn>, frame: bytes::Bytes) -> Result<(), String> {
    let req = ConnectRequest::decode_all(frame).map_err(|e| format!("bad handshake: {e}"))?;
    // Compared with what is committed, not what this replica applied yet: reads wait for
    // the replica (see ShardCtx::committed_zxid), a zxid from the future is refused.
    let last_zxid = ctx
        .committed_zxid()
        .max(ctx.state.borrow().tree.last_zxid());
    if req.last_zxid_seen > last_zxid {
        return Err(format!(
            "client has seen zxid 0x{:x} but this server is at 0x{last_zxid:x}; client must try another server",
            req.last_zxid_seen
        ));
    }
    let s = &ctx.settings;
    let timeout_ms = req
        .timeout_ms
        .clamp(s.min_session_timeout_ms, s.max_session_timeout_ms);
    {
        let mut cs = conn.st.borrow_mut();
        cs.timeout_ms = timeout_ms;
        cs.handshake = Handshake::Pending {
            read_only: req.read_only,
        };
        cs.received += 1;
    }
    ctx.state.borrow_mut().counters.packets_received += 1;
    let origin = ctx.origin(conn.id);
    let can_be_read_only = req.read_only == Some(true);
    let input = if req.session_id == 0 {
        crate::zab::Input::CreateSession {
            origin,
            timeout_ms,
            can_be_read_only,
        }
    } else {
        crate::zab::Input::Revalidate {
            origin,
            session_id: req.session_id,
            passwd: req.passwd,
            timeout_ms,
            can_be_read_only,
        }
    };
    ctx.send_to_zab(crate::server::msg::ToZab::Input(input));
    Ok(())
}

fn handle_request(ctx: &Rc<ShardCtx>, conn: &Rc<Conn>, frame: bytes::Bytes) -> Result<(), String> {
    let received_ms = now_ms();
    let mut r = Reader::new(frame.clone());
    let hdr = RequestHeader::decode(&mut r).map_err(|e| format!("bad request header: {e}"))?;
    let body = frame.slice(r.offset()..);
    {
        let mut cs = conn.st.borrow_mut();
        cs.received += 1;
        cs.last_op = short_op_name(hdr.op);
        if hdr.xid >= 0 {
            cs.last_cxid = hdr.xid;
        }
    }
    let mut st = ctx.state.borrow_mut();
    let st = &mut *st;
    st.counters.packets_received += 1;
    let zxid = st.tree.last_zxid();
    let req = match Request::decode(hdr.op, body) {
        Ok(Some(req)) => req,
        Ok(None) => {
            tracing::info!(op = hdr.op, peer = %conn.peer, "unknown op code; closing after the reply");
            let mut cs = conn.st.borrow_mut();
            reply::header_only(&mut cs.out, hdr.xid, zxid, ErrorCode::Unimplemented);
            // ZooKeeper answers Unimplemented and then drops the connection.
            cs.closing = true;
            drop(cs);
            conn.wake.notify();
            return Ok(());
        }
        Err(e) => {
            tracing::info!(op = hdr.op, error = %e, "undecodable request");
            let mut cs = conn.st.borrow_mut();
            reply::header_only(&mut cs.out, hdr.xid, zxid, ErrorCode::MarshallingError);
            drop(cs);
            conn.wake.notify();
            return Ok(());
        }
    };
    match req {
        Request::Auth(a) => {
            let mut cs = conn.st.borrow_mut();
            st.touched.insert(cs.session_id);
            let authenticated =
                authenticate(&a.scheme, &a.auth, ctx.settings.super_digest.as_deref()).map(
                    |new_ids| {
                        let mut ids: Vec<Id> = cs.auth_ids.to_vec();
                        for id in new_ids {
                            if !ids.contains(&id) {
                                ids.push(id);
                            }
                        }
                        ids
                    },
                );
            // A replicated server forwards a session's ids with each of its writes, and
            // the quorum wire carries at most AUTH_IDS_MAX of them: more fail as a wrong
            // password would, on every server alike.
            let authenticated = match authenticated {
                Some(ids) if ids.len() > crate::quorum::wire::AUTH_IDS_MAX => {
                    tracing::info!(
                        peer = %conn.peer,
                        ids_max = crate::quorum::wire::AUTH_IDS_MAX,
                        "addauth beyond the ids a connection may hold"
                    );
                    None
                }
                other => other,
            };
            match authenticated {
                Some(ids) => {
                    cs.auth_ids = Arc::from(ids);
                    // ZooKeeper echoes the request's xid (the Java client uses -4; others do not).
                    reply::header_only(&mut cs.out, hdr.xid, 0, ErrorCode::Ok);
                }
                None => {
                    tracing::info!(scheme = %a.scheme, peer = %conn.peer, "authentication failed");
                    reply::header_only(&mut cs.out, hdr.xid, 0, ErrorCode::AuthFailed);
                    cs.closing = true;
                }
            }
        }
        Request::Sasl(_) => {
            // SASL is not supported yet: a clear AuthFailed, as a server without a SASL
            // provider answers.
            let mut cs = conn.st.borrow_mut();
            reply::header_only(&mut cs.out, hdr.xid, zxid, ErrorCode::AuthFailed);
        }
        req => ctx.dispatch(st, conn, hdr.xid, req, received_ms),
    }
    conn.wake.notify();
    Ok(())
}

/// The ids an auth packet adds, or None for AuthFailed.
fn authenticate(scheme: &str, auth: &[u8], super_digest: Option<&str>) -> Option<Vec<Id>> {
    match scheme {
        "digest" => {
            // ZooKeeper accepts any text; without a colon the whole text is the user.
            let text = std::str::from_utf8(auth).ok()?;
            let id = crate::proto::acl::digest_id(text);
            let mut ids = vec![Id::new("digest", &id)];
            if super_digest == Some(id.as_str()) {
                ids.push(Id::new("super", ""));
            }
            Some(ids)
        }
        // ZooKeeper's ip provider accepts any bytes and adds the peer's own address,
        // which every connection already holds.
        "ip" => Some(Vec::new()),
        _ => None,
    }
}

/// `lop=` names as ZooKeeper's `cons` prints them.
fn short_op_name(opcode: i32) -> &'static str {
    match opcode {
        op::PING => "PING",
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => "CREA",
        op::DELETE => "DELE",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_DATA => "SETD",
        op::GET_ACL => "GETA",
        op::SET_ACL => "SETA",
        op::GET_CHILDREN => "GETC",
        op::GET_CHILDREN2 => "GETC",
        op::SYNC => "SYNC",
        op::MULTI => "MULT",
        op::CLOSE_SESSION => "CLOS",
        op::SET_WATCHES | op::SET_WATCHES2 => "SETW",
        op::AUTH => "AUTH",
        _ => op::name(opcode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_window_follows_what_arrives() {
        let min = READ_WINDOW_MIN_BYTES;
        assert_eq!(
            next_read_window(min, min),
            2 * min,
            "a full read doubles it"
        );
        assert_eq!(
            next_read_window(READ_CHUNK_BYTES, READ_CHUNK_BYTES),
            READ_CHUNK_BYTES
        );
        assert_eq!(
            next_read_window(32 * 1024, 9 * 1024),
            32 * 1024,
            "a quarter or more keeps it"
        );
        assert_eq!(
            next_read_window(32 * 1024, 7 * 1024),
            16 * 1024,
            "less halves it"
        );
        assert_eq!(
            next_read_window(min, 10),
            min,
            "never below the first window"
        );
        assert_eq!(next_read_window(min, 0), min);
    }
}
