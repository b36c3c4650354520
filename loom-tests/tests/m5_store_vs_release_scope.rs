//! Model 5: `store` into a scope vs `release_all` of that scope.
//!
//! Invariant: no live ref that no release can reach. The new ref is either
//! released by that call or still listed under the scope, so one more
//! `release_all` leaves nothing alive.
#![cfg(loom)]

use loom::thread;
use mediastore_loom_tests::*;

fn model(fault: Fault) {
    check("m5_store_vs_release_scope", fault, || {
        let (fs, _clock, store) = setup(&["/m/a", "/m/b"]);
        store.store("/m/a", delete(), "s").unwrap();

        let storer = {
            let store = store.clone();
            thread::spawn(move || store.store("/m/b", delete(), "s").unwrap())
        };
        let releaser = {
            let store = store.clone();
            thread::spawn(move || store.release_all("s"))
        };
        let r = storer.join().unwrap();
        let first = releaser.join().unwrap();
        let second = store.release_all("s");
        assert_eq!(first + second, 2, "first {first} + second {second}");
        assert!(store.resolve(&r).is_err(), "a live ref no release reaches");
        assert_eq!(store.stats().live_refs, 0);
        store.flush();
        assert!(!fs.exists("/m/a") && !fs.exists("/m/b"));
    });
}

#[test]
fn every_stored_ref_is_reachable_by_a_release() {
    model(Fault::None);
}

#[test]
#[should_panic(expected = "first")]
fn fails_when_insert_is_outside_the_scope_lock() {
    model(Fault::InsertOutsideScopeLock);
}
