//! [`Stats`]: a snapshot of the store's counters.

/// Counters of a store, read with [`MediaStore::stats`](crate::MediaStore::stats).
/// Each field is read on its own (no cross-field snapshot).
///
/// ```
/// use mediastore::MediaStore;
/// let s = MediaStore::new().stats();
/// assert_eq!((s.live_refs, s.scopes, s.files_deleted), (0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Refs that resolve now.
    pub live_refs: u64,
    /// Scopes with at least one live ref.
    pub scopes: u64,
    /// Refs and files handed to the deleter thread and not yet processed.
    pub pending_deletions: u64,
    /// Files unlinked.
    pub files_deleted: u64,
    /// Deletions that found the file already gone (not an error).
    pub files_already_gone: u64,
    /// Failed unlink attempts (permission denied, busy...), retries included.
    pub deletion_errors: u64,
    /// Deletions waiting for a retry.
    pub deletion_retries_pending: u64,
    /// Deletions that failed every attempt (see
    /// [`MediaStore::failed_deletions`](crate::MediaStore::failed_deletions)).
    pub deletions_failed: u64,
    /// Files removed by orphan sweeps.
    pub orphans_deleted: u64,
    /// Refs released by `release_all`.
    pub refs_released: u64,
    /// Refs expired by TTL sweeps.
    pub refs_expired: u64,
}
