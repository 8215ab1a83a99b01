//! Fast leader election as a sans-IO state machine (ZooKeeper's `FastLeaderElection`).
//!
//! Every server starts an election round when it has no leader. It votes for itself (its id,
//! last logged zxid and current epoch), tells every voter, and adopts any better vote it
//! hears: higher peer epoch, then higher zxid, then higher id ([`Election::is_better`], Java's
//! `totalOrderPredicate`). Once a quorum of voters holds its vote in the same round it waits
//! `finalize_wait_ms` (200) for a better vote; if none comes, it decides. A server that finds
//! the others already FOLLOWING/LEADING joins that leader when a quorum follows it and the
//! leader itself says LEADING (Java's `outofelection` set and `checkLeader`). Observers send
//! their (empty) vote to the voters, are answered at once, and only learn the leader: they
//! are never counted in a quorum and never proposed.
//!
//! Run-loop contract (as `zab::Sequencer` and str0m's): one input at a time,
//! [`Election::handle`] for a notification from an authenticated peer, [`Election::tick`]
//! when [`Election::poll_timeout`] has passed, [`Election::start_looking`] when the role that
//! followed a decision failed; after each, drain [`Election::poll_action`] until `None`.
//! Times are milliseconds given by the caller; nothing here reads a clock, draws a random
//! number or does I/O.
//!
//! Decision table for a notification from a voter while LOOKING (Java's `lookForLeader`):
//!
//! | its state | its round vs ours | effect |
//! | --- | --- | --- |
//! | LOOKING | higher | adopt the round, forget the round's votes, vote max(it, own), broadcast |
//! | LOOKING | lower | answer it with our vote; otherwise ignore |
//! | LOOKING | equal | adopt it if better and broadcast, answer it with ours if worse; record it; a quorum for our vote starts the finalize wait |
//! | FOLLOWING / LEADING | equal | record it in the round; decide if a quorum agrees and the leader leads |
//! | FOLLOWING / LEADING | any | record it out of election; join if a quorum follows a leader that leads |
//! | OBSERVING | any | ignore |
//!
//! While the finalize wait runs, a better vote ends the wait and is handled as above; a
//! FOLLOWING / LEADING vote is recorded as above (and may decide); if it does not, the wait
//! goes on unless the vote was better or our quorum is gone; any other notification is
//! dropped and restarts the wait (as Java's inner `poll` loop).
//! A decided server answers LOOKING voters with its decided vote and state, and answers
//! non-voters (observers) with its current vote at once, whatever its state; an observer
//! that asked while we were looking is also sent our decision when we decide.
//!
//! Three departures from Java, all for failover time (a leader's crash puts every other
//! server into a new round at about the same moment):
//! - Answering a worse vote of our own round. A server still following the dead leader
//!   answers a LOOKING vote with its old decision, so that vote is spent; when it starts
//!   looking itself it broadcasts its own, worse, vote. Java's receiver records that vote and
//!   says nothing, so each side holds a vote the other never heard until the first resend
//!   (200 ms, then 400), and only then starts the finalize wait: failovers of 420–950 ms
//!   instead of ~215 in a 3 + 1. The answer is bounded: it goes only to a worse vote,
//!   which its sender replaces with ours.
//! - Telling a configured observer that asked while we were looking our decision. It would
//!   otherwise learn it at its next resend.
//! - Joining, during the finalize wait, a quorum that already follows a leader that says
//!   it leads (Java drops such a notification and restarts the wait).
//!
//! Bounds: the vote tables hold at most one entry per voter, the observers told at decision
//! at most one per configured observer; each input queues at most three actions (an
//! answer, a broadcast, a decision) plus, at a decision, one per observer to tell, so the
//! queue stays short when drained.
//!
//! Reconfig: the runtime hands a committed membership to [`Election::reconfigure`]. Every
//! notification carries the sender's membership (version and text); a looking server that
//! hears a newer one than its own asks the runtime to take it ([`Action::NewerMembership`],
//! once per version) and counts nothing from that notification, as ZooKeeper's
//! `FastLeaderElection` takes the configuration of a notification and restarts its
//! election. So a server that was down during a reconfig finds the new voters even when
//! its old ones are gone. Quorums are [`Quorum`]: a majority
//! of the participants, or ZooKeeper's hierarchical quorum (`group.N`, `weight.N`) with
//! weights of at least 1. Not here: Java's "zxid -1" special case for servers that failed to
//! load their database.

