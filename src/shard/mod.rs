//! A shard executor: client connections, its replica of the data tree, its watches.
//!
//! Owns: the connections accepted on this core, the sessions they hold, a replica of the
//! tree that applies the ZAB executor's committed stream, and the watch registry. Reads are
//! answered here from the replica and never wait for the ZAB executor; writes go to it and
//! are answered when their committed transaction comes back and has been applied here.
//!
//! Ordering per connection (guarantees 2-4 of design.md): every request takes a slot in
//! [`ConnState::slots`] in arrival order. A read is served at once only when no earlier
//! request is still waiting; otherwise it waits behind the writes before it and is served
//! right after the last of them is applied, before anything later is applied. Watch events
//! are encoded into the output buffer while applying, so they always precede any reply
//! that could show the data that fired them.
//!
//! Overload (docs/reliability.md, "Overload and slow clients"): every limit here bounds
//! memory by refusing or pausing work, never by queueing it.
//! - Connections: `maxClientCnxns` per client IP and `maxCnxns` in total are counted
//!   across all shards ([`ClientCount`]); a connection over either is closed at once.
//! - Requests: a shard's outstanding requests (slots of all its connections) stop at its
//!   share of `globalOutstandingLimit`; at the limit, connections with a request of their
//!   own in flight stop reading (the kernel's socket buffer then pushes back on the
//!   client) and resume when the count falls below the share again.
//! - Output: a connection's unsent replies and watch events stop at
//!   `corral.client.maxOutputBytes`; a client that does not read its socket beyond that
//!   is disconnected with one log line, its buffered output freed at once.

pub mod conn;
pub mod read;
pub mod reply;

use crate::proto::{perms, Id, SessionId};
use crate::runtime::Notify;
use crate::server::msg::{ConnReport, ShardCounters, ShardReport, ToShard, ToZab};
use crate::server::settings::Settings;
use crate::tree::watches::{ConnId, WatchRegistry};
use crate::tree::{DataTree, OpResult, Trigger};
use crate::zab::{Committed, Origin};
use bytes::BytesMut;
use glommio::channels::local_channel::LocalSender;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

/// Client connections counted across all shards of a server, for `maxClientCnxns` (per
/// IP) and `maxCnxns` (in total). Touched only when a connection opens or closes, never per
/// request, so one mutex costs nothing on the request path.
#[derive(Debug, Default)]
pub struct ClientCount {
    inner: std::sync::Mutex<ClientCountInner>,
}

#[derive(Debug, Default)]
struct ClientCountInner {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `maxClientCnxns` connections from this address are open already.
    PerIp { limit: usize },
    /// `maxCnxns` connections are open already.
    Total { limit: usize },
}

impl ClientCount {
    /// Counts a new connection from `ip`, unless a limit (0 = none) refuses it.
    pub fn admit(&self, ip: IpAddr, per_ip_max: usize, total_max: usize) -> Result<(), Refused> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if total_max > 0 && c.total >= total_max {
            return Err(Refused::Total { limit: total_max });
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if per_ip_max > 0 && *n >= per_ip_max {
            if *n == 0 {
                c.per_ip.remove(&ip);
            }
            return Err(Refused::PerIp { limit: per_ip_max });
        }
        *n += 1;
        c.total += 1;
        Ok(())
    }

    /// Uncounts a connection [`Self::admit`] counted.
    pub fn release(&self, ip: IpAddr) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.per_ip.get_mut(&ip);
        assert!(
            n.as_ref().is_some_and(|n| **n > 0),
            "released a connection from {ip} that was never admitted"
        );
        if let Some(n) = n {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&ip);
            }
        }
        c.total -= 1;
    }
}

