//! The deleter thread: the only place (while the store is open) where media
//! files are unlinked, and where failed unlinks are retried.
//!
//! Invariants:
//!
//! * Jobs are carried out in the order they were sent (the channel is FIFO),
//!   so a `Flush` acknowledged means every job sent before it was attempted
//!   (each file unlinked, or found gone, or put on the retry schedule).
//! * The thread stops only on an explicit `Shutdown`, which `close` sends
//!   after taking the inbox away; every job sent before is carried out
//!   first, and none can be sent after. (loom's channel does not model
//!   disconnection, so production uses the same explicit message.) Pending
//!   retries get one last attempt at shutdown; what still fails goes to the
//!   failed list.
//! * A failed unlink (other than not-found) is retried with exponential
//!   backoff on the store's clock, at most `attempts` times in all, then
//!   kept in the failed list; it is logged once when it first fails and once
//!   when it is given up. Retries never hold up other jobs: the thread waits
//!   for the next job *or* the next retry, whichever comes first.
//! * A panic while handling one job, or from the user's clock, is caught and
//!   logged; the thread goes on.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::io;
use std::time::Duration;

use crate::clock::Clock;
use crate::entry::RefEntry;
use crate::file::FileArc;
use crate::files::{Counters, FileTable, Unlink};
use crate::sync::channel::{Receiver, Sender};
use crate::sync::{lock, Arc, EntryArc, Mutex};

/// What the deleter is asked to do.
pub(crate) enum Job {
    /// Files whose last holder let go: each is unlinked unless a store
    /// rejoined its path meanwhile.
    Files(Vec<FileArc>),
    /// A large batch of refs removed from the map: the deleter lets go of
    /// them (releasing path counts, freeing their memory) so that a big
    /// `release_all` costs its caller little.
    Release(Vec<EntryArc<RefEntry>>),
    /// Answer when every earlier job is done.
    Flush(Sender<()>),
    /// Delete files under the managed roots that nobody knows and whose
    /// modification time is before the given instant.
    #[cfg(not(loom))]
    SweepOrphans(std::time::SystemTime),
    /// Backend work that must not run on a caller's thread (deleting a
    /// released scope remotely, a backend sweep).
    #[cfg(not(loom))]
    Task(Box<dyn FnOnce() + Send>),
    /// Stop after every earlier job.
    Shutdown,
}

/// How failed unlinks are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub(crate) attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub(crate) first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(200),
        }
    }
}

/// One scheduled retry; ordered so that the heap's top is the earliest.
struct Retry {
    due: u64,
    seq: u64,
    rec: FileArc,
    attempts: u32,
}

impl PartialEq for Retry {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Retry {}
impl PartialOrd for Retry {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Retry {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        // Reversed: BinaryHeap is a max-heap.
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// The retry schedule, shared by the deleter thread and deletions that
/// become due on it from a drop. A plain mutex: touched only on failures.
pub(crate) struct Retries {
    heap: Mutex<(BinaryHeap<Retry>, u64)>,
    policy: RetryPolicy,
    clock: std::sync::Arc<dyn Clock>,
}

impl Retries {
    pub(crate) fn new(policy: RetryPolicy, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            policy,
            clock,
        }
    }

    /// The clock, shielded from a panicking user clock.
    fn now(&self) -> Option<u64> {
        #[cfg(not(loom))]
        let t = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.clock.now()));
        #[cfg(loom)]
        let t: Result<Duration, ()> = Ok(self.clock.now());
        match t {
            Ok(d) => Some(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            Err(_) => {
                tracing::error!("mediastore: the clock panicked; retrying deletions later");
                None
            }
        }
    }

    fn backoff(&self, attempts: u32) -> u64 {
        let base = u64::try_from(self.policy.first_backoff.as_nanos()).unwrap_or(u64::MAX);
        base.saturating_mul(1u64 << attempts.saturating_sub(1).min(20))
    }

    /// After attempt number `attempts` failed: schedule the next one or
    /// give up.
    fn failed(&self, table: &FileTable, rec: FileArc, attempts: u32, error: io::Error) {
        if attempts >= self.policy.attempts {
            table.give_up(rec, attempts, error);
            return;
        }
        if attempts == 1 {
            tracing::warn!(
                path = %rec.path().display(),
                error = %error,
                "mediastore: cannot delete media file; will retry"
            );
        }
        let due = self
            .now()
            .unwrap_or(u64::MAX / 2)
            .saturating_add(self.backoff(attempts));
        let mut h = lock(&self.heap);
        h.1 += 1;
        let seq = h.1;
        h.0.push(Retry {
            due,
            seq,
            rec,
            attempts,
        });
        Counters::set(&table.counters.retrying, h.0.len() as u64);
        table.metrics.retries(h.0.len() as u64);
    }

