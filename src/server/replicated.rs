//! The ZAB executor of a replicated server: the election, the role it leads to (leader,
//! follower, observer), the quorum mesh, the log and the sequencer, driven with real time.
//!
//! The sans-IO machines decide; this loop performs. One turn of the loop:
//! 1. quorum events (messages, links down) go to the election or the role;
//! 2. client inputs from the shards: on the leader the [`Sequencer`] validates and orders
//!    them and each ordered txn is proposed ([`Leader::propose`]); on a learner they are
//!    forwarded to the leader (writes, syncs, new sessions; resumed sessions are checked
//!    with it) and answered when their commit comes back;
//! 3. timers (election, role);
//! 4. what committed so far goes to every shard in one batch, with the answers to the
//!    clients (a committed txn is on a quorum: no need to wait for this server's log);
//! 5. the log: when no sync is in flight, everything appended so far goes to disk in one
//!    write that returns once it is durable (group commit), in a task of its own; the loop
//!    does not wait for it, and what is appended meanwhile is the next batch. When it
//!    finishes, the role hears [`Input::LogSynced`] (a follower ACKs, the leader counts its
//!    own vote) at the start of the next turn, and what that committed goes to the shards.
//!
//! What each server keeps for the next role ([`Stored`]): the epochs (files), the log
//! records after the newest snapshot (`window`, the same records as on disk), how far the
//! log is synced and how far the tree applied (`committed`). The tree here (the
//! sequencer's) holds only committed txns on a learner; on the leader it runs ahead by the
//! proposals in flight (`pending`), and if the leader loses its role with proposals in
//! flight the tree is rebuilt from disk up to `committed`.
//!
//! A role change closes every client connection (as ZooKeeper's servers do when they stop
//! following or leading); while a server has no established role it refuses new sessions,
//! so clients move to a server that serves.
//!
//! Reconfig (`reconfigEnabled`): before validating a `reconfig` the leader hands the
//! sequencer what it is checked against (membership, one in flight, who is synced); an
//! ordered reconfig is marked on the [`Leader`] (old and new quorums); every server
//! activates a committed one as it delivers it (election, mesh, next roles, the dynamic
//! config file), and a learner whose kind changed looks again. See `docs/replication.md`,
//! "Dynamic reconfiguration".
//!
//! A full log disk: a sync that finds no room for its batch ([`crate::storage::LogError::NoSpace`])
//! reports nothing to the role (a follower never ACKs what is not on disk; a leader never
//! counts its own vote for it) and ends the role. The batch stays with the writer and the
//! records in `window`, as appended; the server then leaves the ensemble: it does not look
//! for a leader, answers no election notification and no FOLLOWERINFO (so it is neither
//! elected nor followed), and treats clients as any server without a role does. Once a
//! second it tries the allocation again; when there is room the batch is synced, the
//! tree of a former leader rebuilt at its last committed txn, and it looks for a leader,
//! which syncs it (DIFF, TRUNC or SNAP) as after any role change.
//!
//! Sessions moving between servers: the leader keeps which server each session was last
//! created or resumed on; a learner's write for a session that moved since fails with
//! SessionMoved and that learner closes the connection, as ZooKeeper 3.8 does.

use super::log_sync::InFlightSync;
use super::msg::{QuorumReport, ToShard, ToZab, ZabReport};
use super::settings::{QuorumSettings, Settings};
use super::{
    fatal_storage, log_options, new_sequencer, rebuild_sequencer, write_snapshot_in_background,
    zab_report, Gathers, ToWrite,
};
use crate::config::{Membership, Role as MemberRole};
use crate::jute::JStr;
use crate::proto::{op, Id, Request, SessionId, Zxid};
use crate::quorum::election::{Action as ElectionAction, Decision, ElectedRole, Election, Vote};
use crate::quorum::peer::{
    epoch_of, zxid_of, Action as PeerAction, HistoryReconfig, Input as PeerInput, Leader, Learner,
    Stored,
};
use crate::quorum::wire::{ForwardedRequest, Message};
use crate::quorum::ServerId;
use crate::runtime::now_ms;
use crate::runtime::Notify;
use crate::server::peers::{MeshEvent, PeerMesh};
use crate::storage::epoch::{ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE};
use crate::storage::txn_log::LogWriter;
use crate::tree::{Txn, TxnRecord};
use crate::zab::{Action as SeqAction, Committed, Input as SeqInput, Origin, ReplyTo, Sequencer};
use bytes::{Bytes, BytesMut};
use glommio::channels::shared_channel::ConnectedSender;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// What a replicated server starts from: the snapshot's tree and the logged records after
/// it, which ZAB commits (or truncates) once a leader is known.
pub(super) struct ReplicatedStart {
    pub tree: crate::tree::DataTree,
    pub sessions: Vec<(SessionId, i32)>,
    pub unapplied: Vec<TxnRecord>,
    pub last_logged_zxid: Zxid,
    pub log_dir: PathBuf,
    pub snap_dir: PathBuf,
}

/// The longest the loop sleeps without a timer due (timers are rechecked after it).
const IDLE_WAIT_MS_MAX: i64 = 1000;
/// How long a new or resuming session's handshake may wait for an election to end before
/// it is refused. An election takes a few hundred milliseconds; a client refused by every
/// server pauses a whole second before its next round (as ZooKeeper's clients do), so
/// holding the handshake instead lets a session resume as soon as a leader serves. Never
/// longer than a sixth of the session timeout: the Java client gives each of (say) four
/// servers two thirds of it divided by their number to answer, and must not time out here
/// when another server would serve it.
const HANDSHAKE_HOLD_MS: i64 = 1000;
/// How long a server cut off from its quorum waits before serving read-only sessions
/// (`readonlymode.enabled`; ZooKeeper waits max(2 s, tickTime) too).
const READ_ONLY_AFTER_MS_MIN: i64 = 2000;
/// Longest a leader removed by a reconfig waits for its queued messages to be written
/// before it closes its links.
const DRAIN_WAIT_MS: i64 = 1000;
/// Size of one SNAPCHUNK message.
const SNAP_CHUNK_BYTES: usize = 1 << 20;
/// Snapshot bytes queued for a learner at a time (the mesh drops messages for a peer whose
/// queue passes its bound; the rest follows as the queue drains).
const SNAP_QUEUED_BYTES_MAX: usize = 8 << 20;
/// The largest snapshot a learner accepts from its leader (it is held in memory while it
/// arrives).
const SNAP_RECEIVED_BYTES_MAX: u64 = 16 << 30;
/// How often the loop looks at a snapshot transfer's queue.
const SNAP_POLL_MS: i64 = 5;

/// Records a snapshot let go that leave the in-memory window per turn of the loop. Freeing
/// them all at once (up to `snapCount` records: 50 000–100 000 by default) held the ZAB
/// executor for ~70 ms at every snapshot under load, and a leader's commits with it; at
/// ~1 µs a record this is a fraction of a millisecond a turn.
const WINDOW_TRIM_PER_TURN: usize = 256;

/// A snapshot on its way to a learner. Until it is all queued, everything else the role
/// sends that learner waits here, so the learner sees SNAP, the chunks, then the stream.
struct SnapTransfer {
    /// The zxid the leader's sync announced (the snapshot may be a little newer).
    announced_zxid: Zxid,
    /// The file, once shard 0 captured and encoded it.
    file: Option<Bytes>,
    sent_bytes: usize,
    held: Vec<Message>,
}

/// A snapshot a learner is receiving from its leader.
struct SnapInstall {
    from: ServerId,
    announced_zxid: Zxid,
    expected_bytes: u64,
    buf: Vec<u8>,
}

enum Role {
    Looking,
    Leading(Leader),
    Learning(Learner),
}

struct Node {
    settings: Arc<Settings>,
    q: QuorumSettings,
    shared: Arc<super::Shared>,
    mesh: Rc<PeerMesh>,
    shards: Vec<ConnectedSender<ToShard>>,
    election: Election,
    role: Role,
    seq: Sequencer,
    log: LogWriter,
    snap_dir: PathBuf,
    accepted_epoch: u64,
    current_epoch: u64,
    /// Every txn up to this zxid is in the tree and `window` holds the logged records after
    /// it: the newest snapshot's zxid, or lower while the records that snapshot covers
    /// still leave `window` (see [`Node::trim_window`]).
    window_base: Zxid,
    /// Logged records after `window_base`, in zxid order (as on disk).
    window: VecDeque<(Zxid, Bytes)>,
    /// The newest snapshot's zxid: `window_base` moves up to it as `trim_window` drops
    /// the records it covers.
    window_trim_to: Zxid,
    /// The last committed zxid applied to the tree.
    committed: Zxid,
    /// Leader: ordered txns (and sync barriers) not yet committed, in order.
    pending: VecDeque<Committed>,
    /// Learner: writes forwarded for local sessions, answered when they commit.
    waiting_replies: HashMap<SessionId, VecDeque<ReplyTo>>,
    waiting_creates: HashMap<SessionId, Origin>,
    waiting_syncs: VecDeque<(ReplyTo, JStr)>,
    waiting_revalidations: HashMap<SessionId, VecDeque<(Origin, i32)>>,
    /// Learner: sessions active since the last ping to the leader.
    touches: HashSet<SessionId>,
    /// Committed entries for the shards, sent at the end of the turn.
    out: Vec<Committed>,
    /// Other messages for the shards, sent after `out`.
    to_shards: Vec<ToShard>,
    /// Records appended since the last sync started (the next batch).
    appended: usize,
    role_ended: Option<String>,
    /// FOLLOWERINFO / OBSERVERINFO heard while still electing: a learner that decided
    /// sooner says it once, and the leader it named must hear it when it takes the lead.
    early_infos: HashMap<ServerId, Message>,
    /// Handshakes that arrived while no role was established, with their deadline.
    held_handshakes: VecDeque<(SeqInput, i64)>,
    /// Leader: snapshots being sent, per learner.
    snap_transfers: HashMap<ServerId, SnapTransfer>,
    /// Servers (learners, and this one for its own snapshot) whose snapshot shard 0 is to
    /// capture: asked after this turn's commits reach it, so the capture holds everything
    /// the sync announced, and once no capture is in flight.
    snap_requests: Vec<ServerId>,
    /// The servers of the capture shard 0 is taking, not yet answered. Shard 0 copies one
    /// snapshot at a time, in steps; requests that come meanwhile wait for the next one
    /// (whose copy then begins after their sync's zxid).
    snap_capture_unanswered: Vec<ServerId>,
    /// Learner: a snapshot being received.
    snap_install: Option<SnapInstall>,
    /// Learner: the zxid of the snapshot installed from the leader; the records up to it
    /// that the leader still streams are already in it.
    snap_floor: Zxid,
    policy: Rc<RefCell<crate::storage::SnapshotPolicy>>,
    snapshot_wanted: bool,
    /// Since when this server has had no established role (for read-only mode).
    unserving_since_ms: i64,
    /// Serving read-only sessions now (`readonlymode.enabled`, cut off from the quorum).
    read_only: bool,
    /// Shard 0 is capturing this server's own snapshot.
    own_snapshot_in_flight: bool,
    /// Bytes of the last, smallest and largest proposal this leader made (`srvr`).
    proposal_sizes: (i64, i64, i64),
    /// The membership in force: the static one, the dynamic file's, or the last committed
    /// reconfig's.
    membership: Membership,
    /// `/zookeeper/config` as the membership renders it (a tree rebuilt from disk gets it).
    config_node_data: Bytes,
    /// Leader: the reconfig proposed and not yet committed, with its membership.
    reconfig_proposed: Option<(Zxid, Membership)>,
    /// When this server last started looking for a leader (`election_time`).
    looking_since_ms: i64,
    /// When the election last gave this server its role (`follower_sync_time`).
    role_taken_ms: i64,
    /// Leader: its proposals not yet committed, with when each was made
    /// (`quorum_ack_latency`), in zxid order.
    proposed_at: VecDeque<(Zxid, std::time::Instant)>,
    /// Learner: what the leader's NEWLEADER announced: the version of the membership its
    /// epoch runs, and that membership when its text parses.
    announced_membership: Option<(u64, Option<Membership>)>,
    /// Leader: the server each session was last created or resumed on (this one's id for
    /// its own clients). A learner's write for a session that moved to another server since
    /// fails with SessionMoved, as ZooKeeper's `SessionTracker.checkSession` makes it. A
    /// session without an entry is taken by the first server that sends its write.
    /// Entries go when the session's close is ordered; at most one per live session.
    session_owners: HashMap<SessionId, ServerId>,
    /// The log disk had no room for the last batch: out of the ensemble until it has.
    disk_full: Option<super::DiskFull>,
    /// The log's batch being written and synced, if one is (see [`Node::start_log_sync`]).
    log_sync: Option<InFlightSync>,
    /// Wakes the loop (the inbox's): a finished log sync rings it.
    loop_wake: Rc<Notify>,
}

