//! Safety and resilience: managed roots, deletions that cannot escape them,
//! retried and failed deletions, panicking clocks, the orphan sweep,
//! shutdown, and hostile input.
#![cfg(all(unix, not(loom)))]

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use mediastore::{
    Clock, ManualClock, MediaMeta, MediaRef, MediaStore, ParseRefError, ResolveError, StoreError,
};

/// A temp folder holding a managed root and, beside it, a folder the store
/// must never touch.
struct Sandbox {
    _top: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    clock: ManualClock,
}

impl Sandbox {
    fn new() -> Self {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("root");
        let outside = top.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        Self {
            _top: top,
            root,
            outside,
            clock: ManualClock::new(),
        }
    }

    fn store(&self) -> MediaStore {
        MediaStore::builder()
            .managed_root(&self.root)
            .clock(self.clock.clone())
            .background_cleaner(false)
            .deletion_retries(3, Duration::from_secs(1))
            .build()
            .unwrap()
    }

    fn write(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, name).unwrap();
        p
    }
}

// ---- never delete what is not ours ---------------------------------------------------

#[test]
fn delete_on_cleanup_outside_every_root_is_refused_forget_only_is_not() {
    let sb = Sandbox::new();
    let store = sb.store();
    let user = Sandbox::write(&sb.outside, "user.txt");
    let err = store.store(&user, delete(), "s").unwrap_err();
    assert!(matches!(&err, StoreError::OutsideManagedRoots { path } if path == &user));
    assert_eq!(store.stats().live_refs, 0);
    store.store(&user, forget(), "s").unwrap();
    store.release_all("s");
    store.flush();
    assert!(user.exists());
}

#[test]
fn the_root_itself_and_dotdot_escapes_are_refused() {
    let sb = Sandbox::new();
    let store = sb.store();
    let victim = Sandbox::write(&sb.outside, "victim.txt");
    assert!(matches!(
        store.store(&sb.root, delete(), "s"),
        Err(StoreError::OutsideManagedRoots { .. })
    ));
    assert!(matches!(
        store.store(&sb.root, forget(), "s"),
        Err(StoreError::NotAFile { .. })
    ));
    let sneaky = sb.root.join("..").join("outside").join("victim.txt");
    assert!(matches!(
        store.store(&sneaky, delete(), "s"),
        Err(StoreError::OutsideManagedRoots { .. })
    ));
    store.release_all("s");
    store.flush();
    assert!(victim.exists());
}

#[test]
fn a_parent_swapped_for_a_symlink_after_store_cannot_redirect_the_unlink() {
    let sb = Sandbox::new();
    let store = sb.store();
    let sub = sb.root.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let media = Sandbox::write(&sub, "f.jpg");
    store.store(&media, delete(), "s").unwrap();
    // An attacker replaces `sub` with a link to a folder with the same name
    // inside.
    let victim = Sandbox::write(&sb.outside, "f.jpg");
    std::fs::rename(&sub, sb.root.join("sub.moved")).unwrap();
    symlink(&sb.outside, &sub).unwrap();
    store.release_all("s");
    store.flush();
    assert!(
        victim.exists(),
        "the unlink followed a symlink out of the root"
    );
    assert!(sb.root.join("sub.moved").join("f.jpg").exists());
    let s = store.stats();
    assert_eq!((s.files_deleted, s.deletion_errors), (0, 1));
    // It is retried, then given up and listed.
    for _ in 0..3 {
        sb.clock.advance(Duration::from_secs(60));
        store.flush();
    }
    assert!(victim.exists());
    let failed = store.failed_deletions();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].path, media);
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(store.stats().deletions_failed, 1);
}

#[test]
fn a_stored_symlink_is_unlinked_never_its_target() {
    let sb = Sandbox::new();
    let store = sb.store();
    let target = Sandbox::write(&sb.outside, "target.bin");
    let link = sb.root.join("link.bin");
    symlink(&target, &link).unwrap();
    store.store(&link, delete(), "s").unwrap();
    store.release_all("s");
    store.flush();
    assert!(link.symlink_metadata().is_err());
    assert!(target.exists());
    assert_eq!(store.stats().files_deleted, 1);
}

