//! The watch fan-out's watchers: sessions that keep a data watch on one node.
//!
//! A watcher thread owns up to [`WATCHERS_PER_THREAD`] sessions and waits on all their
//! sockets with poll(2). Each session arms a watch with getData(watch) and, when a
//! NodeDataChanged notification arrives, times it against the writer's send time of the
//! write that fired it and re-arms. Which write fired it: the getData that armed the
//! watch returned version `v`, and a data watch fires on the next change, which is the
//! write that made version `v + 1` ([`SendTimes`] maps versions to send times). Writer
//! and watchers run in one process, on one monotonic clock.
//!
//! Phases, each bounded: connect and arm (at most [`ARM_MAX`]), report ready and wait for
//! the start, watch until the end of the measured window, close every session.

use super::load::{get_data_version, thread_cpu, SendTimes};
use super::record::{Recorder, Sink};
use super::wire::{Session, READ_POLL};
use crate::jute::Reader;
use crate::proto::{event, xid};
use std::net::SocketAddr;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sessions one watcher thread serves.
pub const WATCHERS_PER_THREAD: usize = 64;

/// Longest time to connect a thread's sessions and arm their watches.
pub const ARM_MAX: Duration = Duration::from_secs(60);

/// A session idle this long gets a ping, so that it does not expire between writes.
const PING_EVERY: Duration = Duration::from_secs(5);

/// What one watcher thread was given.
pub struct WatcherJob {
    pub thread: usize,
    /// (session index, address) of each session it owns.
    pub sessions: Vec<(usize, SocketAddr)>,
    pub path: String,
    pub times: Arc<SendTimes>,
    pub warmup: Duration,
    pub duration: Duration,
    pub bucket: Duration,
    pub sink: Sink,
    /// Armed (or failed) sessions are reported here: (thread, sessions armed, failures).
    pub ready: Sender<(usize, usize, Vec<String>)>,
    /// The run's start; a closed channel means the run was called off.
    pub start: Receiver<Instant>,
}

/// What one watcher thread measured.
pub struct WatcherOutcome {
    pub rec: Recorder,
    pub failures: Vec<String>,
    pub armed: usize,
    /// Notifications whose write's send time was unknown (not timed).
    pub unmatched: u64,
    pub cpu: Duration,
}

struct Watcher {
    index: usize,
    s: Session,
    /// Version the armed watch was set at; `None` while a re-arm is in flight.
    armed_at: Option<i32>,
    rearm_xid: Option<i32>,
    last_sent: Instant,
    failed: bool,
}

