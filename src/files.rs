//! [`FileTable`]: the path map and everything that decides a file's fate.
//!
//! This is the part of a store that may outlive it: every [`FileRec`] points
//! here, so a lease dropped after the store is gone can still get its file
//! deleted.
//!
//! Invariants:
//!
//! * The path map holds at most one record per absolute path; a record in it
//!   is live, due for deletion (count 0, not committed: queued, waiting for
//!   a retry, or in the failed list) or `DEAD` and about to be removed by
//!   whoever killed it.
//! * The map's key is the record itself ([`PathKey`], found by its path):
//!   one pointer per path. Joins, insertions and removals happen under the
//!   path's shard lock; a record is removed only if it is still the one in
//!   the map (pointer equality), so nobody ever removes a successor. A store
//!   that waited out the unlink of a `DEAD` record removes it itself and
//!   inserts a fresh one on its next try, if the deleter has not yet.
//! * No file I/O happens under a map lock. The only I/O under any lock is
//!   the unlink, under the record's unlink lock: one of a few striped
//!   mutexes ([`FileTable::unlink_lock`]; a record has no lock of its own,
//!   which keeps it at 16 bytes plus its path). While one is held, the
//!   only other lock taken is a leaf inside the unlink itself (the managed
//!   roots' cached folder handle; the in-memory file system's table under
//!   loom), which is never held while waiting for anything else; no map
//!   lock and no second stripe. So no lock cycle can form, and sharing a
//!   stripe only makes a store that waits out one unlink sometimes wait
//!   out another as well.
//! * A due deletion goes to the deleter thread while one runs; once the
//!   store is closed it is carried out by the thread that made it due.
//! * A failed unlink leaves the record due (see [`crate::file`], step 6) and
//!   puts it on the retry schedule (deleter) or in the failed list (inline);
//!   nothing is dropped silently.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::deleter::{Job, Retries};
use crate::entry::RefEntry;
use crate::file::{FileArc, JoinError, Released};
#[cfg(not(loom))]
use crate::meta::CleanupPolicy;
use crate::sync::{channel::Sender, lock, read, write, Arc, EntryArc, Mutex, RwLock, ShardMap};
use crate::sync::{Fs, Ordering, StatCounter, Update};

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
    pub(crate) retrying: StatCounter,
    pub(crate) orphans: StatCounter,
}

// Every access below is Relaxed: statistics, read without ordering promises
// (see `Counters`).
impl Counters {
    pub(crate) fn add(c: &StatCounter, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn sub(c: &StatCounter, n: u64) {
        c.fetch_sub(n, Ordering::Relaxed);
    }
    pub(crate) fn set(c: &StatCounter, n: u64) {
        c.store(n, Ordering::Relaxed);
    }
    pub(crate) fn get(c: &StatCounter) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// What became of one unlink attempt.
#[derive(Debug)]
pub(crate) enum Unlink {
    /// The file was removed.
    Done,
    /// The file was already gone.
    Gone,
    /// Not committed: a store rejoined the path, or it was handled already.
    Skipped,
    /// The OS refused; the record is due again.
    Failed(io::Error),
}

/// A deletion that ran out of attempts.
pub(crate) struct Failed {
    pub(crate) rec: FileArc,
    pub(crate) attempts: u32,
    pub(crate) error: io::Error,
}

/// See the module doc.
pub(crate) struct FileTable {
    paths: ShardMap<PathKey, ()>,
    /// The deleter's inbox; `None` once the store is closed. Senders hold the
    /// read lock while sending and `close` takes the write lock before it
    /// sends `Shutdown`, so no job can land behind `Shutdown` and be lost.
    deleter: RwLock<Option<Sender<Job>>>,
    fs: Fs,
    /// Deletions that failed every attempt, until `retry_failed`. A plain
    /// mutex: touched only on failures and by the user's inspection.
    failed: Mutex<Vec<Failed>>,
    retries: Retries,
    /// Recently retired records (keep-the-file lifetimes that ended), left
    /// in the path map for a while so that a path stored again soon (a
    /// workspace file sent twice, a tool re-registering its outputs) rejoins
    /// its record instead of building a new one. Bounded: a record pushed
    /// out of its queue is retired for real. Sharded to keep two threads
    /// that release at once off one lock.
    dormant: Box<[DormantQueue]>,
    /// Striped unlink locks (see the module invariants).
    unlink_locks: Box<[Mutex<()>]>,
    pub(crate) counters: Counters,
    pub(crate) metrics: crate::metrics::Metrics,
    /// The store's backend, told about every owned file deleted.
    #[cfg(not(loom))]
    pub(crate) backend: Option<std::sync::Arc<dyn crate::backend::Backend>>,
}

/// One dormant queue, on its own pair of cache lines (see `expiry::Lane`).
#[repr(align(128))]
struct DormantQueue(Mutex<std::collections::VecDeque<FileArc>>);

/// Unlink lock stripes (a power of two). One under loom: a record's stripe
/// depends on its address, which a model must not.
const UNLINK_STRIPES: usize = if cfg!(loom) { 1 } else { 64 };

/// Dormant queues, and records kept per queue.
const DORMANT_QUEUES: usize = if cfg!(loom) { 1 } else { 16 };
const DORMANT_PER_QUEUE: usize = if cfg!(loom) { 1 } else { 64 };

impl std::fmt::Debug for FileTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTable")
            .field("paths", &self.paths.len())
            .finish_non_exhaustive()
    }
}

