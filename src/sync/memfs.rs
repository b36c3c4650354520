//! An in-memory file table that stands in for the file system under loom.
//!
//! It is a plain `std` mutex around two maps, invisible to loom: a real file
//! system is not something loom can permute, and each call here is atomic,
//! as `lstat` and `unlink` are. Models create files with [`MemFs::create`]
//! and ask [`MemFs::exists`] and [`MemFs::deletions`] afterwards.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::FileKind;

/// In-memory files, shared by clones.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    inner: Arc<Mutex<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    files: BTreeMap<PathBuf, FileKind>,
    deletions: BTreeMap<PathBuf, u32>,
    /// Unlinks of these paths that will fail with `PermissionDenied`.
    refusals: BTreeMap<PathBuf, u32>,
}

impl MemFs {
    /// An empty file table.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates (or re-creates) a regular file.
    pub fn create(&self, path: impl AsRef<Path>) {
        self.table()
            .files
            .insert(path.as_ref().to_path_buf(), FileKind::Regular);
    }

    /// Whether the path exists now.
    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        self.table().files.contains_key(path.as_ref())
    }

    /// How many times the store unlinked this path successfully.
    pub fn deletions(&self, path: impl AsRef<Path>) -> u32 {
        self.table()
            .deletions
            .get(path.as_ref())
            .copied()
            .unwrap_or(0)
    }

    /// Makes the next `n` unlinks of `path` fail with `PermissionDenied`.
    pub fn refuse_unlinks(&self, path: impl AsRef<Path>, n: u32) {
        self.table().refusals.insert(path.as_ref().to_path_buf(), n);
    }

    pub(crate) fn kind(&self, path: &Path) -> io::Result<FileKind> {
        self.table()
            .files
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    pub(crate) fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut t = self.table();
        let exists = t.files.contains_key(path);
        if let Some(n) = t.refusals.get_mut(path) {
            if *n > 0 && exists {
                *n -= 1;
                return Err(io::ErrorKind::PermissionDenied.into());
            }
        }
        match t.files.remove(path) {
            Some(_) => {
                *t.deletions.entry(path.to_path_buf()).or_insert(0) += 1;
                Ok(())
            }
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
}
