//! [`RefEntry`]: one registration (a ref), shared by the ref map and leases.
//!
//! Invariants: an entry holds one count on its path's [`FileRec`] from its
//! creation until it is dropped or handed back with [`RefEntry::into_file`];
//! since leases are clones of the entry's `Arc`, the path stays pinned while
//! the ref is in the map *or* any lease on it is alive, and the count is
//! released exactly once, by whoever drops the last `Arc`.

use std::ffi::OsStr;

use crate::file::FileRec;
use crate::files::FileTable;
use crate::meta::MediaMeta;
use crate::sync::{Arc, Frozen};
use crate::MediaRef;

/// See the module doc.
pub(crate) struct RefEntry {
    pub(crate) id: MediaRef,
    /// Clock reading at store time, in nanoseconds.
    pub(crate) stored_at: u64,
    /// The same bytes as the record's path, kept here so that reading a
    /// lease's path touches one object fewer.
    pub(crate) path: Frozen<OsStr>,
    pub(crate) scope: Frozen<str>,
    /// The TTL lane holding this ref's slot.
    pub(crate) lane: u16,
    pub(crate) meta: MediaMeta,
    /// `Some` for the whole life of a shared entry; taken only when the entry
    /// is dropped or unwrapped.
    file: Option<Arc<FileRec>>,
    /// Fault injection only: the count was released early.
    #[cfg(loom)]
    count_taken: std::sync::atomic::AtomicBool,
}

impl RefEntry {
    /// Wraps a pinned record; the pin becomes this entry's count.
    pub(crate) fn new(
        id: MediaRef,
        stored_at: u64,
        scope: Frozen<str>,
        lane: u16,
        meta: MediaMeta,
        file: Arc<FileRec>,
    ) -> Self {
        Self {
            id,
            stored_at,
            path: Frozen::clone(&file.path),
            scope,
            lane,
            meta,
            file: Some(file),
            #[cfg(loom)]
            count_taken: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Fault injection only: hands out the path count while the entry may
    /// still be shared (see `Fault::ReleaseIgnoringLeases`).
    #[cfg(loom)]
    pub(crate) fn take_count_forcibly(&self) -> Option<Arc<FileRec>> {
        use std::sync::atomic::Ordering::Relaxed;
        match (&self.file, self.count_taken.swap(true, Relaxed)) {
            (Some(f), false) => Some(Arc::clone(f)),
            _ => None,
        }
    }

    /// Hands back the count on the path without releasing it (the caller
    /// releases it in the right place: on the deleter thread).
    pub(crate) fn into_file(mut entry: Self) -> Option<Arc<FileRec>> {
        entry.file.take()
    }

    /// The path's record, for teardown.
    pub(crate) fn file(&self) -> Option<&Arc<FileRec>> {
        self.file.as_ref()
    }
}

impl Drop for RefEntry {
    fn drop(&mut self) {
        #[cfg(loom)]
        // Relaxed: fault injection only, set and read on loom's one OS thread.
        if self.count_taken.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Some(rec) = self.file.take() {
            // Any thread: a due deletion is queued, never done here.
            FileTable::release_anywhere(rec);
        }
    }
}
