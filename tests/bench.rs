//! `corral bench` end to end against a real Corral server: every workload for about a
//! second (closed loop, and open loop at a fixed rate), then the HTML and `.hgrm` outputs
//! of a run with `--compare`. Each bench process is bounded by a deadline and killed (by
//! its pid) if it overruns.

mod common;
use common::TestServer;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Setup + 1 s of load + drain + cleanup, in a debug build on a busy machine.
const BENCH_MAX: Duration = Duration::from_secs(90);

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn bench(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("bench")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corral bench");
    let deadline = Instant::now() + BENCH_MAX;
    // Output is small (one JSON document or table), so the pipes cannot fill up.
    loop {
        match child.try_wait().expect("wait for corral bench") {
            Some(_) => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "corral bench {args:?} ran over {BENCH_MAX:?}; stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let out = child.wait_with_output().expect("collect output");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The number after `"key":` at its first occurrence in `json`.
fn number(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing from {json}"))
        + pat.len();
    let tail = &json[at..];
    let end = tail
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(tail.len());
    tail[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

const COMMON: [&str; 10] = [
    "--sessions",
    "2",
    "--keys",
    "20",
    "--value-bytes",
    "64",
    "--duration-s",
    "1",
    "--warmup-s",
    "0",
];

#[test]
fn every_workload_runs_against_corral() {
    let server = TestServer::start("");
    let hosts = server.hosts();
    let cases: &[(&str, &[&str])] = &[
        ("get", &["--outstanding", "4"]),
        ("exists", &["--outstanding", "4"]),
        ("set", &["--outstanding", "4"]),
        ("mixed", &["--outstanding", "4", "--read-pct", "50"]),
        ("multi", &["--outstanding", "2", "--multi-ops", "5"]),
        ("create", &["--outstanding", "4"]),
        ("create", &["--outstanding", "4", "--sequential"]),
        ("ephemeral-churn", &[]),
        ("watch-fanout", &["--watchers", "20"]),
        ("get", &["--rate", "2000"]),
        ("watch-fanout", &["--watchers", "5", "--rate", "50"]),
    ];
    for (workload, extra) in cases {
        let mut args = vec!["--hosts", &hosts, "--workload", workload, "--json"];
        args.extend_from_slice(&COMMON);
        args.extend_from_slice(extra);
        let run = bench(&args);
        let what = format!("{workload} {extra:?}");
        assert!(run.ok, "{what} failed: {}{}", run.stdout, run.stderr);
        let j = run.stdout.trim();
        assert!(
            j.starts_with('{') && j.ends_with('}'),
            "{what}: not JSON: {j}"
        );
        assert!(
            j.contains(&format!("\"workload\":\"{workload}\"")),
            "{what}: {j}"
        );
        assert!(number(j, "ok") > 0.0, "{what}: nothing succeeded: {j}");
        assert!(j.contains("\"failures\":[]"), "{what}: {j}");
        assert!(j.contains("\"errors\":{}"), "{what}: {j}");
        assert_eq!(number(j, "cleanup_left"), 0.0, "{what}: {j}");
        assert!(
            j.contains("\"timeline\":{\"bucket_s\":1,\"ops_per_s\":["),
            "{what}: {j}"
        );
        assert!(number(j, "p50") > 0.0, "{what}: {j}");
        if *workload == "watch-fanout" {
            let watchers = number(j, "watchers_armed");
            assert_eq!(
                watchers,
                if extra.contains(&"5") { 5.0 } else { 20.0 },
                "{j}"
            );
            let writes = number(j, "writes");
            assert!(writes > 0.0, "{what}: no writes: {j}");
            // Each write reaches at most every watcher; re-arming races make it fewer.
            assert!(number(j, "ok") <= writes * watchers, "{what}: {j}");
        }
        if extra.contains(&"--rate") {
            // Achieved within 30 % of the asked rate over one second.
            let asked = number(j, "rate");
            let achieved = number(j, "achieved_per_s");
            assert!(
                achieved > asked * 0.7 && achieved < asked * 1.3,
                "{what}: asked {asked}/s, achieved {achieved}/s: {j}"
            );
        } else {
            assert!(j.contains("\"schedule\":null"), "{what}: {j}");
        }
    }
    // Every run removed what it made.
    let ls = Command::new(env!("CARGO_BIN_EXE_corral"))
        .args(["cli", "-server", &hosts, "ls", "/"])
        .output()
        .expect("corral cli");
    let listing = String::from_utf8_lossy(&ls.stdout);
    assert!(listing.contains("[zookeeper]"), "{listing}");
    assert!(!listing.contains("corral-bench"), "{listing}");
}

#[test]
fn compare_writes_html_and_hgrm() {
    let server = TestServer::start("");
    let hosts = server.hosts();
    let dir = server.dir.join("bench-out");
    let html = dir.join("report.html");
    let hgrm = dir.join("hgrm");
    std::fs::create_dir_all(&dir).expect("out dir");
    let html_arg = html.to_string_lossy().into_owned();
    let hgrm_arg = hgrm.to_string_lossy().into_owned();
    let mut args = vec![
        "--hosts",
        &hosts,
        "--compare",
        &hosts,
        "--workload",
        "set",
        "--outstanding",
        "2",
        "--html",
        &html_arg,
        "--hgrm",
        &hgrm_arg,
    ];
    args.extend_from_slice(&COMMON);
    let run = bench(&args);
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ratio "), "{}", run.stdout);
    // No progress bar: stderr is a pipe here.
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    let page = std::fs::read_to_string(&html).expect("the HTML report");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert_eq!(page.matches("<svg").count(), 3);
    assert_eq!(
        page.matches("<polyline").count(),
        6,
        "two targets x three plots"
    );
    assert!(page.contains(&format!("A {hosts}")) && page.contains(&format!("B {hosts}")));

    let mut names: Vec<String> = std::fs::read_dir(&hgrm)
        .expect("the hgrm dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let port = hosts.rsplit(':').next().expect("a port");
    assert_eq!(
        names,
        [
            format!("1-127.0.0.1_{port}.hgrm"),
            format!("2-127.0.0.1_{port}.hgrm"),
            "summary.json".to_string()
        ]
    );
    let h = std::fs::read_to_string(hgrm.join(&names[0])).expect("hgrm");
    assert!(h.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
    assert!(h.contains("1.000000000000"), "{h}");
    assert!(h.contains("#[Max     ="), "{h}");
    let summary = std::fs::read_to_string(hgrm.join("summary.json")).expect("summary");
    assert!(summary.contains("\"ratio\":{"), "{summary}");
}
