//! The store's side of owned media: `save`, `save_reader`, `open`, the
//! re-index at build, remote resolves and the backend sweep.
//!
//! Invariants:
//!
//! * An owned ref is an ordinary ref on the backend's local path, so leases,
//!   release, TTL and the deleter treat it exactly like a stored file; the
//!   backend is told (`forget_local`) only after that file is deleted.
//! * Backend calls that delete or sweep run on the deleter thread (sent as
//!   `Job::Task`); the calls made on the caller's thread are `save*` (which
//!   move the caller's bytes) and a remote resolve (which fetches them).
//! * One remote resolve per id at a time: concurrent resolves of the same
//!   unknown ref wait for the first one and then find it in memory.
//! * A re-indexed or fetched ref keeps its original store time (wall clock,
//!   translated onto the store's clock), so its TTL is not restarted.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc as StdArc, Mutex as StdMutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backend::{extension_for, Backend, BackendError, ObjectRecord, SweepReport};
use crate::deleter::Job;
use crate::error::{ResolveError, SaveError};
use crate::lease::MediaLease;
use crate::meta::{CleanupPolicy, MediaMeta};
use crate::store::Shared;
use crate::sync::{Arc, EntryArc};
use crate::{MediaRef, MediaStore};

/// When refs of a shared backend were put in memory here (see
/// `Owned::registered`), and the size at which it is next pruned.
struct Registered {
    at: HashMap<MediaRef, SystemTime>,
    prune_at: usize,
}

/// The registration record is never pruned below this size.
const MIN_PRUNE: usize = 1024;

/// Backend sweep counters, by outcome. Relaxed: statistics.
#[derive(Debug, Default)]
pub(crate) struct SweepCounters {
    runs: AtomicU64,
    failed_runs: AtomicU64,
    expired: AtomicU64,
    orphans: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
}

/// Totals of the backend sweeps of one store (see
/// [`MediaStore::backend_sweep_totals`]).
///
/// ```
/// let t = mediastore::BackendSweepTotals::default();
/// assert_eq!(t.runs, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendSweepTotals {
    /// Sweeps that ran to the end or to their deadline.
    pub runs: u64,
    /// Sweeps that failed (the listing failed); the next one tries again.
    pub failed_runs: u64,
    /// Objects deleted because their TTL passed.
    pub expired: u64,
    /// Crash leftovers deleted.
    pub orphans: u64,
    /// Keys whose deletion failed (retried later).
    pub errors: u64,
    /// Local refs dropped because their object was released elsewhere.
    pub dropped: u64,
}