pub(super) async fn run(
    settings: Arc<Settings>,
    shared: Arc<super::Shared>,
    start: ReplicatedStart,
    rxs: Vec<glommio::channels::shared_channel::SharedReceiver<ToZab>>,
    txs: Vec<glommio::channels::shared_channel::SharedSender<ToShard>>,
) {
    let Some(q) = settings.quorum.clone() else {
        return;
    };
    backup_static_config(&settings);
    let (inbox, wake) = super::spawn_inbox(rxs);
    let shards = super::connect_shards(txs).await;
    super::spawn_ticks(&settings, &inbox, &wake);
    let mesh = match PeerMesh::start(q.mesh.clone()) {
        Ok(mesh) => mesh,
        Err(e) => {
            tracing::error!(addr = %q.mesh.listen, error = %e, "cannot listen for peers; exiting");
            std::process::exit(2)
        }
    };
    let mut node = match Node::new(
        settings.clone(),
        q,
        shared,
        mesh,
        shards,
        start,
        wake.clone(),
    )
    .await
    {
        Ok(node) => node,
        Err(e) => fatal_storage("cannot start replication", &e),
    };
    let mut gathers = Gathers::default();
    let inputs_per_turn_max = (settings.config.corral.commit_max_batch as usize).max(1);
    loop {
        let idle = inbox.borrow().is_empty()
            && node.mesh.inbox.borrow().is_empty()
            && !node.log_sync_finished();
        if idle {
            let wait_ms = (node.next_deadline_ms() - now_ms()).clamp(0, IDLE_WAIT_MS_MAX);
            futures_lite::future::or(
                wake.wait(),
                futures_lite::future::or(
                    node.mesh.inbox_wake.wait(),
                    glommio::timer::sleep(Duration::from_millis(wait_ms as u64)),
                ),
            )
            .await;
        }
        node.reap_log_sync(false).await;
        let events: Vec<MeshEvent> = node.mesh.inbox.borrow_mut().drain(..).collect();
        for event in events {
            node.on_mesh_event(event);
            node.drive().await;
        }
        // Client inputs handled per turn before the log is synced: one group commit's
        // worth (`corral.commit.maxBatch`), as in standalone mode.
        for _ in 0..inputs_per_turn_max {
            if node.log_sync.is_some() && node.appended >= inputs_per_turn_max {
                // One batch is on its way to disk and the next is full: wait for the disk
                // (as a loop that awaits every sync would), then start the next batch.
                node.reap_log_sync(true).await;
                node.start_log_sync().await;
            }
            let next = inbox.borrow_mut().pop_front();
            let Some(msg) = next else { break };
            match msg {
                ToZab::Input(input) => node.on_client_input(input),
                ToZab::Gather {
                    origin,
                    query_id,
                    detail,
                } => gathers.start(origin, query_id, detail, &node.shards).await,
                ToZab::SnapshotReady { peer, file } => node.snapshot_ready(peer, file),
                ToZab::Report { query_id, report } => {
                    let (mode, serving) = (node.mode_name(), node.serving() || node.read_only);
                    let proposal_sizes = match node.role {
                        Role::Leading(_) => Some(node.proposal_sizes),
                        _ => None,
                    };
                    let quorum = Some(node.quorum_report(now_ms()));
                    let seq = &node.seq;
                    gathers
                        .report(query_id, report, &node.shards, |detail| ZabReport {
                            proposal_sizes,
                            quorum,
                            ..zab_report(seq, detail, mode, serving)
                        })
                        .await
                }
            }
            node.drive().await;
        }
        node.on_timers();
        node.probe_disk().await;
        node.drive().await;
        // What committed goes to the shards whatever the log's state: a committed txn is on
        // a quorum already, so a learner applies it without waiting for its own log, as
        // ZooKeeper's do.
        node.flush_to_shards().await;
        node.start_log_sync().await;
        node.send_touches();
        node.flush_to_shards().await;
        node.maybe_snapshot();
        node.trim_window();
        if !inbox.borrow().is_empty() {
            // More client input than one turn takes: let other tasks run, then go on.
            futures_lite::future::yield_now().await;
        }
    }
}

impl Node {
    async fn new(
        settings: Arc<Settings>,
        q: QuorumSettings,
        shared: Arc<super::Shared>,
        mesh: Rc<PeerMesh>,
        shards: Vec<ConnectedSender<ToShard>>,
        start: ReplicatedStart,
        loop_wake: Rc<Notify>,
    ) -> Result<Node, String> {
        let now = now_ms();
        let window_base = start.tree.last_zxid();
        let mut window = VecDeque::with_capacity(start.unapplied.len());
        for rec in &start.unapplied {
            let mut payload = Vec::new();
            crate::storage::record::encode(rec, &mut payload);
            window.push_back((rec.zxid, Bytes::from(payload)));
        }
        let read_epoch = |name: &str| -> Result<u64, String> {
            match crate::storage::epoch::read_epoch(&start.snap_dir, name) {
                Ok(Some(e)) => Ok(u64::from(e)),
                // A server that never joined an epoch starts from its log's.
                Ok(None) => Ok(epoch_of(start.last_logged_zxid)),
                Err(e) => Err(e.to_string()),
            }
        };
        let accepted_epoch = read_epoch(ACCEPTED_EPOCH_FILE)?;
        let current_epoch = read_epoch(CURRENT_EPOCH_FILE)?.min(accepted_epoch);
        let cfg = &settings.config;
        let log = LogWriter::open(
            &start.log_dir,
            log_options(&settings),
            start.last_logged_zxid,
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut seq = new_sequencer(&settings, start.tree);
        seq.restore_sessions(&start.sessions, now);
        let own_vote = Vote {
            leader: q.my_id,
            zxid: start.last_logged_zxid,
            peer_epoch: current_epoch,
        };
        let election = Election::new(q.election.clone(), q.my_id, own_vote, now);
        let policy = Rc::new(RefCell::new(crate::storage::SnapshotPolicy::new(
            cfg.snap_count.max(2),
            snap_size_limit_kb(cfg.snap_size_limit_kb, cfg.corral.snapshot_log_in_memory_kb),
            now as u64,
        )));
        tracing::info!(
            id = q.my_id,
            accepted_epoch,
            current_epoch,
            last_logged_zxid = format_args!("{:#x}", start.last_logged_zxid),
            "looking for a leader"
        );
        crate::metrics::zab_quorum(|m| m.looking_count += 1);
        let membership = settings.config.membership();
        let config_node_data = settings.config_node_data.clone();
        // The running membership's node as ZooKeeper's `initConfigInZKDatabase` sets it at
        // startup: mZxid its version, dataVersion -1, mtime now (unless the snapshot holds
        // a newer membership, which is then activated as it syncs).
        let mut to_shards = Vec::new();
        let running = seq
            .tree()
            .get(crate::proto::CONFIG_PATH)
            .and_then(|n| n.data.clone())
            .is_some_and(|data| data == config_node_data);
        if running {
            seq.set_config_node(config_node_data.clone(), membership.version as i64, now);
            to_shards.push(ToShard::ConfigNode {
                data: config_node_data.clone(),
                version_zxid: membership.version as i64,
                time_ms: now,
            });
        }
        Ok(Node {
            committed: window_base,
            settings,
            q,
            shared,
            mesh,
            shards,
            election,
            role: Role::Looking,
            seq,
            log,
            snap_dir: start.snap_dir,
            accepted_epoch,
            current_epoch,
            window_base,
            window,
            window_trim_to: window_base,
            pending: VecDeque::new(),
            waiting_replies: HashMap::new(),
            waiting_creates: HashMap::new(),
            waiting_syncs: VecDeque::new(),
            waiting_revalidations: HashMap::new(),
            touches: HashSet::new(),
            out: Vec::new(),
            to_shards,
            appended: 0,
            role_ended: None,
            early_infos: HashMap::new(),
            held_handshakes: VecDeque::new(),
            snap_transfers: HashMap::new(),
            snap_requests: Vec::new(),
            snap_capture_unanswered: Vec::new(),
            snap_install: None,
            snap_floor: Zxid::MIN,
            policy,
            snapshot_wanted: false,
            own_snapshot_in_flight: false,
            unserving_since_ms: now,
            read_only: false,
            proposal_sizes: (-1, -1, -1),
            membership,
            config_node_data,
            reconfig_proposed: None,
            looking_since_ms: now,
            role_taken_ms: now,
            proposed_at: VecDeque::new(),
            announced_membership: None,
            session_owners: HashMap::new(),
            disk_full: None,
            log_sync: None,
            loop_wake,
        })
    }

    /// Whether the role is established (a leader whose NEWLEADER a quorum acked, or a
    /// learner that reached UPTODATE): only then are clients served read-write.
    fn serving(&self) -> bool {
        match &self.role {
            Role::Looking => false,
            Role::Leading(l) => l.is_established(),
            Role::Learning(l) => l.is_serving(),
        }
    }

    /// The ensemble keys of `mntr` (ZooKeeper's `peer_state`, `quorum_size`, and on a
    /// leader its learners; on an observer its leader).
    fn quorum_report(&self, now_ms: i64) -> QuorumReport {
        let (peer_state, leader, observer_master_id) = match &self.role {
            Role::Looking => ("looking - election", None, None),
            Role::Leading(l) => (
                if l.is_established() {
                    "leading - broadcast"
                } else {
                    "leading - synchronization"
                },
                Some((l.learner_counts(), now_ms - l.started_ms())),
                None,
            ),
            Role::Learning(l) => (
                match (l.is_observer(), l.is_serving()) {
                    (true, true) => "observing - broadcast",
                    (true, false) => "observing - synchronization",
                    (false, true) => "following - broadcast",
                    (false, false) => "following - synchronization",
                },
                None,
                l.is_observer().then(|| l.leader()),
            ),
        };
        QuorumReport {
            peer_state,
            quorum_size: self.q.peer.quorum.voters().len(),
            observer_master_id,
            leader,
        }
    }

    fn mode_name(&self) -> &'static str {
        if self.read_only {
            return "read-only";
        }
        match (&self.role, self.serving()) {
            (Role::Leading(_), true) => "leader",
            (Role::Learning(l), true) if l.is_observer() => "observer",
            (Role::Learning(_), true) => "follower",
            _ => "",
        }
    }