/// One request's place in a connection's order.
#[derive(Debug)]
pub enum Slot {
    /// Sent to the ZAB executor; answered when its commit is applied here.
    Write { xid: i32, op: i32 },
    /// A read that waits: behind an earlier write of its connection, or until this
    /// shard's replica has applied `min_zxid` (committed before the read arrived).
    Read {
        xid: i32,
        req: crate::proto::Request,
        received_ms: i64,
        min_zxid: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Waiting for the ConnectRequest.
    Awaiting,
    /// ConnectRequest sent on; `read_only` records whether the client sent that byte.
    Pending {
        read_only: Option<bool>,
    },
    Done,
}

pub struct ConnState {
    pub session_id: SessionId,
    pub timeout_ms: i32,
    pub auth_ids: Arc<[Id]>,
    pub out: BytesMut,
    pub slots: VecDeque<Slot>,
    pub handshake: Handshake,
    /// A read-only session: writes are answered NotReadOnly here.
    pub read_only: bool,
    pub closing: bool,
    /// Set when the output went over `corral.client.maxOutputBytes`: the bytes that were
    /// pending then. The connection is closed without flushing; nothing more is queued.
    pub overflowed_bytes: Option<usize>,
    /// In [`ShardState::throttled`], waiting for the shard's outstanding count to fall.
    pub throttled: bool,
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: i64,
    pub latency_min_ms: i64,
    pub latency_max_ms: i64,
    pub latency_sum_ms: i64,
    pub latency_count: u64,
    /// Arrival times of the writes in flight, for latency.
    pub write_started_ms: VecDeque<i64>,
}

impl ConnState {
    /// A fresh connection from `peer`: no session yet, its `ip` id already authenticated
    /// (every ZooKeeper connection has one).
    pub fn new(peer: std::net::SocketAddr) -> ConnState {
        ConnState {
            session_id: 0,
            timeout_ms: 0,
            auth_ids: Arc::from(vec![Id::new("ip", &peer.ip().to_canonical().to_string())]),
            out: BytesMut::with_capacity(4096),
            slots: VecDeque::new(),
            handshake: Handshake::Awaiting,
            read_only: false,
            closing: false,
            overflowed_bytes: None,
            throttled: false,
            received: 0,
            sent: 0,
            last_op: "NA",
            last_cxid: 0,
            last_zxid: 0,
            last_response_ms: 0,
            last_latency_ms: 0,
            latency_min_ms: 0,
            latency_max_ms: 0,
            latency_sum_ms: 0,
            latency_count: 0,
            write_started_ms: VecDeque::new(),
        }
    }
}

pub struct Conn {
    pub id: ConnId,
    pub peer: SocketAddr,
    pub established_ms: i64,
    pub st: RefCell<ConnState>,
    /// Wakes the connection task: output to flush, reads to resume, or close.
    pub wake: Notify,
}

impl Conn {
    pub fn close(&self) {
        self.st.borrow_mut().closing = true;
        self.wake.notify();
    }
}

pub struct ShardState {
    pub tree: DataTree,
    pub watches: WatchRegistry,
    pub conns: HashMap<ConnId, Rc<Conn>>,
    pub by_session: HashMap<SessionId, ConnId>,
    /// Requests outstanding on this shard: the slots of all its connections.
    pub outstanding: usize,
    /// Connections that stopped reading because [`Self::outstanding`] reached the shard's
    /// share of `globalOutstandingLimit`; woken when it falls below.
    pub throttled: Vec<Rc<Conn>>,
    pub touched: HashSet<SessionId>,
    pub next_conn_id: ConnId,
    pub counters: ShardCounters,
    /// Measurements for mntr and /metrics (never reset).
    pub stats: crate::metrics::ShardStats,
    pub next_query_id: u64,
    /// Names each snapshot walk to the tree (see [`ShardCtx::capture_snapshot`]).
    next_walk_id: u64,
    pub queries: HashMap<u64, LocalSender<crate::server::fourlw::Gathered>>,
    /// Connections whose next read waits for this replica to catch up.
    pub lagging: HashSet<ConnId>,
    scratch_triggers: Vec<Trigger>,
    scratch_conns: Vec<ConnId>,
}

/// Everything a shard's tasks share (single-threaded: `Rc` + `RefCell`, no locks).
pub struct ShardCtx {
    pub id: usize,
    pub settings: Arc<Settings>,
    pub shared: Arc<crate::server::Shared>,
    pub state: RefCell<ShardState>,
    outbox: RefCell<VecDeque<ToZab>>,
    outbox_wake: Notify,
}

impl ShardCtx {
    pub fn new(
        id: usize,
        settings: Arc<Settings>,
        shared: Arc<crate::server::Shared>,
        tree: DataTree,
    ) -> Rc<ShardCtx> {
        Rc::new(ShardCtx {
            id,
            settings,
            shared,
            state: RefCell::new(ShardState {
                tree,
                watches: WatchRegistry::default(),
                conns: HashMap::new(),
                by_session: HashMap::new(),
                outstanding: 0,
                throttled: Vec::new(),
                touched: HashSet::new(),
                next_conn_id: 1,
                counters: ShardCounters {
                    latency_min_ms: i64::MAX,
                    ..ShardCounters::default()
                },
                stats: crate::metrics::ShardStats::default(),
                next_query_id: 0,
                next_walk_id: 0,
                queries: HashMap::new(),
                lagging: HashSet::new(),
                scratch_triggers: Vec::new(),
                scratch_conns: Vec::new(),
            }),
            outbox: RefCell::new(VecDeque::new()),
            outbox_wake: Notify::default(),
        })
    }

