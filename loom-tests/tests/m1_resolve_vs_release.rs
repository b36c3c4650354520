//! Model 1: `resolve` vs `release_all` vs the deleter.
//!
//! Invariant: a resolve either fails with `UnknownRef` or returns a lease
//! whose file exists until the lease is dropped; the file is deleted exactly
//! once, after the release and the lease are both gone.
#![cfg(loom)]

use loom::thread;
use mediastore_loom_tests::*;

fn model(fault: Fault) {
    check("m1_resolve_vs_release", fault, || {
        let (fs, _clock, store) = setup(&["/m/a"]);
        let r = store.store("/m/a", delete(), "s").unwrap();

        let releaser = {
            let store = store.clone();
            thread::spawn(move || {
                assert_eq!(store.release_all("s"), 1);
            })
        };
        let reader = {
            let (store, fs) = (store.clone(), fs.clone());
            thread::spawn(move || resolve_and_hold(&store, &fs, &r))
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
