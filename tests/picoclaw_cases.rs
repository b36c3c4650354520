//! picoclaw's own `pkg/media` test cases, re-expressed against this crate
//! (behaviour, not code: see `../shared/research/picoclaw.md`).
#![cfg(not(loom))]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use mediastore::{CleanupPolicy, MediaMeta, MediaStore};

#[test]
fn store_and_resolve() {
    let f = Fixture::new();
    let p = f.file("photo.jpg");
    let r = f.store.store(&p, delete(), "scope1").unwrap();
    assert!(r.to_string().starts_with("media://"));
    assert_eq!(f.store.resolve(&r).unwrap().path(), p);
}

#[test]
fn release_all_deletes_every_file_of_the_scope() {
    let f = Fixture::new();
    let paths: Vec<_> = (0..3).map(|i| f.file(&format!("f{i}"))).collect();
    let refs: Vec<_> = paths
        .iter()
        .map(|p| f.store.store(p, delete(), "scope1").unwrap())
        .collect();
    assert_eq!(f.store.release_all("scope1"), 3);
    f.store.flush();
    assert!(paths.iter().all(|p| !exists(p)));
    assert!(refs.iter().all(|r| f.store.resolve(r).is_err()));
}

#[test]
fn forget_only_keeps_the_file() {
    let f = Fixture::new();
    let p = f.file("workspace.txt");
    let r = f.store.store(&p, forget(), "s").unwrap();
    f.store.release_all("s");
    f.store.flush();
    assert!(exists(&p));
    assert!(f.store.resolve(&r).is_err());
}

#[test]
fn shared_path_is_deleted_only_on_its_final_ref() {
    let f = Fixture::new();
    let p = f.file("shared");
    f.store.store(&p, delete(), "a").unwrap();
    f.store.store(&p, delete(), "b").unwrap();
    f.store.release_all("a");
    f.store.flush();
    assert!(exists(&p));
    f.store.release_all("b");
    f.store.flush();
    assert!(!exists(&p));
}

#[test]
fn same_path_twice_in_one_scope_is_deleted_once() {
    let f = Fixture::new();
    let p = f.file("twice");
    f.store.store(&p, delete(), "s").unwrap();
    f.store.store(&p, delete(), "s").unwrap();
    assert_eq!(f.store.release_all("s"), 2);
    f.store.flush();
    assert!(!exists(&p));
    let s = f.store.stats();
    assert_eq!((s.files_deleted, s.files_already_gone), (1, 0));
}

#[test]
fn mixed_policies_keep_the_file_delete_then_forget() {
    let f = Fixture::new();
    let p = f.file("mixed");
    f.store.store(&p, delete(), "owned").unwrap();
    f.store.store(&p, forget(), "borrowed").unwrap();
    f.store.release_all("owned");
    f.store.release_all("borrowed");
    f.store.flush();
    assert!(exists(&p));
}

#[test]
fn mixed_policies_keep_the_file_forget_then_delete() {
    let f = Fixture::new();
    let p = f.file("mixed");
    f.store.store(&p, forget(), "x").unwrap();
    f.store.store(&p, delete(), "y").unwrap();
    f.store.release_all("y");
    f.store.release_all("x");
    f.store.flush();
    assert!(exists(&p));
}

#[test]
fn mixed_policies_release_forget_first() {
    let f = Fixture::new();
    let p = f.file("mixed");
    f.store.store(&p, delete(), "a").unwrap();
    f.store.store(&p, forget(), "b").unwrap();
    f.store.release_all("b");
    f.store.release_all("a");
    f.store.flush();
    assert!(
        exists(&p),
        "sticky forget survives the release of the forget ref"
    );
}

#[test]
fn scopes_are_isolated() {
    let f = Fixture::new();
    let a = f.file("a");
    let b = f.file("b");
    let ra = f.store.store(&a, delete(), "s1").unwrap();
    let rb = f.store.store(&b, delete(), "s2").unwrap();
    f.store.release_all("s1");
    f.store.flush();
    assert!(!exists(&a) && exists(&b));
    assert!(f.store.resolve(&ra).is_err());
    assert!(f.store.resolve(&rb).is_ok());
}

#[test]
fn release_is_idempotent() {
    let f = Fixture::new();
    f.store.store(f.file("a"), delete(), "s").unwrap();
    assert_eq!(f.store.release_all("s"), 1);
    assert_eq!(f.store.release_all("s"), 0);
    assert_eq!(f.store.release_all("s"), 0);
}

#[test]
fn store_of_a_missing_file_fails() {
    let f = Fixture::new();
    let err = f
        .store
        .store(f.dir.path().join("nope"), delete(), "s")
        .unwrap_err();
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
}

#[test]
fn meta_round_trips_through_resolve() {
    let f = Fixture::new();
    let meta = MediaMeta {
        filename: "voice.ogg".into(),
        content_type: "audio/ogg".into(),
        source: "telegram".into(),
        cleanup_policy: CleanupPolicy::ForgetOnly,
    };
    let r = f.store.store(f.file("v"), meta.clone(), "s").unwrap();
    assert_eq!(f.store.resolve(&r).unwrap().meta(), meta);
}