/// The backend of a store, with what the store keeps about it.
pub(crate) struct Owned {
    pub(crate) backend: StdArc<dyn Backend>,
    /// `backend.is_shared()`, read once.
    pub(crate) shared: bool,
    /// The S3 backend itself, for the async twins.
    #[cfg(feature = "s3")]
    pub(crate) s3: Option<StdArc<crate::backend::S3Backend>>,
    /// Crash leftovers younger than this are never reclaimed (a save may be
    /// between its payload and its record).
    pub(crate) grace: Duration,
    /// Time budget of one backend sweep.
    pub(crate) sweep_deadline: Duration,
    /// Per-id locks of remote resolves in flight. The map's mutex is held
    /// only to find or drop a gate; a gate is held across the fetch (network
    /// I/O) on purpose, since that is what makes one download per id, and
    /// only by resolves of that same id.
    inflight: StdMutex<HashMap<MediaRef, StdArc<StdMutex<()>>>>,
    /// Shared backends: when each ref was put in memory here (wall clock),
    /// so a sweep drops only refs whose record it should have listed.
    registered: StdMutex<Registered>,
    /// Shared backends: scopes released here whose remote deletion has not
    /// completed (scope hash → wall time of the release). A remote resolve
    /// refuses their refs, so a released ref never comes back from the
    /// bucket while its deletion waits in the queue.
    released: StdMutex<HashMap<String, SystemTime>>,
    pub(crate) totals: SweepCounters,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Owned {
    pub(crate) fn new(
        backend: StdArc<dyn Backend>,
        #[cfg(feature = "s3")] s3: Option<StdArc<crate::backend::S3Backend>>,
        grace: Duration,
        sweep_deadline: Duration,
    ) -> Self {
        Self {
            shared: backend.is_shared(),
            backend,
            #[cfg(feature = "s3")]
            s3,
            grace,
            sweep_deadline,
            inflight: StdMutex::default(),
            registered: StdMutex::new(Registered {
                at: HashMap::new(),
                prune_at: MIN_PRUNE,
            }),
            released: StdMutex::default(),
            totals: SweepCounters::default(),
        }
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding one of these maps leaves it usable:
    // each update is a single insert or remove.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The name an extension is taken from: the metadata's file name, else the
/// source file's.
pub(crate) fn source_name(meta: &MediaMeta, src: &Path) -> String {
    if meta.filename.is_empty() {
        src.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        meta.filename.clone()
    }
}

fn to_millis(t: SystemTime) -> SystemTime {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A reader over an owned (or any) ref's file that holds the lease while it
/// reads. See [`MediaStore::open`].
///
/// ```
/// use mediastore::{MediaMeta, MediaStore};
/// use std::io::Read;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.txt");
/// # std::fs::write(&path, b"hello")?;
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// let r = store.store(&path, MediaMeta::default(), "s")?;
/// let mut text = String::new();
/// store.open(&r)?.read_to_string(&mut text)?;
/// assert_eq!(text, "hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MediaReader {
    file: std::fs::File,
    lease: MediaLease,
}

impl MediaReader {
    /// The lease that keeps the file while this reader lives.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.txt");
    /// # std::fs::write(&path, b"x")?;
    /// # let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let r = store.store(&path, MediaMeta::default(), "s")?;
    /// assert_eq!(store.open(&r)?.lease().media_ref(), r);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease(&self) -> &MediaLease {
        &self.lease
    }
}

impl Read for MediaReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

impl MediaStore {
    pub(crate) fn owned(&self) -> Result<&Owned, SaveError> {
        self.shared().backend.as_ref().ok_or(SaveError::NoBackend)
    }

    pub(crate) fn new_record(&self, meta: &MediaMeta, scope: &str, name: &str) -> ObjectRecord {
        let shared = self.shared();
        ObjectRecord {
            id: MediaRef::from_uuid(shared.ids.next()),
            scope: scope.to_owned(),
            ext: extension_for(&meta.content_type, name),
            stored_at: to_millis(shared.clock.wall()),
            size: 0,
            meta: MediaMeta {
                cleanup_policy: CleanupPolicy::DeleteOnCleanup,
                ..meta.clone()
            },
        }
    }

    /// Registers a saved object; on failure deletes it again.
    pub(crate) fn register_saved(
        &self,
        owned: &Owned,
        rec: ObjectRecord,
        local: PathBuf,
    ) -> Result<MediaRef, SaveError> {
        let shared = self.shared();
        let id = rec.id;
        if owned.shared {
            // Now, after the record was written: a sweep whose listing began
            // before this instant may not have seen it, and spares the ref.
            self.shared().note_registered(owned, id);
        }
        match shared.store_as(&local, rec.meta.clone(), &rec.scope, id, None) {
            Ok(id) => Ok(id),
            Err(e) => {
                lock(&owned.registered).at.remove(&id);
                let _ = owned.backend.delete_object(&rec);
                Err(SaveError::Register(e))
            }
        }
    }

    /// Moves the file at `src` into the store's backend under `scope` and
    /// returns its ref. The file is renamed when it can be (same file
    /// system), else copied and removed; it is gone from `src` on success
    /// and untouched on failure. The object's extension comes from
    /// `meta.content_type`, else from `meta.filename`, else from `src`.
    ///
    /// From here on the ref lives like any other: leases pin the file,
    /// `release_all` and TTL end it, the deleter thread deletes the object.
    ///
    /// # Errors
    /// [`SaveError::NoBackend`] without a backend, [`SaveError::Backend`] if
    /// the source cannot be read or the backend refuses.
    ///
    /// ```
    /// use mediastore::backend::FsBackend;
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let src = dir.path().join("download.tmp");
    /// # std::fs::write(&src, b"jpeg bytes")?;
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path().join("tmp"))
    ///     .backend(FsBackend::new(dir.path().join("media"))?)
    ///     .build()?;
    /// let meta = MediaMeta { content_type: "image/jpeg".into(), ..MediaMeta::default() };
    /// let r = store.save(&src, meta, "chat:42")?;
    /// assert!(!src.exists());
    /// let lease = store.resolve(&r)?;
    /// assert_eq!(lease.path().extension().unwrap(), "jpg");
    /// assert_eq!(std::fs::read(lease.path())?, b"jpeg bytes");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(
        &self,
        src: impl AsRef<Path>,
        meta: MediaMeta,
        scope: &str,
    ) -> Result<MediaRef, SaveError> {
        let owned = self.owned()?;
        let src = src.as_ref();
        let mut rec = self.new_record(&meta, scope, &source_name(&meta, src));
        let local = owned.backend.save_file(&mut rec, src)?;
        self.register_saved(owned, rec, local)
    }

