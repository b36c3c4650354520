//! [`FsBackend`]: objects as files under one root folder.
//!
//! Layout: `{root}/{scope_hash}/{uuid}{ext}` for the payload and
//! `{root}/{scope_hash}/.{uuid}.meta` for its sidecar (the record's text
//! form). Payload names never start with a dot, so no payload can be taken
//! for a sidecar or a temp file.
//!
//! Invariants:
//!
//! * A payload appears under its final name only complete: it is renamed
//!   into place (from the source file, or from a `.{uuid}.part` temp file
//!   after a copy or a streamed write), never written there.
//! * The sidecar is written (temp file, then rename) before the payload is
//!   renamed into place, so every payload that can be seen has its sidecar;
//!   deletion goes the other way (payload first, by the store's deleter,
//!   then the sidecar), so a crash in between leaves a sidecar without a
//!   payload, which [`FsBackend::list`] (run at every store build) removes
//!   along with temp files and payloads without sidecars.
//! * One store per root, enforced by an exclusive lock on `{root}/.lock`
//!   held while the backend lives: the re-index at build and the deletions
//!   assume nobody else is writing there.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{Backend, BackendError, ObjectRecord};
use crate::MediaRef;

/// The filesystem backend (see the module doc).
///
/// ```
/// use mediastore::backend::{Backend, FsBackend};
/// # let dir = tempfile::tempdir()?;
/// let fs = FsBackend::new(dir.path().join("objects"))?;
/// assert!(fs.local_root().ends_with("objects"));
/// assert!(!fs.is_shared());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FsBackend {
    root: PathBuf,
    sync: bool,
    /// Held while the backend lives: one store per root.
    _lock: super::FolderLock,
}

