//! The closed loop of one session, and the pipelined setup and cleanup around a run.
//!
//! Closed loop: a session keeps exactly `outstanding` requests in flight; each reply frees
//! a slot that the next turn of the loop refills. Latency is from the moment a request is
//! queued (it is written in the same turn) to the moment its reply frame was read, so it
//! includes the client's own queueing, as a real client's would.
//!
//! Windows: replies read before `start + warmup` are not recorded; replies read from
//! then until `start + warmup + duration` are (latency, ok count, error codes). At the end
//! nothing new is sent; the replies still in flight are drained for at most
//! [`DRAIN_MAX`] and not recorded. Every loop here ends by a deadline.

use super::wire::{ReadOutcome, Session};
use crate::proto::{Acl, ErrorCode};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for the replies still in flight when the measured window ends.
pub const DRAIN_MAX: Duration = Duration::from_secs(5);

/// Largest latency the histograms hold; slower replies are recorded as this.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// Significant digits kept by the histograms (0.1 % relative error).
const HISTOGRAM_DIGITS: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// getData of a random key.
    Get,
    /// setData (version -1) of a random key with value-bytes of data.
    Set,
    /// create of a new persistent node with value-bytes of data, per session unique.
    Create,
    /// getData or setData of a random key; `--read-pct` of them reads.
    Mixed,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Set => "set",
            Workload::Create => "create",
            Workload::Mixed => "mixed",
        }
    }

    /// Does the run read or write the `k<N>` nodes made at setup?
    pub fn uses_keys(self) -> bool {
        self != Workload::Create
    }
}

/// What every session of one target runs (read-only, shared by the session threads).
pub struct Plan {
    pub workload: Workload,
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
}

/// What one session measured.
pub struct SessionOutcome {
    /// Latency of successful replies in the measured window, in µs.
    pub hist: Histogram<u64>,
    /// Replies in the measured window with err = 0.
    pub ok: u64,
    /// Replies in the measured window with an error code, by code.
    pub errors: BTreeMap<i32, u64>,
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
}

pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; failing here would be our bug.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_DIGITS).expect("valid histogram bounds")
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

fn micros(d: Duration) -> u64 {
    (d.as_nanos() / 1000).clamp(1, LATENCY_US_MAX as u128) as u64
}

/// Name of the node a create workload's session makes as its `n`th.
pub fn created_path(base: &str, session: usize, n: u64) -> String {
    format!("{base}/c{session}-{n}")
}

/// One request in flight.
struct InFlight {
    xid: i32,
    sent: Instant,
}

/// Runs one session's closed loop from `start`, then drains, cleans up what it created
/// and closes the session.
pub fn run_session(
    mut s: Session,
    index: usize,
    plan: Arc<Plan>,
    start: Instant,
) -> SessionOutcome {
    let measure_from = start + plan.warmup;
    let measure_to = measure_from + plan.duration;
    let mut out = SessionOutcome {
        hist: new_histogram(),
        ok: 0,
        errors: BTreeMap::new(),
        failure: None,
        cpu: Duration::ZERO,
        gap_max: Duration::ZERO,
        idle_polls: 0,
        cleanup_left: 0,
    };
    let mut rng = Rng::new(plan.seed ^ (index as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f));
    let acl = Acl::open_unsafe();
    let mut inflight: VecDeque<InFlight> = VecDeque::with_capacity(plan.outstanding);
    let mut created: u64 = 0;
    let mut cpu_start: Option<Duration> = None;
    let mut last_progress = start;
    let mut mismatch: Option<(i32, Option<i32>)> = None;

    loop {
        let now = Instant::now();
        if now >= measure_to {
            break;
        }
        if cpu_start.is_none() && now >= measure_from {
            cpu_start = Some(thread_cpu());
            last_progress = now;
        }
        while inflight.len() < plan.outstanding {
            let xid = match plan.workload {
                Workload::Get => s.get_data(&plan.key_paths[rng.below(plan.key_paths.len())]),
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
                Workload::Create => {
                    let path = created_path(&plan.base, index, created);
                    created += 1;
                    s.create(&path, &plan.value, &acl)
                }
            };
            inflight.push_back(InFlight { xid, sent: now });
        }
        if let Err(e) = s.flush() {
            out.failure = Some(format!("{}: write failed: {e}", s.peer));
            break;
        }
        let measuring = cpu_start.is_some();
        let read = s.read_replies(|hdr, _body| {
            let recv = Instant::now();
            let Some(req) = inflight.pop_front() else {
                mismatch.get_or_insert((hdr.xid, None));
                return;
            };
            if req.xid != hdr.xid {
                mismatch.get_or_insert((hdr.xid, Some(req.xid)));
                return;
            }
            if measuring && recv < measure_to {
                if hdr.err == 0 {
                    out.ok += 1;
                    out.hist.saturating_record(micros(recv - req.sent));
                } else {
                    *out.errors.entry(hdr.err).or_insert(0) += 1;
                }
            }
        });
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
                if measuring {
                    out.idle_polls += 1;
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
    if out.failure.is_some() {
        return out;
    }

    // Drain what is still in flight (not recorded), so that cleanup starts on a quiet
    // connection and the server is not left answering into a closed socket.
    let drain_until = Instant::now() + DRAIN_MAX;
    while !inflight.is_empty() && Instant::now() < drain_until {
        let r = s.read_replies(|_, _| {
            inflight.pop_front();
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
        let r = pipeline(
            &mut s,
            created as usize,
            plan.outstanding.max(32),
            deadline,
            |s, i| s.delete(&created_path(&plan.base, index, i as u64)),
            |_, err| {
                if err == 0 || err == ErrorCode::NoNode.code() {
                    removed += 1;
                }
            },
        );
        out.cleanup_left = created - removed;
        if let Err(e) = r {
            out.failure = Some(format!("cleanup: {e:#}"));
        }
    }
    s.close(Duration::from_secs(2));
    out
}

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
    if !plan.workload.uses_keys() {
        return Ok(());
    }
    let window = plan.outstanding.max(64);
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
    let window = plan.outstanding.max(64);
    let mut left: u64 = 0;
    if plan.workload.uses_keys() {
        pipeline(
            s,
            plan.key_paths.len(),
            window,
            deadline,
            |s, i| s.delete(&plan.key_paths[i]),
            |_, e| left += (e != 0 && e != ErrorCode::NoNode.code()) as u64,
        )?;
    }
    let mut err = 0;
    pipeline(
        s,
        1,
        1,
        deadline,
        |s, _| s.delete(&plan.base),
        |_, e| err = e,
    )?;
    if err != ErrorCode::NotEmpty.code() {
        return Ok(left + (err != 0 && err != ErrorCode::NoNode.code()) as u64);
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
        |_, e| failed += (e != 0 && e != ErrorCode::NoNode.code()) as u64,
    )?;
    let mut err = 0;
    pipeline(
        s,
        1,
        1,
        deadline,
        |s, _| s.delete(&plan.base),
        |_, e| err = e,
    )?;
    Ok(left + failed + (err != 0 && err != ErrorCode::NoNode.code()) as u64)
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
    fn code_names() {
        assert_eq!(code_name(-110), "NodeExists");
        assert_eq!(code_name(-9999), "code-9999");
        let mut m = BTreeMap::new();
        m.insert(-101, 2);
        m.insert(-110, 1);
        assert_eq!(error_counts(&m), "NodeExists=1, NoNode=2");
    }
}
