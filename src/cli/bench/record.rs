//! What a session thread records, and the run's timeline.
//!
//! A [`Recorder`] belongs to one thread. It keeps the measured window's full-precision
//! histogram, ok count and error codes, and cuts the window into buckets of
//! [`Timeline::bucket`] (one second, or more for runs longer than [`TIMELINE_BUCKETS_MAX`]
//! seconds): at each bucket boundary it sends that bucket's count and a coarse histogram
//! to the target's collector (one message per thread per bucket), which merges them into
//! the [`Timeline`] (ops and p99 over time). A shared counter of successful replies,
//! added to once per batch of replies, feeds the progress bar.
//!
//! Replies are placed by their arrival time: in the window when
//! `measure_from <= recv < measure_to`.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest latency the histograms hold; slower replies are recorded as this.
pub const LATENCY_US_MAX: u64 = 60_000_000;

/// Significant digits of the run's histograms (0.1 % relative error).
const HISTOGRAM_DIGITS: u8 = 3;

/// Significant digits of the per-bucket histograms (1 % relative error; a tenth of the
/// memory, and there is one per bucket).
const BUCKET_HISTOGRAM_DIGITS: u8 = 2;

/// Most buckets in a timeline; longer runs get wider buckets.
pub const TIMELINE_BUCKETS_MAX: u64 = 3600;

pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; failing here would be our bug.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_DIGITS).expect("valid histogram bounds")
}

fn new_bucket_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, BUCKET_HISTOGRAM_DIGITS)
        .expect("valid histogram bounds")
}

pub fn micros(d: Duration) -> u64 {
    (d.as_nanos() / 1000).clamp(1, LATENCY_US_MAX as u128) as u64
}

/// Width of a timeline bucket for a measured window of `duration`: one second, or wider
/// so that there are at most [`TIMELINE_BUCKETS_MAX`] buckets.
pub fn bucket_width(duration: Duration) -> Duration {
    let s = duration.as_secs().div_ceil(TIMELINE_BUCKETS_MAX).max(1);
    Duration::from_secs(s)
}

/// One thread's share of one bucket.
pub struct BucketReport {
    pub index: usize,
    pub ops: u64,
    pub hist: Histogram<u64>,
}

/// Successful ops and p99 per bucket of the measured window.
#[derive(Debug, Clone)]
pub struct Timeline {
    pub bucket: Duration,
    pub ops: Vec<u64>,
    hists: Vec<Option<Histogram<u64>>>,
}

impl Timeline {
    pub fn new(bucket: Duration, duration: Duration) -> Timeline {
        let n = duration
            .as_nanos()
            .div_ceil(bucket.as_nanos().max(1))
            .clamp(1, TIMELINE_BUCKETS_MAX as u128) as usize;
        Timeline {
            bucket,
            ops: vec![0; n],
            hists: vec![None; n],
        }
    }

    pub fn add(&mut self, r: BucketReport) {
        let Some(ops) = self.ops.get_mut(r.index) else {
            return;
        };
        *ops += r.ops;
        match &mut self.hists[r.index] {
            // Same bounds on both sides, so adding cannot fail.
            Some(h) => {
                let _ = h.add(&r.hist);
            }
            slot @ None => *slot = Some(r.hist),
        }
    }

    /// Ops per second in each bucket.
    pub fn ops_per_s(&self) -> Vec<f64> {
        let w = self.bucket.as_secs_f64().max(1e-9);
        self.ops.iter().map(|n| *n as f64 / w).collect()
    }

    /// p99 latency (µs) of each bucket; `None` where nothing succeeded.
    pub fn p99_us(&self) -> Vec<Option<u64>> {
        self.hists
            .iter()
            .map(|h| {
                h.as_ref()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.value_at_quantile(0.99))
            })
            .collect()
    }
}

/// Where a thread's measurements go.
#[derive(Clone)]
pub struct Sink {
    pub buckets: Sender<BucketReport>,
    /// Successful replies so far (warm-up included), for the progress bar.
    pub live_ok: Arc<AtomicU64>,
}

/// One thread's measurements.
pub struct Recorder {
    measure_from: Instant,
    measure_to: Instant,
    bucket: Duration,
    sink: Sink,
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<i32, u64>,
    cur_index: usize,
    cur_ops: u64,
    cur_hist: Histogram<u64>,
    live_pending: u64,
}

