//! A blocking ZooKeeper client: Corral's own, used by `corral cli` and tests.
//!
//! Owns: one session with an ensemble, over `std::net::TcpStream`. A connection thread
//! connects, handshakes, reads replies and notifications, and reconnects to the next
//! host with the same session (see `conn`); a writer thread per connection sends
//! requests and pings. Calls block the calling thread until their reply arrives;
//! requests from several threads are pipelined and matched to replies in order.
//!
//! Matches the Java client (`ZooKeeper`, `ClientCnxn`, `ZKWatchManager`,
//! `ConnectStringParser`, `StaticHostProvider`) where a caller could tell the
//! difference: op codes chosen per create mode (1 plain, 15 with Stat, 19 container,
//! 21 TTL), client-side path and ACL checks with Java's messages, chroot handling
//! (including Java's quirks: `delete("/")` is sent without the chroot and
//! getEphemerals neither prefixes nor strips it), error codes per client state
//! (ConnectionLoss while connecting, SessionExpired once closed or expired, AuthFailed
//! after a refused auth), watch bookkeeping that survives reconnects, and the events a
//! default watcher sees (SyncConnected, Disconnected, Expired, AuthFailed, Closed, the
//! watch notifications, and the local `*WatchRemoved` events).
//!
//! Events go to the [`Watcher`] callback, which runs on the connection thread (or, for
//! Closed and the removal events, on the calling thread) *before* any later reply is
//! handed to its caller: a caller that prints replies and a watcher that prints events
//! produce ZooKeeper's order. The callback must not call back into the client and wait
//! for a reply: the thread that would read that reply is the one running the callback.
//!
//! Bounds: a reply frame is refused above `reply_bytes_max` (Java: `jute.maxbuffer`);
//! SetWatches batches hold about 128 KiB of paths; requests queued while disconnected
//! fail at the next failed connection attempt, as in Java, so the queue cannot grow
//! without a connection for long.

mod codec;
mod conn;
pub mod hosts;
pub mod path;
mod watches;
#[cfg(test)]
mod wire_tests;

pub use hosts::{ConnectString, ConnectStringError, HostPort};
pub use watches::WatchRegistration;

use crate::jute::DecodeError;
use crate::proto::{
    add_watch_mode, event, op, state, Acl, ClientInfo, CreateMode, ErrorCode, Request, Stat,
    CONFIG_PATH, JUTE_MAX_BUFFER_DEFAULT,
};
use bytes::{Bytes, BytesMut};
use conn::{Outgoing, Pending, Reply};
use std::collections::VecDeque;
use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use watches::WatchRegistry;

/// The callback that receives every event of the session.
pub type Watcher = Arc<dyn Fn(&WatchedEvent) + Send + Sync>;

/// An event as the Java client's `WatchedEvent`: type and state codes (see
/// [`crate::proto::event`] and [`crate::proto::state`]) and the client path (`None` for
/// state changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: Option<String>,
}

impl WatchedEvent {
    pub fn state_change(state: i32) -> WatchedEvent {
        WatchedEvent {
            event_type: event::NONE,
            state,
            path: None,
        }
    }
}

/// Java's `WatchedEvent.toString()`, which zkCli prints.
impl fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state_name = match self.state {
            -1 => "Unknown",
            1 => "NoSyncConnected",
            s => state::name(s),
        };
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            state_name,
            event::name(self.event_type),
            self.path.as_deref().unwrap_or("null")
        )
    }
}

/// The client's connection state (Java's `ZooKeeper.States`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    Connecting,
    Associating,
    Connected,
    ConnectedReadOnly,
    Closed,
    AuthFailed,
    NotConnected,
}

impl States {
    /// Java's `isAlive`: everything but Closed and AuthFailed.
    pub fn is_alive(self) -> bool {
        !matches!(self, States::Closed | States::AuthFailed)
    }

    pub fn is_connected(self) -> bool {
        matches!(self, States::Connected | States::ConnectedReadOnly)
    }

    /// The error a request gets when it cannot be (or was not) answered in this state
    /// (ClientCnxn.conLossPacket).
    fn failure_code(self) -> ErrorCode {
        match self {
            States::AuthFailed => ErrorCode::AuthFailed,
            States::Closed => ErrorCode::SessionExpired,
            _ => ErrorCode::ConnectionLoss,
        }
    }
}

/// The Java enum names, which zkCli's prompt shows.
impl fmt::Display for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            States::Connecting => "CONNECTING",
            States::Associating => "ASSOCIATING",
            States::Connected => "CONNECTED",
            States::ConnectedReadOnly => "CONNECTEDREADONLY",
            States::Closed => "CLOSED",
            States::AuthFailed => "AUTH_FAILED",
            States::NotConnected => "NOT_CONNECTED",
        })
    }
}

