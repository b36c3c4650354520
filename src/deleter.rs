//! The deleter thread: the only place (while the store is open) where media
//! files are unlinked.
//!
//! Invariants:
//!
//! * Jobs are carried out in the order they were sent (the channel is FIFO),
//!   so a `Flush` acknowledged means every job sent before it is done.
//! * The thread stops only on an explicit `Shutdown`, which `close` sends
//!   after taking the inbox away; every job sent before is carried out
//!   first, and none can be sent after. (loom's channel does not model
//!   disconnection, so production uses the same explicit message.)
//! * A panic while handling one job (it would be a bug) is caught, logged and
//!   counted; the thread goes on with the next job.

use crate::file::FileRec;
use crate::files::{Counters, FileTable};
use crate::sync::channel::{Receiver, Sender};
use crate::sync::Arc;

/// What the deleter is asked to do.
pub(crate) enum Job {
    /// Files whose last holder let go (a release, a sweep, or a lease
    /// dropped on another thread): each is unlinked unless a store rejoined
    /// its path meanwhile.
    Files(Vec<Arc<FileRec>>),
    /// One such file (the last lease of a released ref was dropped).
    File(Arc<FileRec>),
    /// Answer when every earlier job is done.
    Flush(Sender<()>),
    /// Stop after every earlier job.
    Shutdown,
}

/// The thread's body.
pub(crate) fn run(table: Arc<FileTable>, inbox: Receiver<Job>) {
    tracing::debug!("mediastore: deleter thread started");
    while let Ok(job) = inbox.recv() {
        if matches!(job, Job::Shutdown) {
            break;
        }
        handle_guarded(&table, job);
    }
    tracing::debug!("mediastore: deleter thread stopped");
}

#[cfg(not(loom))]
fn handle_guarded(table: &FileTable, job: Job) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| table.handle(job)));
    if outcome.is_err() {
        Counters::add(&table.counters.errors, 1);
        tracing::error!("mediastore: deleter job panicked; continuing with the next one");
    }
}

#[cfg(loom)]
fn handle_guarded(table: &FileTable, job: Job) {
    // Under loom a panic is how the checker reports a failure: never catch.
    let _ = Counters::get;
    table.handle(job)
}
