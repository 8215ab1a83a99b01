//! ZAB after the election (sans-IO): discovery, synchronisation and broadcast, as ZooKeeper's
//! Zab 1.0 (`Leader`, `LearnerHandler`, `Learner`, `Follower`, `Observer`).
//!
//! An election [`Decision`](super::election::Decision) makes a server a [`Leader`] or a
//! [`Learner`] (a follower, or an observer that never votes). Both start from [`Stored`], what
//! the server kept on disk (epochs, the log after its snapshot, how far the log is synced and
//! how far its tree has applied), and end by asking to look again ([`Action::Looking`]).
//!
//! Phases (message names as in `docs/replication.md`):
//!
//! 1. Discovery. Each learner sends FOLLOWERINFO / OBSERVERINFO (its accepted epoch and last
//!    zxid). Once the voters heard (the leader included) form a quorum, the leader proposes
//!    `max(accepted epoch) + 1` in LEADERINFO and persists it as its accepted epoch. A learner
//!    refuses an epoch below its accepted one (an observer, which counts in no quorum, only
//!    one below its current epoch), persists a higher one, and answers ACKEPOCH
//!    (its current epoch and last zxid). An epoch it had already accepted is acked with
//!    [`EPOCH_ALREADY_ACCEPTED`] and does not count for the quorum (as Java's `-1`): a voter
//!    counts for at most one leader's quorum per epoch. A voter ahead of the leader (higher
//!    current epoch, or the same and a higher zxid) makes the leader give up, and so does a
//!    voter arriving later with an accepted epoch above the leader's (unlike Java, which
//!    leaves that voter locked out until the leader fails).
//! 2. Synchronisation. On a quorum of ACKEPOCH the leader persists the epoch as current and
//!    syncs each learner from its last zxid `p` (table below), then sends NEWLEADER
//!    (`epoch << 32`). The learner syncs its log, persists the current epoch, and ACKs
//!    NEWLEADER. On a quorum of those acks (the leader's own counts: its history is synced)
//!    the leader is established: its whole history is committed, delivered, and every acked
//!    learner gets COMMIT (cumulative) and UPTODATE.
//! 3. Broadcast. [`Leader::propose`] assigns the next zxid, appends (pipelined: PROPOSAL goes
//!    out with the append, not after the fsync) and sends PROPOSAL to followers. Followers
//!    append, and after their [`Input::LogSynced`] ACK cumulatively. The leader commits the
//!    next proposal once the voters that synced it (itself only after its own `LogSynced`)
//!    form a quorum, strictly in zxid order; COMMIT is cumulative; observers get INFORM (the
//!    txn) once it commits. A learner joining later is synced against the current history and
//!    receives the broadcast from the moment its sync is queued.
//!
//! Sync decision (`LearnerHandler.syncFollower`), `p` the learner's last zxid, the leader's
//! history the log window after `log_base` (every zxid at or below `log_base` is committed
//! and in the leader's tree):
//!
//! | learner | message | then |
//! | --- | --- | --- |
//! | `p` is `log_base` or in the window | DIFF(p) | PROPOSALs after `p` |
//! | `p` above `log_base`, not in the window | TRUNC(t), `t` the last zxid of the history below `p` | PROPOSALs after `t` |
//! | `p` below `log_base` | SNAP(d), `d` the leader's applied zxid | PROPOSALs after `d` |
//!
//! Observers receive in their sync only what is committed (or, before establishment, the
//! history that will be); later commits reach them as INFORM.
//!
//! The learner refuses (and looks again) anything that would undo what it applied: a TRUNC
//! or SNAP below its applied zxid. A message out of order for its phase, a proposal not
//! above its log, a commit beyond its log: the leader misbehaved, the learner looks again.
//! A misbehaving learner is disconnected by the leader. Nothing from the network is asserted.
//!
//! Run-loop contract (as the election's): one input at a time with the current time
//! ([`Leader::handle`], [`Learner::handle`], or [`Leader::propose`] / [`Learner::forward`]),
//! then drain `poll_action` until `None`, performing each action in order. Persisting
//! actions ([`Action::PersistAcceptedEpoch`], [`Action::PersistCurrentEpoch`],
//! [`Action::TruncateLog`], [`Action::InstallSnapshot`]) are durable when performed; an
//! [`Action::Append`] is durable once the runtime reports [`Input::LogSynced`] (it may batch
//! several [`Action::SyncLog`] into one fdatasync). Call `tick` input when `poll_timeout`
//! passes. Txns are opaque bytes here: the leader's caller validated them (`zab::prep`).
//!
//! Bounds: at most `outstanding_max` proposals uncommitted ([`ProposeError::Backlog`]); the
//! in-memory window keeps at most `committed_log_max` committed entries, of at most
//! `committed_log_bytes_max` bytes of txns (older ones live in the snapshot and the on-disk
//! log; a learner behind them gets a SNAP).
//!
//! Reconfig: [`Leader::reconfig_proposed`] marks a proposal that changes the voters; it and
//! the proposals after it commit only with a quorum of the old voters and one of the new,
//! then the new ones count alone, and a leader that lost its vote steps down after
//! delivering. A reconfig already in a new leader's history ([`Stored::reconfig`]) is
//! pending from the start: establishment needs the NEWLEADER acks of a quorum of both
//! memberships (an observer it makes a voter is synced early and counts if it promised
//! the epoch), and it commits with the history. With `accept_non_members`
//! (`reconfigEnabled`) the leader takes learners outside the membership, or with a stale
//! idea of their role, as they come: only a voter's follower slot counts in a quorum.
//!
//! Not here: sessions (PING touches are sent empty), REVALIDATE, and the connections
//! themselves; see `docs/replication.md`.

use super::election::{Quorum, QuorumVerifier};
use super::wire::{ForwardedRequest, LearnerInfo, Message, PROTOCOL_VERSION};
use super::ServerId;
use crate::proto::{op, Zxid};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// ACKEPOCH's current epoch when the learner had already accepted the proposed epoch (Java
/// sends -1): the ack is not counted towards the epoch quorum.
pub const EPOCH_ALREADY_ACCEPTED: u64 = u64::MAX;

/// ACKEPOCH's current epoch from an observer that took an epoch below one it had accepted
/// (observers may, see [`Learner`]): it made this leader no promise, so even as a voter of
/// a reconfig pending in the leader's history its NEWLEADER ack does not count.
pub const EPOCH_BELOW_ACCEPTED: u64 = u64::MAX - 1;

/// The epoch of a zxid.
pub fn epoch_of(zxid: Zxid) -> u64 {
    (zxid as u64) >> 32
}

/// The zxid `epoch << 32 | counter`.
pub fn zxid_of(epoch: u64, counter: u32) -> Zxid {
    ((epoch << 32) | u64::from(counter)) as Zxid
}

/// What ZAB needs to know about the ensemble and its limits.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub my_id: ServerId,
    pub quorum: Quorum,
    pub observers: BTreeSet<ServerId>,
    pub tick_ms: i64,
    /// Ticks a learner has to connect and sync (also bounds the leader's establishment).
    pub init_limit_ticks: u32,
    /// Ticks a peer may go unheard once established.
    pub sync_limit_ticks: u32,
    /// Committed entries kept in memory for DIFF (Java's `commitLogCount`, 500); fewer when
    /// their txns pass `committed_log_bytes_max`.
    pub committed_log_max: usize,
    /// Bytes of committed txns kept in memory for DIFF (the runtime passes
    /// `diff_bytes_max`: once established, a DIFF bigger than that is not sent anyway).
    pub committed_log_bytes_max: usize,
    /// Proposals in flight before [`Leader::propose`] refuses more.
    pub outstanding_max: usize,
    /// Once established, a learner whose DIFF (or TRUNC) would send more bytes of records
    /// than this is sent a SNAP instead.
    pub diff_bytes_max: usize,
    /// `reconfigEnabled`: a leader takes a server outside the membership as a non-voting
    /// follower (or observer), as ZooKeeper does, so that a server can sync before a
    /// reconfig adds it, and a removed one keeps learning.
    pub accept_non_members: bool,
}

