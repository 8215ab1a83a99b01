//! The Prometheus text exposition (format 0.0.4) served at `/metrics`.
//!
//! Names follow ZooKeeper's `PrometheusMetricsProvider`: every numeric `mntr` key under its
//! ZooKeeper name without the `zk_` prefix (`znode_count`, `packets_received`), its summaries
//! as Prometheus summaries (`fsynctime{quantile="0.5"}`, `fsynctime_count`, `fsynctime_sum`,
//! in ZooKeeper's unit, milliseconds). Corral's own metrics are `corral_*`, in seconds, as
//! histograms where a distribution matters (fdatasync, group-commit size, append-to-sync,
//! snapshots) and per-shard gauges with a `shard` label.
//!
//! Written by hand rather than with the `prometheus-client` crate: that crate has no summary
//! type (ZooKeeper's names are summaries) and is built around registered metric objects
//! updated in place, while Corral assembles everything once per scrape from the gathered
//! per-executor copies. The format is a few lines per metric type.

use super::zk_names::{ZkKey, ZK38_MNTR};
use super::{collect, Summary, Value};
use crate::server::fourlw::Gathered;
use std::collections::HashMap;
use std::fmt::Write as _;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds (seconds) of Corral's latency histograms.
const LATENCY_BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Bucket bounds (seconds) of the snapshot-duration histogram.
const SNAPSHOT_BUCKETS_S: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Bucket bounds (records) of the group-commit size histogram.
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Renders every metric.
pub fn render(g: &Gathered) -> String {
    let values: HashMap<String, Value> = collect(g).into_iter().collect();
    let t = super::totals(g);
    let mut out = String::with_capacity(64 * 1024);
    for key in ZK38_MNTR {
        match *key {
            ZkKey::Gauge(name) | ZkKey::Counter(name) => {
                let Some(v) = values.get(name).and_then(Value::as_f64) else {
                    continue;
                };
                let kind = if matches!(key, ZkKey::Gauge(_)) {
                    "gauge"
                } else {
                    "counter"
                };
                header(&mut out, name, name, kind);
                let _ = writeln!(out, "{name} {}", number(v));
            }
            ZkKey::Summary(name) | ZkKey::Quantiles(name) => {
                let quantiles: &[f64] = if matches!(key, ZkKey::Quantiles(_)) {
                    &[0.5, 0.9, 0.99]
                } else {
                    &[0.5]
                };
                let s = super::zk_summary(name, g, &t).unwrap_or_default();
                header(&mut out, name, name, "summary");
                for q in quantiles {
                    let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", s.quantile(*q));
                }
                let _ = writeln!(out, "{name}_count {}", s.count());
                let _ = writeln!(out, "{name}_sum {}", s.sum());
            }
        }
    }
    for name in super::QUORUM_GAUGES {
        if let Some(v) = values.get(*name).and_then(Value::as_f64) {
            header(&mut out, name, name, "gauge");
            let _ = writeln!(out, "{name} {}", number(v));
        }
    }
    let zab = &g.zab.stats;
    histogram(
        &mut out,
        "corral_fdatasync_seconds",
        "Duration of one fdatasync of the transaction log",
        &zab.fdatasync_us,
        &LATENCY_BUCKETS_S,
        1e6,
    );
    histogram(
        &mut out,
        "corral_group_commit_records",
        "Records covered by one group-commit fdatasync",
        &zab.batch_records,
        &BATCH_BUCKETS,
        1.0,
    );
    histogram(
        &mut out,
        "corral_append_to_sync_seconds",
        "From a write's group commit starting to its fdatasync done (proposal to commit in standalone mode), per record",
        &zab.append_to_sync_us,
        &LATENCY_BUCKETS_S,
        1e6,
    );
    histogram(
        &mut out,
        "corral_snapshot_seconds",
        "From capturing the tree to the snapshot file written",
        &zab.snapshot_us,
        &SNAPSHOT_BUCKETS_S,
        1e6,
    );
    header(
        &mut out,
        "corral_snapshot_failures",
        "Snapshots that failed to write",
        "counter",
    );
    let _ = writeln!(out, "corral_snapshot_failures {}", zab.snapshot_failures);
    header(
        &mut out,
        "corral_shards",
        "Shard executors serving clients",
        "gauge",
    );
    let _ = writeln!(out, "corral_shards {}", g.reports.len());
    let per_shard: [(&str, &str, ShardValue); 3] = [
        (
            "corral_shard_connections",
            "Client connections on the shard",
            |r| r.conns.len() as u64,
        ),
        (
            "corral_shard_outstanding_requests",
            "Requests queued on the shard's connections, not yet answered",
            |r| r.outstanding as u64,
        ),
        (
            "corral_shard_watches",
            "Watches registered on the shard",
            |r| r.watch_count as u64,
        ),
    ];
    for (name, help, value) in per_shard {
        header(&mut out, name, help, "gauge");
        for r in &g.reports {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", r.shard, value(r));
        }
    }
    out
}

/// Reads one per-shard gauge from a shard's report.
type ShardValue = fn(&crate::server::msg::ShardReport) -> u64;

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A number as Prometheus reads it (`1`, `0.25`).
fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_string()
    }
}

/// A histogram of `s`, whose values are `unit` times the exposed unit (µs for seconds: 1e6).
fn histogram(out: &mut String, name: &str, help: &str, s: &Summary, bounds: &[f64], unit: f64) {
    header(out, name, help, "histogram");
    for b in bounds {
        let bound = (b * unit).round() as u64;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {}",
            number(*b),
            s.count_at_most(bound)
        );
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", s.count());
    let _ = writeln!(out, "{name}_sum {}", number(s.sum() as f64 / unit));
    let _ = writeln!(out, "{name}_count {}", s.count());
}
