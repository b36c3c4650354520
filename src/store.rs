//! [`MediaStore`]: refs, scopes, TTL and the threads, put together.
//!
//! # Structure
//!
//! * `refs`: ref id → shared [`RefEntry`] (sharded map). A ref resolves iff
//!   it is in this map.
//! * `scopes`: scope → ids stored under it (sharded map).
//! * `lanes`: TTL queues ([`ExpiryLanes`]).
//! * `files`: the path table and the deleter's inbox ([`FileTable`]).
//!
//! # Invariants
//!
//! 1. A ref enters `refs` only while `store` holds its scope's shard lock,
//!    and leaves `refs` before anything is released for it. `release_all`
//!    removes the scope first, then its refs. So a `store` racing a
//!    `release_all` of the same scope either put its id in the scope's list
//!    before the release took it (and is released by it) or after (and the
//!    scope exists again, listing it): no live ref is unreachable.
//! 2. Every ref in `refs` has a slot in `lanes` (pushed right after it is
//!    inserted), so TTL reaches every ref.
//! 3. Whoever removes a ref from `refs` (release or sweep, exactly one of
//!    them wins the removal) lets go of its entry afterwards, in the calling
//!    thread for a small batch or on the deleter thread for 64 entries or
//!    more: the path count it holds is released then, in memory, or by the
//!    last lease's drop if a lease still holds the entry, never before the
//!    removal. A file that becomes due goes to the deleter thread. Hence a
//!    resolve either misses the ref or gets a lease whose file stays until
//!    the lease is dropped.
//! 4. No file-system call happens in `resolve`, `release_all` or
//!    `clean_expired`; `store` makes one `lstat`, under no lock.
//!
//! # Synchronization
//!
//! Map and lane operations synchronise through their shard locks (acquire on
//! lock, release on unlock). Lock order, outermost first: scope shard → ref
//! shard → path shard; lane lock → ref shard (compaction); a dormant queue's
//! lock is never held while another lock is taken. The path count protocol
//! is described in [`crate::file`]; which loom model checks which ordering
//! is listed in the README.

use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::{CleanupConfig, MediaStoreBuilder};
use crate::deleter::{self, Job};
use crate::entry::{EntryKey, RefEntry};
use crate::error::{ConfigError, ResolveError, StoreError};
use crate::expiry::ExpiryLanes;
use crate::file::JoinError;
use crate::files::{Counters, FileTable};
use crate::lease::MediaLease;
use crate::meta::{CleanupPolicy, MediaMeta};
use crate::report::{FailedDeletion, ShutdownReport};
use crate::scope::{ScopeIds, ScopeName};
use crate::stats::Stats;
use crate::sync::{
    channel, lock, thread, Arc, EntryArc, FileKind, Fs, IdSource, Mutex, ShardMap, SwapCell, Update,
};
use crate::MediaRef;

/// A concurrent store of media refs. Cheap to clone: clones share one store.
///
/// See the [crate docs](crate) for a tour.
///
/// ```
/// use mediastore::{MediaMeta, MediaStore};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("voice.ogg");
/// # std::fs::write(&path, b"x")?;
///
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// let r = store.store(&path, MediaMeta::default(), "telegram:1:99")?;
/// let lease = store.resolve(&r)?;
/// assert_eq!(lease.path(), path);
/// drop(lease);
/// assert_eq!(store.release_all("telegram:1:99"), 1);
/// store.flush();
/// assert!(!path.exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MediaStore {
    handle: Arc<Handle>,
}

/// Owned by the `MediaStore` clones; the last one to go tears down.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.teardown();
    }
}

/// A fast hasher for ref ids: they are random (v4 UUIDs minted here), so a
/// fold and a multiply spread them well; callers cannot choose the ids that
/// get inserted, so hash flooding is not a concern.
#[derive(Clone, Copy, Default)]
pub(crate) struct RefHashBuilder;

pub(crate) struct RefHasher(u64, u64);

/// Where the id's top 16 bits go in the hash (see `RefHasher::finish`).
const SHARD_FIELD: u32 = 41;

/// Bits of a ref id that name the minting thread's group of ref-map shards
/// (see `Shared::mint_id`).
const GROUP_BITS: u32 = 2;

impl BuildHasher for RefHashBuilder {
    type Hasher = RefHasher;
    #[inline]
    fn build_hasher(&self) -> RefHasher {
        RefHasher(0, 0)
    }
}

impl Hasher for RefHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        // Bits 41..57 are the ones dashmap picks a shard from (just below
        // the 7 that hashbrown keeps for its control bytes): they are the
        // id's top 16 bits, so the minting thread chooses the shard.
        (h & !(0xFFFF << SHARD_FIELD)) | (self.1 << SHARD_FIELD)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).rotate_left(29);
        }
    }
    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v as u64) ^ ((v >> 64) as u64);
        self.1 = (v >> 112) as u64;
    }
}

pub(crate) struct Shared {
    pub(crate) refs: ShardMap<EntryKey, (), RefHashBuilder>,
    scopes: ShardMap<ScopeName, ScopeIds>,
    lanes: ExpiryLanes,
    cleanup: SwapCell<CleanupConfig>,
    pub(crate) clock: std::sync::Arc<dyn Clock>,
    pub(crate) ids: IdSource,
    /// log2 of the ref map's shard count (see `mint_id`; unused under
    /// loom, whose threads share one lane hint).
    #[cfg_attr(loom, allow(dead_code))]
    shard_bits: u32,
    pub(crate) files: Arc<FileTable>,
    threads: Mutex<Threads>,
    /// Where owned media live (see [`crate::backend`]); `None` without one.
    #[cfg(not(loom))]
    pub(crate) backend: Option<crate::owned::Owned>,
}

#[derive(Default)]
struct Threads {
    closed: bool,
    deleter: Option<thread::JoinHandle<()>>,
    #[cfg(not(loom))]
    cleaner: Option<crate::cleaner::Cleaner>,
}