    /// Runs every retry that is due now (all of them with `all`).
    fn run_due(&self, table: &FileTable, all: bool) {
        let now = if all { Some(u64::MAX) } else { self.now() };
        let Some(now) = now else { return };
        let due: Vec<Retry> = {
            let mut h = lock(&self.heap);
            let mut due = Vec::new();
            while h.0.peek().is_some_and(|r| r.due <= now) {
                due.extend(h.0.pop());
            }
            Counters::set(&table.counters.retrying, h.0.len() as u64);
            table.metrics.retries(h.0.len() as u64);
            due
        };
        for r in due {
            if let Unlink::Failed(e) = table.unlink(&r.rec) {
                let attempts = r.attempts + 1;
                if all {
                    table.give_up(r.rec, attempts, e);
                } else {
                    self.failed(table, r.rec, attempts, e);
                }
            }
        }
    }

    /// How long to wait for the next retry (capped, so that a clock that
    /// moves by other means, such as a test's manual clock, is looked at
    /// again at least every second).
    fn next_wait(&self) -> Option<Duration> {
        let next = lock(&self.heap).0.peek().map(|r| r.due)?;
        let now = self.now().unwrap_or(next);
        Some(
            Duration::from_nanos(next.saturating_sub(now))
                .clamp(Duration::from_millis(1), Duration::from_secs(1)),
        )
    }
}

/// Unlinks a due file on the deleter thread (or inline once closed) and
/// schedules a retry if the OS refused.
pub(crate) fn unlink_now(table: &FileTable, rec: &FileArc) -> Unlink {
    let outcome = table.unlink(rec);
    if let Unlink::Failed(e) = &outcome {
        let e = io::Error::new(e.kind(), e.to_string());
        table.retries().failed(table, FileArc::clone(rec), 1, e);
    }
    outcome
}

/// The thread's body.
pub(crate) fn run(table: Arc<FileTable>, inbox: Receiver<Job>) {
    tracing::info!("mediastore: deleter thread started");
    crate::sync::mark_deleter_thread();
    loop {
        table.retries().run_due(&table, false);
        // Never wait holding a cached folder handle (see `Roots::end_batch`).
        table.fs().roots().end_batch();
        // Deferred backend work (batched remote deletions, their retries).
        #[cfg(not(loom))]
        let backend_wait = table.backend.as_ref().and_then(|b| b.settle(false));
        #[cfg(loom)]
        let backend_wait: Option<Duration> = None;
        let wait = match (table.retries().next_wait(), backend_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let job = match wait {
            None => inbox.recv().ok(),
            #[cfg(not(loom))]
            Some(wait) => match inbox.recv_timeout(wait) {
                Ok(job) => Some(job),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => None,
            },
            #[cfg(loom)]
            Some(_) => inbox.recv().ok(),
        };
        match job {
            None | Some(Job::Shutdown) => break,
            Some(job) => handle_guarded(&table, job),
        }
        // A cached folder handle lives for one job at most.
        table.fs().roots().end_batch();
    }
    // Last attempt for scheduled retries; what fails is kept in the list.
    table.retries().run_due(&table, true);
    table.fs().roots().end_batch();
    #[cfg(not(loom))]
    if let Some(b) = &table.backend {
        b.settle(true);
    }
    tracing::info!("mediastore: deleter thread stopped");
}

fn handle(table: &Arc<FileTable>, job: Job) {
    match job {
        job @ (Job::Files(_) | Job::Release(_)) => {
            table.run_deletions(job, |table, rec| {
                unlink_now(table, &rec);
            });
        }
        Job::Flush(ack) => {
            table.retries().run_due(table, false);
            #[cfg(not(loom))]
            if let Some(b) = &table.backend {
                b.settle(true);
            }
            let _ = ack.send(());
        }
        #[cfg(not(loom))]
        Job::SweepOrphans(cutoff) => crate::orphans::sweep(table, cutoff),
        #[cfg(not(loom))]
        Job::Task(task) => task(),
        Job::Shutdown => {}
    }
}

#[cfg(not(loom))]
fn handle_guarded(table: &Arc<FileTable>, job: Job) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(table, job)));
    if outcome.is_err() {
        tracing::error!("mediastore: deleter job panicked; continuing with the next one");
    }
}

#[cfg(loom)]
fn handle_guarded(table: &Arc<FileTable>, job: Job) {
    // Under loom a panic is how the checker reports a failure: never catch.
    handle(table, job)
}