    fn own_vote(&self) -> Vote {
        Vote {
            leader: self.q.my_id,
            zxid: self.log.last_appended_zxid(),
            peer_epoch: self.current_epoch,
        }
    }

    fn next_deadline_ms(&self) -> i64 {
        let role = match &self.role {
            Role::Looking => None,
            Role::Leading(l) => l.poll_timeout(),
            Role::Learning(l) => l.poll_timeout(),
        };
        let held = self.held_handshakes.iter().map(|(_, at)| *at).min();
        let read_only_from =
            (self.settings.config.read_only_mode_enabled && !self.serving() && !self.read_only)
                .then(|| {
                    self.unserving_since_ms
                        + READ_ONLY_AFTER_MS_MIN.max(i64::from(self.settings.tick_ms))
                });
        let transfer = (!self.snap_transfers.is_empty()).then(|| now_ms() + SNAP_POLL_MS);
        let probe = self.disk_full.as_ref().map(|f| f.next_probe_ms());
        [
            self.election.poll_timeout(),
            role,
            held,
            transfer,
            read_only_from,
            probe,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(i64::MAX)
    }

    fn role_input(&mut self, input: PeerInput) {
        let now = now_ms();
        match &mut self.role {
            Role::Looking => {}
            Role::Leading(l) => l.handle(now, input),
            Role::Learning(l) => l.handle(now, input),
        }
    }

    // Inputs.

    fn on_mesh_event(&mut self, event: MeshEvent) {
        let now = now_ms();
        let (from, msg) = match event {
            MeshEvent::Down { peer } => {
                self.early_infos.remove(&peer);
                self.snap_transfers.remove(&peer);
                self.role_input(PeerInput::Disconnected { peer });
                return;
            }
            MeshEvent::Up { peer } => {
                if self.disk_full.is_none() {
                    self.election.peer_connected(peer);
                }
                return;
            }
            MeshEvent::Message { from, msg } => (from, msg),
        };
        match msg {
            Message::Hello(_) => {}
            Message::SnapChunk { data } => self.snap_chunk(from, &data),
            // Out of the ensemble while the log disk is full: no vote, not even the last
            // decision (a looking peer would take it for a leader that still leads).
            Message::Notification(_) if self.disk_full.is_some() => {}
            Message::Notification(n) => self.election.handle(now, from, &n),
            // Sessions are the leader's: a learner asks before resuming one.
            Message::Revalidate {
                session_id,
                timeout_ms: _,
            } => {
                if let (Role::Leading(_), true) = (&self.role, self.serving()) {
                    let valid = self.seq.revalidate_remote(now, session_id);
                    self.mesh
                        .send(from, &Message::RevalidateReply { session_id, valid });
                    if valid {
                        self.session_owners.insert(session_id, from);
                        // The session moved to a learner: a connection here that still
                        // holds it is stale (ZooKeeper answers it SessionMoved; closing it
                        // is the same for the client).
                        self.to_shards.push(ToShard::SessionMoved {
                            session_id,
                            keep: Origin {
                                shard: usize::MAX,
                                conn: 0,
                            },
                        });
                    }
                }
            }
            Message::RevalidateReply { session_id, valid } => {
                let waiting = self
                    .waiting_revalidations
                    .get_mut(&session_id)
                    .and_then(|q| q.pop_front());
                if let Some((origin, timeout_ms)) = waiting {
                    self.to_shards.push(ToShard::Revalidated {
                        origin,
                        session_id,
                        timeout_ms: valid.then_some(timeout_ms),
                    });
                }
            }
            Message::Ping { touches } => {
                if let (Role::Leading(_), true) = (&self.role, self.serving()) {
                    if !touches.is_empty() {
                        let sessions = touches.iter().map(|t| t.session_id).collect();
                        self.seq.handle(now, SeqInput::Touch { sessions });
                    }
                }
                self.role_input(PeerInput::Message {
                    from,
                    msg: Message::Ping { touches: vec![] },
                });
            }
            Message::FollowerInfo(_) | Message::ObserverInfo(_) if self.disk_full.is_some() => {
                // Named leader by an election this server never answered: cut the link so
                // the learner looks again now.
                tracing::info!(
                    peer = from,
                    "a learner named this server its leader while its log disk is full; disconnecting it"
                );
                self.mesh.disconnect(from);
            }
            msg @ (Message::FollowerInfo(_) | Message::ObserverInfo(_))
                if matches!(self.role, Role::Looking) =>
            {
                self.early_infos.insert(from, msg);
            }
            Message::FollowerInfo(_) | Message::ObserverInfo(_)
                if matches!(self.role, Role::Learning(_)) =>
            {
                // It takes us for its leader, but we follow another: cut the link so it
                // looks again now (ZooKeeper's learner finds nobody listening on a
                // follower's quorum port) instead of waiting out initLimit.
                tracing::info!(
                    peer = from,
                    "a learner named this follower its leader; disconnecting it"
                );
                self.mesh.disconnect(from);
            }
            Message::NewLeader {
                zxid,
                config_version,
                config,
            } => {
                // Parsed here, taken at UPTODATE (`take_established_membership`). Text that
                // does not parse (a hierarchical quorum's group lines) leaves the version.
                let membership = match membership_from_text(&config, config_version) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::debug!(error = %e, "the leader's membership text is not taken");
                        None
                    }
                };
                self.announced_membership = Some((config_version, membership));
                self.role_input(PeerInput::Message {
                    from,
                    msg: Message::NewLeader {
                        zxid,
                        config_version,
                        config,
                    },
                });
            }
            msg => {
                self.count_learner_frame(&msg);
                self.role_input(PeerInput::Message { from, msg })
            }
        }
    }

    fn on_client_input(&mut self, input: SeqInput) {
        if !self.serving() {
            if self.read_only && self.offer_read_only(&input) {
                return;
            }
            if matches!(
                input,
                SeqInput::CreateSession { .. } | SeqInput::Revalidate { .. }
            ) {
                let timeout_ms = match &input {
                    SeqInput::CreateSession { timeout_ms, .. }
                    | SeqInput::Revalidate { timeout_ms, .. } => i64::from(*timeout_ms),
                    _ => 0,
                };
                let hold_ms = HANDSHAKE_HOLD_MS.min(timeout_ms / 6);
                self.held_handshakes.push_back((input, now_ms() + hold_ms));
            } else if let Some(origin) = origin_of(&input) {
                // No leader: the client goes to another server (or comes back later).
                self.to_shards.push(ToShard::Refuse { origin });
            }
            return;
        }
        match &self.role {
            Role::Leading(_) => self.lead_input(input),
            Role::Learning(_) => self.learn_input(input),
            Role::Looking => {}
        }
    }

    /// Read-only mode: a client that accepts a read-only session gets one from this server
    /// alone (a new id, or its own id back if the password checks out). True if answered.
    fn offer_read_only(&mut self, input: &SeqInput) -> bool {
        let (origin, session_id, timeout_ms) = match input {
            SeqInput::CreateSession {
                origin,
                timeout_ms,
                can_be_read_only: true,
            } => (*origin, self.seq.allocate_session_id(), *timeout_ms),
            SeqInput::Revalidate {
                origin,
                session_id,
                passwd,
                timeout_ms,
                can_be_read_only: true,
            } => {
                if passwd.as_ref() != crate::session::password_for(*session_id).as_slice() {
                    self.to_shards.push(ToShard::Revalidated {
                        origin: *origin,
                        session_id: *session_id,
                        timeout_ms: None,
                    });
                    return true;
                }
                (*origin, *session_id, *timeout_ms)
            }
            _ => return false,
        };
        self.to_shards.push(ToShard::ReadOnlySession {
            origin,
            session_id,
            timeout_ms,
        });
        true
    }

    /// Read-only mode starts once the server has been without a role for a while, and
    /// ends when a role is established (its sessions are closed then, as ZooKeeper's
    /// read-only server's are when it rejoins).
    fn update_read_only(&mut self, now: i64) {
        let wanted = self.settings.config.read_only_mode_enabled
            && !self.serving()
            && now - self.unserving_since_ms
                >= READ_ONLY_AFTER_MS_MIN.max(i64::from(self.settings.tick_ms));
        if wanted == self.read_only {
            return;
        }
        self.read_only = wanted;
        self.shared
            .read_only
            .store(wanted, std::sync::atomic::Ordering::Relaxed);
        if wanted {
            tracing::warn!("no quorum: serving read-only sessions (readonlymode.enabled)");
            for (input, _) in std::mem::take(&mut self.held_handshakes) {
                self.on_client_input(input);
            }
        } else {
            tracing::info!("quorum back: closing the read-only sessions");
            self.to_shards.push(ToShard::CloseReadOnly);
        }
    }

    /// The leader validates, orders and proposes.
    fn lead_input(&mut self, input: SeqInput) {
        if let SeqInput::Revalidate { session_id, .. } = &input {
            if self.seq.sessions().is_active(*session_id) {
                self.session_owners.insert(*session_id, self.q.my_id);
            }
        }
        if let SeqInput::Write {
            req: Request::Reconfig(_),
            ..
        } = &input
        {
            self.refresh_reconfig_view();
        }
        self.seq.handle(now_ms(), input);
        self.propose_ordered();
    }

    /// What a `reconfig` about to be validated is checked against: the membership in force,
    /// whether one is in flight, and who is synced now.
    fn refresh_reconfig_view(&mut self) {
        let Role::Leading(l) = &self.role else {
            return;
        };
        if !self.settings.config.reconfig_enabled {
            return;
        }
        self.seq
            .set_reconfig_view(Some(crate::zab::prep::ReconfigView {
                membership: self.membership.clone(),
                in_progress: l.reconfig_pending() || self.reconfig_proposed.is_some(),
                synced: l.synced_servers(),
                standalone_enabled: self.settings.config.standalone_enabled,
            }));
    }

    /// A committed reconfig (or one brought by the history): the new membership counts.
    /// Its dynamic file is written and the static config pointed at it; the election, the
    /// mesh and the next roles use it; a learner whose kind changed (observer and
    /// participant, or an observer removed, which then follows without a vote, as in
    /// ZooKeeper) looks again. A leader that is no longer a voter steps down by itself.
    /// Whether `next` was taken (not when it is no newer, or cannot drive an election).
    fn activate_membership(&mut self, next: Membership) -> bool {
        if next.version <= self.membership.version {
            return false;
        }
        tracing::info!(
            version = format_args!("{:x}", next.version),
            members = next.servers.len(),
            "new membership"
        );
        self.write_dynamic_config(&next);
        let cfg = match crate::quorum::election::ElectionConfig::from_membership(
            &next,
            self.q.election.tick_ms,
            self.q.election.init_limit_ticks,
            self.q.election.sync_limit_ticks,
        ) {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::error!(error = %e, "committed membership cannot drive an election; kept the old one");
                return false;
            }
        };
        let mut peers = Vec::new();
        for server in next.servers.iter().filter(|s| s.id != self.q.my_id) {
            match super::settings::resolve_host(&server.host, server.election_port) {
                Some(addr) => peers.push((server.id, addr)),
                None => tracing::warn!(peer = server.id, "cannot resolve a new member's address"),
            }
        }
        self.mesh.set_peers(&peers);
        self.q.mesh.peers = peers;
        self.q.peer.quorum = cfg.quorum.clone();
        self.q.peer.observers = cfg.observers.clone();
        self.election.reconfigure(cfg.clone());
        self.q.election = cfg;
        // The election's copy of the text is the node's data (both render `next`).
        self.config_node_data = self.q.election.config.clone();
        let kind = next
            .servers
            .iter()
            .find(|s| s.id == self.q.my_id)
            .map(|s| s.role);
        self.membership = next;
        if let Role::Learning(l) = &self.role {
            let fits = match kind {
                Some(MemberRole::Participant) => !l.is_observer(),
                Some(MemberRole::Observer) => l.is_observer(),
                None => !l.is_observer(),
            };
            if !fits {
                self.role_ended = Some("a reconfig changed this server's role".to_string());
            }
        }
        true
    }

    /// Writes `zoo.cfg.dynamic.<version>` beside the static config and points the static
    /// config at it (`dynamicConfigFile=`), each through a temporary file renamed over
    /// the old one after an fsync, as ZooKeeper's `QuorumPeer.setQuorumVerifier` does.
    /// Errors are logged: the membership is in the tree and `/zookeeper/config` anyway.
    fn write_dynamic_config(&self, next: &Membership) {
        let Some(static_path) = self.settings.config.source.clone() else {
            return;
        };
        let Some(name) = static_path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let dynamic_path =
            static_path.with_file_name(crate::config::dynamic_file_name(name, next.version));
        let written = (|| -> std::io::Result<()> {
            write_atomically(
                &dynamic_path,
                crate::config::render_dynamic_file(next).as_bytes(),
            )?;
            let text = std::fs::read_to_string(&static_path)?;
            let edited =
                crate::config::edit_static_config(&text, &dynamic_path.display().to_string());
            write_atomically(&static_path, edited.as_bytes())
        })();
        match written {
            Ok(()) => tracing::info!(file = %dynamic_path.display(), "dynamic config written"),
            Err(e) => {
                tracing::error!(file = %dynamic_path.display(), error = %e, "cannot write the dynamic config")
            }
        }
    }

    /// Proposes what the sequencer ordered; its answers wait in `pending` for the commit.
    fn propose_ordered(&mut self) {
        while let Some(action) = self.seq.poll_action() {
            match action {
                SeqAction::Deliver(batch) => {
                    let Ok(batch) = Arc::try_unwrap(batch) else {
                        self.role_ended = Some("an ordered batch is shared".into());
                        return;
                    };
                    for c in batch {
                        if let Some(rec) = &c.rec {
                            if let Txn::CloseSession { .. } = rec.txn {
                                self.session_owners.remove(&rec.session_id);
                            }
                            let mut payload =
                                Vec::with_capacity(crate::storage::record::encoded_size_hint(rec));
                            crate::storage::record::encode(rec, &mut payload);
                            let size = payload.len() as i64;
                            let (_, min, max) = self.proposal_sizes;
                            self.proposal_sizes = (
                                size,
                                if min < 0 { size } else { min.min(size) },
                                max.max(size),
                            );
                            let proposed = match &mut self.role {
                                Role::Leading(l) => l.propose(Bytes::from(payload)),
                                _ => Err(crate::quorum::peer::ProposeError::NotEstablished),
                            };
                            match proposed {
                                Ok(zxid) if zxid == rec.zxid => {
                                    crate::metrics::zab_quorum(|m| m.proposals += 1);
                                    self.proposed_at
                                        .push_back((zxid, std::time::Instant::now()));
                                    if crate::zab::prep::is_reconfig(&rec.txn) {
                                        self.reconfig_ordered(rec);
                                    }
                                }
                                Ok(zxid) => {
                                    self.role_ended = Some(format!(
                                        "proposal numbered {zxid:#x}, ordered as {:#x}",
                                        rec.zxid
                                    ));
                                }
                                Err(e) => self.role_ended = Some(format!("cannot propose: {e}")),
                            }
                        }
                        self.pending.push_back(c);
                    }
                }
                SeqAction::Revalidated {
                    origin,
                    session_id,
                    timeout_ms,
                } => self.to_shards.push(ToShard::Revalidated {
                    origin,
                    session_id,
                    timeout_ms,
                }),
                SeqAction::SessionMoved { session_id, keep } => self
                    .to_shards
                    .push(ToShard::SessionMoved { session_id, keep }),
            }
        }
        self.release_pending();
    }

    /// The leader ordered and proposed a reconfig: the proposal needs the new voters too.
    fn reconfig_ordered(&mut self, rec: &TxnRecord) {
        let Some(next) = membership_of(rec) else {
            self.role_ended = Some(format!("reconfig {:#x} does not parse", rec.zxid));
            return;
        };
        if let Role::Leading(l) = &mut self.role {
            let (voters, observers) = members_by_role(&next);
            l.reconfig_proposed(rec.zxid, voters, observers);
        }
        self.reconfig_proposed = Some((rec.zxid, next));
    }

    /// Whether a forwarded request with a body of `body_bytes` and `auth_ids` fits in one
    /// quorum message (the leader's decoder refuses more, and closes the link).
    fn forwardable(&self, body_bytes: usize, auth_ids: &[Id]) -> bool {
        /// The message's own fields (session, xid, op, counts), rounded up.
        const FIELDS_BYTES: usize = 64;
        let ids_bytes: usize = auth_ids
            .iter()
            .map(|id| 8 + id.scheme.len() + id.id.len())
            .sum();
        auth_ids.len() <= crate::quorum::wire::AUTH_IDS_MAX
            && FIELDS_BYTES + body_bytes + ids_bytes <= self.mesh.payload_bytes_max() as usize
    }

    /// A learner forwards writes, syncs and new sessions to the leader.
    fn learn_input(&mut self, input: SeqInput) {
        let forwarded = |session_id, xid, op, auth_ids: &[Id], body| ForwardedRequest {
            session_id,
            xid,
            op,
            auth_ids: auth_ids.to_vec(),
            body,
        };
        let (request, origin) = match input {
            SeqInput::Write {
                reply_to,
                session_id,
                auth_ids,
                req,
            } => {
                let mut body = BytesMut::new();
                req.encode(&mut body);
                self.waiting_replies
                    .entry(session_id)
                    .or_default()
                    .push_back(reply_to);
                let r = if self.forwardable(body.len(), &auth_ids) {
                    forwarded(session_id, reply_to.xid, req.op(), &auth_ids, body.freeze())
                } else {
                    // Too big for the quorum wire (a request's invalid UTF-8 re-encoded
                    // as U+FFFD grows up to 3x, and every write carries the session's
                    // auth ids). The leader answers it MarshallingError, in the session's
                    // order of writes.
                    tracing::warn!(
                        session = format_args!("0x{session_id:x}"),
                        xid = reply_to.xid,
                        body_bytes = body.len(),
                        auth_ids = auth_ids.len(),
                        "a write too big to forward; the leader answers MarshallingError"
                    );
                    forwarded(session_id, reply_to.xid, op::ERROR, &[], Bytes::new())
                };
                (r, reply_to.origin)
            }
            SeqInput::Sync { reply_to, path } => {
                self.waiting_syncs.push_back((reply_to, path));
                let r = forwarded(0, reply_to.xid, op::SYNC, &[], Bytes::new());
                (r, reply_to.origin)
            }
            SeqInput::CreateSession {
                origin, timeout_ms, ..
            } => {
                let session_id = self.seq.allocate_session_id();
                self.waiting_creates.insert(session_id, origin);
                let body = Bytes::copy_from_slice(&timeout_ms.to_be_bytes());
                (
                    forwarded(session_id, 0, op::CREATE_SESSION, &[], body),
                    origin,
                )
            }
            SeqInput::Revalidate {
                origin,
                session_id,
                passwd,
                timeout_ms,
                ..
            } => {
                let leader = match &self.role {
                    Role::Learning(l) => l.leader(),
                    _ => return,
                };
                if passwd.as_ref() != crate::session::password_for(session_id).as_slice() {
                    self.to_shards.push(ToShard::Revalidated {
                        origin,
                        session_id,
                        timeout_ms: None,
                    });
                    return;
                }
                self.waiting_revalidations
                    .entry(session_id)
                    .or_default()
                    .push_back((origin, timeout_ms));
                self.mesh.send(
                    leader,
                    &Message::Revalidate {
                        session_id,
                        timeout_ms,
                    },
                );
                return;
            }
            SeqInput::Touch { sessions } => {
                self.touches.extend(sessions);
                return;
            }
            // Expiry and container reaping are the leader's.
            SeqInput::Tick => return,
            SeqInput::Forwarded { .. } | SeqInput::CreateSessionFor { .. } => return,
        };
        let sent = match &mut self.role {
            Role::Learning(l) => l.forward(request).is_ok(),
            _ => false,
        };
        if !sent {
            self.to_shards.push(ToShard::Refuse { origin });
        }
    }

    fn on_timers(&mut self) {
        let now = now_ms();
        self.update_read_only(now);
        if !self.snap_transfers.is_empty() {
            self.pump_snapshots();
        }
        if self.held_handshakes.iter().any(|(_, at)| *at <= now) {
            for (input, at) in std::mem::take(&mut self.held_handshakes) {
                if at > now {
                    self.held_handshakes.push_back((input, at));
                } else if let Some(origin) = origin_of(&input) {
                    self.to_shards.push(ToShard::Refuse { origin });
                }
            }
        }
        if self.election.poll_timeout().is_some_and(|t| t <= now) {
            self.election.tick(now);
        }
        let due = match &self.role {
            Role::Looking => false,
            Role::Leading(l) => l.poll_timeout().is_some_and(|t| t <= now),
            Role::Learning(l) => l.poll_timeout().is_some_and(|t| t <= now),
        };
        if due {
            self.role_input(PeerInput::Tick);
        }
    }

    // Actions.

    /// Performs what the election and the role ask, until neither has more.
    async fn drive(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.election.poll_action() {
                progressed = true;
                self.on_election_action(action);
            }
            loop {
                let action = match &mut self.role {
                    Role::Looking => None,
                    Role::Leading(l) => l.poll_action(),
                    Role::Learning(l) => l.poll_action(),
                };
                let Some(action) = action else { break };
                progressed = true;
                self.on_peer_action(action).await;
            }
            if self
                .snap_install
                .as_ref()
                .is_some_and(|i| i.buf.len() as u64 == i.expected_bytes)
            {
                progressed = true;
                self.finish_install().await;
            }
            if let Some(reason) = self.role_ended.take() {
                progressed = true;
                self.end_role(reason).await;
            }
            if !progressed {
                return;
            }
        }
    }

    fn on_election_action(&mut self, action: ElectionAction) {
        match action {
            ElectionAction::Send { to, notification } => {
                self.mesh.send(to, &Message::Notification(notification));
            }
            ElectionAction::Broadcast { notification } => {
                let msg = Message::Notification(notification);
                for &to in self.q.election.quorum.voters() {
                    if to != self.q.my_id {
                        self.mesh.send(to, &msg);
                    }
                }
            }
            ElectionAction::Decided(decision) => self.take_role(decision),
            ElectionAction::NewerMembership { version, config } => {
                self.take_newer_membership(version, &config)
            }
        }
    }

    /// A peer's notification carried a newer membership while this server looks: take it
    /// and look again among its voters, as ZooKeeper's `FastLeaderElection` does
    /// (`processReconfig`, then a new election). A server that was down during a reconfig
    /// finds the new voters this way even when its old ones are gone.
    fn take_newer_membership(&mut self, version: u64, config: &[u8]) {
        if !self.settings.config.reconfig_enabled
            || version <= self.membership.version
            || !matches!(self.role, Role::Looking)
        {
            return;
        }
        let next = match membership_from_text(config, version) {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "a peer's membership is not taken");
                return;
            }
        };
        tracing::info!(
            version = format_args!("{version:x}"),
            "taking a peer's newer membership and looking again"
        );
        // Anyone on the mesh may send it (with reconfigEnabled the mesh takes strangers),
        // as in ZooKeeper; `activate_membership` still refuses one that cannot drive an
        // election.
        if !self.adopt_membership(next) {
            return;
        }
        let vote = self.own_vote();
        self.election.start_looking(now_ms(), vote);
    }

    /// Activates `next` (a membership that came outside the txn stream) and, if it was
    /// taken, sets `/zookeeper/config` to it outside the txn stream too (mZxid its version,
    /// dataVersion -1), here and in the shards, as ZooKeeper's `initConfigInZKDatabase`.
    /// Whether it was taken.
    fn adopt_membership(&mut self, next: Membership) -> bool {
        let version = next.version;
        if !self.activate_membership(next) {
            return false;
        }
        let data = self.config_node_data.clone();
        let now = now_ms();
        self.seq.set_config_node(data.clone(), version as i64, now);
        self.to_shards.push(ToShard::ConfigNode {
            data,
            version_zxid: version as i64,
            time_ms: now,
        });
        true
    }

    fn stored(&self) -> Stored {
        Stored {
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            log_base: self.window_base,
            applied_zxid: self.committed,
            log: self.window.iter().cloned().collect(),
            synced_zxid: self.log.synced_zxid(),
            reconfig: self.reconfig_in_history(),
        }
    }

    /// See [`reconfig_in_history`].
    fn reconfig_in_history(&self) -> Option<HistoryReconfig> {
        reconfig_in_history(&self.window, self.committed, self.membership.version)
    }

    fn take_role(&mut self, decision: Decision) {
        let now = now_ms();
        let looked_ms = (now - self.looking_since_ms).max(0) as u64;
        crate::metrics::zab_quorum(|m| m.election_time_ms.record(looked_ms));
        self.role_taken_ms = now;
        let stored = self.stored();
        let cfg = self.q.peer.clone();
        tracing::info!(
            leader = decision.vote.leader,
            role = ?decision.role,
            election_epoch = decision.election_epoch,
            "election decided"
        );
        self.role = match decision.role {
            ElectedRole::Leading => {
                Role::Leading(Leader::new(cfg, &stored, decision.establish_by_ms, now))
            }
            ElectedRole::Following | ElectedRole::Observing => Role::Learning(Learner::new(
                cfg,
                &stored,
                decision.vote.leader,
                decision.establish_by_ms,
                now,
            )),
        };
        for (from, msg) in std::mem::take(&mut self.early_infos) {
            if let Role::Leading(_) = self.role {
                self.role_input(PeerInput::Message { from, msg });
            } else {
                // It decided on us sooner, but we follow another: as for a FOLLOWERINFO
                // that reaches a learner, cut the link so it looks again now. Dropping it
                // silently left it waiting out initLimit (20 s with tickTime=2000).
                tracing::info!(
                    peer = from,
                    "a learner named this server its leader, which follows another; disconnecting it"
                );
                self.mesh.disconnect(from);
            }
        }
    }

    async fn on_peer_action(&mut self, action: PeerAction) {
        match action {
            PeerAction::Send { to, msg } => {
                if matches!(msg, Message::Diff { .. } | Message::Trunc { .. }) {
                    // ZooKeeper counts every sync that is not a snapshot as a diff.
                    crate::metrics::zab_quorum(|m| m.diff_syncs += 1);
                }
                let msg = match msg {
                    // NEWLEADER carries the membership this epoch runs, with its version, as
                    // ZooKeeper's carries the leader's configuration.
                    Message::NewLeader { zxid, .. } => {
                        // The one it runs once established: a reconfig in its history
                        // commits with it; else its own (a static one versioned by the
                        // epoch). A learner takes it at UPTODATE if newer than its own, so
                        // announcing ours then would undo that reconfig on the learner.
                        let in_history = membership_in_history(
                            &self.window,
                            self.committed,
                            self.membership.version,
                        );
                        let membership = match in_history {
                            Some((_, next)) => next,
                            None => {
                                let mut ours = self.membership.clone();
                                ours.version = self.config_version_in_epoch(epoch_of(zxid));
                                ours
                            }
                        };
                        Message::NewLeader {
                            zxid,
                            config_version: membership.version,
                            config: Bytes::from(crate::config::render_membership(&membership)),
                        }
                    }
                    msg => msg,
                };
                match self.snap_transfers.get_mut(&to) {
                    Some(transfer) => transfer.held.push(msg),
                    None => {
                        self.mesh.send(to, &msg);
                    }
                }
            }
            PeerAction::Append { records } => {
                for (zxid, txn) in records {
                    if zxid <= self.snap_floor {
                        // In the snapshot just installed.
                        continue;
                    }
                    if let Err(e) = self.log.append_payload(zxid, &txn) {
                        self.role_ended = Some(format!("unloggable record {zxid:#x}: {e}"));
                        return;
                    }
                    self.appended += 1;
                    self.window.push_back((zxid, txn));
                }
            }
            // The loop syncs whatever was appended once no sync is in flight (group
            // commit, `start_log_sync`).
            PeerAction::SyncLog { .. } => {}
            PeerAction::TruncateLog { to } => {
                tracing::info!(to = format_args!("{to:#x}"), "truncating the log");
                self.truncate_log_after(to).await;
                while self.window.back().is_some_and(|(z, _)| *z > to) {
                    self.window.pop_back();
                }
            }
            PeerAction::SendSnapshot { to, last_zxid } => {
                // Taken from shard 0's replica, which holds exactly the committed txns (this
                // tree runs ahead by the proposals in flight).
                tracing::info!(
                    learner = to,
                    zxid = format_args!("{last_zxid:#x}"),
                    "syncing a learner by snapshot"
                );
                crate::metrics::zab_quorum(|m| m.snap_syncs += 1);
                self.snap_transfers.insert(
                    to,
                    SnapTransfer {
                        announced_zxid: last_zxid,
                        file: None,
                        sent_bytes: 0,
                        held: Vec::new(),
                    },
                );
                self.snap_requests.push(to);
            }
            PeerAction::InstallSnapshot {
                from,
                last_zxid,
                snapshot_bytes,
            } => {
                if snapshot_bytes > SNAP_RECEIVED_BYTES_MAX {
                    self.role_ended = Some(format!(
                        "leader {from} announced a {snapshot_bytes}-byte snapshot"
                    ));
                    return;
                }
                self.snap_install = Some(SnapInstall {
                    from,
                    announced_zxid: last_zxid,
                    expected_bytes: snapshot_bytes,
                    buf: Vec::with_capacity(snapshot_bytes.min(64 << 20) as usize),
                });
            }
            PeerAction::PersistAcceptedEpoch { epoch } => {
                self.write_epoch(ACCEPTED_EPOCH_FILE, epoch).await;
                self.accepted_epoch = epoch;
            }
            PeerAction::PersistCurrentEpoch { epoch } => {
                self.write_epoch(CURRENT_EPOCH_FILE, epoch).await;
                self.current_epoch = epoch;
            }
            PeerAction::Deliver { records } => self.deliver(records),
            PeerAction::Forwarded { from, request } => self.forwarded(from, request),
            PeerAction::SyncReached { zxid: _ } => {
                if let Some((reply_to, path)) = self.waiting_syncs.pop_front() {
                    self.out.push(Committed {
                        rec: None,
                        reply_to: Some(reply_to),
                        sync_path: Some(path),
                    });
                }
            }
            PeerAction::Established { epoch } => self.on_established(epoch),
            PeerAction::Disconnect { peer } => self.mesh.disconnect(peer),
            PeerAction::Looking { reason } => self.role_ended = Some(reason),
        }
    }

    async fn write_epoch(&self, name: &'static str, epoch: u64) {
        let Ok(epoch) = u32::try_from(epoch) else {
            fatal_storage("epoch beyond 32 bits", &epoch);
        };
        let dir = self.snap_dir.clone();
        let written = glommio::executor()
            .spawn_blocking(move || crate::storage::epoch::write_epoch(&dir, name, epoch))
            .await;
        if let Err(e) = written {
            fatal_storage("cannot write an epoch file", &e);
        }
    }

    /// Committed records: apply them here and queue them for the shards, with the answers.
    fn deliver(&mut self, records: Vec<(Zxid, Bytes)>) {
        let now = now_ms();
        let leading = matches!(self.role, Role::Leading(_));
        // Everything a leader proposed carries its epoch; history of earlier epochs (committed
        // at establishment) is applied here like a learner's commits. A leader that a
        // reconfig removed has stopped by now, but what it delivers is still its own.
        let own_epoch = match &self.role {
            Role::Leading(l) if l.was_established() => Some(l.epoch()),
            _ => None,
        };
        for (zxid, txn) in records {
            self.committed = self.committed.max(zxid);
            // The leader's own proposals are already in its tree: their entries wait in
            // `pending` and are released below.
            if own_epoch.is_some_and(|epoch| epoch_of(zxid) == epoch) {
                self.count_commit(zxid);
                if self
                    .reconfig_proposed
                    .as_ref()
                    .is_some_and(|(z, _)| *z == zxid)
                {
                    if let Some((_, next)) = self.reconfig_proposed.take() {
                        self.activate_membership(next);
                    }
                }
                continue;
            }
            let rec = match crate::storage::record::decode(&txn) {
                Ok(rec) if rec.zxid == zxid => rec,
                Ok(_) | Err(_) => {
                    self.role_ended = Some(format!("committed txn {zxid:#x} does not decode"));
                    return;
                }
            };
            let mut reply_to = if leading { None } else { self.reply_for(&rec) };
            if let (
                Some(to),
                Txn::Error {
                    err: crate::proto::ErrorCode::SessionMoved,
                },
            ) = (reply_to, &rec.txn)
            {
                // ZooKeeper's FinalRequestProcessor answers SessionMoved by closing the
                // connection (the client reconnects, to where its session now is).
                self.to_shards.push(ToShard::Refuse { origin: to.origin });
                reply_to = None;
            }
            let next = membership_of(&rec);
            self.seq.apply_committed(now, rec, reply_to);
            self.out.extend(self.seq.take_batch());
            if let Some(next) = next {
                self.activate_membership(next);
            }
        }
        self.release_pending();
    }

    /// The leader committed its proposal `zxid`: `commit_count` and `quorum_ack_latency`.
    fn count_commit(&mut self, zxid: Zxid) {
        let mut acked_ms = None;
        while let Some(&(proposed, at)) = self.proposed_at.front() {
            if proposed > zxid {
                break;
            }
            self.proposed_at.pop_front();
            if proposed == zxid {
                acked_ms = Some(at.elapsed().as_millis() as u64);
            }
        }
        crate::metrics::zab_quorum(|m| {
            m.commits += 1;
            if let Some(ms) = acked_ms {
                m.quorum_ack_latency_ms.record(ms);
            }
        });
    }

    /// A learner counts the PROPOSAL, COMMIT and INFORM frames it receives, as ZooKeeper's
    /// learners do (`learner_*_received_count`, `proposal_latency`).
    fn count_learner_frame(&self, msg: &Message) {
        if !matches!(self.role, Role::Learning(_)) {
            return;
        }
        match msg {
            Message::Proposal { txn, .. } => {
                let latency_ms = crate::storage::record::peek_time_ms(txn)
                    .map(|time_ms| now_ms() - time_ms)
                    .filter(|ms| *ms >= 0);
                crate::metrics::zab_quorum(|m| {
                    m.proposals_received += 1;
                    if let Some(ms) = latency_ms {
                        m.proposal_latency_ms.record(ms as u64);
                    }
                });
            }
            Message::Commit { .. } | Message::Inform { .. } => {
                crate::metrics::zab_quorum(|m| m.commits_received += 1);
            }
            _ => {}
        }
    }

    /// Where the answer to a committed txn goes, if one of this learner's clients asked.
    fn reply_for(&mut self, rec: &TxnRecord) -> Option<ReplyTo> {
        if let Txn::CreateSession { .. } = rec.txn {
            return self
                .waiting_creates
                .remove(&rec.session_id)
                .map(|origin| ReplyTo {
                    origin,
                    xid: 0,
                    op: op::CREATE_SESSION,
                });
        }
        let queue = self.waiting_replies.get_mut(&rec.session_id)?;
        if queue.front().is_some_and(|r| r.xid == rec.cxid) {
            let reply_to = queue.pop_front();
            if queue.is_empty() {
                self.waiting_replies.remove(&rec.session_id);
            }
            return reply_to;
        }
        None
    }

    /// Moves committed entries (and the sync barriers behind them) from `pending` to `out`.
    fn release_pending(&mut self) {
        while let Some(front) = self.pending.front() {
            let ready = front.rec.as_ref().is_none_or(|r| r.zxid <= self.committed);
            if !ready {
                break;
            }
            if let Some(c) = self.pending.pop_front() {
                self.out.push(c);
            }
        }
    }

    /// A write a learner forwarded to this leader.
    fn forwarded(&mut self, from: ServerId, request: ForwardedRequest) {
        let now = now_ms();
        if request.op == op::CREATE_SESSION {
            self.session_owners.insert(request.session_id, from);
        } else if request.op != op::CLOSE_SESSION && request.session_id != 0 {
            // ZooKeeper does not check the owner of a closeSession (the expiry thread
            // closes sessions it does not own either).
            let owner = *self
                .session_owners
                .entry(request.session_id)
                .or_insert(from);
            if owner != from {
                tracing::debug!(
                    session = format_args!("0x{:x}", request.session_id),
                    learner = from,
                    owner,
                    "a write of a session that moved"
                );
                self.seq.order_moved(now, request.session_id, request.xid);
                self.propose_ordered();
                return;
            }
        }
        let input = if request.op == op::CREATE_SESSION {
            let Ok(bytes) = <[u8; 4]>::try_from(request.body.as_ref()) else {
                tracing::warn!("a forwarded createSession without its timeout; dropped");
                return;
            };
            SeqInput::CreateSessionFor {
                session_id: request.session_id,
                timeout_ms: i32::from_be_bytes(bytes),
            }
        } else {
            match Request::decode(request.op, request.body) {
                Ok(Some(req)) if matches!(req, Request::Reconfig(_)) => {
                    self.refresh_reconfig_view();
                    SeqInput::Forwarded {
                        session_id: request.session_id,
                        xid: request.xid,
                        auth_ids: Arc::from(request.auth_ids),
                        req,
                    }
                }
                Ok(Some(req)) => SeqInput::Forwarded {
                    session_id: request.session_id,
                    xid: request.xid,
                    auth_ids: Arc::from(request.auth_ids),
                    req,
                },
                Ok(None) | Err(_) => {
                    // The learner waits for this answer before the session's next ones:
                    // it gets an error in the session's order. (op::ERROR is a learner's
                    // own refusal of a request it could not forward whole.)
                    if request.op != op::ERROR {
                        tracing::warn!(
                            op = request.op,
                            learner = from,
                            "a forwarded request does not decode; answered MarshallingError"
                        );
                    }
                    self.seq.order_error(
                        now,
                        request.session_id,
                        request.xid,
                        crate::proto::ErrorCode::MarshallingError,
                    );
                    self.propose_ordered();
                    return;
                }
            }
        };
        self.seq.handle(now, input);
        self.propose_ordered();
    }

    fn on_established(&mut self, epoch: u64) {
        // The read-only sessions end before the role's first answers go out.
        self.update_read_only(now_ms());
        self.election.established(epoch);
        if let Role::Learning(l) = &self.role {
            if !l.is_observer() {
                let synced_ms = (now_ms() - self.role_taken_ms).max(0) as u64;
                crate::metrics::zab_quorum(|m| m.follower_sync_time_ms.record(synced_ms));
            }
        }
        self.take_established_membership(epoch);
        if let Role::Leading(_) = self.role {
            // This epoch's zxids start above everything of the earlier ones.
            let first = zxid_of(epoch, 0).max(self.seq.last_zxid());
            self.seq.start_epoch(first);
            self.seq.refresh_session_deadlines(now_ms());
        }
        tracing::info!(epoch, mode = self.mode_name(), "serving");
        for (input, _) in std::mem::take(&mut self.held_handshakes) {
            self.on_client_input(input);
        }
    }

    /// The membership version an epoch runs: the one in force, or, for a static membership
    /// (version 0) with `reconfigEnabled`, the epoch's first zxid, which it gets once the
    /// epoch is established (ZooKeeper's `Leader.lead`, ZOOKEEPER-1783: an established
    /// configuration outranks the unversioned one of a server trying to join).
    fn config_version_in_epoch(&self, epoch: u64) -> u64 {
        if self.settings.config.reconfig_enabled && self.membership.version == 0 {
            zxid_of(epoch, 0) as u64
        } else {
            self.membership.version
        }
    }

    /// With `reconfigEnabled`, what an established role makes of the membership, as
    /// ZooKeeper 3.8 does. The leader of the first established epoch gives its static
    /// membership (version 0) the epoch's first zxid as its version. A learner takes the
    /// membership its leader's NEWLEADER carried when it is newer than its own (ZooKeeper's
    /// `processReconfig` at UPTODATE): a server started to join, its static config listing
    /// itself, then shows the ensemble's configuration until a reconfig adds it. Either way
    /// `/zookeeper/config` is set outside the txn stream (mZxid the version), and `conf` and
    /// the files (`<cfg>.dynamic.<version>`, the static config pointed at it) follow.
    fn take_established_membership(&mut self, epoch: u64) {
        if !self.settings.config.reconfig_enabled {
            return;
        }
        let static_version = zxid_of(epoch, 0) as u64;
        let next = match &self.role {
            Role::Leading(_) if self.membership.version == 0 => {
                let mut next = self.membership.clone();
                next.version = static_version;
                next
            }
            Role::Learning(_) => match self.announced_membership.take() {
                Some((_, Some(leaders))) if leaders.version > self.membership.version => leaders,
                // The leader's text did not parse: its version for our own membership.
                Some((version, None))
                    if self.membership.version == 0 && version == static_version =>
                {
                    let mut next = self.membership.clone();
                    next.version = version;
                    next
                }
                _ => return,
            },
            Role::Leading(_) | Role::Looking => return,
        };
        self.adopt_membership(next);
    }

    /// The role is over: clients go, the tree drops what did not commit, a new election.
    async fn end_role(&mut self, reason: String) {
        if self.disk_full.is_some() {
            tracing::warn!(%reason, mode = self.mode_name(), "leaving the role");
        } else {
            tracing::warn!(%reason, mode = self.mode_name(), "leaving the role; looking for a leader");
        }
        // The peers of the role must see it end (a learner's leader drops it; a leader's
        // learners look again); links to everyone else stay up, so the election's
        // notifications flow at once instead of after a redial.
        match std::mem::replace(&mut self.role, Role::Looking) {
            Role::Leading(_) => {
                if !self.is_voter_now() {
                    // A reconfig removed this leader: its last COMMITs (the reconfig's own
                    // among them) reach the learners before the links close, so they
                    // answer their clients instead of waiting for the next leader.
                    self.drain_links().await;
                }
                self.mesh.disconnect_all()
            }
            Role::Learning(l) => self.mesh.disconnect(l.leader()),
            Role::Looking => {}
        }
        self.unserving_since_ms = now_ms();
        self.looking_since_ms = self.unserving_since_ms;
        crate::metrics::zab_quorum(|m| m.looking_count += 1);
        self.proposed_at.clear();
        self.to_shards.push(ToShard::CloseAll);
        // A reconfig that did not commit under this role: the next leader commits it with
        // its history (and every server activates it then) or truncates it.
        self.reconfig_proposed = None;
        self.seq.set_reconfig_view(None);
        self.pending.clear();
        self.waiting_replies.clear();
        self.waiting_creates.clear();
        self.waiting_syncs.clear();
        self.waiting_revalidations.clear();
        self.session_owners.clear();
        self.touches.clear();
        self.snap_transfers.clear();
        if self.snap_requests.contains(&self.q.my_id) {
            // Never sent: ask again once the next role runs.
            self.own_snapshot_in_flight = false;
            self.snapshot_wanted = true;
        }
        self.snap_requests.clear();
        self.snap_install = None;
        // The role is over: what the sync in flight made durable is for no one to hear.
        self.settle_log_sync().await;
        if self.disk_full.is_none() {
            match self.log.sync().await {
                Ok(_) => {}
                Err(e) if e.is_no_space() => self.enter_disk_full(&e),
                Err(e) => fatal_storage("cannot sync the transaction log", &e),
            }
        }
        self.appended = 0;
        if self.disk_full.is_some() {
            // The tree is rebuilt once the batch is on disk (a leader's committed txns may
            // be in it only), then the server looks for a leader.
            return;
        }
        self.look_again().await;
    }

    /// The log is synced after a role: the tree drops what did not commit, a new election.
    async fn look_again(&mut self) {
        if self.seq.last_zxid() > self.committed {
            self.rebuild_committed_tree().await;
        }
        let vote = self.own_vote();
        self.election.start_looking(now_ms(), vote);
    }

    /// A sync found no room for its batch: nothing of it is on disk, nothing is reported to
    /// the role, and the role ends (see the module doc).
    fn enter_disk_full(&mut self, e: &crate::storage::LogError) {
        tracing::error!(
            path = %e.path().display(),
            error = %e,
            "log disk full; leaving the ensemble until space returns"
        );
        self.disk_full = Some(super::DiskFull::new(0));
        if !matches!(self.role, Role::Looking) {
            self.role_ended = Some("the log disk is full".to_string());
        }
    }

    /// While the log disk is full: once a second, try the failed allocation again; with
    /// room, sync the batch kept since and look for a leader. Any error but a full disk is
    /// fatal, as on every sync.
    async fn probe_disk(&mut self) {
        let Some(full) = &self.disk_full else {
            return;
        };
        if !full.probe_due() {
            return;
        }
        let full_ms = full.full_ms();
        self.settle_log_sync().await;
        let probed = match self.log.probe_space().await {
            Ok(()) => self.log.sync().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match probed {
            Ok(()) => {
                tracing::info!(
                    path = %self.log.segment_path().map_or_else(String::new, |p| p.display().to_string()),
                    full_ms,
                    "log disk has room again; looking for a leader"
                );
                self.disk_full = None;
                self.appended = 0;
                self.look_again().await;
            }
            Err(e) if e.is_no_space() => {
                if let Some(full) = self.disk_full.as_mut() {
                    full.probe_failed();
                }
            }
            Err(e) => fatal_storage("cannot allocate room in the transaction log", &e),
        }
    }

    /// Whether the membership in force makes this server a voter.
    fn is_voter_now(&self) -> bool {
        self.membership
            .servers
            .iter()
            .any(|s| s.id == self.q.my_id && s.role == MemberRole::Participant)
    }

    /// Waits (at most `DRAIN_WAIT_MS`) until what is queued for every peer is written.
    async fn drain_links(&self) {
        let until = now_ms() + DRAIN_WAIT_MS;
        while now_ms() < until
            && self
                .mesh
                .connected()
                .iter()
                .any(|&peer| !self.mesh.outbox_is_empty(peer))
        {
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        // An empty outbox was handed to the socket; let the last write finish.
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }

    /// The leader's tree ran ahead by proposals that never committed: load the newest
    /// snapshot and apply the committed records after it.
    async fn rebuild_committed_tree(&mut self) {
        let config_node_data = self.config_node_data.clone();
        self.seq = rebuild_sequencer(&self.settings, config_node_data, self.committed).await;
    }

    /// Group commit that does not hold the loop: when no sync is in flight and records
    /// were appended, their batch is written and synced by a task of its own, while the
    /// loop goes on handling ACKs, COMMITs, proposals and client inputs (whose records are
    /// the next batch). [`Self::reap_log_sync`] hands the outcome to the role. Holding
    /// the loop for each fdatasync delayed every message that arrived meanwhile by the
    /// rest of that sync, once per hop of a write (forward, proposal, ACK, COMMIT).
    async fn start_log_sync(&mut self) {
        // A sync that finished during this turn: its outcome first, so the next batch
        // starts now instead of a turn later.
        self.reap_log_sync(false).await;
        if self.appended == 0 || self.log_sync.is_some() {
            return;
        }
        let job = match self.log.start_sync().await {
            Ok(Some(job)) => job,
            Ok(None) => {
                self.appended = 0;
                return;
            }
            Err(e) if e.is_no_space() => {
                // No LogSynced: a follower does not ACK, a leader does not count itself.
                // The batch stays pending in the writer, synced once a probe finds room.
                self.appended = 0;
                self.enter_disk_full(&e);
                self.drive().await;
                return;
            }
            Err(e) => fatal_storage("cannot sync the transaction log", &e),
        };
        self.log_sync = Some(InFlightSync::spawn(
            job,
            self.appended,
            std::time::Instant::now(),
            self.loop_wake.clone(),
        ));
        self.appended = 0;
    }

    /// Whether the sync in flight has finished (its outcome waits for the loop).
    fn log_sync_finished(&self) -> bool {
        self.log_sync
            .as_ref()
            .is_some_and(InFlightSync::is_finished)
    }

    /// A finished sync (with `wait`, the sync in flight once it finishes): its records are
    /// durable, and the role hears it (a follower ACKs, the leader counts its own vote).
    async fn reap_log_sync(&mut self, wait: bool) {
        if !wait && !self.log_sync_finished() {
            return;
        }
        if let Some(up_to) = self.settle_log_sync().await {
            self.role_input(PeerInput::LogSynced { up_to });
            self.drive().await;
        }
    }

    /// Drops every logged record above `to` (TRUNC, an installed snapshot), once the sync
    /// in flight is back; the role hears what that sync made durable, up to `to`.
    async fn truncate_log_after(&mut self, to: Zxid) {
        let synced = self.settle_log_sync().await;
        if let Err(e) = self.log.truncate_after(to).await {
            fatal_storage("cannot truncate the transaction log", &e);
        }
        // Records not yet synced went with the truncation.
        self.appended = 0;
        if let Some(up_to) = synced {
            self.role_input(PeerInput::LogSynced {
                up_to: up_to.min(to),
            });
        }
    }

    /// Waits for the sync in flight, if any, and gives the writer its segment back (what
    /// truncating, a role's last sync or a disk probe need). Returns the zxid the sync
    /// made durable, for the caller to tell the role if it still runs.
    async fn settle_log_sync(&mut self) -> Option<Zxid> {
        let sync = self.log_sync.take()?;
        let settled = sync.settle(&mut self.log).await;
        if self
            .policy
            .borrow_mut()
            .after_sync(settled.records as u64, settled.batch_bytes)
        {
            self.snapshot_wanted = true;
        }
        Some(settled.up_to)
    }

    /// Shard 0 encoded a snapshot for `peer`: announce it, then stream it (see
    /// [`Self::pump_snapshots`]).
    fn snapshot_ready(&mut self, peer: ServerId, file: Result<Bytes, String>) {
        if let Some(i) = self.snap_capture_unanswered.iter().position(|p| *p == peer) {
            self.snap_capture_unanswered.swap_remove(i);
        }
        if peer == self.q.my_id {
            self.own_snapshot_ready(file);
            return;
        }
        let Some(transfer) = self.snap_transfers.get_mut(&peer) else {
            return;
        };
        // The answer to an earlier transfer to this learner, which asked again since (it is
        // queued for the next walk, which answers this transfer) or is being served already.
        if transfer.file.is_some() || self.snap_requests.contains(&peer) {
            return;
        }
        match file {
            Ok(file) => {
                if crate::storage::snapshot::file_zxid(&file)
                    .is_none_or(|zxid| zxid < transfer.announced_zxid)
                {
                    // Copied before this transfer's sync announced its zxid: copy again.
                    self.snap_requests.push(peer);
                    return;
                }
                self.mesh.send(
                    peer,
                    &Message::Snap {
                        last_zxid: transfer.announced_zxid,
                        snapshot_bytes: file.len() as u64,
                    },
                );
                transfer.file = Some(file);
                self.pump_snapshots();
            }
            Err(reason) => {
                tracing::error!(learner = peer, %reason, "cannot encode a snapshot for a learner; dropping it");
                self.snap_transfers.remove(&peer);
                self.mesh.disconnect(peer);
            }
        }
    }

    /// Queues more of each snapshot being sent, as far as the learner's queue allows; once
    /// one is all queued, what waited behind it follows.
    fn pump_snapshots(&mut self) {
        let mut done = Vec::new();
        for (&peer, transfer) in self.snap_transfers.iter_mut() {
            let Some(file) = &transfer.file else { continue };
            while transfer.sent_bytes < file.len()
                && self.mesh.queued_bytes(peer) < SNAP_QUEUED_BYTES_MAX
            {
                let end = (transfer.sent_bytes + SNAP_CHUNK_BYTES).min(file.len());
                let data = file.slice(transfer.sent_bytes..end);
                if !self.mesh.send(peer, &Message::SnapChunk { data }) {
                    break;
                }
                transfer.sent_bytes = end;
            }
            if transfer.sent_bytes == file.len() {
                done.push(peer);
            }
        }
        for peer in done {
            if let Some(transfer) = self.snap_transfers.remove(&peer) {
                tracing::info!(learner = peer, bytes = transfer.sent_bytes, "snapshot sent");
                for msg in transfer.held {
                    self.mesh.send(peer, &msg);
                }
            }
        }
    }

    /// A piece of the snapshot this learner is installing.
    fn snap_chunk(&mut self, from: ServerId, data: &[u8]) {
        let Some(install) = self.snap_install.as_mut() else {
            return;
        };
        if install.from != from {
            return;
        }
        install.buf.extend_from_slice(data);
        if install.buf.len() as u64 > install.expected_bytes {
            self.snap_install = None;
            self.role_ended = Some("the leader sent more snapshot bytes than announced".into());
        }
    }

    /// Installs a snapshot whose bytes have all arrived: validated, written durably, the
    /// log cut to it, the tree and the replicas replaced.
    async fn finish_install(&mut self) {
        let complete = self
            .snap_install
            .as_ref()
            .is_some_and(|i| i.buf.len() as u64 == i.expected_bytes);
        if !complete {
            return;
        }
        let Some(install) = self.snap_install.take() else {
            return;
        };
        let snap_dir = self.snap_dir.clone();
        let config_data = self.config_node_data.clone();
        let loaded = glommio::executor()
            .spawn_blocking(
                move || -> Result<(Zxid, crate::storage::snapshot::Loaded), String> {
                    let probe = snap_dir.join("snapshot.received");
                    let zxid =
                        crate::storage::snapshot::SnapshotFile::from_bytes(&probe, &install.buf)
                            .map_err(|e| e.to_string())?
                            .zxid;
                    let path =
                        crate::storage::snapshot::write_snapshot(&snap_dir, zxid, &install.buf)
                            .map_err(|e| e.to_string())?;
                    let loaded = crate::storage::snapshot::load(&path, config_data)
                        .map_err(|e| e.to_string())?;
                    Ok((zxid, loaded))
                },
            )
            .await;
        let (zxid, loaded) = match loaded {
            Ok(ok) => ok,
            Err(reason) => {
                self.role_ended = Some(format!("cannot install the leader's snapshot: {reason}"));
                return;
            }
        };
        if zxid < install.announced_zxid {
            self.role_ended = Some(format!(
                "the leader's snapshot is at {zxid:#x}, before the {:#x} it announced",
                install.announced_zxid
            ));
            return;
        }
        self.truncate_log_after(zxid).await;
        self.window.clear();
        self.window_base = zxid;
        self.window_trim_to = zxid;
        self.committed = zxid;
        self.snap_floor = zxid;
        let mut seq = new_sequencer(&self.settings, loaded.tree);
        seq.restore_sessions(&loaded.sessions, now_ms());
        for s in &self.shards {
            let _ = s
                .send(ToShard::ReplaceTree(Box::new(seq.tree().clone())))
                .await;
        }
        self.shared
            .committed_zxid
            .store(zxid, std::sync::atomic::Ordering::Release);
        self.seq = seq;
        tracing::info!(
            zxid = format_args!("{zxid:#x}"),
            "installed the leader's snapshot"
        );
        // A reconfig this server missed is in the snapshot's /zookeeper/config.
        if let Some(next) = super::membership_in(self.seq.tree()) {
            self.activate_membership(next);
        }
        self.role_input(PeerInput::SnapshotInstalled {
            last_zxid: install.announced_zxid,
        });
    }

    /// A learner tells the leader which of its sessions were active (they do not expire).
    fn send_touches(&mut self) {
        if self.touches.is_empty() || !self.serving() {
            return;
        }
        let Role::Learning(l) = &self.role else {
            return;
        };
        let touches = self
            .touches
            .drain()
            .map(|session_id| crate::quorum::wire::SessionTouch {
                session_id,
                timeout_ms: 0,
            })
            .collect();
        self.mesh.send(l.leader(), &Message::Ping { touches });
    }

    async fn flush_to_shards(&mut self) {
        if !self.out.is_empty() {
            let batch = Arc::new(std::mem::take(&mut self.out));
            if let Some(zxid) = batch
                .iter()
                .rev()
                .find_map(|c| c.rec.as_ref().map(|r| r.zxid))
            {
                // Release: a shard that sees this zxid will find the batch behind it.
                self.shared
                    .committed_zxid
                    .store(zxid, std::sync::atomic::Ordering::Release);
            }
            for s in &self.shards {
                let _ = s.send(ToShard::Deliver(batch.clone())).await;
            }
        }
        if !self.snap_requests.is_empty() && self.snap_capture_unanswered.is_empty() {
            let sessions: Vec<(SessionId, i32)> = self
                .seq
                .sessions()
                .ids()
                .map(|(id, s)| (*id, s.timeout_ms))
                .collect();
            let peers = std::mem::take(&mut self.snap_requests);
            if let Some(s) = self.shards.first() {
                self.snap_capture_unanswered = peers.clone();
                let _ = s.send(ToShard::CaptureSnapshot { peers, sessions }).await;
            }
        }
        for msg in std::mem::take(&mut self.to_shards) {
            if let Some(shard) = msg.origin_shard() {
                if let Some(s) = self.shards.get(shard) {
                    let _ = s.send(msg).await;
                }
            } else {
                for s in &self.shards {
                    if let Some(copy) = msg.broadcast_copy() {
                        let _ = s.send(copy).await;
                    }
                }
            }
        }
    }

    /// Asks shard 0 for a snapshot once one is due. Its replica holds exactly the
    /// committed txns (this executor's tree may run ahead by proposals in flight, which must
    /// never be saved: they may still be truncated); the capture is an exact copy at its
    /// zxid, taken in steps on that shard (`ShardCtx::capture_snapshot`).
    fn maybe_snapshot(&mut self) {
        if !self.snapshot_wanted || self.own_snapshot_in_flight || self.disk_full.is_some() {
            return;
        }
        self.snapshot_wanted = false;
        self.own_snapshot_in_flight = true;
        // The log goes on in its segment, as in the standalone loop (`server::run_zab`).
        self.snap_requests.push(self.q.my_id);
    }

    /// This server's own snapshot, encoded by shard 0: written in the background; the
    /// records it covers leave the in-memory window.
    fn own_snapshot_ready(&mut self, file: Result<Bytes, String>) {
        self.own_snapshot_in_flight = false;
        let bytes = match file {
            Ok(bytes) => bytes,
            Err(reason) => {
                tracing::error!(%reason, "snapshot failed; the log still holds everything");
                self.policy.borrow_mut().snapshot_done();
                return;
            }
        };
        let Some(zxid) = crate::storage::snapshot::file_zxid(&bytes) else {
            tracing::error!("snapshot failed: no header; the log still holds everything");
            self.policy.borrow_mut().snapshot_done();
            return;
        };
        write_snapshot_in_background(
            ToWrite::File { zxid, bytes },
            &self.snap_dir,
            &self.settings,
            &self.policy,
            std::time::Instant::now(),
        );
        self.window_trim_to = self.window_trim_to.max(zxid);
        self.trim_window();
    }

    /// Drops at most [`WINDOW_TRIM_PER_TURN`] records the newest snapshot covers from
    /// `window`; called every turn of the loop.
    fn trim_window(&mut self) {
        trim_covered(
            &mut self.window,
            &mut self.window_base,
            self.window_trim_to,
            WINDOW_TRIM_PER_TURN,
        );
    }
}

/// The log size since the newest snapshot that asks for the next one: `snapSizeLimitInKb`
/// (`None`: off), lowered to `corral.snapshot.logInMemoryKb`, since a replicated server holds
/// those records in `window` too and only a snapshot lets them go.
fn snap_size_limit_kb(snap_size_limit_kb: Option<u64>, log_in_memory_kb: u64) -> Option<u64> {
    Some(snap_size_limit_kb.map_or(log_in_memory_kb, |kb| kb.min(log_in_memory_kb)))
}

/// Drops from the front of `window` at most `max` records at or below `trim_to`, moving
/// `base` up to each one dropped, and to `trim_to` once none is left: `window` always holds
/// exactly the logged records after `base`.
fn trim_covered(window: &mut VecDeque<(Zxid, Bytes)>, base: &mut Zxid, trim_to: Zxid, max: usize) {
    for _ in 0..max {
        match window.front() {
            Some(&(zxid, _)) if zxid <= trim_to => {
                window.pop_front();
                *base = (*base).max(zxid);
            }
            _ => break,
        }
    }
    if window.front().is_none_or(|&(zxid, _)| zxid > trim_to) {
        *base = (*base).max(trim_to);
    }
}

/// With `reconfigEnabled` and the membership in the static config (no
/// `dynamicConfigFile` yet), a copy of the static config goes to `<cfg>.bak` at every
/// start, as ZooKeeper's `QuorumPeerConfig.backupOldConfig` does: the first established
/// epoch moves the membership to a dynamic file and rewrites the static config.
fn backup_static_config(settings: &Settings) {
    let cfg = &settings.config;
    if !cfg.reconfig_enabled || cfg.dynamic_config_file.is_some() {
        return;
    }
    let Some(path) = cfg.source.as_ref() else {
        return;
    };
    let mut backup = path.clone().into_os_string();
    backup.push(".bak");
    let backup = PathBuf::from(backup);
    let copied = std::fs::read(path).and_then(|bytes| write_atomically(&backup, &bytes));
    if let Err(e) = copied {
        tracing::error!(file = %backup.display(), error = %e, "cannot back up the static config");
    }
}

/// The last reconfig in `window` above `committed` whose membership is newer than the one
/// in force (`version_in_force`): a leader elected with it in its history commits it with
/// that history, and needs the NEWLEADER acks of a quorum of its voters too.
fn reconfig_in_history(
    window: &VecDeque<(Zxid, Bytes)>,
    committed: Zxid,
    version_in_force: u64,
) -> Option<HistoryReconfig> {
    membership_in_history(window, committed, version_in_force).map(|(zxid, next)| {
        let (voters, observers) = members_by_role(&next);
        HistoryReconfig {
            zxid,
            voters,
            observers,
        }
    })
}

/// That reconfig's zxid and membership (see [`reconfig_in_history`]).
fn membership_in_history(
    window: &VecDeque<(Zxid, Bytes)>,
    committed: Zxid,
    version_in_force: u64,
) -> Option<(Zxid, Membership)> {
    let (zxid, next) = window
        .iter()
        .rev()
        .take_while(|(zxid, _)| *zxid > committed)
        .find_map(|(zxid, txn)| {
            let rec = crate::storage::record::decode(txn).ok()?;
            Some((*zxid, membership_of(&rec)?))
        })?;
    (next.version > version_in_force).then_some((zxid, next))
}

/// The membership a peer sent as `/zookeeper/config` text (NEWLEADER, a notification),
/// if it parses and carries the `version` the peer announced with it.
fn membership_from_text(config: &[u8], version: u64) -> Result<Membership, String> {
    let text = std::str::from_utf8(config).map_err(|e| e.to_string())?;
    let next = crate::config::parse_membership_text(text)?;
    if next.version != version {
        return Err(format!(
            "the text says version {:x}, the peer {version:x}",
            next.version
        ));
    }
    Ok(next)
}

/// A membership's participants (the voters) and observers.
fn members_by_role(m: &Membership) -> (BTreeSet<ServerId>, BTreeSet<ServerId>) {
    let ids = |role| {
        m.servers
            .iter()
            .filter(|s| s.role == role)
            .map(|s| s.id)
            .collect()
    };
    (ids(MemberRole::Participant), ids(MemberRole::Observer))
}

/// The membership a committed reconfig txn carries (`None` for any other txn).
fn membership_of(rec: &TxnRecord) -> Option<Membership> {
    if !crate::zab::prep::is_reconfig(&rec.txn) {
        return None;
    }
    let Txn::SetData { data, .. } = &rec.txn else {
        return None;
    };
    let text = std::str::from_utf8(data.as_deref()?).ok()?;
    match crate::config::parse_membership_text(text) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::error!(error = %e, zxid = format_args!("{:#x}", rec.zxid), "a reconfig's membership does not parse");
            None
        }
    }
}

