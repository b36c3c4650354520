//! The store's rules, one or more tests each (numbers follow the README's
//! "Semantics" section).
#![cfg(not(loom))]

mod common;

use std::time::Duration;

use common::*;
use mediastore::{
    CleanupConfig, ConfigError, MediaMeta, MediaRef, MediaStore, ResolveError, StoreError,
};

// ---- Rule 1: store ----------------------------------------------------------

#[test]
fn r1_store_of_missing_file_is_not_found_and_changes_nothing() {
    let f = Fixture::new();
    let kept = f.file("kept.jpg");
    let r = f.store.store(&kept, delete(), "s").unwrap();
    let missing = f.dir.path().join("missing.jpg");
    let err = f.store.store(&missing, delete(), "s").unwrap_err();
    assert!(matches!(&err, StoreError::NotFound { path, .. } if path == &missing));
    assert_eq!(err.io_kind(), Some(std::io::ErrorKind::NotFound));
    let err2 = f.store.store(&missing, delete(), "other").unwrap_err();
    assert!(matches!(err2, StoreError::NotFound { .. }));
    let s = f.store.stats();
    assert_eq!((s.live_refs, s.scopes), (1, 1));
    assert!(f.store.resolve(&r).is_ok());
}

#[test]
fn r1_failed_store_of_a_shared_path_does_not_arm_or_disarm_it() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    f.store.store(&p, delete(), "s").unwrap();
    // The file disappears and a forget-only store of it fails: that failure
    // must not make the path sticky.
    std::fs::remove_file(&p).unwrap();
    assert!(f.store.store(&p, forget(), "t").is_err());
    std::fs::write(&p, b"again").unwrap();
    assert_eq!(f.store.release_all("s"), 1);
    f.store.flush();
    assert!(
        !exists(&p),
        "the surviving delete-on-cleanup ref owns the file"
    );
}

#[test]
fn r1_every_store_mints_a_new_ref() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    let refs: std::collections::HashSet<MediaRef> = (0..100)
        .map(|_| f.store.store(&p, delete(), "s").unwrap())
        .collect();
    assert_eq!(refs.len(), 100);
    assert_eq!(f.store.release_all("s"), 100);
}

#[test]
fn r1_paths_are_made_absolute_lexically() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    let sub = f.dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let odd = sub.join("..").join(".").join("a.jpg");
    let r1 = f.store.store(&odd, delete(), "s").unwrap();
    f.store.store(&p, delete(), "t").unwrap();
    assert_eq!(f.store.resolve(&r1).unwrap().path(), p);
    // Both spellings are one path: releasing one keeps the file.
    f.store.release_all("s");
    f.store.flush();
    assert!(exists(&p));
    f.store.release_all("t");
    f.store.flush();
    assert!(!exists(&p));
}

#[cfg(unix)]
#[test]
fn r1_doubled_and_trailing_separators_are_one_path() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    let doubled = format!("{}//a.jpg", f.dir.path().display());
    let r = f.store.store(&doubled, delete(), "s").unwrap();
    assert_eq!(f.store.resolve(&r).unwrap().path(), p);
    f.store.store(&p, delete(), "t").unwrap();
    f.store.release_all("s");
    f.store.flush();
    assert!(exists(&p), "the other spelling still holds it");
    f.store.release_all("t");
    f.store.flush();
    assert!(!exists(&p));
}

#[test]
fn r1_directories_and_bad_paths_are_refused() {
    let f = Fixture::new();
    let sub = f.dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(
        f.store.store(&sub, delete(), "s"),
        Err(StoreError::NotAFile { .. })
    ));
    assert!(matches!(
        f.store.store(&sub, forget(), "s"),
        Err(StoreError::NotAFile { .. })
    ));
    assert!(matches!(
        f.store.store("", delete(), "s"),
        Err(StoreError::InvalidPath { .. })
    ));
    assert!(matches!(
        f.store.store("a\0b", delete(), "s"),
        Err(StoreError::InvalidPath { .. })
    ));
    assert_eq!(f.store.stats().live_refs, 0);
    assert!(exists(f.dir.path()));
}

#[cfg(unix)]
#[test]
fn r1_a_symlink_is_stored_and_unlinked_itself_never_its_target() {
    let f = Fixture::new();
    let target = f.file("target.jpg");
    let link = f.dir.path().join("link.jpg");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    f.store.store(&link, delete(), "s").unwrap();
    f.store.release_all("s");
    f.store.flush();
    assert!(!exists(&link));
    assert!(exists(&target));
}

