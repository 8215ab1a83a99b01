//! One raw, pipelined ZooKeeper session over a blocking `std::net::TcpStream`.
//!
//! Unlike [`crate::client::Client`], nothing here waits for a reply per call: requests are
//! encoded with the jute writers straight into an output buffer, flushed with one write,
//! and replies are split off the input buffer as whole frames (the same
//! [`split_frame`] the server uses) and handed to the caller in arrival order. ZooKeeper
//! answers a session's requests in order, so the caller matches replies to its own queue
//! of in-flight xids.
//!
//! Bounds: a reply frame above [`REPLY_BYTES_MAX`] ends the session with an error (never
//! an allocation of that size); every read waits at most [`READ_POLL`] (or less, when the
//! caller asks: the open loop wakes at its next send time), so callers can check their
//! deadlines between reads.

use crate::jute::frame::{begin_frame, end_frame, split_frame, FrameStatus};
use crate::jute::{Reader, Record, Writer};
use crate::proto::{
    op, Acl, ConnectRequest, ConnectResponse, MultiHeader, ReplyHeader, RequestHeader,
};
use bytes::{BufMut, Bytes, BytesMut};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Largest reply frame accepted. Replies here are data of at most `jute.maxbuffer` plus
/// headers; the slack is for servers configured with a larger `jute.maxbuffer`.
pub const REPLY_BYTES_MAX: usize = 16 << 20;

/// Longest single blocking read; deadlines are checked at least this often.
pub const READ_POLL: Duration = Duration::from_millis(100);

/// Bytes asked of the kernel per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Session timeout asked for. Traffic keeps the session alive during a run; the timeout
/// only matters if the bench dies without closing it.
const SESSION_TIMEOUT_MS: i32 = 30_000;

/// What one [`Session::read_replies`] call saw.
pub enum ReadOutcome {
    /// This many reply frames were handed to the callback.
    Replies(usize),
    /// Nothing arrived within [`READ_POLL`].
    Idle,
}

pub struct Session {
    stream: TcpStream,
    input: BytesMut,
    scratch: Vec<u8>,
    out: BytesMut,
    next_xid: i32,
    pub session_id: i64,
    pub peer: SocketAddr,
}

/// CreateMode flags as the create request carries them.
pub mod create_flags {
    pub const PERSISTENT: i32 = 0;
    pub const EPHEMERAL: i32 = 1;
    pub const PERSISTENT_SEQUENTIAL: i32 = 2;
}