impl PeerConfig {
    pub fn sync_limit_ms(&self) -> i64 {
        self.tick_ms * i64::from(self.sync_limit_ticks)
    }

    pub fn init_limit_ms(&self) -> i64 {
        self.tick_ms * i64::from(self.init_limit_ticks)
    }

    fn is_voter(&self, id: ServerId) -> bool {
        self.quorum.is_voter(id)
    }
}

/// What a server kept across restarts, handed to the role it takes.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub accepted_epoch: u64,
    pub current_epoch: u64,
    /// Every zxid at or below this is committed and in the tree (the snapshot's zxid, or
    /// later if the tree applied more since).
    pub log_base: Zxid,
    /// The tree's last applied zxid (at least `log_base`).
    pub applied_zxid: Zxid,
    /// Logged records after `log_base`, in zxid order.
    pub log: Vec<(Zxid, Bytes)>,
    /// How far `log` is durable.
    pub synced_zxid: Zxid,
    /// A reconfig in `log`, above `applied_zxid`, whose membership this server has not
    /// taken yet. A leader with one in its history needs the NEWLEADER acks of a quorum
    /// of its voters as well as of the current ones to be established, and commits it with
    /// its history (ZooKeeper's last-seen quorum verifier): the servers that will count next
    /// then hold the history too.
    pub reconfig: Option<HistoryReconfig>,
}

/// A reconfig txn in a server's log: its zxid and the membership it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryReconfig {
    pub zxid: Zxid,
    pub voters: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
}

/// An input from the runtime.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message from the peer the connection authenticated as `from`.
    Message { from: ServerId, msg: Message },
    /// The connection to `peer` is gone.
    Disconnected { peer: ServerId },
    /// The log is durable up to `up_to` (after one or more [`Action::SyncLog`]).
    LogSynced { up_to: Zxid },
    /// The snapshot asked for by [`Action::InstallSnapshot`] is in place.
    SnapshotInstalled { last_zxid: Zxid },
    /// Timers; call when `poll_timeout` has passed.
    Tick,
}

/// An output, performed in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        to: ServerId,
        msg: Message,
    },
    /// Append to the log (not yet durable).
    Append {
        records: Vec<(Zxid, Bytes)>,
    },
    /// Make the log durable at least up to `up_to`, then report [`Input::LogSynced`].
    SyncLog {
        up_to: Zxid,
    },
    /// Drop every log record above `to`, durably.
    TruncateLog {
        to: Zxid,
    },
    /// Send SNAP with a snapshot of the tree, which is at `last_zxid` when this is performed.
    SendSnapshot {
        to: ServerId,
        last_zxid: Zxid,
    },
    /// Read the snapshot following the SNAP frame, replace the tree and the log with it
    /// (durably), then report [`Input::SnapshotInstalled`].
    InstallSnapshot {
        from: ServerId,
        last_zxid: Zxid,
        snapshot_bytes: u64,
    },
    PersistAcceptedEpoch {
        epoch: u64,
    },
    PersistCurrentEpoch {
        epoch: u64,
    },
    /// Committed records, in zxid order: apply them to the tree (and shards).
    Deliver {
        records: Vec<(Zxid, Bytes)>,
    },
    /// A write a learner forwarded: validate it and call [`Leader::propose`].
    Forwarded {
        from: ServerId,
        request: ForwardedRequest,
    },
    /// The answer to the oldest forwarded sync: everything up to `zxid` is delivered.
    SyncReached {
        zxid: Zxid,
    },
    /// The role is established (leader: a quorum acked NEWLEADER; learner: UPTODATE).
    Established {
        epoch: u64,
    },
    /// Close the connection to `peer`.
    Disconnect {
        peer: ServerId,
    },
    /// The role ended: close every quorum connection and start a new election.
    Looking {
        reason: String,
    },
}

/// Why [`Leader::propose`] refused a txn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not an established leader")]
    NotEstablished,
    #[error("{outstanding} proposals outstanding")]
    Backlog { outstanding: usize },
    #[error("zxid counter exhausted in epoch {epoch}")]
    CounterExhausted { epoch: u64 },
}

/// Why [`Learner::forward`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not serving: the learner is not synced with a leader")]
pub struct NotServing;

/// A log window: records after `log_base`, plus how far they are durable and applied.
#[derive(Debug, Clone)]
struct History {
    log_base: Zxid,
    log: VecDeque<(Zxid, Bytes)>,
    synced: Zxid,
    applied: Zxid,
    /// How many records of `log` are at or below `applied` (they come first): kept so
    /// that every proposal and commit does not search the window for it.
    applied_len: usize,
    /// The bytes of those `applied_len` records' txns.
    applied_bytes: usize,
}

impl History {
    fn from_stored(s: &Stored) -> History {
        let mut log: VecDeque<(Zxid, Bytes)> = VecDeque::with_capacity(s.log.len());
        for (zxid, txn) in &s.log {
            assert!(*zxid > s.log_base, "stored log starts after its base");
            if let Some((last, _)) = log.back() {
                assert!(zxid > last, "stored log in zxid order");
            }
            log.push_back((*zxid, txn.clone()));
        }
        assert!(s.applied_zxid >= s.log_base);
        let applied_len = log.partition_point(|(z, _)| *z <= s.applied_zxid);
        let applied_bytes = log.range(..applied_len).map(|(_, txn)| txn.len()).sum();
        let mut h = History {
            log_base: s.log_base,
            log,
            synced: s.log_base.max(s.synced_zxid),
            applied: s.applied_zxid,
            applied_len,
            applied_bytes,
        };
        h.synced = h.synced.min(h.last());
        assert!(h.applied <= h.last(), "applied beyond the log");
        h
    }

    fn last(&self) -> Zxid {
        self.log.back().map_or(self.log_base, |(z, _)| *z)
    }

    fn contains(&self, zxid: Zxid) -> bool {
        zxid == self.log_base || self.log.binary_search_by_key(&zxid, |(z, _)| *z).is_ok()
    }

    /// The last zxid of the history at or below `zxid` (at least `log_base`).
    fn floor(&self, zxid: Zxid) -> Zxid {
        let idx = self.log.partition_point(|(z, _)| *z <= zxid);
        if idx == 0 {
            self.log_base
        } else {
            self.log[idx - 1].0
        }
    }

    fn after(&self, zxid: Zxid) -> impl Iterator<Item = &(Zxid, Bytes)> {
        let idx = self.log.partition_point(|(z, _)| *z <= zxid);
        self.log.range(idx..)
    }

    /// The first record not yet applied.
    fn next_unapplied(&self) -> Option<&(Zxid, Bytes)> {
        self.log.get(self.applied_len)
    }

    /// Records in the window not yet applied.
    fn unapplied_len(&self) -> usize {
        self.log.len() - self.applied_len
    }

    fn append(&mut self, zxid: Zxid, txn: Bytes) {
        assert!(zxid > self.last(), "log appends in zxid order");
        self.log.push_back((zxid, txn));
    }

    fn truncate(&mut self, to: Zxid) {
        assert!(to >= self.applied, "never truncate what was applied");
        while self.log.back().is_some_and(|(z, _)| *z > to) {
            self.log.pop_back();
        }
        self.synced = self.synced.min(to);
    }

    /// Marks records up to `to` applied; returns them.
    fn apply_up_to(&mut self, to: Zxid) -> Vec<(Zxid, Bytes)> {
        assert!(to <= self.last(), "apply only what is logged");
        let out: Vec<(Zxid, Bytes)> = self
            .log
            .range(self.applied_len..)
            .take_while(|(z, _)| *z <= to)
            .cloned()
            .collect();
        self.applied_len += out.len();
        self.applied_bytes += out.iter().map(|(_, txn)| txn.len()).sum::<usize>();
        self.applied = self.applied.max(to);
        out
    }

    /// Marks the first record not yet applied applied; returns it.
    fn apply_next(&mut self) -> Option<(Zxid, Bytes)> {
        let next = self.log.get(self.applied_len).cloned()?;
        self.applied_len += 1;
        self.applied_bytes += next.1.len();
        self.applied = next.0;
        Some(next)
    }