/// KeeperException.getCodeMessage, code for code (it differs from
/// [`ErrorCode::message`] for the codes Java has no text for).
pub fn java_code_message(code: ErrorCode) -> String {
    match code {
        ErrorCode::UnknownSession => "Unknown error UNKNOWNSESSION".to_string(),
        ErrorCode::RequestTimeout => "Unknown error REQUESTTIMEOUT".to_string(),
        other => other.message().to_string(),
    }
}

/// What a call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The server answered with an error code, or the connection state decided it
    /// (ConnectionLoss, SessionExpired, AuthFailed). Displays as Java's
    /// `KeeperException.getMessage()`.
    #[error("{}", keeper_message(*.code, .path.as_deref()))]
    Keeper {
        code: ErrorCode,
        path: Option<String>,
    },
    /// A multi failed: `code` is the first failing op's code, `results` every op's
    /// result as the server reported it.
    #[error("{}", keeper_message(*.code, .path.as_deref()))]
    Multi {
        code: ErrorCode,
        path: Option<String>,
        results: Vec<OpResult>,
    },
    /// Refused before anything was sent (Java: IllegalArgumentException); the text is
    /// Java's message.
    #[error("{0}")]
    InvalidArgument(String),
    /// The server's reply did not decode.
    #[error("malformed reply: {0}")]
    MalformedReply(#[from] DecodeError),
}

impl Error {
    /// The ZooKeeper error code, if this is a server- or state-decided error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Keeper { code, .. } | Error::Multi { code, .. } => Some(*code),
            Error::MalformedReply(_) => Some(ErrorCode::MarshallingError),
            Error::InvalidArgument(_) => None,
        }
    }

    /// The path the Java client attaches to the exception (the client path).
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::Keeper { path, .. } | Error::Multi { path, .. } => path.as_deref(),
            _ => None,
        }
    }

    fn keeper(code: ErrorCode, path: Option<&str>) -> Error {
        Error::Keeper {
            code,
            path: path.map(str::to_string),
        }
    }
}

fn keeper_message(code: ErrorCode, path: Option<&str>) -> String {
    match path {
        Some(p) if !p.is_empty() => {
            format!("KeeperErrorCode = {} for {p}", java_code_message(code))
        }
        _ => format!("KeeperErrorCode = {}", java_code_message(code)),
    }
}

/// Why a client could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    ConnectString(#[from] ConnectStringError),
    /// The operating system refused the connection thread.
    #[error("cannot start the client thread: {0}")]
    Spawn(String),
}

/// One op of a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        mode: CreateMode,
        /// Only for the TTL modes.
        ttl_ms: Option<i64>,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

impl Op {
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }
}

/// One op's result in a multi reply. Create paths are client paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Create { path: String, stat: Option<Stat> },
    Delete,
    SetData { stat: Stat },
    Check,
    Error { code: ErrorCode },
}

/// One op of a multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetChildren(String),
    GetData(String),
}

/// One op's result in a multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    Children(Vec<String>),
    Data { data: Option<Bytes>, stat: Stat },
    Error(ErrorCode),
}

/// Settings of a session.
#[derive(Clone)]
pub struct ClientConfig {
    /// The session timeout asked for; the server clamps it.
    pub session_timeout_ms: i32,
    /// Ask for a read-only-capable session (zkCli `-r`).
    pub read_only: bool,
    /// Receives every event; `None` drops them.
    pub watcher: Option<Watcher>,
    /// Largest reply frame accepted (Java client: `jute.maxbuffer`).
    pub reply_bytes_max: usize,
    /// Seed for the host shuffle; `None` picks a random one, `Some(0)` keeps the order.
    pub host_shuffle_seed: Option<u64>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            session_timeout_ms: 30_000,
            read_only: false,
            watcher: None,
            reply_bytes_max: JUTE_MAX_BUFFER_DEFAULT,
            host_shuffle_seed: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("session_timeout_ms", &self.session_timeout_ms)
            .field("read_only", &self.read_only)
            .field("watcher", &self.watcher.is_some())
            .field("reply_bytes_max", &self.reply_bytes_max)
            .finish()
    }
}

/// State shared by the caller threads and the connection thread.
pub(crate) struct Shared {
    chroot: Option<String>,
    session_timeout_ms: i32,
    read_only: bool,
    reply_bytes_max: usize,
    watcher: Option<Watcher>,
    inner: Mutex<Inner>,
    changed: Condvar,
}

struct Inner {
    conn_state: States,
    session_id: i64,
    passwd: Bytes,
    negotiated_timeout_ms: i32,
    last_zxid: i64,
    xid_next: i32,
    /// Auth packets, re-sent on every connection (servers keep auth per connection).
    auth: Vec<(String, Bytes)>,
    watches: WatchRegistry,
    outgoing: VecDeque<Outgoing>,
    pending: VecDeque<Pending>,
    writer: Option<mpsc::Sender<Bytes>>,
    /// A handle on the current socket, so that close() can end a blocked read.
    socket: Option<TcpStream>,
    server: Option<String>,
    closing: bool,
    /// After Expired or AuthFailed Java's event thread is gone: no more events.
    events_dead: bool,
    /// A session is only resumed once a read-write server granted it (Java).
    seen_rw_server: bool,
}

