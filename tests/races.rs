//! Rules 7 and 8 under real threads, and the stress test.
#![cfg(not(loom))]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use mediastore::{MediaLease, MediaRef, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Rule 7 (picoclaw #1886): a store racing the last release of its path
/// either keeps the file (its ref resolves) or fails with not-found.
#[test]
fn r7_restore_racing_the_last_release() {
    let f = Fixture::new();
    let barrier = Arc::new(Barrier::new(2));
    let (mut kept, mut refused) = (0, 0);
    for i in 0..400 {
        let p = f.file(&format!("p{i}"));
        f.store.store(&p, delete(), "old").unwrap();
        let (s1, b1) = (f.store.clone(), Arc::clone(&barrier));
        let releaser = std::thread::spawn(move || {
            b1.wait();
            s1.release_all("old");
        });
        barrier.wait();
        let mut mine: Vec<MediaRef> = Vec::new();
        let mut outcome = None;
        for _ in 0..200 {
            match f.store.store(&p, delete(), "new") {
                Ok(r) => mine.push(r),
                Err(e) => {
                    outcome = Some(e);
                    break;
                }
            }
        }
        releaser.join().unwrap();
        f.store.flush();
        match outcome {
            Some(StoreError::NotFound { .. }) if mine.is_empty() => {
                refused += 1;
                assert!(!exists(&p));
            }
            Some(e) if !mine.is_empty() => panic!("store failed after succeeding: {e}"),
            Some(e) => panic!("unexpected error {e}"),
            None => {
                kept += 1;
                assert!(exists(&p), "a live ref's file was deleted (iteration {i})");
                for r in &mine {
                    assert!(f.store.resolve(r).is_ok());
                }
            }
        }
        f.store.release_all("new");
        f.store.flush();
        assert!(!exists(&p));
    }
    eprintln!("r7: kept {kept}, refused {refused}");
    assert_eq!(kept + refused, 400);
}

/// Rule 8: stores into a scope racing `release_all` of it never leave a ref
/// that no release reaches.
#[test]
fn r8_store_into_scope_racing_release_all() {
    let f = Fixture::new();
    let p = f.file("shared");
    let stored = Arc::new(AtomicU64::new(0));
    let released = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storers: Vec<_> = (0..2)
        .map(|_| {
            let (s, p, n) = (f.store.clone(), p.clone(), Arc::clone(&stored));
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    s.store(&p, forget(), "hot").unwrap();
                    n.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let releaser = {
        let (s, n, stop) = (f.store.clone(), Arc::clone(&released), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                n.fetch_add(s.release_all("hot") as u64, Ordering::Relaxed);
            }
        })
    };
    for h in storers {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    releaser.join().unwrap();
    let last = f.store.release_all("hot") as u64;
    let total = released.load(Ordering::Relaxed) + last;
    assert_eq!(total, stored.load(Ordering::Relaxed));
    let s = f.store.stats();
    assert_eq!((s.live_refs, s.scopes), (0, 0));
    assert_eq!(s.refs_released, total);
}

/// Several threads store, resolve-and-hold, drop, release and expire at
/// random; no file is ever deleted while a lease on it is held, and at the
/// end nothing is left but the forget-only files.
#[test]
fn stress_random_operations() {
    const THREADS: usize = 4;
    const OPS: usize = 150_000;
    let f = Fixture::new();
    let owned: Arc<Vec<PathBuf>> = Arc::new(
        (0..48)
            .map(|i| f.dir.path().join(format!("own{i}")))
            .collect(),
    );
    let borrowed: Arc<Vec<PathBuf>> =
        Arc::new((0..12).map(|i| f.file(&format!("ws{i}"))).collect());
    let stored = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = f.store.clone();
            let clock = f.clock.clone();
            let (owned, borrowed, stored) = (
                Arc::clone(&owned),
                Arc::clone(&borrowed),
                Arc::clone(&stored),
            );
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(0x5eed + t as u64);
                let mut leases: Vec<MediaLease> = Vec::new();
                let mut refs: Vec<MediaRef> = Vec::new();
                let mut scopes: Vec<String> = Vec::new();
                for i in 0..OPS {
                    match rng.gen_range(0..100) {
                        0..=34 => {
                            let scope = format!("t{t}-m{}", i / 8);
                            let (path, meta) = if rng.gen_bool(0.8) {
                                let p = &owned[rng.gen_range(0..owned.len())];
                                if !exists(p) {
                                    std::fs::write(p, b"x").unwrap();
                                }
                                (p, delete())
                            } else {
                                (&borrowed[rng.gen_range(0..borrowed.len())], forget())
                            };
                            match store.store(path, meta, &scope) {
                                Ok(r) => {
                                    stored.fetch_add(1, Ordering::Relaxed);
                                    refs.push(r);
                                    if scopes.last() != Some(&scope) {
                                        scopes.push(scope);
                                    }
                                }
                                Err(StoreError::NotFound { .. }) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        35..=59 => {
                            if let Some(r) = refs.get(rng.gen_range(0..refs.len().max(1))) {
                                if let Ok(l) = store.resolve(r) {
                                    assert!(exists(l.path()), "resolved a ref whose file is gone");
                                    leases.push(l);
                                }
                            }
                        }
                        60..=74 => {
                            if !leases.is_empty() {
                                let l = leases.swap_remove(rng.gen_range(0..leases.len()));
                                assert!(exists(l.path()), "file deleted under a lease");
                            }
                        }
                        75..=89 => {
                            if !scopes.is_empty() {
                                let s = scopes.swap_remove(rng.gen_range(0..scopes.len()));
                                store.release_all(&s);
                            }
                        }
                        90..=96 => clock.advance(Duration::from_secs(rng.gen_range(1..120))),
                        _ => {
                            store.clean_expired();
                        }
                    }
                    for l in leases.iter().take(2) {
                        assert!(exists(l.path()), "file deleted under a lease");
                    }
                }
                for l in &leases {
                    assert!(exists(l.path()), "file deleted under a lease");
                }
                (scopes, leases)
            })
        })
        .collect();
    let mut leftovers = Vec::new();
    for h in handles {
        leftovers.push(h.join().unwrap());
    }
    let live_before = f.store.stats().live_refs;
    // Every live ref's file exists.
    let s = f.store.stats();
    assert_eq!(
        stored.load(Ordering::Relaxed),
        s.refs_released + s.refs_expired + s.live_refs,
        "stored = released + expired + live"
    );
    let mut released_now = 0;
    for (scopes, _) in &leftovers {
        for sc in scopes {
            released_now += f.store.release_all(sc) as u64;
        }
    }
    // Scopes the threads forgot (emptied by TTL or released) hold nothing;
    // anything still live must be in a listed scope.
    assert_eq!(released_now, live_before);
    f.store.flush();
    for (_, leases) in &leftovers {
        for l in leases {
            assert!(exists(l.path()));
        }
    }
    drop(leftovers);
    f.store.flush();
    let left: Vec<_> = owned.iter().filter(|p| exists(p)).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    assert!(
        borrowed.iter().all(|p| exists(p)),
        "a forget-only file was deleted"
    );
    let s = f.store.stats();
    assert_eq!((s.live_refs, s.scopes, s.pending_deletions), (0, 0, 0));
    assert_eq!(s.deletion_errors, 0);
}
