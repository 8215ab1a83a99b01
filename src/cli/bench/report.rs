//! What a run measured per target, printed as a text table or as JSON.
//!
//! Latencies are in µs (the histograms' unit); throughput counts successful replies in
//! the measured window divided by its length. A comparison reports HOSTS / HOSTS2 for
//! throughput (above 1: the first is faster) and for p99 (below 1: the first is faster).

use super::load::{code_name, error_counts};
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
}

impl TargetResult {
    pub fn ops_per_s(&self) -> f64 {
        let s = self.measured.as_secs_f64();
        if s <= 0.0 {
            return 0.0;
        }
        self.ok as f64 / s
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
        args.sessions,
        args.outstanding,
        args.value_bytes,
        args.keys,
        args.warmup_s,
        args.duration_s,
    );
    if args.workload == super::load::Workload::Mixed {
        let _ = write!(s, " read-pct={}", args.read_pct);
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
    s
}

pub fn json(args: &BenchArgs, results: &[TargetResult]) -> String {
    let mut s = String::from("{");
    let _ = write!(
        s,
        "\"workload\":{},\"sessions\":{},\"outstanding\":{},\"value_bytes\":{},\"keys\":{},\"duration_s\":{},\"warmup_s\":{},\"read_pct\":{},\"corral_version\":{}",
        json_str(args.workload.name()),
        args.sessions,
        args.outstanding,
        args.value_bytes,
        args.keys,
        args.duration_s,
        args.warmup_s,
        args.read_pct,
        json_str(env!("CARGO_PKG_VERSION"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