use crate::config::{Membership, Role};
use crate::proto::Zxid;
use crate::quorum::wire::{Notification, PeerState};
use crate::quorum::ServerId;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Java's `finalizeWait`.
pub const FINALIZE_WAIT_MS: i64 = 200;
/// Java's default `zookeeper.fastleader.minNotificationInterval` (= finalizeWait).
pub const NOTIFICATION_INTERVAL_MIN_MS: i64 = 200;
/// Java's default `zookeeper.fastleader.maxNotificationInterval`.
pub const NOTIFICATION_INTERVAL_MAX_MS: i64 = 60_000;

/// Decides which sets of servers form a quorum (`flexible.QuorumVerifier`).
pub trait QuorumVerifier {
    /// A voter's weight; 0 for observers and strangers, which never count nor lead.
    fn weight(&self, id: ServerId) -> u64;
    /// Whether the voters among `ids` form a quorum.
    fn contains_quorum(&self, ids: &BTreeSet<ServerId>) -> bool;

    fn is_voter(&self, id: ServerId) -> bool {
        self.weight(id) > 0
    }
}

/// Majority of the voters (`QuorumMaj`): more than half of them, each weighing 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MajorityQuorum {
    voters: BTreeSet<ServerId>,
}

impl MajorityQuorum {
    pub fn new(voters: impl IntoIterator<Item = ServerId>) -> MajorityQuorum {
        MajorityQuorum {
            voters: voters.into_iter().collect(),
        }
    }

    pub fn voters(&self) -> &BTreeSet<ServerId> {
        &self.voters
    }
}

impl QuorumVerifier for MajorityQuorum {
    fn weight(&self, id: ServerId) -> u64 {
        u64::from(self.voters.contains(&id))
    }

    fn contains_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
        let counted = ids.iter().filter(|id| self.voters.contains(id)).count();
        counted > self.voters.len() / 2
    }
}

/// ZooKeeper's `QuorumHierarchical` (`group.N=a:b:c`, `weight.N=w`): a set of servers is a
/// quorum when, in more than half of the groups of non-zero weight, its members weigh more
/// than half of their group. Every participant is in exactly one group (the config checks
/// it) and weighs its `weight.N` (1 without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierarchicalQuorum {
    /// Every participant: the servers that vote.
    participants: BTreeSet<ServerId>,
    group_of: BTreeMap<ServerId, u64>,
    weight_of: BTreeMap<ServerId, u64>,
    group_weight: BTreeMap<u64, u64>,
    /// Groups of non-zero weight (ZooKeeper's `numGroups`).
    counted_groups: usize,
}

impl HierarchicalQuorum {
    /// `groups` as (group id, members); `weights` the explicit `weight.N` values.
    pub fn new(groups: &[(u64, Vec<ServerId>)], weights: &BTreeMap<ServerId, u64>) -> Self {
        let mut q = HierarchicalQuorum {
            participants: BTreeSet::new(),
            group_of: BTreeMap::new(),
            weight_of: BTreeMap::new(),
            group_weight: BTreeMap::new(),
            counted_groups: 0,
        };
        for (group, members) in groups {
            for &id in members {
                let weight = weights.get(&id).copied().unwrap_or(1);
                q.participants.insert(id);
                q.group_of.insert(id, *group);
                q.weight_of.insert(id, weight);
                *q.group_weight.entry(*group).or_insert(0) += weight;
            }
        }
        q.counted_groups = q.group_weight.values().filter(|w| **w > 0).count();
        q
    }
}

impl QuorumVerifier for HierarchicalQuorum {
    fn weight(&self, id: ServerId) -> u64 {
        self.weight_of.get(&id).copied().unwrap_or(0)
    }

    fn contains_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
        let mut weight_in_group: BTreeMap<u64, u64> = BTreeMap::new();
        for id in ids {
            if let Some(group) = self.group_of.get(id) {
                *weight_in_group.entry(*group).or_insert(0) += self.weight(*id);
            }
        }
        let groups_with_majority = weight_in_group
            .iter()
            .filter(|(group, weight)| {
                **weight > self.group_weight.get(group).copied().unwrap_or(0) / 2
            })
            .count();
        groups_with_majority > self.counted_groups / 2
    }
}