    pub fn origin(&self, conn: ConnId) -> Origin {
        Origin {
            shard: self.id,
            conn,
        }
    }

    /// Copies the replica for a snapshot, `corral.snapshot.stepNodes` nodes per turn of the
    /// executor: between steps this shard applies commits and serves its sessions as
    /// usual (with `corral.shards=0` it is the ZAB executor, whose loop must not stall for
    /// the whole walk: ~650 ns a znode). The tree keeps pre-images meanwhile, so the copy is
    /// exact at the zxid it began at, as learners and the log trim need. Encoded off the
    /// executor; every peer in `peers` is answered.
    fn capture_snapshot(self: &Rc<Self>, peers: Vec<u64>, sessions: Vec<(SessionId, i32)>) {
        use crate::storage::snapshot::{SnapshotCapture, TreeReplaced};
        // Begun here, not in the task: `sessions` are the ones at the zxid of this shard's
        // last applied commit, and a commit applied before the task first ran (a session
        // created, a tree replaced) would not be in them.
        let mut walk = {
            let mut st = self.state.borrow_mut();
            if st.tree.preimages_walk().is_some() {
                // The ZAB executor asks for one capture at a time.
                drop(st);
                for peer in peers {
                    self.send_to_zab(ToZab::SnapshotReady {
                        peer,
                        file: Err("another snapshot is being copied".into()),
                    });
                }
                return;
            }
            st.next_walk_id += 1;
            let walk_id = st.next_walk_id;
            SnapshotCapture::start_exact(&mut st.tree, sessions, walk_id)
        };
        let shard = self.clone();
        glommio::spawn_local(async move {
            let step_nodes = (shard.settings.config.corral.snapshot_step_nodes as usize).max(1);
            let image = loop {
                let done = walk.step_exact(&mut shard.state.borrow_mut().tree, step_nodes);
                match done {
                    Ok(false) => crate::runtime::yield_to_io().await,
                    Ok(true) => break walk.finish_exact(&mut shard.state.borrow_mut().tree),
                    Err(e) => break Err(e),
                }
            };
            let file = match image {
                Ok(image) => {
                    glommio::executor()
                        .spawn_blocking(move || {
                            image
                                .encode()
                                .map(bytes::Bytes::from)
                                .map_err(|e| e.to_string())
                        })
                        .await
                }
                Err(TreeReplaced) => Err(
                    "the replica was replaced by the leader's snapshot while it was copied".into(),
                ),
            };
            for peer in peers {
                shard.send_to_zab(ToZab::SnapshotReady {
                    peer,
                    file: file.clone(),
                });
            }
        })
        .detach();
    }

    /// Queues a message for the ZAB executor. Never blocks: the forwarder task awaits the
    /// cross-core channel, so the committed-stream task can never deadlock against it.
    /// Growth is bounded by the per-connection outstanding limit.
    pub fn send_to_zab(&self, msg: ToZab) {
        self.outbox.borrow_mut().push_back(msg);
        self.outbox_wake.notify();
    }

    /// Forwards queued messages to the ZAB executor, in order.
    pub async fn run_outbox(
        self: Rc<Self>,
        tx: glommio::channels::shared_channel::ConnectedSender<ToZab>,
    ) {
        loop {
            let next = self.outbox.borrow_mut().pop_front();
            match next {
                Some(msg) => {
                    if tx.send(msg).await.is_err() {
                        return;
                    }
                }
                None => self.outbox_wake.wait().await,
            }
        }
    }

    /// Sends the sessions touched since the last call, so the tracker defers their expiry.
    pub fn flush_touches(&self) {
        let sessions: Vec<SessionId> = self.state.borrow_mut().touched.drain().collect();
        if !sessions.is_empty() {
            self.send_to_zab(ToZab::Input(crate::zab::Input::Touch { sessions }));
        }
    }

