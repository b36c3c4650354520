//! Async twins for tokio callers (feature `tokio`).
//!
//! Invariant: anything that may block (the `lstat` in `store`, waiting for
//! the deleter in `flush` and `shutdown`) runs on tokio's blocking pool
//! through `spawn_blocking`, never on a runtime worker thread. `resolve`,
//! `release_all` and `clean_expired` never block and need no twin.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::{MediaMeta, MediaRef, MediaStore, ShutdownReport, StoreError};

impl MediaStore {
    /// [`MediaStore::store`] without blocking the runtime: the `lstat` runs
    /// on tokio's blocking pool.
    ///
    /// # Errors
    /// As [`MediaStore::store`]; if the runtime is shutting down and the
    /// task is cancelled, [`StoreError::Io`] with kind `Interrupted`.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// rt.block_on(async {
    ///     let r = store.store_async(&path, MediaMeta::default(), "s").await?;
    ///     assert!(store.resolve(&r).is_ok());
    ///     store.release_all("s");
    ///     store.flush_async().await;
    ///     Ok::<(), mediastore::StoreError>(())
    /// })?;
    /// assert!(!path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn store_async(
        &self,
        path: impl Into<PathBuf>,
        meta: MediaMeta,
        scope: impl Into<String>,
    ) -> Result<MediaRef, StoreError> {
        let (store, path, scope) = (self.clone(), path.into(), scope.into());
        let cancelled_path = path.clone();
        match tokio::task::spawn_blocking(move || store.store(&path, meta, &scope)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Io {
                path: cancelled_path,
                source: io::Error::new(io::ErrorKind::Interrupted, "the store task was cancelled"),
            }),
        }
    }

    /// [`MediaStore::flush`] without blocking the runtime.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// let store = MediaStore::new();
    /// rt.block_on(store.flush_async());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn flush_async(&self) {
        let store = self.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || store.flush()).await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }

    /// [`MediaStore::shutdown`] without blocking the runtime.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # use std::time::Duration;
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// let store = MediaStore::new();
    /// let report = rt.block_on(store.shutdown_async(Duration::from_secs(5)));
    /// assert!(report.completed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn shutdown_async(&self, deadline: Duration) -> ShutdownReport {
        let store = self.clone();
        match tokio::task::spawn_blocking(move || store.shutdown(deadline)).await {
            Ok(report) => report,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled with the runtime: shut down here instead.
            Err(_) => self.shutdown(deadline),
        }
    }
}
