//! Reports the store hands back: failed deletions and the outcome of a
//! shutdown.

use std::io;
use std::path::PathBuf;

/// A deletion that failed every attempt and is kept for the user to look
/// at and retry ([`MediaStore::retry_failed`](crate::MediaStore::retry_failed)).
///
/// ```
/// # use mediastore::MediaStore;
/// # let dir = tempfile::tempdir()?;
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// assert!(store.failed_deletions().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedDeletion {
    /// The file.
    pub path: PathBuf,
    /// Attempts made.
    pub attempts: u32,
    /// The kind of the last error.
    pub kind: io::ErrorKind,
    /// The last error, as text.
    pub message: String,
}

/// What [`MediaStore::shutdown`](crate::MediaStore::shutdown) did and what
/// it left.
///
/// ```
/// # use mediastore::MediaStore;
/// # use std::time::Duration;
/// # let dir = tempfile::tempdir()?;
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// let report = store.shutdown(Duration::from_secs(5));
/// assert!(report.completed);
/// assert_eq!(report.refs_released, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Refs released by the shutdown.
    pub refs_released: usize,
    /// Whether the deleter finished every queued deletion before the
    /// deadline.
    pub completed: bool,
    /// Refs and files still queued for the deleter (0 if `completed`).
    pub pending_deletions: u64,
    /// Paths the store still tracks: held by leases (deleted when the last
    /// one drops) or whose deletion failed.
    pub paths_still_held: u64,
    /// Deletions that failed every attempt (see
    /// [`MediaStore::failed_deletions`](crate::MediaStore::failed_deletions)).
    pub failed_deletions: u64,
}
