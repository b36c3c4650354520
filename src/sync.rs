//! The one place where concurrency primitives are chosen.
//!
//! Every lock, atomic, thread, channel, concurrent map, swappable cell, id
//! source and file-system call that the store's protocol uses comes from this
//! module. A normal build gets `std`, `dashmap`, `crossbeam-channel`,
//! `arc-swap`, `uuid` and `std::fs`; a build with `--cfg loom` gets loom's
//! instrumented primitives and deterministic stand-ins with the *same lock
//! granularity*:
//!
//! | production               | under `--cfg loom`                                   |
//! |--------------------------|------------------------------------------------------|
//! | `dashmap::DashMap`       | two shards of `loom::sync::RwLock<BTreeMap>`          |
//! | `crossbeam_channel`      | `loom::sync::mpsc` (shutdown is an explicit message)  |
//! | `arc_swap::ArcSwap`      | `loom::sync::RwLock<Arc<T>>`                          |
//! | `Uuid::new_v4`           | a per-store counter                                   |
//! | `std::fs`                | [`MemFs`], an in-memory file table                    |
//!
//! The store's code is the same source in both builds; only the leaf types
//! below differ. Invariants kept here:
//!
//! * A [`ShardMap`] operation holds exactly one shard lock for its duration
//!   and never calls back into user code; closures passed to it run under
//!   that shard's lock, so callers must keep them short and free of I/O.
//! * Lock poisoning is ignored on purpose: every critical section in this
//!   crate leaves its data consistent at each step, so a panic in one thread
//!   must not turn every later call into a panic.

#[cfg(loom)]
mod memfs;
mod shard_map;

#[cfg(loom)]
pub use memfs::MemFs;
/// The hasher of the maps keyed by text (scopes, paths): foldhash, seeded
/// at random per process (hashbrown's default). SipHash cost about 3 % of a
/// store/resolve/release cycle in profiles; foldhash keeps the per-process
/// random seed that makes collision flooding impractical for a client that
/// cannot read the seed, which is the threat a gateway faces (scopes and
/// paths come from chat ids and file names).
pub(crate) type TextHash = foldhash::fast::RandomState;

pub(crate) use shard_map::{ShardMap, Update};

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
    pub(crate) use std::thread;

    /// The `Arc` of ref entries (shared by the ref map and leases): without
    /// a weak count, so 8 bytes smaller per ref than `std`'s, and with one
    /// atomic operation fewer on the last drop.
    pub(crate) type EntryArc<T> = triomphe::Arc<T>;

    /// The deleter's channel: unbounded, FIFO, multi-producer.
    pub(crate) mod channel {
        pub(crate) use crossbeam_channel::{unbounded, Receiver, Sender};
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{
        Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
    };
    pub(crate) use loom::thread;

    /// loom's `Arc`, so the models see every lease's clone and drop.
    pub(crate) type EntryArc<T> = loom::sync::Arc<T>;

    /// loom's channel does not model disconnection; the deleter is always
    /// stopped with an explicit `Shutdown` message, in production too.
    pub(crate) mod channel {
        pub(crate) use loom::sync::mpsc::{channel as unbounded, Receiver, Sender};
    }
}

pub(crate) use imp::*;

/// Shared immutable data (a path record's path off Unix). No protocol
/// depends on its reference count, so it is always `std`'s `Arc` (loom's
/// `Arc` cannot hold unsized values such as `OsStr`).
#[cfg(not(unix))]
pub(crate) type Frozen<T> = std::sync::Arc<T>;

/// Statistics counters. Always `std` atomics, invisible to loom on purpose:
/// no decision of the protocol reads them, and keeping them out of the
/// model keeps its state space small.
pub(crate) type StatCounter = std::sync::atomic::AtomicU64;

#[cfg(not(loom))]
std::thread_local! {
    static ON_DELETER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(loom)]
loom::thread_local! {
    static ON_DELETER: std::cell::Cell<bool> = std::cell::Cell::new(false);
}

/// Marks the current thread as a store's deleter thread.
pub(crate) fn mark_deleter_thread() {
    ON_DELETER.with(|c| c.set(true));
}

/// Whether the current thread is a deleter thread: a deletion that becomes
/// due there (a lease dropped while it let go of the same entry) is carried
/// out at once instead of being queued behind jobs, such as a `Flush`, that
/// were sent after the one being handled.
pub(crate) fn on_deleter_thread() -> bool {
    ON_DELETER.with(|c| c.get())
}

/// A small per-thread number (threads numbered round-robin as they first
/// ask), used to give each storing thread its own TTL lane. `None` under
/// loom, where every model thread shares one OS thread.
pub(crate) fn thread_lane_hint() -> Option<usize> {
    #[cfg(not(loom))]
    {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        std::thread_local! {
            // Relaxed: only a spread of numbers is needed, no ordering.
            static LANE: usize = NEXT.fetch_add(1, Relaxed);
        }
        Some(LANE.with(|l| *l))
    }
    #[cfg(loom)]
    {
        None
    }
}

