//! One server node: starts the ZAB executor and the shard executors, wires them together
//! and drives the sans-IO sequencer with real time and real channels.
//!
//! Executors and what they own:
//! - `zab` (one): the [`Sequencer`] (validation, zxids, sessions, its copy of the tree)
//!   and the four-letter-word gather. Inputs from all shards arrive on one inbox.
//! - `shard-N` (one per configured core): a listener on the client port (SO_REUSEPORT, so
//!   the kernel spreads connections), the connections, a tree replica and the watches.
//!
//! Channels are glommio shared channels (bounded, one per direction per shard). The ZAB
//! executor only ever awaits sends *to* shards, and shards never block on sends to it
//! (their outbox is drained by a separate task), so no cycle of waits exists.

pub mod admin;
pub mod commit;
pub mod fourlw;
pub mod http;
mod log_sync;
pub mod msg;
pub mod peers;
mod replicated;
pub mod settings;

use crate::runtime::{executor_builder, now_ms, Notify, SHARD_IO_MEMORY_BYTES};
use crate::shard::ShardCtx;
use crate::storage::snapshot::SnapshotCapture;
use crate::zab::{Action, Committed, Origin, ReplyTo, Sequencer, SequencerConfig};
use commit::CommitPolicy;
use glommio::channels::shared_channel::{self, ConnectedSender};
use log_sync::InFlightSync;
use msg::{ShardReport, ToShard, ToZab, ZabReport};
use settings::Settings;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The one fact all executors share: the highest zxid the ZAB executor has committed
/// and handed to the shards. Written by the ZAB executor only (before it sends the
/// batch), read by shards on each read to decide whether their replica is fresh enough.
#[derive(Debug, Default)]
pub struct Shared {
    pub committed_zxid: std::sync::atomic::AtomicI64,
    /// A replicated server cut off from its quorum serves read-only sessions (`isro`).
    pub read_only: std::sync::atomic::AtomicBool,
    /// Open client connections per IP and in total (`maxClientCnxns`, `maxCnxns`).
    pub clients: crate::shard::ClientCount,
}

/// Capacity of each cross-executor channel, in messages. glommio fills every slot when it
/// makes the channel, so this is resident memory from the start (a `ToZab` slot is ~200
/// bytes): 1024 is four of the ZAB loop's default turns (`corral.commit.maxBatch` 256). A
/// full channel only delays: a shard queues what does not fit in its outbox, and the ZAB
/// executor waits for room.
const CHANNEL_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot recover the data directory: {0}")]
    Recovery(#[from] crate::storage::OpenError),
    #[error("cannot start the metrics endpoint: {0}")]
    Http(#[from] http::BindError),
    #[error("cannot start executor {name}: {reason}")]
    Executor { name: String, reason: String },
}

/// How long a restart waits for the previous process's sockets to be released: io_uring
/// tears a dead process's ring down asynchronously, so its sockets can outlive it briefly.
const BIND_RETRY_MS_MAX: u64 = 10_000;

/// Checks the client port is free, waiting a little while it is held by a process that
/// just died. A port held by a live server stays "in use" and is reported as such.
fn probe_client_port(addr: std::net::SocketAddr) -> Result<(), StartError> {
    let started = std::time::Instant::now();
    loop {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => return Ok(()),
            Err(source)
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && started.elapsed() < Duration::from_millis(BIND_RETRY_MS_MAX) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(source) => return Err(StartError::Bind { addr, source }),
        }
    }
}

