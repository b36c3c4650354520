//! The orphan sweep: at start, delete files under the managed roots that no
//! live store knows and that are older than `max_age` (left behind by a
//! process that crashed or restarted: openclaw #155202 reports 355 GiB of
//! them in three days; picoclaw never sweeps its temp folder).
//!
//! Invariants: only regular files and symlinks are deleted (a symlink
//! itself, never its target), never directories; only beneath a managed
//! root, through the root's handle (see [`crate::roots`]); only if their
//! modification time is before the cutoff; never a path that a live store
//! in this process holds; and each deletion goes through the lifetime
//! protocol, so a `store` of the same path racing the sweep either keeps the
//! file or fails with not-found. Runs on the deleter thread, as its first
//! job, so `build` does not wait for it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Weak};
use std::time::SystemTime;

use crate::files::{Counters, FileTable};
use crate::sync::Arc;

/// Every live store's path table in this process, to tell orphans from
/// files another store still uses.
static LIVE_TABLES: Mutex<Vec<Weak<FileTable>>> = Mutex::new(Vec::new());

/// Makes `table` known to the sweeps of stores built later.
pub(crate) fn register(table: &Arc<FileTable>) {
    let mut live = LIVE_TABLES.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(table));
}

fn known_elsewhere(me: &Arc<FileTable>, path: &Path) -> bool {
    let live = LIVE_TABLES.lock().unwrap_or_else(|p| p.into_inner());
    live.iter()
        .filter_map(Weak::upgrade)
        .any(|t| !Arc::ptr_eq(&t, me) && t.knows(path))
}

/// Walks every root (without following symlinks) and deletes the orphans.
pub(crate) fn sweep(table: &Arc<FileTable>, cutoff: SystemTime) {
    let roots: Vec<PathBuf> = table.fs().roots().paths().map(Path::to_path_buf).collect();
    let mut deleted = 0u64;
    for root in roots {
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(md) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                let ft = md.file_type();
                if ft.is_dir() {
                    if !table.fs().roots().is_unswept(&path) {
                        dirs.push(path);
                    }
                    continue;
                }
                if !(ft.is_file() || ft.is_symlink()) {
                    continue;
                }
                let old = md.modified().is_ok_and(|m| m < cutoff);
                if old && !known_elsewhere(table, &path) && FileTable::delete_orphan(table, &path) {
                    deleted += 1;
                }
            }
        }
    }
    Counters::add(&table.counters.orphans, deleted);
    table.metrics.orphans(deleted);
    if deleted > 0 {
        tracing::info!(
            deleted,
            "mediastore: orphan sweep deleted files left by earlier runs"
        );
    }
}
