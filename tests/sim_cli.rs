//! `corral sim` end to end: a range of cluster seeds, one seed replayed with its trace, the
//! election simulation, the time limit, and one-line errors (exit 2) for bad arguments.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest any one `corral sim` run may take here (50 seeds take well under a second in
/// release, a few seconds in a debug build).
const RUN_DEADLINE: Duration = Duration::from_secs(120);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `corral sim ARGS`, killed if it outlives [`RUN_DEADLINE`].
fn sim(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corral");
    // Read both pipes on threads so a long trace cannot fill a pipe and stall the child.
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("corral sim {args:?} ran longer than {RUN_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn line_starting<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

/// The number just before `word` in `line` (`"syncs: 12 DIFF, 3 TRUNC"`, `"DIFF"` -> 12).
fn number_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let at = words
        .iter()
        .position(|w| *w == word)
        .unwrap_or_else(|| panic!("no {word:?} in {line:?}"));
    assert!(at > 0, "nothing before {word:?} in {line:?}");
    words[at - 1]
        .parse()
        .unwrap_or_else(|_| panic!("no number before {word:?} in {line:?}"))
}

#[test]
fn a_range_of_cluster_seeds_passes_with_a_summary() {
    let r = sim(&["--seeds", "50"]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert_eq!(
        line_starting(&r.stdout, "corral sim:"),
        "corral sim: cluster simulation, seeds 1..=50 (50 seeds)"
    );
    assert!(
        line_starting(&r.stdout, "passed:").starts_with("passed: 50 seeds (1..=50) in "),
        "{}",
        r.stdout
    );
    let writes = line_starting(&r.stdout, "writes:");
    assert!(number_before(writes, "commits") > 0, "{writes}");
    assert!(number_before(writes, "acknowledged") > 0, "{writes}");
    let syncs = line_starting(&r.stdout, "syncs:");
    assert!(number_before(syncs, "DIFF") > 0, "{syncs}");
    let faults = line_starting(&r.stdout, "faults:");
    assert!(number_before(faults, "crashes") > 0, "{faults}");
    assert!(!r.stdout.contains("FAILED"), "{}", r.stdout);
    // No trace without --trace.
    assert!(!r.stderr.contains(" ms] "), "{}", r.stderr);
}

#[test]
fn one_seed_replays_with_its_trace() {
    let r = sim(&["--seed", "7", "--trace"]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        line_starting(&r.stdout, "passed:").starts_with("passed: 1 seed (7..=7) in "),
        "{}",
        r.stdout
    );
    // The trace: timestamped events, servers starting, deciding and establishing.
    let trace: Vec<&str> = r.stderr.lines().filter(|l| l.contains(" ms] ")).collect();
    assert!(trace.len() > 100, "a short trace:\n{}", r.stderr);
    assert!(trace.iter().any(|l| l.contains(" starts, vote ")));
    assert!(trace.iter().any(|l| l.contains(" established in epoch ")));
    // The same seed replays the same run.
    let again = sim(&["--seed", "7", "--trace"]);
    assert_eq!(again.stderr, r.stderr, "seed 7 did not replay exactly");
    let events = |out: &str| line_starting(out, "events:").to_string();
    assert_eq!(events(&again.stdout), events(&r.stdout));
}

#[test]
fn the_election_simulation_runs_too() {
    let r = sim(&["--election", "--seeds", "200", "--from", "1000"]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert_eq!(
        line_starting(&r.stdout, "corral sim:"),
        "corral sim: election simulation, seeds 1000..=1199 (200 seeds)"
    );
    let decisions = line_starting(&r.stdout, "decisions:");
    assert!(number_before(decisions, "restarts") > 0, "{decisions}");
}

#[test]
fn the_time_limit_ends_a_long_range_with_success() {
    // A million seeds take far longer than a second: the limit must end the run.
    let r = sim(&["--seeds", "1000000", "--time-limit-s", "1"]);
    assert_eq!(r.code, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let ran = number_before(line_starting(&r.stdout, "passed: "), "seeds");
    assert!(ran > 0 && ran < 1_000_000, "{}", r.stdout);
    assert_eq!(
        line_starting(&r.stdout, "time limit of "),
        format!("time limit of 1 s reached: {ran} of 1000000 seeds ran, all passed")
    );
}

#[test]
fn bad_arguments_give_one_line_and_exit_2() {
    for args in [
        &["--seeds", "abc"][..],
        &["--seeds", "0"],
        &["--seed", "-3"],
        &["--seed", "5", "--seeds", "10"],
        &["--from", "18446744073709551615", "--seeds", "2"],
        &["--time-limit-s", "0"],
    ] {
        let r = sim(args);
        assert_eq!(r.code, 2, "{args:?}: stderr {:?}", r.stderr);
        assert_eq!(r.stdout, "", "{args:?}");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {:?}", r.stderr);
        assert!(
            lines[0].starts_with("corral sim: "),
            "{args:?}: {:?}",
            lines[0]
        );
    }
    let r = sim(&["--seeds", "abc"]);
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "corral sim: --seeds abc: not a whole number (0 to {})",
            u64::MAX
        )
    );
}
