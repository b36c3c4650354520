//! Model 7: a hot swap of the cleanup configuration (the `arc-swap`-backed
//! setting) during a sweep.
//!
//! Invariant: a sweep uses one consistent configuration. Two refs of the
//! same age sit in different lanes; the old max age expires both, the new
//! one neither, so a sweep expires 0 or 2 refs, never 1.
#![cfg(loom)]

use std::time::Duration;

use loom::thread;
use mediastore::CleanupConfig;
use mediastore_loom_tests::*;

fn model(fault: Fault) {
    check("m7_config_swap_during_sweep", fault, || {
        let (_fs, clock, store) = setup(&["/m/a", "/m/b"]);
        // Counter ids 1 and 2 land in different lanes.
        store.store("/m/a", delete(), "s1").unwrap();
        store.store("/m/b", delete(), "s2").unwrap();
        clock.advance(MAX_AGE + Duration::from_secs(1));

        let sweeper = {
            let store = store.clone();
            thread::spawn(move || store.clean_expired())
        };
        let swapper = {
            let store = store.clone();
            thread::spawn(move || {
                let cfg = CleanupConfig {
                    max_age: MAX_AGE * 10,
                    ..store.cleanup()
                };
                store.set_cleanup(cfg).unwrap();
            })
        };
        let n = sweeper.join().unwrap();
        swapper.join().unwrap();
        assert!(n == 0 || n == 2, "a sweep mixed two configurations: {n}");
        assert_eq!(store.stats().live_refs, 2 - n as u64);
    });
}

#[test]
fn a_sweep_uses_one_configuration() {
    model(Fault::None);
}

#[test]
#[should_panic(expected = "mixed two configurations")]
fn fails_when_the_sweep_reloads_per_lane() {
    model(Fault::ReloadConfigPerLane);
}