    /// Drops the oldest applied records from memory until at most `keep` of them, holding
    /// at most `keep_bytes` of txns, are left. (With large values the count alone let the
    /// window hold gigabytes; a DIFF bigger than `keep_bytes` goes as a SNAP anyway.)
    fn trim(&mut self, keep: usize, keep_bytes: usize) {
        while self.applied_len > 0 && (self.applied_len > keep || self.applied_bytes > keep_bytes) {
            let Some((z, txn)) = self.log.pop_front() else {
                break;
            };
            self.log_base = z;
            self.applied_len -= 1;
            self.applied_bytes -= txn.len();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaderPhase {
    /// Waiting for a quorum of FOLLOWERINFO.
    Discovering,
    /// LEADERINFO sent; waiting for a quorum of ACKEPOCH.
    AwaitingEpochAcks,
    /// Syncing; waiting for a quorum of NEWLEADER acks.
    AwaitingNewLeaderAcks,
    Broadcasting,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// FOLLOWERINFO heard; LEADERINFO not sent yet (epoch not chosen).
    Info { last_zxid: Zxid },
    /// LEADERINFO sent.
    EpochSent,
    /// ACKEPOCH heard; sync waits for the epoch quorum.
    EpochAcked { last_zxid: Zxid },
    /// Sync and NEWLEADER sent: in the broadcast stream from here on.
    Syncing,
    /// NEWLEADER acked; UPTODATE waits for establishment.
    Acked,
    /// UPTODATE sent.
    Active,
}

#[derive(Debug, Clone)]
struct LearnerSlot {
    observer: bool,
    stage: Stage,
    /// Highest zxid the learner acked as synced (followers, after NEWLEADER).
    acked: Zxid,
    last_heard_ms: i64,
    /// Its ACKEPOCH did not go below an epoch it had accepted ([`EPOCH_BELOW_ACCEPTED`]).
    promised: bool,
}

impl LearnerSlot {
    fn in_stream(&self) -> bool {
        matches!(self.stage, Stage::Syncing | Stage::Acked | Stage::Active)
    }

    fn acked_newleader(&self) -> bool {
        matches!(self.stage, Stage::Acked | Stage::Active)
    }
}

/// A leader's learners as `mntr` reports them (ZooKeeper's `learners`, `synced_followers`,
/// `synced_observers`, `pending_syncs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnerCounts {
    /// Learners connected and known (any stage).
    pub learners: usize,
    /// Followers that acked NEWLEADER: in the broadcast stream and synced.
    pub synced_followers: usize,
    /// Observers that acked NEWLEADER.
    pub synced_observers: usize,
    /// Forwarded syncs waiting for their zxid to commit.
    pub pending_syncs: usize,
    /// Of the synced followers, those outside the voters (a server a reconfig has not
    /// made a member, learning without a vote).
    pub synced_non_voting_followers: usize,
}

/// A reconfig proposed and not yet committed: it and every later proposal need a quorum
/// of the new voters as well as of the old (ZooKeeper's proposals carry both verifiers).
#[derive(Debug, Clone)]
struct PendingReconfig {
    zxid: Zxid,
    quorum: Quorum,
    observers: BTreeSet<ServerId>,
}

/// The leader of one epoch (Java's `Leader` plus its `LearnerHandler`s).
#[derive(Debug)]
pub struct Leader {
    pending_reconfig: Option<PendingReconfig>,
    was_established: bool,
    cfg: PeerConfig,
    phase: LeaderPhase,
    accepted_epoch: u64,
    current_epoch: u64,
    /// (current epoch, last zxid) when the role began: a learner ahead of it wins.
    summary: (u64, Zxid),
    /// The epoch proposed (valid from `AwaitingEpochAcks`).
    epoch: u64,
    hist: History,
    learners: BTreeMap<ServerId, LearnerSlot>,
    /// Voters whose FOLLOWERINFO counted for the epoch (self included), and the highest
    /// accepted epoch among them.
    infos: BTreeSet<ServerId>,
    accepted_max: u64,
    epoch_acks: BTreeSet<ServerId>,
    newleader_acks: BTreeSet<ServerId>,
    next_counter: u32,
    /// Forwarded syncs: (learner, answered once this zxid is committed).
    pending_syncs: VecDeque<(ServerId, Zxid)>,
    establish_by_ms: i64,
    next_ping_ms: i64,
    /// When this role began (`mntr`'s `leader_uptime`).
    started_ms: i64,
    actions: VecDeque<Action>,
}

impl Leader {
    /// Lets applied records beyond what a DIFF may carry leave memory ([`History::trim`]).
    fn trim_history(&mut self) {
        self.hist
            .trim(self.cfg.committed_log_max, self.cfg.committed_log_bytes_max);
    }

    /// Takes the lead after an election. `establish_by_ms` is the decision's deadline.
    pub fn new(cfg: PeerConfig, stored: &Stored, establish_by_ms: i64, now_ms: i64) -> Leader {
        assert!(cfg.is_voter(cfg.my_id), "only a voter leads");
        assert!(stored.current_epoch <= stored.accepted_epoch);
        let hist = History::from_stored(stored);
        // Only a reconfig that is in the history and not applied can be pending; the
        // runtime found it there, so anything else is ignored rather than trusted.
        let pending_reconfig = stored
            .reconfig
            .as_ref()
            .filter(|r| r.zxid > hist.applied && r.zxid <= hist.last())
            .map(|r| PendingReconfig {
                zxid: r.zxid,
                quorum: Quorum::majority(r.voters.iter().copied()),
                observers: r.observers.clone(),
            });
        let mut leader = Leader {
            pending_reconfig,
            was_established: false,
            summary: (stored.current_epoch, hist.last()),
            phase: LeaderPhase::Discovering,
            accepted_epoch: stored.accepted_epoch,
            current_epoch: stored.current_epoch,
            epoch: 0,
            hist,
            learners: BTreeMap::new(),
            infos: BTreeSet::from([cfg.my_id]),
            accepted_max: stored.accepted_epoch,
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            next_counter: 1,
            pending_syncs: VecDeque::new(),
            establish_by_ms,
            next_ping_ms: now_ms,
            started_ms: now_ms,
            actions: VecDeque::new(),
            cfg,
        };
        if leader.hist.synced < leader.hist.last() {
            let up_to = leader.hist.last();
            leader.actions.push_back(Action::SyncLog { up_to });
        }
        leader.check_discovery();
        leader
    }

    // Getters.

    pub fn my_id(&self) -> ServerId {
        self.cfg.my_id
    }

    /// The epoch this leader proposed (0 until a quorum of learners was heard).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn is_established(&self) -> bool {
        self.phase == LeaderPhase::Broadcasting
    }

    /// Whether this role got established, even if it stepped down since: a leader that a
    /// reconfig removed stops in the same input that commits it, before its caller
    /// performs the delivery.
    pub fn was_established(&self) -> bool {
        self.was_established
    }

    pub fn is_stopped(&self) -> bool {
        self.phase == LeaderPhase::Stopped
    }

    pub fn last_committed(&self) -> Zxid {
        self.hist.applied
    }

    pub fn last_proposed(&self) -> Zxid {
        self.hist.last()
    }

    /// When this role began (the `now_ms` given to [`Leader::new`]).
    pub fn started_ms(&self) -> i64 {
        self.started_ms
    }

    /// The learners by stage, for monitoring.
    pub fn learner_counts(&self) -> LearnerCounts {
        let synced = |observer: bool| {
            self.learners
                .values()
                .filter(|s| s.observer == observer && s.acked_newleader())
                .count()
        };
        let synced_non_voting_followers = self
            .learners
            .iter()
            .filter(|(id, s)| !s.observer && s.acked_newleader() && !self.cfg.is_voter(**id))
            .count();
        LearnerCounts {
            learners: self.learners.len(),
            synced_followers: synced(false),
            synced_observers: synced(true),
            pending_syncs: self.pending_syncs.len(),
            synced_non_voting_followers,
        }
    }

    /// The learners synced or syncing (in the broadcast stream).
    pub fn learners_in_stream(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.learners
            .iter()
            .filter(|(_, s)| s.in_stream())
            .map(|(id, _)| *id)
    }

    /// The servers that would ack a proposal now: this leader and the followers (voting
    /// or not) that acked NEWLEADER. A reconfig needs a quorum of its new voters among
    /// them (ZooKeeper's `isQuorumSynced` counts its forwarding followers). Observers are
    /// left out: they never ack, so a reconfig that needs an observer made voter to commit
    /// would wait for ever, and every write behind it. So is a follower that the membership
    /// in force makes an observer: it is about to come back as one (the cluster simulation
    /// found a second reconfig stuck that way, seed 89936).
    pub fn synced_servers(&self) -> BTreeSet<ServerId> {
        let mut ids: BTreeSet<ServerId> = self
            .learners
            .iter()
            .filter(|(id, s)| {
                !s.observer && !self.cfg.observers.contains(id) && s.acked_newleader()
            })
            .map(|(id, _)| *id)
            .collect();
        ids.insert(self.cfg.my_id);
        ids
    }

    /// Whether `ids` hold a quorum for establishment: of the voters, and of the pending
    /// reconfig's voters when there is one (ZooKeeper's `waitForNewLeaderAck` counts the
    /// last-seen quorum verifier with the current one; discovery counts the current one).
    fn holds_every_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
        self.cfg.quorum.contains_quorum(ids)
            && self
                .pending_reconfig
                .as_ref()
                .is_none_or(|p| p.quorum.contains_quorum(ids))
    }

