//! The open loop's send schedule (`--rate`), in exact integer arithmetic.
//!
//! The run as a whole sends op `j` (j = 0, 1, 2, …) at `j / rate` seconds after the start,
//! and op `j` belongs to session `j mod sessions`: each session sends every
//! `sessions / rate` seconds, the sessions staggered so that together they are evenly
//! spaced. A session that falls behind (its in-flight cap reached, or its thread late)
//! sends the overdue ops as soon as it can, and each op's latency counts from its
//! *intended* send time, so a stall of the server shows up in the latencies of every op
//! that should have been sent during it (no coordinated omission).

use std::time::Duration;

const NANOS_PER_S: u128 = 1_000_000_000;

/// One session's share of a run-wide rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate_per_s: u64,
    sessions: u64,
    index: u64,
}

impl Schedule {
    /// Session `index` of `sessions`, the run sending `rate_per_s` ops a second in total.
    /// Returns `None` for a zero rate, no sessions or an index out of range.
    pub fn new(rate_per_s: u64, sessions: u64, index: u64) -> Option<Schedule> {
        (rate_per_s > 0 && index < sessions).then_some(Schedule {
            rate_per_s,
            sessions,
            index,
        })
    }

    /// When this session's `k`th op (from 0) is due, after the start.
    pub fn due_at(&self, k: u64) -> Duration {
        let j = self.index as u128 + k as u128 * self.sessions as u128;
        let ns = j * NANOS_PER_S / self.rate_per_s as u128;
        Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
    }

    /// How many of this session's ops are due at `elapsed` after the start (those with
    /// `due_at(k) <= elapsed`).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        // The last run-wide op due: the largest j with j * 1e9 / rate <= elapsed_ns, that
        // is j * 1e9 <= elapsed_ns * rate + (rate - 1) under integer division.
        let scaled = elapsed.as_nanos() * self.rate_per_s as u128 + (self.rate_per_s as u128 - 1);
        let j_last = scaled / NANOS_PER_S;
        if j_last < self.index as u128 {
            return 0;
        }
        let k_last = (j_last - self.index as u128) / self.sessions as u128;
        (k_last + 1).min(u64::MAX as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_degenerate_inputs() {
        assert!(Schedule::new(0, 1, 0).is_none());
        assert!(Schedule::new(10, 0, 0).is_none());
        assert!(Schedule::new(10, 2, 2).is_none());
        assert!(Schedule::new(10, 2, 1).is_some());
    }

    #[test]
    fn one_session_sends_at_the_rate() {
        let s = Schedule::new(1000, 1, 0).unwrap();
        assert_eq!(s.due_at(0), Duration::ZERO);
        assert_eq!(s.due_at(1), Duration::from_millis(1));
        assert_eq!(s.due_at(2500), Duration::from_millis(2500));
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(Duration::from_millis(1)), 2);
        assert_eq!(s.due_by(Duration::from_secs(10)), 10_001);
    }

    #[test]
    fn sessions_are_staggered_and_add_up_to_the_rate() {
        let sessions = 7;
        let rate = 1234;
        let all: Vec<Schedule> = (0..sessions)
            .map(|i| Schedule::new(rate, sessions, i).unwrap())
            .collect();
        // Session i's first op is the run's op i.
        for (i, s) in all.iter().enumerate() {
            assert_eq!(
                s.due_at(0),
                Duration::from_nanos(i as u64 * 1_000_000_000 / rate)
            );
            assert!(s.due_at(1) > s.due_at(0));
        }
        for elapsed_ms in [0u64, 1, 5, 999, 1000, 1001, 10_000, 86_400_000] {
            let t = Duration::from_millis(elapsed_ms);
            let total: u64 = all.iter().map(|s| s.due_by(t)).sum();
            // Ops 0..=floor(t * rate) are due: exactly floor(t * rate / 1e9) + 1 of them.
            let expected = (elapsed_ms as u128 * rate as u128 / 1000) as u64 + 1;
            assert_eq!(total, expected, "at {elapsed_ms} ms");
        }
    }

    #[test]
    fn due_by_is_the_inverse_of_due_at() {
        for (rate, sessions, index) in [(1, 1, 0), (3, 2, 1), (100_000, 16, 5), (7, 9, 8)] {
            let s = Schedule::new(rate, sessions, index).unwrap();
            for k in [0u64, 1, 2, 17, 1000] {
                let at = s.due_at(k);
                // Op k is due at its time and not a nanosecond before.
                assert_eq!(s.due_by(at), k + 1, "rate {rate} k {k}");
                if at > Duration::ZERO {
                    assert_eq!(s.due_by(at - Duration::from_nanos(1)), k);
                }
            }
        }
    }
}