#[test]
fn ttl_removes_old_refs_and_their_files() {
    let f = Fixture::new();
    let p = f.file("old");
    let r = f.store.store(&p, delete(), "s").unwrap();
    f.age_out();
    assert_eq!(f.store.clean_expired(), 1);
    f.store.flush();
    assert!(!exists(&p));
    assert!(f.store.resolve(&r).is_err());
}

#[test]
fn ttl_with_forget_only_keeps_the_file() {
    let f = Fixture::new();
    let p = f.file("keep");
    f.store.store(&p, forget(), "s").unwrap();
    f.age_out();
    assert_eq!(f.store.clean_expired(), 1);
    f.store.flush();
    assert!(exists(&p));
}

#[test]
fn ttl_keeps_fresh_refs() {
    let f = Fixture::new();
    let p = f.file("fresh");
    let r = f.store.store(&p, delete(), "s").unwrap();
    f.clock.advance(Duration::from_secs(60));
    assert_eq!(f.store.clean_expired(), 0);
    f.store.flush();
    assert!(exists(&p));
    assert!(f.store.resolve(&r).is_ok());
}

#[test]
fn ttl_mixed_ages() {
    let f = Fixture::new();
    let old = f.file("old");
    let new = f.file("new");
    let ro = f.store.store(&old, delete(), "s").unwrap();
    f.clock.advance(MAX_AGE - Duration::from_secs(60));
    let rn = f.store.store(&new, delete(), "s").unwrap();
    f.clock.advance(Duration::from_secs(120));
    assert_eq!(f.store.clean_expired(), 1);
    f.store.flush();
    assert!(!exists(&old) && exists(&new));
    assert!(f.store.resolve(&ro).is_err());
    assert!(f.store.resolve(&rn).is_ok());
    assert_eq!(
        f.store.stats().scopes,
        1,
        "the scope still holds the fresh ref"
    );
}

#[test]
fn ttl_on_a_shared_path_keeps_the_file_until_the_fresh_ref_goes() {
    let f = Fixture::new();
    let p = f.file("shared");
    f.store.store(&p, delete(), "old").unwrap();
    f.clock.advance(MAX_AGE - Duration::from_secs(60));
    f.store.store(&p, delete(), "new").unwrap();
    f.clock.advance(Duration::from_secs(120));
    assert_eq!(f.store.clean_expired(), 1);
    f.store.flush();
    assert!(exists(&p));
    f.clock.advance(MAX_AGE);
    assert_eq!(f.store.clean_expired(), 1);
    f.store.flush();
    assert!(!exists(&p));
}

#[test]
fn a_scope_emptied_by_ttl_is_gone() {
    let f = Fixture::new();
    f.store.store(f.file("a"), delete(), "s").unwrap();
    f.store.store(f.file("b"), delete(), "s").unwrap();
    assert_eq!(f.store.stats().scopes, 1);
    f.age_out();
    assert_eq!(f.store.clean_expired(), 2);
    assert_eq!(f.store.stats().scopes, 0);
    assert_eq!(f.store.release_all("s"), 0);
}

#[test]
fn start_and_stop_twice() {
    let store = MediaStore::builder()
        .clock(mediastore::ManualClock::new())
        .build()
        .unwrap();
    assert!(store.cleaner_running());
    assert!(!store.start_cleaner().unwrap());
    assert!(store.stop_cleaner());
    assert!(!store.stop_cleaner());
    store.close();
    store.close();
}

#[test]
fn zero_max_age_and_zero_interval_are_config_errors() {
    assert!(MediaStore::builder()
        .max_age(Duration::ZERO)
        .build()
        .is_err());
    assert!(MediaStore::builder()
        .sweep_interval(Duration::ZERO)
        .build()
        .is_err());
}

#[test]
fn concurrent_store_resolve_release_from_24_threads() {
    let f = Fixture::new();
    let store = f.store.clone();
    let dir = Arc::new(f.dir.path().to_path_buf());
    let handles: Vec<_> = (0..24)
        .map(|t| {
            let store = store.clone();
            let dir = Arc::clone(&dir);
            std::thread::spawn(move || {
                let mut paths = Vec::new();
                for i in 0..50 {
                    let p = dir.join(format!("t{t}-{i}"));
                    std::fs::write(&p, b"x").unwrap();
                    let scope = format!("scope-{t}-{}", i % 5);
                    let r = store.store(&p, delete(), &scope).unwrap();
                    assert_eq!(store.resolve(&r).unwrap().path(), p);
                    paths.push(p);
                }
                let released: usize = (0..5)
                    .map(|k| store.release_all(&format!("scope-{t}-{k}")))
                    .sum();
                assert_eq!(released, 50);
                paths
            })
        })
        .collect();
    let paths: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    store.flush();
    assert!(paths.iter().all(|p| !exists(p)));
    let s = store.stats();
    assert_eq!(
        (s.live_refs, s.scopes, s.refs_released, s.files_deleted),
        (0, 0, 1200, 1200)
    );
}
