//! Deterministic simulation of fast leader election: one thread, a seeded PRNG, a fake clock
//! and a fake network that drops, delays, reorders and duplicates notifications.
//!
//! Per seed: 3–5 voters and 1–2 observers with random (peer epoch, zxid), random start
//! times (some late), some crashes (a crashed server neither sends nor receives, and never
//! comes back; at most as many voters as still leave a quorum). A fault phase of a few
//! seconds is followed by a calm phase (no loss, short delays) in which the election must
//! settle: every live server established under one leader.
//!
//! "Established" stands in for discovery and sync (simulated in `cluster_sim`): a leader is
//! established while a quorum of live voters (itself included) has decided to follow it, and
//! a learner while its leader is. A server not established `initLimit` ticks after deciding,
//! or that lost its establishment for `syncLimit` ticks, starts a new round, as ZooKeeper's
//! `Learner.connectToLeader` and `Leader.getEpochToPropose` timeouts make it do.
//!
//! Checked on every decision: the leader is a voter (never an observer); the decided vote
//! is the leader's own (no invented history); a quorum of voters started with votes no
//! better than it (the leader is the best of a quorum that talked); roles match ids.
//! Checked on every step: at most one established leader, and one established leader per
//! election round. Checked at the end: the calm phase settles within a bounded time; in
//! clean runs (simultaneous start, no loss, delays below the finalize wait) the leader is the
//! best voter of all.
//!
//! Not asserted, because fast leader election does not promise it: that every server that
//! decides in a round decides the same leader. With delays above the finalize wait, two
//! servers can decide different leaders in one round; only one can gather a quorum, and the
//! other times out and looks again. The run counts these as `split_rounds`.
//!
//! Entry point: [`run_seed`] runs one seed and returns its [`Stats`] or the [`Failure`]
//! (seed, simulated time, reason); a panic of the code under test is a failure too.
//!
//! Replay one seed with `corral sim --election --seed <n> --trace`, or with
//! `CORRAL_SIM_SEED=<n> cargo test --lib quorum::election -- --nocapture` (both print the
//! event trace on stderr); `CORRAL_SIM_SEEDS=<count>` runs more seeds in the test.

use super::election::{Action, Decision, ElectedRole, Election, ElectionConfig, Vote};
use super::wire::{Notification, PeerState};
use super::ServerId;
use std::collections::{BTreeMap, BTreeSet};

/// Seeds the in-crate test runs by default (seeds 1..=this).
pub const SEEDS_DEFAULT: u64 = 1000;
const TICK_MS: i64 = 2000;
const INIT_LIMIT_TICKS: u32 = 10;
const SYNC_LIMIT_TICKS: u32 = 5;
/// How long the calm phase may take to settle, after the fault phase and the last start.
const SETTLE_BUDGET_MS: i64 = 300_000;
/// A hard bound on events per run, so that a livelock fails instead of hanging.
const EVENTS_MAX: u64 = 2_000_000;

/// The order fast leader election must follow: peer epoch, then zxid, then id.
fn rank(v: Vote) -> (u64, i64, ServerId) {
    (v.peer_epoch, v.zxid, v.leader)
}

/// splitmix64: tiny, seedable, good enough to pick faults.
use super::sim_rng::Rng;

struct Node {
    id: ServerId,
    voter: bool,
    own: Vote,
    start_at_ms: i64,
    crash_at_ms: Option<i64>,
    election: Option<Election>,
    crashed: bool,
    /// Established at least once since the last decision.
    was_established: bool,
    lost_at_ms: Option<i64>,
}

impl Node {
    fn live(&self) -> Option<&Election> {
        if self.crashed {
            None
        } else {
            self.election.as_ref()
        }
    }
}

struct Scenario {
    voters: Vec<ServerId>,
    observers: Vec<ServerId>,
    drop_percent: u64,
    dup_percent: u64,
    delay_max_ms: i64,
    fault_end_ms: i64,
    clean: bool,
}

