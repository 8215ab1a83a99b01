//! The request loop of one session, the churn loop, and the pipelined setup and cleanup
//! around a run.
//!
//! Closed loop: a session keeps exactly `outstanding` requests in flight; each reply frees
//! a slot that the next turn of the loop refills. Latency is from the moment a request is
//! queued (it is written in the same turn) to the moment its reply frame was read, so it
//! includes the client's own queueing, as a real client's would.
//!
//! Open loop (`--rate`): a session sends on its [`Schedule`], at most `outstanding` in
//! flight, and waits for replies no longer than until its next send time. Latency counts
//! from the op's intended send time, so a sender held back by a stalled server still
//! charges the stall to every op it should have sent ([`Lag`] says how far behind it
//! fell).
//!
//! Windows: replies read before `start + warmup` are not recorded; replies read from
//! then until `start + warmup + duration` are (latency, ok count, error codes). At the end
//! nothing new is sent; the replies still in flight are drained for at most
//! [`DRAIN_MAX`] and not recorded. Every loop here ends by a deadline.

use super::record::{Recorder, Sink};
use super::schedule::Schedule;
use super::wire::{create_flags, ReadOutcome, Session, READ_POLL};
use crate::proto::{Acl, ErrorCode};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for the replies still in flight when the measured window ends.
pub const DRAIN_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// getData of a random key.
    Get,
    /// setData (version -1) of a random key with value-bytes of data.
    Set,
    /// create of a new persistent node with value-bytes of data, per session unique
    /// (with --sequential: PERSISTENT_SEQUENTIAL under a parent per session).
    Create,
    /// getData or setData of a random key; `--read-pct` of them reads.
    Mixed,
    /// exists of a random key.
    Exists,
    /// One multi of `--multi-ops` setData of random keys.
    Multi,
    /// Each op: connect a new session, create an ephemeral node, close the session.
    EphemeralChurn,
    /// `--watchers` sessions keep a data watch on one node; one writer sets it. Latency:
    /// from the write's (intended) send time to each notification's arrival.
    WatchFanout,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Set => "set",
            Workload::Create => "create",
            Workload::Mixed => "mixed",
            Workload::Exists => "exists",
            Workload::Multi => "multi",
            Workload::EphemeralChurn => "ephemeral-churn",
            Workload::WatchFanout => "watch-fanout",
        }
    }

    /// Does the run read or write the `k<N>` nodes made at setup?
    pub fn uses_keys(self) -> bool {
        matches!(
            self,
            Workload::Get | Workload::Set | Workload::Mixed | Workload::Exists | Workload::Multi
        )
    }
}

/// What every session of one target runs (read-only, shared by the session threads).
pub struct Plan {
    pub workload: Workload,
    /// Closed loop: requests kept in flight. Open loop: the most in flight.
    pub outstanding: usize,
    pub read_pct: u32,
    pub value: Vec<u8>,
    /// `<base>/k<N>` for every key.
    pub key_paths: Vec<String>,
    /// `<chroot>/corral-bench`.
    pub base: String,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    /// Deadline for each session's own cleanup (the nodes its create workload made).
    pub cleanup_max: Duration,
    /// Open loop: ops per second over all sending sessions.
    pub rate: Option<u64>,
    /// Sending sessions (the schedule's divisor).
    pub senders: u64,
    /// Create workload: PERSISTENT_SEQUENTIAL.
    pub sequential: bool,
    /// Multi workload: setData ops per multi.
    pub multi_ops: usize,
    /// Width of a timeline bucket.
    pub bucket: Duration,
    /// Watch fan-out: the watched node and the writer's send times.
    pub watched: Option<(String, Arc<SendTimes>)>,
}

impl Plan {
    pub fn watched_path(base: &str) -> String {
        format!("{base}/watched")
    }
}

/// How far an open-loop sender fell behind its schedule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lag {
    /// Sends in the measured window.
    pub sends: u64,
    /// Sum and largest of (actual send time - intended send time) over them.
    pub total: Duration,
    pub max: Duration,
    /// Ops due by the end of the window and never sent (the in-flight cap held them).
    pub unsent_at_end: u64,
}

