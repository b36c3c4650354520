//! The implementations compared by the benchmarks, behind one trait, and
//! helpers to make their inputs.
//!
//! * `mediastore`: this crate.
//! * `picoclaw-port`: picoclaw's `FileMediaStore` (seeds 001/002 and the
//!   research notes): one `RwLock` over hash maps keyed by the ref *string*
//!   (ref → entry, scope → refs, ref → scope, path → ref count);
//!   `store` stats the file, then takes the write lock; `clean_expired`
//!   scans every ref under the write lock; files are removed inline by the
//!   caller after the lock is released.
//! * `moka`: `moka::sync::Cache` with `time_to_live` and an eviction
//!   listener that deletes the file, plus a `DashMap` scope index: what a
//!   Rust user would reach for first. Expiry runs in `run_pending_tasks`.
//! * `dashmap-inline`: `DashMap` refs and scopes, expiry by `retain`, files
//!   removed inline by the caller. Like moka, it has no path ref-counting
//!   (it does less work than the two others).
//!
//! All are our own code, written from the descriptions.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use mediastore::{CleanupPolicy, ManualClock, MediaMeta, MediaRef, MediaStore};
use uuid::Uuid;

/// Max age used by every implementation.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// One implementation under test.
pub trait Impl: Send + Sync + 'static {
    /// What `store` hands back.
    type Ref: Clone + Send + Sync + 'static;
    /// Registers a file with realistic metadata (three short strings).
    fn store(&self, path: &Path, policy: CleanupPolicy, scope: &str) -> Self::Ref {
        self.store_meta(path, meta(policy), scope)
    }
    /// Registers a file with the given metadata.
    fn store_meta(&self, path: &Path, meta: MediaMeta, scope: &str) -> Self::Ref;
    /// Resolves a ref and reads its path; returns a value derived from the
    /// path bytes (so the read cannot be optimised away), 0 on a miss.
    fn resolve_read(&self, r: &Self::Ref) -> usize;
    /// Releases a scope.
    fn release_all(&self, scope: &str) -> usize;
    /// One expiry sweep.
    fn clean_expired(&self) -> usize;
    /// Moves this implementation's clock forward (moka uses real time).
    fn advance(&self, d: Duration);
    /// Waits for background deletions (only `mediastore` has any).
    fn settle(&self) {}
}

fn read_path(p: &Path) -> usize {
    let b = p.as_os_str().as_encoded_bytes();
    b.len() + b.last().copied().unwrap_or(0) as usize
}

pub fn meta(policy: CleanupPolicy) -> MediaMeta {
    MediaMeta {
        filename: "attachment.bin".into(),
        content_type: "application/octet-stream".into(),
        source: "bench".into(),
        cleanup_policy: policy,
    }
}

// ---- mediastore ---------------------------------------------------------------------

/// This crate, on a manual clock, cleaner off.
pub struct Ours {
    pub store: MediaStore,
    clock: ManualClock,
}

impl Ours {
    pub fn new() -> Self {
        let clock = ManualClock::new();
        let store = MediaStore::builder()
            .managed_root(bench_root())
            .orphan_sweep(false)
            .max_age(MAX_AGE)
            .clock(clock.clone())
            .background_cleaner(false)
            .build()
            .expect("config");
        Self { store, clock }
    }
}

impl Impl for Ours {
    type Ref = MediaRef;
    fn store_meta(&self, path: &Path, meta: MediaMeta, scope: &str) -> MediaRef {
        self.store.store(path, meta, scope).expect("store")
    }
    #[inline]
    fn resolve_read(&self, r: &MediaRef) -> usize {
        match self.store.resolve(r) {
            Ok(lease) => read_path(lease.path()),
            Err(_) => 0,
        }
    }
    fn release_all(&self, scope: &str) -> usize {
        self.store.release_all(scope)
    }
    fn clean_expired(&self) -> usize {
        self.store.clean_expired()
    }
    fn advance(&self, d: Duration) {
        self.clock.advance(d)
    }
    fn settle(&self) {
        self.store.flush()
    }
}

// ---- picoclaw-port ---------------------------------------------------------------------

struct PicoEntry {
    path: String,
    meta: MediaMeta,
    stored_at: u64,
}

struct PathState {
    ref_count: u32,
    delete_eligible: bool,
}

#[derive(Default)]
struct PicoMaps {
    refs: HashMap<String, PicoEntry>,
    scope_to_refs: HashMap<String, HashSet<String>>,
    ref_to_scope: HashMap<String, String>,
    ref_to_path: HashMap<String, String>,
    path_states: HashMap<String, PathState>,
}

/// picoclaw's `FileMediaStore`, ported.
pub struct Picoclaw {
    maps: RwLock<PicoMaps>,
    now: AtomicU64,
}

impl Picoclaw {
    pub fn new() -> Self {
        Self {
            maps: RwLock::new(PicoMaps::default()),
            now: AtomicU64::new(0),
        }
    }

