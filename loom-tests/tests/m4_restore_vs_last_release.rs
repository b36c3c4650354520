//! Model 4: `store(path)` vs the last release or expiry of the same path
//! (picoclaw #1886).
//!
//! Invariant: never a live ref to a deleted file. The store either succeeds
//! and the file survives for as long as its new ref lives, or fails with
//! not-found because the file is already gone; at the end the file exists
//! iff a ref to it is alive, and it is deleted exactly once.
#![cfg(loom)]

use std::time::Duration;

use loom::thread;
use mediastore_loom_tests::*;

#[derive(Clone, Copy)]
enum LastRef {
    Released,
    Expired,
}

fn model(name: &str, last: LastRef, fault: Fault) {
    check(name, fault, move || {
        let (fs, clock, store) = setup(&["/m/a"]);
        store.store("/m/a", delete(), "old").unwrap();
        if let LastRef::Expired = last {
            clock.advance(MAX_AGE + Duration::from_secs(1));
        }

        let ender = {
            let store = store.clone();
            thread::spawn(move || match last {
                LastRef::Released => assert_eq!(store.release_all("old"), 1),
                LastRef::Expired => assert_eq!(store.clean_expired(), 1),
            })
        };
        let restorer = {
            let (store, fs) = (store.clone(), fs.clone());
            thread::spawn(move || restore(&store, &fs, "/m/a", "new"))
        };
        ender.join().unwrap();
        let stored = restorer.join().unwrap();
        store.flush();
        if stored {
            assert!(fs.exists("/m/a"), "live ref to a deleted file");
            assert_eq!(fs.deletions("/m/a"), 0);
            assert_eq!(store.release_all("new"), 1);
            store.flush();
        }
        assert!(!fs.exists("/m/a"));
        assert_eq!(fs.deletions("/m/a"), 1);
    });
}

#[test]
fn restore_racing_the_last_release() {
    model("m4_restore_vs_release", LastRef::Released, Fault::None);
}

#[test]
fn restore_racing_the_last_expiry() {
    model("m4_restore_vs_expiry", LastRef::Expired, Fault::None);
}

#[test]
#[should_panic(expected = "live ref to a deleted file")]
fn fails_when_the_deleter_does_not_commit() {
    model(
        "m4_restore_vs_release_fault",
        LastRef::Released,
        Fault::UnlinkWithoutCommit,
    );
}