impl Inner {
    fn stopping(&self) -> bool {
        !self.conn_state.is_alive()
            || (self.closing && self.pending.is_empty() && self.outgoing.is_empty())
    }

    fn fail_all(&mut self) {
        let code = self.conn_state.failure_code();
        for p in self.pending.drain(..) {
            if let Some(tx) = p.reply {
                let _ = tx.send(Err(code));
            }
        }
        for o in self.outgoing.drain(..) {
            if let Some(tx) = o.pending.reply {
                let _ = tx.send(Err(code));
            }
        }
    }

    fn next_xid(&mut self) -> i32 {
        // Negative xids are reserved for pings, auth, notifications and SetWatches.
        let xid = self.xid_next;
        self.xid_next = if xid == i32::MAX { 1 } else { xid + 1 };
        xid
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, events: Vec<WatchedEvent>) {
        if events.is_empty() || self.lock().events_dead {
            return;
        }
        if let Some(w) = &self.watcher {
            for e in &events {
                w(e);
            }
        }
    }

    fn client_path(&self, server_path: &str) -> String {
        path::strip_chroot(self.chroot.as_deref(), server_path)
    }

    fn server_path(&self, client_path: &str) -> String {
        path::prepend_chroot(self.chroot.as_deref(), client_path)
    }

    /// Queues or sends one request and waits for its reply.
    fn call(
        &self,
        op: i32,
        body: &[u8],
        watch: Option<WatchRegistration>,
    ) -> Result<Reply, ErrorCode> {
        self.call_and_maybe_close(op, body, watch, false)
    }

    /// [`Self::call`]; with `start_closing`, the client is marked closing in the same
    /// critical section that queues the request. Marked on its own first, the connection
    /// thread could find a closing client with nothing left to send (`stopping`) and end
    /// while connecting, leaving the closeSession queued with no thread to send or fail
    /// it: `close` then waited for ever (seen once in CI, `corral cli` running `close`
    /// right after start).
    fn call_and_maybe_close(
        &self,
        op: i32,
        body: &[u8],
        watch: Option<WatchRegistration>,
        start_closing: bool,
    ) -> Result<Reply, ErrorCode> {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut s = self.lock();
            if !s.conn_state.is_alive() || (s.closing && op != op::CLOSE_SESSION) {
                return Err(if s.closing {
                    ErrorCode::SessionExpired
                } else {
                    s.conn_state.failure_code()
                });
            }
            if start_closing {
                s.closing = true;
            }
            let xid = s.next_xid();
            let frame = conn::request_frame(xid, op, body);
            let pending = Pending {
                xid,
                reply: Some(tx),
                watch,
            };
            match &s.writer {
                Some(writer) if writer.send(frame.clone()).is_ok() => s.pending.push_back(pending),
                _ => s.outgoing.push_back(Outgoing { frame, pending }),
            }
        }
        // Every pending or queued entry is answered or failed by the connection thread
        // (or close), so this wait ends; a dropped sender means the client went away.
        match rx.recv() {
            Ok(result) => result,
            Err(_) => Err(ErrorCode::ConnectionLoss),
        }
    }
}

/// A ZooKeeper session. Cheap to share across threads by reference; dropping it closes
/// the session.
pub struct Client {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    hosts: Vec<HostPort>,
}

/// Validates a client path with Java's messages.
fn check_path(path: &str) -> Result<(), Error> {
    path::validate_path(path).map_err(Error::InvalidArgument)
}

fn encode(req: Request) -> BytesMut {
    let mut body = BytesMut::new();
    req.encode(&mut body);
    body
}

