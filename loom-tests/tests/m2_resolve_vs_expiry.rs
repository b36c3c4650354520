//! Model 2: `resolve` vs `clean_expired` (clock past max age) vs the deleter.
//!
//! Invariant: as in model 1, a resolve either fails with `UnknownRef` or
//! returns a lease whose file exists until the lease is dropped; the sweep
//! expires the ref exactly once and the file is deleted exactly once.
#![cfg(loom)]

use std::time::Duration;

use loom::thread;
use mediastore_loom_tests::*;

fn model(fault: Fault) {
    check("m2_resolve_vs_expiry", fault, || {
        let (fs, clock, store) = setup(&["/m/a"]);
        let r = store.store("/m/a", delete(), "s").unwrap();
        clock.advance(MAX_AGE + Duration::from_secs(1));

        let sweeper = {
            let store = store.clone();
            thread::spawn(move || store.clean_expired())
        };
        let reader = {
            let (store, fs) = (store.clone(), fs.clone());
            thread::spawn(move || resolve_and_hold(&store, &fs, &r))
        };
        assert_eq!(sweeper.join().unwrap(), 1);
        reader.join().unwrap();
        store.flush();
        assert!(!fs.exists("/m/a"));
        assert_eq!(fs.deletions("/m/a"), 1);
        assert_eq!(store.stats().refs_expired, 1);
        assert_eq!(store.stats().scopes, 0);
    });
}

#[test]
fn resolve_never_sees_a_deleted_file_during_expiry() {
    model(Fault::None);
}

#[test]
#[should_panic(expected = "file deleted under a lease")]
fn fails_when_the_count_ignores_leases() {
    model(Fault::ReleaseIgnoringLeases);
}
