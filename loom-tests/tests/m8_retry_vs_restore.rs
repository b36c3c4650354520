//! Model 8: a deletion that fails and is retried vs a `store` of the same
//! path.
//!
//! Invariant: a retry never deletes a file that a newer ref uses. The first
//! unlink attempt fails (the in-memory file system refuses it once); the
//! store either rejoins the path (cancelling the retry: the file stays for
//! as long as its new ref lives) or fails with not-found; after the retry
//! and the release of the new ref, the file has been deleted exactly once.
#![cfg(loom)]

use std::time::Duration;

use loom::thread;
use mediastore_loom_tests::*;

fn model(name: &str, fault: Fault) {
    check(name, fault, || {
        let (fs, clock, store) = setup(&["/m/a"]);
        fs.refuse_unlinks("/m/a", 1);
        store.store("/m/a", delete(), "old").unwrap();

        let releaser = {
            let store = store.clone();
            thread::spawn(move || {
                assert_eq!(store.release_all("old"), 1);
                // The first attempt happens (and fails) on the deleter.
                store.flush();
            })
        };
        let restorer = {
            let (store, fs) = (store.clone(), fs.clone());
            thread::spawn(move || restore(&store, &fs, "/m/a", "new"))
        };
        releaser.join().unwrap();
        let stored = restorer.join().unwrap();
        // Let the retry come due and run it.
        clock.advance(Duration::from_secs(60));
        store.flush();
        if stored {
            assert!(fs.exists("/m/a"), "a retry deleted a file a newer ref uses");
            assert_eq!(store.release_all("new"), 1);
            store.flush();
            // If the refused attempt was this lifetime's, its retry is due.
            clock.advance(Duration::from_secs(60));
            store.flush();
        }
        assert!(!fs.exists("/m/a"));
        assert_eq!(fs.deletions("/m/a"), 1);
    });
}

#[test]
fn a_retry_never_deletes_a_file_a_newer_ref_uses() {
    model("m8_retry_vs_restore", Fault::None);
}

#[test]
#[should_panic(expected = "a newer ref")]
fn fails_when_the_commit_is_undone_after_the_unlock() {
    model("m8_retry_vs_restore_fault", Fault::UncommitAfterUnlock);
}
