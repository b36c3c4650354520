//! Model 1: `resolve` vs `release_all` vs the deleter.
//!
//! Invariant: a resolve either fails with `UnknownRef` or returns a lease
//! whose file exists until the lease is dropped; the file is deleted exactly
//! once, after the release and the lease are both gone.
#![cfg(loom)]

use loom::thread;
use mediastore::ResolveError;
use mediastore_loom_tests::*;

fn model(fault: Fault) {
    check("m1_resolve_vs_release", fault, || {
        let fs = MemFs::new();
        fs.create("/m/a");
        let clock = ManualClock::new();
        let store = store(&fs, &clock);
        let r = store.store("/m/a", delete(), "s").unwrap();

        let releaser = {
            let store = store.clone();
            thread::spawn(move || {
                assert_eq!(store.release_all("s"), 1);
            })
        };
        let reader = {
            let (store, fs) = (store.clone(), fs.clone());
            thread::spawn(move || match store.resolve(&r) {
                Ok(lease) => {
                    assert!(fs.exists(lease.path()), "resolved a deleted file");
                    thread::yield_now();
                    assert!(fs.exists(lease.path()), "file deleted under a lease");
                }
                Err(ResolveError::UnknownRef(_)) => {}
                Err(e) => panic!("{e}"),
            })
        };
        releaser.join().unwrap();
        reader.join().unwrap();
        store.flush();
        assert!(!fs.exists("/m/a"));
        assert_eq!(fs.deletions("/m/a"), 1);
        assert!(store.resolve(&r).is_err());
    });
}

#[test]
fn resolve_never_sees_a_deleted_file_during_release() {
    model(Fault::None);
}

#[test]
#[should_panic(expected = "file deleted under a lease")]
fn fails_when_the_count_ignores_leases() {
    model(Fault::ReleaseIgnoringLeases);
}