#[test]
fn a_replaced_root_does_not_redirect_deletions() {
    let sb = Sandbox::new();
    let store = sb.store();
    let media = Sandbox::write(&sb.root, "m.bin");
    store.store(&media, delete(), "s").unwrap();
    // The root is moved away and a new folder takes its name.
    let moved = sb.root.with_file_name("root.old");
    std::fs::rename(&sb.root, &moved).unwrap();
    std::fs::create_dir(&sb.root).unwrap();
    let newcomer = Sandbox::write(&sb.root, "m.bin");
    store.release_all("s");
    store.flush();
    assert!(newcomer.exists(), "deleted through the new folder");
    assert!(
        !moved.join("m.bin").exists(),
        "the original file is the one deleted"
    );
}

#[test]
fn odd_and_long_names_work_or_fail_cleanly() {
    let sb = Sandbox::new();
    let store = sb.store();
    let odd = sb
        .root
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9-\xff\xfe.bin"));
    std::fs::write(&odd, b"x").unwrap();
    let r = store.store(&odd, delete(), "s").unwrap();
    assert_eq!(store.resolve(&r).unwrap().path(), odd);
    let long_name = sb.root.join("n".repeat(255));
    std::fs::write(&long_name, b"x").unwrap();
    store.store(&long_name, delete(), "s").unwrap();
    // Longer than PATH_MAX: the OS refuses, the store says so.
    let too_long = sb.root.join(format!("{}/x", "d/".repeat(3000)));
    assert!(matches!(
        store.store(&too_long, delete(), "s"),
        Err(StoreError::Io { .. } | StoreError::NotFound { .. })
    ));
    assert_eq!(store.release_all("s"), 2);
    store.flush();
    assert!(!odd.exists() && !long_name.exists());
}

// ---- faults survived, nothing lost ---------------------------------------------------------

#[test]
fn failed_deletions_are_retried_with_backoff_then_listed_and_retryable() {
    let sb = Sandbox::new();
    let store = sb.store();
    let stuck = Sandbox::write(&sb.root, "stuck.bin");
    let fine = Sandbox::write(&sb.root, "fine.bin");
    store.store(&stuck, delete(), "a").unwrap();
    store.store(&fine, delete(), "b").unwrap();
    // Unlink of a directory fails (EISDIR).
    std::fs::remove_file(&stuck).unwrap();
    std::fs::create_dir(&stuck).unwrap();
    store.release_all("a");
    store.flush();
    let s = store.stats();
    assert_eq!((s.deletion_errors, s.deletion_retries_pending), (1, 1));
    // The deleter keeps serving other files meanwhile.
    store.release_all("b");
    store.flush();
    assert!(!fine.exists());
    // Not yet due: nothing happens.
    sb.clock.advance(Duration::from_millis(500));
    store.flush();
    assert_eq!(store.stats().deletion_errors, 1);
    // Backoff 1 s, then 2 s.
    sb.clock.advance(Duration::from_millis(600));
    store.flush();
    assert_eq!(store.stats().deletion_errors, 2);
    sb.clock.advance(Duration::from_secs(2));
    store.flush();
    let s = store.stats();
    assert_eq!(
        (
            s.deletion_errors,
            s.deletion_retries_pending,
            s.deletions_failed
        ),
        (3, 0, 1)
    );
    let failed = store.failed_deletions();
    assert_eq!(failed[0].kind, std::io::ErrorKind::IsADirectory);
    assert_eq!(failed[0].attempts, 3);
    // Fixed by hand; retried on request.
    std::fs::remove_dir(&stuck).unwrap();
    std::fs::write(&stuck, b"x").unwrap();
    assert_eq!(store.retry_failed(), 1);
    store.flush();
    assert!(!stuck.exists());
    assert!(store.failed_deletions().is_empty());
}