/// What one run (or, added up with [`Stats::add`], many runs) did.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Seeds run (1 for one run).
    pub seeds: u64,
    /// Decisions taken (any server).
    pub decisions: u64,
    /// Servers that gave up on a leader and looked again.
    pub restarts: u64,
    /// Rounds in which two servers decided different leaders.
    pub split_rounds: u64,
    /// Decisions taken by observers.
    pub observer_decisions: u64,
    /// The longest time, in ms, a calm phase took to settle.
    pub settle_ms_max: i64,
    /// Steps of the simulation loop.
    pub events: u64,
}

impl Stats {
    /// Adds another run's counters to these (the settle time is the maximum).
    pub fn add(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.decisions += o.decisions;
        self.restarts += o.restarts;
        self.split_rounds += o.split_rounds;
        self.observer_decisions += o.observer_decisions;
        self.settle_ms_max = self.settle_ms_max.max(o.settle_ms_max);
        self.events += o.events;
    }

    /// The probes these runs never hit, by name (over many seeds every one must be hit).
    pub fn probes_missed(&self) -> Vec<&'static str> {
        let probes = [
            ("observer decision", self.observer_decisions),
            ("restart", self.restarts),
        ];
        probes
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(name, _)| *name)
            .collect()
    }
}

/// A seed that broke a checked property (or made the code under test panic).
pub type Failure = super::cluster_sim::Failure;

/// Runs the election simulation of `seed` to its end: `Ok` with its counters when every
/// check held and the calm phase settled. `trace` prints every event on stderr. Bounded:
/// at most `EVENTS_MAX` steps and `SETTLE_BUDGET_MS` of simulated calm phase.
pub fn run_seed(seed: u64, trace: bool) -> Result<Stats, Failure> {
    let mut sim = Sim::new(seed, trace);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.run()));
    let reason = match outcome {
        Ok(Ok(())) => {
            let mut stats = std::mem::take(&mut sim.stats);
            stats.seeds = 1;
            return Ok(stats);
        }
        Ok(Err(why)) => why,
        Err(panic) => format!(
            "panicked: {}",
            super::cluster_sim::panic_message(panic.as_ref())
        ),
    };
    Err(Failure {
        seed,
        at_ms: sim.now_ms,
        reason,
    })
}