impl MediaStore {
    /// A store with the defaults: TTL on (max age 30 min, sweep every
    /// 5 min, a first sweep at start), system clock.
    ///
    /// # Panics
    /// If the OS cannot start the deleter thread; use
    /// [`MediaStore::builder`] to get that as an error instead.
    ///
    /// ```
    /// let store = mediastore::MediaStore::new();
    /// assert_eq!(store.stats().live_refs, 0);
    /// ```
    pub fn new() -> Self {
        match Self::builder().build() {
            Ok(s) => s,
            Err(e) => panic!("mediastore: cannot start a store with the defaults: {e}"),
        }
    }

    /// A builder with the defaults (see [`MediaStoreBuilder`]).
    ///
    /// ```
    /// use mediastore::MediaStore;
    /// let store = MediaStore::builder().cleanup_enabled(false).build()?;
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn builder() -> MediaStoreBuilder {
        MediaStoreBuilder::default()
    }

    pub(crate) fn from_builder(b: MediaStoreBuilder) -> Result<Self, ConfigError> {
        let root_paths: Vec<PathBuf> = if b.roots.is_empty() {
            vec![crate::roots::default_root()]
        } else {
            b.roots.clone()
        };
        let mut absolute_roots = Vec::with_capacity(root_paths.len());
        for p in &root_paths {
            let abs = absolute(p).map_err(|_| ConfigError::Root {
                path: p.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a usable path"),
            })?;
            absolute_roots.push(abs.into_owned());
        }
        let mut roots = Vec::new();
        for p in &absolute_roots {
            roots.push(
                crate::roots::Roots::open(std::slice::from_ref(p)).map_err(|source| {
                    ConfigError::Root {
                        path: p.clone(),
                        source,
                    }
                })?,
            );
        }
        #[cfg(not(loom))]
        let owned = Self::build_backend(&b)?;
        #[cfg(not(loom))]
        if let Some(o) = &owned {
            let root = o.backend.local_root().to_path_buf();
            roots.push(
                crate::roots::Roots::open(std::slice::from_ref(&root))
                    .map_err(|source| ConfigError::Root { path: root, source })?
                    .unswept(),
            );
        }
        let roots = crate::roots::Roots::merge(roots);
        let (inbox_tx, inbox_rx) = channel::unbounded();
        #[cfg(not(loom))]
        let fs = Fs::new(roots);
        #[cfg(loom)]
        let fs = Fs::new(roots, b.fs.clone());
        let retries = crate::deleter::Retries::new(b.retry, std::sync::Arc::clone(&b.clock));
        let files = FileTable::new(b.shards, fs, inbox_tx, retries);
        #[cfg(not(loom))]
        let files = files.with_backend(owned.as_ref().map(|o| std::sync::Arc::clone(&o.backend)));
        let files = Arc::new(files);
        #[cfg(not(loom))]
        crate::orphans::register(&files);
        let shared = Arc::new(Shared {
            // One full set of shards per thread group (see `mint_id`), so
            // the refs of one storing thread still spread over `shards`.
            refs: ShardMap::new(b.shards << GROUP_BITS),
            scopes: ShardMap::new(b.shards),
            lanes: ExpiryLanes::new(b.shards),
            cleanup: SwapCell::new(b.cleanup),
            clock: b.clock,
            ids: IdSource::default(),
            shard_bits: (b.shards << GROUP_BITS)
                .max(2)
                .next_power_of_two()
                .trailing_zeros()
                .min(16),
            files: Arc::clone(&files),
            threads: Mutex::new(Threads::default()),
            #[cfg(not(loom))]
            backend: owned,
        });
        #[cfg(not(loom))]
        if b.orphan_sweep {
            // The deleter's first job; `build` does not wait for it.
            let cutoff = std::time::SystemTime::now()
                .checked_sub(b.cleanup.max_age)
                .unwrap_or(std::time::UNIX_EPOCH);
            let _ = files.send(Job::SweepOrphans(cutoff));
        }
        let deleter = spawn("mediastore-deleter", move || deleter::run(files, inbox_rx))?;
        lock(&shared.threads).deleter = Some(deleter);
        let store = MediaStore {
            handle: Arc::new(Handle { shared }),
        };
        #[cfg(not(loom))]
        store.reindex()?;
        if b.background_cleaner {
            store.start_cleaner()?;
        }
        Ok(store)
    }

    /// Builds the builder's backend, if any.
    #[cfg(not(loom))]
    fn build_backend(b: &MediaStoreBuilder) -> Result<Option<crate::owned::Owned>, ConfigError> {
        use crate::config::BackendChoice;
        #[cfg(feature = "s3")]
        let mut s3 = None;
        let backend: std::sync::Arc<dyn crate::backend::Backend> = match &b.backend {
            None => return Ok(None),
            Some(BackendChoice::Ready(x)) => std::sync::Arc::clone(x),
            #[cfg(feature = "s3")]
            Some(BackendChoice::S3(x)) => {
                s3 = Some(std::sync::Arc::clone(x));
                std::sync::Arc::clone(x) as _
            }
            #[cfg(feature = "s3")]
            Some(BackendChoice::Config(crate::backend::BackendConfig::S3(c))) => {
                let x = std::sync::Arc::new(crate::backend::S3Backend::new(c.clone())?);
                s3 = Some(std::sync::Arc::clone(&x));
                x
            }
            Some(BackendChoice::Config(c)) => c.build()?,
        };
        Ok(Some(crate::owned::Owned::new(
            backend,
            #[cfg(feature = "s3")]
            s3,
            b.backend_grace,
            b.backend_sweep_deadline,
        )))
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// Registers an existing file under `scope` and returns a new ref.
    ///
    /// The path is made absolute (lexically: `.` and `..` are folded, links
    /// are not followed) so that a later change of working directory cannot
    /// redirect its deletion. Every call mints a new random ref, even for the
    /// same path and scope. The file is `lstat`ed (once, under no lock) and
    /// must be a regular file or a symlink; it is never copied or moved.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the file does not exist,
    /// [`StoreError::NotAFile`] for a directory or special file,
    /// [`StoreError::InvalidPath`] for an empty path or one with a NUL byte,
    /// [`StoreError::Io`] if it cannot be inspected. A failed store changes
    /// nothing.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore, StoreError};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let a = store.store(&path, MediaMeta::default(), "s")?;
    /// let b = store.store(&path, MediaMeta::default(), "s")?;
    /// assert_ne!(a, b);
    /// let sub = dir.path().join("sub");
    /// std::fs::create_dir(&sub)?;
    /// assert!(matches!(
    ///     store.store(&sub, MediaMeta::default(), "s"),
    ///     Err(StoreError::NotAFile { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store(
        &self,
        path: impl AsRef<Path>,
        meta: MediaMeta,
        scope: &str,
    ) -> Result<MediaRef, StoreError> {
        let shared = self.shared();
        let id = shared.mint_id();
        shared.store_as(path.as_ref(), meta, scope, id, None)
    }

