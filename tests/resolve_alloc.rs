//! Rule 3: `resolve` (and dropping its lease) allocates nothing. A counting
//! global allocator, in its own test binary.
#![cfg(not(loom))]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

std::thread_local! {
    /// Only the measuring thread counts: the store's own threads (the
    /// deleter's orphan sweep, say) may allocate meanwhile.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwards the caller's layout to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn resolve_and_lease_drop_do_not_allocate() {
    let f = Fixture::new();
    let refs: Vec<_> = (0..64)
        .map(|i| {
            f.store
                .store(f.file(&format!("f{i}")), delete(), "s")
                .unwrap()
        })
        .collect();
    let unknown: mediastore::MediaRef = "media://00000000-0000-4000-8000-000000000000"
        .parse()
        .unwrap();
    f.store.flush();
    COUNTING.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::Relaxed);
    let mut total = 0usize;
    for _ in 0..100 {
        for r in &refs {
            let lease = f.store.resolve(r).unwrap();
            total += lease.path().as_os_str().len();
        }
        assert!(f.store.resolve(&unknown).is_err());
    }
    let after = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(false));
    assert!(total > 0);
    assert_eq!(after - before, 0, "resolve allocated");
}