    /// Whether `id` votes in the reconfig pending in this leader's history.
    fn votes_next(&self, id: ServerId) -> bool {
        self.pending_reconfig
            .as_ref()
            .is_some_and(|p| p.quorum.is_voter(id))
    }

    /// Whether a reconfig is proposed and not yet committed.
    pub fn reconfig_pending(&self) -> bool {
        self.pending_reconfig.is_some()
    }

    /// The proposal `zxid` (just made by [`Leader::propose`]) is a reconfig to `voters` and
    /// `observers`: it commits only with a quorum of the old voters and one of the new, and
    /// so do the proposals after it until it commits. Then the new membership counts alone;
    /// a leader that is no longer a voter steps down once it has delivered the commit.
    pub fn reconfig_proposed(
        &mut self,
        zxid: Zxid,
        voters: BTreeSet<ServerId>,
        observers: BTreeSet<ServerId>,
    ) {
        assert!(zxid <= self.hist.last(), "a reconfig is proposed first");
        assert!(zxid > self.hist.applied, "a reconfig is not committed yet");
        self.pending_reconfig = Some(PendingReconfig {
            zxid,
            quorum: Quorum::majority(voters),
            observers,
        });
    }

    // Inputs.

    pub fn handle(&mut self, now_ms: i64, input: Input) {
        if self.phase == LeaderPhase::Stopped {
            return;
        }
        match input {
            Input::Message { from, msg } => self.handle_message(now_ms, from, msg),
            Input::Disconnected { peer } => {
                if self.learners.remove(&peer).is_some() {
                    tracing::info!(me = self.cfg.my_id, peer, "learner disconnected");
                }
                // Its NEWLEADER ack no longer counts: it may have moved on to a newer epoch
                // and committed there, and this leader, established late on its old ack,
                // would serve a history behind that one. It acks again if it comes back.
                // (The cluster simulation found this, seed 84521 with membership changes.)
                if self.phase == LeaderPhase::AwaitingNewLeaderAcks {
                    self.newleader_acks.remove(&peer);
                }
            }
            Input::LogSynced { up_to } => {
                let up_to = up_to.min(self.hist.last());
                if up_to > self.hist.synced {
                    self.hist.synced = up_to;
                    self.try_commit();
                }
            }
            Input::SnapshotInstalled { .. } => {
                tracing::warn!(me = self.cfg.my_id, "a leader installs no snapshot");
            }
            Input::Tick => self.tick(now_ms),
        }
    }

    /// Orders `txn` as the next proposal; returns its zxid. The txn is already validated.
    pub fn propose(&mut self, txn: Bytes) -> Result<Zxid, ProposeError> {
        if self.phase != LeaderPhase::Broadcasting {
            return Err(ProposeError::NotEstablished);
        }
        let outstanding = self.hist.unapplied_len();
        if outstanding >= self.cfg.outstanding_max {
            return Err(ProposeError::Backlog { outstanding });
        }
        // Java forces a new election when the counter rolls over; so does this.
        if self.next_counter == u32::MAX {
            self.step_down(format!("zxid counter exhausted in epoch {}", self.epoch));
            return Err(ProposeError::CounterExhausted { epoch: self.epoch });
        }
        let zxid = zxid_of(self.epoch, self.next_counter);
        self.next_counter += 1;
        self.hist.append(zxid, txn.clone());
        self.actions.push_back(Action::Append {
            records: vec![(zxid, txn.clone())],
        });
        self.actions.push_back(Action::SyncLog { up_to: zxid });
        let followers = self.learners_where(|s| s.in_stream() && !s.observer);
        for to in followers {
            self.send(
                to,
                Message::Proposal {
                    zxid,
                    txn: txn.clone(),
                },
            );
        }
        Ok(zxid)
    }

    // Outputs.

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<i64> {
        match self.phase {
            LeaderPhase::Stopped => None,
            LeaderPhase::Broadcasting => Some(self.next_ping_ms),
            _ => Some(self.establish_by_ms),
        }
    }

    // Discovery.

    fn handle_message(&mut self, now_ms: i64, from: ServerId, msg: Message) {
        if let Message::FollowerInfo(info) | Message::ObserverInfo(info) = &msg {
            let observer = matches!(msg, Message::ObserverInfo(_));
            self.handle_learner_info(now_ms, from, observer, info);
            return;
        }
        let Some(slot) = self.learners.get_mut(&from) else {
            tracing::debug!(me = self.cfg.my_id, from, kind = ?msg.kind(), "message from an unknown learner");
            return;
        };
        slot.last_heard_ms = now_ms;
        match msg {
            Message::AckEpoch {
                current_epoch,
                last_zxid,
            } => self.handle_ack_epoch(from, current_epoch, last_zxid),
            Message::Ack { zxid } => self.handle_ack(from, zxid),
            Message::Ping { .. } => {}
            Message::Request(request) => self.handle_request(from, request),
            other => self.misbehaved(from, format!("unexpected {:?}", other.kind())),
        }
    }

    fn handle_learner_info(
        &mut self,
        now_ms: i64,
        from: ServerId,
        observer: bool,
        info: &LearnerInfo,
    ) {
        // With reconfig, a learner may come with a stale idea of its own role (it missed
        // the reconfig that changed it): it is taken as it comes, and learns its role from
        // the history it syncs. Only a voter's follower slot counts in a quorum, so a
        // learner claiming too much gains nothing.
        let known_role = self.cfg.accept_non_members
            || if observer {
                self.cfg.observers.contains(&from)
            } else {
                self.cfg.is_voter(from)
            };
        if info.sender != from || from == self.cfg.my_id || !known_role {
            self.actions.push_back(Action::Disconnect { peer: from });
            tracing::warn!(me = self.cfg.my_id, from, observer, "refusing a learner");
            return;
        }
        if info.protocol_version != PROTOCOL_VERSION {
            self.misbehaved(from, format!("protocol version {}", info.protocol_version));
            return;
        }
        // A new FOLLOWERINFO is a new connection: whatever the old one had is gone.
        self.learners.insert(
            from,
            LearnerSlot {
                observer,
                stage: Stage::Info {
                    last_zxid: info.last_zxid,
                },
                acked: 0,
                last_heard_ms: now_ms,
                promised: false,
            },
        );
        if self.phase == LeaderPhase::Discovering {
            if !observer {
                self.infos.insert(from);
                self.accepted_max = self.accepted_max.max(info.accepted_epoch);
            }
            self.check_discovery();
        } else if !observer && self.cfg.is_voter(from) && info.accepted_epoch > self.epoch {
            // The voter promised a newer epoch and will refuse ours. Java keeps leading and
            // the voter is locked out until the leader fails; stepping down lets the next
            // discovery pick an epoch above its promise.
            self.step_down(format!(
                "voter {from} accepted epoch {}, above ours {}",
                info.accepted_epoch, self.epoch
            ));
        } else {
            self.send_leader_info(from);
        }
    }