/// The quorum system of a membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quorum {
    Majority(MajorityQuorum),
    /// Boxed: several maps, and rare.
    Hierarchical(Box<HierarchicalQuorum>),
}

impl Quorum {
    /// A majority of `voters`.
    pub fn majority(voters: impl IntoIterator<Item = ServerId>) -> Quorum {
        Quorum::Majority(MajorityQuorum::new(voters))
    }

    /// The participants: every server that votes (ZooKeeper's voting members).
    pub fn voters(&self) -> &BTreeSet<ServerId> {
        match self {
            Quorum::Majority(q) => q.voters(),
            Quorum::Hierarchical(q) => &q.participants,
        }
    }
}

impl QuorumVerifier for Quorum {
    fn weight(&self, id: ServerId) -> u64 {
        match self {
            Quorum::Majority(q) => q.weight(id),
            Quorum::Hierarchical(q) => q.weight(id),
        }
    }

    fn contains_quorum(&self, ids: &BTreeSet<ServerId>) -> bool {
        match self {
            Quorum::Majority(q) => q.contains_quorum(ids),
            Quorum::Hierarchical(q) => q.contains_quorum(ids),
        }
    }
}

/// Why a membership cannot drive an election.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElectionConfigError {
    /// ZooKeeper counts only grouped servers: weights without groups never make a quorum.
    #[error("weight.N lines need group.N lines: without groups no set of servers is a quorum")]
    WeightsWithoutGroups,
    /// A participant that counts nothing would follow, never lead, in ZooKeeper; Corral's
    /// election treats a zero-weight server as an observer, so it refuses the setting.
    #[error("weight.{id}=0 is not supported: make server {id} an observer instead")]
    ZeroWeight { id: ServerId },
    #[error("the membership has no participant")]
    NoVoters,
}

/// What an election needs to know about the ensemble and its clocks.
#[derive(Debug, Clone)]
pub struct ElectionConfig<Q = Quorum> {
    pub quorum: Q,
    /// Non-voting members: answered, never counted.
    pub observers: BTreeSet<ServerId>,
    /// Our membership version, sent in every notification.
    pub config_version: u64,
    /// Our membership as `/zookeeper/config` shows it, sent in every notification (empty:
    /// none to give).
    pub config: Bytes,
    pub tick_ms: i64,
    /// Ticks a decided server has to establish its role (connect and sync) before the
    /// caller restarts the election: the decision's `establish_by_ms`.
    pub init_limit_ticks: u32,
    /// Ticks an established follower may go without hearing from its leader.
    pub sync_limit_ticks: u32,
    pub finalize_wait_ms: i64,
    pub notification_interval_min_ms: i64,
    pub notification_interval_max_ms: i64,
}

impl ElectionConfig<Quorum> {
    /// A majority quorum over `voters`, with ZooKeeper's default election timings.
    pub fn majority(
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
        tick_ms: i64,
        init_limit_ticks: u32,
        sync_limit_ticks: u32,
    ) -> ElectionConfig<Quorum> {
        ElectionConfig {
            quorum: Quorum::majority(voters),
            observers: observers.into_iter().collect(),
            config_version: 0,
            config: Bytes::new(),
            tick_ms,
            init_limit_ticks,
            sync_limit_ticks,
            finalize_wait_ms: FINALIZE_WAIT_MS,
            notification_interval_min_ms: NOTIFICATION_INTERVAL_MIN_MS,
            notification_interval_max_ms: NOTIFICATION_INTERVAL_MAX_MS,
        }
    }