/// Runs a server until the process is stopped.
pub fn run(settings: Settings) -> Result<(), StartError> {
    // SO_REUSEPORT would let a second server silently share the port: probe first with a
    // plain socket so "address in use" is reported as ZooKeeper reports it.
    for addr in settings
        .client_addr
        .iter()
        .chain(settings.secure_client.as_ref().map(|s| &s.addr))
    {
        probe_client_port(*addr)?;
    }
    for dir in [&settings.data_dir, &settings.data_log_dir] {
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            path: dir.clone(),
            source,
        })?;
    }
    fourlw::mark_started();
    let recovery_started = std::time::Instant::now();
    // Recovery reads files with blocking I/O, once, before any executor runs.
    if let Some(q) = &settings.quorum {
        probe_client_port(q.mesh.listen)?;
    }
    let mut open_options = crate::storage::OpenOptions::new(settings.config_node_data.clone());
    // A replicated server's logged records may be proposals that never committed: ZAB
    // decides, once a leader is known.
    open_options.replay_log = settings.quorum.is_none();
    let recovered =
        crate::storage::open(&settings.data_dir, &settings.data_log_dir, &open_options)?;
    crate::metrics::set_startup(crate::metrics::Startup {
        recovery_ms: recovery_started.elapsed().as_millis() as u64,
        txns_replayed: recovered.replayed as u64,
        last_zxid: recovered.last_zxid,
    });
    tracing::info!(
        last_zxid = format_args!("{:#x}", recovered.last_zxid),
        replayed = recovered.replayed,
        sessions = recovered.sessions.len(),
        snapshot = ?recovered.snapshot,
        "recovered"
    );
    if !settings.config.force_sync {
        tracing::warn!("forceSync=no: writes are acknowledged before they reach the disk; a crash can lose them");
    }
    let mut http_listeners = Some(http::bind(&settings)?);
    let settings = Arc::new(settings);
    let shared = Arc::new(Shared::default());
    shared
        .committed_zxid
        .store(recovered.last_zxid, std::sync::atomic::Ordering::Release);
    let shards = settings.shard_pins.len();
    let mut to_zab_rx = Vec::new();
    let mut to_zab_tx = Vec::new();
    let mut to_shard_rx = Vec::new();
    let mut to_shard_tx = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = shared_channel::new_bounded::<ToZab>(CHANNEL_CAPACITY);
        to_zab_tx.push(tx);
        to_zab_rx.push(rx);
        let (tx, rx) = shared_channel::new_bounded::<ToShard>(CHANNEL_CAPACITY);
        to_shard_tx.push(tx);
        to_shard_rx.push(rx);
    }
    let start_err = |name: &str, e: glommio::GlommioError<()>| StartError::Executor {
        name: name.to_string(),
        reason: e.to_string(),
    };
    let zab_settings = settings.clone();
    let zab_shared = shared.clone();
    let mut shard_trees: Vec<crate::tree::DataTree> =
        (0..shards).map(|_| recovered.tree.clone()).collect();
    let zab_start = if settings.quorum.is_some() {
        Start::Replicated(replicated::ReplicatedStart {
            tree: recovered.tree,
            sessions: recovered.sessions,
            unapplied: recovered.unapplied,
            last_logged_zxid: recovered.last_logged_zxid,
            log_dir: recovered.log_dir,
            snap_dir: recovered.snap_dir,
        })
    } else {
        Start::Standalone(ZabStart {
            tree: recovered.tree,
            sessions: recovered.sessions,
            log_dir: recovered.log_dir,
            snap_dir: recovered.snap_dir,
        })
    };
    let mut zab_builder = executor_builder("zab", settings.zab_pin, settings.io_memory_bytes)
        .ring_depth(settings.io_ring_depth);
    if settings.config.corral.zab_spin_us > 0 {
        zab_builder = zab_builder.spin_before_park(Duration::from_micros(
            settings.config.corral.zab_spin_us as u64,
        ));
    }
    // corral.shards=0: shard 0 runs on the ZAB executor, beside the ZAB loop; its channels
    // work as between executors.
    let mut shard_on_zab = None;
    if settings.sessions_on_zab && !to_shard_rx.is_empty() && !shard_trees.is_empty() {
        shard_on_zab = Some((
            to_shard_rx.remove(0),
            to_zab_tx.remove(0),
            shard_trees.remove(0),
            settings.clone(),
            shared.clone(),
            http_listeners.take(),
        ));
    }
    let zab = crate::runtime::spawn_executor(zab_builder, move || async move {
        let zab_loop = async move {
            match zab_start {
                Start::Standalone(start) => {
                    run_zab(zab_settings, zab_shared, start, to_zab_rx, to_shard_tx).await
                }
                Start::Replicated(start) => {
                    replicated::run(zab_settings, zab_shared, start, to_zab_rx, to_shard_tx).await
                }
            }
        };
        let Some((rx, tx, tree, s, sh, http)) = shard_on_zab else {
            zab_loop.await;
            return Ok(());
        };
        glommio::spawn_local(zab_loop).detach();
        // The shard serves until the process ends; it returns only when it cannot start
        // (its listener), which ends the server as a shard executor's failure does.
        run_shard(0, s, sh, tree, rx, tx, http).await
    })
    .map_err(|e| start_err("zab", e))?;
    let mut handles = Vec::new();
    for (i, ((rx, tx), tree)) in to_shard_rx
        .into_iter()
        .zip(to_zab_tx)
        .zip(shard_trees)
        .enumerate()
    {
        let s = settings.clone();
        let sh = shared.clone();
        let name = format!("shard-{i}");
        // Shard 0 serves the admin and metrics endpoints.
        let http = if i == 0 { http_listeners.take() } else { None };
        let builder = executor_builder(&name, settings.shard_pins[i], SHARD_IO_MEMORY_BYTES)
            .ring_depth(settings.io_ring_depth);
        let h = crate::runtime::spawn_executor(builder, move || {
            run_shard(i, s, sh, tree, rx, tx, http)
        })
        .map_err(|e| start_err(&name, e))?;
        handles.push(h);
    }
    tracing::info!(
        addr = ?settings.client_addr,
        secure_addr = ?settings.secure_client.as_ref().map(|s| s.addr),
        shards,
        sessions_on_zab = settings.sessions_on_zab,
        mode = if settings.quorum.is_some() { "replicated" } else { "standalone" },
        "serving clients"
    );
    if settings.config.corral.release_startup_code {
        // This thread only waits for the executors from here on. Once they are past their
        // start, the code only start-up ran leaves the resident set (see
        // release_code_pages). Done here rather than on a thread of its own: a thread's end
        // runs C library code after the release and brings ~0.6 MiB of it back. An executor
        // that fails at start is reported after this wait.
        std::thread::sleep(CODE_RELEASE_AFTER_START);
        let release = crate::runtime::release_code_pages();
        tracing::debug!(?release, "start-up code released from the page tables");
    }
    for h in handles {
        match h.join() {
            Ok(Err(e)) => return Err(e),
            Ok(Ok(())) => {}
            Err(e) => {
                return Err(StartError::Executor {
                    name: "shard".into(),
                    reason: e.to_string(),
                })
            }
        }
    }
    match zab.join() {
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(()),
        Err(e) => Err(StartError::Executor {
            name: "zab".into(),
            reason: e.to_string(),
        }),
    }
}

/// How long after the executors are spawned the code pages only start-up ran are released:
/// time enough for their own set-up (listeners, the log's first spare segment).
const CODE_RELEASE_AFTER_START: Duration = Duration::from_secs(1);