impl Lag {
    pub fn merge(&mut self, o: &Lag) {
        self.sends += o.sends;
        self.total += o.total;
        self.max = self.max.max(o.max);
        self.unsent_at_end += o.unsent_at_end;
    }

    pub fn mean(&self) -> Duration {
        if self.sends == 0 {
            return Duration::ZERO;
        }
        self.total / self.sends.min(u32::MAX as u64) as u32
    }
}

/// What one session measured.
pub struct SessionOutcome {
    /// Latency of successful replies in the measured window (µs), ok count, error codes.
    pub rec: Recorder,
    /// Why the session stopped early, if it did.
    pub failure: Option<String>,
    /// CPU time this session's thread used in the measured window.
    pub cpu: Duration,
    /// Longest time in the measured window with requests in flight and no reply.
    pub gap_max: Duration,
    /// Reads in the measured window that waited a whole poll interval for nothing.
    pub idle_polls: u64,
    /// Create workload: nodes this session could not remove at the end.
    pub cleanup_left: u64,
    pub lag: Lag,
}

/// A small seeded generator (SplitMix64): key choice and the read/write mix only need to
/// be cheap and reproducible, not cryptographic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by the high half of a 64 x 64 bit product.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through the pointer, which points at a
    // live, properly aligned local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Name of the node a create workload's session makes as its `n`th.
pub fn created_path(base: &str, session: usize, n: u64) -> String {
    format!("{base}/c{session}-{n}")
}

/// The parent of a sequential create workload's nodes for one session.
pub fn sequential_parent(base: &str, session: usize) -> String {
    format!("{base}/s{session}")
}

/// Name of the ephemeral node of a churn workload's `n`th cycle.
pub fn ephemeral_path(base: &str, session: usize, n: u64) -> String {
    format!("{base}/e{session}-{n}")
}

/// The sequence number ZooKeeper appended to a created path (its last ten digits).
pub fn sequence_of(path: &[u8]) -> Option<i64> {
    let tail = path.get(path.len().checked_sub(10)?..)?;
    std::str::from_utf8(tail).ok()?.parse().ok()
}

/// The first error in a multi's results (0 when every op succeeded); a body that does
/// not decode counts as MarshallingError.
pub fn multi_error(body: bytes::Bytes) -> i32 {
    use crate::jute::{Reader, Record};
    use crate::proto::{op, MultiHeader, Stat};
    let mut r = Reader::new(body);
    // A multi has at most as many results as ops, each at least a header.
    for _ in 0..=super::MULTI_OPS_MAX {
        let Ok(h) = MultiHeader::decode(&mut r) else {
            return ErrorCode::MarshallingError.code();
        };
        if h.done {
            return 0;
        }
        match h.op {
            op::ERROR => match r.i32() {
                Ok(0) => {}
                Ok(e) => return e,
                Err(_) => return ErrorCode::MarshallingError.code(),
            },
            op::SET_DATA => {
                if Stat::decode(&mut r).is_err() {
                    return ErrorCode::MarshallingError.code();
                }
            }
            _ => return ErrorCode::MarshallingError.code(),
        }
    }
    ErrorCode::MarshallingError.code()
}

/// The version in a getData reply's Stat.
pub fn get_data_version(body: bytes::Bytes) -> Option<i32> {
    use crate::jute::{Reader, Record};
    let mut r = Reader::new(body);
    r.buffer_opt().ok()?;
    crate::proto::Stat::decode(&mut r).ok().map(|s| s.version)
}

