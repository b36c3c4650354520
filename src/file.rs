//! [`FileRec`]: the life of one path, as one atomic state word.
//!
//! A `FileRec` stands for one *lifetime* of a path: from the first ref that
//! names it until the last holder lets go. Its state word packs
//!
//! * `count` (low 28 bits): live [`RefEntry`](crate::entry::RefEntry)s of the
//!   path (a ref still in the map, or a lease keeping a released ref alive),
//!   plus *pins* taken by `store` calls between joining and registering;
//! * `ARMED`: some successful `store` of this lifetime was `DeleteOnCleanup`;
//! * `FORGET`: some successful `store` of this lifetime was `ForgetOnly`
//!   (sticky: it makes the lifetime undeletable);
//! * `DEAD`: the lifetime is over; nobody may join it any more.
//!
//! Lifecycle, step by step:
//!
//! 1. `store` creates the record with count 1, or joins an existing one
//!    ([`FileRec::try_join`]: count + 1). Joining a record whose count fell
//!    to zero starts a new lifetime: `FORGET` is cleared, and `ARMED` is kept
//!    only if the previous lifetime was due for deletion (its deletion is
//!    then cancelled; if this store fails, the count drops to zero again and
//!    the deletion is queued anew).
//! 2. After `lstat` succeeded, [`FileRec::confirm`] sets `ARMED` or `FORGET`.
//!    A failed `store` releases its pin without setting either, so it changes
//!    nothing.
//! 3. Each holder leaves with [`FileRec::release`]. Exactly one release sees
//!    the count go from 1 to 0 (all changes are read-modify-writes on one
//!    word, so they are totally ordered). If the word then reads `ARMED` and
//!    not `FORGET`, the file is due for deletion; otherwise the record is
//!    merely retired.
//! 4. The deleter commits with [`FileRec::begin_unlink`]: a compare-exchange
//!    from exactly "count 0, `ARMED`" to `ARMED | DEAD`. It fails if a store
//!    joined meanwhile (step 1 cancelled the deletion) or if the record is
//!    already dead, so each lifetime is unlinked at most once.
//! 5. A store that finds a `DEAD` record waits for the record's unlink lock
//!    ([`FileTable::unlink_lock`], held by the deleter from before the commit
//!    until after the unlink) and then starts
//!    a fresh record, so its `lstat` happens after the unlink: either the
//!    file is gone and the store fails with not-found, or the file was made
//!    anew and the new ref keeps it (picoclaw #1886 cannot happen).
//! 6. If the unlink fails (permission denied, busy...), the deleter undoes
//!    its commit before releasing the unlink lock ([`FileRec::uncommit`]): the
//!    record is due again and stays in the path map, so a store may still
//!    rejoin it (the file exists and is kept), and the next retry commits
//!    anew. A retry never deletes a file that a newer ref uses.
//!
//! # Synchronization
//!
//! Every change to the word is a read-modify-write with `AcqRel`: the
//! release half publishes a holder's earlier reads of the file's metadata
//! before it lets go, the acquire half makes whoever observes the count at
//! zero (and the deleter's compare-exchange after it) happen after every
//! holder's release, like `Arc`'s drop. Decisions never rest on a plain load.

use std::ffi::OsStr;
use std::path::Path;

use crate::files::FileTable;
use crate::meta::CleanupPolicy;
#[cfg(not(unix))]
use crate::sync::Frozen;
use crate::sync::{Arc, AtomicBool, AtomicU32, Ordering};

/// Number of holders, low 28 bits. The word is 32 bits wide so that the
/// record (state, queue flag, table pointer) fits in 16 bytes.
const COUNT_MASK: u32 = (1 << 28) - 1;
/// Some successful store of this lifetime asked for deletion.
const ARMED: u32 = 1 << 28;
/// Some successful store of this lifetime asked to keep the file.
const FORGET: u32 = 1 << 29;
/// The lifetime is over.
const DEAD: u32 = 1 << 30;
/// More holders than this (134 million) is refused, far below the field's
/// limit, so concurrent joins that each passed the check cannot overflow it.
const MAX_COUNT: u32 = 1 << 27;

/// Why a store could not join a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinError {
    /// The lifetime is over (being unlinked, or retired).
    Dead,
    /// Too many holders.
    Full,
}

/// What a release left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Released {
    /// Others still hold the path.
    Held,
    /// This was the last holder and the file must be deleted.
    Delete,
    /// This was the last holder and the file must be kept.
    Retire,
}

impl std::fmt::Debug for FileArc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRec")
            .field("path", &self.os_path())
            .field(
                "state",
                // Relaxed: a debug print, no decision.
                &format_args!("{:#x}", self.state.load(Ordering::Relaxed)),
            )
            .finish()
    }
}