    /// Writes the bytes of `src` into the store's backend under `scope` and
    /// returns its ref; nothing partial is ever visible. The extension comes
    /// from `meta.content_type`, else from `meta.filename`.
    ///
    /// # Errors
    /// As [`MediaStore::save`].
    ///
    /// ```
    /// use mediastore::backend::FsBackend;
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path().join("tmp"))
    ///     .backend(FsBackend::new(dir.path().join("media"))?)
    ///     .build()?;
    /// let meta = MediaMeta { filename: "notes".into(), ..MediaMeta::default() };
    /// let r = store.save_reader(&b"no extension"[..], meta, "s")?;
    /// assert_eq!(std::fs::read(store.resolve(&r)?.path())?, b"no extension");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_reader(
        &self,
        mut src: impl Read,
        meta: MediaMeta,
        scope: &str,
    ) -> Result<MediaRef, SaveError> {
        let owned = self.owned()?;
        let mut rec = self.new_record(&meta, scope, &meta.filename);
        let local = owned.backend.save_reader(&mut rec, &mut src)?;
        self.register_saved(owned, rec, local)
    }

    /// Resolves a ref and opens its file for reading; the reader holds the
    /// lease, so the file stays until the reader is dropped.
    ///
    /// # Errors
    /// As [`MediaStore::resolve`], and [`ResolveError::Backend`] if the file
    /// cannot be opened.
    ///
    /// ```
    /// use mediastore::backend::FsBackend;
    /// use mediastore::{MediaMeta, MediaStore};
    /// use std::io::Read;
    /// # let dir = tempfile::tempdir()?;
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path().join("tmp"))
    ///     .backend(FsBackend::new(dir.path().join("media"))?)
    ///     .build()?;
    /// let r = store.save_reader(&b"bytes"[..], MediaMeta::default(), "s")?;
    /// let mut reader = store.open(&r)?;
    /// store.release_all("s");
    /// store.flush();
    /// let mut v = Vec::new();
    /// reader.read_to_end(&mut v)?; // the reader's lease kept the file
    /// assert_eq!(v, b"bytes");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, r: &MediaRef) -> Result<MediaReader, ResolveError> {
        let lease = self.resolve(r)?;
        let file = std::fs::File::open(lease.path()).map_err(|source| ResolveError::Backend {
            id: *r,
            source: BackendError::Io {
                op: "open",
                path: lease.path().to_path_buf(),
                source,
            },
        })?;
        Ok(MediaReader { file, lease })
    }

    /// Looks up in the shared backend a ref that is not in memory (saved by
    /// another instance, or before a restart), fetches its bytes into the
    /// local cache and registers it with its original store time and scope.
    /// [`MediaStore::resolve`] calls this on a miss when the backend is
    /// shared; one fetch per id runs at a time. Blocks on network I/O: from
    /// async code use `resolve_async` (feature `tokio`).
    ///
    /// # Errors
    /// [`ResolveError::UnknownRef`] if the backend has no such object (or it
    /// has expired), [`ResolveError::Backend`] if the backend failed.
    ///
    /// ```
    /// use mediastore::{MediaRef, MediaStore, ResolveError};
    /// let store = MediaStore::new(); // no backend: nothing to look up
    /// let r = MediaRef::from_uuid(uuid::Uuid::new_v4());
    /// assert!(matches!(store.resolve_remote(&r), Err(ResolveError::UnknownRef(_))));
    /// ```
    pub fn resolve_remote(&self, r: &MediaRef) -> Result<MediaLease, ResolveError> {
        let shared = self.shared();
        let Some(owned) = shared.backend.as_ref() else {
            return Err(ResolveError::UnknownRef(*r));
        };
        let gate = StdArc::clone(lock(&owned.inflight).entry(*r).or_default());
        let result = {
            let _one_at_a_time = lock(&gate);
            match shared
                .refs
                .get_key_with(r, |e| MediaLease::new(EntryArc::clone(&e.0)))
            {
                Some(lease) => Ok(lease),
                None => self.fetch(owned, r),
            }
        };
        let mut inflight = lock(&owned.inflight);
        if StdArc::strong_count(&gate) == 2 {
            inflight.remove(r);
        }
        result
    }

    fn fetch(&self, owned: &Owned, r: &MediaRef) -> Result<MediaLease, ResolveError> {
        let backend_err = |source: BackendError| {
            if source.is_not_found() {
                ResolveError::UnknownRef(*r)
            } else {
                ResolveError::Backend { id: *r, source }
            }
        };
        let rec = owned.backend.lookup(*r).map_err(backend_err)?;
        let stored_at = self
            .clock_time_of(rec.stored_at)
            .ok_or(ResolveError::UnknownRef(*r))?;
        // Only objects saved before the release: a scope may be reused.
        let released = |rec: &ObjectRecord| {
            lock(&owned.released)
                .get(&rec.scope_hash())
                .is_some_and(|at| rec.stored_at <= *at)
        };
        if released(&rec) {
            return Err(ResolveError::UnknownRef(*r));
        }
        let local = owned.backend.local_path(&rec).map_err(backend_err)?;
        self.shared().note_registered(owned, *r);
        let shared = self.shared();
        shared
            .store_as(&local, rec.meta.clone(), &rec.scope, *r, Some(stored_at))
            .map_err(|e| ResolveError::Backend {
                id: *r,
                source: BackendError::Io {
                    op: "register fetched object",
                    path: local,
                    source: std::io::Error::other(e.to_string()),
                },
            })?;
        // A release of the scope that began meanwhile either removed the ref
        // just registered or marked the scope first: then undo it here.
        if released(&rec) {
            shared.forget_refs(&[*r]);
            return Err(ResolveError::UnknownRef(*r));
        }
        shared
            .refs
            .get_key_with(r, |e| MediaLease::new(EntryArc::clone(&e.0)))
            .ok_or(ResolveError::UnknownRef(*r))
    }

    /// The store-clock reading of a wall-clock store time, or `None` if the
    /// ref has already expired (with cleanup enabled).
    fn clock_time_of(&self, stored: SystemTime) -> Option<u64> {
        let shared = self.shared();
        let cfg = shared.cleanup_snapshot();
        let age = shared
            .clock
            .wall()
            .duration_since(stored)
            .unwrap_or_default();
        if cfg.enabled && age > cfg.max_age {
            return None;
        }
        let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        Some(shared.now_nanos().saturating_sub(age))
    }

    /// Re-registers the objects a (non-shared) backend holds, each under its
    /// scope and with its original store time; deletes the expired ones.
    /// Called by `build`. Returns (re-registered, expired).
    pub(crate) fn reindex(&self) -> Result<(u64, u64), BackendError> {
        let Some(owned) = self.shared().backend.as_ref() else {
            return Ok((0, 0));
        };
        if owned.shared {
            return Ok((0, 0));
        }
        let mut found = owned.backend.list()?;
        // Oldest first, so each lane receives its slots in time order.
        found.sort_by_key(|(rec, _)| rec.stored_at);
        let (mut kept, mut expired) = (0, 0);
        for (rec, local) in found {
            match self.clock_time_of(rec.stored_at) {
                Some(at) => {
                    match self.shared().store_as(
                        &local,
                        rec.meta.clone(),
                        &rec.scope,
                        rec.id,
                        Some(at),
                    ) {
                        Ok(_) => kept += 1,
                        Err(e) => {
                            tracing::warn!(path = ?local, error = %e, "mediastore: cannot re-register a saved object")
                        }
                    }
                }
                None => {
                    expired += 1;
                    if let Err(e) = owned.backend.delete_object(&rec) {
                        tracing::warn!(id = %rec.id, error = %e, "mediastore: cannot delete an expired object");
                    }
                }
            }
        }
        if kept + expired > 0 {
            tracing::info!(kept, expired, "mediastore: re-indexed the backend");
        }
        Ok((kept, expired))
    }

    /// Runs one backend sweep on the deleter thread and waits for it (at most
    /// `wait`): expires objects past `max_age` across every instance that
    /// shares the backend, reclaims crash leftovers older than the grace
    /// period, and drops local refs whose object was released elsewhere.
    /// The background cleaner does the same at start and every interval.
    /// Returns `None` without a shared backend, after `close`, or if the
    /// sweep did not answer in time.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let store = mediastore::MediaStore::new();
    /// assert!(store.sweep_backend(Duration::from_secs(1)).is_none()); // no shared backend
    /// ```
    pub fn sweep_backend(&self, wait: Duration) -> Option<Result<SweepReport, BackendError>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !self.shared().request_backend_sweep(Some(tx)) {
            return None;
        }
        rx.recv_timeout(wait).ok()
    }

    /// Totals of the backend sweeps so far (all zero without a shared
    /// backend).
    ///
    /// ```
    /// let store = mediastore::MediaStore::new();
    /// assert_eq!(store.backend_sweep_totals().runs, 0);
    /// ```
    pub fn backend_sweep_totals(&self) -> BackendSweepTotals {
        let Some(o) = self.shared().backend.as_ref() else {
            return BackendSweepTotals::default();
        };
        let t = &o.totals;
        // Relaxed: statistics.
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BackendSweepTotals {
            runs: get(&t.runs),
            failed_runs: get(&t.failed_runs),
            expired: get(&t.expired),
            orphans: get(&t.orphans),
            errors: get(&t.errors),
            dropped: get(&t.dropped),
        }
    }

    /// Remote deletions waiting for a retry (0 without a shared backend).
    ///
    /// ```
    /// assert_eq!(mediastore::MediaStore::new().backend_pending_deletions(), 0);
    /// ```
    pub fn backend_pending_deletions(&self) -> u64 {
        self.shared()
            .backend
            .as_ref()
            .map_or(0, |o| o.backend.pending_deletions())
    }
}

