//! The seeded generator the quorum simulations share (splitmix64): a seed replays a run
//! exactly, on any platform and Rust version.

pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True `p` times in 100.
    pub(crate) fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    /// Fisher–Yates, from the last element down (the draw order the seeds depend on).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The seeds a simulation test runs: `CORRAL_SIM_SEED=<n>` replays that one seed with its
/// trace, else `CORRAL_SIM_SEEDS=<count>` (or `default_count`) seeds from 1. Returns the
/// seeds and whether it is a single traced replay.
#[cfg(test)]
pub(crate) fn seeds_from_env(default_count: u64) -> (Vec<u64>, bool) {
    let parsed = |name: &str| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    match parsed("CORRAL_SIM_SEED") {
        Some(seed) => (vec![seed], true),
        None => {
            let count = parsed("CORRAL_SIM_SEEDS").unwrap_or(default_count);
            ((1..=count).collect(), false)
        }
    }
}