impl Client {
    /// Starts a session with the ensemble in `connect_string` and returns at once; the
    /// connection is made in the background (calls made meanwhile wait for it, as in
    /// Java). Fails only on a malformed connect string.
    pub fn connect(connect_string: &str, config: ClientConfig) -> Result<Client, ConnectError> {
        let parsed = ConnectString::parse(connect_string)?;
        let seed = config.host_shuffle_seed.unwrap_or_else(hosts::random_u64);
        let host_list = hosts::HostList::new(parsed.hosts.clone(), seed);
        let shared = Arc::new(Shared {
            chroot: parsed.chroot,
            session_timeout_ms: config.session_timeout_ms,
            read_only: config.read_only,
            reply_bytes_max: config.reply_bytes_max,
            watcher: config.watcher,
            inner: Mutex::new(Inner {
                conn_state: States::Connecting,
                session_id: 0,
                passwd: Bytes::from_static(&[0; 16]),
                negotiated_timeout_ms: 0,
                last_zxid: 0,
                xid_next: 1,
                auth: Vec::new(),
                watches: WatchRegistry::default(),
                outgoing: VecDeque::new(),
                pending: VecDeque::new(),
                writer: None,
                socket: None,
                server: None,
                closing: false,
                events_dead: false,
                seen_rw_server: false,
            }),
            changed: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("corral-client".into())
            .spawn(move || conn::connection_loop(thread_shared, host_list))
            .map_err(|e| ConnectError::Spawn(e.to_string()))?;
        Ok(Client {
            shared,
            thread: Mutex::new(Some(thread)),
            hosts: parsed.hosts,
        })
    }

    /// Waits until the client is connected (true) or `timeout` passed or the client
    /// died (false).
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.lock();
        loop {
            if s.conn_state.is_connected() {
                return true;
            }
            if !s.conn_state.is_alive() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = match self.shared.changed.wait_timeout(s, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }

    pub fn state(&self) -> States {
        self.shared.lock().conn_state
    }

    pub fn session_id(&self) -> i64 {
        self.shared.lock().session_id
    }

    pub fn session_password(&self) -> Bytes {
        self.shared.lock().passwd.clone()
    }

    pub fn negotiated_timeout_ms(&self) -> i32 {
        self.shared.lock().negotiated_timeout_ms
    }

    /// The highest zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.shared.lock().last_zxid
    }

    /// The server of the current connection (`host:port`), if connected.
    pub fn server(&self) -> Option<String> {
        self.shared.lock().server.clone()
    }

    pub fn hosts(&self) -> &[HostPort] {
        &self.hosts
    }

    pub fn chroot(&self) -> Option<&str> {
        self.shared.chroot.as_deref()
    }

    fn call(
        &self,
        op: i32,
        body: &[u8],
        watch: Option<WatchRegistration>,
        err_path: Option<&str>,
    ) -> Result<Bytes, Error> {
        let reply = self
            .shared
            .call(op, body, watch)
            .map_err(|code| Error::keeper(code, err_path))?;
        if reply.err != 0 {
            return Err(Error::keeper(ErrorCode::from_code(reply.err), err_path));
        }
        Ok(reply.body)
    }

    /// Creates a node (op 1, or 19 for a container); returns the created client path.
    pub fn create(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String, Error> {
        path::validate_create_path(path, mode.is_sequential()).map_err(Error::InvalidArgument)?;
        if mode.is_ttl() {
            // Java's EphemeralType.validateTTL(mode, -1).
            return Err(Error::InvalidArgument(
                "ttl must be positive and cannot be larger than: 1099511627775".into(),
            ));
        }
        validate_acl(acl)?;
        let op = if mode.is_container() {
            op::CREATE_CONTAINER
        } else {
            op::CREATE
        };
        let mut body = BytesMut::new();
        codec::put_create(
            &mut body,
            &self.shared.server_path(path),
            data,
            acl,
            mode.flags(),
            None,
        );
        let reply = self.call(op, &body, None, Some(path))?;
        let server_path = if op == op::CREATE {
            codec::string(reply)?
        } else {
            codec::string_stat(reply)?.0
        };
        Ok(self.shared.client_path(&server_path))
    }

    /// Creates a node and returns its path and Stat (op 15; 19 for a container, 21 for
    /// the TTL modes, which need `ttl_ms`).
    pub fn create2(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: Option<i64>,
    ) -> Result<(String, Stat), Error> {
        path::validate_create_path(path, mode.is_sequential()).map_err(Error::InvalidArgument)?;
        validate_ttl(mode, ttl_ms)?;
        validate_acl(acl)?;
        let op = if mode.is_ttl() {
            op::CREATE_TTL
        } else if mode.is_container() {
            op::CREATE_CONTAINER
        } else {
            op::CREATE2
        };
        let mut body = BytesMut::new();
        codec::put_create(
            &mut body,
            &self.shared.server_path(path),
            data,
            acl,
            mode.flags(),
            if mode.is_ttl() { ttl_ms } else { None },
        );
        let reply = self.call(op, &body, None, Some(path))?;
        let (server_path, stat) = codec::string_stat(reply)?;
        Ok((self.shared.client_path(&server_path), stat))
    }

    /// Deletes a node; version -1 matches any.
    pub fn delete(&self, path: &str, version: i32) -> Result<(), Error> {
        check_path(path)?;
        // Java sends "/" without the chroot so that deleting the root always fails the
        // same way.
        let server_path = if path == "/" {
            path.to_string()
        } else {
            self.shared.server_path(path)
        };
        let body = encode(Request::Delete(crate::proto::request::PathVersion {
            path: server_path.into(),
            version,
        }));
        self.call(op::DELETE, &body, None, Some(path))?;
        Ok(())
    }

    /// The node's Stat, or `None` if it does not exist. With `watch`, a watch is left
    /// either way (an exist watch on a missing node).
    pub fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, Error> {
        check_path(path)?;
        let body = encode(Request::Exists(crate::proto::request::PathWatch {
            path: self.shared.server_path(path).into(),
            watch,
        }));
        let reg = watch.then(|| WatchRegistration::Exists(path.to_string()));
        match self.call(op::EXISTS, &body, reg, Some(path)) {
            Ok(body) => Ok(Some(codec::stat(body)?)),
            Err(Error::Keeper {
                code: ErrorCode::NoNode,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's data (`None` when it was stored as null) and Stat.
    pub fn get_data(&self, path: &str, watch: bool) -> Result<(Option<Bytes>, Stat), Error> {
        check_path(path)?;
        let body = encode(Request::GetData(crate::proto::request::PathWatch {
            path: self.shared.server_path(path).into(),
            watch,
        }));
        let reg = watch.then(|| WatchRegistration::Data(path.to_string()));
        Ok(codec::data_stat(self.call(
            op::GET_DATA,
            &body,
            reg,
            Some(path),
        )?)?)
    }

    /// The ensemble's configuration (`/zookeeper/config`, never chrooted).
    pub fn get_config(&self, watch: bool) -> Result<(Option<Bytes>, Stat), Error> {
        let body = encode(Request::GetData(crate::proto::request::PathWatch {
            path: CONFIG_PATH.into(),
            watch,
        }));
        let reg = watch.then(|| WatchRegistration::Data(CONFIG_PATH.to_string()));
        Ok(codec::data_stat(self.call(
            op::GET_DATA,
            &body,
            reg,
            Some(CONFIG_PATH),
        )?)?)
    }

    pub fn set_data(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat, Error> {
        check_path(path)?;
        let mut body = BytesMut::new();
        codec::put_set_data(&mut body, &self.shared.server_path(path), data, version);
        Ok(codec::stat(self.call(
            op::SET_DATA,
            &body,
            None,
            Some(path),
        )?)?)
    }

    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), Error> {
        check_path(path)?;
        let body = encode(Request::GetAcl(self.shared.server_path(path).into()));
        Ok(codec::acl_stat(self.call(
            op::GET_ACL,
            &body,
            None,
            Some(path),
        )?)?)
    }

    /// Sets the ACL; `version` is checked against the ACL version (-1 matches any).
    pub fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, Error> {
        check_path(path)?;
        validate_acl(acl)?;
        let body = encode(Request::SetAcl(crate::proto::request::SetAclRequest {
            path: self.shared.server_path(path).into(),
            acl: acl.to_vec(),
            version,
        }));
        Ok(codec::stat(self.call(
            op::SET_ACL,
            &body,
            None,
            Some(path),
        )?)?)
    }

    /// The names of the node's children (op 8), in the server's order.
    pub fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, Error> {
        check_path(path)?;
        let body = encode(Request::GetChildren(crate::proto::request::PathWatch {
            path: self.shared.server_path(path).into(),
            watch,
        }));
        let reg = watch.then(|| WatchRegistration::Child(path.to_string()));
        Ok(codec::children(self.call(
            op::GET_CHILDREN,
            &body,
            reg,
            Some(path),
        )?)?)
    }

    /// The children and the node's Stat (op 12).
    pub fn get_children2(&self, path: &str, watch: bool) -> Result<(Vec<String>, Stat), Error> {
        check_path(path)?;
        let body = encode(Request::GetChildren2(crate::proto::request::PathWatch {
            path: self.shared.server_path(path).into(),
            watch,
        }));
        let reg = watch.then(|| WatchRegistration::Child(path.to_string()));
        Ok(codec::children_stat(self.call(
            op::GET_CHILDREN2,
            &body,
            reg,
            Some(path),
        )?)?)
    }

    /// Waits until the server this client talks to has caught up with the leader.
    /// Returns the client path the server echoed.
    pub fn sync(&self, path: &str) -> Result<String, Error> {
        check_path(path)?;
        let body = encode(Request::Sync(self.shared.server_path(path).into()));
        let reply = self.call(op::SYNC, &body, None, Some(path))?;
        Ok(self.shared.client_path(&codec::string(reply)?))
    }

    /// Runs `ops` atomically. On failure the error is the first failing op's code, with
    /// every op's result attached.
    pub fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>, Error> {
        for o in ops {
            match o {
                Op::Create {
                    path,
                    mode,
                    ttl_ms,
                    acl,
                    ..
                } => {
                    path::validate_create_path(path, mode.is_sequential())
                        .map_err(Error::InvalidArgument)?;
                    validate_ttl(*mode, *ttl_ms)?;
                    validate_acl(acl)?;
                }
                other => check_path(other.path())?,
            }
        }
        if ops.is_empty() {
            // Java answers an empty multi without asking the server.
            return Ok(Vec::new());
        }
        let body = self.encode_multi(ops);
        let reply = self.call(op::MULTI, &body, None, None)?;
        let mut results = codec::multi_results(reply)?;
        for r in &mut results {
            if let OpResult::Create { path, .. } = r {
                *path = self.shared.client_path(path);
            }
        }
        let failed = results.iter().enumerate().find_map(|(i, r)| match r {
            OpResult::Error { code } if *code != ErrorCode::Ok => Some((i, *code)),
            _ => None,
        });
        match failed {
            Some((i, code)) => Err(Error::Multi {
                code,
                path: ops.get(i).map(|o| o.path().to_string()),
                results,
            }),
            None => Ok(results),
        }
    }

    fn encode_multi(&self, ops: &[Op]) -> BytesMut {
        use crate::jute::{Record, Writer};
        use bytes::BufMut;
        let mut w = BytesMut::new();
        for o in ops {
            let (op_code, server_path) = match o {
                Op::Create { mode, .. } if mode.is_ttl() => (op::CREATE_TTL, o.path()),
                Op::Create { mode, .. } if mode.is_container() => (op::CREATE_CONTAINER, o.path()),
                Op::Create { .. } => (op::CREATE, o.path()),
                Op::Delete { .. } => (op::DELETE, o.path()),
                Op::SetData { .. } => (op::SET_DATA, o.path()),
                Op::Check { .. } => (op::CHECK, o.path()),
            };
            let server_path = self.shared.server_path(server_path);
            crate::proto::MultiHeader {
                op: op_code,
                done: false,
                err: -1,
            }
            .encode(&mut w);
            match o {
                Op::Create {
                    data,
                    acl,
                    mode,
                    ttl_ms,
                    ..
                } => codec::put_create(
                    &mut w,
                    &server_path,
                    data.as_deref(),
                    acl,
                    mode.flags(),
                    if mode.is_ttl() { *ttl_ms } else { None },
                ),
                Op::Delete { version, .. } | Op::Check { version, .. } => {
                    w.put_string(&server_path);
                    w.put_i32(*version);
                }
                Op::SetData { data, version, .. } => {
                    codec::put_set_data(&mut w, &server_path, data.as_deref(), *version)
                }
            }
        }
        crate::proto::MultiHeader::END.encode(&mut w);
        w
    }

    /// Runs reads together (op 22); each op succeeds or fails on its own.
    pub fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>, Error> {
        let mut proto_ops = Vec::with_capacity(ops.len());
        for o in ops {
            let (ReadOp::GetChildren(p) | ReadOp::GetData(p)) = o;
            check_path(p)?;
            let server: crate::jute::JStr = self.shared.server_path(p).into();
            proto_ops.push(match o {
                ReadOp::GetChildren(_) => crate::proto::request::ReadOp::GetChildren(server),
                ReadOp::GetData(_) => crate::proto::request::ReadOp::GetData(server),
            });
        }
        let body = encode(Request::MultiRead(proto_ops));
        Ok(codec::multi_read_results(self.call(
            op::MULTI_READ,
            &body,
            None,
            None,
        )?)?)
    }

    /// Changes the ensemble (op 16). `from_config` is the config version to replace,
    /// -1 for any. Returns the new config data and its Stat.
    pub fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: i64,
    ) -> Result<(Option<Bytes>, Stat), Error> {
        let body = encode(Request::Reconfig(crate::proto::request::ReconfigRequest {
            joining_servers: joining.map(Into::into),
            leaving_servers: leaving.map(Into::into),
            new_members: new_members.map(Into::into),
            cur_config_id: from_config,
        }));
        // Java's client raises the reconfig's KeeperException with the path "" (so zkCli
        // prints "Insufficient permission : ").
        Ok(codec::data_stat(self.call(
            op::RECONFIG,
            &body,
            None,
            Some(""),
        )?)?)
    }

    /// Asks the server whether it holds a watch of `kind` on `path` (op 17).
    pub fn check_watches(&self, path: &str, kind: i32) -> Result<(), Error> {
        check_path(path)?;
        let body = encode(Request::CheckWatches {
            path: self.shared.server_path(path).into(),
            watcher_type: kind,
        });
        self.call(op::CHECK_WATCHES, &body, None, Some(path))?;
        Ok(())
    }

    /// Removes every watch of `kind` (a [`crate::proto::watcher_type`]) on `path`, on the
    /// server (op 18) and here; the watcher then sees one `*WatchRemoved` event per kind
    /// removed. With `local`, the local watches go even when the server cannot be asked.
    pub fn remove_watches(&self, path: &str, kind: i32, local: bool) -> Result<(), Error> {
        check_path(path)?;
        let body = encode(Request::RemoveWatches {
            path: self.shared.server_path(path).into(),
            watcher_type: kind,
        });
        let err = match self.shared.call(op::REMOVE_WATCHES, &body, None) {
            Ok(reply) => reply.err,
            Err(code) => code.code(),
        };
        // ZKWatchManager.removeWatcher: the local check comes first, then the server's
        // answer decides unless the caller asked for a local removal.
        let removed = {
            let mut s = self.shared.lock();
            if !s.watches.contains(path, kind) {
                return Err(Error::keeper(ErrorCode::NoWatcher, Some(path)));
            }
            if err != 0 && !local {
                return Err(Error::keeper(ErrorCode::from_code(err), Some(path)));
            }
            s.watches.remove(path, kind)
        };
        if !removed.any() {
            return Err(Error::keeper(ErrorCode::NoWatcher, Some(path)));
        }
        let events = removed
            .event_types()
            .into_iter()
            .map(|t| WatchedEvent {
                event_type: t,
                state: state::SYNC_CONNECTED,
                path: Some(path.to_string()),
            })
            .collect();
        self.shared.deliver(events);
        Ok(())
    }

    /// Adds credentials (op 100, xid -4). Like Java this does not wait: a refusal shows
    /// up as an AuthFailed event and the session's end. The credentials are re-sent on
    /// every reconnect.
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) {
        let mut body = BytesMut::new();
        Request::Auth(crate::proto::request::AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Bytes::copy_from_slice(auth),
        })
        .encode(&mut body);
        let frame = conn::request_frame(crate::proto::xid::AUTH, op::AUTH, &body);
        let mut s = self.shared.lock();
        if !s.conn_state.is_alive() {
            return;
        }
        s.auth
            .push((scheme.to_string(), Bytes::copy_from_slice(auth)));
        // Sent now when connected; otherwise the next handshake sends the whole list.
        if let Some(writer) = &s.writer {
            let _ = writer.send(frame);
        }
    }

    /// Adds a persistent watch (op 106); `mode` is a [`crate::proto::add_watch_mode`].
    pub fn add_watch(&self, path: &str, mode: i32) -> Result<(), Error> {
        check_path(path)?;
        let body = encode(Request::AddWatch {
            path: self.shared.server_path(path).into(),
            mode,
        });
        let mode = if mode == add_watch_mode::PERSISTENT_RECURSIVE {
            add_watch_mode::PERSISTENT_RECURSIVE
        } else {
            add_watch_mode::PERSISTENT
        };
        let reg = WatchRegistration::for_add_watch(path.to_string(), mode);
        self.call(op::ADD_WATCH, &body, Some(reg), Some(path))?;
        Ok(())
    }

    /// The session's ephemeral nodes under the prefix (op 103). Like Java, the prefix
    /// is sent as given and the answer holds server paths (no chroot mapping).
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, Error> {
        check_path(prefix)?;
        let body = encode(Request::GetEphemerals(prefix.into()));
        Ok(codec::children(self.call(
            op::GET_EPHEMERALS,
            &body,
            None,
            None,
        )?)?)
    }

    /// The number of descendants of `path` (op 104).
    pub fn get_all_children_number(&self, path: &str) -> Result<i32, Error> {
        check_path(path)?;
        let body = encode(Request::GetAllChildrenNumber(
            self.shared.server_path(path).into(),
        ));
        Ok(codec::int(self.call(
            op::GET_ALL_CHILDREN_NUMBER,
            &body,
            None,
            Some(path),
        )?)?)
    }

    /// The identities the server associates with this connection (op 107).
    pub fn who_am_i(&self) -> Result<Vec<ClientInfo>, Error> {
        Ok(codec::client_infos(self.call(
            op::WHO_AM_I,
            &[],
            None,
            None,
        )?)?)
    }

    /// Ends the session: closeSession (op -11) if connected, then the threads stop and
    /// the watcher sees Closed. Further calls fail with SessionExpired.
    pub fn close(&self) -> Result<(), Error> {
        {
            let s = self.shared.lock();
            if !s.conn_state.is_alive() {
                drop(s);
                self.join_thread();
                return Ok(());
            }
        }
        // Like Java, closeSession is queued even while connecting: it goes out once a
        // connection is up, or fails with the next failed attempt. Either way the
        // session is over for this client, so the outcome is not an error.
        let _ = self
            .shared
            .call_and_maybe_close(op::CLOSE_SESSION, &[], None, true);
        {
            let mut s = self.shared.lock();
            s.conn_state = States::Closed;
            s.fail_all();
            if let Some(socket) = s.socket.take() {
                let _ = socket.shutdown(Shutdown::Both);
            }
            s.writer = None;
            self.shared.changed.notify_all();
        }
        self.join_thread();
        self.shared
            .deliver(vec![WatchedEvent::state_change(state::CLOSED)]);
        self.shared.lock().events_dead = true;
        Ok(())
    }

    /// Drops the connection without ending the session, as a process that exits does:
    /// the server expires the session after its timeout (its ephemerals stay until
    /// then) unless a client resumes it with [`Client::session_id`] and
    /// [`Client::session_password`]. No events follow; calls fail with SessionExpired.
    pub fn disconnect(&self) {
        {
            let mut s = self.shared.lock();
            s.events_dead = true;
            s.closing = true;
            s.conn_state = States::Closed;
            s.fail_all();
            if let Some(socket) = s.socket.take() {
                let _ = socket.shutdown(Shutdown::Both);
            }
            s.writer = None;
            self.shared.changed.notify_all();
        }
        self.join_thread();
    }

    fn join_thread(&self) {
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// ZooKeeper.validateACL: an empty list is refused before sending.
fn validate_acl(acl: &[Acl]) -> Result<(), Error> {
    if acl.is_empty() {
        return Err(Error::keeper(ErrorCode::InvalidAcl, None));
    }
    Ok(())
}

/// The largest TTL (2^40 - 1 ms), EphemeralType.TTL.maxValue().
pub const TTL_MS_MAX: i64 = 0xff_ffff_ffff;

/// EphemeralType.validateTTL: a TTL mode needs 1..=TTL_MS_MAX, other modes none.
fn validate_ttl(mode: CreateMode, ttl_ms: Option<i64>) -> Result<(), Error> {
    let ttl = ttl_ms.unwrap_or(-1);
    if mode.is_ttl() {
        if ttl <= 0 || ttl > TTL_MS_MAX {
            return Err(Error::InvalidArgument(format!(
                "ttl must be positive and cannot be larger than: {TTL_MS_MAX}"
            )));
        }
    } else if ttl >= 0 {
        return Err(Error::InvalidArgument(format!(
            "ttl not valid for mode: {}",
            create_mode_name(mode)
        )));
    }
    Ok(())
}

/// Java's CreateMode enum names.
pub fn create_mode_name(mode: CreateMode) -> &'static str {
    match mode {
        CreateMode::Persistent => "PERSISTENT",
        CreateMode::Ephemeral => "EPHEMERAL",
        CreateMode::PersistentSequential => "PERSISTENT_SEQUENTIAL",
        CreateMode::EphemeralSequential => "EPHEMERAL_SEQUENTIAL",
        CreateMode::Container => "CONTAINER",
        CreateMode::PersistentWithTtl => "PERSISTENT_WITH_TTL",
        CreateMode::PersistentSequentialWithTtl => "PERSISTENT_SEQUENTIAL_WITH_TTL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_text_matches_java() {
        let e = WatchedEvent::state_change(state::SYNC_CONNECTED);
        assert_eq!(
            e.to_string(),
            "WatchedEvent state:SyncConnected type:None path:null"
        );
        let e = WatchedEvent {
            event_type: event::NODE_DATA_CHANGED,
            state: state::SYNC_CONNECTED,
            path: Some("/a".into()),
        };
        assert_eq!(
            e.to_string(),
            "WatchedEvent state:SyncConnected type:NodeDataChanged path:/a"
        );
        assert_eq!(
            WatchedEvent::state_change(state::CLOSED).to_string(),
            "WatchedEvent state:Closed type:None path:null"
        );
    }

    #[test]
    fn error_text_matches_java() {
        let e = Error::keeper(ErrorCode::NoNode, Some("/a"));
        assert_eq!(e.to_string(), "KeeperErrorCode = NoNode for /a");
        let e = Error::keeper(ErrorCode::ReconfigDisabled, None);
        assert_eq!(e.to_string(), "KeeperErrorCode = Reconfig is disabled");
        let e = Error::keeper(ErrorCode::NotEmpty, Some("/p"));
        assert_eq!(
            e.to_string(),
            "KeeperErrorCode = Directory not empty for /p"
        );
    }

    #[test]
    fn ttl_rules_match_java() {
        assert!(validate_ttl(CreateMode::PersistentWithTtl, Some(1)).is_ok());
        assert!(validate_ttl(CreateMode::PersistentWithTtl, Some(0)).is_err());
        assert!(validate_ttl(CreateMode::PersistentWithTtl, Some(TTL_MS_MAX + 1)).is_err());
        assert!(validate_ttl(CreateMode::Persistent, None).is_ok());
        assert_eq!(
            validate_ttl(CreateMode::Persistent, Some(5))
                .unwrap_err()
                .to_string(),
            "ttl not valid for mode: PERSISTENT"
        );
    }

    #[test]
    fn states_display_as_java_enum_names() {
        assert_eq!(States::Connected.to_string(), "CONNECTED");
        assert_eq!(States::AuthFailed.to_string(), "AUTH_FAILED");
        assert!(!States::Closed.is_alive());
        assert!(States::Connecting.is_alive());
    }

    #[test]
    fn calls_on_a_dead_server_fail_with_connection_loss() {
        // Port 1 on loopback refuses connections: the queued call fails at the first
        // failed attempt, as the Java client's cleanup does.
        let client = Client::connect("127.0.0.1:1", ClientConfig::default()).unwrap();
        let err = client.get_children("/", false).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::ConnectionLoss));
        assert_eq!(err.to_string(), "KeeperErrorCode = ConnectionLoss for /");
        client.close().unwrap();
        assert_eq!(
            client.get_children("/", false).unwrap_err().code(),
            Some(ErrorCode::SessionExpired)
        );
    }
}