type SweepReply = crossbeam_channel::Sender<Result<SweepReport, BackendError>>;

impl Shared {
    /// Records when a ref of a shared backend was put in memory here. Refs
    /// that left the map are pruned each time the record doubles since the
    /// last pruning (amortised O(1) per call, no scan of the ref map), so it
    /// stays bounded even if no backend sweep runs. Lock order: this map,
    /// then ref-map shards (as in the sweep).
    fn note_registered(&self, owned: &Owned, id: MediaRef) {
        let mut reg = lock(&owned.registered);
        reg.at.insert(id, SystemTime::now());
        if reg.at.len() >= reg.prune_at {
            reg.at.retain(|id, _| self.refs.contains_key(id));
            reg.prune_at = (2 * reg.at.len()).max(MIN_PRUNE);
        }
    }

    /// Queues a backend sweep on the deleter thread; `false` if there is no
    /// shared backend or the store is closed.
    pub(crate) fn request_backend_sweep(self: &Arc<Self>, reply: Option<SweepReply>) -> bool {
        if !self.backend.as_ref().is_some_and(|o| o.shared) {
            return false;
        }
        let weak: Weak<Shared> = Arc::downgrade(self);
        let task = Box::new(move || {
            if let Some(shared) = weak.upgrade() {
                let report = shared.backend_sweep();
                if let Some(tx) = reply {
                    let _ = tx.send(report);
                }
            }
        });
        self.files.send(Job::Task(task)).is_ok()
    }