    /// From the `server.N` lines: participants vote, observers learn.
    pub fn from_membership(
        membership: &Membership,
        tick_ms: i64,
        init_limit_ticks: u32,
        sync_limit_ticks: u32,
    ) -> Result<ElectionConfig<Quorum>, ElectionConfigError> {
        if membership.groups.is_empty() && !membership.weights.is_empty() {
            return Err(ElectionConfigError::WeightsWithoutGroups);
        }
        if let Some((&id, _)) = membership.weights.iter().find(|(_, w)| **w == 0) {
            return Err(ElectionConfigError::ZeroWeight { id });
        }
        let ids_with = |role| {
            membership
                .servers
                .iter()
                .filter(move |s| s.role == role)
                .map(|s| s.id)
        };
        let mut cfg = ElectionConfig::majority(
            ids_with(Role::Participant),
            ids_with(Role::Observer),
            tick_ms,
            init_limit_ticks,
            sync_limit_ticks,
        );
        if !membership.groups.is_empty() {
            let groups: Vec<(u64, Vec<ServerId>)> = membership
                .groups
                .iter()
                .map(|g| (g.id, g.members.clone()))
                .collect();
            cfg.quorum = Quorum::Hierarchical(Box::new(HierarchicalQuorum::new(
                &groups,
                &membership.weights,
            )));
        }
        if cfg.quorum.voters().is_empty() {
            return Err(ElectionConfigError::NoVoters);
        }
        cfg.config_version = membership.version;
        cfg.config = Bytes::from(crate::config::render_membership(membership));
        Ok(cfg)
    }
}

impl<Q> ElectionConfig<Q> {
    pub fn init_limit_ms(&self) -> i64 {
        self.tick_ms * i64::from(self.init_limit_ticks)
    }

    pub fn sync_limit_ms(&self) -> i64 {
        self.tick_ms * i64::from(self.sync_limit_ticks)
    }
}

/// A proposal: who should lead, and the history that candidate holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: ServerId,
    /// The candidate's last logged zxid.
    pub zxid: Zxid,
    /// The candidate's current (accepted and acknowledged) epoch.
    pub peer_epoch: u64,
}

impl Vote {
    /// An observer's vote: it proposes nobody.
    pub const NONE: Vote = Vote {
        leader: 0,
        zxid: -1,
        peer_epoch: 0,
    };
}

/// What a decided server does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElectedRole {
    Leading,
    Following,
    Observing,
}

impl ElectedRole {
    fn peer_state(self) -> PeerState {
        match self {
            ElectedRole::Leading => PeerState::Leading,
            ElectedRole::Following => PeerState::Following,
            ElectedRole::Observing => PeerState::Observing,
        }
    }
}

/// The end of an election round on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The leader and the history it announced.
    pub vote: Vote,
    /// The round the decision was made in (the leader's round when joining an established
    /// ensemble).
    pub election_epoch: u64,
    pub role: ElectedRole,
    pub decided_at_ms: i64,
    /// `initLimit` ticks after the decision: if the role is not established by then (the
    /// leader has no quorum of synced followers, or the learner cannot sync), the caller
    /// calls [`Election::start_looking`].
    pub establish_by_ms: i64,
}

/// An output of the election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send to one peer.
    Send {
        to: ServerId,
        notification: Notification,
    },
    /// Send to every voter except this server (observers are not sent to: they ask).
    Broadcast { notification: Notification },
    /// The round ended: take this role.
    Decided(Decision),
    /// A peer runs a newer membership (`config`, its `/zookeeper/config` text, at
    /// `version`) while we look: the runtime takes it if it parses and is still newer,
    /// [`Election::reconfigure`]s, and starts looking again.
    NewerMembership { version: u64, config: Bytes },
}

/// A vote heard from a voter, with the round and state it came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ballot {
    vote: Vote,
    election_epoch: u64,
    state: PeerState,
}

