//! Owned media: backends that keep the bytes, so that refs outlive the
//! process ([`FsBackend`]) or span replicas (`S3Backend`, feature `s3`).
//!
//! A store built with a backend gets [`MediaStore::save`] and
//! [`MediaStore::save_reader`]: the bytes move into the backend and the
//! store registers the backend's *local path* (the payload file, or the
//! cached copy of a remote object) as an ordinary `DeleteOnCleanup` ref.
//! From there the lifecycle is the core one: leases pin the local file,
//! release and TTL remove the ref, and the deleter thread deletes the local
//! file once nobody holds it, then calls [`Backend::forget_local`], which
//! removes the rest of the object (sidecar, or remote payload and manifest).
//!
//! Invariants:
//!
//! * Every local path a backend hands out lies beneath its
//!   [`Backend::local_root`], which the store manages (deletes through) but
//!   never sweeps for orphans: the backend cleans its own root.
//! * A ref is registered only after the object is complete in the backend
//!   (payload and record), so a ref that resolves always has its bytes.
//! * Ids are the store's refs: the object of `media://<uuid>` is `<uuid>`.
//!
//! [`MediaStore::save`]: crate::MediaStore::save
//! [`MediaStore::save_reader`]: crate::MediaStore::save_reader

use std::collections::HashSet;
use std::fmt::Debug;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

mod config;
mod ext;
mod fs;
mod record;
#[cfg(feature = "s3")]
mod s3;

pub use config::{BackendConfig, S3Config, ENV_BACKEND, ENV_BASEDIR};
#[cfg(feature = "s3")]
pub use config::{ENV_S3_BUCKET, ENV_S3_CACHE_DIR, ENV_S3_ENDPOINT, ENV_S3_PREFIX, ENV_S3_REGION};
pub use ext::extension_for;
pub use fs::FsBackend;
pub use record::{scope_hash, ObjectRecord};
#[cfg(feature = "s3")]
pub use s3::S3Backend;

use crate::MediaRef;

/// Why a backend operation failed. Not-found is its own variant.
///
/// ```
/// use mediastore::backend::BackendError;
/// let e = BackendError::NotFound { id: "media://x".into() };
/// assert!(e.is_not_found());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No such object (never saved, deleted, or released elsewhere).
    #[error("media object {id} not found")]
    NotFound {
        /// The ref or key that was looked for.
        id: String,
    },
    /// A local file operation failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A remote call failed (after the client's own retries).
    #[error("object store {op} {key:?}: {source}")]
    Remote {
        /// What was being done.
        op: &'static str,
        /// The object key.
        key: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A sidecar or manifest that cannot be read.
    #[error("corrupt record {key:?}: {reason}")]
    Corrupt {
        /// Where it was found.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Bad backend settings.
    #[error("backend settings: {0}")]
    Config(String),
}

impl BackendError {
    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    pub(crate) fn at(self, where_: &Path) -> Self {
        match self {
            Self::Corrupt { reason, .. } => Self::Corrupt {
                key: where_.display().to_string(),
                reason,
            },
            e => e,
        }
    }
}

/// The lock file a backend keeps in its folder (never a payload name:
/// payloads start with a hex digit).
pub(crate) const LOCK_FILE: &str = ".lock";

/// An exclusive `flock` on `{dir}/.lock`, held while a backend lives, so
/// that two stores never share a folder (the second would re-index or
/// empty files the first one's leases still use). Released when dropped,
/// or by the OS when the process dies.
#[derive(Debug)]
pub(crate) struct FolderLock {
    #[cfg(unix)]
    _fd: rustix::fd::OwnedFd,
}

impl FolderLock {
    /// Takes the lock on `dir` (which must exist), or says who has it.
    pub(crate) fn take(dir: &Path, what: &str) -> Result<Self, BackendError> {
        #[cfg(unix)]
        {
            use rustix::fs::{flock, open, FlockOperation, Mode, OFlags};
            let path = dir.join(LOCK_FILE);
            let io = |source: io::Error| BackendError::Io {
                op: "lock the backend folder",
                path: path.clone(),
                source,
            };
            let fd = open(
                &path,
                OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| io(e.into()))?;
            match flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => Ok(Self { _fd: fd }),
                Err(rustix::io::Errno::WOULDBLOCK) => Err(BackendError::Config(format!(
                    "the {what} {} is in use by another store; give each store its own",
                    dir.display()
                ))),
                Err(e) => Err(io(e.into())),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = (dir, what);
            Ok(Self {})
        }
    }
}

/// What one backend sweep did (see [`Backend::sweep`]).
///
/// ```
/// let r = mediastore::backend::SweepReport::default();
/// assert_eq!(r.expired + r.orphans + r.errors, 0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Objects deleted because their TTL passed.
    pub expired: u64,
    /// Payloads without a manifest (or manifests without a payload) older
    /// than the grace period, deleted.
    pub orphans: u64,
    /// Keys whose deletion failed (kept for a retry).
    pub errors: u64,
    /// Whether the sweep stopped at its deadline before the end.
    pub timed_out: bool,
    /// Ids with a manifest, as listed (`None` if the listing was cut short).
    pub live: Option<HashSet<MediaRef>>,
}