/// A pin on a path, taken by `store` before it looks at the file.
pub(crate) struct Pin {
    pub(crate) rec: FileArc,
    /// The pin started a lifetime (no ref or lease held the path before).
    #[cfg_attr(loom, allow(dead_code))] // read by the orphan sweep only
    pub(crate) fresh: bool,
}

impl FileTable {
    pub(crate) fn new(shards: usize, fs: Fs, deleter: Sender<Job>, retries: Retries) -> Self {
        Self {
            paths: ShardMap::new(shards),
            deleter: RwLock::new(Some(deleter)),
            fs,
            failed: Mutex::new(Vec::new()),
            retries,
            dormant: (0..DORMANT_QUEUES)
                .map(|_| DormantQueue(Mutex::new(std::collections::VecDeque::new())))
                .collect(),
            unlink_locks: (0..UNLINK_STRIPES).map(|_| Mutex::new(())).collect(),
            counters: Counters::default(),
            metrics: crate::metrics::Metrics::new(),
            #[cfg(not(loom))]
            backend: None,
        }
    }

    /// Sets the backend (before the table is shared).
    #[cfg(not(loom))]
    pub(crate) fn with_backend(
        mut self,
        backend: Option<std::sync::Arc<dyn crate::backend::Backend>>,
    ) -> Self {
        self.backend = backend;
        self
    }

    /// `n` more refs or files wait for the deleter.
    pub(crate) fn pending_add(&self, n: u64) {
        Counters::add(&self.counters.pending, n);
        self.metrics
            .queue_depth(Counters::get(&self.counters.pending));
    }

    /// The deleter is done with `n` of them.
    pub(crate) fn pending_sub(&self, n: u64) {
        Counters::sub(&self.counters.pending, n);
        self.metrics
            .queue_depth(Counters::get(&self.counters.pending));
    }

    /// The retry schedule of failed unlinks.
    pub(crate) fn retries(&self) -> &Retries {
        &self.retries
    }

    pub(crate) fn fs(&self) -> &Fs {
        &self.fs
    }

    /// Whether some ref or lease of this store holds `path` now.
    #[cfg_attr(loom, allow(dead_code))] // asked by the orphan sweep only
    pub(crate) fn knows(&self, path: &Path) -> bool {
        self.paths
            .get_key_with(path.as_os_str(), |k| k.0.holders() > 0)
            .unwrap_or(false)
    }

