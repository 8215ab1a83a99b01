//! [`Summary`]: exact count, sum, min and max of a series, plus an HDR histogram (two
//! significant digits) for quantiles and Prometheus buckets. Plain data, owned by one
//! executor; copies are merged at scrape.

use hdrhistogram::Histogram;

/// Significant digits kept by the histograms: 1% error on quantiles and bucket edges, and a
/// few kilobytes per histogram.
const SIGNIFICANT_DIGITS: u8 = 2;

/// See the module comment. The histogram is created on the first value.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    hist: Option<Histogram<u64>>,
}

impl Summary {
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Records `value` `n` times.
    pub fn record_n(&mut self, value: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.min = if self.count == 0 {
            value
        } else {
            self.min.min(value)
        };
        self.max = self.max.max(value);
        self.count += n;
        self.sum = self.sum.saturating_add(value.saturating_mul(n));
        if self.hist.is_none() {
            // Auto-resizing, so no value is ever out of range.
            self.hist = Histogram::new(SIGNIFICANT_DIGITS).ok();
        }
        if let Some(h) = self.hist.as_mut() {
            record(h, value, n);
        }
    }

    /// Adds another executor's series to this one.
    pub fn merge(&mut self, other: &Summary) {
        if other.count == 0 {
            return;
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        match (&mut self.hist, &other.hist) {
            (Some(mine), Some(theirs)) => {
                // Both auto-resize, so adding cannot fail on range.
                let _ = mine.add(theirs);
            }
            (None, Some(theirs)) => self.hist = Some(theirs.clone()),
            _ => {}
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// 0 when empty (as ZooKeeper prints an empty summary).
    pub fn min(&self) -> u64 {
        self.min
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0..=1); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        match &self.hist {
            Some(h) if self.count > 0 => h.value_at_quantile(q).min(self.max),
            _ => 0,
        }
    }

    /// How many values are at most `bound` (a Prometheus bucket), within the histogram's
    /// resolution.
    pub fn count_at_most(&self, bound: u64) -> u64 {
        match &self.hist {
            Some(h) if bound >= self.max => h.len(),
            Some(h) => h.count_between(0, bound),
            None => 0,
        }
    }

    /// The same series in a unit `divisor` times larger (µs to ms), values rounded down.
    pub fn scaled_down(&self, divisor: u64) -> Summary {
        let divisor = divisor.max(1);
        let mut out = Summary {
            count: self.count,
            sum: self.sum / divisor,
            min: self.min / divisor,
            max: self.max / divisor,
            hist: None,
        };
        if let Some(h) = &self.hist {
            if let Ok(mut scaled) = Histogram::<u64>::new(SIGNIFICANT_DIGITS) {
                for v in h.iter_recorded() {
                    record(
                        &mut scaled,
                        v.value_iterated_to() / divisor,
                        v.count_at_value(),
                    );
                }
                out.hist = Some(scaled);
            }
        }
        out
    }
}

/// Records into an auto-resizing histogram (`saturating_record` would clamp to the
/// current range instead of growing it).
fn record(h: &mut Histogram<u64>, value: u64, n: u64) {
    if h.record_n(value, n).is_err() {
        h.saturating_record_n(value, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_summary_reads_zero() {
        let s = Summary::default();
        assert_eq!((s.count(), s.sum(), s.min(), s.max()), (0, 0, 0, 0));
        assert_eq!(s.mean(), 0.0);
        assert_eq!(s.quantile(0.99), 0);
        assert_eq!(s.count_at_most(10), 0);
    }

    #[test]
    fn records_and_quantiles() {
        let mut s = Summary::default();
        for v in 1..=100 {
            s.record(v);
        }
        assert_eq!((s.count(), s.sum(), s.min(), s.max()), (100, 5050, 1, 100));
        assert_eq!(s.quantile(0.5), 50);
        assert_eq!(s.quantile(1.0), 100);
        let mut wide = Summary::default();
        for v in [3, 70_000, 70_000, 900_000] {
            wide.record(v);
        }
        let near = |a: u64, b: u64| a.abs_diff(b) * 100 <= b;
        assert!(near(wide.quantile(0.5), 70_000), "{}", wide.quantile(0.5));
        assert_eq!(wide.quantile(1.0), 900_000);
        assert_eq!(wide.count_at_most(100_000), 3);
        assert_eq!(s.count_at_most(10), 10);
        assert_eq!(s.count_at_most(1000), 100);
    }

    #[test]
    fn merge_adds_series() {
        let mut a = Summary::default();
        a.record(5);
        let mut b = Summary::default();
        b.record_n(1, 3);
        b.record(9);
        a.merge(&b);
        assert_eq!((a.count(), a.sum(), a.min(), a.max()), (5, 17, 1, 9));
        let mut empty = Summary::default();
        empty.merge(&a);
        assert_eq!((empty.count(), empty.min()), (5, 1));
    }

    #[test]
    fn scaled_down_converts_units() {
        let mut s = Summary::default();
        s.record(1_500);
        s.record(2_500);
        let ms = s.scaled_down(1000);
        assert_eq!((ms.count(), ms.sum(), ms.min(), ms.max()), (2, 4, 1, 2));
        assert_eq!(ms.quantile(1.0), 2);
    }
}