async fn run_shard(
    id: usize,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    tree: crate::tree::DataTree,
    rx: shared_channel::SharedReceiver<ToShard>,
    tx: shared_channel::SharedSender<ToZab>,
    http: Option<http::Listeners>,
) -> Result<(), StartError> {
    let ctx = ShardCtx::new(id, settings.clone(), shared, tree);
    if let Some(listeners) = http {
        http::spawn(ctx.clone(), listeners);
    }
    let tx = tx.connect().await;
    let rx = rx.connect().await;
    glommio::spawn_local(ctx.clone().run_outbox(tx)).detach();
    let c = ctx.clone();
    glommio::spawn_local(async move {
        while let Some(msg) = rx.recv().await {
            c.handle_from_zab(msg);
        }
    })
    .detach();
    let c = ctx.clone();
    let touch_every = Duration::from_millis((settings.tick_ms as u64 / 2).clamp(10, 500));
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(touch_every).await;
            c.flush_touches();
        }
    })
    .detach();
    let backlog = settings.config.client_port_listen_backlog;
    if let Some(secure) = &settings.secure_client {
        let listener =
            crate::runtime::reuseport_listener(secure.addr, backlog).map_err(|source| {
                StartError::Bind {
                    addr: secure.addr,
                    source,
                }
            })?;
        glommio::spawn_local(accept_secure_clients(
            ctx.clone(),
            listener,
            secure.tls.clone(),
        ))
        .detach();
    }
    let Some(client_addr) = settings.client_addr else {
        // Only a secure client port: its accept task serves until the process stops.
        std::future::pending::<()>().await;
        return Ok(());
    };
    let listener = crate::runtime::reuseport_listener(client_addr, backlog).map_err(|source| {
        StartError::Bind {
            addr: client_addr,
            source,
        }
    })?;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(crate::shard::conn::serve(ctx.clone(), stream)).detach();
            }
            Err(e) => {
                // Out of file descriptors and similar: log, back off briefly, go on.
                tracing::warn!(error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Accepts on the secure client port; each connection's TLS handshake runs in its own task.
async fn accept_secure_clients(
    ctx: Rc<ShardCtx>,
    listener: glommio::net::TcpListener,
    tls: Arc<crate::tls::rustls::ServerConfig>,
) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(crate::tls::serve_client(ctx.clone(), stream, tls.clone()))
                    .detach();
            }
            Err(e) => {
                tracing::warn!(error = %e, "secure accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

struct PendingGather {
    origin_shard: usize,
    local_query_id: u64,
    detail: bool,
    reports: Vec<ShardReport>,
}

/// Four-letter-word gathers in progress on the ZAB executor: every shard is asked for its
/// report; once all answered, the asking shard gets them with the ZAB executor's own.
#[derive(Default)]
struct Gathers {
    pending: HashMap<u64, PendingGather>,
    next_id: u64,
}

impl Gathers {
    async fn start(
        &mut self,
        origin: crate::zab::Origin,
        query_id: u64,
        detail: bool,
        shards: &[ConnectedSender<ToShard>],
    ) {
        self.next_id += 1;
        self.pending.insert(
            self.next_id,
            PendingGather {
                origin_shard: origin.shard,
                local_query_id: query_id,
                detail,
                reports: Vec::new(),
            },
        );
        for s in shards {
            let _ = s
                .send(ToShard::ReportRequest {
                    query_id: self.next_id,
                })
                .await;
        }
    }

    async fn report(
        &mut self,
        query_id: u64,
        report: Box<ShardReport>,
        shards: &[ConnectedSender<ToShard>],
        zab_report: impl FnOnce(bool) -> ZabReport,
    ) {
        let done = match self.pending.get_mut(&query_id) {
            Some(g) => {
                g.reports.push(*report);
                g.reports.len() == shards.len()
            }
            None => false,
        };
        if !done {
            return;
        }
        if let Some(mut g) = self.pending.remove(&query_id) {
            g.reports.sort_by_key(|r| r.shard);
            let zab = Box::new(zab_report(g.detail));
            if let Some(s) = shards.get(g.origin_shard) {
                let _ = s
                    .send(ToShard::Gathered {
                        query_id: g.local_query_id,
                        reports: g.reports,
                        zab,
                    })
                    .await;
            }
        }
    }
}

/// How the ZAB executor runs: alone, or as a member of an ensemble.
enum Start {
    Standalone(ZabStart),
    Replicated(replicated::ReplicatedStart),
}

/// What the ZAB executor starts from: the recovered state and where its files live.
struct ZabStart {
    tree: crate::tree::DataTree,
    sessions: Vec<(i64, i32)>,
    log_dir: std::path::PathBuf,
    snap_dir: std::path::PathBuf,
}

/// A storage failure on the write path leaves no safe way on: ZooKeeper exits too
/// (its ExitCode 10, "txnlog error"). The one exception is a log disk without room for
/// the next batch ([`crate::storage::LogError::NoSpace`]), which a standalone server
/// survives (see [`DiskFull`]), and a member of an ensemble too (`replicated`'s module doc).
fn fatal_storage(what: &str, error: &dyn std::fmt::Display) -> ! {
    tracing::error!(%error, "{what}; exiting");
    std::process::exit(10)
}

/// The answer to writes a standalone server refuses while its log disk is full. ZooKeeper
/// has no disk-full code; `SystemError` (-1) says the server failed to carry the request
/// out, and no client retries it by itself (the Java client throws
/// `KeeperException.SystemErrorException`, kazoo `SystemZookeeperError`, the Rust
/// `zookeeper-client` `UnexpectedErrorCode(-1)`): unlike `ConnectionLoss` it tells the
/// application the write was not applied.
pub const DISK_FULL_ERROR: crate::proto::ErrorCode = crate::proto::ErrorCode::SystemError;

/// How often a server whose log disk is full tries the allocation again.
const DISK_FULL_PROBE_MS: i64 = 1000;

/// A log disk that had no room for a batch, standalone or replicated: since when, and
/// when to try the allocation again ([`crate::storage::txn_log::LogWriter::probe_space`]).
///
/// Standalone, until a probe finds room, writes and new sessions are refused at once
/// (nothing reaches the log, so nothing is fsynced in vain), while reads, watches, syncs,
/// pings and resumed sessions are served from the tree as it was at the last synced write.
/// Session expiry and container reaping wait (their closes and deletes are writes too), as
/// sessions do not expire in a ZooKeeper ensemble without a leader. A member of an
/// ensemble leaves it meanwhile (`replicated`'s module doc).
pub(super) struct DiskFull {
    since: std::time::Instant,
    /// When to probe next (ms since the epoch, the loops' clock).
    next_probe_ms: i64,
    /// Writes and new sessions refused since (standalone).
    refused: u64,
}

impl DiskFull {
    /// The disk was found full now, refusing the `refused` writes of that batch.
    pub(super) fn new(refused: u64) -> DiskFull {
        DiskFull {
            since: std::time::Instant::now(),
            next_probe_ms: now_ms() + DISK_FULL_PROBE_MS,
            refused,
        }
    }

    /// When the next probe is due (ms since the epoch).
    pub(super) fn next_probe_ms(&self) -> i64 {
        self.next_probe_ms
    }

    pub(super) fn probe_due(&self) -> bool {
        now_ms() >= self.next_probe_ms
    }

    /// The probe found no room: the next one in a second.
    pub(super) fn probe_failed(&mut self) {
        self.next_probe_ms = now_ms() + DISK_FULL_PROBE_MS;
    }

    /// How long the disk has been full (ms), for the log line when room returns.
    pub(super) fn full_ms(&self) -> u64 {
        self.since.elapsed().as_millis() as u64
    }
}

/// What the standalone ZAB executor sends the shards after a batch, in order: the
/// sequencer's actions, and the answers to requests refused while the log disk is full.
enum Out {
    Seq(Action),
    /// A write refused with [`DISK_FULL_ERROR`].
    Refused(ReplyTo),
    /// A new session refused: its connection is closed (the client tries again).
    RefusedSession(Origin),
}

/// Queues `action` after `actions`, joining a `Deliver` to a `Deliver` queued just before it:
/// the sequencer delivers after every input, so one turn of the loop would otherwise send
/// the shards one message per write, and each shard would make one pass over its
/// connections (apply, answer, wake the writer) per write instead of one per turn. Only
/// adjacent batches are joined, so the shards see every action in the same order.
fn push_action(actions: &mut Vec<Out>, action: Action) {
    let Action::Deliver(batch) = action else {
        actions.push(Out::Seq(action));
        return;
    };
    if let Some(Out::Seq(Action::Deliver(queued))) = actions.last_mut() {
        // Never shared before it is sent.
        if let Some(queued) = Arc::get_mut(queued) {
            queued.extend(entries_of(batch));
            return;
        }
    }
    actions.push(Out::Seq(Action::Deliver(batch)));
}

/// A batch's entries: moved out when the batch is not shared (as before it is sent),
/// copied when it is.
fn entries_of(batch: Arc<Vec<Committed>>) -> Vec<Committed> {
    Arc::try_unwrap(batch).unwrap_or_else(|shared| {
        shared
            .iter()
            .map(|c| Committed {
                rec: c.rec.clone(),
                reply_to: c.reply_to,
                sync_path: c.sync_path.clone(),
            })
            .collect()
    })
}

/// Refuses an input that would need the log while it is full; `None` for the inputs that
/// need none (syncs, resumed sessions, touches) and for ticks (expiry waits).
fn refuse_while_full(input: &crate::zab::Input) -> Option<Out> {
    match input {
        crate::zab::Input::Write { reply_to, .. } => Some(Out::Refused(*reply_to)),
        crate::zab::Input::CreateSession { origin, .. } => Some(Out::RefusedSession(*origin)),
        _ => None,
    }
}

/// A batch the log had no room for: every ordered txn in `actions` becomes a refusal
/// (their records were appended but never written), the sync barriers stay, in order.
fn refuse_unlogged(actions: Vec<Out>) -> Vec<Out> {
    let mut out = Vec::with_capacity(actions.len());
    for action in actions {
        let Out::Seq(Action::Deliver(batch)) = action else {
            out.push(action);
            continue;
        };
        let entries = entries_of(batch);
        let mut barriers: Vec<Committed> = Vec::new();
        for c in entries {
            if c.rec.is_none() {
                barriers.push(c);
                continue;
            }
            if !barriers.is_empty() {
                out.push(Out::Seq(Action::Deliver(Arc::new(std::mem::take(
                    &mut barriers,
                )))));
            }
            match c.reply_to {
                Some(r) if r.op == crate::proto::op::CREATE_SESSION => {
                    out.push(Out::RefusedSession(r.origin))
                }
                Some(r) => out.push(Out::Refused(r)),
                // An expiry's close or a container's delete: done again later.
                None => {}
            }
        }
        if !barriers.is_empty() {
            out.push(Out::Seq(Action::Deliver(Arc::new(barriers))));
        }
    }
    out
}

/// The sequencer rebuilt from this server's own files (the newest snapshot, then the log)
/// when its tree ran ahead of what may stay: a leader that lost its role with proposals
/// in flight (replicated: the logged records up to `up_to`, the last committed zxid, are
/// applied), or a standalone batch the log had no room for (the whole log is replayed: it
/// ends at the last synced zxid). Sessions come back from the files with fresh deadlines.
async fn rebuild_sequencer(
    settings: &Arc<Settings>,
    config_node_data: bytes::Bytes,
    up_to: i64,
) -> Sequencer {
    let s = settings.clone();
    let loaded = glommio::executor()
        .spawn_blocking(move || {
            let mut opts = crate::storage::OpenOptions::new(config_node_data);
            opts.replay_log = s.quorum.is_none();
            opts.repair = false;
            crate::storage::open(&s.data_dir, &s.data_log_dir, &opts)
        })
        .await;
    let recovered = match loaded {
        Ok(r) => r,
        Err(e) => fatal_storage("cannot reload the tree", &e),
    };
    let now = now_ms();
    let mut seq = new_sequencer(settings, recovered.tree);
    seq.restore_sessions(&recovered.sessions, now);
    for rec in recovered.unapplied {
        if rec.zxid <= up_to {
            seq.apply_committed(now, rec, None);
        }
    }
    let _ = seq.take_batch();
    tracing::info!(
        zxid = format_args!("{:#x}", seq.last_zxid()),
        "tree rebuilt at the last committed txn"
    );
    seq
}

async fn run_zab(
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    start: ZabStart,
    rxs: Vec<shared_channel::SharedReceiver<ToZab>>,
    txs: Vec<shared_channel::SharedSender<ToShard>>,
) {
    let (inbox, wake) = spawn_inbox(rxs);
    let shards = connect_shards(txs).await;
    spawn_ticks(&settings, &inbox, &wake);
    let mut seq = new_sequencer(&settings, start.tree);
    seq.restore_sessions(&start.sessions, now_ms());
    let cfg = &settings.config;
    let log_options = log_options(&settings);
    let mut log = match crate::storage::txn_log::LogWriter::open(
        &start.log_dir,
        log_options,
        seq.last_zxid(),
    )
    .await
    {
        Ok(log) => log,
        Err(e) => fatal_storage("cannot open the transaction log", &e),
    };
    let policy = Rc::new(RefCell::new(crate::storage::SnapshotPolicy::new(
        cfg.snap_count.max(2),
        cfg.snap_size_limit_kb,
        now_ms() as u64,
    )));
    let mut disk_full: Option<DiskFull> = None;
    let mut gathers = Gathers::default();
    let mut snapshot_walk: Option<(SnapshotCapture, Instant)> = None;
    // A finished walk's image, held until the log is durable up to the zxid the tree had
    // when the walk ended: a fuzzy image may show any change up to there, and recovery must
    // find every such change in the log (see `release_held_snapshot`).
    let mut held_snapshot: Option<HeldSnapshot> = None;
    // A fuzzy snapshot holds changes up to the end of its walk, so every record up to there
    // must be durable before the snapshot is written (the image is held until the log is
    // synced that far); that means durable only when each sync fdatasyncs. With
    // forceSync=no it does not, and the walk is done in one step as it starts, before any
    // input changes the tree (an exact copy at its zxid).
    let snapshot_step_nodes = if settings.config.force_sync {
        settings.config.corral.snapshot_step_nodes as usize
    } else {
        usize::MAX
    };
    let mut commit = CommitPolicy::new(
        settings.config.corral.commit_max_batch,
        settings.config.corral.commit_max_wait_us,
    );
    // Group commit, pipelined: one batch is written and synced by a task of its own
    // (`InFlightSync`) while this loop validates and appends the next one, and a batch's
    // answers go out only once its sync returned. The next batch's sync starts as soon as
    // the one in flight ends (unless `CommitPolicy` waits for more records), before the
    // ended one's answers are sent, so the disk is not idle while the executor delivers,
    // applies and answers.
    let mut in_flight: Option<(InFlightSync, Vec<Out>)> = None;
    // The answers for the records appended since the last sync began (and for inputs that
    // need no record), in the sequencer's order.
    let mut actions: Vec<Out> = Vec::new();
    // Records appended since the last sync began, and when the first of them was.
    let mut appended: usize = 0;
    let mut batch_started_at: Option<Instant> = None;
    // The batching policy's wait for more records, with no sync in flight: when it began,
    // and how long it has left as of the last turn.
    let mut policy_wait_started: Option<Instant> = None;
    let mut policy_wait_left_us: Option<u64> = None;
    loop {
        // Work is an input (while the next batch has room), the sync in flight ending, or
        // the end of the batching policy's wait.
        let sync_ended = in_flight
            .as_ref()
            .is_some_and(|(sync, _)| sync.is_finished());
        let batch_full = appended >= commit.max_batch_records();
        if !sync_ended && (batch_full || inbox.borrow().is_empty()) {
            match (&in_flight, policy_wait_left_us) {
                (Some((sync, _)), _) if batch_full => sync.wait().await,
                (None, Some(left_us)) => {
                    futures_lite::future::or(
                        wake.wait(),
                        glommio::timer::sleep(Duration::from_micros(left_us)),
                    )
                    .await
                }
                (None, None) if batch_full => {}
                _ => wake.wait().await,
            }
        }
        // The sync in flight ended: its records are durable, and its answers go out after
        // the next batch's sync has started (unless the batching policy waits for more).
        let mut durable_answers: Option<Vec<Out>> = None;
        if in_flight
            .as_ref()
            .is_some_and(|(sync, _)| sync.is_finished())
        {
            if let Some((sync, answers)) = in_flight.take() {
                let settled = sync.settle(&mut log).await;
                commit.synced(settled.records);
                if policy
                    .borrow_mut()
                    .after_sync(settled.records as u64, settled.batch_bytes)
                {
                    // The tree as ordered now, records not yet durable included: the
                    // snapshot is named by its last zxid (where recovery replays from), and
                    // the image is held until the log is durable up to the walk's end. The
                    // log goes on in its segment (no roll, unlike ZooKeeper: the rest of a
                    // segment left at a roll was zeroed for nothing, and writing zeros
                    // slows the log's own syncs; docs/storage.md).
                    let mut walk = SnapshotCapture::start(
                        seq.tree(),
                        seq.sessions().ids().map(|(id, s)| (*id, s.timeout_ms)),
                    );
                    // The first step before any input of this turn changes the tree: with
                    // forceSync=no the one step is the whole walk, exact at its zxid.
                    let started_at = Instant::now();
                    if walk.step(seq.tree(), snapshot_step_nodes) {
                        held_snapshot = Some(HeldSnapshot::of(walk, &seq, started_at));
                    } else {
                        snapshot_walk = Some((walk, started_at));
                    }
                }
                durable_answers = Some(answers);
            }
        }
        // Inputs, into the next batch (at most a batch's worth of records and refusals).
        let mut refused: usize = 0;
        while appended + refused < commit.max_batch_records() {
            let next = inbox.borrow_mut().pop_front();
            let Some(msg) = next else {
                break;
            };
            match msg {
                ToZab::Input(input) => {
                    if let Some(full) = disk_full.as_mut() {
                        if matches!(input, crate::zab::Input::Tick) {
                            continue;
                        }
                        if let Some(answer) = refuse_while_full(&input) {
                            full.refused += 1;
                            refused += 1;
                            actions.push(answer);
                            continue;
                        }
                    }
                    seq.handle(now_ms(), input);
                    while let Some(action) = seq.poll_action() {
                        if let Action::Deliver(batch) = &action {
                            for rec in batch.iter().filter_map(|c| c.rec.as_ref()) {
                                log.append(std::slice::from_ref(rec));
                                appended += 1;
                                batch_started_at.get_or_insert_with(Instant::now);
                            }
                        }
                        push_action(&mut actions, action);
                    }
                }
                ToZab::Gather {
                    origin,
                    query_id,
                    detail,
                } => gathers.start(origin, query_id, detail, &shards).await,
                ToZab::Report { query_id, report } => {
                    gathers
                        .report(query_id, report, &shards, |detail| {
                            zab_report(&seq, detail, "standalone", true)
                        })
                        .await
                }
                // Only a replicated server asks for snapshots to send.
                ToZab::SnapshotReady { .. } => {}
            }
        }
        if let Some(full) = disk_full.as_mut() {
            if full.probe_due() && !log.sync_in_flight() {
                match log.probe_space().await {
                    Ok(()) => {
                        tracing::info!(
                            path = %start.log_dir.display(),
                            full_ms = full.full_ms(),
                            refused = full.refused,
                            "log disk has room again; accepting writes"
                        );
                        disk_full = None;
                    }
                    Err(e) if e.is_no_space() => {
                        full.probe_failed();
                    }
                    Err(e) => fatal_storage("cannot allocate room in the transaction log", &e),
                }
            }
        }
        // With no sync in flight, the batch goes to disk now, unless the policy waits for
        // more records (`CommitPolicy`).
        policy_wait_left_us = None;
        if in_flight.is_none() && appended > 0 {
            let waited_us = policy_wait_started.map_or(0, |t| t.elapsed().as_micros() as u64);
            policy_wait_left_us = commit.wait_more_us(appended, waited_us);
            if policy_wait_left_us.is_some() {
                policy_wait_started.get_or_insert_with(Instant::now);
            } else {
                policy_wait_started = None;
                match log.start_sync().await {
                    Ok(Some(job)) => {
                        let started_at = batch_started_at.take().unwrap_or_else(Instant::now);
                        let sync = InFlightSync::spawn(job, appended, started_at, wake.clone());
                        in_flight = Some((sync, std::mem::take(&mut actions)));
                    }
                    Ok(None) => {}
                    Err(e) if e.is_no_space() => {
                        // Nothing of the batch reached the log (and no other sync is out):
                        // its writes are refused, and the sequencer's tree, which ran ahead
                        // by them, is rebuilt from the files.
                        tracing::error!(
                            path = %e.path().display(),
                            error = %e,
                            "log disk full; refusing writes until space returns"
                        );
                        // The batch that ended is durable: answered before the reload.
                        if let Some(answers) = durable_answers.take() {
                            send_actions(answers, &shards, &shared).await;
                        }
                        log.discard_pending();
                        actions = refuse_unlogged(std::mem::take(&mut actions));
                        let synced_zxid = log.synced_zxid();
                        let config_node_data = settings.config_node_data.clone();
                        seq = rebuild_sequencer(&settings, config_node_data, synced_zxid).await;
                        if seq.last_zxid() != synced_zxid {
                            fatal_storage(
                                "the log reloaded after a full disk does not end at the last synced zxid",
                                &format_args!("{:#x} != {synced_zxid:#x}", seq.last_zxid()),
                            );
                        }
                        disk_full = Some(DiskFull::new(appended as u64));
                        // A walk begun or ended since the last sync may show the refused
                        // writes; the next snapshot is taken afresh.
                        if snapshot_walk.take().is_some() | held_snapshot.take().is_some() {
                            policy.borrow_mut().snapshot_done();
                        }
                    }
                    Err(e) => fatal_storage("cannot sync the transaction log", &e),
                }
                appended = 0;
                batch_started_at = None;
            }
        }
        if let Some(answers) = durable_answers {
            send_actions(answers, &shards, &shared).await;
        }
        // Answers with no record behind them go out at once when nothing before them is
        // still on its way to disk.
        if in_flight.is_none() && appended == 0 && !actions.is_empty() {
            send_actions(std::mem::take(&mut actions), &shards, &shared).await;
        }
        // A snapshot in progress copies a bounded step of nodes per turn of the loop, so
        // writes keep flowing while it is taken (a fuzzy snapshot: see SnapshotCapture).
        if let Some((walk, _)) = snapshot_walk.as_mut() {
            if walk.step(seq.tree(), snapshot_step_nodes) {
                if let Some((walk, started_at)) = snapshot_walk.take() {
                    held_snapshot = Some(HeldSnapshot::of(walk, &seq, started_at));
                }
            } else {
                // Come back for the next step, after letting requests in (polled I/O:
                // `yield_to_io`, not a plain yield, which would run the whole walk first).
                wake.notify();
                crate::runtime::yield_to_io().await;
            }
        }
        release_held_snapshot(
            &mut held_snapshot,
            log.synced_zxid(),
            &start.snap_dir,
            &settings,
            &policy,
        );
    }
}

/// A standalone snapshot's image waiting for the log (see [`release_held_snapshot`]).
struct HeldSnapshot {
    image: crate::storage::snapshot::SnapshotImage,
    /// The tree's last ordered zxid when the walk ended: the image may show any change up
    /// to it.
    log_needed_to_zxid: i64,
    started_at: Instant,
}

impl HeldSnapshot {
    /// The image of a finished walk over `seq`'s tree, as it is now.
    fn of(walk: SnapshotCapture, seq: &Sequencer, started_at: Instant) -> HeldSnapshot {
        HeldSnapshot {
            image: walk.finish(),
            log_needed_to_zxid: seq.last_zxid(),
            started_at,
        }
    }
}

/// Writes a held snapshot once the log is durable up to the end of its walk (`synced_zxid`
/// is the last durable zxid). Published earlier, a crash could leave a snapshot showing
/// writes the log never kept, and replay would hand their zxids out again.
fn release_held_snapshot(
    held: &mut Option<HeldSnapshot>,
    synced_zxid: i64,
    snap_dir: &std::path::Path,
    settings: &Arc<Settings>,
    policy: &Rc<RefCell<crate::storage::SnapshotPolicy>>,
) {
    if held
        .as_ref()
        .is_none_or(|h| h.log_needed_to_zxid > synced_zxid)
    {
        return;
    }
    if let Some(h) = held.take() {
        write_snapshot_in_background(
            ToWrite::Image(h.image),
            snap_dir,
            settings,
            policy,
            h.started_at,
        );
    }
}

/// Sends a batch's answers to the shards, in order: deliveries (after publishing their last
/// zxid as committed), revalidated and moved sessions, refusals.
async fn send_actions(actions: Vec<Out>, shards: &[ConnectedSender<ToShard>], shared: &Shared) {
    for action in actions {
        let action = match action {
            Out::Seq(action) => action,
            Out::Refused(reply_to) => {
                if let Some(s) = shards.get(reply_to.origin.shard) {
                    let _ = s
                        .send(ToShard::Fail {
                            reply_to,
                            err: DISK_FULL_ERROR,
                        })
                        .await;
                }
                continue;
            }
            Out::RefusedSession(origin) => {
                if let Some(s) = shards.get(origin.shard) {
                    let _ = s.send(ToShard::Refuse { origin }).await;
                }
                continue;
            }
        };
        match action {
            Action::Deliver(batch) => {
                if let Some(zxid) = batch
                    .iter()
                    .rev()
                    .find_map(|c| c.rec.as_ref().map(|r| r.zxid))
                {
                    // Release: a shard that sees this zxid will find the batch behind it.
                    shared
                        .committed_zxid
                        .store(zxid, std::sync::atomic::Ordering::Release);
                }
                for s in shards {
                    let _ = s.send(ToShard::Deliver(batch.clone())).await;
                }
            }
            Action::Revalidated {
                origin,
                session_id,
                timeout_ms,
            } => {
                if let Some(s) = shards.get(origin.shard) {
                    let _ = s
                        .send(ToShard::Revalidated {
                            origin,
                            session_id,
                            timeout_ms,
                        })
                        .await;
                }
            }
            Action::SessionMoved { session_id, keep } => {
                for s in shards {
                    let _ = s.send(ToShard::SessionMoved { session_id, keep }).await;
                }
            }
        }
    }
}

type Inbox = Rc<RefCell<VecDeque<ToZab>>>;

/// One task per shard moves its messages into the ZAB executor's inbox and wakes the loop.
fn spawn_inbox(rxs: Vec<shared_channel::SharedReceiver<ToZab>>) -> (Inbox, Rc<Notify>) {
    let inbox: Inbox = Rc::new(RefCell::new(VecDeque::new()));
    let wake = Rc::new(Notify::default());
    for rx in rxs {
        let inbox = inbox.clone();
        let wake = wake.clone();
        glommio::spawn_local(async move {
            let rx = rx.connect().await;
            while let Some(m) = rx.recv().await {
                inbox.borrow_mut().push_back(m);
                wake.notify();
            }
        })
        .detach();
    }
    (inbox, wake)
}

async fn connect_shards(
    txs: Vec<shared_channel::SharedSender<ToShard>>,
) -> Vec<ConnectedSender<ToShard>> {
    let mut shards = Vec::with_capacity(txs.len());
    for tx in txs {
        shards.push(tx.connect().await);
    }
    shards
}

/// Queues a `Tick` (session expiry, container reaping) every tick, at most every 250 ms.
fn spawn_ticks(settings: &Settings, inbox: &Inbox, wake: &Rc<Notify>) {
    let inbox = inbox.clone();
    let wake = wake.clone();
    let every = Duration::from_millis((settings.tick_ms as u64).clamp(10, 250));
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(every).await;
            inbox
                .borrow_mut()
                .push_back(ToZab::Input(crate::zab::Input::Tick));
            wake.notify();
        }
    })
    .detach();
}