    /// Looks a ref up and pins its file: while the returned lease lives, the
    /// file is not deleted, even if the ref is released or expires.
    ///
    /// Does no file I/O and no allocation: one shard read lock and one
    /// reference-count increment. With a shared backend (S3), a ref that is
    /// not in memory is looked up there instead (see
    /// [`MediaStore::resolve_remote`]).
    ///
    /// # Errors
    /// [`ResolveError::UnknownRef`] if the ref is unknown, released or
    /// expired; [`ResolveError::Backend`] if a shared backend could not be
    /// asked.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore, ResolveError};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let r = store.store(&path, MediaMeta::default(), "s")?;
    /// assert!(store.resolve(&r).is_ok());
    /// store.release_all("s");
    /// assert!(matches!(store.resolve(&r), Err(ResolveError::UnknownRef(x)) if x == r));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn resolve(&self, r: &MediaRef) -> Result<MediaLease, ResolveError> {
        match self
            .shared()
            .refs
            .get_key_with(r, |e| MediaLease::new(EntryArc::clone(&e.0)))
        {
            Some(lease) => Ok(lease),
            #[cfg(not(loom))]
            None if self.shared().backend.as_ref().is_some_and(|b| b.shared) => {
                self.resolve_remote(r)
            }
            None => Err(ResolveError::UnknownRef(*r)),
        }
    }
}

impl Shared {
    /// A new random ref whose ref-map shard lies in this thread's group of
    /// shards (see [`RefHasher`]): the id's top `GROUP_BITS` bits name one
    /// of four groups, the other 120 bits stay random. Two threads that
    /// store and release at once (two channels) then work on different
    /// shard tables instead of pulling each other's across cores. The ref
    /// map has a full set of `shards` shards per group, so the refs of any
    /// one thread spread as widely as without groups and threads resolving
    /// them meet on a lock no more often (measured: with groups carved out
    /// of 64 shards, 2-thread resolves were 20 % slower; with 4 × 64 they
    /// match the ungrouped map).
    pub(crate) fn mint_id(&self) -> MediaRef {
        let raw = self.ids.next().as_u128();
        #[cfg(not(loom))]
        if let Some(lane) = crate::sync::thread_lane_hint() {
            let bits = GROUP_BITS.min(self.shard_bits);
            if bits > 0 {
                let group = (lane as u128) & ((1u128 << bits) - 1);
                let keep = u128::MAX >> bits;
                return MediaRef::from_uuid(uuid::Uuid::from_u128(
                    (raw & keep) | (group << (128 - bits)),
                ));
            }
        }
        MediaRef::from_uuid(uuid::Uuid::from_u128(raw))
    }

    /// `store` with a given id and, for a ref saved earlier (re-indexed or
    /// fetched from a shared backend), its original store time.
    pub(crate) fn store_as(
        &self,
        path: &Path,
        meta: MediaMeta,
        scope: &str,
        id: MediaRef,
        stored_at: Option<u64>,
    ) -> Result<MediaRef, StoreError> {
        let shared = self;
        if id == crate::scope::PAD {
            // Minted ids are never nil (v4); a saved one could be. The scope
            // index pads with nil (see `crate::scope`).
            return Err(StoreError::NilRef);
        }
        let abs = absolute(path).map_err(|reason| StoreError::InvalidPath {
            path: path.to_path_buf(),
            reason,
        })?;
        if meta.cleanup_policy == CleanupPolicy::DeleteOnCleanup
            && !shared.files.fs().roots().contains(&abs)
        {
            return Err(StoreError::OutsideManagedRoots {
                path: abs.into_owned(),
            });
        }
        let pin = FileTable::pin(&shared.files, &abs).map_err(|e| match e {
            JoinError::Full | JoinError::Dead => StoreError::TooManyRefs {
                path: abs.to_path_buf(),
            },
        })?;
        // The pin keeps any deletion of this path from starting, so what
        // lstat sees now stays true for the new ref (see `crate::file`).
        let refusal = match shared.files.fs().kind(pin.rec.path()) {
            Ok(FileKind::Regular | FileKind::Symlink) => None,
            Ok(FileKind::Other) => Some(StoreError::NotAFile {
                path: abs.into_owned(),
            }),
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                Some(StoreError::NotFound {
                    path: abs.into_owned(),
                    source,
                })
            }
            Err(source) => Some(StoreError::Io {
                path: abs.into_owned(),
                source,
            }),
        };
        if let Some(err) = refusal {
            FileTable::release_anywhere(pin.rec);
            return Err(err);
        }
        pin.rec.confirm(meta.cleanup_policy);

