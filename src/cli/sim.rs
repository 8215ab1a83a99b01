//! `corral sim [--seeds N | --seed S] [--from F] [--trace] [--election] [--time-limit-s T]`:
//! runs the deterministic simulations of `quorum` (the whole cluster by default, fast leader
//! election alone with `--election`) over a range of seeds, outside `cargo test`.
//!
//! Seeds `F..F+N` (default 1000 seeds from 1) run one after the other on this thread; each is
//! bounded by the simulation's own event and simulated-time limits, so the command always
//! ends. A progress line goes to stderr every few seconds; the summary goes to stdout. The
//! first failing seed stops the run: it prints the seed, the simulated time, the reason and
//! the one-line command that replays it with a trace (`corral sim --seed S --trace`).
//!
//! Exit status: 0 = every seed run passed (also when `--time-limit-s` ended the run early:
//! the summary says how many ran), 1 = a seed failed, 2 = bad arguments (one line on stderr).
//! Numbers are parsed here rather than by clap so that a bad one gives one line, not a usage
//! page.

use crate::quorum::{cluster_sim, election_sim};
use std::io::Write;
use std::time::{Duration, Instant};

/// Seeds run when neither `--seeds` nor `--seed` is given.
const SEEDS_DEFAULT: u64 = 1000;
/// How often the progress line is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Run this many seeds, from --from (default 1000).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seeds: Option<String>,
    /// Run this one seed (to replay a failure; add --trace).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub seed: Option<String>,
    /// The first seed of the range (default 1).
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub from: Option<String>,
    /// Print every event of each run on stderr.
    #[arg(long)]
    pub trace: bool,
    /// Simulate fast leader election alone instead of the whole cluster.
    #[arg(long)]
    pub election: bool,
    /// Stop starting new seeds after this many seconds of wall time (exit 0 if all that ran
    /// passed).
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub time_limit_s: Option<String>,
}

/// What `SimArgs` asks for, validated.
struct Plan {
    first: u64,
    count: u64,
    trace: bool,
    election: bool,
    time_limit: Option<Duration>,
}

/// Entry point; returns the exit code.
pub fn run(args: SimArgs) -> i32 {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(why) => {
            eprintln!("corral sim: {why}");
            return 2;
        }
    };
    let mut out = std::io::stdout().lock();
    if plan.election {
        execute(
            &plan,
            "election",
            election_sim::run_seed,
            election_summary,
            &mut out,
        )
    } else {
        execute(
            &plan,
            "cluster",
            cluster_sim::run_seed,
            cluster_summary,
            &mut out,
        )
    }
}

fn number(flag: &str, text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| format!("{flag} {text}: not a whole number (0 to {})", u64::MAX))
}

fn plan(args: &SimArgs) -> Result<Plan, String> {
    let time_limit = match &args.time_limit_s {
        None => None,
        Some(t) => match number("--time-limit-s", t)? {
            0 => return Err(format!("--time-limit-s {t}: must be at least 1")),
            s => Some(Duration::from_secs(s)),
        },
    };
    let (first, count) = match &args.seed {
        Some(s) => {
            if args.seeds.is_some() || args.from.is_some() {
                return Err(
                    "--seed runs one seed: it does not combine with --seeds or --from".to_string(),
                );
            }
            (number("--seed", s)?, 1)
        }
        None => {
            let first = match &args.from {
                Some(f) => number("--from", f)?,
                None => 1,
            };
            let count = match &args.seeds {
                Some(n) => number("--seeds", n)?,
                None => SEEDS_DEFAULT,
            };
            if count == 0 {
                return Err("--seeds 0: run at least one seed".to_string());
            }
            if first.checked_add(count - 1).is_none() {
                return Err(format!(
                    "--from {first} --seeds {count}: the last seed would pass {}",
                    u64::MAX
                ));
            }
            (first, count)
        }
    };
    Ok(Plan {
        first,
        count,
        trace: args.trace,
        election: args.election,
        time_limit,
    })
}