    /// Handles one message from the ZAB executor.
    pub fn handle_from_zab(self: &Rc<Self>, msg: ToShard) {
        match msg {
            ToShard::Deliver(batch) => self.apply_batch(&batch),
            ToShard::Revalidated {
                origin,
                session_id,
                timeout_ms,
            } => self.finish_handshake(origin.conn, session_id, timeout_ms, false),
            ToShard::SessionMoved { session_id, keep } => {
                let st = self.state.borrow();
                if let Some(cid) = st.by_session.get(&session_id) {
                    if keep != self.origin(*cid) {
                        if let Some(c) = st.conns.get(cid) {
                            tracing::info!(
                                session = format_args!("0x{session_id:x}"),
                                "session moved to another connection; closing this one"
                            );
                            c.close();
                        }
                    }
                }
            }
            ToShard::ReadOnlySession {
                origin,
                session_id,
                timeout_ms,
            } => self.finish_handshake(origin.conn, session_id, Some(timeout_ms), true),
            ToShard::Refuse { origin } => {
                if let Some(c) = self.state.borrow().conns.get(&origin.conn) {
                    tracing::debug!(peer = %c.peer, "not serving: connection refused");
                    c.close();
                }
            }
            ToShard::Fail { reply_to, err } => self.fail_write(reply_to, err),
            ToShard::CloseReadOnly => {
                for c in self.state.borrow().conns.values() {
                    if c.st.borrow().read_only {
                        c.close();
                    }
                }
            }
            ToShard::CloseAll => {
                let st = self.state.borrow();
                if !st.conns.is_empty() {
                    tracing::info!(
                        connections = st.conns.len(),
                        "lost the leader: closing client connections"
                    );
                }
                for c in st.conns.values() {
                    c.close();
                }
            }
            ToShard::CaptureSnapshot { peers, sessions } => self.capture_snapshot(peers, sessions),
            ToShard::ConfigNode {
                data,
                version_zxid,
                time_ms,
            } => {
                // Before the server serves its role: no client watches the node yet.
                self.state
                    .borrow_mut()
                    .tree
                    .set_config_node(data, version_zxid, time_ms);
            }
            ToShard::ReplaceTree(tree) => {
                let mut st = self.state.borrow_mut();
                st.tree = *tree;
                st.watches = WatchRegistry::default();
                st.lagging.clear();
            }
            ToShard::ReportRequest { query_id } => {
                let report = self.report();
                self.send_to_zab(ToZab::Report {
                    query_id,
                    report: Box::new(report),
                });
            }
            ToShard::Gathered {
                query_id,
                reports,
                zab,
            } => {
                let tx = self.state.borrow_mut().queries.remove(&query_id);
                if let Some(tx) = tx {
                    let _ = tx.try_send(crate::server::fourlw::Gathered { reports, zab });
                }
            }
        }
    }

    fn apply_batch(&self, batch: &[Committed]) {
        let now_ms = crate::runtime::now_ms();
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let mut woken: Vec<Rc<Conn>> = Vec::new();
        for c in batch {
            let result = match &c.rec {
                Some(rec) => {
                    st.scratch_triggers.clear();
                    let r = st.tree.apply(rec, &mut st.scratch_triggers);
                    self.fire_watches(st, &mut woken);
                    if let crate::tree::Txn::CloseSession { .. } = rec.txn {
                        self.end_session(st, rec.session_id, c.reply_to.map(|r| r.origin.conn));
                    }
                    Some((r, rec.session_id))
                }
                None => None,
            };
            let Some(reply_to) = c.reply_to else { continue };
            if reply_to.origin.shard != self.id {
                continue;
            }
            let Some(conn) = st.conns.get(&reply_to.origin.conn).cloned() else {
                continue;
            };
            match result {
                Some((OpResult::SessionCreated, session_id)) => {
                    self.finish_new_session(st, &conn, session_id);
                }
                other => {
                    let op_result = other.map(|(r, _)| r);
                    let sync_path = c.sync_path.as_deref();
                    self.answer_write(st, &conn, reply_to, op_result, sync_path, now_ms);
                }
            }
            woken.push(conn);
        }
        // Reads that waited for this replica to catch up.
        for cid in std::mem::take(&mut st.lagging) {
            if let Some(conn) = st.conns.get(&cid).cloned() {
                self.serve_queued(st, &conn);
                woken.push(conn);
            }
        }
        for c in &woken {
            self.limit_output(c, &mut c.st.borrow_mut());
        }
        self.release_throttled(st);
        for c in woken {
            c.wake.notify();
        }
    }

