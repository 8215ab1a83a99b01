//! A deterministic simulated disk with lost-unsynced-write faults, and the seeded power-loss
//! check of recovery that runs on it. Built for the cluster simulator (one thread runs a
//! whole cluster from a seed), which reuses [`SimDisk`] as each node's disk.
//!
//! # Fault model
//!
//! What [`SimDisk`] keeps, and what [`SimDisk::power_loss`] does with it, as Linux ext4
//! (`data=ordered`) and xfs behave for the operations Corral uses:
//!
//! | state | before a sync | after `fsync`/`fdatasync` of the file | after `fsync` of the directory |
//! |---|---|---|---|
//! | file data (`pwrite`) | volatile: any subset of each write's 4 KiB pages may land, a landing page may be torn at 512-byte sectors | durable | — |
//! | file size (a write past the end) | grows only as far as landed pages reach; bytes not landed read as zeros | durable | — |
//! | truncate at create (`O_TRUNC`) | may or may not survive | durable | — |
//! | create, rename, unlink in a directory | volatile: a **prefix** of the directory's operations since its last sync survives | not made durable by a file's sync | durable |
//!
//! - Writes land in the volatile image at once (reads see them), as the page cache does.
//! - Unsynced writes of one file are replayed in order at power loss, page by page, each
//!   page landing whole, not at all, or torn; one power loss draws one landing rate (0, 10,
//!   50, 90 or 100 %) so that both "almost nothing" and "almost everything" are explored.
//!   This is a superset of what writeback can do (it also lets a later write's page land
//!   without an earlier write's page on the same page), which only makes the check stricter.
//! - Directory operations are journalled metadata: ext4 and xfs commit them in order, so a
//!   crash keeps a prefix of them. A file's fsync is *not* counted as committing its
//!   directory entry (ext4 often does, as a side effect of its journal commit; POSIX and xfs
//!   do not promise it), so a name is durable only after an fsync of its directory.
//!   Directories are independent (they may be on different file systems); the
//!   directories themselves are taken as durable once created (Corral creates them once,
//!   at first start).
//! - Not modelled: a failing fsync (the writer stops on any error anyway), bit rot (injected
//!   separately by the check), misdirected writes, reordering across a completed sync.
//!
//! # The check
//!
//! [`sim_power_loss`] runs one seed: a workload of records through [`SimLogWriter`] (the
//! real writer's byte layout and operation order), snapshots and purge through the real
//! `Fs`-generic code, a crash at a random disk operation, power loss, then the real
//! [`crate::storage::open_in`] and [`crate::storage::recovery::recover_log_in`] on what is
//! left. Its doc lists the properties. The test `sim_power_loss_seeds` runs a bounded number
//! of seeds; on failure it prints the seed and the command that replays it:
//!
//! ```text
//! CORRAL_SIM_SEED=1234 cargo test --release --lib storage::sim -- --nocapture
//! CORRAL_SIM_SEEDS=20000 cargo test --release --lib storage::sim -- --nocapture   # more seeds
//! ```

mod check;
mod disk;
mod log;

pub use check::{sim_power_loss, PowerLossOutcome};
pub use disk::{Ino, PowerLossReport, SimDisk, PAGE_BYTES, SECTOR_BYTES};
pub use log::SimLogWriter;

/// The simulator's random numbers: SplitMix64, small, fast, and the same sequence on every
/// platform and Rust version (a replayed seed must replay exactly).
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`; `n` > 0. (Modulo bias is below 2^-40 for the small `n` used.)
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next_u64() % n
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "empty range");
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// An independent generator for a sub-component (its draws do not shift ours).
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests;
