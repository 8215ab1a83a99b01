//! The connection thread: connect, handshake, read, reconnect.
//!
//! One thread per client runs [`connection_loop`]. Each round picks the next host,
//! opens a TCP connection, sends the ConnectRequest (with the session id, password and
//! last zxid seen once a session exists, and the trailing readOnly byte), and on a good
//! ConnectResponse starts a writer thread, re-sends auth packets and SetWatches, flushes
//! the requests queued while disconnected and then reads frames until the connection
//! fails. The writer sends a ping whenever nothing was sent for a third of the
//! negotiated timeout; the reader gives the server two thirds of it (the Java client's
//! readTimeout) before it declares the connection lost.
//!
//! Ordering invariant: a request's frame goes to the writer channel and its entry to
//! the pending queue under the same lock, so pending order is wire order and replies
//! (which the server sends in order) match the front of the queue. A reply with another
//! xid is a protocol violation and ends the connection (Java: "Xid out of order").
//!
//! Failure handling mirrors `ClientCnxn.cleanup`: when a connection ends or an attempt
//! fails, every sent and every queued request fails with ConnectionLoss (AuthFailed or
//! SessionExpired once the client is in that state), and a Disconnected event follows
//! if the client had been connected. A ConnectResponse with timeout 0 means the session
//! expired: the client becomes Closed, reports Expired and stops.

use super::hosts::{random_u64, resolve, HostList, HostPort};
use super::watches::WatchRegistration;
use super::{Shared, States, WatchedEvent};
use crate::jute::frame::{begin_frame, end_frame, split_frame, FrameStatus};
use crate::jute::{Reader, Record};
use crate::proto::{
    op, state, xid, ConnectRequest, ConnectResponse, ErrorCode, ReplyHeader, RequestHeader,
    WatcherEvent,
};
use bytes::{Bytes, BytesMut};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The Java client pings at least this often even with a long session timeout.
const PING_INTERVAL_MS_MAX: u64 = 10_000;
/// Reconnects wait a random time below this, so that many clients of a failed server
/// do not all arrive at the next one at once (Java: `nextInt(1000)`). Not after a host
/// that refused the TCP connection: see [`jitter_before_next`].
const RECONNECT_JITTER_MS_MAX: u64 = 1000;
/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// A reply as the caller sees it: the header's zxid and error, and the body (empty when
/// the error is not 0).
#[derive(Debug)]
pub(crate) struct Reply {
    pub err: i32,
    pub body: Bytes,
}

pub(crate) type ReplySender = mpsc::SyncSender<Result<Reply, ErrorCode>>;

/// A request that was written, waiting for its reply.
pub(crate) struct Pending {
    pub xid: i32,
    pub reply: Option<ReplySender>,
    pub watch: Option<WatchRegistration>,
}

/// A request queued while no connection is up.
pub(crate) struct Outgoing {
    pub frame: Bytes,
    pub pending: Pending,
}

/// Encodes a request frame: length, RequestHeader, body.
pub(crate) fn request_frame(xid: i32, op: i32, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(12 + body.len());
    let at = begin_frame(&mut out);
    RequestHeader { xid, op }.encode(&mut out);
    out.extend_from_slice(body);
    end_frame(&mut out, at);
    out.freeze()
}

/// Why a connection ended.
#[derive(Debug)]
enum ConnectionEnd {
    Io(std::io::Error),
    Protocol(String),
    AuthFailed,
}

impl std::fmt::Display for ConnectionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectionEnd::Io(e) => write!(f, "{e}"),
            ConnectionEnd::Protocol(why) => f.write_str(why),
            ConnectionEnd::AuthFailed => f.write_str("authentication failed"),
        }
    }
}

impl From<std::io::Error> for ConnectionEnd {
    fn from(e: std::io::Error) -> ConnectionEnd {
        ConnectionEnd::Io(e)
    }
}