        let now = stored_at.unwrap_or_else(|| shared.now_nanos());
        let lane = shared.lanes.pick(id);
        let rec = pin.rec;
        #[cfg(loom)]
        if crate::faults::active(crate::faults::Fault::InsertOutsideScopeLock) {
            let key = shared.scopes.update(
                scope.as_bytes(),
                || ScopeName::new(scope),
                |key, ids| {
                    let k = ScopeName::clone(key);
                    match ids {
                        Some(ids) => {
                            ids.push(id);
                            Update::Keep(k)
                        }
                        None => Update::Put(ScopeIds::one(id), k),
                    }
                },
            );
            let entry = EntryArc::new(RefEntry::new(id, now, key, lane, meta, rec));
            shared.refs.insert(EntryKey(entry), ());
            shared.lanes.push(lane, id, now, &shared.refs);
            return Ok(id);
        }
        // Scope shard lock held while the ref enters `refs` (invariant 1).
        let new_scope = shared.scopes.update(
            scope.as_bytes(),
            || ScopeName::new(scope),
            |key, ids| {
                let entry = EntryArc::new(RefEntry::new(
                    id,
                    now,
                    ScopeName::clone(key),
                    lane,
                    meta,
                    rec,
                ));
                shared.refs.insert(EntryKey(entry), ());
                match ids {
                    Some(ids) => {
                        ids.push(id);
                        Update::Keep(false)
                    }
                    None => Update::Put(ScopeIds::one(id), true),
                }
            },
        );
        if stored_at.is_some() {
            // An earlier store time: its slot goes where it belongs in time.
            shared.lanes.insert_sorted(lane, id, now);
        } else {
            shared.lanes.push(lane, id, now, &shared.refs);
        }
        shared.files.metrics.stored(new_scope);
        Ok(id)
    }
}