/// Where a store keeps owned media. Implementations must be cheap to call
/// from any thread; the store calls the deleting methods only from its
/// deleter thread.
///
/// ```
/// use mediastore::backend::{Backend, FsBackend};
/// use std::sync::Arc;
/// # let dir = tempfile::tempdir()?;
/// let b: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path())?);
/// assert!(b.lookup(mediastore::MediaRef::from_uuid(uuid::Uuid::nil())).unwrap_err().is_not_found());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Backend: Send + Sync + Debug + 'static {
    /// The folder beneath which every local path of this backend lies.
    fn local_root(&self) -> &Path;

    /// Whether other store instances see the same objects: then a ref that
    /// is not in memory is looked up here, a release deletes the whole
    /// scope here, and the sweeper reconciles.
    fn is_shared(&self) -> bool;

    /// Moves (or uploads) the file at `src` into the backend as `rec`
    /// (filling in `rec.size`) and returns its local path. `src` is consumed
    /// on success and left in place on failure.
    fn save_file(&self, rec: &mut ObjectRecord, src: &Path) -> Result<PathBuf, BackendError>;

    /// Writes the bytes of `src` into the backend as `rec` (filling in
    /// `rec.size`) and returns its local path. Nothing partial is left on
    /// failure.
    fn save_reader(
        &self,
        rec: &mut ObjectRecord,
        src: &mut dyn Read,
    ) -> Result<PathBuf, BackendError>;

    /// The record of an object.
    fn lookup(&self, id: MediaRef) -> Result<ObjectRecord, BackendError>;

    /// A local file holding the object's bytes (a remote backend downloads
    /// it into its cache first).
    fn local_path(&self, rec: &ObjectRecord) -> Result<PathBuf, BackendError>;

    /// The object's bytes as a stream.
    fn open(&self, id: MediaRef) -> Result<Box<dyn Read + Send>, BackendError>;

    /// Deletes one object (payload and record); a missing one is success.
    fn delete_object(&self, rec: &ObjectRecord) -> Result<(), BackendError>;

    /// Deletes every object saved under `scope`; returns how many payloads.
    fn delete_scope(&self, scope: &str) -> Result<u64, BackendError>;

    /// Every complete object with the local path it would have; leftovers of
    /// a crash (partial files, records without payload) are removed on the
    /// way. A remote backend lists nothing: its objects are found on demand.
    fn list(&self) -> Result<Vec<(ObjectRecord, PathBuf)>, BackendError>;

    /// Called on the deleter thread after the store deleted the local file
    /// `path` at the end of its ref's life: removes what else belongs to the
    /// object (a sidecar; the remote payload and manifest).
    fn forget_local(&self, path: &Path);

    /// Carries out deferred work (batched or failed remote deletions);
    /// with `force`, retries every failed deletion now instead of on its
    /// backoff schedule (a `flush`). Returns how soon it wants to be called
    /// again. Deleter thread only.
    fn settle(&self, force: bool) -> Option<Duration> {
        let _ = force;
        None
    }

    /// Remote deletions waiting for a retry.
    fn pending_deletions(&self) -> u64 {
        0
    }

    /// Expires objects older than `max_age` at `now` and reclaims crash
    /// leftovers older than `grace`, within `deadline`. Deleter thread only.
    fn sweep(
        &self,
        now: SystemTime,
        max_age: Duration,
        grace: Duration,
        deadline: Duration,
    ) -> Result<SweepReport, BackendError> {
        let _ = (now, max_age, grace, deadline);
        Ok(SweepReport::default())
    }
}