    /// Pins `path` (absolute): joins its live record, cancels its due
    /// deletion, or starts a fresh lifetime after waiting out an unlink in
    /// progress. The file is not looked at here.
    pub(crate) fn pin(this: &Arc<Self>, path: &Path) -> Result<Pin, JoinError> {
        enum Step {
            Got(FileArc, bool),
            WaitFor(FileArc),
            Evict(FileArc),
            Full,
        }
        // Fast path, under the shard's read lock: join the record that is
        // there. A join is a compare-exchange on the record, which cannot
        // succeed on a DEAD one, and a record leaves the map only once DEAD,
        // so a read lock is enough; it lets stores of other paths in the
        // same shard go on in parallel.
        let joined = this.paths.get_key_with(path.as_os_str(), |PathKey(rec)| {
            rec.try_join()
                .ok()
                .map(|before| (FileArc::clone(rec), before == 0))
        });
        if let Some(Some((rec, fresh))) = joined {
            return Ok(Pin { rec, fresh });
        }
        let mut waited: Option<FileArc> = None;
        loop {
            // Under the path's shard write lock: join, insert or replace
            // atomically with respect to other stores and to removals.
            // The key is the record: a missing path gets a fresh record as
            // its key, made only when the path is absent.
            let step = this.paths.update(
                path.as_os_str(),
                || PathKey(FileArc::new(path.as_os_str(), Arc::clone(this))),
                |PathKey(rec), slot| match slot {
                    Some(()) => match rec.try_join() {
                        Ok(before) => Update::Keep(Step::Got(FileArc::clone(rec), before == 0)),
                        Err(JoinError::Full) => Update::Keep(Step::Full),
                        Err(JoinError::Dead) => {
                            if waited.as_ref().is_some_and(|w| FileArc::ptr_eq(w, rec)) {
                                // Its unlink (if any) is over: take it out;
                                // the next round inserts a fresh record.
                                Update::Keep(Step::Evict(FileArc::clone(rec)))
                            } else {
                                Update::Keep(Step::WaitFor(FileArc::clone(rec)))
                            }
                        }
                    },
                    // `rec` is the fresh record just made as the key.
                    None => Update::Put((), Step::Got(FileArc::clone(rec), true)),
                },
            );
            match step {
                Step::Got(rec, fresh) => return Ok(Pin { rec, fresh }),
                Step::Full => return Err(JoinError::Full),
                Step::Evict(rec) => {
                    // Only this exact dead record goes: if the deleter (or
                    // another store) removed it first, this does nothing.
                    this.paths.remove_if_mut(rec.os_path(), |PathKey(cur), ()| {
                        FileArc::ptr_eq(cur, &rec)
                    });
                }
                Step::WaitFor(rec) => {
                    // Outside every map lock: the deleter holds this lock
                    // from before it marked the record DEAD until the unlink
                    // returned, so taking it waits for that (and, if the
                    // stripe is shared, perhaps for another unlink too).
                    drop(lock(this.unlink_lock(&rec)));
                    waited = Some(rec);
                }
            }
        }
    }

    /// Drops a holder from a thread that must not touch the file system
    /// (any caller's thread): a due deletion is queued. On the deleter
    /// thread itself the deletion happens at once, so that a `Flush` queued
    /// behind the job being handled still finds it done.
    pub(crate) fn release_anywhere(rec: FileArc) {
        let table = &rec.table;
        match rec.release() {
            Released::Held => {}
            Released::Retire => table.retire(&rec),
            Released::Delete if crate::sync::on_deleter_thread() => {
                crate::deleter::unlink_now(table, &rec);
            }
            Released::Delete => table.queue(vec![FileArc::clone(&rec)]),
        }
    }

    /// Drops a holder for a caller that batches: a due deletion is pushed
    /// onto `due` (to be queued with [`FileTable::queue`]).
    pub(crate) fn release_into(&self, rec: FileArc, due: &mut Vec<FileArc>) {
        match rec.release() {
            Released::Held => {}
            Released::Retire => self.retire(&rec),
            Released::Delete => due.push(rec),
        }
    }

    /// Lets go of an entry just removed from the ref map. If no lease holds
    /// it, its path count is released now (due files go onto `due`); if a
    /// lease holds it, the lease's drop releases the count later.
    pub(crate) fn let_go(&self, entry: EntryArc<RefEntry>, due: &mut Vec<FileArc>) {
        #[cfg(loom)]
        if crate::faults::active(crate::faults::Fault::ReleaseIgnoringLeases) {
            if let Some(rec) = entry.take_count_forcibly() {
                self.release_into(rec, due);
            }
            return;
        }
        match EntryArc::try_unwrap(entry) {
            Ok(entry) => {
                if let Some(rec) = RefEntry::into_file(entry) {
                    self.release_into(rec, due);
                }
            }
            // Dropping it may still be the last reference if the lease went
            // away in between; then `RefEntry::drop` queues the file itself.
            Err(shared) => drop(shared),
        }
    }

    /// Queues due deletions for the deleter (or carries them out at once
    /// once the store is closed).
    pub(crate) fn queue(&self, due: Vec<FileArc>) {
        if due.is_empty() {
            return;
        }
        self.pending_add(due.len() as u64);
        if let Err(job) = self.send(Job::Files(due)) {
            self.handle_inline(job);
        }
    }

    /// A lifetime that keeps its file has ended: the record goes dormant
    /// (still in the path map, joinable as a fresh lifetime); the oldest
    /// dormant record of its queue is retired for real.
    pub(crate) fn retire(&self, rec: &FileArc) {
        // Acquire/Release: pairs with the store in the eviction below; only
        // avoids duplicate queue slots.
        if rec.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let queue = &self.dormant[(FileArc::addr(rec) >> 6) % DORMANT_QUEUES];
        let evicted = {
            let mut q = lock(&queue.0);
            q.push_back(FileArc::clone(rec));
            if q.len() > DORMANT_PER_QUEUE {
                q.pop_front()
            } else {
                None
            }
        };
        if let Some(old) = evicted {
            // Release: pairs with the AcqRel swap above; a stale read there
            // only costs a duplicate slot or a skipped one.
            old.queued.store(false, Ordering::Release);
            // Fails, and leaves the record in the map, if a store rejoined
            // it; its next retirement queues it again.
            self.retire_now(&old);
        }
    }