impl MediaStore {
    /// Parses `media://<uuid>` and resolves it.
    ///
    /// # Errors
    /// [`ResolveError::Parse`] for text that is not a ref, otherwise as
    /// [`MediaStore::resolve`].
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let r = store.store(&path, MediaMeta::default(), "s")?;
    /// assert_eq!(store.resolve_str(&r.to_string())?.media_ref(), r);
    /// assert!(store.resolve_str("media://nope").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve_str(&self, text: &str) -> Result<MediaLease, ResolveError> {
        let r: MediaRef = text.parse()?;
        self.resolve(&r)
    }

    /// Releases every ref of `scope` and returns how many there were (0 for
    /// an unknown scope; repeated calls are fine). Once it returns, none of
    /// them resolves. Their files are deleted on the deleter thread, each
    /// once its last ref and lease are gone; this call touches no file.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// store.store(&path, MediaMeta::default(), "s")?;
    /// assert_eq!(store.release_all("s"), 1);
    /// assert_eq!(store.release_all("s"), 0);
    /// assert_eq!(store.release_all("never-seen"), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_all(&self, scope: &str) -> usize {
        // A shared backend: the scope is marked before its refs go, so a
        // remote resolve cannot bring one back (see `crate::owned`).
        #[cfg(not(loom))]
        let remote = self.shared().mark_released(scope);
        let n = self.shared().release_all(scope);
        #[cfg(not(loom))]
        if remote {
            self.shared().release_remote(scope);
        }
        n
    }

    /// Expires every ref stored strictly more than `max_age` ago and returns
    /// how many; once it returns, none of them resolves. Refs stored within
    /// 1 ms of each other may share the latest of their times, so a ref can
    /// be up to 1 ms late to expire, never early. Costs time in
    /// proportion to the refs it expires, not to the refs alive. Files go to
    /// the deleter thread as for [`MediaStore::release_all`]. Works whether
    /// or not the background cleaner is enabled.
    ///
    /// ```
    /// use mediastore::{ManualClock, MediaMeta, MediaStore};
    /// use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let clock = ManualClock::new();
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path())
    ///     .max_age(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .background_cleaner(false)
    ///     .build()?;
    /// store.store(&path, MediaMeta::default(), "s")?;
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(store.clean_expired(), 0); // exactly max_age: kept
    /// clock.advance(Duration::from_nanos(1));
    /// assert_eq!(store.clean_expired(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clean_expired(&self) -> usize {
        self.shared().clean_expired()
    }

    /// Waits until every deletion queued before this call has been carried
    /// out by the deleter thread: the file unlinked or found gone, or, if
    /// the OS refused, the deletion put on its retry schedule (retries that
    /// are due by the store's clock are run first). Returns at once after
    /// `close`.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// store.store(&path, MediaMeta::default(), "s")?;
    /// store.release_all("s");
    /// store.flush();
    /// assert!(!path.exists());
    /// assert_eq!(store.stats().files_deleted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) {
        self.shared().flush()
    }

    /// A snapshot of the counters.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// store.store(&path, MediaMeta::forget_only(), "s")?;
    /// let s = store.stats();
    /// assert_eq!((s.live_refs, s.scopes), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let s = self.shared();
        let c = &s.files.counters;
        Stats {
            live_refs: s.refs.len() as u64,
            scopes: s.scopes.len() as u64,
            pending_deletions: Counters::get(&c.pending),
            files_deleted: Counters::get(&c.deleted),
            files_already_gone: Counters::get(&c.not_found),
            deletion_errors: Counters::get(&c.errors),
            deletion_retries_pending: Counters::get(&c.retrying),
            deletions_failed: s.files.failed_count(),
            orphans_deleted: Counters::get(&c.orphans),
            refs_released: Counters::get(&c.released),
            refs_expired: Counters::get(&c.expired),
        }
    }

    /// The current TTL settings.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// assert!(MediaStore::new().cleanup().enabled);
    /// ```
    pub fn cleanup(&self) -> CleanupConfig {
        *self.shared().cleanup.load()
    }

    /// Changes the TTL settings at run time, without replacing the store:
    /// every ref keeps resolving. The next sweep (and the cleaner's next
    /// wait) uses the new values; a sweep in progress finishes with the
    /// values it started with.
    ///
    /// # Errors
    /// [`ConfigError`] for a zero or oversized duration; the settings are
    /// then unchanged.
    ///
    /// ```
    /// use mediastore::{CleanupConfig, MediaStore};
    /// use std::time::Duration;
    /// let store = MediaStore::new();
    /// store.set_cleanup(CleanupConfig { max_age: Duration::from_secs(3600), ..store.cleanup() })?;
    /// assert_eq!(store.cleanup().max_age, Duration::from_secs(3600));
    /// assert!(store.set_cleanup(CleanupConfig { max_age: Duration::ZERO, ..store.cleanup() }).is_err());
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn set_cleanup(&self, cfg: CleanupConfig) -> Result<(), ConfigError> {
        cfg.validate()?;
        let s = self.shared();
        s.cleanup.store(cfg);
        #[cfg(not(loom))]
        if let Some(c) = lock(&s.threads).cleaner.as_ref() {
            c.wake();
        }
        Ok(())
    }

    /// Starts the background cleaner thread if it is not running. It sweeps
    /// once at start and then every `sweep_interval` while cleanup is
    /// enabled. Returns whether it was started by this call (`false` if it
    /// already ran or the store is closed). Under loom this is a no-op.
    ///
    /// # Errors
    /// [`ConfigError::Spawn`] if the OS refuses a thread.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// let store = MediaStore::builder().background_cleaner(false).build()?;
    /// assert!(store.start_cleaner()?);
    /// assert!(!store.start_cleaner()?);
    /// assert!(store.stop_cleaner());
    /// assert!(!store.stop_cleaner());
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn start_cleaner(&self) -> Result<bool, ConfigError> {
        #[cfg(not(loom))]
        {
            let s = self.shared();
            let mut t = lock(&s.threads);
            if t.closed || t.cleaner.is_some() {
                return Ok(false);
            }
            t.cleaner = Some(crate::cleaner::Cleaner::spawn(Arc::clone(s))?);
            Ok(true)
        }
        #[cfg(loom)]
        Ok(false)
    }

    /// Stops and joins the background cleaner; returns whether it ran.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// let store = MediaStore::new();
    /// assert!(store.stop_cleaner());
    /// assert!(!store.cleaner_running());
    /// ```
    pub fn stop_cleaner(&self) -> bool {
        #[cfg(not(loom))]
        {
            let cleaner = lock(&self.shared().threads).cleaner.take();
            match cleaner {
                Some(c) => {
                    c.stop();
                    true
                }
                None => false,
            }
        }
        #[cfg(loom)]
        false
    }

    /// Whether the background cleaner thread is running: it must answer a
    /// ping (sent after every earlier request, so a `true` also means it
    /// has handled them) within five seconds.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// assert!(MediaStore::new().cleaner_running());
    /// ```
    pub fn cleaner_running(&self) -> bool {
        #[cfg(not(loom))]
        {
            lock(&self.shared().threads)
                .cleaner
                .as_ref()
                .is_some_and(|c| c.alive(Duration::from_secs(5)))
        }
        #[cfg(loom)]
        false
    }

    /// Deletions that failed every attempt and are still due (a store of
    /// the same path since then revives the file and drops it from here).
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # let dir = tempfile::tempdir()?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// assert!(store.failed_deletions().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn failed_deletions(&self) -> Vec<FailedDeletion> {
        self.shared()
            .files
            .failed()
            .into_iter()
            .map(|(path, attempts, kind, message)| FailedDeletion {
                path,
                attempts,
                kind,
                message,
            })
            .collect()
    }

    /// Queues every failed deletion again, with a fresh attempt budget;
    /// returns how many. After `close` they are attempted at once, on the
    /// calling thread.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # let dir = tempfile::tempdir()?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// assert_eq!(store.retry_failed(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_failed(&self) -> usize {
        self.shared().files.retry_failed()
    }

    /// Releases every scope, waits up to `deadline` for the deleter to
    /// carry out the deletions, stops the threads and reports what is left.
    /// Files held by leases are deleted when the last lease drops; deletions
    /// still queued at the deadline are finished by the deleter thread on
    /// its own. Use it when the gateway exits; plain [`MediaStore::close`]
    /// keeps the files of live refs instead (for a restart that
    /// re-registers them, or for the next orphan sweep). With a backend,
    /// releasing every scope deletes their owned objects too (for S3, in the
    /// bucket, for every replica): a store whose owned media must survive
    /// the restart, or that shares a bucket, should call `close` instead.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore};
    /// use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// store.store(&path, MediaMeta::default(), "s")?;
    /// let report = store.shutdown(Duration::from_secs(10));
    /// assert!(report.completed);
    /// assert_eq!(report.refs_released, 1);
    /// assert!(!path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let s = self.shared();
        self.stop_cleaner();
        let mut scopes = Vec::new();
        s.scopes.for_each(|k, _| scopes.push(ScopeName::clone(k)));
        let refs_released = scopes.iter().map(|sc| s.release_all(sc.as_str())).sum();
        let completed = s.flush_within(Some(deadline));
        if completed {
            s.close();
        } else {
            s.abandon();
        }
        let c = &s.files.counters;
        ShutdownReport {
            refs_released,
            completed,
            pending_deletions: Counters::get(&c.pending),
            paths_still_held: s.files.paths() as u64,
            failed_deletions: s.files.failed_count(),
        }
    }

    /// Stops the background threads: the cleaner, then the deleter after it
    /// has carried out every deletion already queued. Idempotent; dropping
    /// the last clone does the same.
    ///
    /// The store stays usable: refs still resolve and can be released, but
    /// a deletion that becomes due after `close` is carried out by the thread
    /// that makes it due (the one calling `release_all`, or dropping the last
    /// lease). Files of refs that are still live are kept.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.png");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// store.store(&path, MediaMeta::default(), "s")?;
    /// store.close();
    /// store.close();
    /// assert!(path.exists()); // live refs keep their files
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        self.shared().close()
    }
}

impl Default for MediaStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaStore")
            .field("stats", &self.stats())
            .field("cleanup", &self.cleanup())
            .finish()
    }
}

impl Shared {
    /// The current TTL settings (one snapshot).
    #[cfg(not(loom))]
    pub(crate) fn cleanup_snapshot(&self) -> std::sync::Arc<CleanupConfig> {
        self.cleanup.load()
    }