    fn check_discovery(&mut self) {
        if self.phase != LeaderPhase::Discovering || !self.cfg.quorum.contains_quorum(&self.infos) {
            return;
        }
        let epoch = self.accepted_max + 1;
        self.epoch = epoch;
        self.accepted_epoch = epoch;
        self.actions
            .push_back(Action::PersistAcceptedEpoch { epoch });
        self.phase = LeaderPhase::AwaitingEpochAcks;
        self.epoch_acks.insert(self.cfg.my_id);
        tracing::info!(me = self.cfg.my_id, epoch, "proposing a new epoch");
        let waiting = self.learners_where(|s| matches!(s.stage, Stage::Info { .. }));
        for id in waiting {
            self.send_leader_info(id);
        }
        self.check_epoch_quorum();
    }

    fn send_leader_info(&mut self, to: ServerId) {
        if let Some(slot) = self.learners.get_mut(&to) {
            slot.stage = Stage::EpochSent;
        }
        self.send(
            to,
            Message::LeaderInfo {
                new_epoch: self.epoch,
                protocol_version: PROTOCOL_VERSION,
            },
        );
    }

    fn handle_ack_epoch(&mut self, from: ServerId, current_epoch: u64, last_zxid: Zxid) {
        let Some(slot) = self.learners.get_mut(&from) else {
            return;
        };
        if slot.stage != Stage::EpochSent {
            self.misbehaved(from, "ACKEPOCH out of order".to_string());
            return;
        }
        slot.stage = Stage::EpochAcked { last_zxid };
        slot.promised = current_epoch != EPOCH_BELOW_ACCEPTED;
        let observer = slot.observer;
        let promised = slot.promised;
        let votes_now = !observer && self.cfg.is_voter(from);
        // A voter of the reconfig in our history whose NEWLEADER ack would count.
        let votes_next = self.votes_next(from) && (!observer || promised);
        let fresh_promise =
            current_epoch != EPOCH_ALREADY_ACCEPTED && current_epoch != EPOCH_BELOW_ACCEPTED;
        let ahead = (current_epoch, last_zxid) > self.summary;
        match self.phase {
            LeaderPhase::AwaitingEpochAcks => {
                // Java's `waitForEpochAck`: a voter with a newer history than ours means we
                // must not lead (it would lose its txns). An observer's newer tail was never
                // committed (observers do not count), so it is truncated instead.
                if fresh_promise && (votes_now || votes_next) && ahead {
                    self.step_down(format!(
                        "learner {from} is ahead: epoch {current_epoch}, zxid {last_zxid:#x}"
                    ));
                    return;
                }
                if fresh_promise && votes_now {
                    self.epoch_acks.insert(from);
                }
                self.check_epoch_quorum();
            }
            // After the epoch quorum a late voter of the reconfig in our history is still
            // checked: the epoch quorum (of the voters in force) need not meet the quorum
            // that committed txns after that reconfig, and its NEWLEADER ack would count
            // for the new voters. Truncating its newer txns would lose them. (ZooKeeper's
            // election counts the last-seen configuration's voters for the same reason.)
            LeaderPhase::AwaitingNewLeaderAcks if fresh_promise && votes_next && ahead => {
                self.step_down(format!(
                    "next voter {from} is ahead: epoch {current_epoch}, zxid {last_zxid:#x}"
                ));
            }
            _ => self.sync_learner(from),
        }
    }

    /// The learners whose slot passes `keep`, collected (the caller then acts on each).
    fn learners_where(&self, keep: impl Fn(&LearnerSlot) -> bool) -> Vec<ServerId> {
        self.learners
            .iter()
            .filter(|(_, s)| keep(s))
            .map(|(id, _)| *id)
            .collect()
    }

    fn check_epoch_quorum(&mut self) {
        if self.phase != LeaderPhase::AwaitingEpochAcks
            || !self.cfg.quorum.contains_quorum(&self.epoch_acks)
        {
            return;
        }
        self.current_epoch = self.epoch;
        self.actions
            .push_back(Action::PersistCurrentEpoch { epoch: self.epoch });
        self.phase = LeaderPhase::AwaitingNewLeaderAcks;
        // Our own history is ours: it counts once it is durable (try_establish checks).
        let acked = self.learners_where(|s| matches!(s.stage, Stage::EpochAcked { .. }));
        for id in acked {
            self.sync_learner(id);
        }
        self.try_establish();
    }

    // Synchronisation.

    fn sync_learner(&mut self, to: ServerId) {
        let votes_next = self.votes_next(to);
        let established = self.phase == LeaderPhase::Broadcasting;
        let Some(slot) = self.learners.get_mut(&to) else {
            return;
        };
        let Stage::EpochAcked { last_zxid: p } = slot.stage else {
            return;
        };
        // An observer that is a voter of the reconfig in our history and made us a true
        // promise is synced now: its NEWLEADER ack counts towards the new voters' quorum,
        // as ZooKeeper's does.
        let observer = slot.observer;
        let next_voter = slot.promised && votes_next;
        if observer && !established && !next_voter {
            // An observer waits until a quorum acked NEWLEADER. Its log does not count, and
            // it may have accepted this (older) epoch after a newer one (see the learner's
            // `handle_leader_info`); a leader that never establishes could otherwise TRUNC
            // records a newer leader committed from it. Once established, our history
            // holds every committed txn. (The cluster simulation found this, seed 2852
            // after an election change.)
            return;
        }
        slot.stage = Stage::Syncing;
        // Observers see only committed txns (or, before establishment, the history that
        // commits with it); later ones come as INFORM.
        let limit = if observer && established {
            self.hist.applied
        } else {
            self.hist.last()
        };
        // (start, whether the learner first truncates to it) of a DIFF or TRUNC; none for
        // a SNAP. Once established, a DIFF whose records would take more than
        // `diff_bytes_max` goes as a SNAP too, since all of it is queued for the learner at
        // once (a fixed bound; ZooKeeper compares the txns with the snapshot's size).
        // Before, the leader's applied zxid may be below what a learner applied, so it is a
        // DIFF.
        let incremental = if p < self.hist.log_base {
            None
        } else if self.hist.contains(p) {
            Some((p, false))
        } else {
            Some((self.hist.floor(p), true))
        };
        let incremental = incremental.filter(|&(start, _)| {
            !established
                || self
                    .hist
                    .after(start)
                    .take_while(|(z, _)| *z <= limit)
                    .map(|(_, txn)| txn.len())
                    .sum::<usize>()
                    <= self.cfg.diff_bytes_max
        });
        let from = match incremental {
            None => {
                let d = self.hist.applied;
                self.actions
                    .push_back(Action::SendSnapshot { to, last_zxid: d });
                d
            }
            Some((p, false)) => {
                self.send(to, Message::Diff { last_zxid: p });
                p
            }
            Some((t, true)) => {
                self.send(to, Message::Trunc { truncate_to: t });
                t
            }
        };
        let records: Vec<(Zxid, Bytes)> = self
            .hist
            .after(from)
            .take_while(|(z, _)| *z <= limit)
            .cloned()
            .collect();
        tracing::info!(
            me = self.cfg.my_id,
            learner = to,
            from = format_args!("{from:#x}"),
            records = records.len(),
            "syncing learner"
        );
        for (zxid, txn) in records {
            self.send(to, Message::Proposal { zxid, txn });
        }
        self.send(
            to,
            // The runtime fills in the membership.
            Message::NewLeader {
                zxid: zxid_of(self.epoch, 0),
                config_version: 0,
                config: Bytes::new(),
            },
        );
    }

