//! `corral bench`: a load generator for any server that speaks the ZooKeeper client
//! protocol (Corral or Apache ZooKeeper).
//!
//! A run against one target: make `<chroot>/corral-bench` and what the workload needs
//! (key nodes `k<N>` of `--value-bytes`, or the watched node), open `--sessions` sessions
//! (spread round-robin over the hosts), run one thread per session for `--warmup-s` +
//! `--duration-s` (see [`load`]: closed loop with `--outstanding` requests pipelined, or
//! open loop at `--rate` ops/s measured from the intended send times), then remove what
//! was made and report throughput, latency quantiles and the per-second timeline from the
//! merged hdrhistograms ([`report`]; `--html` draws it, [`html`]). `--compare HOSTS2`
//! repeats the same run against a second target and prints ratios.
//!
//! Two workloads have their own shape: `ephemeral-churn` runs one connect / create
//! ephemeral / close cycle after another on each session thread ([`load::run_churn`]),
//! and `watch-fanout` runs `--watchers` watching sessions ([`fanout`]) and one writer.
//!
//! The client must not be what is measured: one thread and one blocking socket per
//! session, requests encoded straight into an output buffer and written with one syscall
//! per turn, replies split zero-copy from the input buffer. The report shows the session
//! threads' CPU time, and `--stub` runs against an in-process stand-in server that
//! answers at once ([`stub`]), which shows how far the client alone can go.
//!
//! Bounds: every loop ends by a deadline (run, drain, setup, cleanup); op errors are
//! counted by code and reported; a session whose connection fails stops and is reported;
//! nothing here panics on a server's answer.

pub mod fanout;
pub mod html;
pub mod load;
pub mod record;
pub mod report;
pub mod schedule;
pub mod stub;
pub mod wire;

use crate::client::{hosts, ConnectString};
use load::{Lag, Plan, SendTimes, SessionOutcome, Workload};
use record::{BucketReport, Sink, Timeline};
use report::TargetResult;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wire::Session;

/// Most sessions per run: one thread each, and ZooKeeper's per-IP limit is 60 by default.
pub const SESSIONS_MAX: u64 = 1024;
/// Most requests in flight per session.
pub const OUTSTANDING_MAX: u64 = 4096;
/// Largest value: ZooKeeper's default `jute.maxbuffer` less room for the request's path.
pub const VALUE_BYTES_MAX: u64 = 1_000_000;
pub const KEYS_MAX: u64 = 10_000_000;
/// A day; runs longer than that are a mistake.
pub const DURATION_S_MAX: u64 = 86_400;
/// Most setData ops in one multi of the multi workload.
pub const MULTI_OPS_MAX: u64 = 1000;
/// Most watching sessions of the watch fan-out (sockets: mind `ulimit -n`).
pub const WATCHERS_MAX: u64 = 10_000;
/// Highest open-loop rate, ops/s over all sessions.
pub const RATE_MAX: u64 = 100_000_000;