/// The watch fan-out's record of when each write was (meant to be) sent, by the version
/// it gives the watched node: a ring of [`SEND_TIMES_SLOTS`] (version, ns since start)
/// pairs. The node is made fresh at setup (version 0) and only the writer sets it, one
/// write at a time in order, so its `n`th write (from 1) makes version `n`.
pub struct SendTimes {
    slots: Vec<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

/// Writes remembered; a notification for an older write than this is not timed.
pub const SEND_TIMES_SLOTS: usize = 1 << 18;

impl Default for SendTimes {
    fn default() -> Self {
        SendTimes {
            slots: (0..SEND_TIMES_SLOTS)
                .map(|_| (u64::MAX.into(), 0.into()))
                .collect(),
        }
    }
}

impl SendTimes {
    pub fn record(&self, version: u64, since_start: Duration) {
        use std::sync::atomic::Ordering;
        let slot = &self.slots[version as usize % SEND_TIMES_SLOTS];
        slot.0.store(u64::MAX, Ordering::Release);
        slot.1
            .store(since_start.as_nanos() as u64, Ordering::Release);
        slot.0.store(version, Ordering::Release);
    }

    pub fn get(&self, version: u64) -> Option<Duration> {
        use std::sync::atomic::Ordering;
        let slot = &self.slots[version as usize % SEND_TIMES_SLOTS];
        if slot.0.load(Ordering::Acquire) != version {
            return None;
        }
        let ns = slot.1.load(Ordering::Acquire);
        (slot.0.load(Ordering::Acquire) == version).then(|| Duration::from_nanos(ns))
    }
}

/// One request in flight.
struct InFlight {
    xid: i32,
    /// When it was sent (closed loop) or due (open loop).
    sent: Instant,
    is_multi: bool,
}

fn new_outcome(rec: Recorder) -> SessionOutcome {
    SessionOutcome {
        rec,
        failure: None,
        cpu: Duration::ZERO,
        gap_max: Duration::ZERO,
        idle_polls: 0,
        cleanup_left: 0,
        lag: Lag::default(),
    }
}

/// Runs one session's request loop from `start` (closed loop, or open loop with
/// `plan.rate`), then drains, cleans up what it created and closes the session.
pub fn run_session(
    mut s: Session,
    index: usize,
    plan: Arc<Plan>,
    start: Instant,
    sink: Sink,
) -> SessionOutcome {
    let measure_from = start + plan.warmup;
    let measure_to = measure_from + plan.duration;
    let mut out = new_outcome(Recorder::new(measure_from, measure_to, plan.bucket, sink));
    let mut rng = Rng::new(plan.seed ^ (index as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f));
    let acl = Acl::open_unsafe();
    let schedule = plan
        .rate
        .and_then(|r| Schedule::new(r, plan.senders, index as u64));
    let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(plan.outstanding.min(4096));
    let mut created: u64 = 0;
    let mut sent: u64 = 0;
    let mut seq_range: Option<(i64, i64)> = None;
    let mut cpu_start: Option<Duration> = None;
    let mut last_progress = start;
    let mut mismatch: Option<(i32, Option<i32>)> = None;
    let seq_create = plan.workload == Workload::Create && plan.sequential;
    let seq_parent = sequential_parent(&plan.base, index);
    let seq_prefix = format!("{seq_parent}/c");

    if seq_create {
        let mut err = 0;
        let r = pipeline(
            &mut s,
            1,
            1,
            start + DRAIN_MAX,
            |s, _| s.create(&seq_parent, &[], &acl),
            |_, e| err = e,
        );
        if let Err(e) = r {
            out.failure = Some(format!("creating {seq_parent}: {e:#}"));
            return out;
        }
        if err != 0 && err != ErrorCode::NodeExists.code() {
            out.failure = Some(format!("creating {seq_parent}: {}", code_name(err)));
            return out;
        }
    }

    loop {
        let now = Instant::now();
        if now >= measure_to {
            break;
        }
        if cpu_start.is_none() && now >= measure_from {
            cpu_start = Some(thread_cpu());
            last_progress = now;
        }
        // Closed loop: refill to `outstanding`. Open loop: every op due by now, as far
        // as the in-flight cap allows.
        let due = match &schedule {
            Some(sch) => sch.due_by(now - start),
            None => sent + (plan.outstanding - inflight.len()) as u64,
        };
        while sent < due && inflight.len() < plan.outstanding {
            let intended = match &schedule {
                Some(sch) => start + sch.due_at(sent),
                None => now,
            };
            if schedule.is_some() && now >= measure_from {
                let late = now.saturating_duration_since(intended);
                out.lag.sends += 1;
                out.lag.total += late;
                out.lag.max = out.lag.max.max(late);
            }
            let mut is_multi = false;
            let xid = match plan.workload {
                Workload::Get => s.get_data(&plan.key_paths[rng.below(plan.key_paths.len())]),
                Workload::Exists => s.exists(&plan.key_paths[rng.below(plan.key_paths.len())]),
                Workload::Set => s.set_data(
                    &plan.key_paths[rng.below(plan.key_paths.len())],
                    &plan.value,
                ),
                Workload::Mixed => {
                    let key = &plan.key_paths[rng.below(plan.key_paths.len())];
                    if (rng.below(100) as u32) < plan.read_pct {
                        s.get_data(key)
                    } else {
                        s.set_data(key, &plan.value)
                    }
                }
                Workload::Multi => {
                    is_multi = true;
                    let n = plan.key_paths.len();
                    let picks: Vec<usize> = (0..plan.multi_ops).map(|_| rng.below(n)).collect();
                    s.multi_set_data(
                        picks.iter().map(|i| plan.key_paths[*i].as_str()),
                        &plan.value,
                    )
                }
                Workload::Create if seq_create => {
                    created += 1;
                    s.create_mode(
                        &seq_prefix,
                        &plan.value,
                        &acl,
                        create_flags::PERSISTENT_SEQUENTIAL,
                    )
                }
                Workload::Create => {
                    let path = created_path(&plan.base, index, created);
                    created += 1;
                    s.create(&path, &plan.value, &acl)
                }
                Workload::WatchFanout => {
                    let Some((path, times)) = &plan.watched else {
                        out.failure = Some("watch fan-out without a watched node".into());
                        return out;
                    };
                    // The (sent + 1)th write makes version sent + 1 (see SendTimes).
                    times.record(sent + 1, intended.saturating_duration_since(start));
                    s.set_data(path, &plan.value)
                }
                Workload::EphemeralChurn => {
                    out.failure = Some("ephemeral churn runs in run_churn".into());
                    return out;
                }
            };
            inflight.push_back(InFlight {
                xid,
                sent: intended,
                is_multi,
            });
            sent += 1;
        }
        if schedule.is_some() {
            // Due and held back by the in-flight cap; what is left at the end is reported.
            out.lag.unsent_at_end = due.saturating_sub(sent);
        }
        if let Err(e) = s.flush() {
            out.failure = Some(format!("{}: write failed: {e}", s.peer));
            break;
        }
        // Wake for the next send time in the open loop (unless the cap holds it back:
        // then only a reply can free a slot).
        let wait = match &schedule {
            Some(sch) if inflight.len() < plan.outstanding => {
                (start + sch.due_at(sent)).saturating_duration_since(Instant::now())
            }
            _ => READ_POLL,
        };
        if inflight.is_empty() {
            last_progress = Instant::now();
        }
        let measuring = cpu_start.is_some();
        let rec = &mut out.rec;
        let read = s.read_replies_within(wait, |hdr, body| {
            let recv = Instant::now();
            let Some(req) = inflight.pop_front() else {
                mismatch.get_or_insert((hdr.xid, None));
                return;
            };
            if req.xid != hdr.xid {
                mismatch.get_or_insert((hdr.xid, Some(req.xid)));
                return;
            }
            let err = if hdr.err == 0 && req.is_multi {
                multi_error(body.clone())
            } else {
                hdr.err
            };
            if err == 0 {
                rec.ok(recv, recv.saturating_duration_since(req.sent));
                if seq_create {
                    if let Some(n) = sequence_of(&body.slice(4.min(body.len())..)) {
                        let (lo, hi) = seq_range.unwrap_or((n, n));
                        seq_range = Some((lo.min(n), hi.max(n)));
                    }
                }
            } else {
                rec.error(recv, err);
            }
        });
        out.rec.publish();
        if let Some((got, expected)) = mismatch {
            out.failure = Some(match expected {
                Some(x) => format!("{}: reply for xid {got} while {x} was next", s.peer),
                None => format!("{}: reply for xid {got} with nothing in flight", s.peer),
            });
            break;
        }
        let now = Instant::now();
        match read {
            Ok(ReadOutcome::Replies(_)) => {
                if measuring && now < measure_to {
                    out.gap_max = out.gap_max.max(now - last_progress);
                }
                last_progress = now;
            }
            Ok(ReadOutcome::Idle) => {
                if measuring && !inflight.is_empty() {
                    if wait >= READ_POLL {
                        out.idle_polls += 1;
                    }
                    out.gap_max = out.gap_max.max(now.min(measure_to) - last_progress);
                }
            }
            Err(e) => {
                out.failure = Some(format!("{e:#}"));
                break;
            }
        }
    }
    if let Some(c) = cpu_start {
        out.cpu = thread_cpu().saturating_sub(c);
    }
    out.rec.finish();
    if out.failure.is_some() {
        return out;
    }

    // Drain what is still in flight (not recorded), so that cleanup starts on a quiet
    // connection and the server is not left answering into a closed socket.
    let drain_until = Instant::now() + DRAIN_MAX;
    while !inflight.is_empty() && Instant::now() < drain_until {
        let r = s.read_replies(|_, body| {
            inflight.pop_front();
            if seq_create {
                if let Some(n) = sequence_of(&body.slice(4.min(body.len())..)) {
                    let (lo, hi) = seq_range.unwrap_or((n, n));
                    seq_range = Some((lo.min(n), hi.max(n)));
                }
            }
        });
        if let Err(e) = r {
            out.failure = Some(format!("{e:#}"));
            return out;
        }
    }
    if !inflight.is_empty() {
        out.failure = Some(format!(
            "{}: {} replies still missing {DRAIN_MAX:?} after the end",
            s.peer,
            inflight.len()
        ));
        return out;
    }

    if plan.workload == Workload::Create && created > 0 {
        let deadline = Instant::now() + plan.cleanup_max;
        let mut removed: u64 = 0;
        let (first, count) = match (plan.sequential, seq_range) {
            (false, _) => (0, created as usize),
            (true, Some((lo, hi))) => (lo, (hi - lo + 1) as usize),
            (true, None) => (0, 0),
        };
        let r = pipeline(
            &mut s,
            count,
            plan.outstanding.clamp(32, 1024),
            deadline,
            |s, i| {
                if plan.sequential {
                    s.delete(&format!("{seq_prefix}{:010}", first + i as i64))
                } else {
                    s.delete(&created_path(&plan.base, index, i as u64))
                }
            },
            |_, err| {
                if err == 0 || err == ErrorCode::NoNode.code() {
                    removed += 1;
                }
            },
        );
        out.cleanup_left = (count as u64).saturating_sub(removed);
        if plan.sequential {
            // Creates whose names were never seen (no reply) are not counted above.
            out.cleanup_left += created.saturating_sub(count as u64);
            let mut err = 0;
            let r2 = pipeline(
                &mut s,
                1,
                1,
                deadline,
                |s, _| s.delete(&seq_parent),
                |_, e| err = e,
            );
            if r2.is_err() || (err != 0 && err != ErrorCode::NoNode.code()) {
                out.cleanup_left += 1;
            }
        }
        if let Err(e) = r {
            out.failure = Some(format!("cleanup: {e:#}"));
        }
    }
    s.close(Duration::from_secs(2));
    out
}

/// The churn loop of one thread: each op connects a new session to `addr`, creates an
/// ephemeral node and closes the session (create and close pipelined in one write).
/// Latency: from the op's start (or due time, open loop) to the close's answer.
/// Errors: a refused or failed connection counts as ConnectionLoss; three in a row stop
/// the thread.
pub fn run_churn(
    addr: std::net::SocketAddr,
    index: usize,
    plan: Arc<Plan>,
    start: Instant,
    sink: Sink,
) -> SessionOutcome {
    let measure_from = start + plan.warmup;
    let measure_to = measure_from + plan.duration;
    let mut out = new_outcome(Recorder::new(measure_from, measure_to, plan.bucket, sink));
    let schedule = plan
        .rate
        .and_then(|r| Schedule::new(r, plan.senders, index as u64));
    let acl = Acl::open_unsafe();
    let mut cpu_start: Option<Duration> = None;
    let mut cycle: u64 = 0;
    let mut failed_in_a_row = 0;
    loop {
        let mut now = Instant::now();
        if now >= measure_to {
            break;
        }
        let intended = match &schedule {
            Some(sch) => {
                let due = start + sch.due_at(cycle);
                if due > now {
                    std::thread::sleep((due - now).min(measure_to - now));
                    now = Instant::now();
                    if now >= measure_to {
                        break;
                    }
                }
                // Cycles due besides the one starting now (a slow cycle delays the next).
                out.lag.unsent_at_end = sch.due_by(now - start).saturating_sub(cycle + 1);
                if now >= measure_from {
                    let late = now.saturating_duration_since(due);
                    out.lag.sends += 1;
                    out.lag.total += late;
                    out.lag.max = out.lag.max.max(late);
                }
                due
            }
            None => now,
        };
        if cpu_start.is_none() && now >= measure_from {
            cpu_start = Some(thread_cpu());
        }
        let path = ephemeral_path(&plan.base, index, cycle);
        cycle += 1;
        match churn_cycle(addr, &path, &plan.value, &acl) {
            Ok(0) => {
                failed_in_a_row = 0;
                let recv = Instant::now();
                out.rec.ok(recv, recv.saturating_duration_since(intended));
            }
            Ok(err) => {
                failed_in_a_row = 0;
                out.rec.error(Instant::now(), err);
            }
            Err(e) => {
                out.rec
                    .error(Instant::now(), ErrorCode::ConnectionLoss.code());
                failed_in_a_row += 1;
                if failed_in_a_row >= 3 {
                    out.failure = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        out.rec.publish();
    }
    if let Some(c) = cpu_start {
        out.cpu = thread_cpu().saturating_sub(c);
    }
    out.rec.finish();
    out
}

/// One churn cycle; the create's error code (0 = created), or why the session failed.
fn churn_cycle(
    addr: std::net::SocketAddr,
    path: &str,
    value: &[u8],
    acl: &[Acl],
) -> anyhow::Result<i32> {
    let mut s = Session::connect(addr, CHURN_STEP_MAX)?;
    let create = s.create_mode(path, value, acl, create_flags::EPHEMERAL);
    let close = s.close_request();
    s.flush()?;
    let deadline = Instant::now() + CHURN_STEP_MAX;
    let mut create_err: Option<i32> = None;
    let mut closed = false;
    while !closed {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{addr}: no answer to create + close within {CHURN_STEP_MAX:?}"
        );
        s.read_replies(|h, _| {
            if h.xid == create {
                create_err = Some(h.err);
            } else if h.xid == close {
                closed = true;
            }
        })?;
    }
    // The server closes the connection after the close's answer; that is not timed.
    drop(s);
    create_err.ok_or_else(|| anyhow::anyhow!("{addr}: close answered before the create"))
}

/// Longest wait for a churn cycle's connect, and then for its answers.
const CHURN_STEP_MAX: Duration = Duration::from_secs(10);

/// Runs `count` requests on `s` with at most `window` in flight. `issue(s, i)` queues
/// request `i` and returns its xid; `on_reply(i, err)` sees each answer in order.
/// Returns the number answered; fails on a broken connection or the deadline.
pub fn pipeline(
    s: &mut Session,
    count: usize,
    window: usize,
    deadline: Instant,
    mut issue: impl FnMut(&mut Session, usize) -> i32,
    mut on_reply: impl FnMut(usize, i32),
) -> anyhow::Result<usize> {
    let window = window.max(1);
    let mut inflight: VecDeque<(i32, usize)> = VecDeque::with_capacity(window);
    let mut next = 0;
    let mut done = 0;
    while done < count {
        while next < count && inflight.len() < window {
            let xid = issue(s, next);
            inflight.push_back((xid, next));
            next += 1;
        }
        s.flush()?;
        anyhow::ensure!(
            Instant::now() < deadline,
            "{}: deadline passed with {done} of {count} requests answered",
            s.peer
        );
        let mut bad: Option<i32> = None;
        s.read_replies(|hdr, _| match inflight.pop_front() {
            Some((xid, i)) if xid == hdr.xid => {
                on_reply(i, hdr.err);
                done += 1;
            }
            _ => {
                bad.get_or_insert(hdr.xid);
            }
        })?;
        if let Some(xid) = bad {
            anyhow::bail!("{}: reply for unexpected xid {xid}", s.peer);
        }
    }
    Ok(done)
}

/// Makes `<base>` and, if the workload uses them, the key nodes with `value` as data
/// (keys left by an earlier run get their data reset).
pub fn setup(s: &mut Session, plan: &Plan, deadline: Instant) -> anyhow::Result<()> {
    let acl = Acl::open_unsafe();
    let mut err = 0;
    pipeline(
        s,
        1,
        1,
        deadline,
        |s, _| s.create(&plan.base, &[], &acl),
        |_, e| err = e,
    )?;
    if err != 0 && err != ErrorCode::NodeExists.code() {
        anyhow::bail!(
            "cannot create {}: {}",
            plan.base,
            ErrorCode::from_code(err).message()
        );
    }
    if let Some((path, _)) = &plan.watched {
        // Made fresh, so that its versions count the writer's writes from 1.
        let (mut del_err, mut create_err) = (0, 0);
        pipeline(s, 1, 1, deadline, |s, _| s.delete(path), |_, e| del_err = e)?;
        if del_err != 0 && del_err != ErrorCode::NoNode.code() {
            anyhow::bail!("cannot remove an old {path}: {}", code_name(del_err));
        }
        pipeline(
            s,
            1,
            1,
            deadline,
            |s, _| s.create(path, &plan.value, &acl),
            |_, e| create_err = e,
        )?;
        if create_err != 0 {
            anyhow::bail!("cannot create {path}: {}", code_name(create_err));
        }
    }
    if !plan.workload.uses_keys() {
        return Ok(());
    }
    let window = plan.outstanding.clamp(64, 1024);
    let mut existing: Vec<usize> = Vec::new();
    let mut failed: BTreeMap<i32, u64> = BTreeMap::new();
    pipeline(
        s,
        plan.key_paths.len(),
        window,
        deadline,
        |s, i| s.create(&plan.key_paths[i], &plan.value, &acl),
        |i, e| {
            if e == ErrorCode::NodeExists.code() {
                existing.push(i);
            } else if e != 0 {
                *failed.entry(e).or_insert(0) += 1;
            }
        },
    )?;
    pipeline(
        s,
        existing.len(),
        window,
        deadline,
        |s, i| s.set_data(&plan.key_paths[existing[i]], &plan.value),
        |_, e| {
            if e != 0 {
                *failed.entry(e).or_insert(0) += 1;
            }
        },
    )?;
    if !failed.is_empty() {
        anyhow::bail!("creating the keys failed: {}", error_counts(&failed));
    }
    Ok(())
}

/// Removes the keys and `<base>` (and, if something is left under it, its children).
/// Returns how many nodes could not be removed.
pub fn cleanup(s: &mut Session, plan: &Plan, deadline: Instant) -> anyhow::Result<u64> {
    let window = plan.outstanding.clamp(64, 1024);
    let mut left: u64 = 0;
    if let Some((path, _)) = &plan.watched {
        left += not_gone(delete_one(s, path, deadline)?);
    }
    if plan.workload.uses_keys() {
        pipeline(
            s,
            plan.key_paths.len(),
            window,
            deadline,
            |s, i| s.delete(&plan.key_paths[i]),
            |_, e| left += not_gone(e),
        )?;
    }
    let err = delete_one(s, &plan.base, deadline)?;
    if err != ErrorCode::NotEmpty.code() {
        return Ok(left + not_gone(err));
    }
    // Leftovers (an earlier run that was killed, or sessions whose cleanup failed).
    let xid = s.get_children(&plan.base);
    s.flush()?;
    let mut children: Option<Vec<String>> = None;
    let mut list_err = 0;
    while children.is_none() && list_err == 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "deadline passed listing {}",
            plan.base
        );
        s.read_replies(|hdr, body| {
            if hdr.xid != xid {
                return;
            }
            if hdr.err != 0 {
                list_err = hdr.err;
                return;
            }
            let mut r = crate::jute::Reader::new(body);
            match r.string_vec() {
                Ok(v) => children = Some(v.iter().map(|c| c.as_str().to_string()).collect()),
                Err(_) => list_err = ErrorCode::MarshallingError.code(),
            }
        })?;
    }
    let children = children.unwrap_or_default();
    let mut failed: u64 = 0;
    pipeline(
        s,
        children.len(),
        window,
        deadline,
        |s, i| s.delete(&format!("{}/{}", plan.base, children[i])),
        |_, e| failed += not_gone(e),
    )?;
    let err = delete_one(s, &plan.base, deadline)?;
    Ok(left + failed + not_gone(err))
}

/// 1 if a delete's reply code means the node may still be there (0 and NoNode mean gone).
fn not_gone(err: i32) -> u64 {
    (err != 0 && err != ErrorCode::NoNode.code()) as u64
}

/// Deletes one node; its reply code.
fn delete_one(s: &mut Session, path: &str, deadline: Instant) -> anyhow::Result<i32> {
    let mut err = 0;
    pipeline(s, 1, 1, deadline, |s, _| s.delete(path), |_, e| err = e)?;
    Ok(err)
}

/// `NodeExists=3, NoNode=1`: error codes by name.
pub fn error_counts(errors: &BTreeMap<i32, u64>) -> String {
    errors
        .iter()
        .map(|(code, n)| format!("{}={n}", code_name(*code)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name of an error code as it appears in `KeeperException.Code`.
pub fn code_name(code: i32) -> String {
    let c = ErrorCode::from_code(code);
    if c.code() != code {
        return format!("code{code}");
    }
    format!("{c:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        let mut seen = [0u32; 10];
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn sequence_numbers_and_multi_results() {
        assert_eq!(sequence_of(b"/corral-bench/s1/c0000000042"), Some(42));
        assert_eq!(sequence_of(b"short"), None);
        assert_eq!(sequence_of(b"/x/c00000000ab"), None);
        use crate::jute::Record;
        use crate::proto::{op, MultiHeader, Stat};
        use bytes::BufMut;
        let mut ok = bytes::BytesMut::new();
        for _ in 0..2 {
            MultiHeader {
                op: op::SET_DATA,
                done: false,
                err: 0,
            }
            .encode(&mut ok);
            Stat::default().encode(&mut ok);
        }
        MultiHeader::END.encode(&mut ok);
        assert_eq!(multi_error(ok.freeze()), 0);
        let mut failed = bytes::BytesMut::new();
        for e in [0, ErrorCode::NoNode.code()] {
            MultiHeader {
                op: op::ERROR,
                done: false,
                err: e,
            }
            .encode(&mut failed);
            failed.put_i32(e);
        }
        MultiHeader::END.encode(&mut failed);
        assert_eq!(multi_error(failed.freeze()), ErrorCode::NoNode.code());
        assert_eq!(
            multi_error(bytes::Bytes::from_static(&[0, 0])),
            ErrorCode::MarshallingError.code()
        );
    }

    #[test]
    fn send_times_match_versions_only() {
        let t = SendTimes::default();
        assert_eq!(t.get(1), None);
        t.record(1, Duration::from_micros(5));
        assert_eq!(t.get(1), Some(Duration::from_micros(5)));
        // A version that maps to the same slot replaces the older one.
        t.record(1 + SEND_TIMES_SLOTS as u64, Duration::from_micros(9));
        assert_eq!(t.get(1), None);
        assert_eq!(
            t.get(1 + SEND_TIMES_SLOTS as u64),
            Some(Duration::from_micros(9))
        );
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(-110), "NodeExists");
        assert_eq!(code_name(-9999), "code-9999");
        let mut m = BTreeMap::new();
        m.insert(-101, 2);
        m.insert(-110, 1);
        assert_eq!(error_counts(&m), "NodeExists=1, NoNode=2");
    }
}
