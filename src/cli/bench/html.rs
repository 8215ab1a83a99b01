//! `--html FILE`: one self-contained HTML page with the run's parameters, the result
//! table and three plots drawn as inline SVG: the latency percentile curve (log-scale x
//! from 50 % to 99.999 %, log-scale y), throughput over time and p99 over time, one
//! colour per target. No scripts, no fonts, no links: it opens in a browser without
//! network.

use super::record::Timeline;
use super::report::{self, TargetResult};
use super::BenchArgs;
use std::fmt::Write as _;

/// One colour per target (the first is the `--hosts` target, the second `--compare`).
const COLORS: [&str; 2] = ["#1f77b4", "#d62728"];

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 320.0;
const MARGIN_LEFT: f64 = 78.0;
const MARGIN_RIGHT: f64 = 20.0;
const MARGIN_TOP: f64 = 34.0;
const MARGIN_BOTTOM: f64 = 46.0;

/// Points of the percentile curve per target.
const CURVE_POINTS: usize = 240;
/// The curve's x range, in nines: log10(1 / (1 - q)) from q = 50 % to q = 99.999 %.
const NINES_MIN: f64 = std::f64::consts::LOG10_2;
const NINES_MAX: f64 = 5.0;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An axis: linear or log10, with its range and labelled ticks.
struct Axis {
    log: bool,
    min: f64,
    max: f64,
    ticks: Vec<(f64, String)>,
    label: &'static str,
}

impl Axis {
    fn t(&self, v: f64) -> f64 {
        let (v, lo, hi) = if self.log {
            (v.max(1e-9).log10(), self.min.log10(), self.max.log10())
        } else {
            (v, self.min, self.max)
        };
        if hi > lo {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// A linear axis from 0 to a round number above `max`, five ticks.
    fn linear_from_zero(max: f64, label: &'static str) -> Axis {
        let top = nice_ceiling(max.max(1.0));
        Axis {
            log: false,
            min: 0.0,
            max: top,
            ticks: (0..=5)
                .map(|i| {
                    let v = top * i as f64 / 5.0;
                    (v, human(v))
                })
                .collect(),
            label,
        }
    }

    /// A linear axis from 0 to exactly `max`, ticks at a round step (about five).
    fn linear_to(max: f64, label: &'static str) -> Axis {
        let max = max.max(1.0);
        let step = nice_ceiling(max / 5.0);
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|v| *v <= max * 1.000_001)
            .map(|v| (v, human(v)))
            .collect();
        Axis {
            log: false,
            min: 0.0,
            max,
            ticks,
            label,
        }
    }

    /// A log axis over whole decades around [lo, hi].
    fn log_decades(lo: f64, hi: f64, label: &'static str) -> Axis {
        let lo = 10f64.powf(lo.max(1.0).log10().floor());
        let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
        let mut ticks = Vec::new();
        let mut v = lo;
        while v <= hi * 1.000_001 {
            ticks.push((v, human(v)));
            v *= 10.0;
        }
        Axis {
            log: true,
            min: lo,
            max: hi,
            ticks,
            label,
        }
    }
}

/// 1, 2, 2.5 or 5 times a power of ten, at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// 1500 -> "1.5k", 2000000 -> "2M".
fn human(v: f64) -> String {
    let (d, suffix) = if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}{suffix}")
    } else {
        format!("{x:.1}{suffix}")
    }
}

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