// ---- Rule 2: path ref-counting and leases -----------------------------------

#[test]
fn r2_lease_keeps_the_file_after_release() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    let r = f.store.store(&p, delete(), "s").unwrap();
    let lease = f.store.resolve(&r).unwrap();
    let lease2 = lease.clone();
    assert_eq!(f.store.release_all("s"), 1);
    f.store.flush();
    assert!(exists(&p));
    drop(lease);
    f.store.flush();
    assert!(exists(&p), "a clone of the lease still pins it");
    drop(lease2);
    f.store.flush();
    assert!(!exists(&p));
    assert_eq!(f.store.stats().files_deleted, 1);
}

#[test]
fn r2_lease_keeps_the_file_after_expiry() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    let r = f.store.store(&p, delete(), "s").unwrap();
    let lease = f.store.resolve(&r).unwrap();
    f.age_out();
    assert_eq!(f.store.clean_expired(), 1);
    f.store.flush();
    assert!(exists(&p));
    assert!(f.store.resolve(&r).is_err());
    drop(lease);
    f.store.flush();
    assert!(!exists(&p));
}

#[test]
fn r2_after_the_count_returns_to_zero_the_path_starts_afresh() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    f.store.store(&p, forget(), "a").unwrap();
    f.store.release_all("a");
    f.store.flush();
    assert!(exists(&p), "a forget-only lifetime keeps the file");
    // The count is zero: the forget-only flag is gone with that lifetime.
    f.store.store(&p, delete(), "c").unwrap();
    f.store.release_all("c");
    f.store.flush();
    assert!(!exists(&p));
}

#[test]
fn r2_a_lease_extends_the_lifetime_so_forget_only_still_counts() {
    let f = Fixture::new();
    let p = f.file("a.jpg");
    let r = f.store.store(&p, forget(), "a").unwrap();
    let lease = f.store.resolve(&r).unwrap();
    f.store.release_all("a");
    // The lifetime is not over (a lease holds it): a new delete ref joins it.
    f.store.store(&p, delete(), "b").unwrap();
    drop(lease);
    f.store.release_all("b");
    f.store.flush();
    assert!(exists(&p));
}

// ---- Rule 3: resolve ----------------------------------------------------------

#[test]
fn r3_unknown_released_and_expired_refs_are_unknown() {
    let f = Fixture::new();
    let never: MediaRef = "media://00000000-0000-4000-8000-000000000000"
        .parse()
        .unwrap();
    assert!(matches!(f.store.resolve(&never), Err(ResolveError::UnknownRef(r)) if r == never));
    let a = f.store.store(f.file("a"), delete(), "a").unwrap();
    let b = f.store.store(f.file("b"), delete(), "b").unwrap();
    f.store.release_all("a");
    assert!(matches!(
        f.store.resolve(&a),
        Err(ResolveError::UnknownRef(_))
    ));
    f.age_out();
    assert_eq!(f.store.clean_expired(), 1);
    assert!(matches!(
        f.store.resolve(&b),
        Err(ResolveError::UnknownRef(_))
    ));
}

#[test]
fn r3_resolve_does_no_file_io() {
    let f = Fixture::new();
    let p = f.file("a");
    let r = f.store.store(&p, delete(), "s").unwrap();
    std::fs::remove_file(&p).unwrap();
    // No stat on resolve: the ref still resolves (the file is the gateway's
    // business once it vanished behind our back).
    assert_eq!(f.store.resolve(&r).unwrap().path(), p);
}

#[test]
fn r3_resolve_str_parses_strictly() {
    let f = Fixture::new();
    let r = f.store.store(f.file("a"), delete(), "s").unwrap();
    assert_eq!(f.store.resolve_str(&r.to_string()).unwrap().media_ref(), r);
    for bad in [
        "",
        "media://",
        "media:/x",
        "MEDIA://00000000-0000-4000-8000-000000000000",
        " media://00000000-0000-4000-8000-000000000000",
        "media://00000000-0000-4000-8000-00000000000G",
    ] {
        assert!(
            matches!(f.store.resolve_str(bad), Err(ResolveError::Parse(_))),
            "{bad:?}"
        );
    }
    let upper = r.to_string().replace("media://", "").to_uppercase();
    assert!(f.store.resolve_str(&format!("media://{upper}")).is_err());
}

// ---- Rule 4: release_all --------------------------------------------------------

