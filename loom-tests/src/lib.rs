//! Shared helpers for the loom models in `tests/`.
//!
//! Every model runs the store's real code, built with `--cfg loom`: loom's
//! locks, atomics, threads and channel, two-shard maps, counter ids, a
//! manual clock and an in-memory file table ([`MemFs`]). Run with
//!
//! ```text
//! LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom -C debug-assertions" \
//!     cargo test -p mediastore-loom-tests --release
//! ```
#![cfg(loom)]

use std::time::{Duration, Instant};

pub use mediastore::faults::{self, Fault};
pub use mediastore::{CleanupPolicy, ManualClock, MediaMeta, MediaStore, MemFs};

/// Max age used by the models.
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// A store over `fs` on `clock`, cleaner off.
pub fn store(fs: &MemFs, clock: &ManualClock) -> MediaStore {
    MediaStore::builder()
        .max_age(MAX_AGE)
        .clock(clock.clone())
        .background_cleaner(false)
        .mem_fs(fs.clone())
        .managed_root("/m")
        .build()
        .expect("valid config")
}

/// An in-memory file table holding `files`, a manual clock at zero and a
/// store over both.
pub fn setup(files: &[&str]) -> (MemFs, ManualClock, MediaStore) {
    let fs = MemFs::new();
    for f in files {
        fs.create(f);
    }
    let clock = ManualClock::new();
    let store = store(&fs, &clock);
    (fs, clock, store)
}

/// `DeleteOnCleanup` metadata.
pub fn delete() -> MediaMeta {
    MediaMeta::default()
}

/// Resolves `r` and, if it resolves, checks that the file exists when the
/// lease is taken and still exists after a yield (other threads may run in
/// between): the promise of a lease.
pub fn resolve_and_hold(store: &MediaStore, fs: &MemFs, r: &mediastore::MediaRef) {
    match store.resolve(r) {
        Ok(lease) => {
            assert!(fs.exists(lease.path()), "resolved a deleted file");
            loom::thread::yield_now();
            assert!(fs.exists(lease.path()), "file deleted under a lease");
        }
        Err(mediastore::ResolveError::UnknownRef(_)) => {}
        Err(e) => panic!("{e}"),
    }
}

/// Stores `path` (delete-on-cleanup) under `scope`, racing whatever ends its
/// previous lifetime: either the new ref resolves to a file that exists
/// (returns `true`) or the store fails with not-found (returns `false`).
pub fn restore(store: &MediaStore, fs: &MemFs, path: &str, scope: &str) -> bool {
    match store.store(path, delete(), scope) {
        Ok(r) => {
            let lease = store.resolve(&r).expect("a new ref resolves");
            assert!(fs.exists(lease.path()), "live ref to a deleted file");
            true
        }
        Err(mediastore::StoreError::NotFound { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `f` under loom (bounds from `LOOM_*` variables) with `fault` on,
/// and prints how many interleavings were explored and how long it took.
pub fn check<F>(name: &str, fault: Fault, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    faults::set(fault);
    let iterations = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&iterations);
    let started = Instant::now();
    let builder = loom::model::Builder::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        builder.check(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f();
        })
    }));
    faults::set(Fault::None);
    let n = iterations.load(std::sync::atomic::Ordering::Relaxed);
    let verdict = match (fault == Fault::None, outcome.is_ok()) {
        (true, true) => "passed",
        (true, false) => "FAILED",
        (false, false) => "fault switch caught, as expected",
        (false, true) => "fault switch NOT caught",
    };
    eprintln!(
        "loom model {name}: {n} iterations in {:.2} s ({verdict})",
        started.elapsed().as_secs_f64(),
    );
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