    /// The clock in nanoseconds, plus [`CLOCK_BIAS`].
    pub(crate) fn now_nanos(&self) -> u64 {
        u64::try_from(self.clock.now().as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(CLOCK_BIAS)
    }

    fn release_all(&self, scope: &str) -> usize {
        // Invariant 1: the scope goes first, then its refs.
        let Some((_, ids)) = self.scopes.remove(scope.as_bytes()) else {
            return 0;
        };
        let mut n = 0;
        if ids.len() >= RELEASE_OFFLOAD {
            let mut removed = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some((EntryKey(entry), ())) = self.refs.remove(id) {
                    self.lanes.note_released(entry.lane);
                    removed.push(entry);
                }
            }
            n = removed.len();
            self.let_go_all(removed);
        } else {
            // Small scope (the usual message): let go on the spot.
            let mut due = Vec::new();
            for id in &ids {
                if let Some((EntryKey(entry), ())) = self.refs.remove(id) {
                    self.lanes.note_released(entry.lane);
                    self.files.let_go(entry, &mut due);
                    n += 1;
                }
            }
            self.files.queue(due);
        }
        Counters::add(&self.files.counters.released, n as u64);
        self.files.metrics.released(n as u64, 1);
        n
    }

    pub(crate) fn clean_expired(&self) -> usize {
        #[cfg(not(loom))]
        let started = std::time::Instant::now();
        // One configuration snapshot for the whole sweep.
        let cfg = self.cleanup.load();
        let max_age = cfg.max_age_nanos();
        #[cfg(loom)]
        let reload = crate::faults::active(crate::faults::Fault::ReloadConfigPerLane);
        let max_age_for_lane = || {
            #[cfg(loom)]
            if reload {
                return self.cleanup.load().max_age_nanos();
            }
            max_age
        };
        let now = self.now_nanos();
        let mut removed: Vec<EntryArc<RefEntry>> = Vec::new();
        #[allow(unused_mut)]
        let mut miscounted = 0;
        self.lanes.pop_expired(now, max_age_for_lane, |ids| {
            let mut gone = 0;
            for id in ids {
                #[cfg(loom)]
                if crate::faults::active(crate::faults::Fault::ExpiryCheckThenAct)
                    && self.refs.contains_key(id)
                {
                    match self.refs.remove(id) {
                        Some((EntryKey(entry), ())) => removed.push(entry),
                        None => miscounted += 1,
                    }
                    continue;
                }
                match self.refs.remove(id) {
                    Some((EntryKey(entry), ())) => removed.push(entry),
                    None => gone += 1,
                }
            }
            gone
        });
        let n = removed.len() + miscounted;
        if removed.is_empty() {
            Counters::add(&self.files.counters.expired, n as u64);
            #[cfg(not(loom))]
            self.files.metrics.expired(0, 0, started.elapsed());
            return n;
        }
        let emptied = self.detach_scopes(&mut removed);
        Counters::add(&self.files.counters.expired, n as u64);
        self.let_go_all(removed);
        #[cfg(not(loom))]
        {
            let took = started.elapsed();
            self.files.metrics.expired(n as u64, emptied, took);
            tracing::info!(
                expired = n,
                scopes_emptied = emptied,
                duration_us = took.as_micros() as u64,
                "mediastore: sweep expired refs"
            );
        }
        #[cfg(loom)]
        let _ = emptied;
        n
    }

    /// Detaches refs just removed from `refs` from their scopes, one pass
    /// per scope: refs gone from `refs` are dropped from its list, and an
    /// emptied scope is removed. Lock order: scope shard, then ref shard (as
    /// in `store`). Returns how many scopes were emptied.
    fn detach_scopes(&self, removed: &mut [EntryArc<RefEntry>]) -> u64 {
        removed.sort_unstable_by_key(|e| ScopeName::addr(&e.scope));
        let mut last: Option<&ScopeName> = None;
        let mut emptied = 0u64;
        for e in removed.iter() {
            if last.is_some_and(|l| ScopeName::ptr_eq(l, &e.scope)) {
                continue;
            }
            last = Some(&e.scope);
            let gone = self.scopes.remove_if_mut(e.scope.as_bytes(), |_, ids| {
                ids.retain(|id| self.refs.contains_key(id));
                ids.is_empty()
            });
            emptied += u64::from(gone.is_some());
        }
        emptied
    }

    /// Removes single refs (released on another replica of a shared
    /// backend), as a release would: out of `refs` first (invariant 3),
    /// then out of their scopes, then let go. Returns how many were live.
    #[cfg(not(loom))]
    pub(crate) fn forget_refs(&self, ids: &[MediaRef]) -> usize {
        let mut removed = Vec::new();
        for id in ids {
            if let Some((EntryKey(entry), ())) = self.refs.remove(id) {
                self.lanes.note_released(entry.lane);
                removed.push(entry);
            }
        }
        let n = removed.len();
        if n > 0 {
            let emptied = self.detach_scopes(&mut removed);
            Counters::add(&self.files.counters.released, n as u64);
            self.files.metrics.released(n as u64, emptied);
            self.let_go_all(removed);
        }
        n
    }

    /// Lets go of entries just removed from `refs` (invariant 3). A small
    /// batch is let go here, in memory (path counts released, due files
    /// queued); a large one is handed to the deleter whole, so that a big
    /// release costs its caller little and its memory is freed there.
    fn let_go_all(&self, removed: Vec<EntryArc<RefEntry>>) {
        if removed.len() >= RELEASE_OFFLOAD {
            self.files.pending_add(removed.len() as u64);
            if let Err(job) = self.files.send(Job::Release(removed)) {
                self.files.handle_inline(job);
            }
            return;
        }
        let mut due = Vec::new();
        for entry in removed {
            self.files.let_go(entry, &mut due);
        }
        self.files.queue(due);
    }

    /// Sends a `Flush` and waits for it, at most `deadline` (`None`: as
    /// long as it takes). Returns whether it was answered.
    fn flush_within(&self, deadline: Option<Duration>) -> bool {
        let (tx, rx) = channel::unbounded();
        if self.files.send(Job::Flush(tx)).is_err() {
            // Closed: nothing is queued.
            return true;
        }
        match deadline {
            #[cfg(not(loom))]
            Some(d) => rx.recv_timeout(d).is_ok(),
            #[cfg(loom)]
            Some(_) => rx.recv().is_ok(),
            None => rx.recv().is_ok(),
        }
    }

    fn flush(&self) {
        self.flush_within(None);
    }

