//! Async twins for tokio callers (feature `tokio`).
//!
//! Invariant: anything that may block (the `lstat` in `store`, waiting for
//! the deleter in `flush` and `shutdown`) runs on tokio's blocking pool
//! through `spawn_blocking`, never on a runtime worker thread. `resolve`,
//! `release_all` and `clean_expired` never block and need no twin.
//! Network I/O of the S3 backend is awaited on the caller's runtime
//! (`save_async`); a remote resolve goes through the blocking pool so that
//! it keeps the one-fetch-per-id gate of [`MediaStore::resolve_remote`].

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::{
    MediaLease, MediaMeta, MediaRef, MediaStore, ResolveError, SaveError, ShutdownReport,
    StoreError,
};

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

    /// [`MediaStore::save`] without blocking the runtime: with the S3
    /// backend the uploads are awaited here, on the caller's runtime; other
    /// backends run on the blocking pool.
    ///
    /// # Errors
    /// As [`MediaStore::save`].
    ///
    /// ```
    /// use mediastore::backend::FsBackend;
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let src = dir.path().join("in.bin");
    /// # std::fs::write(&src, b"x")?;
    /// # let rt = tokio::runtime::Runtime::new()?;
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path().join("tmp"))
    ///     .backend(FsBackend::new(dir.path().join("media"))?)
    ///     .build()?;
    /// let r = rt.block_on(store.save_async(&src, MediaMeta::default(), "s"))?;
    /// assert!(rt.block_on(store.resolve_async(&r)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn save_async(
        &self,
        src: impl Into<PathBuf>,
        meta: MediaMeta,
        scope: impl Into<String>,
    ) -> Result<MediaRef, SaveError> {
        let (src, scope) = (src.into(), scope.into());
        #[cfg(feature = "s3")]
        if let Some(s3) = self.owned()?.s3.clone() {
            let name = crate::owned::source_name(&meta, &src);
            let mut rec = self.new_record(&meta, &scope, &name);
            let local = s3.save_file_async(&mut rec, &src).await?;
            return self.register_saved(self.owned()?, rec, local);
        }
        let store = self.clone();
        match tokio::task::spawn_blocking(move || store.save(&src, meta, &scope)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(SaveError::Backend(crate::backend::BackendError::Io {
                op: "save",
                path: PathBuf::new(),
                source: io::Error::new(io::ErrorKind::Interrupted, "the save task was cancelled"),
            })),
        }
    }

    /// [`MediaStore::resolve`] without blocking the runtime: a ref in
    /// memory resolves at once; a remote resolve (shared backend) runs on
    /// the blocking pool.
    ///
    /// # Errors
    /// As [`MediaStore::resolve`].
    pub async fn resolve_async(&self, r: &MediaRef) -> Result<MediaLease, ResolveError> {
        let shared_backend = self.shared().backend.as_ref().is_some_and(|b| b.shared);
        match self
            .shared()
            .refs
            .get_key_with(r, |e| MediaLease::new(crate::sync::EntryArc::clone(&e.0)))
        {
            Some(lease) => Ok(lease),
            None if !shared_backend => Err(ResolveError::UnknownRef(*r)),
            None => {
                let (store, id) = (self.clone(), *r);
                match tokio::task::spawn_blocking(move || store.resolve_remote(&id)).await {
                    Ok(result) => result,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => Err(ResolveError::UnknownRef(*r)),
                }
            }
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
