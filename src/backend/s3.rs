//! `S3Backend`: objects in an S3-compatible bucket (S3, MinIO, R2, Garage,
//! s3s-fs...) through `object_store`, with a local cache of payloads.
//!
//! Keys: payload `{prefix}/{scope_hash}/{uuid}{ext}`, manifest
//! `{prefix}/_manifests/{uuid}` (the record's text form). Scope hashes are
//! 32 hex digits, so `_manifests` can never be a scope's prefix.
//!
//! Invariants:
//!
//! * A save uploads the payload, then the manifest; a ref exists only once
//!   both are written. A crash in between leaves a payload without a
//!   manifest, which a sweep reclaims once it is older than the grace
//!   period; a failed manifest upload deletes the payload at once.
//! * Cached copies live at `{cache}/{scope_hash}/{uuid}{ext}` and appear
//!   only complete (download into `.{uuid}.part`, then rename). They are
//!   not synced to disk: the cache does not survive a restart anyway. A
//!   store holds an exclusive lock on its cache folder, so a second store
//!   pointed at the same folder is refused rather than allowed to empty it. The cache
//!   folder belongs to one store instance and is emptied when the backend is
//!   built; after that the store deletes cached copies like any owned file.
//! * Remote deletions never get lost: keys whose deletion failed (a request
//!   error, or a per-key error in a batch response) are kept and retried
//!   with backoff by `settle` on the deleter thread, and counted in
//!   `pending_deletions` until they succeed.
//! * Batches hold at most 1 000 keys (S3's limit for DeleteObjects); each
//!   batch is one `object_store` bulk delete, whose per-key results are read.
//! * Network calls run on a private multi-thread runtime; a sync caller
//!   waits on a channel (inside a caller's multi-thread runtime through
//!   `block_in_place`), never with `block_on`, so no call panics inside a
//!   runtime. The async twins run on the caller's runtime.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::future::Future;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};

use super::{scope_hash, Backend, BackendError, ObjectRecord, S3Config, SweepReport};
use crate::MediaRef;

/// Bodies up to this size go in one PUT; larger ones as a multipart upload
/// with parts of this size.
const PART: usize = 8 << 20;
/// S3's limit of keys per DeleteObjects request.
pub(crate) const DELETE_BATCH: usize = 1000;
/// The most a manifest may weigh.
const MANIFEST_MAX: usize = 16 << 10;

/// The object-store backend (see the module doc).
///
/// ```no_run
/// use mediastore::backend::{S3Backend, S3Config};
/// use mediastore::MediaStore;
/// // Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the chain.
/// let s3 = S3Backend::new(
///     S3Config::new("media").endpoint("http://127.0.0.1:9000").prefix("gw"),
/// )?;
/// let store = MediaStore::builder().backend(s3).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct S3Backend {
    cfg: S3Config,
    store: Arc<dyn ObjectStore>,
    /// The private runtime; `None` only while dropping (see `Drop`).
    rt: Option<tokio::runtime::Runtime>,
    cache: PathBuf,
    /// An exclusive `flock` on `{cache}/.lock`, held for the backend's life:
    /// a second store on the same cache folder is refused instead of
    /// emptying files the first one's leases still use.
    _lock: super::FolderLock,
    /// Keys to delete at the next `settle` (objects whose cached copy the
    /// store just deleted). A plain mutex: pushed by the deleter thread (or
    /// a closed store's releasing thread) and drained by `settle`, each hold
    /// a push or a swap, never across I/O.
    queued: Mutex<Vec<String>>,
    /// Keys whose deletion failed: key → (attempts, next attempt). A plain
    /// mutex, held only to insert, pick due keys or count, never across I/O.
    failed: Mutex<HashMap<String, (u32, Instant)>>,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("bucket", &self.cfg.bucket)
            .field("prefix", &self.cfg.prefix)
            .field("endpoint", &self.cfg.endpoint)
            .finish_non_exhaustive()
    }
}