impl Recorder {
    pub fn new(measure_from: Instant, measure_to: Instant, bucket: Duration, sink: Sink) -> Self {
        Recorder {
            measure_from,
            measure_to,
            bucket: bucket.max(Duration::from_millis(1)),
            sink,
            hist: new_histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            cur_index: 0,
            cur_ops: 0,
            cur_hist: new_bucket_histogram(),
            live_pending: 0,
        }
    }

    pub fn in_window(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.measure_to
    }

    pub fn measure_from(&self) -> Instant {
        self.measure_from
    }

    pub fn measure_to(&self) -> Instant {
        self.measure_to
    }

    /// A success that arrived at `recv`, `latency` after it was (meant to be) sent.
    pub fn ok(&mut self, recv: Instant, latency: Duration) {
        self.live_pending += 1;
        if !self.in_window(recv) {
            return;
        }
        let us = micros(latency);
        self.ok += 1;
        self.hist.saturating_record(us);
        let index = ((recv - self.measure_from).as_nanos() / self.bucket.as_nanos()) as usize;
        if index != self.cur_index {
            self.send_bucket();
            self.cur_index = index;
        }
        self.cur_ops += 1;
        self.cur_hist.saturating_record(us);
    }

    /// An error reply with `code` that arrived at `recv`.
    pub fn error(&mut self, recv: Instant, code: i32) {
        if self.in_window(recv) {
            *self.errors.entry(code).or_insert(0) += 1;
        }
    }

    /// Publishes the successes counted since the last call (once per batch of replies).
    pub fn publish(&mut self) {
        if self.live_pending > 0 {
            self.sink
                .live_ok
                .fetch_add(self.live_pending, Ordering::Relaxed);
            self.live_pending = 0;
        }
    }

    fn send_bucket(&mut self) {
        if self.cur_ops == 0 {
            return;
        }
        let hist = std::mem::replace(&mut self.cur_hist, new_bucket_histogram());
        // The collector is gone only when the run is over; nothing to do then.
        let _ = self.sink.buckets.send(BucketReport {
            index: self.cur_index,
            ops: std::mem::take(&mut self.cur_ops),
            hist,
        });
    }

    /// Sends the last bucket; the recorder's totals stay readable.
    pub fn finish(&mut self) {
        self.publish();
        self.send_bucket();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn buckets_follow_arrival_time_and_merge() {
        let (tx, rx) = channel();
        let sink = Sink {
            buckets: tx,
            live_ok: Arc::new(AtomicU64::new(0)),
        };
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut r = Recorder::new(t0 + s, t0 + 4 * s, s, sink.clone());
        let mut r2 = Recorder::new(t0 + s, t0 + 4 * s, s, sink.clone());
        r.ok(t0, Duration::from_micros(5)); // warm-up: not measured
        r.ok(t0 + s, Duration::from_micros(100));
        r.ok(t0 + s + s / 2, Duration::from_micros(100));
        r.ok(t0 + 3 * s, Duration::from_micros(9000));
        r.ok(t0 + 4 * s, Duration::from_micros(1)); // after the window
        r.error(t0 + 2 * s, -101);
        r.error(t0, -101);
        r2.ok(t0 + s, Duration::from_micros(300));
        r.finish();
        r2.finish();
        assert_eq!(r.ok, 3);
        assert_eq!(r.errors.get(&-101), Some(&1));
        assert_eq!(sink.live_ok.load(Ordering::Relaxed), 6);
        drop((r, r2, sink));
        let mut tl = Timeline::new(s, 3 * s);
        for b in rx.iter() {
            tl.add(b);
        }
        assert_eq!(tl.ops, vec![3, 0, 1]);
        let p99 = tl.p99_us();
        assert!(p99[0].is_some_and(|v| (297..=303).contains(&v)), "{p99:?}");
        assert_eq!(p99[1], None);
        assert!(
            p99[2].is_some_and(|v| (8900..=9100).contains(&v)),
            "{p99:?}"
        );
        assert_eq!(tl.ops_per_s(), vec![3.0, 0.0, 1.0]);
    }

    #[test]
    fn wide_runs_get_wide_buckets() {
        assert_eq!(
            bucket_width(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
        assert_eq!(
            bucket_width(Duration::from_secs(3600)),
            Duration::from_secs(1)
        );
        assert_eq!(
            bucket_width(Duration::from_secs(3601)),
            Duration::from_secs(2)
        );
        let tl = Timeline::new(Duration::from_secs(24), Duration::from_secs(86_400));
        assert_eq!(tl.ops.len(), 3600);
    }
}
