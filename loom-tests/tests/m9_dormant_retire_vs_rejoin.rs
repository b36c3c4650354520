//! Model 9: a dormant path record pushed out of its queue (retired for
//! real) vs a `store` that rejoins the same path.
//!
//! Invariant: one path, one record. Whatever the interleaving, the store's
//! ref keeps its file while it lives; and once every ref is gone, a fresh
//! delete-on-cleanup store and release of the path deletes the file exactly
//! once (a second record for the path would split the count and delete it
//! under a live ref, or never).
#![cfg(loom)]

use loom::thread;
use mediastore::{MediaMeta, StoreError};
use mediastore_loom_tests::*;

fn model(name: &str, fault: Fault) {
    check(name, fault, || {
        // Under loom there is one dormant queue holding one record: retiring
        // B pushes A out of it.
        let (fs, _clock, store) = setup(&["/m/a", "/m/b"]);
        store.store("/m/a", MediaMeta::forget_only(), "a").unwrap();
        store.store("/m/b", MediaMeta::forget_only(), "b").unwrap();

        let releaser = {
            let store = store.clone();
            thread::spawn(move || {
                store.release_all("a");
                store.release_all("b");
            })
        };
        let restorer = {
            let (store, fs) = (store.clone(), fs.clone());
            thread::spawn(
                move || match store.store("/m/a", MediaMeta::forget_only(), "new") {
                    Ok(r) => {
                        let lease = store.resolve(&r).expect("a new ref resolves");
                        assert!(fs.exists(lease.path()), "live ref to a deleted file");
                    }
                    Err(StoreError::NotFound { .. }) => panic!("a forget-only file vanished"),
                    Err(e) => panic!("{e}"),
                },
            )
        };
        releaser.join().unwrap();
        restorer.join().unwrap();
        // A delete-on-cleanup ref taken while "new" still holds the path
        // joins its lifetime: releasing it keeps the file (sticky forget).
        let r = store.store("/m/a", delete(), "late").unwrap();
        assert_eq!(store.release_all("late"), 1);
        store.flush();
        assert!(fs.exists("/m/a"), "deleted while a forget-only ref held it");
        assert!(store.resolve(&r).is_err());
        // Everything released: a fresh lifetime deletes it, once.
        assert_eq!(store.release_all("new"), 1);
        store.store("/m/a", delete(), "last").unwrap();
        assert_eq!(store.release_all("last"), 1);
        store.flush();
        assert!(!fs.exists("/m/a"), "one path, two records");
        assert_eq!(fs.deletions("/m/a"), 1);
    });
}

#[test]
fn one_path_keeps_one_record_through_retirement() {
    model("m9_dormant_retire_vs_rejoin", Fault::None);
}

#[test]
#[should_panic(expected = "forget-only ref held it")]
fn fails_when_retirement_does_not_recheck_the_count() {
    model(
        "m9_dormant_retire_vs_rejoin_fault",
        Fault::RetireWithoutRecheck,
    );
}