/// Takes a mutex, ignoring poisoning (see the module invariants).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes a read lock, ignoring poisoning.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

/// Takes a write lock, ignoring poisoning.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// A cell holding the current value of a setting that can be swapped at run
/// time. `load` returns one consistent snapshot; callers take one snapshot
/// per operation (a sweep reads its configuration exactly once).
#[derive(Debug)]
pub(crate) struct SwapCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(loom)]
    inner: RwLock<Arc<T>>,
}

impl<T> SwapCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: arc_swap::ArcSwap::from_pointee(value),
            #[cfg(loom)]
            inner: RwLock::new(Arc::new(value)),
        }
    }

    /// A snapshot of the current value.
    #[cfg(not(loom))]
    pub(crate) fn load(&self) -> std::sync::Arc<T> {
        // arc-swap's load/store are linearizable (each includes a SeqCst
        // read-modify-write), which is what the loom stand-in's lock gives.
        self.inner.load_full()
    }

    /// A snapshot of the current value.
    #[cfg(loom)]
    pub(crate) fn load(&self) -> Arc<T> {
        Arc::clone(&read(&self.inner))
    }

    /// Replaces the value; later `load`s see the new one.
    pub(crate) fn store(&self, value: T) {
        #[cfg(not(loom))]
        self.inner.store(std::sync::Arc::new(value));
        #[cfg(loom)]
        {
            *write(&self.inner) = Arc::new(value);
        }
    }
}

/// Where refs' ids come from: random v4 UUIDs in production, a counter under
/// loom (so that shard choice, and therefore locking, replays identically).
#[derive(Debug, Default)]
pub(crate) struct IdSource {
    #[cfg(loom)]
    next: std::sync::atomic::AtomicU64,
}

impl IdSource {
    pub(crate) fn next(&self) -> uuid::Uuid {
        #[cfg(not(loom))]
        {
            uuid::Uuid::new_v4()
        }
        #[cfg(loom)]
        {
            // Invisible to loom on purpose: it is a source of names, not a
            // synchronisation point.
            let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            uuid::Uuid::from_u64_pair(0, n)
        }
    }
}

/// What `lstat` says a path is.
#[cfg_attr(loom, allow(dead_code))] // the in-memory table only makes regular files
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A regular file.
    Regular,
    /// A symbolic link (never followed).
    Symlink,
    /// A directory, socket, fifo or device.
    Other,
}

/// The file-system calls the store makes: `lstat` on store, `unlink`
/// (beneath a managed root) on the deleter thread.
#[derive(Debug)]
pub(crate) struct Fs {
    roots: crate::roots::Roots,
    #[cfg(loom)]
    mem: MemFs,
}

impl Fs {
    #[cfg(not(loom))]
    pub(crate) fn new(roots: crate::roots::Roots) -> Self {
        Self { roots }
    }

    #[cfg(loom)]
    pub(crate) fn new(roots: crate::roots::Roots, mem: MemFs) -> Self {
        Self { roots, mem }
    }

    /// The managed roots.
    pub(crate) fn roots(&self) -> &crate::roots::Roots {
        &self.roots
    }

    /// `lstat`: what the path is, without following a final symlink.
    pub(crate) fn kind(&self, path: &std::path::Path) -> std::io::Result<FileKind> {
        #[cfg(all(unix, not(loom)))]
        {
            use rustix::fs::FileType;
            let st = rustix::fs::lstat(path)?;
            Ok(match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => FileKind::Regular,
                FileType::Symlink => FileKind::Symlink,
                _ => FileKind::Other,
            })
        }
        #[cfg(all(not(unix), not(loom)))]
        {
            let ft = std::fs::symlink_metadata(path)?.file_type();
            Ok(if ft.is_file() {
                FileKind::Regular
            } else if ft.is_symlink() {
                FileKind::Symlink
            } else {
                FileKind::Other
            })
        }
        #[cfg(loom)]
        {
            self.mem.kind(path)
        }
    }

    /// `unlink` beneath the path's managed root: removes the directory
    /// entry (a symlink itself, never its target) without following any
    /// symlink on the way.
    pub(crate) fn remove_file(&self, path: &std::path::Path) -> std::io::Result<()> {
        #[cfg(not(loom))]
        {
            self.roots.unlink(path)
        }
        #[cfg(loom)]
        {
            if !self.roots.contains(path) {
                return Err(std::io::ErrorKind::PermissionDenied.into());
            }
            self.mem.remove_file(path)
        }
    }
}