    /// Drops one ref's bookkeeping; returns the path if its file must go.
    fn release_ref(m: &mut PicoMaps, r: &str) -> Option<String> {
        m.refs.remove(r);
        m.ref_to_scope.remove(r);
        let path = m.ref_to_path.remove(r)?;
        let st = m.path_states.get_mut(&path)?;
        st.ref_count -= 1;
        if st.ref_count > 0 {
            return None;
        }
        let eligible = st.delete_eligible;
        m.path_states.remove(&path);
        eligible.then_some(path)
    }

    fn remove_files(paths: Vec<String>) {
        for p in paths {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("picoclaw-port: remove {p}: {e}");
                }
            }
        }
    }
}

impl Impl for Picoclaw {
    type Ref = String;
    fn store_meta(&self, path: &Path, meta: MediaMeta, scope: &str) -> String {
        std::fs::metadata(path).expect("stat");
        let policy = meta.cleanup_policy;
        let r = format!("media://{}", Uuid::new_v4());
        let path = path.to_string_lossy().into_owned();
        let now = self.now.load(Ordering::Relaxed);
        let mut m = self.maps.write().unwrap();
        m.refs.insert(
            r.clone(),
            PicoEntry {
                path: path.clone(),
                meta,
                stored_at: now,
            },
        );
        m.scope_to_refs
            .entry(scope.to_owned())
            .or_default()
            .insert(r.clone());
        m.ref_to_scope.insert(r.clone(), scope.to_owned());
        m.ref_to_path.insert(r.clone(), path.clone());
        let delete = policy == CleanupPolicy::DeleteOnCleanup;
        let st = m.path_states.entry(path).or_insert(PathState {
            ref_count: 0,
            delete_eligible: delete,
        });
        if st.ref_count == 0 {
            st.delete_eligible = delete;
        } else if !delete {
            st.delete_eligible = false;
        }
        st.ref_count += 1;
        r
    }
    #[inline]
    fn resolve_read(&self, r: &String) -> usize {
        let m = self.maps.read().unwrap();
        match m.refs.get(r) {
            Some(e) => read_path(Path::new(&e.path)),
            None => 0,
        }
    }
    fn release_all(&self, scope: &str) -> usize {
        let (n, paths) = {
            let mut m = self.maps.write().unwrap();
            let Some(refs) = m.scope_to_refs.remove(scope) else {
                return 0;
            };
            let mut paths = Vec::new();
            for r in &refs {
                paths.extend(Self::release_ref(&mut m, r));
            }
            (refs.len(), paths)
        };
        Self::remove_files(paths);
        n
    }
    fn clean_expired(&self) -> usize {
        let now = self.now.load(Ordering::Relaxed);
        let max = MAX_AGE.as_nanos() as u64;
        let (n, paths) = {
            let mut m = self.maps.write().unwrap();
            let expired: Vec<String> = m
                .refs
                .iter()
                .filter(|(_, e)| now.saturating_sub(e.stored_at) > max)
                .map(|(r, _)| r.clone())
                .collect();
            let mut paths = Vec::new();
            for r in &expired {
                if let Some(scope) = m.ref_to_scope.get(r).cloned() {
                    if let Some(set) = m.scope_to_refs.get_mut(&scope) {
                        set.remove(r);
                        if set.is_empty() {
                            m.scope_to_refs.remove(&scope);
                        }
                    }
                }
                paths.extend(Self::release_ref(&mut m, r));
            }
            (expired.len(), paths)
        };
        Self::remove_files(paths);
        n
    }
    fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Takes a scope's ids out of a `DashMap` scope index and removes each with
/// `remove` (true if it was still there); returns how many were.
fn release_scope(
    scopes: &DashMap<String, Vec<Uuid>>,
    scope: &str,
    mut remove: impl FnMut(Uuid) -> bool,
) -> usize {
    let Some((_, ids)) = scopes.remove(scope) else {
        return 0;
    };
    ids.into_iter().filter(|&id| remove(id)).count()
}

// ---- moka -----------------------------------------------------------------------------------

pub struct MokaEntry {
    path: PathBuf,
    meta: MediaMeta,
    scope: String,
}

/// `moka::sync::Cache` + a `DashMap` scope index.
pub struct Moka {
    pub cache: moka::sync::Cache<Uuid, Arc<MokaEntry>>,
    scopes: Arc<DashMap<String, Vec<Uuid>>>,
    pub evicted: Arc<AtomicU64>,
}

impl Moka {
    pub fn new(ttl: Duration) -> Self {
        let scopes: Arc<DashMap<String, Vec<Uuid>>> = Arc::new(DashMap::new());
        let evicted = Arc::new(AtomicU64::new(0));
        let (s2, e2) = (Arc::clone(&scopes), Arc::clone(&evicted));
        let cache = moka::sync::Cache::builder()
            .time_to_live(ttl)
            .eviction_listener(move |id: Arc<Uuid>, e: Arc<MokaEntry>, cause| {
                use moka::notification::RemovalCause;
                if cause == RemovalCause::Expired {
                    e2.fetch_add(1, Ordering::Relaxed);
                    if let Some(mut v) = s2.get_mut(&e.scope) {
                        v.retain(|x| x != &*id);
                    }
                    s2.remove_if(&e.scope, |_, v| v.is_empty());
                }
                if cause != RemovalCause::Replaced
                    && e.meta.cleanup_policy == CleanupPolicy::DeleteOnCleanup
                {
                    let _ = std::fs::remove_file(&e.path);
                }
            })
            .build();
        Self {
            cache,
            scopes,
            evicted,
        }
    }
}

impl Impl for Moka {
    type Ref = Uuid;
    fn store_meta(&self, path: &Path, meta: MediaMeta, scope: &str) -> Uuid {
        std::fs::metadata(path).expect("stat");
        let id = Uuid::new_v4();
        self.cache.insert(
            id,
            Arc::new(MokaEntry {
                path: path.to_path_buf(),
                meta,
                scope: scope.to_owned(),
            }),
        );
        self.scopes.entry(scope.to_owned()).or_default().push(id);
        id
    }
    #[inline]
    fn resolve_read(&self, r: &Uuid) -> usize {
        match self.cache.get(r) {
            Some(e) => read_path(&e.path),
            None => 0,
        }
    }
    fn release_all(&self, scope: &str) -> usize {
        // The eviction listener deletes the file, inline.
        release_scope(&self.scopes, scope, |id| self.cache.remove(&id).is_some())
    }
    fn clean_expired(&self) -> usize {
        let before = self.evicted.load(Ordering::Relaxed);
        self.cache.run_pending_tasks();
        (self.evicted.load(Ordering::Relaxed) - before) as usize
    }
    fn advance(&self, _d: Duration) {}
}

// ---- dashmap-inline ---------------------------------------------------------------------------

pub struct InlineEntry {
    path: PathBuf,
    meta: MediaMeta,
    scope: String,
    stored_at: u64,
}

/// `DashMap` refs and scopes, files removed inline.
pub struct DashInline {
    refs: DashMap<Uuid, InlineEntry>,
    scopes: DashMap<String, Vec<Uuid>>,
    now: AtomicU64,
}

impl DashInline {
    pub fn new() -> Self {
        Self {
            refs: DashMap::new(),
            scopes: DashMap::new(),
            now: AtomicU64::new(0),
        }
    }
}

impl Impl for DashInline {
    type Ref = Uuid;
    fn store_meta(&self, path: &Path, meta: MediaMeta, scope: &str) -> Uuid {
        std::fs::metadata(path).expect("stat");
        let id = Uuid::new_v4();
        self.refs.insert(
            id,
            InlineEntry {
                path: path.to_path_buf(),
                meta,
                scope: scope.to_owned(),
                stored_at: self.now.load(Ordering::Relaxed),
            },
        );
        self.scopes.entry(scope.to_owned()).or_default().push(id);
        id
    }
    #[inline]
    fn resolve_read(&self, r: &Uuid) -> usize {
        match self.refs.get(r) {
            Some(e) => read_path(&e.path),
            None => 0,
        }
    }
    fn release_all(&self, scope: &str) -> usize {
        release_scope(&self.scopes, scope, |id| match self.refs.remove(&id) {
            Some((_, e)) => {
                if e.meta.cleanup_policy == CleanupPolicy::DeleteOnCleanup {
                    let _ = std::fs::remove_file(&e.path);
                }
                true
            }
            None => false,
        })
    }
    fn clean_expired(&self) -> usize {
        let now = self.now.load(Ordering::Relaxed);
        let max = MAX_AGE.as_nanos() as u64;
        let mut gone = Vec::new();
        self.refs.retain(|id, e| {
            if now.saturating_sub(e.stored_at) > max {
                gone.push((*id, e.scope.clone(), e.path.clone(), e.meta.cleanup_policy));
                false
            } else {
                true
            }
        });
        for (id, scope, path, policy) in &gone {
            if let Some(mut v) = self.scopes.get_mut(scope) {
                v.retain(|x| x != id);
            }
            self.scopes.remove_if(scope, |_, v| v.is_empty());
            if *policy == CleanupPolicy::DeleteOnCleanup {
                let _ = std::fs::remove_file(path);
            }
        }
        gone.len()
    }
    fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
}

// ---- inputs ---------------------------------------------------------------------------------------

/// The folder every benchmark works in (the managed root of `Ours`).
pub fn bench_root() -> PathBuf {
    let root = std::env::temp_dir().join("mediastore-bench");
    std::fs::create_dir_all(&root).expect("bench root");
    root
}

/// A fresh folder inside [`bench_root`].
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{tag}-"))
        .tempdir_in(bench_root())
        .expect("temp dir")
}

/// Creates `n` empty files named `{prefix}{i}` in `dir`.
pub fn make_files(dir: &Path, prefix: &str, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("{prefix}{i:07}.bin"));
            std::fs::File::create(&p).expect("create file");
            p
        })
        .collect()
}

/// A small xorshift generator (no allocation, no locking).
pub struct Rng(pub u64);

impl Rng {
    #[inline]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `QUICK=1` (or `MEDIASTORE_BENCH_QUICK=1`) shrinks the runs.
pub fn quick() -> bool {
    ["QUICK", "MEDIASTORE_BENCH_QUICK"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| s != "0" && !s.is_empty()))
}