/// Requests in flight per session when --outstanding is not given (closed loop).
const OUTSTANDING_DEFAULT: u64 = 16;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Connect string of the target: host:port[,host:port...][/chroot].
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    /// What each session sends.
    #[arg(long, value_enum, default_value_t = Workload::Get)]
    pub workload: Workload,
    /// Sessions (connections), one thread each. Ephemeral churn: concurrent cycles.
    /// Watch fan-out: ignored (one writer; see --watchers).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=SESSIONS_MAX))]
    pub sessions: u64,
    /// Requests each session keeps in flight (closed loop), or the most it may have in
    /// flight (open loop). Default: 16; 4096 with --rate; 1 for the fan-out's writer.
    /// Ephemeral churn: always 1 (a session runs one cycle at a time).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=OUTSTANDING_MAX))]
    pub outstanding: Option<u64>,
    /// Data size written by setup, set, create, multi and the fan-out's writer.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(0..=VALUE_BYTES_MAX))]
    pub value_bytes: u64,
    /// Key nodes made at setup and read or written at random.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=KEYS_MAX))]
    pub keys: u64,
    /// Measured time.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=DURATION_S_MAX))]
    pub duration_s: u64,
    /// Time under load before measuring.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=DURATION_S_MAX))]
    pub warmup_s: u64,
    /// Mixed workload: percentage of reads.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub read_pct: u64,
    /// Open loop: send this many ops per second in total (spread evenly over the
    /// sessions); latency counts from each op's intended send time.
    #[arg(long, value_name = "OPS_PER_S", value_parser = clap::value_parser!(u64).range(1..=RATE_MAX))]
    pub rate: Option<u64>,
    /// Create workload: PERSISTENT_SEQUENTIAL nodes (under one parent per session).
    #[arg(long)]
    pub sequential: bool,
    /// Multi workload: setData ops per multi.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MULTI_OPS_MAX))]
    pub multi_ops: u64,
    /// Watch fan-out: sessions watching the node.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=WATCHERS_MAX))]
    pub watchers: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report (plots, parameters, table) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// Also write each target's latency histogram (HdrHistogram percentile distribution,
    /// values in ms) and the JSON summary into this directory.
    #[arg(long, value_name = "DIR")]
    pub hgrm: Option<std::path::PathBuf>,
    /// Run the same workload against this second target afterwards and print ratios.
    #[arg(long, value_name = "HOSTS2")]
    pub compare: Option<String>,
    /// Seed of the key choice and the read/write mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Ignore --hosts: run against an in-process stub server that answers at once, to
    /// measure the load generator itself.
    #[arg(long)]
    pub stub: bool,
    /// Leave the nodes made by setup and by the run in place instead of deleting them at
    /// the end (for example to measure a server's memory with --keys of them); a later run
    /// with the same --keys reuses them.
    #[arg(long)]
    pub keep: bool,
}

impl BenchArgs {
    /// --outstanding, or its default for the run's shape.
    pub fn outstanding(&self) -> u64 {
        match (self.outstanding, self.rate, self.workload) {
            // One cycle at a time per session thread.
            (_, _, Workload::EphemeralChurn) => 1,
            (Some(n), _, _) => n,
            (None, _, Workload::WatchFanout) => 1,
            (None, Some(_), _) => OUTSTANDING_MAX,
            (None, None, _) => OUTSTANDING_DEFAULT,
        }
    }

    /// Sessions that send requests (the fan-out has one writer).
    pub fn senders(&self) -> u64 {
        if self.workload == Workload::WatchFanout {
            1
        } else {
            self.sessions
        }
    }
}

/// Entry point of the subcommand; returns the exit code (0 ok, 1 failed or partial).
pub fn run(args: BenchArgs) -> i32 {
    match run_all(&args) {
        Ok(results) => {
            if args.json {
                print!("{}", report::json(&args, &results));
            } else {
                print!("{}", report::text(&args, &results));
            }
            let mut code = 0;
            if let Err(e) = write_files(&args, &results) {
                eprintln!("corral bench: {e:#}");
                code = 1;
            }
            let clean = results
                .iter()
                .all(|r| r.failures.is_empty() && r.cleanup_error.is_none() && r.ok > 0);
            if !clean {
                code = 1;
            }
            code
        }
        Err(e) => {
            eprintln!("corral bench: {e:#}");
            1
        }
    }
}