/// The transaction log's settings from zoo.cfg.
fn log_options(settings: &Settings) -> crate::storage::txn_log::LogOptions {
    let cfg = &settings.config;
    crate::storage::txn_log::LogOptions {
        pre_alloc_bytes: cfg.pre_alloc_kb * 1024,
        force_sync: cfg.force_sync,
        fsync_warning_threshold_ms: cfg.fsync_warning_threshold_ms,
        segment_bytes_max: cfg.txn_log_size_limit_kb.map(|kb| kb * 1024),
    }
}

fn new_sequencer(settings: &Settings, tree: crate::tree::DataTree) -> Sequencer {
    Sequencer::new(
        SequencerConfig {
            server_id: settings.server_id,
            tick_ms: settings.tick_ms,
            prep: settings.prep.clone(),
            container_check_interval_ms: settings.container_check_interval_ms,
            container_max_per_minute: settings.container_max_per_minute,
            container_max_never_used_interval_ms: settings.container_max_never_used_interval_ms,
            txn_bytes_max: crate::storage::txn_log::RECORD_BYTES_MAX,
        },
        tree,
        now_ms(),
    )
}

/// The membership a tree's `/zookeeper/config` holds (the one in force once a reconfig
/// committed); None when the node is missing or does not parse.
pub(crate) fn membership_in(tree: &crate::tree::DataTree) -> Option<crate::config::Membership> {
    let data = tree.get(crate::proto::CONFIG_PATH)?.data.clone()?;
    let text = std::str::from_utf8(&data).ok()?;
    crate::config::parse_membership_text(text).ok()
}

