//! Typed errors, one enum per family of operations.
//!
//! Every error names what it is about (the path, the ref, the field) and,
//! where the OS said no, carries the `io::Error` as its `source()`.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::MediaRef;

/// Why [`MediaStore::store`](crate::MediaStore::store) refused a file. A
/// failed `store` changes nothing.
///
/// ```
/// use mediastore::{MediaMeta, MediaStore, StoreError};
/// # let dir = tempfile::tempdir()?;
///
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// let missing = dir.path().join("no-such-file");
/// let err = store.store(&missing, MediaMeta::default(), "s").unwrap_err();
/// assert!(matches!(err, StoreError::NotFound { .. }));
/// assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file does not exist.
    #[error("media file {path:?} does not exist")]
    NotFound {
        /// The absolute path that was looked at.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The file could not be inspected (permission denied, I/O error...).
    #[error("media file {path:?} cannot be inspected: {source}")]
    Io {
        /// The absolute path that was looked at.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The path names a directory, socket, fifo or device, not a file.
    #[error("{path:?} is not a regular file or a symlink")]
    NotAFile {
        /// The absolute path that was looked at.
        path: PathBuf,
    },
    /// The path is empty, holds a NUL byte, or cannot be made absolute.
    #[error("invalid media path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `DeleteOnCleanup` file outside every managed root: the store only
    /// deletes what lies beneath a root it was given.
    #[error("{path:?} is outside every managed root; store it ForgetOnly or move it into a managed root")]
    OutsideManagedRoots {
        /// The absolute path.
        path: PathBuf,
    },
    /// One path already has over a hundred million live refs and leases.
    #[error("too many refs to {path:?}")]
    TooManyRefs {
        /// The absolute path.
        path: PathBuf,
    },
    /// A saved registration (from a shared backend) names the nil id, which
    /// no ref ever has; the registration is not restored.
    #[error("the nil id cannot name a media ref")]
    NilRef,
}

impl StoreError {
    /// The `io::ErrorKind` behind this error, if the OS was involved.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// let store = MediaStore::new();
    /// let err = store.store("", MediaMeta::default(), "s").unwrap_err();
    /// assert_eq!(err.io_kind(), None);
    /// ```
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            StoreError::NotFound { source, .. } | StoreError::Io { source, .. } => {
                Some(source.kind())
            }
            _ => None,
        }
    }
}

/// Why [`MediaStore::resolve`](crate::MediaStore::resolve) found nothing.
///
/// ```
/// use mediastore::{MediaStore, ResolveError};
///
/// let store = MediaStore::new();
/// let err = store.resolve_str("media://00000000-0000-4000-8000-000000000000").unwrap_err();
/// assert!(matches!(err, ResolveError::UnknownRef(_)));
/// assert!(matches!(store.resolve_str("http://x").unwrap_err(), ResolveError::Parse(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The ref was never stored here, or was released or expired.
    #[error("unknown media ref {0}")]
    UnknownRef(MediaRef),
    /// The text is not a media ref.
    #[error(transparent)]
    Parse(#[from] ParseRefError),
    /// A shared backend could not be asked about a ref that is not in
    /// memory, or its bytes could not be fetched or opened.
    #[error("media ref {id}: {source}")]
    Backend {
        /// The ref.
        id: MediaRef,
        /// What went wrong.
        #[source]
        source: crate::backend::BackendError,
    },
}

/// Why [`MediaStore::save`](crate::MediaStore::save) or
/// [`MediaStore::save_reader`](crate::MediaStore::save_reader) failed.
/// Nothing is left behind: no ref, no object, and the source file of a
/// `save` is still where it was.
///
/// ```
/// use mediastore::{MediaMeta, MediaStore, SaveError};
/// # let dir = tempfile::tempdir()?;
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// let err = store.save(dir.path().join("x"), MediaMeta::default(), "s").unwrap_err();
/// assert!(matches!(err, SaveError::NoBackend));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The store was built without a backend.
    #[error("this store has no backend; build it with .backend(...) or .backend_config(...)")]
    NoBackend,
    /// The backend refused (the source is missing, the disk is full, the
    /// object store is unreachable...).
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// The saved object could not be registered (it was deleted again).
    #[error(transparent)]
    Register(#[from] StoreError),
}

/// Why a text is not a [`MediaRef`]. The input is quoted up to 64 bytes.
///
/// ```
/// use mediastore::{MediaRef, ParseRefError};
///
/// let err = "file:///tmp/x".parse::<MediaRef>().unwrap_err();
/// assert!(matches!(err, ParseRefError::MissingPrefix { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseRefError {
    /// The text does not start with `media://`.
    #[error("not a media ref (expected \"media://<uuid>\"): {input:?}")]
    MissingPrefix {
        /// The start of the input.
        input: String,
    },
    /// What follows `media://` is not a lower-case hyphenated UUID.
    #[error("media ref with an invalid uuid: {input:?}")]
    InvalidUuid {
        /// The start of the input.
        input: String,
    },
}

impl ParseRefError {
    /// The first 64 bytes of `s` (cut at a char boundary), so that a hostile
    /// megabyte-long "ref" does not end up whole in logs.
    pub(crate) fn excerpt(s: &str) -> String {
        let mut end = s.len().min(64);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    }
}

/// A configuration that cannot work. Returned by the builder and by
/// [`MediaStore::set_cleanup`](crate::MediaStore::set_cleanup); a wrong
/// setting is never silently turned into "cleanup off".
///
/// ```
/// use mediastore::{CleanupConfig, ConfigError, MediaStore};
/// use std::time::Duration;
///
/// let err = MediaStore::builder().max_age(Duration::ZERO).build().unwrap_err();
/// assert!(matches!(err, ConfigError::ZeroMaxAge));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_age` is zero.
    #[error("cleanup max_age must be greater than zero (switch cleanup off with enabled = false)")]
    ZeroMaxAge,
    /// `sweep_interval` is zero.
    #[error(
        "cleanup sweep_interval must be greater than zero (switch cleanup off with enabled = false)"
    )]
    ZeroSweepInterval,
    /// A duration is too large to be represented in nanoseconds.
    #[error("cleanup {field} of {value:?} is too large")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// The value given.
        value: Duration,
    },
    /// A setting read from the outside (environment, config file) is not
    /// valid.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The field or variable.
        field: &'static str,
        /// The value given (at most 64 bytes of it).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `deletion_retries` with zero attempts.
    #[error("deletion attempts must be at least 1")]
    ZeroAttempts,
    /// A managed root is not a usable directory.
    #[error("managed root {path:?}: {source}")]
    Root {
        /// The root.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The backend could not be built or re-indexed.
    #[error("media backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
    /// A background thread could not be started.
    #[error("cannot start the {thread} thread: {source}")]
    Spawn {
        /// Which thread.
        thread: &'static str,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}