/// The `--html` report and the `--hgrm` directory.
fn write_files(args: &BenchArgs, results: &[TargetResult]) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(path) = &args.html {
        std::fs::write(path, html::report(args, results))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(dir) = &args.hgrm {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, r) in results.iter().enumerate() {
            let path = dir.join(report::hgrm_file_name(i, &r.target));
            std::fs::write(&path, report::hgrm(&r.hist, 1000.0))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        let path = dir.join("summary.json");
        std::fs::write(&path, report::json(args, results))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn run_all(args: &BenchArgs) -> anyhow::Result<Vec<TargetResult>> {
    anyhow::ensure!(
        !(args.stub && args.workload == Workload::WatchFanout),
        "the stub server keeps no watches: run watch-fanout against a real server"
    );
    let stub = if args.stub {
        Some(stub::Stub::start(args.value_bytes as usize)?)
    } else {
        None
    };
    let first_target = match &stub {
        Some(s) => s.addr().to_string(),
        None => args.hosts.clone(),
    };
    let mut results = vec![run_target(args, &first_target)?];
    if let Some(second) = &args.compare {
        results.push(run_target(args, second)?);
    }
    Ok(results)
}

fn resolve_all(target: &str) -> anyhow::Result<(Vec<SocketAddr>, Option<String>)> {
    use anyhow::Context;
    let cs =
        ConnectString::parse(target).with_context(|| format!("bad connect string {target:?}"))?;
    let mut addrs = Vec::with_capacity(cs.hosts.len());
    for h in &cs.hosts {
        addrs.push(hosts::resolve(h).with_context(|| format!("cannot resolve {h}"))?);
    }
    anyhow::ensure!(!addrs.is_empty(), "no hosts in {target:?}");
    Ok((addrs, cs.chroot))
}

/// The progress bar on stderr (only when stderr is a terminal).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    target: String,
    live_ok: Arc<AtomicU64>,
    start: Option<Instant>,
    warmup: Duration,
    /// Where the current throughput estimate started: (time, successes then).
    rate_from: (Instant, u64),
    rate: f64,
}

impl Progress {
    fn new(args: &BenchArgs, target: &str, live_ok: Arc<AtomicU64>) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let total_ms = (args.warmup_s + args.duration_s) * 1000;
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total_ms),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}]")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("{target}: setup"));
            bar
        });
        Progress {
            bar,
            target: target.to_string(),
            live_ok,
            start: None,
            warmup: Duration::from_secs(args.warmup_s),
            rate_from: (Instant::now(), 0),
            rate: 0.0,
        }
    }

    fn started(&mut self, start: Instant) {
        self.start = Some(start);
        self.rate_from = (start, 0);
    }

    fn tick(&mut self) {
        let (Some(bar), Some(start)) = (&self.bar, self.start) else {
            return;
        };
        let now = Instant::now();
        let ok = self.live_ok.load(Ordering::Relaxed);
        let span = now.saturating_duration_since(self.rate_from.0);
        if span >= Duration::from_millis(500) {
            self.rate = (ok - self.rate_from.1.min(ok)) as f64 / span.as_secs_f64();
            self.rate_from = (now, ok);
        }
        let elapsed = now.saturating_duration_since(start);
        let phase = if elapsed < self.warmup {
            "warm-up"
        } else {
            "measuring"
        };
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!(
            "{}: {phase} {:.1}/{:.0} s, {:.0} ops/s",
            self.target,
            elapsed.as_secs_f64(),
            bar.length().unwrap_or(0) as f64 / 1000.0,
            self.rate
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Merges bucket reports into `timeline` and ticks the progress bar until `done` says
/// every thread has ended, then takes what is left in the channel.
fn pump(
    rx: &mpsc::Receiver<BucketReport>,
    done: impl Fn() -> bool,
    timeline: &mut Timeline,
    progress: &mut Progress,
) {
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(b) => timeline.add(b),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        progress.tick();
        if done() {
            break;
        }
    }
    while let Ok(b) = rx.try_recv() {
        timeline.add(b);
    }
}

/// Joins the threads; a panicked one becomes a failure line.
fn join_all<T>(handles: Vec<(usize, JoinHandle<T>)>, failures: &mut Vec<String>) -> Vec<T> {
    let mut outcomes = Vec::with_capacity(handles.len());
    for (i, h) in handles {
        match h.join() {
            Ok(o) => outcomes.push(o),
            Err(_) => failures.push(format!("thread {i} panicked")),
        }
    }
    outcomes
}

/// Setup, the measured run and cleanup against one target.
pub fn run_target(args: &BenchArgs, target: &str) -> anyhow::Result<TargetResult> {
    use anyhow::Context;
    let (addrs, chroot) = resolve_all(target)?;
    let base = format!("{}/corral-bench", chroot.unwrap_or_default());
    let keys = if args.workload.uses_keys() {
        args.keys as usize
    } else {
        0
    };
    let duration = Duration::from_secs(args.duration_s);
    let bucket = record::bucket_width(duration);
    // Setup and cleanup are pipelined; even a slow fsyncing server makes thousands of
    // nodes a second, so a minute plus a millisecond per key is generous.
    let admin_max = Duration::from_secs(60) + Duration::from_millis(keys as u64);
    let watched = (args.workload == Workload::WatchFanout)
        .then(|| (Plan::watched_path(&base), Arc::new(SendTimes::default())));
    let plan = Arc::new(Plan {
        workload: args.workload,
        outstanding: args.outstanding() as usize,
        read_pct: args.read_pct as u32,
        value: vec![b'v'; args.value_bytes as usize],
        key_paths: (0..keys).map(|i| format!("{base}/k{i}")).collect(),
        base,
        warmup: Duration::from_secs(args.warmup_s),
        duration,
        seed: args.seed,
        cleanup_max: Duration::from_secs(60).max(duration * 2),
        rate: args.rate,
        senders: args.senders(),
        sequential: args.sequential,
        multi_ops: args.multi_ops as usize,
        bucket,
        watched,
    });

    let mut admin = Session::connect(addrs[0], CONNECT_TIMEOUT).context("setup session")?;
    load::setup(&mut admin, &plan, Instant::now() + admin_max).context("setup")?;
    // Closed now and reopened for cleanup: an idle session would expire during a long run.
    admin.close(Duration::from_secs(2));

    let live_ok = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let sink = Sink {
        buckets: tx,
        live_ok: live_ok.clone(),
    };
    let mut progress = Progress::new(args, target, live_ok);
    let mut timeline = Timeline::new(bucket, duration);
    let mut failures = Vec::new();
    let outcomes: Vec<SessionOutcome>;
    let mut watcher_outcomes: Vec<fanout::WatcherOutcome> = Vec::new();
    let mut armed = 0;

    match args.workload {
        Workload::EphemeralChurn => {
            let start = Instant::now();
            progress.started(start);
            let mut handles = Vec::with_capacity(args.sessions as usize);
            for i in 0..args.sessions as usize {
                let (plan, sink, addr) = (plan.clone(), sink.clone(), addrs[i % addrs.len()]);
                let spawned = std::thread::Builder::new()
                    .name(format!("bench-{i}"))
                    .spawn(move || load::run_churn(addr, i, plan, start, sink));
                match spawned {
                    Ok(h) => handles.push((i, h)),
                    Err(e) => failures.push(format!("session {i}: cannot start its thread: {e}")),
                }
            }
            drop(sink);
            let done = || handles.iter().all(|(_, h)| h.is_finished());
            pump(&rx, done, &mut timeline, &mut progress);
            outcomes = join_all(handles, &mut failures);
        }
        Workload::WatchFanout => {
            let (ready_tx, ready_rx) = mpsc::channel();
            let mut starts = Vec::new();
            let mut watcher_handles = Vec::new();
            let all: Vec<(usize, SocketAddr)> = (0..args.watchers as usize)
                .map(|i| (i, addrs[i % addrs.len()]))
                .collect();
            for (t, group) in all.chunks(fanout::WATCHERS_PER_THREAD).enumerate() {
                let (start_tx, start_rx) = mpsc::channel();
                let job = fanout::WatcherJob {
                    thread: t,
                    sessions: group.to_vec(),
                    path: Plan::watched_path(&plan.base),
                    times: plan
                        .watched
                        .as_ref()
                        .map(|(_, t)| t.clone())
                        .unwrap_or_default(),
                    warmup: plan.warmup,
                    duration,
                    bucket,
                    sink: sink.clone(),
                    ready: ready_tx.clone(),
                    start: start_rx,
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("bench-watch-{t}"))
                    .spawn(move || fanout::run_watchers(job));
                match spawned {
                    Ok(h) => {
                        watcher_handles.push((t, h));
                        starts.push(start_tx);
                    }
                    Err(e) => failures.push(format!("watcher thread {t}: cannot start: {e}")),
                }
            }
            drop(ready_tx);
            // Every watcher thread reports once, armed or not (bounded by ARM_MAX each).
            for _ in 0..watcher_handles.len() {
                match ready_rx.recv_timeout(fanout::ARM_MAX * 2) {
                    Ok((_, n, f)) => {
                        armed += n;
                        failures.extend(f);
                    }
                    Err(_) => break,
                }
            }
            let start = Instant::now();
            progress.started(start);
            for s in &starts {
                let _ = s.send(start);
            }
            let mut handles = Vec::new();
            match Session::connect(addrs[0], CONNECT_TIMEOUT) {
                Ok(s) => {
                    // The timeline and the bar count notifications: the writer's own
                    // replies go to a sink nobody reads.
                    let writer_sink = Sink {
                        buckets: mpsc::channel().0,
                        live_ok: Arc::new(AtomicU64::new(0)),
                    };
                    let plan = plan.clone();
                    match std::thread::Builder::new()
                        .name("bench-writer".into())
                        .spawn(move || load::run_session(s, 0, plan, start, writer_sink))
                    {
                        Ok(h) => handles.push((0, h)),
                        Err(e) => failures.push(format!("writer: cannot start its thread: {e}")),
                    }
                }
                Err(e) => failures.push(format!("writer: {e:#}")),
            }
            drop(sink);
            let done = || {
                handles.iter().all(|(_, h)| h.is_finished())
                    && watcher_handles.iter().all(|(_, h)| h.is_finished())
            };
            pump(&rx, done, &mut timeline, &mut progress);
            outcomes = join_all(handles, &mut failures);
            watcher_outcomes = join_all(watcher_handles, &mut failures);
        }
        _ => {
            let mut sessions = Vec::with_capacity(args.sessions as usize);
            for i in 0..args.sessions as usize {
                match Session::connect(addrs[i % addrs.len()], CONNECT_TIMEOUT) {
                    Ok(s) => sessions.push((i, s)),
                    Err(e) => failures.push(format!("session {i}: {e:#}")),
                }
            }
            let start = Instant::now();
            progress.started(start);
            let mut handles = Vec::with_capacity(sessions.len());
            for (i, s) in sessions {
                let (plan, sink) = (plan.clone(), sink.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("bench-{i}"))
                    .spawn(move || load::run_session(s, i, plan, start, sink));
                match spawned {
                    Ok(h) => handles.push((i, h)),
                    Err(e) => failures.push(format!("session {i}: cannot start its thread: {e}")),
                }
            }
            drop(sink);
            let done = || handles.iter().all(|(_, h)| h.is_finished());
            pump(&rx, done, &mut timeline, &mut progress);
            outcomes = join_all(handles, &mut failures);
        }
    }
    progress.finish();

    let mut result = TargetResult {
        target: target.to_string(),
        sessions_ran: outcomes.len(),
        measured: duration,
        ok: 0,
        errors: Default::default(),
        failures,
        hist: record::new_histogram(),
        client_cpu: Duration::ZERO,
        gap_max: Duration::ZERO,
        idle_polls: 0,
        cleanup_left: 0,
        cleanup_error: None,
        timeline,
        lag: args.rate.map(|_| Lag::default()),
        writes: None,
        watchers_armed: None,
        unmatched: 0,
    };
    let mut writes = 0;
    for (i, o) in outcomes.into_iter().enumerate() {
        writes += o.rec.ok;
        if args.workload != Workload::WatchFanout {
            result.ok += o.rec.ok;
            for (code, n) in &o.rec.errors {
                *result.errors.entry(*code).or_insert(0) += n;
            }
            // Same bounds on both sides, so adding cannot fail; keep going if it ever does.
            let _ = result.hist.add(&o.rec.hist);
        } else {
            for (code, n) in &o.rec.errors {
                *result.errors.entry(*code).or_insert(0) += n;
            }
        }
        result.client_cpu += o.cpu;
        result.gap_max = result.gap_max.max(o.gap_max);
        result.idle_polls += o.idle_polls;
        result.cleanup_left += o.cleanup_left;
        if let Some(l) = &mut result.lag {
            l.merge(&o.lag);
        }
        if let Some(f) = o.failure {
            result.failures.push(format!("session {i}: {f}"));
        }
    }
    if args.workload == Workload::WatchFanout {
        result.writes = Some(writes);
        result.watchers_armed = Some(armed);
        for o in watcher_outcomes {
            result.ok += o.rec.ok;
            for (code, n) in &o.rec.errors {
                *result.errors.entry(*code).or_insert(0) += n;
            }
            let _ = result.hist.add(&o.rec.hist);
            result.client_cpu += o.cpu;
            result.unmatched += o.unmatched;
            result.failures.extend(o.failures);
        }
    }

    if args.keep {
        return Ok(result);
    }
    let cleanup = Session::connect(addrs[0], CONNECT_TIMEOUT).and_then(|mut s| {
        let left = load::cleanup(&mut s, &plan, Instant::now() + admin_max);
        s.close(Duration::from_secs(2));
        left
    });
    match cleanup {
        Ok(left) => result.cleanup_left += left,
        Err(e) => result.cleanup_error = Some(format!("{e:#}")),
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn args(extra: &[&str]) -> BenchArgs {
        report::tests::args(extra)
    }

    #[test]
    fn bounds_are_enforced_by_the_parser() {
        assert!(Wrapper::try_parse_from(["bench", "--sessions", "0"]).is_err());
        assert!(Wrapper::try_parse_from(["bench", "--read-pct", "101"]).is_err());
        assert!(Wrapper::try_parse_from(["bench", "--duration-s", "0"]).is_err());
        let a = args(&[]);
        assert_eq!((a.sessions, a.outstanding(), a.value_bytes), (8, 16, 1024));
        assert_eq!(args(&["--rate", "100"]).outstanding(), OUTSTANDING_MAX);
        assert_eq!(args(&["--workload", "watch-fanout"]).outstanding(), 1);
        assert_eq!(
            args(&["--rate", "100", "--outstanding", "3"]).outstanding(),
            3
        );
        assert!(Wrapper::try_parse_from(["bench", "--rate", "0"]).is_err());
        assert!(Wrapper::try_parse_from(["bench", "--multi-ops", "0"]).is_err());
        assert!(Wrapper::try_parse_from(["bench", "--watchers", "10001"]).is_err());
    }

    /// The whole path (setup, closed loop, cleanup, report) against the stub, briefly.
    #[test]
    fn runs_against_the_stub() {
        for workload in [
            "get",
            "set",
            "create",
            "mixed",
            "exists",
            "multi",
            "ephemeral-churn",
        ] {
            let a = args(&[
                "--stub",
                "--workload",
                workload,
                "--sessions",
                "2",
                "--outstanding",
                "4",
                "--keys",
                "10",
                "--duration-s",
                "1",
                "--warmup-s",
                "0",
            ]);
            let results = run_all(&a).unwrap();
            let r = &results[0];
            assert!(r.ok > 0, "{workload}: no ops");
            assert!(r.failures.is_empty(), "{workload}: {:?}", r.failures);
            assert!(r.errors.is_empty(), "{workload}: {:?}", r.errors);
            assert!(report::text(&a, &results).contains("ops/s"));
            assert!(report::json(&a, &results).starts_with("{\"workload\""));
        }
    }
}