pub fn run_watchers(job: WatcherJob) -> WatcherOutcome {
    let far = Instant::now() + Duration::from_secs(365 * 86_400);
    let mut out = WatcherOutcome {
        // Replaced by the real window once the start is known.
        rec: Recorder::new(far, far, job.bucket, job.sink.clone()),
        failures: Vec::new(),
        armed: 0,
        unmatched: 0,
        cpu: Duration::ZERO,
    };
    let arm_deadline = Instant::now() + ARM_MAX;
    let mut ws: Vec<Watcher> = Vec::with_capacity(job.sessions.len());
    for (index, addr) in &job.sessions {
        let left = arm_deadline.saturating_duration_since(Instant::now());
        match Session::connect(*addr, left.max(Duration::from_millis(1))) {
            Ok(mut s) => {
                let x = s.get_data_watch(&job.path, true);
                ws.push(Watcher {
                    index: *index,
                    s,
                    armed_at: None,
                    rearm_xid: Some(x),
                    last_sent: Instant::now(),
                    failed: false,
                });
            }
            Err(e) => out.failures.push(format!("watcher {index}: {e:#}")),
        }
    }
    for w in &mut ws {
        if let Err(e) = w.s.flush() {
            out.failures
                .push(format!("watcher {}: write failed: {e}", w.index));
            w.failed = true;
        }
    }
    // Arm: every getData(watch) answered.
    while ws.iter().any(|w| !w.failed && w.armed_at.is_none()) && Instant::now() < arm_deadline {
        poll_round(
            &mut ws,
            |w, hdr, body, _| {
                if Some(hdr.xid) == w.rearm_xid {
                    w.rearm_xid = None;
                    w.armed_at = get_data_version(body);
                    if hdr.err != 0 || w.armed_at.is_none() {
                        w.failed = true;
                    }
                }
            },
            &mut out.failures,
        );
    }
    for w in &mut ws {
        if !w.failed && w.armed_at.is_none() {
            out.failures.push(format!(
                "watcher {}: watch not armed within {ARM_MAX:?}",
                w.index
            ));
            w.failed = true;
        }
    }
    out.armed = ws.iter().filter(|w| !w.failed).count();
    let _ = job
        .ready
        .send((job.thread, out.armed, std::mem::take(&mut out.failures)));
    let Ok(start) = job.start.recv_timeout(ARM_MAX * 4) else {
        for w in ws {
            w.s.close(Duration::from_millis(200));
        }
        return out;
    };
    let measure_from = start + job.warmup;
    let measure_to = measure_from + job.duration;
    out.rec = Recorder::new(measure_from, measure_to, job.bucket, job.sink.clone());
    let mut cpu_start: Option<Duration> = None;
    let path = job.path.as_str();
    let times = &job.times;

    while Instant::now() < measure_to {
        if cpu_start.is_none() && Instant::now() >= measure_from {
            cpu_start = Some(thread_cpu());
        }
        let rec = &mut out.rec;
        let unmatched = &mut out.unmatched;
        poll_round(
            &mut ws,
            |w, hdr, body, recv| {
                if hdr.xid == xid::NOTIFICATION {
                    let mut r = Reader::new(body);
                    let Ok(ev) = r.i32() else {
                        w.failed = true;
                        return;
                    };
                    if ev != event::NODE_DATA_CHANGED {
                        return;
                    }
                    // The write that fired it made the version after the armed one.
                    let fired = w.armed_at.map(|v| v as i64 + 1);
                    match fired
                        .and_then(|v| u64::try_from(v).ok())
                        .and_then(|v| times.get(v))
                    {
                        Some(sent) => {
                            rec.ok(recv, recv.saturating_duration_since(start + sent));
                        }
                        None => *unmatched += rec.in_window(recv) as u64,
                    }
                    w.armed_at = None;
                    w.rearm_xid = Some(w.s.get_data_watch(path, true));
                    w.last_sent = recv;
                } else if Some(hdr.xid) == w.rearm_xid {
                    w.rearm_xid = None;
                    w.armed_at = get_data_version(body);
                    if hdr.err != 0 {
                        rec.error(recv, hdr.err);
                        w.failed = true;
                    }
                }
            },
            &mut out.failures,
        );
        out.rec.publish();
        let now = Instant::now();
        for w in ws.iter_mut().filter(|w| !w.failed) {
            if now.saturating_duration_since(w.last_sent) >= PING_EVERY {
                w.s.ping();
                w.last_sent = now;
            }
            if let Err(e) = w.s.flush() {
                out.failures
                    .push(format!("watcher {}: write failed: {e}", w.index));
                w.failed = true;
            }
        }
        if ws.iter().all(|w| w.failed) {
            break;
        }
    }
    if let Some(c) = cpu_start {
        out.cpu = thread_cpu().saturating_sub(c);
    }
    out.rec.finish();
    for w in ws {
        if !w.failed {
            w.s.close(Duration::from_millis(500));
        }
    }
    out
}

/// One poll(2) over the live sessions (at most [`READ_POLL`]), then every frame of each
/// readable one goes to `on_frame(watcher, header, body, arrival)`. A session whose
/// connection fails is marked failed, with the reason in `failures`.
fn poll_round(
    ws: &mut [Watcher],
    mut on_frame: impl FnMut(&mut Watcher, crate::proto::ReplyHeader, bytes::Bytes, Instant),
    failures: &mut Vec<String>,
) {
    let live: Vec<usize> = (0..ws.len()).filter(|i| !ws[*i].failed).collect();
    if live.is_empty() {
        std::thread::sleep(Duration::from_millis(10));
        return;
    }
    let mut fds: Vec<libc::pollfd> = live
        .iter()
        .map(|i| libc::pollfd {
            fd: ws[*i].s.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a live, initialised array of `fds.len()` pollfd structs, which
    // poll reads and whose `revents` it writes; the descriptors belong to sessions that
    // outlive the call.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            READ_POLL.as_millis() as libc::c_int,
        )
    };
    if n <= 0 {
        return;
    }
    let recv = Instant::now();
    for (pfd, i) in fds.iter().zip(&live) {
        if pfd.revents == 0 {
            continue;
        }
        let w = &mut ws[*i];
        let mut frames = Vec::new();
        if let Err(e) = w.s.read_ready(|h, b| frames.push((h, b))) {
            failures.push(format!("watcher {}: {e:#}", w.index));
            w.failed = true;
        }
        for (h, b) in frames {
            on_frame(w, h, b, recv);
        }
    }
}