#[test]
fn r4_release_all_counts_and_is_idempotent() {
    let f = Fixture::new();
    let a = f.file("a");
    let b = f.file("b");
    f.store.store(&a, delete(), "s").unwrap();
    f.store.store(&b, delete(), "s").unwrap();
    f.store.store(&b, delete(), "s").unwrap();
    assert_eq!(f.store.release_all("nope"), 0);
    assert_eq!(f.store.release_all("s"), 3);
    assert_eq!(f.store.release_all("s"), 0);
    f.store.flush();
    assert!(!exists(&a) && !exists(&b));
    let s = f.store.stats();
    assert_eq!(
        (s.refs_released, s.files_deleted, s.scopes, s.live_refs),
        (3, 2, 0, 0)
    );
}

#[test]
fn r4_any_string_is_a_scope() {
    let f = Fixture::new();
    let big = "x".repeat(1 << 20);
    for (i, scope) in ["", "日本語:💬", big.as_str()].into_iter().enumerate() {
        let p = f.file(&format!("f{i}"));
        f.store.store(&p, delete(), scope).unwrap();
        assert_eq!(f.store.release_all(scope), 1);
    }
    f.store.flush();
    assert_eq!(f.store.stats().files_deleted, 3);
}

// ---- Rule 5: TTL and the cleaner --------------------------------------------------

#[test]
fn r5_expiry_is_strictly_after_max_age() {
    let f = Fixture::new();
    let p = f.file("a");
    let r = f.store.store(&p, delete(), "s").unwrap();
    f.clock.advance(MAX_AGE);
    assert_eq!(f.store.clean_expired(), 0);
    assert!(f.store.resolve(&r).is_ok());
    f.clock.advance(Duration::from_nanos(1));
    assert_eq!(f.store.clean_expired(), 1);
    assert_eq!(f.store.clean_expired(), 0);
    f.store.flush();
    assert!(!exists(&p));
    assert_eq!(f.store.stats().refs_expired, 1);
}

#[test]
fn r5_expiry_follows_store_order_across_many_refs() {
    let f = Fixture::new();
    let mut refs = Vec::new();
    for i in 0..1000 {
        refs.push(
            f.store
                .store(f.file(&format!("f{i}")), delete(), &format!("s{}", i % 7))
                .unwrap(),
        );
        f.clock.advance(Duration::from_secs(1));
    }
    // Now = 1000 s; refs stored at 0..999 s. Advance so that the first 400
    // are strictly older than max age.
    f.clock
        .advance(MAX_AGE - Duration::from_secs(1000) + Duration::from_secs(400));
    assert_eq!(f.store.clean_expired(), 400);
    for (i, r) in refs.iter().enumerate() {
        assert_eq!(f.store.resolve(r).is_ok(), i >= 400, "ref {i}");
    }
    f.store.flush();
    assert_eq!(f.store.stats().files_deleted, 400);
}

#[test]
fn r5_zero_durations_are_config_errors() {
    assert!(matches!(
        MediaStore::builder().max_age(Duration::ZERO).build(),
        Err(ConfigError::ZeroMaxAge)
    ));
    assert!(matches!(
        MediaStore::builder().sweep_interval(Duration::ZERO).build(),
        Err(ConfigError::ZeroSweepInterval)
    ));
    // Even with cleanup off: switching it on later must not be able to fail.
    assert!(MediaStore::builder()
        .cleanup_enabled(false)
        .max_age(Duration::ZERO)
        .build()
        .is_err());
    assert!(matches!(
        MediaStore::builder().max_age(Duration::MAX).build(),
        Err(ConfigError::TooLarge {
            field: "max_age",
            ..
        })
    ));
}

#[test]
fn r5_set_cleanup_changes_ttl_without_losing_refs() {
    let f = Fixture::new();
    let r = f.store.store(f.file("a"), delete(), "s").unwrap();
    let bad = CleanupConfig {
        max_age: Duration::ZERO,
        ..f.store.cleanup()
    };
    assert!(f.store.set_cleanup(bad).is_err());
    assert_eq!(
        f.store.cleanup().max_age,
        MAX_AGE,
        "a refused config changes nothing"
    );
    f.store
        .set_cleanup(CleanupConfig {
            max_age: Duration::from_secs(10),
            ..f.store.cleanup()
        })
        .unwrap();
    assert!(f.store.resolve(&r).is_ok());
    f.clock.advance(Duration::from_secs(11));
    assert_eq!(f.store.clean_expired(), 1);
}

