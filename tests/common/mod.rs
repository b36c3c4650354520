//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use mediastore::{CleanupPolicy, ManualClock, MediaMeta, MediaStore};

/// A temp folder and a store on a manual clock with the cleaner off.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub store: MediaStore,
}

pub const MAX_AGE: Duration = Duration::from_secs(30 * 60);

impl Fixture {
    pub fn new() -> Self {
        let clock = ManualClock::new();
        let dir = tempfile::tempdir().expect("temp dir");
        let store = MediaStore::builder()
            .managed_root(dir.path())
            .max_age(MAX_AGE)
            .sweep_interval(Duration::from_secs(5 * 60))
            .clock(clock.clone())
            .background_cleaner(false)
            .build()
            .expect("valid config");
        Self { dir, clock, store }
    }

    /// Creates a file with some bytes and returns its path.
    pub fn file(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, name.as_bytes()).expect("write file");
        p
    }

    /// Advances the clock past max age.
    pub fn age_out(&self) {
        self.clock.advance(MAX_AGE + Duration::from_secs(1));
    }
}

pub fn meta(policy: CleanupPolicy) -> MediaMeta {
    MediaMeta {
        cleanup_policy: policy,
        ..MediaMeta::default()
    }
}

pub fn delete() -> MediaMeta {
    meta(CleanupPolicy::DeleteOnCleanup)
}

pub fn forget() -> MediaMeta {
    meta(CleanupPolicy::ForgetOnly)
}

pub fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}