/// Whether the attempt after one that ended with `end` first waits a random pause.
/// Java's client pauses before every attempt but the first. A host where nothing listens
/// (a server that died: the kernel refuses the connection) costs that server nothing, so the
/// next host is tried at once; otherwise a client listing a dead server first would wait
/// up to a second for nothing after each failover. The pause stays wherever a server was
/// reached (it may be overloaded, or electing), and a whole round of refusals still pauses
/// in [`HostList::next_host`].
fn jitter_before_next(end: &ConnectionEnd) -> bool {
    !matches!(end, ConnectionEnd::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

pub(crate) fn connection_loop(shared: Arc<Shared>, mut hosts: HostList) {
    let mut jitter = false;
    loop {
        if shared.stopping() {
            return;
        }
        if jitter {
            shared.sleep_unless_closing(Duration::from_millis(
                random_u64() % RECONNECT_JITTER_MS_MAX,
            ));
        }
        jitter = true;
        let (host, pause) = hosts.next_host();
        if !pause.is_zero() {
            shared.sleep_unless_closing(pause);
        }
        if shared.stopping() {
            return;
        }
        let connect_timeout = shared.connect_timeout(hosts.len());
        let (stream, response) = match handshake(&shared, &host, connect_timeout) {
            Ok(ok) => ok,
            Err(end) => {
                tracing::debug!(server = %host, reason = %end, "connection attempt failed");
                jitter = jitter_before_next(&end);
                shared.clean_and_notify();
                continue;
            }
        };
        if response.timeout_ms <= 0 {
            shared.expire();
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        hosts.on_connected();
        let end = serve(&shared, stream, &response, &host);
        tracing::debug!(server = %host, reason = %end, "connection ended");
        if let ConnectionEnd::AuthFailed = end {
            shared.clean_and_notify();
            return;
        }
        shared.clean_and_notify();
    }
}

fn handshake(
    shared: &Shared,
    host: &HostPort,
    timeout: Duration,
) -> Result<(TcpStream, ConnectResponse), ConnectionEnd> {
    let started = Instant::now();
    let addr = resolve(host)?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    // Let close() and disconnect() cut a handshake short.
    if !shared.register_socket(&stream)? {
        let _ = stream.shutdown(Shutdown::Both);
        return Err(ConnectionEnd::Protocol(
            "client closed while connecting".into(),
        ));
    }
    let request = shared.connect_request();
    let mut out = BytesMut::new();
    let at = begin_frame(&mut out);
    request.encode(&mut out);
    end_frame(&mut out, at);
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(&out)?;
    let remaining = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(remaining))?;
    let mut buf = BytesMut::new();
    let frame = read_frame(&mut stream, &mut buf, shared.reply_bytes_max)?;
    let response = ConnectResponse::decode_all(frame)
        .map_err(|e| ConnectionEnd::Protocol(format!("bad ConnectResponse: {e}")))?;
    Ok((stream, response))
}

fn read_frame(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    frame_bytes_max: usize,
) -> Result<Bytes, ConnectionEnd> {
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        match split_frame(buf, frame_bytes_max) {
            FrameStatus::Frame(frame) => return Ok(frame),
            FrameStatus::BadLength { len } => {
                return Err(ConnectionEnd::Protocol(format!(
                    "Packet len {len} is out of range!"
                )))
            }
            FrameStatus::Incomplete { .. } => {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(ConnectionEnd::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    )));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Runs one established connection until it ends.
fn serve(
    shared: &Arc<Shared>,
    mut stream: TcpStream,
    response: &ConnectResponse,
    host: &HostPort,
) -> ConnectionEnd {
    let negotiated_ms = response.timeout_ms.max(1) as u64;
    let read_timeout = Duration::from_millis((negotiated_ms * 2 / 3).max(1));
    let ping_interval = Duration::from_millis((negotiated_ms / 3).clamp(1, PING_INTERVAL_MS_MAX));
    let writer_stream = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => return ConnectionEnd::Io(e),
    };
    let shutdown_handle = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => return ConnectionEnd::Io(e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>();
    let writer = std::thread::Builder::new()
        .name("corral-client-writer".into())
        .spawn(move || writer_loop(writer_stream, rx, ping_interval));
    let writer = match writer {
        Ok(w) => w,
        Err(e) => return ConnectionEnd::Io(e),
    };
    let Some(event) = shared.on_connected(response, tx, shutdown_handle, host) else {
        // The writer's channel went with on_connected, so the writer ends by itself.
        let _ = stream.shutdown(Shutdown::Both);
        let _ = writer.join();
        return ConnectionEnd::Protocol("client closed while connecting".into());
    };
    shared.deliver(vec![event]);
    let end = match stream.set_read_timeout(Some(read_timeout)) {
        Ok(()) => read_loop(shared, &mut stream),
        Err(e) => ConnectionEnd::Io(e),
    };
    shared.detach_connection();
    let _ = stream.shutdown(Shutdown::Both);
    let _ = writer.join();
    end
}

fn writer_loop(mut stream: TcpStream, rx: mpsc::Receiver<Bytes>, ping_interval: Duration) {
    let ping = request_frame(xid::PING, op::PING, &[]);
    let mut last_send = Instant::now();
    loop {
        let wait = ping_interval.saturating_sub(last_send.elapsed());
        let frame = match rx.recv_timeout(wait) {
            Ok(frame) => frame,
            Err(mpsc::RecvTimeoutError::Timeout) => ping.clone(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if stream.write_all(&frame).is_err() {
            // The reader notices the shut socket and reports the connection lost.
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        last_send = Instant::now();
    }
}

fn read_loop(shared: &Arc<Shared>, stream: &mut TcpStream) -> ConnectionEnd {
    let mut buf = BytesMut::new();
    loop {
        let frame = match read_frame(stream, &mut buf, shared.reply_bytes_max) {
            Ok(f) => f,
            Err(e) => return e,
        };
        if let Err(end) = handle_frame(shared, frame) {
            return end;
        }
    }
}

fn handle_frame(shared: &Arc<Shared>, frame: Bytes) -> Result<(), ConnectionEnd> {
    let mut r = Reader::new(frame.clone());
    let header = ReplyHeader::decode(&mut r)
        .map_err(|e| ConnectionEnd::Protocol(format!("bad reply header: {e}")))?;
    let body = frame.slice(r.offset()..);
    match header.xid {
        xid::PING => Ok(()),
        xid::AUTH => {
            if header.err == ErrorCode::AuthFailed.code() {
                shared.auth_failed();
                return Err(ConnectionEnd::AuthFailed);
            }
            Ok(())
        }
        xid::NOTIFICATION => {
            let event = WatcherEvent::decode_all(body)
                .map_err(|e| ConnectionEnd::Protocol(format!("bad watch event: {e}")))?;
            let path = shared.client_path(event.path.as_str());
            shared.consume_watches(event.event_type, &path);
            shared.deliver(vec![WatchedEvent {
                event_type: event.event_type,
                state: event.state,
                path: Some(path),
            }]);
            Ok(())
        }
        reply_xid => {
            let pending = shared.take_pending(reply_xid, header.zxid, header.err)?;
            if let Some(tx) = pending.reply {
                let body = if header.err == 0 { body } else { Bytes::new() };
                // A caller that gave up (dropped its receiver) is not our problem.
                let _ = tx.send(Ok(Reply {
                    err: header.err,
                    body,
                }));
            }
            Ok(())
        }
    }
}

impl Shared {
    /// The next request's pending entry, matched against a reply; a mismatch ends the
    /// connection.
    fn take_pending(&self, reply_xid: i32, zxid: i64, err: i32) -> Result<Pending, ConnectionEnd> {
        let mut s = self.lock();
        let Some(front) = s.pending.pop_front() else {
            return Err(ConnectionEnd::Protocol(format!(
                "Nothing in the queue, but got {reply_xid}"
            )));
        };
        if front.xid != reply_xid {
            let expected = front.xid;
            if let Some(tx) = front.reply {
                let _ = tx.send(Err(ErrorCode::ConnectionLoss));
            }
            return Err(ConnectionEnd::Protocol(format!(
                "Xid out of order. Got Xid {reply_xid} with err {err} expected Xid {expected}"
            )));
        }
        if zxid > 0 {
            s.last_zxid = zxid;
        }
        let mut front = front;
        if let Some(reg) = front.watch.take() {
            s.watches.register(reg, err);
        }
        Ok(front)
    }

    /// Keeps a handle on a new socket so that close() can shut it; false when the
    /// client is already stopping.
    fn register_socket(&self, stream: &TcpStream) -> std::io::Result<bool> {
        let handle = stream.try_clone()?;
        let mut s = self.lock();
        if s.stopping() {
            return Ok(false);
        }
        s.socket = Some(handle);
        Ok(true)
    }

    fn consume_watches(&self, event_type: i32, path: &str) {
        self.lock().watches.on_event(event_type, path);
    }

    fn connect_request(&self) -> ConnectRequest {
        let s = self.lock();
        let (session_id, passwd) = if s.seen_rw_server {
            (s.session_id, s.passwd.clone())
        } else {
            (0, Bytes::from_static(&[0; 16]))
        };
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: s.last_zxid,
            timeout_ms: self.session_timeout_ms,
            session_id,
            passwd,
            read_only: Some(self.read_only),
        }
    }

    /// Java's connectTimeout: the session timeout (negotiated once known) split over
    /// the hosts.
    fn connect_timeout(&self, host_count: usize) -> Duration {
        let s = self.lock();
        let timeout_ms = if s.negotiated_timeout_ms > 0 {
            s.negotiated_timeout_ms
        } else {
            self.session_timeout_ms
        };
        let per_host_ms = (timeout_ms.max(1) as u64) / (host_count.max(1) as u64);
        Duration::from_millis(per_host_ms.max(1))
    }

    /// Installs a new connection: session facts, the writer, and everything that must
    /// go out before new requests (auth, SetWatches, queued requests).
    fn on_connected(
        &self,
        response: &ConnectResponse,
        writer: mpsc::Sender<Bytes>,
        socket: TcpStream,
        host: &HostPort,
    ) -> Option<WatchedEvent> {
        let read_only = response.read_only == Some(true);
        let mut s = self.lock();
        if s.stopping() {
            return None;
        }
        s.negotiated_timeout_ms = response.timeout_ms;
        s.session_id = response.session_id;
        s.passwd = response.passwd.clone();
        s.seen_rw_server |= !read_only;
        s.server = Some(host.to_string());
        s.conn_state = if read_only {
            States::ConnectedReadOnly
        } else {
            States::Connected
        };
        for (scheme, auth) in s.auth.clone() {
            let mut body = BytesMut::new();
            crate::proto::Request::Auth(crate::proto::request::AuthPacket {
                auth_type: 0,
                scheme: scheme.as_str().into(),
                auth,
            })
            .encode(&mut body);
            let _ = writer.send(request_frame(xid::AUTH, op::AUTH, &body));
        }
        let chroot = self.chroot.clone();
        let batches = s.watches.set_watches_batches(s.last_zxid, |p| {
            super::path::prepend_chroot(chroot.as_deref(), p)
        });
        for (set_op, watches) in batches {
            let mut body = BytesMut::new();
            crate::proto::Request::SetWatches {
                op: set_op,
                watches,
            }
            .encode(&mut body);
            let _ = writer.send(request_frame(xid::SET_WATCHES, set_op, &body));
            s.pending.push_back(Pending {
                xid: xid::SET_WATCHES,
                reply: None,
                watch: None,
            });
        }
        while let Some(out) = s.outgoing.pop_front() {
            let _ = writer.send(out.frame);
            s.pending.push_back(out.pending);
        }
        s.writer = Some(writer);
        s.socket = Some(socket);
        self.changed.notify_all();
        Some(WatchedEvent {
            event_type: crate::proto::event::NONE,
            state: if read_only {
                state::CONNECTED_READ_ONLY
            } else {
                state::SYNC_CONNECTED
            },
            path: None,
        })
    }

    /// Drops the writer and the shutdown handle of a connection that ended.
    fn detach_connection(&self) {
        let mut s = self.lock();
        s.writer = None;
        s.socket = None;
    }

    /// ClientCnxn.cleanAndNotifyState: fail what was sent or queued; report Disconnected
    /// if the client had been connected and is still alive.
    fn clean_and_notify(&self) {
        let mut events = Vec::new();
        {
            let mut s = self.lock();
            let was_connected = s.conn_state.is_connected();
            if s.conn_state.is_alive() && !s.closing {
                s.conn_state = States::Connecting;
                if was_connected {
                    events.push(WatchedEvent::state_change(state::DISCONNECTED));
                }
            }
            s.fail_all();
            self.changed.notify_all();
        }
        self.deliver(events);
    }

    /// The server refused the session: Closed, Expired, and no more events.
    fn expire(&self) {
        {
            let mut s = self.lock();
            s.conn_state = States::Closed;
            s.fail_all();
            self.changed.notify_all();
        }
        self.deliver(vec![WatchedEvent::state_change(state::EXPIRED)]);
        self.lock().events_dead = true;
    }

    /// The server refused an auth packet: AuthFailed, and no more events (Java queues
    /// its event thread's death right after the AuthFailed event).
    fn auth_failed(&self) {
        {
            let mut s = self.lock();
            s.conn_state = States::AuthFailed;
            self.changed.notify_all();
        }
        self.deliver(vec![WatchedEvent::state_change(state::AUTH_FAILED)]);
        self.lock().events_dead = true;
    }

    /// The connection thread stops once the client is dead, or closing with no
    /// closeSession left to deliver.
    fn stopping(&self) -> bool {
        self.lock().stopping()
    }

    fn sleep_unless_closing(&self, pause: Duration) {
        let deadline = Instant::now() + pause;
        let mut s = self.lock();
        while !s.stopping() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            s = match self.changed.wait_timeout(s, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_a_refused_connection_skips_the_reconnect_pause() {
        assert!(!jitter_before_next(&ConnectionEnd::Io(Error::from(
            ErrorKind::ConnectionRefused
        ))));
        for end in [
            ConnectionEnd::Io(Error::from(ErrorKind::ConnectionReset)),
            ConnectionEnd::Io(Error::from(ErrorKind::TimedOut)),
            ConnectionEnd::Io(Error::from(ErrorKind::UnexpectedEof)),
            ConnectionEnd::Protocol("bad ConnectResponse".into()),
            ConnectionEnd::AuthFailed,
        ] {
            assert!(jitter_before_next(&end), "{end}");
        }
    }
}