fn remote(op: &'static str, key: impl Into<String>, e: object_store::Error) -> BackendError {
    match e {
        object_store::Error::NotFound { .. } => BackendError::NotFound { id: key.into() },
        e => BackendError::Remote {
            op,
            key: key.into(),
            source: Box::new(e),
        },
    }
}

fn local(op: &'static str, path: &Path, source: io::Error) -> BackendError {
    BackendError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl S3Backend {
    /// Connects (lazily: no request is made here) and empties the cache.
    ///
    /// ```
    /// use mediastore::backend::{Backend, S3Backend, S3Config};
    /// # let dir = tempfile::tempdir()?;
    /// let s3 = S3Backend::new(
    ///     S3Config::new("media").endpoint("http://127.0.0.1:9000").cache_dir(dir.path()),
    /// )?;
    /// assert!(s3.is_shared());
    /// assert!(S3Backend::new(S3Config::new(" ")).is_err()); // no bucket
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`BackendError::Config`] for an empty bucket or settings the client
    /// refuses; [`BackendError::Io`] if the cache folder cannot be set up.
    pub fn new(cfg: S3Config) -> Result<Self, BackendError> {
        if cfg.bucket.trim().is_empty() {
            return Err(BackendError::Config("the S3 bucket is empty".into()));
        }
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: cfg.max_retries,
                retry_timeout: cfg.request_timeout,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(cfg.request_timeout)
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_allow_http(cfg.endpoint.is_some()),
            );
        if let Some(ep) = &cfg.endpoint {
            b = b
                .with_endpoint(ep)
                .with_allow_http(true)
                .with_virtual_hosted_style_request(false);
        }
        let store = b
            .build()
            .map_err(|e| BackendError::Config(format!("S3 client: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mediastore-s3")
            .enable_all()
            .build()
            .map_err(|e| local("start the S3 runtime", Path::new(""), e))?;
        let cache = crate::store::absolute(&cfg.cache_dir)
            .map_err(|r| BackendError::Config(format!("cache dir: {r}")))?
            .into_owned();
        fs::create_dir_all(&cache).map_err(|e| local("create the cache", &cache, e))?;
        let lock = super::FolderLock::take(&cache, "cache folder")?;
        // The lock is ours, so no live store uses this cache: whatever an
        // earlier run left is stale.
        for entry in fs::read_dir(&cache)
            .map_err(|e| local("empty the cache", &cache, e))?
            .flatten()
        {
            if entry.file_name() == super::LOCK_FILE {
                continue;
            }
            let p = entry.path();
            let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            gone.map_err(|e| local("empty the cache", &p, e))?;
        }
        Ok(Self {
            cfg,
            store: Arc::new(store),
            rt: Some(rt),
            cache,
            queued: Mutex::default(),
            failed: Mutex::default(),
            _lock: lock,
        })
    }

    /// The settings it was built with.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use mediastore::backend::{S3Backend, S3Config};
    /// // Building makes no request: any endpoint will do here.
    /// let cfg = S3Config::new("media").endpoint("http://127.0.0.1:1").cache_dir(dir.path());
    /// let s3 = S3Backend::new(cfg.clone())?;
    /// assert_eq!(s3.config(), &cfg);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(&self) -> &S3Config {
        &self.cfg
    }

    fn qualify(&self, rel: &str) -> String {
        if self.cfg.prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.cfg.prefix)
        }
    }

    fn payload_key(&self, rec: &ObjectRecord) -> String {
        self.qualify(&rec.key())
    }

    fn manifest_key(&self, id: MediaRef) -> String {
        self.qualify(&format!("_manifests/{}", id.uuid().hyphenated()))
    }

    fn cached(&self, rec: &ObjectRecord) -> PathBuf {
        self.cache.join(rec.scope_hash()).join(rec.file_name())
    }

    /// Runs `f` on the private runtime and waits for it without blocking a
    /// caller's runtime worker in a way that could panic or deadlock.
    fn wait<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, BackendError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| BackendError::Config("the S3 runtime is shut down".into()))?;
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        let recv = move || rx.recv();
        let got = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(recv)
            }
            _ => recv(),
        };
        got.map_err(|_| BackendError::Config("the S3 runtime task failed".into()))
    }

    // ---- async core: every network call is one of these ----

    async fn put_bytes(
        store: Arc<dyn ObjectStore>,
        key: String,
        body: Bytes,
        content_type: String,
    ) -> Result<(), BackendError> {
        let opts = PutOptions {
            attributes: content_type_attr(content_type),
            ..PutOptions::default()
        };
        store
            .put_opts(&Key::from(key.as_str()), PutPayload::from(body), opts)
            .await
            .map(|_| ())
            .map_err(|e| remote("put", key, e))
    }

    /// Uploads a local file (one PUT, or multipart above `PART`).
    async fn upload_file(
        store: Arc<dyn ObjectStore>,
        key: String,
        path: PathBuf,
        content_type: String,
    ) -> Result<(), BackendError> {
        let size = fs::metadata(&path)
            .map_err(|e| local("read source", &path, e))?
            .len();
        if size <= PART as u64 {
            let body = fs::read(&path).map_err(|e| local("read source", &path, e))?;
            return Self::put_bytes(store, key, Bytes::from(body), content_type).await;
        }
        let k = Key::from(key.as_str());
        let upload = store
            .put_multipart_opts(&k, content_type_attr(content_type).into())
            .await
            .map_err(|e| remote("start multipart upload", key.clone(), e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut f = fs::File::open(&path).map_err(|e| local("read source", &path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(local("read source", &path, e));
                }
            };
            if let Err(e) = w.wait_for_capacity(4).await {
                let _ = w.abort().await;
                return Err(remote("upload part", key, e));
            }
            w.write(&buf[..n]);
        }
        w.finish()
            .await
            .map(|_| ())
            .map_err(|e| remote("finish multipart upload", key, e))
    }

    async fn get_manifest(
        store: Arc<dyn ObjectStore>,
        key: String,
    ) -> Result<ObjectRecord, BackendError> {
        let got = store
            .get(&Key::from(key.as_str()))
            .await
            .map_err(|e| remote("get manifest", key.clone(), e))?;
        if got.meta.size > MANIFEST_MAX as u64 {
            return Err(BackendError::Corrupt {
                key,
                reason: "manifest too large".into(),
            });
        }
        let body = got
            .bytes()
            .await
            .map_err(|e| remote("read manifest", key.clone(), e))?;
        let text = std::str::from_utf8(&body).map_err(|_| BackendError::Corrupt {
            key: key.clone(),
            reason: "not UTF-8".into(),
        })?;
        ObjectRecord::decode(text).map_err(|e| match e {
            BackendError::Corrupt { reason, .. } => BackendError::Corrupt { key, reason },
            e => e,
        })
    }

    /// Downloads `key` into `dst` through a temp file in the same folder.
    async fn download(
        store: Arc<dyn ObjectStore>,
        key: String,
        dst: PathBuf,
    ) -> Result<(), BackendError> {
        let dir = dst.parent().unwrap_or(Path::new("/")).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| local("create cache folder", &dir, e))?;
        let name = dst
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let part = dir.join(format!(".{name}.part"));
        let result = async {
            let got = store
                .get(&Key::from(key.as_str()))
                .await
                .map_err(|e| remote("get payload", key.clone(), e))?;
            let mut f = fs::File::create(&part).map_err(|e| local("write cache", &part, e))?;
            let mut body = got.into_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| remote("read payload", key.clone(), e))?;
                f.write_all(&chunk)
                    .map_err(|e| local("write cache", &part, e))?;
            }
            fs::rename(&part, &dst).map_err(|e| local("rename into cache", &dst, e))
        }
        .await;
        if result.is_err() {
            let _ = fs::remove_file(&part);
        }
        result
    }

    /// Deletes `keys` in batches of at most [`DELETE_BATCH`]; returns the
    /// keys that failed (request errors and per-key errors).
    async fn delete_keys(store: Arc<dyn ObjectStore>, keys: Vec<String>) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        for batch in keys.chunks(DELETE_BATCH) {
            let paths: Vec<object_store::Result<Key>> =
                batch.iter().map(|k| Ok(Key::from(k.as_str()))).collect();
            let results: Vec<_> = store
                .delete_stream(stream::iter(paths).boxed())
                .collect()
                .await;
            // One request per batch: either one result per key, in order,
            // or one request error for the whole batch.
            if results.len() == batch.len() {
                for (k, r) in batch.iter().zip(results) {
                    match r {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => failed.push((k.clone(), e.to_string())),
                    }
                }
            } else {
                let why = results
                    .into_iter()
                    .find_map(|r| r.err())
                    .map_or_else(|| "incomplete batch response".to_owned(), |e| e.to_string());
                failed.extend(batch.iter().map(|k| (k.clone(), why.clone())));
            }
        }
        failed
    }

    /// Lists every key under `prefix` with its modification time.
    async fn list_keys(
        store: Arc<dyn ObjectStore>,
        prefix: Option<String>,
    ) -> Result<Vec<(String, SystemTime)>, BackendError> {
        let p = prefix.as_deref().map(Key::from);
        let mut s = store.list(p.as_ref());
        let mut out = Vec::new();
        while let Some(m) = s.next().await {
            let m = m.map_err(|e| remote("list", prefix.clone().unwrap_or_default(), e))?;
            out.push((m.location.to_string(), SystemTime::from(m.last_modified)));
        }
        Ok(out)
    }

    fn note_failed(&self, failed: Vec<(String, String)>) {
        if failed.is_empty() {
            return;
        }
        tracing::warn!(
            keys = failed.len(),
            first_error = %failed[0].1,
            "mediastore: remote deletions failed; retrying"
        );
        let mut map = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        for (k, _) in failed {
            let e = map.entry(k).or_insert((0, Instant::now()));
            e.0 += 1;
            let backoff = Duration::from_millis(250u64 << e.0.min(8)).min(Duration::from_secs(60));
            e.1 = Instant::now() + backoff;
        }
    }

    fn delete_now(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let store = Arc::clone(&self.store);
        match self.wait(Self::delete_keys(store, keys.clone())) {
            Ok(failed) => self.note_failed(failed),
            Err(e) => self.note_failed(keys.into_iter().map(|k| (k, e.to_string())).collect()),
        }
    }

    /// Async twin of [`Backend::save_file`], on the caller's runtime
    /// (which needs its time and I/O drivers: `enable_all()`).
    ///
    /// # Errors
    /// As [`Backend::save_file`].
    ///
    /// ```no_run
    /// # async fn demo(s3: &mediastore::backend::S3Backend) -> Result<(), Box<dyn std::error::Error>> {
    /// use mediastore::backend::ObjectRecord;
    /// let mut rec = ObjectRecord {
    ///     id: mediastore::MediaRef::from_uuid(uuid::Uuid::new_v4()),
    ///     scope: "chat:1".into(),
    ///     ext: ".jpg".into(),
    ///     stored_at: std::time::SystemTime::now(),
    ///     size: 0,
    ///     meta: Default::default(),
    /// };
    /// let cached = s3.save_file_async(&mut rec, std::path::Path::new("/tmp/photo.jpg")).await?;
    /// # let _ = cached; Ok(()) }
    /// ```
    pub async fn save_file_async(
        &self,
        rec: &mut ObjectRecord,
        src: &Path,
    ) -> Result<PathBuf, BackendError> {
        rec.size = fs::metadata(src)
            .map_err(|e| local("read source", src, e))?
            .len();
        let store = Arc::clone(&self.store);
        Self::upload_file(
            store.clone(),
            self.payload_key(rec),
            src.to_path_buf(),
            rec.meta.content_type.clone(),
        )
        .await?;
        self.finish_save(
            rec,
            src,
            Self::put_bytes(
                store,
                self.manifest_key(rec.id),
                Bytes::from(rec.encode()),
                "text/plain".into(),
            )
            .await,
        )
    }

    /// Async twin of [`Backend::lookup`] + [`Backend::local_path`].
    ///
    /// # Errors
    /// As [`Backend::lookup`].
    ///
    /// ```no_run
    /// # async fn demo(s3: &mediastore::backend::S3Backend, r: mediastore::MediaRef) -> Result<(), Box<dyn std::error::Error>> {
    /// let (record, cached_copy) = s3.fetch_async(r).await?;
    /// println!("{} is at {}", record.key(), cached_copy.display());
    /// # Ok(()) }
    /// ```
    pub async fn fetch_async(&self, id: MediaRef) -> Result<(ObjectRecord, PathBuf), BackendError> {
        let rec = Self::get_manifest(Arc::clone(&self.store), self.manifest_key(id)).await?;
        let dst = self.cached(&rec);
        if !dst.exists() {
            Self::download(Arc::clone(&self.store), self.payload_key(&rec), dst.clone()).await?;
        }
        Ok((rec, dst))
    }

    /// After the payload upload: the manifest result decides; then the
    /// source moves into the cache.
    fn finish_save(
        &self,
        rec: &ObjectRecord,
        src: &Path,
        manifest: Result<(), BackendError>,
    ) -> Result<PathBuf, BackendError> {
        if let Err(e) = manifest {
            self.delete_now(vec![self.payload_key(rec)]);
            return Err(e);
        }
        let dst = self.cached(rec);
        let moved = (|| {
            let dir = dst.parent().unwrap_or(Path::new("/"));
            fs::create_dir_all(dir)?;
            if fs::rename(src, &dst).is_err() {
                let part = dir.join(format!(".{}.part", rec.file_name()));
                fs::copy(src, &part)?;
                fs::rename(&part, &dst)?;
                let _ = fs::remove_file(src);
            }
            Ok::<_, io::Error>(())
        })();
        match moved {
            Ok(()) => Ok(dst),
            Err(e) => {
                // The object is saved, but the caller would not get a ref:
                // undo it so nothing is left behind.
                self.delete_now(vec![self.payload_key(rec), self.manifest_key(rec.id)]);
                Err(local("move into cache", &dst, e))
            }
        }
    }
}