/// A snapshot to write: captured here (encoded on the way), or already encoded elsewhere.
enum ToWrite {
    Image(crate::storage::snapshot::SnapshotImage),
    File { zxid: i64, bytes: bytes::Bytes },
}

/// Encodes and writes a finished snapshot off the executor, then purges if configured.
fn write_snapshot_in_background(
    snapshot: ToWrite,
    snap_dir: &std::path::Path,
    settings: &Arc<Settings>,
    policy: &Rc<RefCell<crate::storage::SnapshotPolicy>>,
    started_at: std::time::Instant,
) {
    let dir = snap_dir.to_path_buf();
    let policy = policy.clone();
    let settings = settings.clone();
    glommio::spawn_local(async move {
        let (zxid, written) = match snapshot {
            ToWrite::Image(image) => (
                image.zxid,
                crate::storage::snapshot::write_snapshot_async(dir, image).await,
            ),
            ToWrite::File { zxid, bytes } => (
                zxid,
                glommio::executor()
                    .spawn_blocking(move || {
                        let written = crate::storage::snapshot::write_snapshot(&dir, zxid, &bytes);
                        drop(bytes);
                        crate::runtime::release_free_memory();
                        written
                    })
                    .await,
            ),
        };
        match written {
            Ok(path) => {
                crate::metrics::zab_snapshot_done(started_at, zxid, true);
                tracing::info!(snapshot = %path.display(), "snapshot written")
            }
            Err(e) => {
                crate::metrics::zab_snapshot_done(started_at, zxid, false);
                tracing::error!(error = %e, "snapshot failed; the log still holds everything")
            }
        }
        policy.borrow_mut().snapshot_done();
        let cfg = &settings.config;
        if cfg.autopurge_purge_interval_hours > 0 {
            let (data_dir, log_dir) = (settings.data_dir.clone(), settings.data_log_dir.clone());
            let retain = cfg.autopurge_snap_retain_count as usize;
            let purged = glommio::executor()
                .spawn_blocking(move || crate::storage::purge(&data_dir, &log_dir, retain))
                .await;
            if let Err(e) = purged {
                tracing::warn!(error = %e, "purge failed");
            }
        }
    })
    .detach();
}