impl Ballot {
    /// Java's `Vote.equals`: votes of servers out of election agree on leader and epoch
    /// alone (their zxid and round may differ, ZOOKEEPER-1805); a LOOKING vote must match
    /// in every field.
    fn agrees_with(&self, other: &Ballot) -> bool {
        if self.state == PeerState::Looking || other.state == PeerState::Looking {
            self.vote == other.vote && self.election_epoch == other.election_epoch
        } else {
            self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Exchanging votes; `finalize_until_ms` is set while a quorum holds our vote.
    Looking {
        finalize_until_ms: Option<i64>,
    },
    Decided(Decision),
}

/// One server's leader election.
#[derive(Debug)]
pub struct Election<Q: QuorumVerifier = Quorum> {
    cfg: ElectionConfig<Q>,
    my_id: ServerId,
    /// Our own vote for the current round (Vote::NONE for an observer).
    own_vote: Vote,
    /// Java's `logicalclock`: the round.
    logical_clock: u64,
    proposal: Vote,
    phase: Phase,
    /// Votes of this round (Java's `recvset`), ours included.
    round_votes: BTreeMap<ServerId, Ballot>,
    /// FOLLOWING/LEADING votes of any round (Java's `outofelection`).
    out_of_election: BTreeMap<ServerId, Ballot>,
    notification_interval_ms: i64,
    /// When we last heard from a voter, or last resent our vote.
    idle_since_ms: i64,
    /// Non-voters that asked while we were looking: they are sent our decision.
    asked_while_looking: BTreeSet<ServerId>,
    /// The newest membership version offered to the runtime ([`Action::NewerMembership`]).
    offered_config_version: u64,
    actions: VecDeque<Action>,
}

impl<Q: QuorumVerifier> Election<Q> {
    /// Starts the first round. `vote` is this server's own: its id, last logged zxid and
    /// current epoch (ignored for an observer, which proposes nobody).
    pub fn new(cfg: ElectionConfig<Q>, my_id: ServerId, vote: Vote, now_ms: i64) -> Election<Q> {
        assert!(my_id != 0, "server id 0 is not a member");
        assert!(cfg.finalize_wait_ms > 0);
        assert!(cfg.notification_interval_min_ms > 0);
        assert!(cfg.notification_interval_min_ms <= cfg.notification_interval_max_ms);
        let mut election = Election {
            cfg,
            my_id,
            own_vote: Vote::NONE,
            logical_clock: 0,
            proposal: Vote::NONE,
            phase: Phase::Looking {
                finalize_until_ms: None,
            },
            round_votes: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            notification_interval_ms: 0,
            idle_since_ms: now_ms,
            asked_while_looking: BTreeSet::new(),
            offered_config_version: 0,
            actions: VecDeque::new(),
        };
        election.start_looking(now_ms, vote);
        election
    }

    // Getters.

    pub fn my_id(&self) -> ServerId {
        self.my_id
    }

    pub fn is_voter(&self) -> bool {
        self.cfg.quorum.is_voter(self.my_id)
    }

    /// A reconfig committed: the new membership counts from now on (the round's votes and
    /// a decision stand; the next round uses the new voters).
    pub fn reconfigure(&mut self, cfg: ElectionConfig<Q>) {
        self.cfg = cfg;
    }

    pub fn config(&self) -> &ElectionConfig<Q> {
        &self.cfg
    }

    /// The round (Java's `logicalclock`).
    pub fn logical_clock(&self) -> u64 {
        self.logical_clock
    }

    /// The vote we hold while looking.
    pub fn proposal(&self) -> Vote {
        self.proposal
    }

    pub fn state(&self) -> PeerState {
        match self.phase {
            Phase::Looking { .. } => PeerState::Looking,
            Phase::Decided(d) => d.role.peer_state(),
        }
    }

    pub fn decision(&self) -> Option<Decision> {
        match self.phase {
            Phase::Looking { .. } => None,
            Phase::Decided(d) => Some(d),
        }
    }

    /// Java's `totalOrderPredicate`: whether `new` beats `current`. Only voters can win;
    /// any voter beats no vote at all.
    pub fn is_better(&self, new: Vote, current: Vote) -> bool {
        if !self.cfg.quorum.is_voter(new.leader) {
            return false;
        }
        if !self.cfg.quorum.is_voter(current.leader) {
            return true;
        }
        (new.peer_epoch, new.zxid, new.leader) > (current.peer_epoch, current.zxid, current.leader)
    }

    // Inputs.

    /// Starts a new round (Java's `lookForLeader`): bumps the round, votes for ourselves
    /// and tells every voter.
    pub fn start_looking(&mut self, now_ms: i64, vote: Vote) {
        if self.is_voter() {
            assert_eq!(vote.leader, self.my_id, "a voter's own vote names itself");
            self.own_vote = vote;
        } else {
            self.own_vote = Vote::NONE;
        }
        // A peer's ballot may carry any round, u64::MAX too: never overflow on it.
        self.logical_clock = self.logical_clock.saturating_add(1);
        self.proposal = self.own_vote;
        self.phase = Phase::Looking {
            finalize_until_ms: None,
        };
        self.round_votes.clear();
        self.out_of_election.clear();
        self.notification_interval_ms = self.cfg.notification_interval_min_ms;
        self.idle_since_ms = now_ms;
        tracing::info!(
            me = self.my_id,
            round = self.logical_clock,
            zxid = format_args!("{:#x}", self.own_vote.zxid),
            "new election"
        );
        self.broadcast();
        self.count_own_vote(now_ms);
    }

    /// A notification from peer `from` (the id its connection authenticated as).
    pub fn handle(&mut self, now_ms: i64, from: ServerId, n: &Notification) {
        if from == self.my_id || n.sender != from {
            tracing::warn!(
                me = self.my_id,
                from,
                sender = n.sender,
                "ignoring notification with a wrong sender id"
            );
            return;
        }
        if n.config_version > self.cfg.config_version
            && !n.config.is_empty()
            && matches!(self.phase, Phase::Looking { .. })
        {
            // Our idea of the voters is stale: counting this vote against it could elect
            // (or wait for) the wrong servers. Offered once per version, in case the
            // runtime refuses it (unparsable text, reconfig disabled).
            if self.offered_config_version < n.config_version {
                self.offered_config_version = n.config_version;
                tracing::info!(
                    from,
                    theirs = format_args!("{:x}", n.config_version),
                    ours = format_args!("{:x}", self.cfg.config_version),
                    "a peer runs a newer membership"
                );
                self.actions.push_back(Action::NewerMembership {
                    version: n.config_version,
                    config: n.config.clone(),
                });
                return;
            }
        }
        if !self.cfg.quorum.is_voter(from) {
            // An observer (or a non-voting member) asks who leads: a voter answers now, and
            // counts nothing. Only a question (a LOOKING notification) is answered, and only
            // by a voter: two servers that each take the other for a non-voter (memberships
            // changing under them) would otherwise answer each other's answers for ever.
            if n.state == PeerState::Looking && self.is_voter() {
                let reply = self.current_notification();
                self.send(from, reply);
            }
            // Only configured observers: with reconfigEnabled the mesh also takes strangers,
            // whose ids must not grow this set.
            if matches!(self.phase, Phase::Looking { .. })
                && self.is_voter()
                && self.cfg.observers.contains(&from)
            {
                self.asked_while_looking.insert(from);
            }
            return;
        }
        let finalize_until_ms = match self.phase {
            Phase::Decided(d) => {
                // Only a voter's answer means anything to a voter; an observer's would be
                // answered at once, and so on for ever.
                if n.state == PeerState::Looking && self.is_voter() {
                    let reply = self.notification(d.vote, d.election_epoch, d.role.peer_state());
                    self.send(from, reply);
                }
                return;
            }
            Phase::Looking { finalize_until_ms } => finalize_until_ms,
        };
        if self.is_voter() && n.state == PeerState::Looking && n.election_epoch < self.logical_clock
        {
            // A voter behind us: tell it about the current round. An observer does not: its
            // round means nothing to voters, and the voter answers an observer at once, so
            // the two would answer each other for ever.
            let reply = self.current_notification();
            self.send(from, reply);
        }
        self.idle_since_ms = now_ms;
        let heard = Vote {
            leader: n.leader,
            zxid: n.zxid,
            peer_epoch: n.peer_epoch,
        };
        if finalize_until_ms.is_some() {
            if matches!(n.state, PeerState::Following | PeerState::Leading)
                && self.cfg.quorum.is_voter(n.leader)
            {
                // An ensemble that is already formed (or forming round the same leader) is
                // joined at once: the wait is only for a better LOOKING vote.
                let ballot = Ballot {
                    vote: heard,
                    election_epoch: n.election_epoch,
                    state: n.state,
                };
                self.handle_established_vote(now_ms, from, ballot);
                if matches!(self.phase, Phase::Looking { .. })
                    && (self.is_better(heard, self.proposal)
                        || !self.has_quorum(&self.round_votes, &self.own_ballot()))
                {
                    // Not joined: a better vote ends the wait as before, and so does a
                    // quorum for our vote that this notification took apart.
                    self.phase = Phase::Looking {
                        finalize_until_ms: None,
                    };
                }
                return;
            }
            if !self.is_better(heard, self.proposal) {
                self.phase = Phase::Looking {
                    finalize_until_ms: Some(now_ms + self.cfg.finalize_wait_ms),
                };
                return;
            }
            self.phase = Phase::Looking {
                finalize_until_ms: None,
            };
        }
        if !self.cfg.quorum.is_voter(n.leader) {
            tracing::warn!(
                me = self.my_id,
                from,
                leader = n.leader,
                "ignoring a vote for a server that cannot lead"
            );
            return;
        }
        let ballot = Ballot {
            vote: heard,
            election_epoch: n.election_epoch,
            state: n.state,
        };
        match n.state {
            PeerState::Looking => self.handle_looking_vote(now_ms, from, ballot),
            PeerState::Following | PeerState::Leading => {
                self.handle_established_vote(now_ms, from, ballot)
            }
            PeerState::Observing => {
                tracing::debug!(from, "ignoring a voter that says it observes");
            }
        }
    }

    /// Timers: ends the finalize wait, or resends our vote after a quiet interval (doubling
    /// the interval each time, up to the maximum).
    pub fn tick(&mut self, now_ms: i64) {
        let Phase::Looking { finalize_until_ms } = self.phase else {
            return;
        };
        if let Some(until) = finalize_until_ms {
            if now_ms >= until {
                self.decide(now_ms, self.proposal, self.logical_clock);
            }
            return;
        }
        if now_ms >= self.idle_since_ms + self.notification_interval_ms {
            self.broadcast();
            self.notification_interval_ms =
                (self.notification_interval_ms * 2).min(self.cfg.notification_interval_max_ms);
            self.idle_since_ms = now_ms;
            tracing::debug!(
                me = self.my_id,
                next_ms = self.notification_interval_ms,
                "notification timeout"
            );
        }
    }

    /// The role that followed the decision is established in `epoch` (Java's
    /// `QuorumPeer.updateElectionVote`, ZOOKEEPER-1732): from now on the decided vote carries
    /// that epoch, so that every member of the ensemble announces the same (leader, epoch)
    /// and a server joining later finds a quorum that agrees, even if its members decided
    /// at different times on votes with different epochs.
    pub fn established(&mut self, epoch: u64) {
        if let Phase::Decided(d) = &mut self.phase {
            d.vote.peer_epoch = epoch;
        }
    }

    // Outputs.

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Election::tick`] must next be called; `None` once decided.
    pub fn poll_timeout(&self) -> Option<i64> {
        match self.phase {
            Phase::Looking {
                finalize_until_ms: Some(until),
            } => Some(until),
            Phase::Looking {
                finalize_until_ms: None,
            } => Some(self.idle_since_ms + self.notification_interval_ms),
            Phase::Decided(_) => None,
        }
    }

    // The round.

    fn handle_looking_vote(&mut self, now_ms: i64, from: ServerId, ballot: Ballot) {
        if ballot.election_epoch > self.logical_clock {
            self.logical_clock = ballot.election_epoch;
            self.round_votes.clear();
            self.proposal = if self.is_better(ballot.vote, self.own_vote) {
                ballot.vote
            } else {
                self.own_vote
            };
            self.broadcast();
        } else if ballot.election_epoch < self.logical_clock {
            return;
        } else if self.is_better(ballot.vote, self.proposal) {
            self.proposal = ballot.vote;
            self.broadcast();
        } else if self.is_voter() && self.is_better(self.proposal, ballot.vote) {
            // Its sender may never have heard our vote (it answered it while still following
            // a leader that is gone): tell it, or both wait for the first resend.
            let reply = self.current_notification();
            self.send(from, reply);
        }
        self.round_votes.insert(from, ballot);
        self.count_own_vote(now_ms);
    }

    /// Records our own vote in the round (Java gets it back through its loopback) and starts
    /// the finalize wait when a quorum holds it.
    fn count_own_vote(&mut self, now_ms: i64) {
        if self.is_voter() {
            let own = self.own_ballot();
            self.round_votes.insert(self.my_id, own);
        }
        if self.cfg.quorum.is_voter(self.proposal.leader)
            && self.has_quorum(&self.round_votes, &self.own_ballot())
        {
            self.phase = Phase::Looking {
                finalize_until_ms: Some(now_ms + self.cfg.finalize_wait_ms),
            };
        }
    }

    fn handle_established_vote(&mut self, now_ms: i64, from: ServerId, ballot: Ballot) {
        if ballot.election_epoch == self.logical_clock {
            self.round_votes.insert(from, ballot);
            if self.has_quorum(&self.round_votes, &ballot)
                && self.leader_leads(&self.round_votes, &ballot)
            {
                self.decide(now_ms, ballot.vote, ballot.election_epoch);
                return;
            }
        }
        self.out_of_election.insert(from, ballot);
        if self.has_quorum(&self.out_of_election, &ballot)
            && self.leader_leads(&self.out_of_election, &ballot)
        {
            self.logical_clock = ballot.election_epoch;
            self.decide(now_ms, ballot.vote, ballot.election_epoch);
        }
    }

    fn has_quorum(&self, votes: &BTreeMap<ServerId, Ballot>, reference: &Ballot) -> bool {
        let agreeing: BTreeSet<ServerId> = votes
            .iter()
            .filter(|(_, b)| b.agrees_with(reference))
            .map(|(id, _)| *id)
            .collect();
        self.cfg.quorum.contains_quorum(&agreeing)
    }

    /// Java's `checkLeader`: the leader must have said LEADING (so a crashed leader is not
    /// elected again and again); if it is us, the round must be ours.
    fn leader_leads(&self, votes: &BTreeMap<ServerId, Ballot>, reference: &Ballot) -> bool {
        if reference.vote.leader == self.my_id {
            return self.logical_clock == reference.election_epoch;
        }
        votes
            .get(&reference.vote.leader)
            .is_some_and(|b| b.state == PeerState::Leading)
    }

    fn decide(&mut self, now_ms: i64, vote: Vote, election_epoch: u64) {
        let role = if vote.leader == self.my_id {
            ElectedRole::Leading
        } else if self.is_voter() {
            ElectedRole::Following
        } else {
            ElectedRole::Observing
        };
        // Only voters are ever proposed (is_better and the vote filter in handle).
        assert!(self.cfg.quorum.is_voter(vote.leader));
        assert!(role != ElectedRole::Leading || self.is_voter());
        let decision = Decision {
            vote,
            election_epoch,
            role,
            decided_at_ms: now_ms,
            establish_by_ms: now_ms + self.cfg.init_limit_ms(),
        };
        self.phase = Phase::Decided(decision);
        self.round_votes.clear();
        self.out_of_election.clear();
        let asked = std::mem::take(&mut self.asked_while_looking);
        if self.is_voter() {
            // (Only a voter answers an observer: two non-voters would answer each other.)
            for observer in asked {
                let notification = self.notification(vote, election_epoch, role.peer_state());
                self.send(observer, notification);
            }
        }
        tracing::info!(
            me = self.my_id,
            leader = vote.leader,
            zxid = format_args!("{:#x}", vote.zxid),
            peer_epoch = vote.peer_epoch,
            round = election_epoch,
            role = ?role,
            "election decided"
        );
        self.actions.push_back(Action::Decided(decision));
    }

    // Messages.

    fn own_ballot(&self) -> Ballot {
        Ballot {
            vote: self.proposal,
            election_epoch: self.logical_clock,
            state: PeerState::Looking,
        }
    }

    fn notification(&self, vote: Vote, election_epoch: u64, state: PeerState) -> Notification {
        Notification {
            state,
            leader: vote.leader,
            zxid: vote.zxid,
            election_epoch,
            peer_epoch: vote.peer_epoch,
            sender: self.my_id,
            config_version: self.cfg.config_version,
            config: self.cfg.config.clone(),
        }
    }

    /// A connection to `peer` just came up: tell a voter our current vote (or decision) at
    /// once, as ZooKeeper resends its last notification on a new connection. Without this
    /// a server whose vote was dropped for want of a link waits for its next resend (the
    /// interval doubles up to a minute while it is alone).
    pub fn peer_connected(&mut self, peer: ServerId) {
        if peer == self.my_id || !self.cfg.quorum.is_voter(peer) {
            return;
        }
        let notification = self.current_notification();
        self.actions.push_back(Action::Send {
            to: peer,
            notification,
        });
    }

    /// What we hold now: the proposal while looking, the decision after.
    fn current_notification(&self) -> Notification {
        match self.phase {
            Phase::Looking { .. } => {
                self.notification(self.proposal, self.logical_clock, PeerState::Looking)
            }
            Phase::Decided(d) => self.notification(d.vote, d.election_epoch, d.role.peer_state()),
        }
    }

    fn broadcast(&mut self) {
        let notification = self.notification(self.proposal, self.logical_clock, PeerState::Looking);
        self.actions.push_back(Action::Broadcast { notification });
    }

    fn send(&mut self, to: ServerId, notification: Notification) {
        self.actions.push_back(Action::Send { to, notification });
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
