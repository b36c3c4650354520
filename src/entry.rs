//! [`RefEntry`]: one registration (a ref), shared by the ref map and leases.
//!
//! Invariants: an entry holds one count on its path's [`FileRec`] from its
//! creation until it is dropped or handed back with [`RefEntry::into_file`];
//! since leases are clones of the entry's `Arc`, the path stays pinned while
//! the ref is in the map *or* any lease on it is alive, and the count is
//! released exactly once, by whoever drops the last `Arc`.
//!
//! The ref map's key is the entry itself ([`EntryKey`], found by its id), so
//! a ref costs the map one pointer rather than an id plus a pointer.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::path::Path;

use crate::file::FileArc;
use crate::files::FileTable;
use crate::meta::{MediaMeta, MediaMetaView, MetaTags, PackedMeta};
use crate::scope::ScopeName;
use crate::sync::EntryArc;
use crate::MediaRef;

/// See the module doc.
///
/// `repr(C)` to keep what a resolve touches (the `Arc` count before it, the
/// id the map compares, the record that holds the path) in the entry's first
/// 32 bytes, one cache line in three cases out of four; left to itself the
/// compiler puts the 16-byte id, whose alignment is 1, last.
#[repr(C)]
pub(crate) struct RefEntry {
    pub(crate) id: MediaRef,
    /// `Some` for the whole life of a shared entry; taken only when the entry
    /// is dropped or unwrapped.
    file: Option<FileArc>,
    meta: PackedMeta,
    pub(crate) scope: ScopeName,
    /// Clock reading at store time, in nanoseconds.
    pub(crate) stored_at: u64,
    /// The TTL lane holding this ref's slot.
    pub(crate) lane: u16,
    /// The metadata's policy, content type tag and part ends (see
    /// [`PackedMeta`]).
    tags: MetaTags,
    /// Fault injection only: the count was released early.
    #[cfg(loom)]
    count_taken: std::sync::atomic::AtomicBool,
}

impl RefEntry {
    /// Wraps a pinned record; the pin becomes this entry's count.
    pub(crate) fn new(
        id: MediaRef,
        stored_at: u64,
        scope: ScopeName,
        lane: u16,
        meta: MediaMeta,
        file: FileArc,
    ) -> Self {
        let (meta, tags) = PackedMeta::new(meta);
        Self {
            id,
            stored_at,
            scope,
            lane,
            meta,
            tags,
            file: Some(file),
            #[cfg(loom)]
            count_taken: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Fault injection only: hands out the path count while the entry may
    /// still be shared (see `Fault::ReleaseIgnoringLeases`).
    #[cfg(loom)]
    pub(crate) fn take_count_forcibly(&self) -> Option<FileArc> {
        use std::sync::atomic::Ordering::Relaxed;
        match (&self.file, self.count_taken.swap(true, Relaxed)) {
            (Some(f), false) => Some(f.clone()),
            _ => None,
        }
    }

    /// Hands back the count on the path without releasing it (the caller
    /// releases it in the right place: on the deleter thread).
    pub(crate) fn into_file(mut entry: Self) -> Option<FileArc> {
        entry.file.take()
    }

    /// The metadata, as a lease lends it.
    #[inline]
    pub(crate) fn meta(&self) -> MediaMetaView<'_> {
        self.meta.view(self.tags)
    }

    /// The path (inline in the record: reading it touches the entry and the
    /// record, as many objects as a separate path string would).
    #[inline]
    pub(crate) fn path(&self) -> &Path {
        // `file` is `Some` for as long as anyone can reach the entry.
        self.file.as_ref().map_or(Path::new(""), |f| f.path())
    }

    /// The path's record, for teardown.
    pub(crate) fn file(&self) -> Option<&FileArc> {
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

/// A ref-map key that is the entry: it hashes, compares and borrows as the
/// entry's id, so the map is looked up by [`MediaRef`] and holds one pointer
/// per ref (no value).
pub(crate) struct EntryKey(pub(crate) EntryArc<RefEntry>);

impl Borrow<MediaRef> for EntryKey {
    #[inline]
    fn borrow(&self) -> &MediaRef {
        &self.0.id
    }
}

impl Hash for EntryKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Exactly as `MediaRef` hashes: required by `Borrow`.
        self.0.id.hash(state)
    }
}

impl PartialEq for EntryKey {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for EntryKey {}

impl PartialOrd for EntryKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntryKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Layout guard for the per-ref memory budget (README, W6): one
    /// pointer per map slot, the record and the scope name behind thin
    /// pointers, the entry within 64 bytes, the path record's fixed part
    /// within 16.
    #[test]
    fn ref_layout_stays_compact() {
        use std::mem::size_of;
        assert_eq!(size_of::<EntryKey>(), 8);
        assert_eq!(size_of::<crate::files::PathKey>(), 8);
        assert_eq!(size_of::<Option<FileArc>>(), 8);
        assert!(size_of::<RefEntry>() <= 64, "{}", size_of::<RefEntry>());
        #[cfg(unix)]
        assert!(
            size_of::<crate::file::FileRec>() <= 16,
            "{}",
            size_of::<crate::file::FileRec>()
        );
    }
}