impl Session {
    /// Connects and completes the handshake for a new session.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> anyhow::Result<Session> {
        use anyhow::Context;
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_POLL))?;
        let mut s = Session {
            stream,
            input: BytesMut::with_capacity(READ_CHUNK_BYTES),
            scratch: vec![0; READ_CHUNK_BYTES],
            out: BytesMut::with_capacity(64 * 1024),
            next_xid: 1,
            session_id: 0,
            peer: addr,
        };
        let at = begin_frame(&mut s.out);
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: SESSION_TIMEOUT_MS,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        }
        .encode(&mut s.out);
        end_frame(&mut s.out, at);
        s.flush()?;
        let deadline = Instant::now() + timeout;
        let frame = loop {
            if let Some(f) = s.next_frame()? {
                break f;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{addr}: no handshake answer within {timeout:?}"
            );
            s.fill()?;
        };
        let resp = ConnectResponse::decode_all(frame).context("bad handshake answer")?;
        anyhow::ensure!(
            resp.timeout_ms > 0,
            "{addr} refused the session (negotiated timeout {})",
            resp.timeout_ms
        );
        s.session_id = resp.session_id;
        Ok(s)
    }

    /// Starts a request frame; the caller writes the body into [`Session::out`] and then
    /// calls [`Session::end_request`]. Returns the xid.
    fn begin_request(&mut self, opcode: i32) -> (i32, usize) {
        let xid = self.next_xid;
        // Positive xids only: -1, -2, -4, -8 are reserved for notifications, pings, auth
        // and setWatches.
        self.next_xid = if self.next_xid == i32::MAX {
            1
        } else {
            self.next_xid + 1
        };
        let at = begin_frame(&mut self.out);
        RequestHeader { xid, op: opcode }.encode(&mut self.out);
        (xid, at)
    }

    pub fn get_data(&mut self, path: &str) -> i32 {
        self.get_data_watch(path, false)
    }

    /// getData, leaving a data watch on `path` when `watch`.
    pub fn get_data_watch(&mut self, path: &str, watch: bool) -> i32 {
        let (xid, at) = self.begin_request(op::GET_DATA);
        self.out.put_string(path);
        self.out.put_bool(watch);
        end_frame(&mut self.out, at);
        xid
    }

    pub fn exists(&mut self, path: &str) -> i32 {
        let (xid, at) = self.begin_request(op::EXISTS);
        self.out.put_string(path);
        self.out.put_bool(false);
        end_frame(&mut self.out, at);
        xid
    }

    /// One multi of setData (version -1) with `data` on each of `paths`.
    pub fn multi_set_data<'a>(
        &mut self,
        paths: impl IntoIterator<Item = &'a str>,
        data: &[u8],
    ) -> i32 {
        let (xid, at) = self.begin_request(op::MULTI);
        for p in paths {
            MultiHeader {
                op: op::SET_DATA,
                done: false,
                err: -1,
            }
            .encode(&mut self.out);
            self.out.put_string(p);
            self.out.put_buffer(data);
            self.out.put_i32(-1);
        }
        MultiHeader::END.encode(&mut self.out);
        end_frame(&mut self.out, at);
        xid
    }

    /// A ping (xid -2); its answer is skipped by [`Session::read_replies`].
    pub fn ping(&mut self) {
        let at = begin_frame(&mut self.out);
        RequestHeader {
            xid: crate::proto::xid::PING,
            op: op::PING,
        }
        .encode(&mut self.out);
        end_frame(&mut self.out, at);
    }

    pub fn set_data(&mut self, path: &str, data: &[u8]) -> i32 {
        let (xid, at) = self.begin_request(op::SET_DATA);
        self.out.put_string(path);
        self.out.put_buffer(data);
        self.out.put_i32(-1);
        end_frame(&mut self.out, at);
        xid
    }

    /// A persistent node.
    pub fn create(&mut self, path: &str, data: &[u8], acl: &[Acl]) -> i32 {
        self.create_mode(path, data, acl, create_flags::PERSISTENT)
    }

    /// A node of the given [`create_flags`] mode.
    pub fn create_mode(&mut self, path: &str, data: &[u8], acl: &[Acl], flags: i32) -> i32 {
        let (xid, at) = self.begin_request(op::CREATE);
        self.out.put_string(path);
        self.out.put_buffer(data);
        self.out.put_vec(acl);
        self.out.put_i32(flags);
        end_frame(&mut self.out, at);
        xid
    }

    pub fn delete(&mut self, path: &str) -> i32 {
        let (xid, at) = self.begin_request(op::DELETE);
        self.out.put_string(path);
        self.out.put_i32(-1);
        end_frame(&mut self.out, at);
        xid
    }

    pub fn get_children(&mut self, path: &str) -> i32 {
        let (xid, at) = self.begin_request(op::GET_CHILDREN);
        self.out.put_string(path);
        self.out.put_bool(false);
        end_frame(&mut self.out, at);
        xid
    }

    pub fn close_request(&mut self) -> i32 {
        let (xid, at) = self.begin_request(op::CLOSE_SESSION);
        end_frame(&mut self.out, at);
        xid
    }

    /// Bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.out.len()
    }

    /// Writes every queued request.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    /// One complete frame from the input buffer, if there is one.
    fn next_frame(&mut self) -> anyhow::Result<Option<Bytes>> {
        match split_frame(&mut self.input, REPLY_BYTES_MAX) {
            FrameStatus::Frame(f) => Ok(Some(f)),
            FrameStatus::Incomplete { needed_bytes } => {
                self.input.reserve(needed_bytes);
                Ok(None)
            }
            FrameStatus::BadLength { len } => {
                anyhow::bail!("{}: reply frame length {len} out of bounds", self.peer)
            }
        }
    }

    /// One read from the socket into the input buffer; `Ok(false)` when it timed out.
    /// Reads land in a zeroed scratch buffer and are appended from there: one copy of
    /// what arrived instead of zeroing a whole window of the input buffer per read.
    fn fill(&mut self) -> anyhow::Result<bool> {
        match self.stream.read(&mut self.scratch) {
            Ok(0) => anyhow::bail!("{}: server closed the connection", self.peer),
            Ok(n) => {
                self.input.extend_from_slice(&self.scratch[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(anyhow::Error::new(e).context(format!("{}: read failed", self.peer))),
        }
    }

    /// Waits (at most [`READ_POLL`]) for input, then hands every complete reply to
    /// `on_reply` as (header, body). Notifications (xid -1) and ping answers (xid -2) are
    /// skipped: the request loops set no watches (the watch fan-out's watchers read with
    /// [`Session::read_ready`]).
    pub fn read_replies(
        &mut self,
        on_reply: impl FnMut(ReplyHeader, Bytes),
    ) -> anyhow::Result<ReadOutcome> {
        self.read_replies_within(READ_POLL, on_reply)
    }

    /// [`Session::read_replies`], waiting at most `wait` (clamped to [`READ_POLL`]).
    ///
    /// A wait shorter than [`READ_POLL`] is kept with ppoll(2), whose timer has
    /// nanosecond resolution: a socket's receive timeout counts in scheduler ticks (up to
    /// 4 ms), far coarser than an open loop's gap between sends.
    pub fn read_replies_within(
        &mut self,
        wait: Duration,
        mut on_reply: impl FnMut(ReplyHeader, Bytes),
    ) -> anyhow::Result<ReadOutcome> {
        let mut count = 0;
        let short_wait = wait < READ_POLL;
        // Frames left over from an earlier read come first, without a syscall.
        loop {
            while let Some(frame) = self.next_frame()? {
                let mut r = Reader::new(frame.clone());
                let hdr = ReplyHeader::decode(&mut r)
                    .map_err(|e| anyhow::anyhow!("{}: undecodable reply header: {e}", self.peer))?;
                if hdr.xid < 0 {
                    continue;
                }
                on_reply(hdr, frame.slice(r.offset()..));
                count += 1;
            }
            if count > 0 {
                return Ok(ReadOutcome::Replies(count));
            }
            if short_wait && !self.wait_readable(wait)? {
                return Ok(ReadOutcome::Idle);
            }
            if !self.fill()? {
                return Ok(ReadOutcome::Idle);
            }
        }
    }

    /// Waits at most `wait` for the socket to have input (or to be closed, which the
    /// read after it reports); false when the time ran out.
    fn wait_readable(&self, wait: Duration) -> anyhow::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one live pollfd, a live timespec and a null signal mask (ppoll keeps the
        // thread's mask); ppoll writes only `pfd.revents`.
        let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(anyhow::Error::new(e).context(format!("{}: poll failed", self.peer)));
        }
        Ok(n > 0)
    }

    /// For a caller that knows input is waiting (poll said so): one read, then every
    /// complete frame, notifications (xid -1) and ping answers (xid -2) included, goes to
    /// `on_frame`. An error when the connection is closed or a frame is malformed.
    pub fn read_ready(
        &mut self,
        mut on_frame: impl FnMut(ReplyHeader, Bytes),
    ) -> anyhow::Result<()> {
        self.fill()?;
        while let Some(frame) = self.next_frame()? {
            let mut r = Reader::new(frame.clone());
            let hdr = ReplyHeader::decode(&mut r)
                .map_err(|e| anyhow::anyhow!("{}: undecodable reply header: {e}", self.peer))?;
            on_frame(hdr, frame.slice(r.offset()..));
        }
        Ok(())
    }

    /// The socket, for poll(2).
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Sends closeSession and waits up to `timeout` for its answer; errors are ignored,
    /// the server expires the session anyway.
    pub fn close(mut self, timeout: Duration) {
        let xid = self.close_request();
        if self.flush().is_err() {
            return;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let mut done = false;
            let r = self.read_replies(|h, _| done |= h.xid == xid);
            if r.is_err() {
                return;
            }
            if done {
                // The server closes the connection after this answer; waiting for that
                // (one poll at most) spares it a "client closed the socket" warning.
                while let Ok(true) = self.fill() {}
                return;
            }
        }
    }
}
