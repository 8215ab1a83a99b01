//! The group-commit batching policy of the ZAB loop (`corral.commit.maxBatch`,
//! `corral.commit.maxWaitUs`). Sans-IO: the loop asks it, with the clock reading it took,
//! whether to sync now or wait a little for the batch to fill.
//!
//! Batching happens by itself under load: while one fdatasync is in flight, requests pile
//! up in the inbox and the next fdatasync covers them all. The policy adds two things:
//! - a cap (`maxBatch` records per fdatasync), so one sync never carries an unbounded
//!   write, and the records past the cap go in the next batch in order;
//! - an optional short wait (`maxWaitUs`) for more records before syncing, taken only
//!   when the previous batch held more than one record, and only until this batch is as
//!   big as the previous one. Many writers are then active, and waiting trades a few
//!   microseconds for fewer fdatasyncs (a win where a sync is expensive: cloud block
//!   devices, disks); in a closed loop the writers whose replies just went out come back
//!   with about as many records as the last batch held, so the wait ends when they have.
//!   A lone writer does not wait (after a burst, at most one batch still waits), so
//!   unloaded write latency stays one fdatasync plus a round trip.

/// See the module comment.
#[derive(Debug, Clone)]
pub struct CommitPolicy {
    max_batch_records: usize,
    max_wait_us: u64,
    last_batch_records: usize,
}

impl CommitPolicy {
    pub fn new(max_batch_records: u32, max_wait_us: u32) -> Self {
        CommitPolicy {
            max_batch_records: (max_batch_records as usize).max(1),
            max_wait_us: max_wait_us as u64,
            last_batch_records: 0,
        }
    }

    /// Records one fdatasync may cover.
    pub fn max_batch_records(&self) -> usize {
        self.max_batch_records
    }

    /// With `records` gathered so far and `waited_us` spent waiting for this batch: how
    /// much longer to wait for more (`None` = sync now).
    pub fn wait_more_us(&self, records: usize, waited_us: u64) -> Option<u64> {
        let busy = self.last_batch_records > 1;
        if records == 0
            || records >= self.max_batch_records
            || records >= self.last_batch_records
            || !busy
        {
            return None;
        }
        self.max_wait_us
            .checked_sub(waited_us)
            .filter(|&left_us| left_us > 0)
    }

    /// The batch of `records` was synced.
    pub fn synced(&mut self, records: usize) {
        self.last_batch_records = records;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_writer_never_waits() {
        let mut p = CommitPolicy::new(256, 200);
        assert_eq!(
            p.wait_more_us(1, 0),
            None,
            "first batch: nothing known, sync now"
        );
        p.synced(1);
        assert_eq!(p.wait_more_us(1, 0), None, "previous batch of one: no load");
    }

    #[test]
    fn under_load_waits_up_to_max_wait() {
        let mut p = CommitPolicy::new(256, 200);
        p.synced(40);
        assert_eq!(p.wait_more_us(3, 0), Some(200));
        assert_eq!(p.wait_more_us(3, 150), Some(50));
        assert_eq!(p.wait_more_us(3, 200), None);
        assert_eq!(p.wait_more_us(3, 900), None, "overslept: sync now");
        assert_eq!(p.wait_more_us(0, 0), None, "nothing to sync");
        assert_eq!(
            p.wait_more_us(40, 0),
            None,
            "as big as the last batch: sync now"
        );
        assert_eq!(p.wait_more_us(39, 0), Some(200));
    }

    #[test]
    fn a_full_batch_syncs_at_once() {
        let mut p = CommitPolicy::new(64, 200);
        p.synced(64);
        assert_eq!(p.max_batch_records(), 64);
        assert_eq!(p.wait_more_us(64, 0), None);
        assert_eq!(p.wait_more_us(63, 0), Some(200));
        p.synced(100);
        assert_eq!(
            p.wait_more_us(64, 0),
            None,
            "the cap wins over the last batch's size"
        );
    }

    #[test]
    fn zero_wait_disables_waiting_and_zero_batch_means_one() {
        let mut p = CommitPolicy::new(0, 0);
        p.synced(10);
        assert_eq!(p.max_batch_records(), 1);
        let mut q = CommitPolicy::new(256, 0);
        q.synced(10);
        assert_eq!(q.wait_more_us(5, 0), None);
    }
}
