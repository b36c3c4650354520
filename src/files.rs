//! [`FileTable`]: the path map and everything that decides a file's fate.
//!
//! This is the part of a store that may outlive it: every [`FileRec`] points
//! here, so a lease dropped after the store is gone can still get its file
//! deleted.
//!
//! Invariants:
//!
//! * The path map holds at most one record per absolute path; a record in it
//!   is live, due for deletion (count 0, not yet committed) or `DEAD` and
//!   about to be removed by whoever killed it.
//! * Joins and replacements happen under the path's shard lock; the deleter
//!   removes a record only if it is still the one in the map (pointer
//!   equality), so it never removes a successor.
//! * No file I/O happens under a map lock. The only I/O under any lock is the
//!   deleter's `unlink`, under that one record's `unlink_lock`.
//! * A due deletion goes to the deleter thread while one runs; once the store
//!   is closed it is carried out by the thread that made it due.

use std::io;
use std::path::Path;

use crate::deleter::Job;
use crate::file::{FileRec, JoinError, Released};
use crate::sync::{
    channel::Sender, lock, read, write, Arc, Frozen, RwLock, ShardMap, StatCounter, Update,
};
use crate::sync::{Fs, Ordering};

/// Counters behind [`Stats`](crate::Stats). Relaxed: they are statistics,
/// read without any ordering promise.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) pending: StatCounter,
    pub(crate) deleted: StatCounter,
    pub(crate) not_found: StatCounter,
    pub(crate) errors: StatCounter,
    pub(crate) released: StatCounter,
    pub(crate) expired: StatCounter,
}

impl Counters {
    pub(crate) fn add(c: &StatCounter, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn sub(c: &StatCounter, n: u64) {
        c.fetch_sub(n, Ordering::Relaxed);
    }
    pub(crate) fn get(c: &StatCounter) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// See the module doc.
pub(crate) struct FileTable {
    paths: ShardMap<Frozen<Path>, Arc<FileRec>>,
    /// The deleter's inbox; `None` once the store is closed. Senders hold the
    /// read lock while sending and `close` takes the write lock before it
    /// sends `Shutdown`, so no job can land behind `Shutdown` and be lost.
    deleter: RwLock<Option<Sender<Job>>>,
    fs: Fs,
    pub(crate) counters: Counters,
}

impl std::fmt::Debug for FileTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTable")
            .field("paths", &self.paths.len())
            .finish_non_exhaustive()
    }
}

/// A pin on a path, taken by `store` before it looks at the file.
pub(crate) struct Pin {
    pub(crate) rec: Arc<FileRec>,
}

impl FileTable {
    pub(crate) fn new(shards: usize, fs: Fs, deleter: Sender<Job>) -> Self {
        Self {
            paths: ShardMap::new(shards),
            deleter: RwLock::new(Some(deleter)),
            fs,
            counters: Counters::default(),
        }
    }

    pub(crate) fn fs(&self) -> &Fs {
        &self.fs
    }

    /// Pins `path` (absolute): joins its live record, cancels its due
    /// deletion, or starts a fresh lifetime after waiting out an unlink in
    /// progress. The file is not looked at here.
    pub(crate) fn pin(this: &Arc<Self>, path: &Path) -> Result<Pin, JoinError> {
        enum Step {
            Got(Arc<FileRec>),
            WaitFor(Arc<FileRec>),
            Full,
        }
        let mut waited: Option<Arc<FileRec>> = None;
        loop {
            // Under the path's shard write lock: join or replace atomically
            // with respect to other stores and to the deleter's removal.
            let step = this.paths.update(
                path,
                || Frozen::from(path),
                |key, slot| match slot {
                    Some(rec) => match rec.try_join() {
                        Ok(()) => Update::Keep(Step::Got(Arc::clone(rec))),
                        Err(JoinError::Full) => Update::Keep(Step::Full),
                        Err(JoinError::Dead) => {
                            if waited.as_ref().is_some_and(|w| Arc::ptr_eq(w, rec)) {
                                // Its unlink (if any) is over: replace it.
                                let fresh =
                                    Arc::new(FileRec::new(Frozen::clone(key), Arc::clone(this)));
                                Update::Put(Arc::clone(&fresh), Step::Got(fresh))
                            } else {
                                Update::Keep(Step::WaitFor(Arc::clone(rec)))
                            }
                        }
                    },
                    None => {
                        let fresh = Arc::new(FileRec::new(Frozen::clone(key), Arc::clone(this)));
                        Update::Put(Arc::clone(&fresh), Step::Got(fresh))
                    }
                },
            );
            match step {
                Step::Got(rec) => return Ok(Pin { rec }),
                Step::Full => return Err(JoinError::Full),
                Step::WaitFor(rec) => {
                    // Outside every map lock: the deleter holds this lock
                    // from before it marked the record DEAD until the unlink
                    // returned, so taking it waits exactly for that.
                    drop(lock(&rec.unlink_lock));
                    waited = Some(rec);
                }
            }
        }
    }