/// The ZAB executor's part of a four-letter word / admin / metrics answer. The per-session
/// lists cost O(ephemerals + sessions) on this executor, so only `dump` (`detail`) asks.
fn zab_report(seq: &Sequencer, detail: bool, mode: &'static str, serving: bool) -> ZabReport {
    let tree = seq.tree();
    let (ephemerals, expiry_buckets) = if detail {
        let mut ephemerals: Vec<(i64, Vec<Arc<str>>)> = tree
            .ephemeral_sessions()
            .map(|(sid, paths)| (*sid, paths.iter().cloned().collect()))
            .collect();
        ephemerals.sort();
        let mut expiry_buckets: Vec<(i64, Vec<i64>)> = seq
            .sessions()
            .buckets()
            .map(|(at, ids)| {
                let mut v: Vec<i64> = ids.iter().copied().collect();
                v.sort_unstable();
                (*at, v)
            })
            .collect();
        expiry_buckets.sort();
        (ephemerals, expiry_buckets)
    } else {
        (Vec::new(), Vec::new())
    };
    ZabReport {
        mode,
        serving,
        proposal_sizes: None,
        quorum: None,
        last_zxid: seq.last_zxid(),
        node_count: tree.node_count(),
        approximate_data_bytes: tree.approximate_data_bytes(),
        session_count: seq.sessions().len(),
        ephemeral_count: tree.ephemeral_count(),
        ephemerals,
        expiry_buckets,
        stats: crate::metrics::zab_stats(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry answering `xid` on `conn`. No record: joining never looks inside one.
    fn entry(conn: u64, xid: i32) -> Committed {
        Committed {
            rec: None,
            reply_to: Some(ReplyTo {
                origin: Origin { shard: 0, conn },
                xid,
                op: crate::proto::op::SET_DATA,
            }),
            sync_path: None,
        }
    }

    fn deliver(entries: Vec<Committed>) -> Action {
        Action::Deliver(Arc::new(entries))
    }

    /// What `actions` would send the shards: per message, the xids of a Deliver, or a tag.
    fn shape(actions: &[Out]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Out::Seq(Action::Deliver(batch)) => format!(
                    "deliver {:?}",
                    batch
                        .iter()
                        .map(|c| c.reply_to.map_or(0, |r| r.xid))
                        .collect::<Vec<_>>()
                ),
                Out::Seq(Action::Revalidated { .. }) => "revalidated".into(),
                Out::Seq(Action::SessionMoved { .. }) => "moved".into(),
                Out::Refused(_) => "refused".into(),
                Out::RefusedSession(_) => "refused session".into(),
            })
            .collect()
    }

    #[test]
    fn adjacent_deliveries_go_to_the_shards_as_one_in_order() {
        let mut actions = Vec::new();
        push_action(&mut actions, deliver(vec![entry(1, 1)]));
        push_action(&mut actions, deliver(vec![entry(2, 2), entry(1, 3)]));
        push_action(
            &mut actions,
            Action::Revalidated {
                origin: Origin { shard: 0, conn: 3 },
                session_id: 7,
                timeout_ms: Some(4000),
            },
        );
        push_action(&mut actions, deliver(vec![entry(1, 4)]));
        actions.push(Out::Refused(ReplyTo {
            origin: Origin { shard: 0, conn: 2 },
            xid: 5,
            op: crate::proto::op::SET_DATA,
        }));
        push_action(&mut actions, deliver(vec![entry(2, 6)]));
        push_action(&mut actions, deliver(vec![entry(2, 7)]));
        assert_eq!(
            shape(&actions),
            [
                "deliver [1, 2, 3]",
                "revalidated",
                "deliver [4]",
                "refused",
                "deliver [6, 7]",
            ]
        );
    }

    #[test]
    fn a_delivery_already_shared_is_not_extended() {
        let shared = Arc::new(vec![entry(1, 1)]);
        let mut actions = vec![Out::Seq(Action::Deliver(shared.clone()))];
        push_action(&mut actions, deliver(vec![entry(1, 2)]));
        assert_eq!(shape(&actions), ["deliver [1]", "deliver [2]"]);
        assert_eq!(shared.len(), 1);
    }
}
