//! [`MediaLease`]: what `resolve` hands out, and what keeps a file alive.
//!
//! Invariant: while a lease lives, its file is not deleted, whatever happens
//! to its ref (release, expiry, store teardown). A lease is a clone of the
//! ref's shared entry, so taking one allocates nothing and does no I/O.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::entry::RefEntry;
use crate::meta::MediaMetaView;
use crate::sync::EntryArc;
use crate::MediaRef;

/// A pin on a resolved file: its path, metadata and ref.
///
/// Dropping the last lease of a released or expired ref lets its file be
/// deleted (on the deleter thread). Clones are further leases.
///
/// ```
/// use mediastore::{MediaMeta, MediaStore};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.jpg");
/// # std::fs::write(&path, b"x")?;
///
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// let r = store.store(&path, MediaMeta::default(), "msg-1")?;
/// let lease = store.resolve(&r)?;
/// store.release_all("msg-1");
/// store.flush();
/// assert!(lease.path().exists()); // pinned by the lease
/// drop(lease);
/// store.flush();
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MediaLease {
    entry: EntryArc<RefEntry>,
}

impl MediaLease {
    pub(crate) fn new(entry: EntryArc<RefEntry>) -> Self {
        Self { entry }
    }

    /// The file's absolute path.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.jpg");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let r = store.store(&path, MediaMeta::default(), "s")?;
    /// assert_eq!(store.resolve(&r)?.path(), path);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        self.entry.path()
    }

    /// The metadata given to `store`.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.jpg");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let meta = MediaMeta { filename: "a.jpg".into(), ..MediaMeta::default() };
    /// let r = store.store(&path, meta.clone(), "s")?;
    /// assert_eq!(store.resolve(&r)?.meta(), meta);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn meta(&self) -> MediaMetaView<'_> {
        self.entry.meta()
    }

    /// The ref this lease was resolved from.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.jpg");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let r = store.store(&path, MediaMeta::default(), "s")?;
    /// assert_eq!(store.resolve(&r)?.media_ref(), r);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn media_ref(&self) -> MediaRef {
        self.entry.id
    }

    /// The scope the ref was stored under.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.jpg");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let r = store.store(&path, MediaMeta::default(), "telegram:42:7")?;
    /// assert_eq!(store.resolve(&r)?.scope(), "telegram:42:7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope(&self) -> &str {
        self.entry.scope.as_str()
    }

    /// When the ref was stored, on the store's clock.
    ///
    /// ```
    /// # use mediastore::{ManualClock, MediaMeta, MediaStore};
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.jpg");
    /// # std::fs::write(&path, b"x")?;
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_secs(5));
    /// let store = MediaStore::builder().managed_root(dir.path()).clock(clock).build()?;
    /// let r = store.store(&path, MediaMeta::default(), "s")?;
    /// assert_eq!(store.resolve(&r)?.stored_at(), Duration::from_secs(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stored_at(&self) -> Duration {
        // Before the clock's origin (a ref saved in an earlier run): zero.
        Duration::from_nanos(
            self.entry
                .stored_at
                .saturating_sub(crate::store::CLOCK_BIAS),
        )
    }
}

impl fmt::Debug for MediaLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaLease")
            .field("ref", &self.entry.id)
            .field("path", &self.path())
            .field("scope", &self.entry.scope)
            .finish()
    }
}