    /// Drops a holder from a thread that must not touch the file system
    /// (any caller's thread): a due deletion is queued.
    pub(crate) fn release_anywhere(rec: Arc<FileRec>) {
        let table = &rec.table;
        match rec.release() {
            Released::Held => {}
            Released::Retire => table.retire(&rec),
            Released::Delete => {
                Counters::add(&table.counters.pending, 1);
                if let Err(job) = table.send(Job::File(Arc::clone(&rec))) {
                    table.handle(job);
                }
            }
        }
    }

    /// Drops a holder for a caller that batches: a due deletion is pushed
    /// onto `due` (to be queued with [`FileTable::queue`]).
    pub(crate) fn release_into(&self, rec: Arc<FileRec>, due: &mut Vec<Arc<FileRec>>) {
        match rec.release() {
            Released::Held => {}
            Released::Retire => self.retire(&rec),
            Released::Delete => due.push(rec),
        }
    }

    /// Queues due deletions for the deleter (or carries them out at once
    /// once the store is closed).
    pub(crate) fn queue(&self, due: Vec<Arc<FileRec>>) {
        if due.is_empty() {
            return;
        }
        Counters::add(&self.counters.pending, due.len() as u64);
        if let Err(job) = self.send(Job::Files(due)) {
            self.handle(job);
        }
    }

    /// Ends a lifetime that keeps its file, and forgets the path.
    fn retire(&self, rec: &Arc<FileRec>) {
        if rec.retire() {
            self.paths
                .remove_if_mut(&*rec.path, |_, cur| Arc::ptr_eq(cur, rec));
        }
    }

    /// Commits and carries out a due deletion (deleter thread, or the
    /// releasing thread once the store is closed).
    fn unlink(&self, rec: &Arc<FileRec>) {
        let committed = {
            let _window = lock(&rec.unlink_lock);
            let committed = rec.begin_unlink();
            if committed {
                match self.fs.remove_file(&rec.path) {
                    Ok(()) => Counters::add(&self.counters.deleted, 1),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        Counters::add(&self.counters.not_found, 1)
                    }
                    Err(e) => {
                        Counters::add(&self.counters.errors, 1);
                        tracing::warn!(path = %rec.path.display(), error = %e, "mediastore: cannot delete media file");
                    }
                }
            }
            committed
        };
        if committed {
            self.paths
                .remove_if_mut(&*rec.path, |_, cur| Arc::ptr_eq(cur, rec));
        }
    }

    /// Hands a job to the deleter; gives it back if the store is closed.
    pub(crate) fn send(&self, job: Job) -> Result<(), Job> {
        let inbox = read(&self.deleter);
        match inbox.as_ref() {
            Some(tx) => tx.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    /// Takes the inbox away (after this, due deletions run inline) and
    /// returns it so that `close` can send `Shutdown` last.
    pub(crate) fn take_inbox(&self) -> Option<Sender<Job>> {
        write(&self.deleter).take()
    }

    /// Carries out one job (deleter thread, or inline once closed).
    pub(crate) fn handle(&self, job: Job) {
        match job {
            Job::Files(files) => {
                let n = files.len() as u64;
                for rec in files {
                    self.unlink(&rec);
                }
                Counters::sub(&self.counters.pending, n);
            }
            Job::File(rec) => {
                self.unlink(&rec);
                Counters::sub(&self.counters.pending, 1);
            }
            Job::Flush(ack) => {
                let _ = ack.send(());
            }
            Job::Shutdown => {}
        }
    }

    /// Forgets every path (store teardown, after live paths were made
    /// undeletable). Records still held by leases keep working without the
    /// map; dropping it breaks the table ↔ record reference cycle.
    pub(crate) fn forget_paths(&self) {
        self.paths.clear();
    }

    /// Number of paths known (statistics).
    #[allow(dead_code)]
    pub(crate) fn paths(&self) -> usize {
        self.paths.len()
    }
}
