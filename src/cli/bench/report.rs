//! What a run measured per target, printed as a text table or as JSON, and the
//! histograms as HdrHistogram percentile-distribution text (`.hgrm`).
//!
//! Latencies are in µs (the histograms' unit); throughput counts successful replies in
//! the measured window divided by its length (watch fan-out: notifications received;
//! ephemeral churn: whole cycles, that is sessions opened and closed). A comparison
//! reports HOSTS / HOSTS2 for throughput (above 1: the first is faster) and for p99
//! (below 1: the first is faster).

use super::load::{code_name, error_counts, Lag, Workload};
use super::record::Timeline;
use super::BenchArgs;
use crate::util::json_str;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The quantiles reported, with their column names.
pub const QUANTILES: [(f64, &str); 5] = [
    (0.50, "p50"),
    (0.90, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
];

/// One target's results, all sessions merged.
pub struct TargetResult {
    /// The connect string as given.
    pub target: String,
    pub sessions_ran: usize,
    pub measured: Duration,
    pub ok: u64,
    pub errors: BTreeMap<i32, u64>,
    /// Sessions that could not connect or stopped early, with the reason.
    pub failures: Vec<String>,
    pub hist: Histogram<u64>,
    /// CPU time of the session threads in the measured window (the load generator's cost).
    pub client_cpu: Duration,
    pub gap_max: Duration,
    pub idle_polls: u64,
    /// Nodes the cleanup could not remove (0 when all went).
    pub cleanup_left: u64,
    pub cleanup_error: Option<String>,
    /// Successful ops and p99 per bucket of the measured window.
    pub timeline: Timeline,
    /// Open loop: how far behind schedule the senders fell.
    pub lag: Option<Lag>,
    /// Watch fan-out: the writer's successful writes in the measured window.
    pub writes: Option<u64>,
    /// Watch fan-out: watching sessions that armed their watch.
    pub watchers_armed: Option<usize>,
    /// Watch fan-out: notifications not matched with a write (not timed).
    pub unmatched: u64,
}

impl TargetResult {
    pub fn ops_per_s(&self) -> f64 {
        let s = self.measured.as_secs_f64();
        if s <= 0.0 {
            return 0.0;
        }
        self.ok as f64 / s
    }

    /// What the senders achieved per second: ops, or the fan-out's writes.
    pub fn sent_per_s(&self) -> f64 {
        let s = self.measured.as_secs_f64();
        if s <= 0.0 {
            return 0.0;
        }
        self.writes.unwrap_or(self.ok) as f64 / s
    }

    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.hist.is_empty() {
            return 0;
        }
        self.hist.value_at_quantile(q)
    }

    pub fn max_us(&self) -> u64 {
        if self.hist.is_empty() {
            return 0;
        }
        self.hist.max()
    }

    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The session threads' CPU as a percentage of one core.
    pub fn client_cpu_pct(&self) -> f64 {
        let s = self.measured.as_secs_f64();
        if s <= 0.0 {
            return 0.0;
        }
        100.0 * self.client_cpu.as_secs_f64() / s
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Throughput and p99 ratios, first / second.
pub fn ratios(a: &TargetResult, b: &TargetResult) -> (Option<f64>, Option<f64>) {
    (
        ratio(a.ops_per_s(), b.ops_per_s()),
        ratio(a.quantile_us(0.99) as f64, b.quantile_us(0.99) as f64),
    )
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "n/a".to_string(), |r| format!("{r:.2}x"))
}

pub fn header_line(args: &BenchArgs) -> String {
    let mut s = format!(
        "corral bench: workload={} sessions={} outstanding={} value-bytes={} keys={} warm-up={}s duration={}s",
        args.workload.name(),
        args.senders(),
        args.outstanding(),
        args.value_bytes,
        args.keys,
        args.warmup_s,
        args.duration_s,
    );
    match args.workload {
        Workload::Mixed => {
            let _ = write!(s, " read-pct={}", args.read_pct);
        }
        Workload::Create if args.sequential => s.push_str(" sequential"),
        Workload::Multi => {
            let _ = write!(s, " multi-ops={}", args.multi_ops);
        }
        Workload::WatchFanout => {
            let _ = write!(s, " watchers={}", args.watchers);
        }
        _ => {}
    }
    match args.rate {
        Some(r) => {
            let _ = write!(s, " open loop rate={r}/s");
        }
        None => s.push_str(" closed loop"),
    }
    s
}

pub fn text(args: &BenchArgs, results: &[TargetResult]) -> String {
    let mut s = header_line(args);
    s.push('\n');
    let width = results
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = write!(s, "{:<width$} {:>10}", "target", "ops/s");
    for (_, name) in QUANTILES {
        let _ = write!(s, " {:>9}", format!("{name} µs"));
    }
    let _ = writeln!(
        s,
        " {:>9} {:>7} {:>9} {:>10}",
        "max µs", "errors", "stall ms", "client cpu"
    );
    for r in results {
        let _ = write!(s, "{:<width$} {:>10.0}", r.target, r.ops_per_s());
        for (q, _) in QUANTILES {
            let _ = write!(s, " {:>9}", r.quantile_us(q));
        }
        let _ = writeln!(
            s,
            " {:>9} {:>7} {:>9.1} {:>9.0}%",
            r.max_us(),
            r.error_total(),
            r.gap_max.as_secs_f64() * 1000.0,
            r.client_cpu_pct()
        );
    }
    for r in results {
        if !r.errors.is_empty() {
            let _ = writeln!(s, "errors from {}: {}", r.target, error_counts(&r.errors));
        }
        for f in &r.failures {
            let _ = writeln!(s, "session failure at {}: {f}", r.target);
        }
        if r.idle_polls > 0 {
            let _ = writeln!(
                s,
                "{}: {} waits of 100 ms with requests in flight and no reply",
                r.target, r.idle_polls
            );
        }
        if let Some(e) = &r.cleanup_error {
            let _ = writeln!(s, "cleanup at {}: {e}", r.target);
        }
        if let (Some(lag), Some(rate)) = (&r.lag, args.rate) {
            let _ = writeln!(
                s,
                "{}: open loop {rate} {} asked, {:.0} achieved; sends behind schedule by {:.3} ms on average, {:.3} ms at most; {} due and unsent at the end",
                r.target,
                if r.writes.is_some() { "writes/s" } else { "ops/s" },
                r.sent_per_s(),
                lag.mean().as_secs_f64() * 1000.0,
                lag.max.as_secs_f64() * 1000.0,
                lag.unsent_at_end
            );
        }
        if let (Some(w), Some(armed)) = (r.writes, r.watchers_armed) {
            let _ = writeln!(
                s,
                "{}: {w} writes, {} notifications to {armed} watchers ({:.1} per write); latency = write sent (open loop: due) -> notification read",
                r.target,
                r.ok,
                if w > 0 { r.ok as f64 / w as f64 } else { 0.0 }
            );
            if r.unmatched > 0 {
                let _ = writeln!(
                    s,
                    "{}: {} notifications not matched with a write",
                    r.target, r.unmatched
                );
            }
        }
        if r.cleanup_left > 0 {
            let _ = writeln!(
                s,
                "cleanup at {}: {} nodes left under /corral-bench",
                r.target, r.cleanup_left
            );
        }
    }
    if let [a, b] = results {
        let (ops, p99) = ratios(a, b);
        let _ = writeln!(
            s,
            "ratio {} / {}: ops/s {}, p99 {}",
            a.target,
            b.target,
            fmt_ratio(ops),
            fmt_ratio(p99)
        );
    }
    s
}

fn json_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".to_string()
    }
}