    /// The lock held around `rec`'s commit and unlink. It guards no data,
    /// only that window: a store that meets the record `DEAD` takes it to
    /// wait for the unlink to finish.
    pub(crate) fn unlink_lock(&self, rec: &FileArc) -> &Mutex<()> {
        // Fibonacci hashing of the record's address: records are separate
        // heap blocks (32 bytes or more), and the product's middle bits
        // spread neighbouring addresses over the stripes.
        let h = (FileArc::addr(rec) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let i = (h >> 32) as usize & (self.unlink_locks.len() - 1);
        &self.unlink_locks[i]
    }

    /// Ends a lifetime that keeps its file, and forgets the path, unless a
    /// store has rejoined it meanwhile.
    fn retire_now(&self, rec: &FileArc) {
        if rec.retire() {
            self.paths
                .remove_if_mut(rec.os_path(), |PathKey(cur), ()| FileArc::ptr_eq(cur, rec));
        }
    }

    /// One unlink attempt of a due file: commit, unlink, and either forget
    /// the path (done, gone) or undo the commit (failed). Counts the
    /// outcome; logging and retries are the caller's.
    pub(crate) fn unlink(&self, rec: &FileArc) -> Unlink {
        let outcome = {
            let window = lock(self.unlink_lock(rec));
            if !rec.begin_unlink() {
                return Unlink::Skipped;
            }
            match self.fs.remove_file(rec.path()) {
                Ok(()) => Unlink::Done,
                Err(e) if e.kind() == io::ErrorKind::NotFound => Unlink::Gone,
                Err(e) => {
                    #[cfg(loom)]
                    if crate::faults::active(crate::faults::Fault::UncommitAfterUnlock) {
                        drop(window);
                        crate::sync::thread::yield_now();
                        rec.uncommit();
                        return self.count(Unlink::Failed(e), rec);
                    }
                    // Still inside the window: a store waiting on the lock
                    // must find the record due again, not dead.
                    rec.uncommit();
                    drop(window);
                    Unlink::Failed(e)
                }
            }
        };
        self.count(outcome, rec)
    }

    /// Counts an unlink outcome and forgets the path once the file is gone.
    fn count(&self, outcome: Unlink, rec: &FileArc) -> Unlink {
        match &outcome {
            Unlink::Done => {
                Counters::add(&self.counters.deleted, 1);
                self.metrics.deleted(true, false);
            }
            Unlink::Gone => {
                Counters::add(&self.counters.not_found, 1);
                self.metrics.deleted(false, true);
            }
            Unlink::Failed(_) => {
                Counters::add(&self.counters.errors, 1);
                self.metrics.deleted(false, false);
            }
            Unlink::Skipped => {}
        }
        if matches!(outcome, Unlink::Done | Unlink::Gone) {
            self.paths
                .remove_if_mut(rec.os_path(), |PathKey(cur), ()| FileArc::ptr_eq(cur, rec));
            // An owned object's local file is gone: the backend removes the
            // rest of it (sidecar, remote copy). After the unlink, so a crash
            // in between leaves a record the backend's own cleanup reclaims.
            #[cfg(not(loom))]
            if let Some(b) = &self.backend {
                if rec.path().starts_with(b.local_root()) {
                    b.forget_local(rec.path());
                }
            }
        }
        outcome
    }

    /// Records a deletion that ran out of attempts.
    pub(crate) fn give_up(&self, rec: FileArc, attempts: u32, error: io::Error) {
        tracing::error!(
            path = %rec.path().display(),
            attempts,
            error = %error,
            "mediastore: giving up deleting a media file; see failed_deletions()"
        );
        lock(&self.failed).push(Failed {
            rec,
            attempts,
            error,
        });
    }

    /// The failed deletions that are still due (a store may have revived
    /// some meanwhile; those are dropped from the list here).
    pub(crate) fn failed(&self) -> Vec<(PathBuf, u32, io::ErrorKind, String)> {
        let mut list = lock(&self.failed);
        list.retain(|f| f.rec.is_due());
        list.iter()
            .map(|f| {
                (
                    f.rec.path().to_path_buf(),
                    f.attempts,
                    f.error.kind(),
                    f.error.to_string(),
                )
            })
            .collect()
    }

    /// Number of failed deletions still due.
    pub(crate) fn failed_count(&self) -> u64 {
        let mut list = lock(&self.failed);
        list.retain(|f| f.rec.is_due());
        list.len() as u64
    }

    /// Queues every failed deletion again (with a fresh attempt budget).
    pub(crate) fn retry_failed(&self) -> usize {
        let due: Vec<FileArc> = std::mem::take(&mut *lock(&self.failed))
            .into_iter()
            .filter(|f| f.rec.is_due())
            .map(|f| f.rec)
            .collect();
        let n = due.len();
        self.queue(due);
        n
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

    /// Carries out the deletions of a `Files` or `Release` job, each with
    /// `unlink_one` (the deleter retries failures, the inline path gives up
    /// at once); any other job is ignored.
    pub(crate) fn run_deletions(&self, job: Job, unlink_one: impl Fn(&Self, FileArc)) {
        let (n, due) = match job {
            Job::Files(files) => (files.len() as u64, files),
            Job::Release(entries) => {
                let n = entries.len() as u64;
                let mut due = Vec::new();
                for e in entries {
                    self.let_go(e, &mut due);
                }
                (n, due)
            }
            _ => return,
        };
        for rec in due {
            unlink_one(self, rec);
        }
        self.pending_sub(n);
    }

    /// Carries out a job on the calling thread, once the store is closed:
    /// one attempt per file; failures go to the failed list.
    pub(crate) fn handle_inline(&self, job: Job) {
        match job {
            job @ (Job::Files(_) | Job::Release(_)) => {
                self.run_deletions(job, |table, rec| {
                    if let Unlink::Failed(e) = table.unlink(&rec) {
                        table.give_up(rec, 1, e);
                    }
                });
            }
            Job::Flush(ack) => {
                let _ = ack.send(());
            }
            #[cfg(not(loom))]
            Job::SweepOrphans(_) => {}
            #[cfg(not(loom))]
            Job::Task(task) => task(),
            Job::Shutdown => {}
        }
        self.fs.roots().end_batch();
    }

    /// Forgets every path (store teardown, after live paths were made
    /// undeletable). Records still held by leases keep working without the
    /// map; dropping it breaks the table ↔ record reference cycle.
    pub(crate) fn forget_paths(&self) {
        for q in self.dormant.iter() {
            let drained = std::mem::take(&mut *lock(&q.0));
            drop(drained);
        }
        self.paths.clear();
    }

    /// Number of paths held by refs or leases, or whose deletion is due.
    pub(crate) fn paths(&self) -> usize {
        let mut n = 0;
        self.paths.for_each(|PathKey(rec), ()| {
            if rec.holders() > 0 || rec.is_due() {
                n += 1;
            }
        });
        n
    }

    /// Deletes an orphan (a file under a managed root that no ref knows)
    /// through the normal lifetime protocol, so that a `store` of the same
    /// path racing the sweep either keeps the file or sees it gone.
    /// Returns whether the file was removed.
    #[cfg(not(loom))]
    pub(crate) fn delete_orphan(this: &Arc<Self>, path: &Path) -> bool {
        let Ok(pin) = Self::pin(this, path) else {
            return false;
        };
        if !pin.fresh {
            // Somebody holds it: not an orphan after all.
            let mut due = Vec::new();
            this.release_into(pin.rec, &mut due);
            this.queue(due);
            return false;
        }
        pin.rec.confirm(CleanupPolicy::DeleteOnCleanup);
        let rec = pin.rec;
        match rec.release() {
            Released::Delete => matches!(crate::deleter::unlink_now(this, &rec), Unlink::Done),
            Released::Retire => {
                this.retire(&rec);
                false
            }
            Released::Held => false,
        }
    }
}

/// A path-map key that is the record: it hashes, compares and borrows as
/// the record's path bytes, so the map is looked up by path and holds one
/// pointer per path (no value).
pub(crate) struct PathKey(pub(crate) FileArc);

impl std::borrow::Borrow<OsStr> for PathKey {
    #[inline]
    fn borrow(&self) -> &OsStr {
        self.0.os_path()
    }
}

impl std::hash::Hash for PathKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Exactly as `OsStr` hashes: required by `Borrow`.
        self.0.os_path().hash(state)
    }
}

impl PartialEq for PathKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.os_path() == other.0.os_path()
    }
}

impl Eq for PathKey {}

impl PartialOrd for PathKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.os_path().cmp(other.0.os_path())
    }
}