struct Sim {
    trace: bool,
    rng: Rng,
    sc: Scenario,
    nodes: BTreeMap<ServerId, Node>,
    /// In flight: (deliver at, sequence) -> (from, to, notification).
    net: BTreeMap<(i64, u64), (ServerId, ServerId, Notification)>,
    seq: u64,
    now_ms: i64,
    /// Per round, the leaders decided in it (any server) and the leaders established in it.
    decided_in_round: BTreeMap<u64, BTreeSet<ServerId>>,
    established_in_round: BTreeMap<u64, ServerId>,
    stats: Stats,
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = Rng(seed);
        let voter_count = rng.range(3, 5) as u64;
        let observer_count = rng.range(1, 2) as u64;
        let clean = rng.percent(20);
        // Ids shuffled between roles, so observers sometimes hold the highest id.
        let mut ids: Vec<ServerId> = (1..=voter_count + observer_count).collect();
        rng.shuffle(&mut ids);
        let (voters, observers) = ids.split_at(voter_count as usize);
        let sc = Scenario {
            voters: voters.to_vec(),
            observers: observers.to_vec(),
            drop_percent: if clean { 0 } else { rng.below(30) },
            dup_percent: if clean { 0 } else { rng.below(20) },
            delay_max_ms: if clean {
                rng.range(1, 100)
            } else {
                rng.range(1, 800)
            },
            fault_end_ms: if clean { 0 } else { rng.range(1_000, 15_000) },
            clean,
        };
        let majority = voter_count / 2 + 1;
        let mut crashable_voters = if clean { 0 } else { voter_count - majority };
        let mut nodes = BTreeMap::new();
        for &id in voters.iter().chain(observers) {
            let voter = voters.contains(&id);
            // Histories: small epochs and counters, so that ties on epoch and zxid happen.
            // Observers are sometimes given the best history of all: it must not matter.
            let peer_epoch = rng.below(3);
            let zxid = ((rng.below(3) as i64) << 32) | rng.below(4) as i64;
            let start_at_ms = if clean || rng.percent(50) {
                0
            } else {
                rng.range(0, sc.fault_end_ms + 5_000)
            };
            let crash_at_ms = if !clean
                && rng.percent(25)
                && (!voter || crashable_voters > 0)
                && sc.fault_end_ms > 0
            {
                if voter {
                    crashable_voters -= 1;
                }
                Some(rng.range(0, sc.fault_end_ms))
            } else {
                None
            };
            nodes.insert(
                id,
                Node {
                    id,
                    voter,
                    own: Vote {
                        leader: id,
                        zxid,
                        peer_epoch,
                    },
                    start_at_ms,
                    crash_at_ms,
                    election: None,
                    crashed: false,
                    was_established: false,
                    lost_at_ms: None,
                },
            );
        }
        Sim {
            trace,
            rng,
            sc,
            nodes,
            net: BTreeMap::new(),
            seq: 0,
            now_ms: 0,
            decided_in_round: BTreeMap::new(),
            established_in_round: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("[{:>7} ms] {}", self.now_ms, what());
        }
    }

    fn config(&self) -> ElectionConfig {
        ElectionConfig::majority(
            self.sc.voters.iter().copied(),
            self.sc.observers.iter().copied(),
            TICK_MS,
            INIT_LIMIT_TICKS,
            SYNC_LIMIT_TICKS,
        )
    }

    fn send(&mut self, from: ServerId, to: ServerId, n: Notification) {
        let faulty = self.now_ms < self.sc.fault_end_ms;
        let copies = if faulty && self.rng.percent(self.sc.dup_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if faulty && self.rng.percent(self.sc.drop_percent) {
                continue;
            }
            let delay = if faulty {
                self.rng.range(1, self.sc.delay_max_ms)
            } else {
                self.rng.range(1, 10.min(self.sc.delay_max_ms))
            };
            self.seq += 1;
            self.net
                .insert((self.now_ms + delay, self.seq), (from, to, n.clone()));
        }
    }

    /// Carries out what a node's election asked for.
    fn drain(&mut self, id: ServerId) -> Result<(), String> {
        loop {
            let Some(node) = self.nodes.get_mut(&id) else {
                return Ok(());
            };
            let Some(action) = node.election.as_mut().and_then(|e| e.poll_action()) else {
                return Ok(());
            };
            match action {
                Action::Send { to, notification } => self.send(id, to, notification),
                Action::Broadcast { notification } => {
                    for v in self.sc.voters.clone() {
                        if v != id {
                            self.send(id, v, notification.clone());
                        }
                    }
                }
                Action::Decided(d) => self.on_decided(id, d)?,
                // Every membership here is the same, unversioned one: never offered.
                Action::NewerMembership { version, .. } => {
                    return Err(format!("{id} was offered membership version {version:#x}"));
                }
            }
        }
    }

    fn on_decided(&mut self, id: ServerId, d: Decision) -> Result<(), String> {
        self.log(|| format!("{id} decided {d:?}"));
        self.stats.decisions += 1;
        let voter = self.nodes[&id].voter;
        let leader = d.vote.leader;
        if !self.sc.voters.contains(&leader) {
            return Err(format!("{id} chose {leader}, which is not a voter"));
        }
        let expected_role = match (voter, leader == id) {
            (true, true) => ElectedRole::Leading,
            (true, false) => ElectedRole::Following,
            (false, _) => ElectedRole::Observing,
        };
        if d.role != expected_role {
            return Err(format!(
                "{id} decided role {:?}, expected {expected_role:?}",
                d.role
            ));
        }
        if !voter {
            self.stats.observer_decisions += 1;
        }
        let leader_own = self.nodes[&leader].own;
        if d.vote != leader_own {
            return Err(format!(
                "{id} decided vote {:?}, but leader {leader} started with {leader_own:?}",
                d.vote
            ));
        }
        // A quorum of voters started with a vote no better than the leader's.
        // Judged by the sim's own ordering, not by the code under test.
        let no_better = self
            .sc
            .voters
            .iter()
            .filter(|v| rank(self.nodes[v].own) <= rank(d.vote))
            .count();
        if no_better <= self.sc.voters.len() / 2 {
            return Err(format!(
                "{id} chose {leader}, but only {no_better} voters hold no better history"
            ));
        }
        let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
        node.was_established = false;
        node.lost_at_ms = None;
        let leaders = self.decided_in_round.entry(d.election_epoch).or_default();
        leaders.insert(leader);
        if leaders.len() == 2 {
            self.stats.split_rounds += 1;
        }
        Ok(())
    }

    fn established_leaders(&self) -> BTreeSet<ServerId> {
        let quorum = self.sc.voters.len() / 2 + 1;
        let mut out = BTreeSet::new();
        for node in self.nodes.values() {
            let Some(e) = node.live() else { continue };
            if e.state() != PeerState::Leading {
                continue;
            }
            let followers = self
                .nodes
                .values()
                .filter(|f| f.voter)
                .filter_map(|f| f.live())
                .filter(|fe| {
                    fe.decision().is_some_and(|d| d.vote.leader == node.id)
                        && matches!(fe.state(), PeerState::Following | PeerState::Leading)
                })
                .count();
            if followers >= quorum {
                out.insert(node.id);
            }
        }
        out
    }

    /// Stands in for discovery and sync: establishment, its deadlines, and the checks on it.
    fn roles(&mut self) -> Result<(), String> {
        let leaders = self.established_leaders();
        if leaders.len() > 1 {
            return Err(format!("two established leaders at once: {leaders:?}"));
        }
        for &l in &leaders {
            let Some(d) = self.nodes[&l].live().and_then(|e| e.decision()) else {
                continue;
            };
            if let Some(&other) = self.established_in_round.get(&d.election_epoch) {
                if other != l {
                    return Err(format!(
                        "round {} established leaders {other} and {l}",
                        d.election_epoch
                    ));
                }
            }
            self.established_in_round.insert(d.election_epoch, l);
        }
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for id in ids {
            let now = self.now_ms;
            let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
            let Some(d) = node.live().and_then(|e| e.decision()) else {
                continue;
            };
            if leaders.contains(&d.vote.leader) {
                node.was_established = true;
                node.lost_at_ms = None;
                continue;
            }
            let deadline = if node.was_established {
                let lost = *node.lost_at_ms.get_or_insert(now);
                lost + TICK_MS * i64::from(SYNC_LIMIT_TICKS)
            } else {
                d.establish_by_ms
            };
            if now >= deadline {
                let own = node.own;
                if let Some(e) = node.election.as_mut() {
                    e.start_looking(now, own);
                }
                self.stats.restarts += 1;
                self.log(|| format!("{id} gives up on leader {} and looks again", d.vote.leader));
                self.drain(id)?;
            }
        }
        Ok(())
    }

    /// The earliest future time something happens.
    fn next_time(&self) -> Option<i64> {
        let mut t: Option<i64> = self.net.keys().next().map(|k| k.0);
        let mut consider = |x: i64| t = Some(t.map_or(x, |t| t.min(x)));
        for node in self.nodes.values() {
            if node.crashed {
                continue;
            }
            match &node.election {
                None => consider(node.start_at_ms),
                Some(e) => {
                    if let Some(at) = e.poll_timeout() {
                        consider(at);
                    }
                    if let Some(d) = e.decision() {
                        match node.lost_at_ms {
                            Some(lost) => consider(lost + TICK_MS * i64::from(SYNC_LIMIT_TICKS)),
                            None if !node.was_established => consider(d.establish_by_ms),
                            None => {}
                        }
                    }
                }
            }
            if let Some(c) = node.crash_at_ms {
                consider(c);
            }
        }
        t
    }

    fn settled(&self) -> Option<ServerId> {
        let leaders = self.established_leaders();
        let leader = *leaders.iter().next()?;
        let all = self.nodes.values().filter(|n| !n.crashed).all(|n| {
            n.live()
                .and_then(|e| e.decision())
                .is_some_and(|d| d.vote.leader == leader)
        });
        all.then_some(leader)
    }

    fn run(&mut self) -> Result<(), String> {
        let calm_from = self
            .nodes
            .values()
            .map(|n| n.start_at_ms)
            .max()
            .unwrap_or(0)
            .max(self.sc.fault_end_ms);
        let give_up_at = calm_from + SETTLE_BUDGET_MS;
        loop {
            self.stats.events += 1;
            if self.stats.events > EVENTS_MAX {
                return Err(format!("more than {EVENTS_MAX} events"));
            }
            if self.now_ms >= calm_from {
                if let Some(leader) = self.settled() {
                    self.stats.settle_ms_max = self.now_ms - calm_from;
                    return self.check_final(leader);
                }
            }
            let next = match self.next_time() {
                // Wake up when the calm phase begins, to check it.
                Some(t) if self.now_ms < calm_from => Some(t.min(calm_from)),
                None if self.now_ms < calm_from => Some(calm_from),
                other => other,
            };
            let Some(t) = next else {
                return Err("nothing left to happen, and not settled".to_string());
            };
            if t > give_up_at {
                return Err(format!(
                    "not settled {SETTLE_BUDGET_MS} ms after the calm phase began at {calm_from} ms"
                ));
            }
            self.now_ms = self.now_ms.max(t);
            self.step()?;
        }
    }

    fn step(&mut self) -> Result<(), String> {
        let now = self.now_ms;
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        let cfg = self.config();
        for &id in &ids {
            let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
            if node.crash_at_ms.is_some_and(|c| c <= now) && !node.crashed {
                node.crashed = true;
                self.log(|| format!("{id} crashes"));
                continue;
            }
            if node.crashed {
                continue;
            }
            if node.election.is_none() && node.start_at_ms <= now {
                node.election = Some(Election::new(cfg.clone(), id, node.own, now));
                self.log(|| format!("{id} starts"));
                self.drain(id)?;
            }
        }
        while let Some(entry) = self.net.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (from, to, n) = entry.remove();
            // Messages to or from a crashed server, or to one not started, are lost.
            let from_alive = !self.nodes.get(&from).is_some_and(|f| f.crashed);
            let node = self.nodes.get_mut(&to).ok_or("unknown node")?;
            if node.crashed || !from_alive {
                continue;
            }
            let Some(e) = node.election.as_mut() else {
                continue;
            };
            e.handle(now, from, &n);
            self.log(|| {
                format!(
                    "{to} <- {from}: {:?} {} r{} {:?}",
                    n.state, n.leader, n.election_epoch, n.zxid
                )
            });
            self.drain(to)?;
        }
        for &id in &ids {
            let node = self.nodes.get_mut(&id).ok_or("unknown node")?;
            if node.crashed {
                continue;
            }
            if let Some(e) = node.election.as_mut() {
                if e.poll_timeout().is_some_and(|t| t <= now) {
                    e.tick(now);
                    self.drain(id)?;
                }
            }
        }
        self.roles()
    }

    fn check_final(&self, leader: ServerId) -> Result<(), String> {
        if self.sc.clean {
            let best = self
                .sc
                .voters
                .iter()
                .map(|v| self.nodes[v].own)
                .max_by_key(|v| rank(*v))
                .ok_or("no voters")?;
            if best.leader != leader {
                return Err(format!(
                    "clean run elected {leader}, but {} has the best history {best:?}",
                    best.leader
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_elections_agree_and_settle() {
        let (seeds, traced) = crate::quorum::sim_rng::seeds_from_env(SEEDS_DEFAULT);
        let count = seeds.len() as u64;
        let mut total = Stats::default();
        for seed in seeds {
            match run_seed(seed, traced) {
                Ok(s) => total.add(&s),
                Err(f) => panic!(
                    "election simulation failed, {f}\n\
                     replay: corral sim --election --seed {seed} --trace\n\
                     or: CORRAL_SIM_SEED={seed} cargo test --lib quorum::election -- --nocapture"
                ),
            }
        }
        eprintln!(
            "election sim: {} decisions, {} observer decisions, {} restarts, {} split rounds, \
             settle max {} ms, {} events",
            total.decisions,
            total.observer_decisions,
            total.restarts,
            total.split_rounds,
            total.settle_ms_max,
            total.events
        );
        // Probes: the runs must reach the paths they claim to test.
        if !traced {
            assert_eq!(total.seeds, count);
            assert!(
                total.probes_missed().is_empty(),
                "never reached: {:?}",
                total.probes_missed()
            );
        }
    }
}