    /// Stops the threads without waiting for the deleter: it finishes the
    /// queued jobs on its own and exits (shutdown past its deadline).
    fn abandon(&self) {
        let mut t = lock(&self.threads);
        t.closed = true;
        #[cfg(not(loom))]
        if let Some(c) = t.cleaner.take() {
            c.stop();
        }
        if let Some(inbox) = self.files.take_inbox() {
            let _ = inbox.send(Job::Shutdown);
        }
        // Dropping the handle detaches the thread.
        drop(t.deleter.take());
    }

    fn close(&self) {
        let mut t = lock(&self.threads);
        t.closed = true;
        #[cfg(not(loom))]
        if let Some(c) = t.cleaner.take() {
            c.stop();
        }
        #[cfg(loom)]
        if crate::faults::active(crate::faults::Fault::ShutdownBeforeTakingInbox) {
            let _ = self.files.send(Job::Shutdown);
            if let Some(h) = t.deleter.take() {
                let _ = h.join();
            }
            self.files.take_inbox();
            return;
        }
        if let Some(inbox) = self.files.take_inbox() {
            // Last message: every job sent before is carried out first.
            let _ = inbox.send(Job::Shutdown);
        }
        if let Some(h) = t.deleter.take() {
            if h.join().is_err() {
                tracing::error!("mediastore: deleter thread panicked");
            }
        }
    }

    /// The last handle is gone: stop the threads, keep the files of live
    /// refs, and drop every map (breaking the table ↔ record cycle).
    fn teardown(&self) {
        self.close();
        let mut live = Vec::new();
        self.refs.for_each(|EntryKey(e), ()| {
            if let Some(rec) = e.file() {
                live.push(rec.clone());
            }
        });
        for rec in &live {
            rec.keep_forever();
        }
        drop(live);
        self.refs.clear();
        self.scopes.clear();
        self.lanes.clear();
        self.files.forget_paths();
    }
}

/// Added to every clock reading the store keeps (about 146 years), so that a
/// ref saved before the clock's origin (re-indexed after a restart, or
/// fetched from a shared backend) still gets its true, earlier store time.
/// Only differences of readings matter, so the bias cancels out.
pub(crate) const CLOCK_BIAS: u64 = 1 << 62;

/// Releases at least this many refs at once are let go on the deleter.
const RELEASE_OFFLOAD: usize = 64;

/// Spawns a named thread.
fn spawn(
    name: &'static str,
    f: impl FnOnce() + Send + 'static,
) -> Result<thread::JoinHandle<()>, ConfigError> {
    #[cfg(not(loom))]
    {
        thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|source| ConfigError::Spawn {
                thread: name,
                source,
            })
    }
    #[cfg(loom)]
    {
        let _ = name;
        Ok(thread::spawn(f))
    }
}

