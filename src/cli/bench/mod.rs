//! `corral bench`: a closed-loop load generator for any server that speaks the ZooKeeper
//! client protocol (Corral or Apache ZooKeeper).
//!
//! A run against one target: make `<chroot>/corral-bench` and its key nodes `k<N>` (data
//! of `--value-bytes`), open `--sessions` sessions (spread round-robin over the hosts),
//! run one thread per session with `--outstanding` requests pipelined on its connection
//! for `--warmup-s` + `--duration-s` (see [`load`]), then remove what was made and
//! report throughput and latency quantiles from the merged hdrhistograms ([`report`]).
//! `--compare HOSTS2` repeats the same run against a second target and prints ratios.
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

pub mod load;
pub mod report;
pub mod stub;
pub mod wire;

use crate::client::{hosts, ConnectString};
use load::{Plan, SessionOutcome, Workload};
use report::TargetResult;
use std::net::SocketAddr;
use std::sync::Arc;
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

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Connect string of the target: host:port[,host:port...][/chroot].
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    /// What each session sends.
    #[arg(long, value_enum, default_value_t = Workload::Get)]
    pub workload: Workload,
    /// Sessions (connections), one thread each.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=SESSIONS_MAX))]
    pub sessions: u64,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=OUTSTANDING_MAX))]
    pub outstanding: u64,
    /// Data size written by setup, set and create.
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
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
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
            let clean = results
                .iter()
                .all(|r| r.failures.is_empty() && r.cleanup_error.is_none() && r.ok > 0);
            if clean {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("corral bench: {e:#}");
            1
        }
    }
}

fn run_all(args: &BenchArgs) -> anyhow::Result<Vec<TargetResult>> {
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
    // Setup and cleanup are pipelined; even a slow fsyncing server makes thousands of
    // nodes a second, so a minute plus a millisecond per key is generous.
    let admin_max = Duration::from_secs(60) + Duration::from_millis(keys as u64);
    let plan = Arc::new(Plan {
        workload: args.workload,
        outstanding: args.outstanding as usize,
        read_pct: args.read_pct as u32,
        value: vec![b'v'; args.value_bytes as usize],
        key_paths: (0..keys).map(|i| format!("{base}/k{i}")).collect(),
        base,
        warmup: Duration::from_secs(args.warmup_s),
        duration,
        seed: args.seed,
        cleanup_max: Duration::from_secs(60).max(duration * 2),
    });

    let mut admin = Session::connect(addrs[0], CONNECT_TIMEOUT).context("setup session")?;
    load::setup(&mut admin, &plan, Instant::now() + admin_max).context("setup")?;
    // Closed now and reopened for cleanup: an idle session would expire during a long run.
    admin.close(Duration::from_secs(2));

    let mut failures = Vec::new();
    let mut sessions = Vec::with_capacity(args.sessions as usize);
    for i in 0..args.sessions as usize {
        match Session::connect(addrs[i % addrs.len()], CONNECT_TIMEOUT) {
            Ok(s) => sessions.push((i, s)),
            Err(e) => failures.push(format!("session {i}: {e:#}")),
        }
    }

    let start = Instant::now();
    let mut handles = Vec::with_capacity(sessions.len());
    for (i, s) in sessions {
        let plan = plan.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("bench-{i}"))
            .spawn(move || load::run_session(s, i, plan, start));
        match spawned {
            Ok(h) => handles.push((i, h)),
            Err(e) => failures.push(format!("session {i}: cannot start its thread: {e}")),
        }
    }
    let mut outcomes: Vec<SessionOutcome> = Vec::with_capacity(handles.len());
    for (i, h) in handles {
        match h.join() {
            Ok(o) => outcomes.push(o),
            Err(_) => failures.push(format!("session {i}: its thread panicked")),
        }
    }

    let mut result = TargetResult {
        target: target.to_string(),
        sessions_ran: outcomes.len(),
        measured: duration,
        ok: 0,
        errors: Default::default(),
        failures,
        hist: load::new_histogram(),
        client_cpu: Duration::ZERO,
        gap_max: Duration::ZERO,
        idle_polls: 0,
        cleanup_left: 0,
        cleanup_error: None,
    };
    for (i, o) in outcomes.into_iter().enumerate() {
        result.ok += o.ok;
        for (code, n) in o.errors {
            *result.errors.entry(code).or_insert(0) += n;
        }
        // Same bounds on both sides, so adding cannot fail; keep going if it ever does.
        let _ = result.hist.add(&o.hist);
        result.client_cpu += o.cpu;
        result.gap_max = result.gap_max.max(o.gap_max);
        result.idle_polls += o.idle_polls;
        result.cleanup_left += o.cleanup_left;
        if let Some(f) = o.failure {
            result.failures.push(format!("session {i}: {f}"));
        }
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
        let mut argv = vec!["bench"];
        argv.extend_from_slice(extra);
        Wrapper::parse_from(argv).args
    }

    #[test]
    fn bounds_are_enforced_by_the_parser() {
        assert!(Wrapper::try_parse_from(["bench", "--sessions", "0"]).is_err());
        assert!(Wrapper::try_parse_from(["bench", "--read-pct", "101"]).is_err());
        assert!(Wrapper::try_parse_from(["bench", "--duration-s", "0"]).is_err());
        let a = args(&[]);
        assert_eq!((a.sessions, a.outstanding, a.value_bytes), (8, 16, 1024));
    }

    /// The whole path (setup, closed loop, cleanup, report) against the stub, briefly.
    #[test]
    fn runs_against_the_stub() {
        for workload in ["get", "set", "create", "mixed"] {
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