#[test]
fn a_store_of_a_path_waiting_for_a_retry_cancels_the_retry() {
    let sb = Sandbox::new();
    let store = sb.store();
    let p = Sandbox::write(&sb.root, "p.bin");
    store.store(&p, delete(), "a").unwrap();
    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    store.release_all("a");
    store.flush();
    assert_eq!(store.stats().deletion_retries_pending, 1);
    // The gateway writes a new file at the same path and stores it.
    std::fs::remove_dir(&p).unwrap();
    std::fs::write(&p, b"new").unwrap();
    let r = store.store(&p, delete(), "b").unwrap();
    sb.clock.advance(Duration::from_secs(60));
    store.flush();
    assert!(p.exists(), "a retry deleted a file that a newer ref uses");
    assert!(store.resolve(&r).is_ok());
    store.release_all("b");
    store.flush();
    assert!(!p.exists());
}

/// A clock that panics while `fail` is set.
#[derive(Debug)]
struct PanickyClock {
    inner: ManualClock,
    fail: Arc<AtomicBool>,
}

impl Clock for PanickyClock {
    fn now(&self) -> Duration {
        if self.fail.load(Ordering::SeqCst) {
            panic!("clock failure (test)");
        }
        self.inner.now()
    }
}

#[test]
fn a_panicking_clock_kills_neither_the_cleaner_nor_the_deleter() {
    let sb = Sandbox::new();
    let fail = Arc::new(AtomicBool::new(false));
    let store = MediaStore::builder()
        .managed_root(&sb.root)
        .clock(PanickyClock {
            inner: sb.clock.clone(),
            fail: Arc::clone(&fail),
        })
        .deletion_retries(2, Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(store.cleaner_running());
    let stuck = Sandbox::write(&sb.root, "stuck.bin");
    store.store(&stuck, delete(), "a").unwrap();
    std::fs::remove_file(&stuck).unwrap();
    std::fs::create_dir(&stuck).unwrap();
    fail.store(true, Ordering::SeqCst);
    // The cleaner sweeps on a configuration change: its clock read panics.
    store.set_cleanup(store.cleanup()).unwrap();
    // Answered after that sweep: the cleaner survived it.
    assert!(store.cleaner_running());
    // The deleter schedules a retry with the panicking clock.
    store.release_all("a");
    store.flush();
    store.flush();
    fail.store(false, Ordering::SeqCst);
    // Both threads are still there and working.
    assert!(store.cleaner_running());
    let p = Sandbox::write(&sb.root, "later.bin");
    store.store(&p, delete(), "b").unwrap();
    store.release_all("b");
    store.flush();
    assert!(!p.exists());
    // And the cleaner still expires refs: a wake-up sweep, then a ping
    // that is answered only after it.
    let r = store
        .store(Sandbox::write(&sb.root, "old.bin"), delete(), "c")
        .unwrap();
    sb.clock.advance(Duration::from_secs(3600));
    store.set_cleanup(store.cleanup()).unwrap();
    assert!(store.cleaner_running());
    assert!(store.resolve(&r).is_err(), "the cleaner's sweep expired it");
}

// ---- restarts leave nothing behind ---------------------------------------------------------

fn age(p: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

#[test]
fn the_orphan_sweep_deletes_old_unknown_files_under_the_roots_only() {
    let sb = Sandbox::new();
    let old = Sandbox::write(&sb.root, "old.bin");
    let fresh = Sandbox::write(&sb.root, "fresh.bin");
    let deep_dir = sb.root.join("a").join("b");
    std::fs::create_dir_all(&deep_dir).unwrap();
    let deep = Sandbox::write(&deep_dir, "deep.bin");
    let target = Sandbox::write(&sb.outside, "target.bin");
    let outside_old = Sandbox::write(&sb.outside, "outside-old.bin");
    age(&old, Duration::from_secs(7200));
    age(&deep, Duration::from_secs(7200));
    age(&target, Duration::from_secs(7200));
    age(&outside_old, Duration::from_secs(7200));
    let link = sb.root.join("old-link");
    symlink(&target, &link).unwrap(); // its own mtime is now: young
    let store = sb.store();
    store.flush();
    assert!(!old.exists() && !deep.exists());
    assert!(fresh.exists() && link.symlink_metadata().is_ok());
    assert!(target.exists() && outside_old.exists());
    assert!(deep_dir.is_dir(), "directories are left alone");
    assert_eq!(store.stats().orphans_deleted, 2);
}

#[test]
fn the_orphan_sweep_can_be_switched_off() {
    let sb = Sandbox::new();
    let old = Sandbox::write(&sb.root, "old.bin");
    age(&old, Duration::from_secs(7200));
    let store = MediaStore::builder()
        .managed_root(&sb.root)
        .orphan_sweep(false)
        .build()
        .unwrap();
    store.flush();
    assert!(old.exists());
    assert_eq!(store.stats().orphans_deleted, 0);
}

#[test]
fn the_orphan_sweep_spares_files_a_live_store_knows() {
    let sb = Sandbox::new();
    let first = sb.store();
    let used = Sandbox::write(&sb.root, "used.bin");
    let r = first.store(&used, delete(), "s").unwrap();
    age(&used, Duration::from_secs(7200));
    let second = sb.store();
    second.flush();
    assert!(used.exists());
    assert!(first.resolve(&r).is_ok());
    assert_eq!(second.stats().orphans_deleted, 0);
}

// ---- shutdown -------------------------------------------------------------------------------

#[test]
fn shutdown_releases_everything_and_reports_what_is_left() {
    let sb = Sandbox::new();
    let store = sb.store();
    let files: Vec<_> = (0..10)
        .map(|i| Sandbox::write(&sb.root, &format!("f{i}")))
        .collect();
    let mut refs = Vec::new();
    for (i, p) in files.iter().enumerate() {
        refs.push(
            store
                .store(p, delete(), &format!("scope-{}", i % 3))
                .unwrap(),
        );
    }
    let kept = Sandbox::write(&sb.outside, "workspace.txt");
    store.store(&kept, forget(), "tool").unwrap();
    let lease = store.resolve(&refs[0]).unwrap();
    let report = store.shutdown(Duration::from_secs(30));
    assert!(report.completed);
    assert_eq!(report.refs_released, 11);
    assert_eq!(report.pending_deletions, 0);
    assert_eq!(report.paths_still_held, 1, "the leased file");
    assert_eq!(report.failed_deletions, 0);
    assert!(files[0].exists());
    assert!(files[1..].iter().all(|p| !p.exists()));
    assert!(kept.exists());
    drop(lease);
    assert!(
        !files[0].exists(),
        "the last lease's drop deletes it after shutdown"
    );
}

// ---- bad input --------------------------------------------------------------------------------

#[test]
fn hostile_refs_are_typed_errors_with_short_messages() {
    let store = MediaStore::new();
    let huge = "media://".to_string() + &"a".repeat(1 << 20);
    for text in [
        "",
        " ",
        "media://",
        "MEDIA://67e55044-10b1-426f-9247-bb680e5fe0c8",
        "media://67E55044-10B1-426F-9247-BB680E5FE0C8",
        "media://67e55044-10b1-426f-9247-bb680e5fe0c8 ",
        "\tmedia://67e55044-10b1-426f-9247-bb680e5fe0c8",
        "media://{67e55044-10b1-426f-9247-bb680e5fe0c8}",
        "media://67e5504410b1426f9247bb680e5fe0c8",
        "media://67e55044-10b1-426f-9247-bb680e5fe0cé",
        huge.as_str(),
        &"x".repeat(1 << 20),
    ] {
        let err = store.resolve_str(text).unwrap_err();
        let ResolveError::Parse(p) = &err else {
            panic!("{text:?} parsed");
        };
        assert!(matches!(
            p,
            ParseRefError::MissingPrefix { .. } | ParseRefError::InvalidUuid { .. }
        ));
        assert!(
            err.to_string().len() < 200,
            "error message quotes the whole input"
        );
        assert!(text.parse::<MediaRef>().is_err());
    }
}

#[test]
fn bad_paths_are_typed_errors() {
    let store = MediaStore::new();
    for bad in ["", "a\0b", "/tmp/\0"] {
        assert!(matches!(
            store.store(bad, MediaMeta::forget_only(), "s"),
            Err(StoreError::InvalidPath { .. })
        ));
    }
    assert_eq!(store.stats().live_refs, 0);
}