    /// Answers a write that was refused before it was ordered (no zxid, nothing applied)
    /// with `err`, in the connection's order like any answer.
    fn fail_write(&self, reply_to: crate::zab::ReplyTo, err: crate::proto::ErrorCode) {
        if reply_to.origin.shard != self.id {
            return;
        }
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let Some(conn) = st.conns.get(&reply_to.origin.conn).cloned() else {
            return;
        };
        let now_ms = crate::runtime::now_ms();
        self.answer_write(
            st,
            &conn,
            reply_to,
            Some(OpResult::Error(err)),
            None,
            now_ms,
        );
        self.limit_output(&conn, &mut conn.st.borrow_mut());
        self.release_throttled(st);
        conn.wake.notify();
    }

    /// Whether a connection must stop reading: its shard holds its share of
    /// `globalOutstandingLimit` and the connection has a request of its own outstanding.
    /// As in ZooKeeper, a connection with nothing outstanding may always send one more, so
    /// an idle client is never starved by busy ones.
    pub fn must_throttle(&self, st: &ShardState, cs: &ConnState) -> bool {
        !cs.slots.is_empty() && st.outstanding >= self.settings.outstanding_per_shard_max
    }

    /// Records that `conn` stopped reading under [`Self::must_throttle`], to be woken by
    /// [`Self::release_throttled`].
    pub fn throttle(&self, st: &mut ShardState, conn: &Rc<Conn>) {
        let mut cs = conn.st.borrow_mut();
        if !cs.throttled {
            cs.throttled = true;
            st.throttled.push(conn.clone());
        }
    }

    /// Wakes the throttled connections once the shard is below its share again.
    pub fn release_throttled(&self, st: &mut ShardState) {
        if st.outstanding >= self.settings.outstanding_per_shard_max {
            return;
        }
        for c in st.throttled.drain(..) {
            c.st.borrow_mut().throttled = false;
            c.wake.notify();
        }
    }

    /// Enforces `corral.client.maxOutputBytes` after output was queued for `conn`: over
    /// it, the output is dropped (its memory freed now, not when the task runs) and the
    /// connection closes. True if the connection is over the limit.
    pub fn limit_output(&self, conn: &Conn, cs: &mut ConnState) -> bool {
        if cs.overflowed_bytes.is_some() {
            return true;
        }
        if cs.out.len() <= self.settings.max_output_bytes {
            return false;
        }
        cs.overflowed_bytes = Some(cs.out.len());
        cs.out = BytesMut::new();
        cs.closing = true;
        conn.wake.notify();
        true
    }