    /// With a shared backend, marks a scope as released (before its local
    /// refs go, see `released`); returns whether it did.
    pub(crate) fn mark_released(&self, scope: &str) -> bool {
        let Some(owned) = self.backend.as_ref().filter(|o| o.shared) else {
            return false;
        };
        let max_age = self.cleanup_snapshot().max_age;
        let now = SystemTime::now();
        let mut released = lock(&owned.released);
        // Marks whose deletion failed are kept until the objects would have
        // expired anyway.
        released.retain(|_, at| now.duration_since(*at).map_or(true, |a| a <= max_age));
        released.insert(crate::backend::scope_hash(scope), now);
        true
    }

    /// Queues the remote deletion of a scope marked released; the mark goes
    /// once the deletion is done.
    pub(crate) fn release_remote(self: &Arc<Self>, scope: &str) {
        let weak: Weak<Shared> = Arc::downgrade(self);
        let scope = scope.to_owned();
        let task = Box::new(move || {
            let Some(shared) = weak.upgrade() else { return };
            let Some(owned) = shared.backend.as_ref() else {
                return;
            };
            match owned.backend.delete_scope(&scope) {
                Ok(_) if owned.backend.pending_deletions() == 0 => {
                    lock(&owned.released).remove(&crate::backend::scope_hash(&scope));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "mediastore: remote scope deletion failed; the sweep reclaims it at its TTL")
                }
            }
        });
        let _ = self.files.send(Job::Task(task));
    }

    /// One backend sweep (deleter thread).
    fn backend_sweep(&self) -> Result<SweepReport, BackendError> {
        let owned = self
            .backend
            .as_ref()
            .ok_or(BackendError::Config("no backend".into()))?;
        let cfg = self.cleanup_snapshot();
        let max_age = if cfg.enabled {
            cfg.max_age
        } else {
            Duration::MAX
        };
        let started = SystemTime::now();
        let now = self.clock.wall();
        let t = &owned.totals;
        // Relaxed: statistics.
        let add = |c: &AtomicU64, n: u64| c.fetch_add(n, Ordering::Relaxed);
        let report = match owned
            .backend
            .sweep(now, max_age, owned.grace, owned.sweep_deadline)
        {
            Ok(r) => r,
            Err(e) => {
                add(&t.failed_runs, 1);
                self.files.metrics.backend_sweep(None);
                tracing::warn!(error = %e, "mediastore: backend sweep failed; the next one retries");
                return Err(e);
            }
        };
        add(&t.runs, 1);
        add(&t.expired, report.expired);
        add(&t.orphans, report.orphans);
        add(&t.errors, report.errors);
        // Refs registered here before the listing began whose record was not
        // listed were released (or expired) elsewhere: drop them here too.
        let mut dropped = Vec::new();
        if let Some(live) = &report.live {
            let mut reg = lock(&owned.registered);
            reg.at.retain(|id, at| {
                if !self.refs.contains_key(id) {
                    return false;
                }
                if *at < started && !live.contains(id) {
                    dropped.push(*id);
                    return false;
                }
                true
            });
        }
        let n = self.forget_refs(&dropped) as u64;
        add(&t.dropped, n);
        self.files
            .metrics
            .backend_sweep(Some([report.expired, report.orphans, report.errors, n]));
        if report.expired + report.orphans + report.errors + n > 0 {
            tracing::info!(
                expired = report.expired,
                orphans = report.orphans,
                errors = report.errors,
                dropped = n,
                timed_out = report.timed_out,
                "mediastore: backend sweep"
            );
        }
        Ok(report)
    }
}