fn chart(title: &str, x: &Axis, y: &Axis, series: &[Series]) -> String {
    let pw = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let ph = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let px = |v: f64| MARGIN_LEFT + x.t(v) * pw;
    let py = |v: f64| MARGIN_TOP + (1.0 - y.t(v)) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>",
        t = escape(title)
    );
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"20\" class=\"title\">{}</text>",
        MARGIN_LEFT,
        escape(title)
    );
    for (v, label) in &y.ticks {
        let yy = py(*v);
        let _ = writeln!(
            s,
            "<line x1=\"{MARGIN_LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"ytick\">{}</text>",
            MARGIN_LEFT + pw,
            MARGIN_LEFT - 6.0,
            yy + 4.0,
            escape(label)
        );
    }
    for (v, label) in &x.ticks {
        let xx = px(*v);
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{MARGIN_TOP}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{xx:.1}\" y=\"{:.1}\" class=\"xtick\">{}</text>",
            MARGIN_TOP + ph,
            MARGIN_TOP + ph + 16.0,
            escape(label)
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{MARGIN_LEFT}\" y=\"{MARGIN_TOP}\" width=\"{pw:.1}\" height=\"{ph:.1}\" class=\"frame\"/>"
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"xlabel\">{}</text>",
        MARGIN_LEFT + pw / 2.0,
        HEIGHT - 6.0,
        escape(x.label)
    );
    let _ = writeln!(
        s,
        "<text x=\"14\" y=\"{:.1}\" class=\"ylabel\" transform=\"rotate(-90 14 {:.1})\">{}</text>",
        MARGIN_TOP + ph / 2.0,
        MARGIN_TOP + ph / 2.0,
        escape(y.label)
    );
    for (i, ser) in series.iter().enumerate() {
        let pts: Vec<String> = ser
            .points
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| format!("{:.1},{:.1}", px(*a), py(*b)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline class=\"series\" data-target=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            escape(ser.name),
            ser.color,
            pts.join(" ")
        );
        let ly = MARGIN_TOP + 14.0 + 16.0 * i as f64;
        let lx = MARGIN_LEFT + 10.0;
        let _ = writeln!(
            s,
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"legend\">{}</text>",
            lx + 18.0,
            ser.color,
            lx + 24.0,
            ly + 4.0,
            escape(ser.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The percentile curve: (nines, latency µs) per point, plus the max at the right end.
pub fn percentile_curve(r: &TargetResult) -> Vec<(f64, f64)> {
    if r.hist.is_empty() {
        return Vec::new();
    }
    (0..=CURVE_POINTS)
        .map(|i| {
            let nines = NINES_MIN + (NINES_MAX - NINES_MIN) * i as f64 / CURVE_POINTS as f64;
            let q = 1.0 - 10f64.powf(-nines);
            (nines, r.hist.value_at_quantile(q) as f64)
        })
        .collect()
}

fn time_points(t: &Timeline, values: impl Iterator<Item = Option<f64>>) -> Vec<(f64, f64)> {
    let w = t.bucket.as_secs_f64();
    values
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| ((i as f64 + 0.5) * w, v)))
        .collect()
}

pub fn report(args: &BenchArgs, results: &[TargetResult]) -> String {
    let names: Vec<String> = results
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{} {}", if i == 0 { "A" } else { "B" }, r.target))
        .collect();
    let color = |i: usize| COLORS[i % COLORS.len()];

    // Percentile curve.
    let curves: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            name: &names[i],
            color: color(i),
            points: percentile_curve(r),
        })
        .collect();
    let (lo, hi) = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold((f64::MAX, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let x_pct = Axis {
        log: false,
        min: NINES_MIN,
        max: NINES_MAX,
        ticks: [
            ("50%", 0.5),
            ("90%", 0.9),
            ("99%", 0.99),
            ("99.9%", 0.999),
            ("99.99%", 0.9999),
            ("99.999%", 0.99999),
        ]
        .iter()
        .map(|(l, q): &(&str, f64)| ((1.0 / (1.0 - q)).log10(), l.to_string()))
        .collect(),
        label: "percentile",
    };
    let y_lat = Axis::log_decades(if lo == f64::MAX { 1.0 } else { lo }, hi, "latency µs");
    let chart_pct = chart("Latency by percentile", &x_pct, &y_lat, &curves);

    // Over time.
    let duration_s = args.duration_s as f64;
    let x_time = Axis::linear_to(duration_s, "seconds into the measured window");
    let ops: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            name: &names[i],
            color: color(i),
            points: time_points(&r.timeline, r.timeline.ops_per_s().into_iter().map(Some)),
        })
        .collect();
    let ops_max = ops
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let chart_ops = chart(
        "Throughput over time",
        &x_time,
        &Axis::linear_from_zero(ops_max, "ops/s"),
        &ops,
    );
    let p99: Vec<Series> = results
        .iter()
        .enumerate()
        .map(|(i, r)| Series {
            name: &names[i],
            color: color(i),
            points: time_points(
                &r.timeline,
                r.timeline.p99_us().into_iter().map(|v| v.map(|v| v as f64)),
            ),
        })
        .collect();
    let p99_max = p99
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let chart_p99 = chart(
        "p99 latency over time",
        &x_time,
        &Axis::linear_from_zero(p99_max, "p99 µs"),
        &p99,
    );

    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        s,
        "<title>corral bench: {}</title>",
        escape(args.workload.name())
    );
    s.push_str(
        "<style>\nbody{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}\n\
         table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\n\
         th:first-child,td:first-child{text-align:left}pre{background:#f6f6f6;padding:8px;overflow-x:auto}\n\
         .chart{display:block;margin:16px 0}.chart text{font-size:12px;fill:#333}\n\
         .title{font-size:14px;font-weight:bold}.ytick{text-anchor:end}.xtick,.xlabel,.ylabel{text-anchor:middle}\n\
         .grid{stroke:#e4e4e4;stroke-width:1}.frame{fill:none;stroke:#999}\n</style>\n</head>\n<body>\n",
    );
    let _ = writeln!(
        s,
        "<h1>corral bench: {}</h1>\n<h2>Parameters</h2>\n<table>",
        escape(args.workload.name())
    );
    let mut params: Vec<(&str, String)> = vec![
        ("workload", args.workload.name().to_string()),
        ("sessions", args.senders().to_string()),
        ("outstanding", args.outstanding().to_string()),
        ("value bytes", args.value_bytes.to_string()),
        ("keys", args.keys.to_string()),
        ("warm-up s", args.warmup_s.to_string()),
        ("duration s", args.duration_s.to_string()),
        (
            "loop",
            args.rate
                .map_or_else(|| "closed".to_string(), |r| format!("open, {r} ops/s")),
        ),
        ("read %", args.read_pct.to_string()),
        ("sequential", args.sequential.to_string()),
        ("multi ops", args.multi_ops.to_string()),
        ("watchers", args.watchers.to_string()),
        ("seed", args.seed.to_string()),
        ("corral version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    for (i, r) in results.iter().enumerate() {
        params.push((
            if i == 0 { "target A" } else { "target B" },
            r.target.clone(),
        ));
    }
    for (k, v) in &params {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    s.push_str("</table>\n<h2>Results</h2>\n<table>\n<tr><th>target</th><th>ops/s</th>");
    for (_, name) in report::QUANTILES {
        let _ = write!(s, "<th>{name} µs</th>");
    }
    s.push_str("<th>max µs</th><th>errors</th></tr>\n");
    for (i, r) in results.iter().enumerate() {
        let _ = write!(
            s,
            "<tr><td style=\"color:{}\">{}</td><td>{:.0}</td>",
            color(i),
            escape(&names[i]),
            r.ops_per_s()
        );
        for (q, _) in report::QUANTILES {
            let _ = write!(s, "<td>{}</td>", r.quantile_us(q));
        }
        let _ = writeln!(
            s,
            "<td>{}</td><td>{}</td></tr>",
            r.max_us(),
            r.error_total()
        );
    }
    s.push_str("</table>\n<pre>");
    s.push_str(&escape(&report::text(args, results)));
    s.push_str("</pre>\n<h2>Plots</h2>\n");
    s.push_str(&chart_pct);
    s.push_str(&chart_ops);
    s.push_str(&chart_p99);
    s.push_str("</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::bench::report::tests::{args, sample};

    #[test]
    fn report_is_self_contained_and_plots_both_targets() {
        let a = args(&[
            "--workload",
            "mixed",
            "--compare",
            "b:2",
            "--duration-s",
            "3",
        ]);
        let page = report(&a, &[sample("a:1", 100), sample("b:<2>", 200)]);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.ends_with("</html>\n"));
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "a URL in the page"
        );
        assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("<img"));
        assert_eq!(page.matches("<svg").count(), 3);
        assert_eq!(page.matches("</svg>").count(), 3);
        // Each chart has one line per target, in the target's colour.
        assert_eq!(page.matches("<polyline").count(), 6);
        assert_eq!(
            page.matches(&format!("stroke=\"{}\" stroke-width=\"2\"", COLORS[0]))
                .count(),
            3
        );
        assert_eq!(
            page.matches(&format!("stroke=\"{}\" stroke-width=\"2\"", COLORS[1]))
                .count(),
            3
        );
        // Target names are escaped, parameters and the table are there.
        assert!(page.contains("B b:&lt;2&gt;") && !page.contains("b:<2>"));
        assert!(page.contains("<th>workload</th><td>mixed</td>"));
        assert!(page.contains("<th>p99.9 µs</th>"));
        // The throughput line has a point per bucket (3 s, 1 s buckets).
        let ops_chart = page.split("<svg").nth(2).unwrap();
        let pts = ops_chart
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(pts.split(' ').count(), 3, "{pts}");
        // The percentile curve rises.
        let curve = percentile_curve(&sample("a:1", 100));
        assert_eq!(curve.len(), CURVE_POINTS + 1);
        assert!(curve.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(curve[0].1 < curve[CURVE_POINTS].1);
    }

    #[test]
    fn helpers() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(2.1), 2.5);
        assert_eq!(human(1500.0), "1.5k");
        assert_eq!(human(2_000_000.0), "2M");
        assert_eq!(human(40.0), "40");
        let t = Axis::linear_to(3.0, "s");
        assert_eq!(
            t.ticks.iter().map(|t| t.0).collect::<Vec<_>>(),
            [0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(Axis::linear_to(3600.0, "s").ticks.len(), 4);
        let a = Axis::log_decades(37.0, 4200.0, "x");
        assert_eq!((a.min, a.max), (10.0, 10_000.0));
        assert_eq!(a.ticks.len(), 4);
        assert!((a.t(100.0) - 1.0 / 3.0).abs() < 1e-9);
    }
}