    fn handle_ack(&mut self, from: ServerId, zxid: Zxid) {
        let Some(slot) = self.learners.get_mut(&from) else {
            return;
        };
        if zxid == zxid_of(self.epoch, 0) {
            if slot.stage != Stage::Syncing {
                self.misbehaved(from, "NEWLEADER ack out of order".to_string());
                return;
            }
            slot.stage = Stage::Acked;
            let counts = !slot.observer || slot.promised;
            if counts && (!slot.observer || self.votes_next(from)) {
                self.newleader_acks.insert(from);
            }
            match self.phase {
                LeaderPhase::AwaitingNewLeaderAcks => self.try_establish(),
                LeaderPhase::Broadcasting => self.send_up_to_date(from),
                _ => {}
            }
            return;
        }
        if slot.observer || !slot.acked_newleader() {
            self.misbehaved(from, format!("ACK {zxid:#x} before NEWLEADER was acked"));
            return;
        }
        if zxid > self.hist.last() || epoch_of(zxid) != self.epoch {
            self.misbehaved(from, format!("ACK of unknown zxid {zxid:#x}"));
            return;
        }
        slot.acked = slot.acked.max(zxid);
        self.try_commit();
    }

    fn try_establish(&mut self) {
        if self.phase != LeaderPhase::AwaitingNewLeaderAcks {
            return;
        }
        let mut acks = self.newleader_acks.clone();
        if self.hist.synced >= self.hist.last() {
            acks.insert(self.cfg.my_id);
        }
        if !self.holds_every_quorum(&acks) {
            return;
        }
        // The history is on a quorum that accepted this epoch: it is committed, a reconfig
        // in it too (its new voters hold the history as well), and that membership counts
        // from here on.
        self.phase = LeaderPhase::Broadcasting;
        self.was_established = true;
        let last = self.hist.last();
        let records = self.hist.apply_up_to(last);
        if !records.is_empty() {
            self.actions.push_back(Action::Deliver { records });
        }
        if self.pending_reconfig.is_some() {
            self.activate_reconfig();
        }
        tracing::info!(
            me = self.cfg.my_id,
            epoch = self.epoch,
            "leader established"
        );
        self.actions
            .push_back(Action::Established { epoch: self.epoch });
        let acked = self.learners_where(|s| s.stage == Stage::Acked);
        for id in acked {
            self.send_up_to_date(id);
        }
        // Observers held in `sync_learner` until now.
        let held = self.learners_where(|s| matches!(s.stage, Stage::EpochAcked { .. }));
        for id in held {
            self.sync_learner(id);
        }
        self.trim_history();
        if !self.cfg.is_voter(self.cfg.my_id) {
            self.step_down("no longer a voter after the reconfig in its history".to_string());
        }
    }

    fn send_up_to_date(&mut self, to: ServerId) {
        if let Some(slot) = self.learners.get_mut(&to) {
            slot.stage = Stage::Active;
        }
        let committed = self.hist.applied;
        self.send(to, Message::Commit { zxid: committed });
        self.send(to, Message::UpToDate);
    }

    // Broadcast.

    fn try_commit(&mut self) {
        if self.phase != LeaderPhase::Broadcasting {
            self.try_establish();
            return;
        }
        let mut committed = Vec::new();
        // The voters that logged the next proposal, and the last zxid every one of them
        // logged: acks are cumulative, so up to there the set is the same and is not
        // gathered again for each proposal of a batch.
        let mut acks: BTreeSet<ServerId> = BTreeSet::new();
        let mut acks_hold_to: Option<Zxid> = None;
        while let Some(&(zxid, _)) = self.hist.next_unapplied() {
            if acks_hold_to.is_none_or(|to| zxid > to) {
                acks.clear();
                let mut hold_to = Zxid::MAX;
                for (id, s) in &self.learners {
                    if !s.observer && s.acked_newleader() && s.acked >= zxid {
                        acks.insert(*id);
                        hold_to = hold_to.min(s.acked);
                    }
                }
                if self.hist.synced >= zxid {
                    acks.insert(self.cfg.my_id);
                    hold_to = hold_to.min(self.hist.synced);
                }
                acks_hold_to = Some(hold_to);
            }
            if !self.cfg.quorum.contains_quorum(&acks) {
                break;
            }
            if let Some(pending) = &self.pending_reconfig {
                if zxid >= pending.zxid && !pending.quorum.contains_quorum(&acks) {
                    break;
                }
            }
            assert_eq!(
                epoch_of(zxid),
                self.epoch,
                "commit only this epoch's proposals"
            );
            let Some(next) = self.hist.apply_next() else {
                break;
            };
            committed.push(next);
            if self
                .pending_reconfig
                .as_ref()
                .is_some_and(|p| p.zxid == zxid)
            {
                self.activate_reconfig();
                // Roles and the quorum may have changed: gather the acks anew.
                acks_hold_to = None;
            }
        }
        let Some(&(last, _)) = committed.last() else {
            return;
        };
        let stream: Vec<(ServerId, bool)> = self
            .learners
            .iter()
            .filter(|(_, s)| s.in_stream())
            .map(|(id, s)| (*id, s.observer))
            .collect();
        for (to, observer) in stream {
            if observer {
                for (zxid, txn) in &committed {
                    self.send(
                        to,
                        Message::Inform {
                            zxid: *zxid,
                            txn: txn.clone(),
                        },
                    );
                }
            } else {
                self.send(to, Message::Commit { zxid: last });
            }
        }
        self.actions
            .push_back(Action::Deliver { records: committed });
        self.answer_syncs();
        self.trim_history();
        if !self.cfg.is_voter(self.cfg.my_id) {
            self.step_down("no longer a voter after a reconfig".to_string());
        }
    }

    /// The pending reconfig committed: its membership is the one that counts now.
    fn activate_reconfig(&mut self) {
        let Some(pending) = self.pending_reconfig.take() else {
            return;
        };
        tracing::info!(
            me = self.cfg.my_id,
            zxid = format_args!("{:#x}", pending.zxid),
            voters = ?pending.quorum.voters(),
            observers = ?pending.observers,
            "reconfig committed"
        );
        self.cfg.quorum = pending.quorum;
        self.cfg.observers = pending.observers;
    }

    fn handle_request(&mut self, from: ServerId, request: ForwardedRequest) {
        if self.phase != LeaderPhase::Broadcasting {
            tracing::debug!(
                me = self.cfg.my_id,
                from,
                "dropping a request before establishment"
            );
            return;
        }
        if request.op == op::SYNC {
            self.pending_syncs.push_back((from, self.hist.last()));
            self.answer_syncs();
            return;
        }
        self.actions.push_back(Action::Forwarded { from, request });
    }

    fn answer_syncs(&mut self) {
        while let Some(&(to, zxid)) = self.pending_syncs.front() {
            if zxid > self.hist.applied {
                break;
            }
            self.pending_syncs.pop_front();
            if self.learners.get(&to).is_some_and(|s| s.in_stream()) {
                self.send(to, Message::Sync { zxid });
            }
        }
    }

    fn tick(&mut self, now_ms: i64) {
        if self.phase != LeaderPhase::Broadcasting {
            if now_ms >= self.establish_by_ms {
                self.step_down(format!(
                    "not established in {} ms",
                    self.cfg.init_limit_ms()
                ));
            }
            return;
        }
        if now_ms < self.next_ping_ms {
            return;
        }
        self.next_ping_ms = now_ms + (self.cfg.tick_ms / 2).max(1);
        let deadline = now_ms - self.cfg.sync_limit_ms();
        let silent = self.learners_where(|s| s.last_heard_ms < deadline);
        for id in silent {
            tracing::info!(
                me = self.cfg.my_id,
                peer = id,
                "learner silent past syncLimit"
            );
            self.learners.remove(&id);
            self.actions.push_back(Action::Disconnect { peer: id });
        }
        // Java's leader loop: without a quorum of synced voters in touch, stop leading.
        let mut synced: BTreeSet<ServerId> = self
            .learners
            .iter()
            .filter(|(_, s)| !s.observer && s.acked_newleader())
            .map(|(id, _)| *id)
            .collect();
        synced.insert(self.cfg.my_id);
        if !self.cfg.quorum.contains_quorum(&synced) {
            self.step_down("lost the quorum of synced followers".to_string());
            return;
        }
        let stream: Vec<ServerId> = self.learners_in_stream().collect();
        for to in stream {
            self.send(to, Message::Ping { touches: vec![] });
        }
    }

    fn misbehaved(&mut self, peer: ServerId, what: String) {
        tracing::warn!(
            me = self.cfg.my_id,
            peer,
            what,
            "learner misbehaved; disconnecting"
        );
        self.learners.remove(&peer);
        self.actions.push_back(Action::Disconnect { peer });
    }

