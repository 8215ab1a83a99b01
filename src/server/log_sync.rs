//! A log batch written and synced by a task of its own while a ZAB loop goes on (both the
//! standalone and the replicated loop). The loop starts a job with
//! `LogWriter::start_sync`, hands it to [`InFlightSync::spawn`], keeps validating and
//! appending the next batch, and gives the writer its segment back with
//! [`InFlightSync::settle`] once the job is done. One job is out at a time.

use crate::runtime::Notify;
use crate::storage::txn_log::{LogWriter, SyncDone, SyncJob};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// A log batch on its way to disk: the task leaves the outcome in `done` and rings
/// `finished` and the loop's wake-up.
pub(super) struct InFlightSync {
    done: Rc<RefCell<Option<SyncDone>>>,
    finished: Rc<Notify>,
    /// Records in the batch.
    records: usize,
    batch_bytes: u64,
    /// When the batch's first record was appended (or the job started, where the loop does
    /// not track it): the start of the append-to-sync latency.
    batch_started_at: Instant,
}

/// What a settled sync made durable.
pub(super) struct Settled {
    /// The highest zxid now durable.
    pub up_to: i64,
    pub records: usize,
    pub batch_bytes: u64,
}

impl InFlightSync {
    /// Runs `job` (a batch of `records`) in a task of its own on this executor; when it
    /// ends, `loop_wake` is notified.
    pub(super) fn spawn(
        job: SyncJob,
        records: usize,
        batch_started_at: Instant,
        loop_wake: Rc<Notify>,
    ) -> InFlightSync {
        let done = Rc::new(RefCell::new(None));
        let finished = Rc::new(Notify::default());
        let batch_bytes = job.batch_bytes();
        {
            let (done, finished) = (done.clone(), finished.clone());
            glommio::spawn_local(async move {
                let outcome = job.run().await;
                *done.borrow_mut() = Some(outcome);
                finished.notify();
                loop_wake.notify();
            })
            .detach();
        }
        InFlightSync {
            done,
            finished,
            records,
            batch_bytes,
            batch_started_at,
        }
    }

    /// Whether the job has ended (its outcome waits for [`Self::settle`]).
    pub(super) fn is_finished(&self) -> bool {
        self.done.borrow().is_some()
    }

    /// Waits until the job has ended.
    pub(super) async fn wait(&self) {
        while !self.is_finished() {
            self.finished.wait().await;
        }
    }

    /// Waits for the job, gives `log` its segment back and records the group commit in
    /// the metrics. A failed write or sync is fatal (`LogWriter::sync`'s rule).
    pub(super) async fn settle(self, log: &mut LogWriter) -> Settled {
        self.wait().await;
        let Some(done) = self.done.borrow_mut().take() else {
            unreachable!("a finished sync leaves its outcome");
        };
        // The write's own time, not the wait for the loop to collect it.
        let write_started = Instant::now()
            .checked_sub(done.took())
            .unwrap_or(self.batch_started_at);
        let up_to = match log.finish_sync(done) {
            Ok(up_to) => up_to,
            Err(e) => super::fatal_storage("cannot sync the transaction log", &e),
        };
        crate::metrics::zab_synced(self.batch_started_at, write_started, self.records);
        Settled {
            up_to,
            records: self.records,
            batch_bytes: self.batch_bytes,
        }
    }
}