/// One lifetime of one path. See the module doc.
pub(crate) struct FileRec {
    state: AtomicU32,
    /// The path where [`FileArc`] cannot keep it inline (no byte view of
    /// an `OsStr` without `unsafe` off Unix).
    #[cfg(not(unix))]
    path: Frozen<OsStr>,
    /// Where due deletions go. Holding it here (not in every ref) keeps the
    /// table alive for leases that outlive the store.
    pub(crate) table: Arc<FileTable>,
    /// Whether the record sits in a dormant queue (see
    /// [`FileTable::retire`]); keeps a record that is retired again and again
    /// from filling a queue with copies of itself. Not part of the lifetime
    /// protocol: a stale value only costs a duplicate or a skipped queue slot.
    pub(crate) queued: AtomicBool,
}

impl FileRec {
    /// A new lifetime with one pin (the creating store's).
    fn new(#[cfg(not(unix))] path: &OsStr, table: Arc<FileTable>) -> Self {
        Self {
            state: AtomicU32::new(1),
            #[cfg(not(unix))]
            path: Frozen::from(path),
            table,
            queued: AtomicBool::new(false),
        }
    }

    /// Adds a holder; see lifecycle step 1. Returns the number of holders
    /// before the join (0: this join started a lifetime).
    pub(crate) fn try_join(&self) -> Result<u64, JoinError> {
        // Acquire: a failed CAS re-reads the word and decides again; see the
        // module's Synchronization section for the success ordering.
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & DEAD != 0 {
                return Err(JoinError::Dead);
            }
            let n = s & COUNT_MASK;
            if n >= MAX_COUNT {
                return Err(JoinError::Full);
            }
            let next = if n == 0 {
                // A new lifetime. Keep ARMED only when the old one was due
                // for deletion, so that a failing store re-queues it.
                let due = s & ARMED != 0 && s & FORGET == 0;
                (if due { ARMED } else { 0 }) | 1
            } else {
                s + 1
            };
            // AcqRel on success, Acquire on failure: see the module's
            // Synchronization section; a failure re-decides from the value read.
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(u64::from(n)),
                Err(cur) => s = cur,
            }
        }
    }

    /// Records the policy of a store that succeeded (lifecycle step 2).
    pub(crate) fn confirm(&self, policy: CleanupPolicy) {
        let bit = match policy {
            CleanupPolicy::DeleteOnCleanup => ARMED,
            CleanupPolicy::ForgetOnly => FORGET,
        };
        // AcqRel: see the module's Synchronization section. The caller still
        // holds its pin, so the count cannot reach zero concurrently.
        self.state.fetch_or(bit, Ordering::AcqRel);
    }

    /// Removes a holder (lifecycle step 3).
    pub(crate) fn release(&self) -> Released {
        // AcqRel: release publishes this holder's use; acquire makes the last
        // holder's decision happen after everyone else's release.
        let prev = self.state.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(prev & COUNT_MASK > 0, "file record released too often");
        if prev & COUNT_MASK != 1 {
            Released::Held
        } else if prev & ARMED != 0 && prev & FORGET == 0 {
            Released::Delete
        } else {
            Released::Retire
        }
    }

    /// The deleter's commit (lifecycle step 4). Call with the record's
    /// unlink lock held.
    pub(crate) fn begin_unlink(&self) -> bool {
        #[cfg(loom)]
        if crate::faults::active(crate::faults::Fault::UnlinkWithoutCommit) {
            return self.state.load(Ordering::Acquire) & DEAD == 0;
        }
        // AcqRel on success: acquire pairs with the last release; release
        // publishes DEAD to stores that must then wait on the unlink lock.
        self.state
            .compare_exchange(ARMED, ARMED | DEAD, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Undoes a commit after a failed unlink (call with the unlink lock held):
    /// the file is due again, so a store may rejoin it (cancelling the
    /// retry) and a retry commits afresh.
    pub(crate) fn uncommit(&self) {
        // AcqRel: as for `begin_unlink`; only the committer can be here.
        let _ =
            self.state
                .compare_exchange(ARMED | DEAD, ARMED, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Whether the lifetime is over with its deletion still due (count 0,
    /// armed, not forget-only, not dead): a failed deletion nobody revived.
    pub(crate) fn is_due(&self) -> bool {
        self.state.load(Ordering::Acquire) == ARMED
    }

    /// Ends a lifetime that must not be unlinked: succeeds only from count 0.
    pub(crate) fn retire(&self) -> bool {
        #[cfg(loom)]
        if crate::faults::active(crate::faults::Fault::RetireWithoutRecheck) {
            return self.state.load(Ordering::Acquire) & DEAD == 0;
        }
        // Acquire: the decision below rests on the compare-exchange; this
        // load only seeds it.
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & COUNT_MASK != 0 || s & DEAD != 0 {
                return false;
            }
            // AcqRel: as for `begin_unlink`.
            match self
                .state
                .compare_exchange_weak(s, s | DEAD, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    /// Makes the current lifetime undeletable (used when a store is torn
    /// down with live refs: their files are kept).
    pub(crate) fn keep_forever(&self) {
        // AcqRel: ordered with the releases that may follow on other threads.
        self.state.fetch_or(FORGET, Ordering::AcqRel);
    }

    /// Number of holders now (a snapshot: for the orphan sweep's "is this
    /// path in use" and the shutdown report, never for a lifetime decision).
    pub(crate) fn holders(&self) -> u64 {
        u64::from(self.state.load(Ordering::Relaxed) & COUNT_MASK)
    }
}

/// A shared [`FileRec`] with the path's bytes in the same allocation: one
/// heap block per path (record, length and bytes) and one pointer, 8 bytes,
/// wherever it is held (ref entries, the path map, deletion queues).
///
/// The path is the absolute, normalised one; the path map is keyed by it
/// (by bytes: normalisation makes one path one spelling).
pub(crate) struct FileArc(triomphe::ThinArc<FileRec, u8>);

impl FileArc {
    /// A new lifetime of `path` with one pin (the creating store's).
    pub(crate) fn new(path: &OsStr, table: Arc<FileTable>) -> Self {
        #[cfg(unix)]
        let (rec, bytes) = (
            FileRec::new(table),
            std::os::unix::ffi::OsStrExt::as_bytes(path),
        );
        #[cfg(not(unix))]
        let (rec, bytes) = (FileRec::new(path, table), &[][..]);
        Self(triomphe::ThinArc::from_header_and_slice(rec, bytes))
    }

    /// The path, as the path map's key.
    #[inline]
    pub(crate) fn os_path(&self) -> &OsStr {
        #[cfg(unix)]
        return std::os::unix::ffi::OsStrExt::from_bytes(&self.0.slice);
        #[cfg(not(unix))]
        return &self.0.header.header.path;
    }

    /// The path.
    #[inline]
    pub(crate) fn path(&self) -> &Path {
        Path::new(self.os_path())
    }

    /// Whether both point to the same record.
    #[inline]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        std::ptr::eq(a.0.ptr(), b.0.ptr())
    }

    /// The record's address (to spread records over queues).
    pub(crate) fn addr(this: &Self) -> usize {
        this.0.ptr() as usize
    }
}

impl Clone for FileArc {
    #[inline]
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl std::ops::Deref for FileArc {
    type Target = FileRec;
    #[inline]
    fn deref(&self) -> &FileRec {
        &self.0.header.header
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn rec() -> FileArc {
        let (tx, _rx) = crate::sync::channel::unbounded();
        let fs = crate::sync::Fs::new(crate::roots::Roots::open(&[]).unwrap());
        let retries = crate::deleter::Retries::new(
            crate::deleter::RetryPolicy::default(),
            std::sync::Arc::new(crate::clock::SystemClock::new()),
        );
        let table = Arc::new(FileTable::new(2, fs, tx, retries));
        FileArc::new(OsStr::new("/x"), table)
    }

    #[test]
    fn last_release_of_delete_lifetime_is_due() {
        let r = rec();
        r.confirm(CleanupPolicy::DeleteOnCleanup);
        r.try_join().unwrap();
        r.confirm(CleanupPolicy::DeleteOnCleanup);
        assert_eq!(r.release(), Released::Held);
        assert_eq!(r.release(), Released::Delete);
        assert!(r.begin_unlink());
        assert!(!r.begin_unlink());
        assert_eq!(r.try_join(), Err(JoinError::Dead));
    }

    #[test]
    fn forget_is_sticky_until_zero_then_fresh() {
        let r = rec();
        r.confirm(CleanupPolicy::DeleteOnCleanup);
        r.try_join().unwrap();
        r.confirm(CleanupPolicy::ForgetOnly);
        assert_eq!(r.release(), Released::Held);
        assert_eq!(r.release(), Released::Retire);
        // Rejoin at zero: a fresh lifetime.
        r.try_join().unwrap();
        r.confirm(CleanupPolicy::DeleteOnCleanup);
        assert_eq!(r.release(), Released::Delete);
    }

    #[test]
    fn join_cancels_a_due_deletion_and_failed_store_requeues() {
        let r = rec();
        r.confirm(CleanupPolicy::DeleteOnCleanup);
        assert_eq!(r.release(), Released::Delete);
        assert_eq!(r.try_join(), Ok(0)); // a store resurrects it
        assert!(!r.begin_unlink()); // the queued deletion is cancelled
        assert_eq!(r.release(), Released::Delete); // the store failed: due again
        assert!(r.begin_unlink());
    }

    #[test]
    fn unconfirmed_lifetime_is_retired_not_deleted() {
        let r = rec();
        assert_eq!(r.release(), Released::Retire);
        assert!(r.retire());
        assert!(!r.retire());
    }
}