/// Writes `bytes` to `path` through `path.tmp`, fsynced and renamed over it.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The connection a client input came from (to refuse it when not serving).
fn origin_of(input: &SeqInput) -> Option<Origin> {
    match input {
        SeqInput::Write { reply_to, .. } | SeqInput::Sync { reply_to, .. } => Some(reply_to.origin),
        SeqInput::CreateSession { origin, .. } | SeqInput::Revalidate { origin, .. } => {
            Some(*origin)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_of(zxids: std::ops::RangeInclusive<Zxid>) -> VecDeque<(Zxid, Bytes)> {
        zxids.map(|z| (z, Bytes::from(vec![0u8; 8]))).collect()
    }

    #[test]
    fn the_records_kept_in_memory_bound_the_log_between_snapshots() {
        // snapSizeLimitInKb off: the in-memory bound still asks for snapshots.
        assert_eq!(snap_size_limit_kb(None, 1024), Some(1024));
        // Whichever is lower.
        assert_eq!(
            snap_size_limit_kb(Some(4_194_304), 1_048_576),
            Some(1_048_576)
        );
        assert_eq!(snap_size_limit_kb(Some(512), 1_048_576), Some(512));
    }

    #[test]
    fn a_snapshot_leaves_the_window_a_few_records_a_turn() {
        let mut window = window_of(11..=1000);
        let mut base = 10;
        let trim_to = 700;
        let mut turns = 0;
        loop {
            let before = window.len();
            trim_covered(&mut window, &mut base, trim_to, 256);
            turns += 1;
            assert!(before - window.len() <= 256, "at most 256 records a turn");
            // The window holds exactly the records after base, whatever the turn.
            let first = window.front().map(|r| r.0);
            assert_eq!(first, Some(base + 1), "turn {turns}");
            assert_eq!(window.back().map(|r| r.0), Some(1000));
            if base == trim_to {
                break;
            }
            assert!(turns < 10, "trimming never ends");
        }
        assert_eq!(turns, 3, "690 records at 256 a turn");
        trim_covered(&mut window, &mut base, trim_to, 256);
        assert_eq!((window.len(), base), (300, 700), "nothing more to drop");
    }

    fn logged(zxid: Zxid, path: &str, data: &str) -> (Zxid, Bytes) {
        let rec = TxnRecord {
            zxid,
            time_ms: 0,
            session_id: 1,
            cxid: 1,
            txn: Txn::SetData {
                path: path.into(),
                data: Some(Bytes::from(data.to_string())),
                version: -1,
            },
        };
        let mut out = Vec::new();
        crate::storage::record::encode(&rec, &mut out);
        (zxid, Bytes::from(out))
    }

    #[test]
    fn a_reconfig_above_the_commit_point_is_found_in_the_history() {
        let members = |version: u64| {
            format!(
                "server.1=127.0.0.1:2888:3888:participant;2181\n\
                 server.2=127.0.0.1:2889:3889:participant;2182\n\
                 server.5=127.0.0.1:2892:3892:observer;2185\nversion={version:x}"
            )
        };
        let window: VecDeque<_> = [
            logged(0x1_0000_0001, "/zookeeper/config", &members(0x1_0000_0001)),
            logged(0x1_0000_0002, "/app", "not a reconfig"),
            logged(0x1_0000_0003, "/zookeeper/config", &members(0x1_0000_0003)),
            logged(0x1_0000_0004, "/app", "after it"),
        ]
        .into_iter()
        .collect();
        let found = reconfig_in_history(&window, 0x1_0000_0002, 0x1_0000_0001);
        assert_eq!(
            found,
            Some(HistoryReconfig {
                zxid: 0x1_0000_0003,
                voters: BTreeSet::from([1, 2]),
                observers: BTreeSet::from([5]),
            })
        );
        // Committed (the tree has it), or no newer than the membership in force: none.
        assert_eq!(
            reconfig_in_history(&window, 0x1_0000_0003, 0x1_0000_0001),
            None
        );
        assert_eq!(reconfig_in_history(&window, 0, 0x1_0000_0003), None);
        // Two above the commit point: the last one wins.
        let older = reconfig_in_history(&window, 0, 0);
        assert_eq!(
            older.map(|r| r.zxid),
            Some(0x1_0000_0003),
            "the last one wins"
        );
        // The older one, when it is the only one above the commit point.
        let first_only: VecDeque<_> = window.iter().take(2).cloned().collect();
        let found = reconfig_in_history(&first_only, 0, 0);
        assert_eq!(found.map(|r| r.zxid), Some(0x1_0000_0001));
    }

    #[test]
    fn a_snapshot_past_every_logged_record_empties_the_window() {
        let mut window = window_of(11..=20);
        let mut base = 10;
        trim_covered(&mut window, &mut base, 25, 256);
        assert!(window.is_empty());
        assert_eq!(base, 25, "the snapshot's zxid, beyond the last record");
    }
}