    /// The zxid a read arriving now must see: everything committed so far. Reading it
    /// after the request arrived makes a single server linearizable for reads, as
    /// ZooKeeper's single pipeline is, even across shards.
    pub fn committed_zxid(&self) -> i64 {
        self.shared
            .committed_zxid
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn fire_watches(&self, st: &mut ShardState, woken: &mut Vec<Rc<Conn>>) {
        if st.watches.watch_count() == 0 {
            return;
        }
        for t in std::mem::take(&mut st.scratch_triggers) {
            let mut conns = std::mem::take(&mut st.scratch_conns);
            st.watches.trigger(&t.path, t.event_type, &mut conns);
            for cid in &conns {
                if let Some(conn) = st.conns.get(cid) {
                    let mut cs = conn.st.borrow_mut();
                    if cs.overflowed_bytes.is_some() {
                        // Being closed for not reading: the event has nowhere to go.
                        continue;
                    }
                    // Only a watcher that may read the node hears of it; the one-shot
                    // watch is used up either way, as in ZooKeeper.
                    let skip_acl = self.settings.prep.skip_acl;
                    if !crate::tree::acl::check(&t.acl, perms::READ, &cs.auth_ids, skip_acl) {
                        continue;
                    }
                    reply::notification(&mut cs.out, t.event_type, &t.path);
                    cs.sent += 1;
                    st.counters.packets_sent += 1;
                    self.limit_output(conn, &mut cs);
                    woken.push(conn.clone());
                }
            }
            st.scratch_conns = conns;
        }
    }

    /// A session ended (closed or expired): its connection here goes, after the reply
    /// to its own closeSession if that is what ended it.
    fn end_session(&self, st: &mut ShardState, session_id: SessionId, asking_conn: Option<ConnId>) {
        let Some(cid) = st.by_session.remove(&session_id) else {
            return;
        };
        if Some(cid) == asking_conn {
            // Closed after the reply is encoded (answer_write sees CloseSession).
            st.by_session.insert(session_id, cid);
            return;
        }
        if let Some(c) = st.conns.get(&cid) {
            c.close();
        }
    }

    fn finish_new_session(&self, st: &mut ShardState, conn: &Rc<Conn>, session_id: SessionId) {
        let mut cs = conn.st.borrow_mut();
        let Handshake::Pending { read_only } = cs.handshake else {
            return;
        };
        cs.handshake = Handshake::Done;
        cs.session_id = session_id;
        st.by_session.insert(session_id, conn.id);
        let timeout_ms = cs.timeout_ms;
        reply::connect_response(
            &mut cs.out,
            timeout_ms,
            session_id,
            &crate::session::password_for(session_id),
            read_only.map(|_| false),
        );
        drop(cs);
        tracing::debug!(session = format_args!("0x{session_id:x}"), peer = %conn.peer, "session established");
        self.serve_queued(st, conn);
    }

    /// Answers a resumed session (`timeout_ms` None: unknown or wrong password), or a
    /// read-only one.
    fn finish_handshake(
        &self,
        cid: ConnId,
        session_id: SessionId,
        timeout_ms: Option<i32>,
        read_only_session: bool,
    ) {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let Some(conn) = st.conns.get(&cid).cloned() else {
            return;
        };
        {
            let mut cs = conn.st.borrow_mut();
            let Handshake::Pending { read_only } = cs.handshake else {
                return;
            };
            match timeout_ms {
                Some(t) => {
                    cs.handshake = Handshake::Done;
                    cs.session_id = session_id;
                    cs.timeout_ms = t;
                    cs.read_only = read_only_session;
                    reply::connect_response(
                        &mut cs.out,
                        t,
                        session_id,
                        &crate::session::password_for(session_id),
                        read_only.map(|_| read_only_session),
                    );
                }
                None => {
                    // ZooKeeper's answer to an unknown session or a wrong password.
                    reply::connect_response(&mut cs.out, 0, 0, &[0; 16], read_only.map(|_| false));
                    cs.closing = true;
                }
            }
        }
        if timeout_ms.is_some() {
            if let Some(old) = st.by_session.insert(session_id, cid) {
                if old != cid {
                    if let Some(c) = st.conns.get(&old) {
                        c.close();
                    }
                }
            }
            self.serve_queued(st, &conn);
        }
        conn.wake.notify();
    }

    fn answer_write(
        &self,
        st: &mut ShardState,
        conn: &Rc<Conn>,
        reply_to: crate::zab::ReplyTo,
        result: Option<OpResult>,
        sync_path: Option<&str>,
        now_ms: i64,
    ) {
        let (xid, op) = (reply_to.xid, reply_to.op);
        let mut cs = conn.st.borrow_mut();
        let slot = cs.slots.pop_front();
        st.outstanding -= usize::from(slot.is_some());
        match slot {
            Some(Slot::Write { xid: expected, .. }) if expected == xid => {}
            other => {
                // Commits of a connection come back in its order; if one ever does not,
                // its replies can no longer be matched: the client is cut off (it
                // reconnects, its session intact) rather than the shard stopped.
                tracing::error!(
                    xid,
                    next_slot = ?other,
                    "an answer out of the connection's order; closing it"
                );
                drop(cs);
                conn.close();
                return;
            }
        }
        let zxid = st.tree.last_zxid();
        if op == crate::proto::op::SYNC {
            reply::sync_response(&mut cs.out, xid, zxid, sync_path.unwrap_or("/"));
        } else if let Some(r) = result {
            reply::write_response(&mut cs.out, xid, zxid, op, &r);
        }
        let started = cs.write_started_ms.pop_front().unwrap_or(now_ms);
        record_latency(&mut cs, &mut st.counters, now_ms - started, now_ms);
        st.stats
            .write_latency_ms
            .record((now_ms - started).max(0) as u64);
        cs.last_zxid = zxid;
        cs.sent += 1;
        st.counters.packets_sent += 1;
        if op == crate::proto::op::CLOSE_SESSION {
            cs.closing = true;
            let sid = cs.session_id;
            drop(cs);
            st.by_session.remove(&sid);
            return;
        }
        drop(cs);
        self.serve_queued(st, conn);
    }

    /// Serves reads that were waiting behind writes, up to the next write.
    pub fn serve_queued(&self, st: &mut ShardState, conn: &Rc<Conn>) {
        loop {
            let mut cs = conn.st.borrow_mut();
            if cs.handshake != Handshake::Done {
                return;
            }
            match cs.slots.front() {
                Some(Slot::Read { min_zxid, .. }) if *min_zxid > st.tree.last_zxid() => {
                    st.lagging.insert(conn.id);
                    return;
                }
                Some(Slot::Read { .. }) => {}
                _ => return,
            }
            let Some(Slot::Read {
                xid,
                req,
                received_ms,
                ..
            }) = cs.slots.pop_front()
            else {
                return;
            };
            st.outstanding -= 1;
            drop(cs);
            // Served here, not through `dispatch`: a queued read has already waited its
            // turn, and sending it back through the queue would put it behind later
            // requests (and two queued reads would swap places forever).
            self.serve_read(st, conn, xid, req, received_ms);
        }
    }

    /// Answers a read from the replica now, and counts it.
    fn serve_read(
        &self,
        st: &mut ShardState,
        conn: &Rc<Conn>,
        xid: i32,
        req: crate::proto::Request,
        received_ms: i64,
    ) {
        let now_ms = crate::runtime::now_ms();
        read::serve(self, st, conn, xid, req);
        let mut cs = conn.st.borrow_mut();
        record_latency(&mut cs, &mut st.counters, now_ms - received_ms, now_ms);
        st.stats
            .read_latency_ms
            .record((now_ms - received_ms).max(0) as u64);
        cs.last_zxid = st.tree.last_zxid();
        cs.sent += 1;
        st.counters.packets_sent += 1;
    }

    /// Routes one decoded request: writes to the ZAB executor, reads answered here.
    pub fn dispatch(
        &self,
        st: &mut ShardState,
        conn: &Rc<Conn>,
        xid: i32,
        req: crate::proto::Request,
        received_ms: i64,
    ) {
        use crate::proto::Request as R;
        let mut cs = conn.st.borrow_mut();
        st.touched.insert(cs.session_id);
        let min_zxid = self.committed_zxid();
        let must_wait = !cs.slots.is_empty() || st.tree.last_zxid() < min_zxid;
        if cs.read_only && (req.is_write() || matches!(req, R::Sync(_))) {
            // A read-only session: nothing commits while the server is cut off, so every
            // reply is immediate and stays in order.
            let zxid = st.tree.last_zxid();
            match req {
                R::Sync(path) => reply::sync_response(&mut cs.out, xid, zxid, &path),
                R::CloseSession => {
                    reply::header_only(&mut cs.out, xid, zxid, crate::proto::ErrorCode::Ok);
                    cs.closing = true;
                }
                _ => {
                    reply::header_only(&mut cs.out, xid, zxid, crate::proto::ErrorCode::NotReadOnly)
                }
            }
            cs.sent += 1;
            st.counters.packets_sent += 1;
            return;
        }
        match req {
            R::Sync(path) => {
                cs.slots.push_back(Slot::Write {
                    xid,
                    op: crate::proto::op::SYNC,
                });
                st.outstanding += 1;
                cs.write_started_ms.push_back(received_ms);
                drop(cs);
                self.send_to_zab(ToZab::Input(crate::zab::Input::Sync {
                    reply_to: crate::zab::ReplyTo {
                        origin: self.origin(conn.id),
                        xid,
                        op: crate::proto::op::SYNC,
                    },
                    path,
                }));
            }
            req if req.is_write() => {
                let op = req.op();
                cs.slots.push_back(Slot::Write { xid, op });
                st.outstanding += 1;
                cs.write_started_ms.push_back(received_ms);
                let session_id = cs.session_id;
                let auth_ids = cs.auth_ids.clone();
                drop(cs);
                self.send_to_zab(ToZab::Input(crate::zab::Input::Write {
                    reply_to: crate::zab::ReplyTo {
                        origin: self.origin(conn.id),
                        xid,
                        op,
                    },
                    session_id,
                    auth_ids,
                    req,
                }));
            }
            req if must_wait => {
                cs.slots.push_back(Slot::Read {
                    xid,
                    req,
                    received_ms,
                    min_zxid,
                });
                st.outstanding += 1;
                if cs.slots.len() == 1 {
                    st.lagging.insert(conn.id);
                }
            }
            req => {
                drop(cs);
                self.serve_read(st, conn, xid, req, received_ms);
            }
        }
    }

    /// A snapshot of this shard for four-letter words.
    pub fn report(&self) -> ShardReport {
        let st = self.state.borrow();
        let mut conns = Vec::with_capacity(st.conns.len());
        let mut outstanding = 0;
        for c in st.conns.values() {
            let cs = c.st.borrow();
            outstanding += cs.slots.len();
            conns.push(ConnReport {
                peer: Some(c.peer),
                session_id: cs.session_id,
                timeout_ms: cs.timeout_ms,
                queued: cs.slots.len(),
                received: cs.received,
                sent: cs.sent,
                last_op: cs.last_op,
                established_ms: c.established_ms,
                last_cxid: cs.last_cxid,
                last_zxid: cs.last_zxid,
                last_response_ms: cs.last_response_ms,
                last_latency_ms: cs.last_latency_ms,
                min_latency_ms: if cs.latency_count == 0 {
                    0
                } else {
                    cs.latency_min_ms
                },
                avg_latency_ms: if cs.latency_count == 0 {
                    0.0
                } else {
                    cs.latency_sum_ms as f64 / cs.latency_count as f64
                },
                max_latency_ms: cs.latency_max_ms,
                watched_paths: st.watches.paths_of(c.id),
            });
        }
        debug_assert_eq!(
            outstanding, st.outstanding,
            "outstanding requests miscounted"
        );
        conns.sort_by_key(|c| c.established_ms);
        let session_of = |cid: &ConnId| {
            st.conns
                .get(cid)
                .map(|c| c.st.borrow().session_id)
                .unwrap_or(0)
        };
        let watchers_by_path = st
            .watches
            .by_path_all()
            .into_iter()
            .map(|(p, cids)| (p, cids.iter().map(session_of).collect()))
            .collect();
        ShardReport {
            shard: self.id,
            conns,
            counters: st.counters,
            outstanding,
            watch_count: st.watches.watch_count(),
            reported_watch_count: st.watches.reported_watch_count(),
            watch_paths: st.watches.path_count(),
            watch_conns: st.watches.connection_count(),
            watchers_by_path,
            last_zxid: st.tree.last_zxid(),
            stats: crate::metrics::ShardStats {
                response_sizes: crate::metrics::response_sizes(),
                ..st.stats.clone()
            },
        }
    }
}

fn record_latency(cs: &mut ConnState, counters: &mut ShardCounters, latency_ms: i64, now_ms: i64) {
    let latency_ms = latency_ms.max(0);
    cs.last_latency_ms = latency_ms;
    cs.last_response_ms = now_ms;
    cs.latency_count += 1;
    cs.latency_sum_ms += latency_ms;
    cs.latency_min_ms = if cs.latency_count == 1 {
        latency_ms
    } else {
        cs.latency_min_ms.min(latency_ms)
    };
    cs.latency_max_ms = cs.latency_max_ms.max(latency_ms);
    counters.latency_count += 1;
    counters.latency_sum_ms += latency_ms;
    counters.latency_min_ms = counters.latency_min_ms.min(latency_ms);
    counters.latency_max_ms = counters.latency_max_ms.max(latency_ms);
}

#[cfg(test)]
mod tests {
    use super::{ClientCount, Refused};
    use std::net::IpAddr;

    #[test]
    fn client_count_limits_per_ip_and_in_total() {
        let count = ClientCount::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        assert_eq!(count.admit(a, 2, 3), Ok(()));
        assert_eq!(count.admit(a, 2, 3), Ok(()));
        assert_eq!(count.admit(a, 2, 3), Err(Refused::PerIp { limit: 2 }));
        assert_eq!(count.admit(b, 2, 3), Ok(()));
        assert_eq!(count.admit(b, 2, 3), Err(Refused::Total { limit: 3 }));
        count.release(a);
        assert_eq!(count.admit(b, 2, 3), Ok(()));
        assert_eq!(count.admit(a, 2, 3), Err(Refused::Total { limit: 3 }));
        // 0 = unlimited, for both.
        for _ in 0..100 {
            assert_eq!(count.admit(a, 0, 0), Ok(()));
        }
    }

    #[test]
    #[should_panic(expected = "never admitted")]
    fn client_count_release_without_admit_is_a_bug() {
        ClientCount::default().release([10, 0, 0, 1].into());
    }
}
