//! Model 3: `release_all` vs `clean_expired` on the same refs.
//!
//! Invariant: each ref is claimed by exactly one of them (released +
//! expired = stored), and each file is deleted exactly once.
#![cfg(loom)]

use std::time::Duration;

use loom::thread;
use mediastore_loom_tests::*;

fn model(fault: Fault) {
    check("m3_release_vs_expiry", fault, || {
        let (fs, clock, store) = setup(&["/m/a", "/m/b"]);
        store.store("/m/a", delete(), "s").unwrap();
        store.store("/m/b", delete(), "s").unwrap();
        clock.advance(MAX_AGE + Duration::from_secs(1));

        let releaser = {
            let store = store.clone();
            thread::spawn(move || store.release_all("s"))
        };
        let sweeper = {
            let store = store.clone();
            thread::spawn(move || store.clean_expired())
        };
        let released = releaser.join().unwrap();
        let expired = sweeper.join().unwrap();
        assert_eq!(
            released + expired,
            2,
            "released {released} + expired {expired}"
        );
        store.flush();
        let s = store.stats();
        assert_eq!(s.refs_released + s.refs_expired, 2);
        assert_eq!((s.live_refs, s.scopes), (0, 0));
        assert_eq!(fs.deletions("/m/a"), 1);
        assert_eq!(fs.deletions("/m/b"), 1);
    });
}

#[test]
fn each_ref_is_claimed_once_and_each_file_deleted_once() {
    model(Fault::None);
}

#[test]
#[should_panic(expected = "released")]
fn fails_when_expiry_checks_then_acts() {
    model(Fault::ExpiryCheckThenAct);
}