    fn step_down(&mut self, reason: String) {
        tracing::info!(me = self.cfg.my_id, reason, "leader stepping down");
        self.phase = LeaderPhase::Stopped;
        self.learners.clear();
        self.actions.push_back(Action::Looking { reason });
    }

    fn send(&mut self, to: ServerId, msg: Message) {
        self.actions.push_back(Action::Send { to, msg });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerPhase {
    /// FOLLOWERINFO sent; waiting for LEADERINFO.
    Connecting,
    /// ACKEPOCH sent; waiting for DIFF, TRUNC or SNAP.
    AwaitingSync,
    /// Receiving the sync's proposals; waiting for NEWLEADER.
    Syncing,
    /// NEWLEADER heard; acked once the log is durable up to `needs`.
    AwaitingDurable {
        needs: Zxid,
    },
    /// NEWLEADER acked; waiting for UPTODATE.
    AwaitingUpToDate,
    Serving,
    Stopped,
}

/// A follower or an observer (Java's `Learner`, `Follower`, `Observer`).
#[derive(Debug)]
pub struct Learner {
    cfg: PeerConfig,
    leader: ServerId,
    observer: bool,
    phase: LearnerPhase,
    accepted_epoch: u64,
    current_epoch: u64,
    /// The epoch of the leader followed (valid from `AwaitingSync`).
    epoch: u64,
    hist: History,
    /// A SNAP is being installed: nothing else from the leader until it is.
    installing: Option<Zxid>,
    last_acked: Zxid,
    establish_by_ms: i64,
    last_heard_ms: i64,
    actions: VecDeque<Action>,
}

impl Learner {
    /// Lets applied records beyond what a DIFF may carry leave memory ([`History::trim`]),
    /// as a leader does.
    fn trim_history(&mut self) {
        self.hist
            .trim(self.cfg.committed_log_max, self.cfg.committed_log_bytes_max);
    }

    /// Follows (or observes) `leader` after an election. `establish_by_ms` is the
    /// decision's deadline to be synced.
    pub fn new(
        cfg: PeerConfig,
        stored: &Stored,
        leader: ServerId,
        establish_by_ms: i64,
        now_ms: i64,
    ) -> Learner {
        assert!(leader != cfg.my_id);
        // A server outside the membership (removed, or not yet added) follows without a
        // vote when the leader takes such servers; otherwise it could only observe.
        let observer = cfg.observers.contains(&cfg.my_id)
            || (!cfg.is_voter(cfg.my_id) && !cfg.accept_non_members);
        let hist = History::from_stored(stored);
        let info = LearnerInfo {
            sender: cfg.my_id,
            protocol_version: PROTOCOL_VERSION,
            accepted_epoch: stored.accepted_epoch,
            last_zxid: hist.last(),
        };
        let mut learner = Learner {
            leader,
            observer,
            phase: LearnerPhase::Connecting,
            accepted_epoch: stored.accepted_epoch,
            current_epoch: stored.current_epoch,
            epoch: 0,
            hist,
            installing: None,
            last_acked: 0,
            establish_by_ms,
            last_heard_ms: now_ms,
            actions: VecDeque::new(),
            cfg,
        };
        let msg = if observer {
            Message::ObserverInfo(info)
        } else {
            Message::FollowerInfo(info)
        };
        learner.send(msg);
        learner
    }

    // Getters.

    pub fn leader(&self) -> ServerId {
        self.leader
    }

    pub fn is_observer(&self) -> bool {
        self.observer
    }

    pub fn is_serving(&self) -> bool {
        self.phase == LearnerPhase::Serving
    }

    pub fn is_stopped(&self) -> bool {
        self.phase == LearnerPhase::Stopped
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn last_committed(&self) -> Zxid {
        self.hist.applied
    }

    // Inputs.

    pub fn handle(&mut self, now_ms: i64, input: Input) {
        if self.phase == LearnerPhase::Stopped {
            return;
        }
        let result = match input {
            Input::Message { from, msg } => {
                if from != self.leader {
                    tracing::debug!(me = self.cfg.my_id, from, "message from a non-leader");
                    return;
                }
                self.last_heard_ms = now_ms;
                self.handle_message(msg)
            }
            Input::Disconnected { peer } => {
                if peer == self.leader {
                    Err("connection to the leader lost".to_string())
                } else {
                    Ok(())
                }
            }
            Input::LogSynced { up_to } => {
                let up_to = up_to.min(self.hist.last());
                if up_to > self.hist.synced {
                    self.hist.synced = up_to;
                }
                self.after_synced();
                Ok(())
            }
            Input::SnapshotInstalled { last_zxid } => {
                if self.installing == Some(last_zxid) {
                    self.installing = None;
                    Ok(())
                } else {
                    Err(format!("unexpected snapshot installed at {last_zxid:#x}"))
                }
            }
            Input::Tick => self.tick(now_ms),
        };
        if let Err(reason) = result {
            self.stop(reason);
        }
    }

    /// Sends a client's write (or sync: `op::SYNC`) to the leader.
    pub fn forward(&mut self, request: ForwardedRequest) -> Result<(), NotServing> {
        if self.phase != LearnerPhase::Serving {
            return Err(NotServing);
        }
        self.send(Message::Request(request));
        Ok(())
    }

    // Outputs.

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<i64> {
        match self.phase {
            LearnerPhase::Stopped => None,
            LearnerPhase::Serving => Some(self.last_heard_ms + self.cfg.sync_limit_ms()),
            _ => Some(self.establish_by_ms),
        }
    }

    // Messages.

    fn handle_message(&mut self, msg: Message) -> Result<(), String> {
        if self.installing.is_some() {
            return Err(format!("{:?} while installing a snapshot", msg.kind()));
        }
        match (self.phase, msg) {
            (
                LearnerPhase::Connecting,
                Message::LeaderInfo {
                    new_epoch,
                    protocol_version,
                },
            ) => self.handle_leader_info(new_epoch, protocol_version),
            (LearnerPhase::AwaitingSync, Message::Diff { last_zxid }) => {
                if last_zxid != self.hist.last() {
                    return Err(format!(
                        "DIFF after {last_zxid:#x}, but the log ends at {:#x}",
                        self.hist.last()
                    ));
                }
                self.phase = LearnerPhase::Syncing;
                Ok(())
            }
            (LearnerPhase::AwaitingSync, Message::Trunc { truncate_to }) => {
                self.handle_trunc(truncate_to)
            }
            (
                LearnerPhase::AwaitingSync,
                Message::Snap {
                    last_zxid,
                    snapshot_bytes,
                },
            ) => self.handle_snap(last_zxid, snapshot_bytes),
            (
                LearnerPhase::Syncing
                | LearnerPhase::AwaitingDurable { .. }
                | LearnerPhase::AwaitingUpToDate
                | LearnerPhase::Serving,
                Message::Proposal { zxid, txn },
            ) => self.handle_proposal(zxid, txn),
            (
                LearnerPhase::Syncing
                | LearnerPhase::AwaitingDurable { .. }
                | LearnerPhase::AwaitingUpToDate
                | LearnerPhase::Serving,
                Message::Commit { zxid },
            ) => self.commit_up_to(zxid),
            (
                LearnerPhase::AwaitingDurable { .. }
                | LearnerPhase::AwaitingUpToDate
                | LearnerPhase::Serving,
                Message::Inform { zxid, txn },
            ) if self.observer => {
                if zxid > self.hist.last() {
                    self.check_next_in_epoch(zxid)?;
                    self.log_record(zxid, txn)?;
                }
                self.commit_up_to(zxid)
            }
            (LearnerPhase::Syncing, Message::NewLeader { zxid, .. }) => {
                if zxid != zxid_of(self.epoch, 0) {
                    return Err(format!("NEWLEADER {zxid:#x} in epoch {}", self.epoch));
                }
                let needs = self.hist.last();
                self.phase = LearnerPhase::AwaitingDurable { needs };
                self.actions.push_back(Action::SyncLog { up_to: needs });
                self.after_synced();
                Ok(())
            }
            (LearnerPhase::AwaitingUpToDate, Message::UpToDate) => {
                self.phase = LearnerPhase::Serving;
                tracing::info!(
                    me = self.cfg.my_id,
                    leader = self.leader,
                    epoch = self.epoch,
                    "synced with the leader"
                );
                self.actions
                    .push_back(Action::Established { epoch: self.epoch });
                Ok(())
            }
            (_, Message::Ping { .. }) => {
                self.send(Message::Ping { touches: vec![] });
                Ok(())
            }
            (LearnerPhase::Serving, Message::Sync { zxid }) => {
                if zxid > self.hist.applied {
                    return Err(format!("SYNC {zxid:#x} before its commit"));
                }
                self.actions.push_back(Action::SyncReached { zxid });
                Ok(())
            }
            (phase, other) => Err(format!("unexpected {:?} in {phase:?}", other.kind())),
        }
    }

    fn handle_leader_info(&mut self, new_epoch: u64, protocol_version: u32) -> Result<(), String> {
        if protocol_version != PROTOCOL_VERSION {
            return Err(format!("leader speaks protocol {protocol_version}"));
        }
        if new_epoch == EPOCH_ALREADY_ACCEPTED || new_epoch >= u64::from(u32::MAX) {
            return Err(format!("epoch {new_epoch} out of range"));
        }
        // Java's `registerWithLeader`: never go back to an older epoch; an epoch already
        // accepted (from whichever leader) is acked without counting.
        let current_epoch = if new_epoch > self.accepted_epoch {
            self.accepted_epoch = new_epoch;
            self.actions
                .push_back(Action::PersistAcceptedEpoch { epoch: new_epoch });
            self.current_epoch
        } else if new_epoch == self.accepted_epoch {
            EPOCH_ALREADY_ACCEPTED
        } else if self.observer && new_epoch >= self.current_epoch {
            // An observer counts in no quorum, so its promise protects nothing; it only
            // never goes back behind the epoch it synced in. It says so: a leader must not
            // count it for a reconfig that would make it a voter.
            EPOCH_BELOW_ACCEPTED
        } else {
            return Err(format!(
                "leader proposes epoch {new_epoch}, below the accepted {}",
                self.accepted_epoch
            ));
        };
        self.epoch = new_epoch;
        self.phase = LearnerPhase::AwaitingSync;
        self.send(Message::AckEpoch {
            current_epoch,
            last_zxid: self.hist.last(),
        });
        Ok(())
    }

    fn handle_trunc(&mut self, truncate_to: Zxid) -> Result<(), String> {
        if truncate_to < self.hist.applied {
            return Err(format!(
                "TRUNC to {truncate_to:#x} would undo applied {:#x}",
                self.hist.applied
            ));
        }
        if !self.hist.contains(truncate_to) {
            return Err(format!("TRUNC to {truncate_to:#x}, which the log lacks"));
        }
        self.hist.truncate(truncate_to);
        self.actions
            .push_back(Action::TruncateLog { to: truncate_to });
        self.phase = LearnerPhase::Syncing;
        Ok(())
    }

    fn handle_snap(&mut self, last_zxid: Zxid, snapshot_bytes: u64) -> Result<(), String> {
        if last_zxid < self.hist.applied {
            return Err(format!(
                "SNAP at {last_zxid:#x} would undo applied {:#x}",
                self.hist.applied
            ));
        }
        self.hist = History {
            log_base: last_zxid,
            log: VecDeque::new(),
            synced: last_zxid,
            applied: last_zxid,
            applied_len: 0,
            applied_bytes: 0,
        };
        self.installing = Some(last_zxid);
        self.actions.push_back(Action::InstallSnapshot {
            from: self.leader,
            last_zxid,
            snapshot_bytes,
        });
        self.phase = LearnerPhase::Syncing;
        Ok(())
    }

    fn handle_proposal(&mut self, zxid: Zxid, txn: Bytes) -> Result<(), String> {
        let after_newleader = !matches!(self.phase, LearnerPhase::Syncing);
        if after_newleader && self.observer {
            return Err("PROPOSAL to an observer after NEWLEADER".to_string());
        }
        if epoch_of(zxid) > self.epoch || (after_newleader && epoch_of(zxid) != self.epoch) {
            return Err(format!("PROPOSAL {zxid:#x} in epoch {}", self.epoch));
        }
        if after_newleader {
            self.check_next_in_epoch(zxid)?;
        }
        self.log_record(zxid, txn)
    }

    /// Once synced, this epoch's txns come one after the other: the first is counter 1,
    /// each next one the counter after the log's end. A gap means a message was lost on
    /// the way; acking past it would count this server for a txn it never logged, so the
    /// role ends and the next sync fills the gap. (ZooKeeper's learner only warns.)
    fn check_next_in_epoch(&self, zxid: Zxid) -> Result<(), String> {
        let last = self.hist.last();
        let expected = if epoch_of(last) == self.epoch {
            last + 1
        } else {
            zxid_of(self.epoch, 1)
        };
        // One not above the log's end (a duplicate) is log_record's to refuse.
        if zxid > last && zxid != expected {
            return Err(format!(
                "txn {zxid:#x} after the log end {last:#x}: expected {expected:#x}"
            ));
        }
        Ok(())
    }

    fn log_record(&mut self, zxid: Zxid, txn: Bytes) -> Result<(), String> {
        if zxid <= self.hist.last() {
            return Err(format!(
                "record {zxid:#x} not above the log end {:#x}",
                self.hist.last()
            ));
        }
        self.hist.append(zxid, txn.clone());
        self.actions.push_back(Action::Append {
            records: vec![(zxid, txn)],
        });
        self.actions.push_back(Action::SyncLog { up_to: zxid });
        Ok(())
    }

    fn commit_up_to(&mut self, zxid: Zxid) -> Result<(), String> {
        if zxid <= self.hist.applied {
            return Ok(());
        }
        if zxid > self.hist.last() {
            return Err(format!(
                "COMMIT {zxid:#x} beyond the log end {:#x}",
                self.hist.last()
            ));
        }
        let records = self.hist.apply_up_to(zxid);
        if !records.is_empty() {
            self.actions.push_back(Action::Deliver { records });
        }
        self.trim_history();
        Ok(())
    }

    /// Acks what became durable: NEWLEADER once the sync is, then this epoch's proposals.
    fn after_synced(&mut self) {
        if let LearnerPhase::AwaitingDurable { needs } = self.phase {
            if self.hist.synced < needs {
                return;
            }
            // The synced history is durable: only now may the epoch become current (a
            // restart must not claim the epoch with a shorter log).
            self.current_epoch = self.epoch;
            self.actions
                .push_back(Action::PersistCurrentEpoch { epoch: self.epoch });
            self.send(Message::Ack {
                zxid: zxid_of(self.epoch, 0),
            });
            self.phase = LearnerPhase::AwaitingUpToDate;
        }
        let acking = matches!(
            self.phase,
            LearnerPhase::AwaitingUpToDate | LearnerPhase::Serving
        );
        if acking
            && !self.observer
            && self.hist.synced > self.last_acked
            && epoch_of(self.hist.synced) == self.epoch
        {
            self.last_acked = self.hist.synced;
            self.send(Message::Ack {
                zxid: self.hist.synced,
            });
        }
    }

    fn tick(&mut self, now_ms: i64) -> Result<(), String> {
        match self.phase {
            LearnerPhase::Serving => {
                if now_ms >= self.last_heard_ms + self.cfg.sync_limit_ms() {
                    return Err("leader silent past syncLimit".to_string());
                }
            }
            _ => {
                if now_ms >= self.establish_by_ms {
                    return Err("not synced within initLimit".to_string());
                }
            }
        }
        Ok(())
    }

    fn stop(&mut self, reason: String) {
        tracing::info!(
            me = self.cfg.my_id,
            leader = self.leader,
            reason,
            "learner stops"
        );
        self.phase = LearnerPhase::Stopped;
        self.actions.push_back(Action::Looking { reason });
    }

    fn send(&mut self, msg: Message) {
        self.actions.push_back(Action::Send {
            to: self.leader,
            msg,
        });
    }
}

#[cfg(test)]
#[path = "peer_tests.rs"]
mod tests;