impl FsBackend {
    /// A backend rooted at `root` (created if missing, made absolute). The
    /// root is locked while the backend lives: a second backend on it is
    /// refused ([`BackendError::Config`]), since two stores re-indexing and
    /// deleting the same files would delete what the other's leases use.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use mediastore::backend::{Backend, FsBackend};
    /// let fs = FsBackend::new(dir.path().join("a/b"))?;
    /// assert!(fs.local_root().is_dir());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`BackendError::Io`] if the folder cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, BackendError> {
        let root = root.into();
        let io = |source| BackendError::Io {
            op: "create backend root",
            path: root.clone(),
            source,
        };
        fs::create_dir_all(&root).map_err(io)?;
        let root = crate::store::absolute(&root)
            .map_err(|reason| io(io::Error::new(io::ErrorKind::InvalidInput, reason)))?
            .into_owned();
        let _lock = super::FolderLock::take(&root, "backend root")?;
        Ok(Self {
            root,
            sync: true,
            _lock,
        })
    }

    /// Whether writes are synced to disk before they are renamed into place
    /// (default on): then a power loss never leaves a payload or sidecar
    /// with missing bytes under its final name. Off, saves are faster and,
    /// on ext4, deleting a file is much cheaper (measured here: about 4 µs
    /// per unlink instead of 1 ms for a synced file), at the price of that
    /// guarantee. A crash of the process alone loses nothing either way.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let fs = mediastore::backend::FsBackend::new(dir.path())?.sync_writes(false);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sync_writes(mut self, on: bool) -> Self {
        self.sync = on;
        self
    }

    fn dir(&self, rec: &ObjectRecord) -> PathBuf {
        self.root.join(rec.scope_hash())
    }

    fn payload(&self, rec: &ObjectRecord) -> PathBuf {
        self.dir(rec).join(rec.file_name())
    }

    fn sidecar_in(dir: &Path, id: MediaRef) -> PathBuf {
        dir.join(format!(".{}.meta", id.uuid().hyphenated()))
    }

    fn part_in(dir: &Path, id: MediaRef) -> PathBuf {
        dir.join(format!(".{}.part", id.uuid().hyphenated()))
    }

    /// Writes the sidecar, then renames `ready` (a complete file in the
    /// scope folder, which keeps the folder from being removed as empty)
    /// into place; on failure removes the sidecar.
    fn publish(&self, rec: &ObjectRecord, ready: &Path) -> Result<PathBuf, BackendError> {
        let dst = self.payload(rec);
        let side = Self::sidecar_in(&self.dir(rec), rec.id);
        write_atomically(&side, rec.encode().as_bytes(), self.sync).map_err(|source| {
            BackendError::Io {
                op: "write sidecar",
                path: side.clone(),
                source,
            }
        })?;
        fs::rename(ready, &dst).map_err(|source| {
            let _ = fs::remove_file(&side);
            BackendError::Io {
                op: "rename into place",
                path: dst.clone(),
                source,
            }
        })?;
        Ok(dst)
    }

    /// Streams `src` into the object's temp file; returns the temp path.
    fn write_part(
        &self,
        rec: &mut ObjectRecord,
        src: &mut dyn Read,
    ) -> Result<PathBuf, BackendError> {
        let dir = self.dir(rec);
        let part = Self::part_in(&dir, rec.id);
        let result = (|| {
            let mut f = in_scope_dir(&dir, || File::create(&part))?;
            rec.size = io::copy(src, &mut f)?;
            if self.sync {
                f.sync_all()?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(part),
            Err(source) => {
                let _ = fs::remove_file(&part);
                Err(BackendError::Io {
                    op: "write payload",
                    path: part,
                    source,
                })
            }
        }
    }

    fn remove_if_present(path: &Path, op: &'static str) -> Result<bool, BackendError> {
        match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(BackendError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The root's entries (one folder per scope, plus the lock file).
    fn root_entries(&self) -> Result<fs::ReadDir, BackendError> {
        fs::read_dir(&self.root).map_err(|source| BackendError::Io {
            op: "list backend root",
            path: self.root.clone(),
            source,
        })
    }

    /// Reads every sidecar; removes temp files, payloads without a sidecar
    /// and sidecars without a payload.
    fn scan(&self, mut visit: impl FnMut(ObjectRecord, PathBuf)) -> Result<(), BackendError> {
        let entries = self.root_entries()?;
        for dir in entries.flatten() {
            if !dir.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = dir.path();
            let Ok(files) = fs::read_dir(&dir) else {
                continue;
            };
            let mut payloads = Vec::new();
            let mut sidecars = Vec::new();
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.ends_with(".meta") && name.starts_with('.') {
                    sidecars.push(f.path());
                } else if name.starts_with('.') {
                    let _ = fs::remove_file(f.path()); // .part / .tmp leftovers
                } else {
                    payloads.push(name);
                }
            }
            for side in sidecars {
                let rec = fs::read_to_string(&side)
                    .ok()
                    .and_then(|t| ObjectRecord::decode(&t).ok());
                match rec {
                    Some(rec) if payloads.contains(&rec.file_name()) => {
                        payloads.retain(|p| *p != rec.file_name());
                        let path = dir.join(rec.file_name());
                        visit(rec, path);
                    }
                    _ => {
                        let _ = fs::remove_file(&side);
                    }
                }
            }
            for orphan in payloads {
                let _ = fs::remove_file(dir.join(orphan));
            }
            let _ = fs::remove_dir(&dir); // only if empty
        }
        Ok(())
    }
}

/// Creates the scope folder and runs `first` (which puts the first file of
/// this save in it). The deleter removes a scope folder once it is empty,
/// so the folder can vanish between the two: then both are tried again.
/// Once `first` has put a file there, the folder is not empty and stays.
fn in_scope_dir<T>(dir: &Path, first: impl Fn() -> io::Result<T>) -> io::Result<T> {
    let mut tries = 0;
    loop {
        fs::create_dir_all(dir)?;
        match first() {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 && !dir.exists() => {
                tries += 1;
            }
            result => return result,
        }
    }
}

/// Writes `bytes` to a temp sibling of `path`, syncs it (if asked), and
/// renames it onto `path`.
fn write_atomically(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl Backend for FsBackend {
    fn local_root(&self) -> &Path {
        &self.root
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn save_file(&self, rec: &mut ObjectRecord, src: &Path) -> Result<PathBuf, BackendError> {
        let source_err = |source| BackendError::Io {
            op: "read source",
            path: src.to_path_buf(),
            source,
        };
        let md = fs::metadata(src).map_err(source_err)?;
        if !md.is_file() {
            return Err(source_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        rec.size = md.len();
        // Rename when the source is on the same file system: cheap and
        // atomic. Otherwise copy into a temp file and rename that.
        let dir = self.dir(rec);
        let part = Self::part_in(&dir, rec.id);
        // A symlink is copied (the backend must own the bytes, not a link).
        let is_link = fs::symlink_metadata(src).is_ok_and(|m| m.file_type().is_symlink());
        let (staged, moved) = match is_link {
            false if in_scope_dir(&dir, || fs::rename(src, &part)).is_ok() => (part, true),
            _ => {
                let mut f = File::open(src).map_err(source_err)?;
                (self.write_part(rec, &mut f)?, false)
            }
        };
        match self.publish(rec, &staged) {
            Ok(dst) => {
                if !moved {
                    let _ = fs::remove_file(src);
                }
                Ok(dst)
            }
            Err(e) => {
                if moved {
                    // Give the caller its file back.
                    let _ = fs::rename(&staged, src);
                } else {
                    let _ = fs::remove_file(&staged);
                }
                Err(e)
            }
        }
    }

    fn save_reader(
        &self,
        rec: &mut ObjectRecord,
        src: &mut dyn Read,
    ) -> Result<PathBuf, BackendError> {
        let part = self.write_part(rec, src)?;
        self.publish(rec, &part).inspect_err(|_| {
            let _ = fs::remove_file(&part);
        })
    }

    fn lookup(&self, id: MediaRef) -> Result<ObjectRecord, BackendError> {
        let entries = self.root_entries()?;
        for dir in entries.flatten() {
            let side = Self::sidecar_in(&dir.path(), id);
            if let Ok(text) = fs::read_to_string(&side) {
                let rec = ObjectRecord::decode(&text).map_err(|e| e.at(&side))?;
                if self.payload(&rec).exists() {
                    return Ok(rec);
                }
            }
        }
        Err(BackendError::NotFound { id: id.to_string() })
    }

    fn local_path(&self, rec: &ObjectRecord) -> Result<PathBuf, BackendError> {
        let p = self.payload(rec);
        if p.exists() {
            Ok(p)
        } else {
            Err(BackendError::NotFound {
                id: rec.id.to_string(),
            })
        }
    }

    fn open(&self, id: MediaRef) -> Result<Box<dyn Read + Send>, BackendError> {
        let rec = self.lookup(id)?;
        let p = self.payload(&rec);
        match File::open(&p) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(BackendError::NotFound { id: id.to_string() })
            }
            Err(source) => Err(BackendError::Io {
                op: "open payload",
                path: p,
                source,
            }),
        }
    }

    fn delete_object(&self, rec: &ObjectRecord) -> Result<(), BackendError> {
        Self::remove_if_present(&self.payload(rec), "delete payload")?;
        self.forget_local(&self.payload(rec));
        Ok(())
    }

    fn delete_scope(&self, scope: &str) -> Result<u64, BackendError> {
        let dir = self.root.join(super::scope_hash(scope));
        let mut n = 0;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(BackendError::Io {
                    op: "list scope folder",
                    path: dir,
                    source,
                })
            }
        };
        for f in entries.flatten() {
            let is_payload = !f.file_name().to_string_lossy().starts_with('.');
            if Self::remove_if_present(&f.path(), "delete scope")? && is_payload {
                n += 1;
            }
        }
        let _ = fs::remove_dir(&dir);
        Ok(n)
    }

    fn list(&self) -> Result<Vec<(ObjectRecord, PathBuf)>, BackendError> {
        let mut out = Vec::new();
        self.scan(|rec, path| out.push((rec, path)))?;
        Ok(out)
    }

    fn forget_local(&self, path: &Path) {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        let name = name.to_string_lossy();
        let stem = name.split('.').next().unwrap_or("");
        if let Ok(id) = uuid::Uuid::parse_str(stem) {
            let side = Self::sidecar_in(dir, MediaRef::from_uuid(id));
            if let Err(e) = fs::remove_file(&side) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = ?side, error = %e, "mediastore: cannot delete a sidecar");
                }
            }
            let _ = fs::remove_dir(dir); // only if empty
        }
    }
}