#[test]
fn r5_cleaner_sweeps_once_at_start() {
    let f = Fixture::new();
    let r = f.store.store(f.file("a"), delete(), "s").unwrap();
    f.age_out();
    assert!(f.store.start_cleaner().unwrap());
    // The first sweep runs before start_cleaner returns.
    assert!(f.store.resolve(&r).is_err());
    assert_eq!(f.store.stats().refs_expired, 1);
}

#[test]
fn r5_start_and_stop_are_idempotent_and_close_joins() {
    let f = Fixture::new();
    assert!(!f.store.cleaner_running());
    assert!(f.store.start_cleaner().unwrap());
    assert!(!f.store.start_cleaner().unwrap());
    assert!(f.store.cleaner_running());
    assert!(f.store.stop_cleaner());
    assert!(!f.store.stop_cleaner());
    assert!(f.store.start_cleaner().unwrap());
    f.store.close();
    f.store.close();
    assert!(!f.store.cleaner_running());
    assert!(
        !f.store.start_cleaner().unwrap(),
        "a closed store starts nothing"
    );
}

#[test]
fn r5_disabled_cleanup_still_allows_manual_sweeps() {
    let f = Fixture::new();
    f.store.set_cleanup(CleanupConfig::disabled()).unwrap();
    f.store.store(f.file("a"), delete(), "s").unwrap();
    f.age_out();
    assert_eq!(f.store.clean_expired(), 1);
}

// ---- Rule 6: the deleter -------------------------------------------------------------

#[test]
fn r6_not_found_is_ignored() {
    let f = Fixture::new();
    let p = f.file("a");
    f.store.store(&p, delete(), "s").unwrap();
    std::fs::remove_file(&p).unwrap();
    f.store.release_all("s");
    f.store.flush();
    let s = f.store.stats();
    assert_eq!(
        (s.files_deleted, s.files_already_gone, s.deletion_errors),
        (0, 1, 0)
    );
}

#[test]
fn r6_other_errors_are_counted_and_do_not_stop_the_deleter() {
    let f = Fixture::new();
    let p = f.file("a");
    let q = f.file("b");
    f.store.store(&p, delete(), "s").unwrap();
    f.store.store(&q, delete(), "s").unwrap();
    // Swap the file for a directory: unlink fails with EISDIR.
    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    f.store.release_all("s");
    f.store.flush();
    let s = f.store.stats();
    assert_eq!((s.files_deleted, s.deletion_errors), (1, 1));
    assert!(p.is_dir(), "the directory is left alone");
    assert!(!exists(&q));
}

#[test]
fn r6_close_carries_out_queued_deletions() {
    let f = Fixture::new();
    let paths: Vec<_> = (0..50).map(|i| f.file(&format!("f{i}"))).collect();
    for p in &paths {
        f.store.store(p, delete(), "s").unwrap();
    }
    f.store.release_all("s");
    f.store.close();
    assert!(paths.iter().all(|p| !exists(p)));
    assert_eq!(f.store.stats().pending_deletions, 0);
}

#[test]
fn r6_leases_outliving_the_store_still_get_their_files_deleted() {
    let f = Fixture::new();
    let p = f.file("a");
    let kept = f.file("kept");
    let r = f.store.store(&p, delete(), "s").unwrap();
    f.store.store(&kept, delete(), "live").unwrap();
    let lease = f.store.resolve(&r).unwrap();
    f.store.release_all("s");
    let Fixture { store, dir, .. } = f;
    drop(store);
    assert!(exists(&p));
    drop(lease);
    assert!(!exists(&p), "deleted by the last lease's drop");
    assert!(exists(&kept), "files of refs live at teardown are kept");
    drop(dir);
}

#[test]
fn r6_after_close_release_still_deletes() {
    let f = Fixture::new();
    let p = f.file("a");
    f.store.store(&p, delete(), "s").unwrap();
    f.store.close();
    assert_eq!(f.store.release_all("s"), 1);
    f.store.flush();
    assert!(!exists(&p));
}

// ---- Rule 9 -----------------------------------------------------------------------------

#[test]
fn r9_refs_are_16_byte_ids() {
    assert_eq!(std::mem::size_of::<MediaRef>(), 16);
    let f = Fixture::new();
    let r = f
        .store
        .store(f.file("a"), MediaMeta::default(), "s")
        .unwrap();
    assert_eq!(r.uuid().get_version_num(), 4);
    let s = r.to_string();
    assert_eq!(s.len(), "media://".len() + 36);
    assert_eq!(s, s.to_lowercase());
}