fn json_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), json_f64)
}

fn target_json(r: &TargetResult) -> String {
    let mut s = String::from("{");
    let _ = write!(
        s,
        "\"target\":{},\"sessions_ran\":{},\"measured_s\":{},\"ok\":{},\"ops_per_s\":{}",
        json_str(&r.target),
        r.sessions_ran,
        json_f64(r.measured.as_secs_f64()),
        r.ok,
        json_f64(r.ops_per_s())
    );
    s.push_str(",\"latency_us\":{");
    for (q, name) in QUANTILES {
        let _ = write!(s, "\"{name}\":{},", r.quantile_us(q));
    }
    let _ = write!(
        s,
        "\"max\":{},\"mean\":{}}}",
        r.max_us(),
        json_f64(if r.hist.is_empty() {
            0.0
        } else {
            r.hist.mean()
        })
    );
    s.push_str(",\"errors\":{");
    let errs: Vec<String> = r
        .errors
        .iter()
        .map(|(c, n)| format!("{}:{n}", json_str(&code_name(*c))))
        .collect();
    s.push_str(&errs.join(","));
    s.push('}');
    let fails: Vec<String> = r.failures.iter().map(|f| json_str(f)).collect();
    let _ = write!(
        s,
        ",\"failures\":[{}],\"stall_max_ms\":{},\"idle_polls\":{},\"client_cpu_pct\":{},\"cleanup_left\":{},\"cleanup_error\":{}}}",
        fails.join(","),
        json_f64(r.gap_max.as_secs_f64() * 1000.0),
        r.idle_polls,
        json_f64(r.client_cpu_pct()),
        r.cleanup_left,
        r.cleanup_error
            .as_deref()
            .map_or_else(|| "null".to_string(), json_str)
    );
    s.pop();
    let _ = write!(
        s,
        ",\"timeline\":{{\"bucket_s\":{},\"ops_per_s\":[{}],\"p99_us\":[{}]}}",
        r.timeline.bucket.as_secs(),
        r.timeline
            .ops_per_s()
            .iter()
            .map(|v| json_f64(*v))
            .collect::<Vec<_>>()
            .join(","),
        r.timeline
            .p99_us()
            .iter()
            .map(|v| v.map_or_else(|| "null".to_string(), |v| v.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    );
    match &r.lag {
        Some(l) => {
            let _ = write!(
                s,
                ",\"schedule\":{{\"achieved_per_s\":{},\"behind_ms_mean\":{},\"behind_ms_max\":{},\"unsent_at_end\":{}}}",
                json_f64(r.sent_per_s()),
                json_f64(l.mean().as_secs_f64() * 1000.0),
                json_f64(l.max.as_secs_f64() * 1000.0),
                l.unsent_at_end
            );
        }
        None => s.push_str(",\"schedule\":null"),
    }
    if let (Some(w), Some(armed)) = (r.writes, r.watchers_armed) {
        let _ = write!(
            s,
            ",\"writes\":{w},\"watchers_armed\":{armed},\"unmatched\":{}",
            r.unmatched
        );
    }
    s.push('}');
    s
}

pub fn json(args: &BenchArgs, results: &[TargetResult]) -> String {
    let mut s = String::from("{");
    let _ = write!(
        s,
        "\"workload\":{},\"sessions\":{},\"outstanding\":{},\"value_bytes\":{},\"keys\":{},\"duration_s\":{},\"warmup_s\":{},\"read_pct\":{},\"corral_version\":{}",
        json_str(args.workload.name()),
        args.senders(),
        args.outstanding(),
        args.value_bytes,
        args.keys,
        args.duration_s,
        args.warmup_s,
        args.read_pct,
        json_str(env!("CARGO_PKG_VERSION"))
    );
    let _ = write!(
        s,
        ",\"rate\":{},\"sequential\":{},\"multi_ops\":{},\"watchers\":{}",
        args.rate
            .map_or_else(|| "null".to_string(), |r| r.to_string()),
        args.sequential,
        args.multi_ops,
        args.watchers
    );
    let targets: Vec<String> = results.iter().map(target_json).collect();
    let _ = write!(s, ",\"results\":[{}]", targets.join(","));
    if let [a, b] = results {
        let (ops, p99) = ratios(a, b);
        let _ = write!(
            s,
            ",\"ratio\":{{\"ops_per_s\":{},\"p99\":{}}}",
            json_opt(ops),
            json_opt(p99)
        );
    }
    s.push_str("}\n");
    s
}

/// A file name for target `index`'s histogram: `<index+1>-<target, [A-Za-z0-9.-] kept>.hgrm`.
pub fn hgrm_file_name(index: usize, target: &str) -> String {
    let clean: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("{}-{clean}.hgrm", index + 1)
}

/// The histogram as HdrHistogram's percentile distribution text (the `.hgrm` format
/// that HdrHistogram's `outputPercentileDistribution` prints and its plotter reads):
/// values divided by `unit_ratio` (1000: µs recorded, ms printed), five steps per
/// halving of the distance to 100 %, then the mean, deviation, max and count lines.
pub fn hgrm(hist: &Histogram<u64>, unit_ratio: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total: u64 = 0;
    if !hist.is_empty() {
        for v in hist.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = hist.highest_equivalent(v.value_iterated_to()) as f64 / unit_ratio;
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value:>12.3} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value:>12.3} {q:>2.12} {total:>10}");
            }
        }
    }
    let (mean, stdev, max) = if hist.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            hist.mean() / unit_ratio,
            hist.stdev() / unit_ratio,
            hist.highest_equivalent(hist.max()) as f64 / unit_ratio,
        )
    };
    let sub_buckets = 2u64.pow((2.0 * 10f64.powi(hist.sigfig() as i32)).log2().ceil() as u32);
    let _ = writeln!(
        s,
        "#[Mean    = {mean:>12.3}, StdDeviation   = {stdev:>12.3}]"
    );
    let _ = writeln!(
        s,
        "#[Max     = {max:>12.3}, Total count    = {:>12}]",
        hist.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {sub_buckets:>12}]",
        hist.buckets()
    );
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::bench::record::{BucketReport, Timeline};
    use crate::cli::bench::BenchArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BenchArgs,
    }

    pub(crate) fn args(extra: &[&str]) -> BenchArgs {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(extra);
        Wrapper::parse_from(argv).args
    }

    /// A result of 3 s with latencies around `base_us` and a slow second bucket.
    pub(crate) fn sample(target: &str, base_us: u64) -> TargetResult {
        let mut hist = crate::cli::bench::record::new_histogram();
        let mut timeline = Timeline::new(Duration::from_secs(1), Duration::from_secs(3));
        for (i, slow) in [1u64, 10, 1].iter().enumerate() {
            let mut h = hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 2).unwrap();
            for k in 0..1000 {
                let v = base_us * slow + k / 10;
                hist.record(v).unwrap();
                h.record(v).unwrap();
            }
            timeline.add(BucketReport {
                index: i,
                ops: 1000,
                hist: h,
            });
        }
        TargetResult {
            target: target.to_string(),
            sessions_ran: 2,
            measured: Duration::from_secs(3),
            ok: 3000,
            errors: [(-101, 2)].into_iter().collect(),
            failures: vec![],
            hist,
            client_cpu: Duration::from_millis(300),
            gap_max: Duration::from_millis(2),
            idle_polls: 0,
            cleanup_left: 0,
            cleanup_error: None,
            timeline,
            lag: Some(Lag {
                sends: 3000,
                total: Duration::from_millis(30),
                max: Duration::from_millis(4),
                unsent_at_end: 0,
            }),
            writes: None,
            watchers_armed: None,
            unmatched: 0,
        }
    }

    #[test]
    fn json_has_every_target_its_timeline_and_the_ratios() {
        let a = args(&["--workload", "set", "--rate", "1000", "--compare", "b:2"]);
        let results = [sample("a:1", 100), sample("b:2", 200)];
        let j = json(&a, &results);
        // The fields scripts/bench-vs-zookeeper.sh reads.
        for field in [
            "\"workload\":\"set\"",
            "\"sessions\":8",
            "\"outstanding\":4096",
            "\"rate\":1000",
            "\"ops_per_s\":1000.000",
            "\"p50\":",
            "\"p99\":",
            "\"ratio\":{\"ops_per_s\":1.000,\"p99\":",
            "\"errors\":{\"NoNode\":2}",
            "\"timeline\":{\"bucket_s\":1,\"ops_per_s\":[1000.000,1000.000,1000.000],\"p99_us\":[",
            "\"schedule\":{\"achieved_per_s\":1000.000,\"behind_ms_mean\":0.010,\"behind_ms_max\":4.000,\"unsent_at_end\":0}",
        ] {
            assert!(j.contains(field), "{field} missing from {j}");
        }
        assert_eq!(j.matches("\"target\":").count(), 2);
        assert_eq!(j.matches('{').count(), j.matches('}').count());
        assert_eq!(j.matches('[').count(), j.matches(']').count());
        // p99 of the slow second bucket is about ten times the others'.
        let tl = results[0].timeline.p99_us();
        let (p0, p1) = (tl[0].unwrap(), tl[1].unwrap());
        assert!(p1 > 5 * p0, "{tl:?}");
    }

    #[test]
    fn text_reports_the_open_loop_and_the_ratio() {
        let a = args(&["--workload", "get", "--rate", "1000"]);
        let t = text(&a, &[sample("a:1", 100), sample("b:2", 200)]);
        assert!(t.contains("open loop rate=1000/s"), "{t}");
        assert!(
            t.contains("open loop 1000 ops/s asked, 1000 achieved"),
            "{t}"
        );
        assert!(t.contains("ratio a:1 / b:2: ops/s 1.00x"), "{t}");
        assert!(t.contains("errors from a:1: NoNode=2"), "{t}");
    }

    #[test]
    fn hgrm_is_the_percentile_distribution_format() {
        let r = sample("a:1", 100);
        let h = hgrm(&r.hist, 1000.0);
        let mut lines = h.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        let rows: Vec<&str> = h.lines().filter(|l| !l.starts_with('#')).skip(2).collect();
        assert!(rows.len() > 20, "{h}");
        // Values in ms, percentiles rising to 1, counts to the total.
        let first: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(first[1], "0.000000000000");
        let last: Vec<&str> = rows[rows.len() - 1].split_whitespace().collect();
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "3000");
        assert_eq!(last.len(), 3);
        let max_ms: f64 = last[0].parse().unwrap();
        assert!((max_ms - 1.099).abs() < 0.002, "{max_ms}");
        assert!(
            h.contains("#[Max     =        1.099, Total count    =         3000]"),
            "{h}"
        );
        assert!(h.contains("SubBuckets     =         2048]"), "{h}");
        assert_eq!(
            hgrm_file_name(1, "127.0.0.1:2181/chroot"),
            "2-127.0.0.1_2181_chroot.hgrm"
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