/// Makes `p` absolute and folds `.` and `..` lexically. An absolute path
/// with neither (the usual case) is borrowed as it is.
pub(crate) fn absolute(p: &Path) -> Result<Cow<'_, Path>, &'static str> {
    if is_normal_absolute(p) {
        return Ok(Cow::Borrowed(p));
    }
    if p.as_os_str().is_empty() {
        return Err("the path is empty");
    }
    if p.as_os_str().as_encoded_bytes().contains(&0) {
        return Err("the path contains a NUL byte");
    }
    let abs = std::path::absolute(p).map_err(|_| "the path cannot be made absolute")?;
    let mut out = PathBuf::with_capacity(abs.as_os_str().len());
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::Normal(_) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Whether `p` is absolute and already in the form the slow path would
/// produce: no `.` or `..` component, no doubled or trailing separator. The
/// path map is keyed by bytes, so this must hold for every key.
///
/// Every byte that can break the form (`/`, `.`, NUL) is at most `b'/'`,
/// and in a real path most bytes are letters and digits above it. So the
/// scan reads eight bytes at a time, marks the low ones in one word (see
/// [`low_bytes`]) and looks closely only at those: for the churn loop's
/// 45-byte paths about 300 instructions per call where the byte-by-byte
/// loop it replaced took about 630 (callgrind, `examples/churn_loop`).
#[cfg(unix)]
fn is_normal_absolute(p: &Path) -> bool {
    let b = p.as_os_str().as_encoded_bytes();
    if b.first() != Some(&b'/') || b.len() == 1 || b.ends_with(b"/") {
        return false;
    }
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut low = low_bytes(u64::from_le_bytes(chunk.try_into().unwrap_or_default()));
        while low != 0 {
            // Byte k of the little-endian word is the path's byte at + k.
            let i = at + (low.trailing_zeros() / 8) as usize;
            if !component_edge_ok(b, i) {
                return false;
            }
            low &= low - 1;
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .enumerate()
        .all(|(k, &c)| c > b'/' || component_edge_ok(b, at + k))
}

/// The high bit of each byte of `w` that is below 0x30 (`0`), which covers
/// `/`, `.` and NUL; every other bit clear. Exact for every byte: adding
/// 0x50 to a byte's low seven bits sets its high bit exactly when they are
/// at least 0x30, and never carries into the next byte (0x7F + 0x50 < 0x100).
#[cfg(unix)]
#[inline]
fn low_bytes(w: u64) -> u64 {
    const LOW7: u64 = u64::from_ne_bytes([0x7F; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const ADD: u64 = u64::from_ne_bytes([0x50; 8]);
    let at_least = ((w & LOW7) + ADD) | w;
    !at_least & HIGHS
}

/// For a byte of at most `b'/'` at `i` of a path that starts with `/` and
/// does not end with one (so a `.` is never first): false if it is NUL,
/// the first of two separators, or a `.` that begins a `.` or `..`
/// component.
#[cfg(unix)]
#[inline]
fn component_edge_ok(b: &[u8], i: usize) -> bool {
    match b[i] {
        0 => false,
        b'/' => b.get(i + 1) != Some(&b'/'),
        b'.' if b[i - 1] == b'/' => {
            !matches!(&b[i + 1..], [] | [b'/', ..] | [b'.'] | [b'.', b'/', ..])
        }
        _ => true,
    }
}

#[cfg(not(unix))]
fn is_normal_absolute(p: &Path) -> bool {
    let plain = |c: Component<'_>| !matches!(c, Component::CurDir | Component::ParentDir);
    p.is_absolute() && p.components().all(plain) && {
        let rebuilt: PathBuf = p.components().collect();
        rebuilt.as_os_str() == p.as_os_str()
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<MediaStore>();
    is::<MediaLease>();
}

#[cfg(all(test, unix, not(loom)))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn normal_absolute_paths_are_recognised_exactly() {
        for ok in [
            "/a", "/a/b.jpg", "/a/.b", "/a/..b", "/a/b..", "/a/...", "/.x",
        ] {
            assert!(is_normal_absolute(Path::new(ok)), "{ok}");
        }
        for bad in [
            "", "/", "a/b", "/a/", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/a/.", "/a/..",
            "/a\0b",
        ] {
            assert!(!is_normal_absolute(Path::new(bad)), "{bad}");
        }
    }

    /// `low_bytes` marks exactly the bytes below 0x30, whatever their
    /// neighbours are (no borrow or carry between bytes).
    #[test]
    fn low_bytes_marks_exactly_the_low_ones() {
        let expect = |w: u64| {
            w.to_le_bytes().iter().enumerate().fold(0u64, |m, (k, &c)| {
                if c < 0x30 {
                    m | 0x80 << (8 * k)
                } else {
                    m
                }
            })
        };
        for v in 0..=255u8 {
            for fill in [0x00u8, 0x2F, 0x30, 0x7F, 0x80, 0xFF] {
                for k in 0..8 {
                    let mut bytes = [fill; 8];
                    bytes[k] = v;
                    let w = u64::from_le_bytes(bytes);
                    assert_eq!(low_bytes(w), expect(w), "{bytes:?}");
                }
            }
        }
    }

    /// The word-at-a-time scan against a plain byte-by-byte statement of
    /// the same rule, on paths made of the bytes that matter, long enough
    /// that every special byte lands at every offset of a word.
    #[test]
    fn normal_absolute_scan_matches_a_plain_one() {
        fn plain(b: &[u8]) -> bool {
            b.first() == Some(&b'/')
                && b.len() > 1
                && !b.ends_with(b"/")
                && !b.contains(&0)
                && b[1..]
                    .split(|&c| c == b'/')
                    .all(|c| !c.is_empty() && c != b"." && c != b"..")
        }
        use proptest::prelude::*;
        let byte = prop::sample::select(vec![b'/', b'.', b'a', b'Z', b'0', b'-', 0u8, 0xC3]);
        proptest!(ProptestConfig::with_cases(20_000), |(tail in prop::collection::vec(byte, 0..40))| {
            let mut b = vec![b'/'];
            b.extend_from_slice(&tail);
            let p = Path::new(std::ffi::OsStr::from_bytes(&b));
            prop_assert_eq!(is_normal_absolute(p), plain(&b), "{:?}", p);
        });
        // A long plain path and the same path with each fault at each offset.
        let long = b"/var/lib/gateway/media/2026/11/30/attachment-0000000001.jpeg";
        assert!(is_normal_absolute(Path::new(std::ffi::OsStr::from_bytes(
            long
        ))));
        for at in 1..long.len() {
            for fault in [&b"\0"[..], b"//", b"/./", b"/../"] {
                let mut b = long[..at].to_vec();
                b.extend_from_slice(fault);
                b.extend_from_slice(&long[at..]);
                let p = Path::new(std::ffi::OsStr::from_bytes(&b));
                assert_eq!(is_normal_absolute(p), plain(&b), "{p:?}");
            }
        }
    }

    #[test]
    fn a_threads_ids_share_its_shard_group_and_the_hash_carries_it() {
        let store = MediaStore::builder()
            .background_cleaner(false)
            .build()
            .unwrap();
        let s = store.shared();
        let group = |r: MediaRef| r.as_u128() >> (128 - GROUP_BITS);
        let here: Vec<MediaRef> = (0..50).map(|_| s.mint_id()).collect();
        assert!(here.iter().all(|&r| group(r) == group(here[0])));
        // Still random below the group bits.
        assert_eq!(
            here.iter()
                .map(|r| r.as_u128() << GROUP_BITS)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            50
        );
        let (there, lane) = std::thread::spawn({
            let store = store.clone();
            move || {
                (
                    store.shared().mint_id(),
                    crate::sync::thread_lane_hint().unwrap(),
                )
            }
        })
        .join()
        .unwrap();
        // The group is the minting thread's lane (threads take lanes in turn).
        assert_eq!(group(there), (lane as u128) & ((1 << GROUP_BITS) - 1));
        let my_lane = crate::sync::thread_lane_hint().unwrap() as u128;
        assert_eq!(group(here[0]), my_lane & ((1 << GROUP_BITS) - 1));
        // The id's top 16 bits land where dashmap reads the shard from.
        for r in [here[0], there] {
            let h = RefHashBuilder.hash_one(r);
            assert_eq!((h >> SHARD_FIELD) & 0xFFFF, (r.as_u128() >> 112) as u64);
        }
    }

    /// The scope index pads its id lists with the nil id, so a saved
    /// registration naming it is refused, and nothing else changes.
    #[test]
    fn nil_id_is_refused_and_the_scope_still_releases_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        std::fs::write(&path, b"x").unwrap();
        let store = MediaStore::builder()
            .background_cleaner(false)
            .build()
            .unwrap();
        let nil = MediaRef::from_uuid(uuid::Uuid::nil());
        let err = store
            .shared()
            .store_as(&path, MediaMeta::forget_only(), "s", nil, None)
            .unwrap_err();
        assert!(matches!(err, StoreError::NilRef), "{err:?}");
        assert!(store.resolve(&nil).is_err());
        assert_eq!(store.stats().live_refs, 0);
        let a = store.store(&path, MediaMeta::forget_only(), "s").unwrap();
        let b = store.store(&path, MediaMeta::forget_only(), "s").unwrap();
        assert_eq!(store.stats().scopes, 1);
        assert_eq!(store.release_all("s"), 2);
        assert!(store.resolve(&a).is_err() && store.resolve(&b).is_err());
        assert!(path.exists(), "forget-only");
    }
}
