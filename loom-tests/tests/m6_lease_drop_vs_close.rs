//! Model 6: a lease drop vs `close()` and the store's drop vs queued
//! deletions.
//!
//! Invariant: every file due for deletion is deleted exactly once, whether
//! its deletion was queued before the close, or became due (last lease
//! dropped) while the store was closing or after; nothing is left in the
//! channel and the deleter thread is joined (loom's leak check passes).
#![cfg(loom)]

use loom::thread;
use mediastore_loom_tests::*;

fn model(fault: Fault) {
    check("m6_lease_drop_vs_close", fault, || {
        let (fs, _clock, store) = setup(&["/m/a", "/m/b"]);
        let ra = store.store("/m/a", delete(), "s").unwrap();
        store.store("/m/b", delete(), "s").unwrap();
        let lease = store.resolve(&ra).unwrap();
        assert_eq!(store.release_all("s"), 2);

        let holder = thread::spawn(move || drop(lease));
        store.close();
        holder.join().unwrap();
        assert_eq!(fs.deletions("/m/b"), 1, "queued before close");
        assert_eq!(fs.deletions("/m/a"), 1, "due during or after close");
        assert_eq!(store.stats().pending_deletions, 0);
        drop(store);
    });
}

#[test]
fn nothing_queued_is_lost_at_close() {
    model(Fault::None);
}

#[test]
#[should_panic(expected = "Messages leaked")]
fn fails_when_shutdown_is_sent_before_the_inbox_is_taken() {
    model(Fault::ShutdownBeforeTakingInbox);
}