impl Drop for S3Backend {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics when
        // the last store handle goes away inside an async task; shutting it
        // down in the background never blocks.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Backend for S3Backend {
    fn local_root(&self) -> &Path {
        &self.cache
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn save_file(&self, rec: &mut ObjectRecord, src: &Path) -> Result<PathBuf, BackendError> {
        let md = fs::metadata(src).map_err(|e| local("read source", src, e))?;
        if !md.is_file() {
            return Err(local(
                "read source",
                src,
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        rec.size = md.len();
        let store = Arc::clone(&self.store);
        let (pk, mk) = (self.payload_key(rec), self.manifest_key(rec.id));
        let (path, ct, manifest) = (
            src.to_path_buf(),
            rec.meta.content_type.clone(),
            rec.encode(),
        );
        let result = self.wait(async move {
            Self::upload_file(Arc::clone(&store), pk, path, ct).await?;
            Ok::<_, BackendError>(
                Self::put_bytes(store, mk, Bytes::from(manifest), "text/plain".into()).await,
            )
        })?;
        self.finish_save(rec, src, result?)
    }

    fn save_reader(
        &self,
        rec: &mut ObjectRecord,
        src: &mut dyn Read,
    ) -> Result<PathBuf, BackendError> {
        // Stage locally first (the cache copy is needed anyway), then upload.
        let dir = self.cache.join(rec.scope_hash());
        fs::create_dir_all(&dir).map_err(|e| local("create cache folder", &dir, e))?;
        let staged = dir.join(format!(".{}.staged", rec.file_name()));
        let written = (|| {
            let mut f = fs::File::create(&staged)?;
            io::copy(src, &mut f)
        })();
        match written {
            Ok(n) => rec.size = n,
            Err(e) => {
                let _ = fs::remove_file(&staged);
                return Err(local("stage upload", &staged, e));
            }
        }
        let r = self.save_file(rec, &staged);
        if r.is_err() {
            let _ = fs::remove_file(&staged);
        }
        r
    }

    fn lookup(&self, id: MediaRef) -> Result<ObjectRecord, BackendError> {
        let store = Arc::clone(&self.store);
        let key = self.manifest_key(id);
        self.wait(Self::get_manifest(store, key))?.map_err(|e| {
            if e.is_not_found() {
                BackendError::NotFound { id: id.to_string() }
            } else {
                e
            }
        })
    }

    fn local_path(&self, rec: &ObjectRecord) -> Result<PathBuf, BackendError> {
        let dst = self.cached(rec);
        if dst.exists() {
            return Ok(dst);
        }
        let store = Arc::clone(&self.store);
        self.wait(Self::download(store, self.payload_key(rec), dst.clone()))??;
        Ok(dst)
    }

    fn open(&self, id: MediaRef) -> Result<Box<dyn Read + Send>, BackendError> {
        let rec = self.lookup(id)?;
        let dst = self.local_path(&rec)?;
        // Read through the cached copy (downloaded once, then local).
        let f = fs::File::open(&dst).map_err(|e| local("open cache", &dst, e))?;
        Ok(Box::new(f))
    }

    fn delete_object(&self, rec: &ObjectRecord) -> Result<(), BackendError> {
        let _ = fs::remove_file(self.cached(rec));
        let keys = vec![self.payload_key(rec), self.manifest_key(rec.id)];
        let store = Arc::clone(&self.store);
        let failed = self.wait(Self::delete_keys(store, keys))?;
        match failed.first() {
            None => Ok(()),
            Some((k, why)) => {
                let err = BackendError::Remote {
                    op: "delete",
                    key: k.clone(),
                    source: why.clone().into(),
                };
                self.note_failed(failed);
                Err(err)
            }
        }
    }

    fn delete_scope(&self, scope: &str) -> Result<u64, BackendError> {
        let prefix = self.qualify(&scope_hash(scope));
        let store = Arc::clone(&self.store);
        // If the listing fails nothing is known to delete yet: the error is
        // returned (and logged by the caller); the backend sweep reclaims the
        // scope's objects at their TTL.
        let listed = self.wait(Self::list_keys(store, Some(prefix)))??;
        let mut keys = Vec::with_capacity(listed.len() * 2);
        let mut n = 0;
        for (k, _) in listed {
            if let Some(id) = id_of_payload(&k) {
                keys.push(self.manifest_key(id));
                n += 1;
            }
            keys.push(k);
        }
        self.delete_now(keys);
        Ok(n)
    }

    fn list(&self) -> Result<Vec<(ObjectRecord, PathBuf)>, BackendError> {
        Ok(Vec::new())
    }

    fn forget_local(&self, path: &Path) {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        let (Some(hash), name) = (dir.file_name(), name.to_string_lossy()) else {
            return;
        };
        let Some(id) = id_of_payload(&name) else {
            return;
        };
        let mut q = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        q.push(self.qualify(&format!("{}/{name}", hash.to_string_lossy())));
        q.push(self.manifest_key(id));
        drop(q);
        let _ = fs::remove_dir(dir); // only if empty
    }

    fn settle(&self, force: bool) -> Option<Duration> {
        let mut keys = std::mem::take(&mut *self.queued.lock().unwrap_or_else(|p| p.into_inner()));
        {
            let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let due: Vec<String> = failed
                .iter()
                .filter(|(_, (_, at))| force || *at <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for k in due {
                failed.remove(&k);
                keys.push(k);
            }
        }
        // Keys retried keep their attempt count through `note_failed`.
        self.delete_now(keys);
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        failed
            .values()
            .map(|(_, at)| at.saturating_duration_since(now))
            .min()
            .map(|d| d.max(Duration::from_millis(10)))
    }

    fn pending_deletions(&self) -> u64 {
        let q = self.queued.lock().unwrap_or_else(|p| p.into_inner()).len();
        let f = self.failed.lock().unwrap_or_else(|p| p.into_inner()).len();
        (q + f) as u64
    }

    fn sweep(
        &self,
        now: SystemTime,
        max_age: Duration,
        grace: Duration,
        deadline: Duration,
    ) -> Result<SweepReport, BackendError> {
        let store = Arc::clone(&self.store);
        let prefix = (!self.cfg.prefix.is_empty()).then(|| self.cfg.prefix.clone());
        let manifests_dir = self.qualify("_manifests");
        let listed = self.wait(async move {
            tokio::time::timeout(deadline, Self::list_keys(store, prefix)).await
        })?;
        let mut report = SweepReport::default();
        let listed = match listed {
            Ok(l) => l?,
            Err(_) => {
                report.timed_out = true;
                return Ok(report);
            }
        };
        let old = |t: SystemTime, age: Duration| now.duration_since(t).is_ok_and(|a| a > age);
        let mut manifests: HashMap<MediaRef, SystemTime> = HashMap::new();
        let mut payloads: HashMap<MediaRef, (String, SystemTime)> = HashMap::new();
        for (k, t) in listed {
            let rel = k
                .strip_prefix(&format!("{manifests_dir}/"))
                .map(str::to_owned);
            match rel {
                Some(id) => {
                    if let Ok(u) = uuid::Uuid::parse_str(&id) {
                        manifests.insert(MediaRef::from_uuid(u), t);
                    }
                }
                None => {
                    if let Some(id) = id_of_payload(&k) {
                        payloads.insert(id, (k, t));
                    }
                }
            }
        }
        let mut doomed = Vec::new();
        let mut live = HashSet::new();
        for (id, t) in &manifests {
            if old(*t, max_age) {
                report.expired += 1;
                doomed.push(self.manifest_key(*id));
                if let Some((k, _)) = payloads.get(id) {
                    doomed.push(k.clone());
                }
            } else if !payloads.contains_key(id) {
                if old(*t, grace) {
                    report.orphans += 1;
                    doomed.push(self.manifest_key(*id));
                }
            } else {
                live.insert(*id);
            }
        }
        for (id, (k, t)) in &payloads {
            if !manifests.contains_key(id) && old(*t, grace) {
                report.orphans += 1;
                doomed.push(k.clone());
            }
        }
        let store = Arc::clone(&self.store);
        let failed = self.wait(async move {
            tokio::time::timeout(deadline, Self::delete_keys(store, doomed)).await
        })?;
        match failed {
            Ok(failed) => {
                report.errors = failed.len() as u64;
                self.note_failed(failed);
            }
            Err(_) => report.timed_out = true,
        }
        report.live = Some(live);
        Ok(report)
    }
}

/// The attributes of an upload: its content type, if known.
fn content_type_attr(content_type: String) -> Attributes {
    let mut attrs = Attributes::new();
    if !content_type.is_empty() {
        attrs.insert(Attribute::ContentType, content_type.into());
    }
    attrs
}

/// The id of a payload key or file name `…/{uuid}{ext}`.
fn id_of_payload(key: &str) -> Option<MediaRef> {
    let name = key.rsplit('/').next()?;
    let stem = name.get(..36)?;
    uuid::Uuid::parse_str(stem).ok().map(MediaRef::from_uuid)
}