/// The command that replays `seed` with a trace.
fn replay_command(plan: &Plan, seed: u64) -> String {
    let election = if plan.election { " --election" } else { "" };
    format!("corral sim{election} --seed {seed} --trace")
}

/// Runs the planned seeds through `run_seed`, adding their stats up; writes the summary
/// (`summary` renders the stats) and the first failure to `out`, progress to stderr.
/// Returns the exit code. A report line that cannot be written (a closed pipe) is not a
/// reason to stop simulating: the exit code still tells.
fn execute<S: Default + AddStats>(
    plan: &Plan,
    name: &str,
    run_seed: fn(u64, bool) -> Result<S, cluster_sim::Failure>,
    summary: fn(&S, &mut Vec<String>),
    out: &mut dyn Write,
) -> i32 {
    let last = plan.first + (plan.count - 1);
    let _ = writeln!(
        out,
        "corral sim: {name} simulation, seeds {}..={last} ({} seed{})",
        plan.first,
        plan.count,
        if plan.count == 1 { "" } else { "s" }
    );
    let start = Instant::now();
    let mut progress_at = start + PROGRESS_INTERVAL;
    let mut total = S::default();
    let mut ran: u64 = 0;
    let mut failure = None;
    let mut stopped_by_time = false;
    for seed in plan.first..=last {
        if plan
            .time_limit
            .is_some_and(|limit| start.elapsed() >= limit)
        {
            stopped_by_time = true;
            break;
        }
        match run_seed(seed, plan.trace) {
            Ok(stats) => total.add_stats(&stats),
            Err(f) => {
                failure = Some(f);
                break;
            }
        }
        ran += 1;
        let now = Instant::now();
        if now >= progress_at && ran < plan.count {
            eprintln!(
                "corral sim: {ran} of {} seeds passed ({:.0} s)",
                plan.count,
                start.elapsed().as_secs_f64()
            );
            progress_at = now + PROGRESS_INTERVAL;
        }
    }
    let elapsed_s = start.elapsed().as_secs_f64();
    let mut lines = Vec::new();
    summary(&total, &mut lines);
    if ran > 0 {
        let _ = writeln!(
            out,
            "passed: {ran} seed{} ({}..={}) in {elapsed_s:.1} s",
            if ran == 1 { "" } else { "s" },
            plan.first,
            plan.first + (ran - 1)
        );
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    if let Some(f) = failure {
        let _ = writeln!(out, "FAILED: {f}");
        let _ = writeln!(out, "replay: {}", replay_command(plan, f.seed));
        return 1;
    }
    if stopped_by_time {
        let limit_s = plan.time_limit.map_or(0, |d| d.as_secs());
        let _ = writeln!(
            out,
            "time limit of {limit_s} s reached: {ran} of {} seeds ran, all passed",
            plan.count
        );
    }
    0
}

/// Adding one run's stats to a total, for both simulations.
trait AddStats {
    fn add_stats(&mut self, other: &Self);
}

impl AddStats for cluster_sim::Stats {
    fn add_stats(&mut self, other: &Self) {
        self.add(other);
    }
}

impl AddStats for election_sim::Stats {
    fn add_stats(&mut self, other: &Self) {
        self.add(other);
    }
}

fn cluster_summary(s: &cluster_sim::Stats, out: &mut Vec<String>) {
    out.push(format!(
        "events: {}, simulated time: {} s",
        s.events,
        s.sim_ms / 1000
    ));
    out.push(format!(
        "writes: {} commits, {} acknowledged, {} forwarded, {} syncs answered",
        s.commits, s.acked, s.forwarded, s.syncs_reached
    ));
    out.push(format!(
        "syncs: {} DIFF, {} TRUNC, {} SNAP",
        s.diffs, s.truncs, s.snaps
    ));
    out.push(format!(
        "leadership: {} established, {} back to looking, {} step-downs for a voter ahead, \
         {} adversarial decisions",
        s.establishments, s.learner_restarts, s.step_downs_ahead, s.adversarial_decisions
    ));
    out.push(format!(
        "faults: {} crashes ({} at crash points, {} unsynced records kept), {} connections cut",
        s.crashes, s.crash_points, s.unsynced_records_kept, s.cuts
    ));
    out.push(format!(
        "membership: {} reconfigs proposed, {} committed, {} memberships taken from votes",
        s.reconfigs_proposed, s.reconfigs_committed, s.memberships_from_votes
    ));
    probes(s.probes_missed(), out);
}

fn election_summary(s: &election_sim::Stats, out: &mut Vec<String>) {
    out.push(format!("events: {}", s.events));
    out.push(format!(
        "decisions: {}, {} by observers, {} restarts, {} split rounds, settled within {} ms at most",
        s.decisions, s.observer_decisions, s.restarts, s.split_rounds, s.settle_ms_max
    ));
    probes(s.probes_missed(), out);
}

/// Probes no seed reached: worth knowing over a long range, expected for a single seed.
fn probes(missed: Vec<&'static str>, out: &mut Vec<String>) {
    if !missed.is_empty() {
        out.push(format!("not reached by these seeds: {}", missed.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passes every seed but 5, which fails at 1234 ms.
    fn fake(seed: u64, _trace: bool) -> Result<cluster_sim::Stats, cluster_sim::Failure> {
        if seed == 5 {
            return Err(cluster_sim::Failure {
                seed,
                at_ms: 1234,
                reason: "two txns at one position".to_string(),
            });
        }
        Ok(cluster_sim::Stats {
            seeds: 1,
            commits: 2,
            ..Default::default()
        })
    }

    fn args(argv: &[&str]) -> SimArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            sim: SimArgs,
        }
        let argv = std::iter::once("sim").chain(argv.iter().copied());
        match Wrap::try_parse_from(argv) {
            Ok(w) => w.sim,
            Err(e) => panic!("{e}"),
        }
    }

    fn execute_fake(argv: &[&str]) -> (i32, String) {
        let plan = match plan(&args(argv)) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let mut out = Vec::new();
        let code = execute(&plan, "cluster", fake, cluster_summary, &mut out);
        (code, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn a_failing_seed_stops_the_run_and_prints_its_replay_command() {
        let (code, out) = execute_fake(&["--seeds", "10"]);
        assert_eq!(code, 1, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.contains(&"passed: 4 seeds (1..=4) in 0.0 s"), "{out}");
        assert!(
            lines.contains(&"writes: 8 commits, 0 acknowledged, 0 forwarded, 0 syncs answered"),
            "{out}"
        );
        let n = lines.len();
        assert_eq!(
            lines[n - 2],
            "FAILED: seed 5 at 1234 ms: two txns at one position"
        );
        assert_eq!(lines[n - 1], "replay: corral sim --seed 5 --trace");
    }

    #[test]
    fn the_first_seed_failing_prints_no_summary() {
        let (code, out) = execute_fake(&["--seed", "5"]);
        assert_eq!(code, 1, "{out}");
        assert!(!out.contains("passed:"), "{out}");
        assert!(
            out.ends_with("replay: corral sim --seed 5 --trace\n"),
            "{out}"
        );
    }

    #[test]
    fn the_election_replay_command_names_the_election() {
        let plan = match plan(&args(&["--election", "--from", "3"])) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!((plan.first, plan.count), (3, SEEDS_DEFAULT));
        assert_eq!(
            replay_command(&plan, 9),
            "corral sim --election --seed 9 --trace"
        );
    }

    #[test]
    fn seeds_past_the_failing_one_pass() {
        let (code, out) = execute_fake(&["--from", "6", "--seeds", "3"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("passed: 3 seeds (6..=8) in "), "{out}");
        assert!(!out.contains("FAILED"), "{out}");
    }
}
