//! Managed roots: the folders whose files the store may delete, and the
//! only way it deletes anything.
//!
//! Invariants:
//!
//! * A `DeleteOnCleanup` ref can only be stored for a path strictly inside a
//!   managed root (lexically, after `.` and `..` are folded), so every file
//!   the store will ever delete lies beneath one.
//! * Each root is opened once, at build time; deletions walk from that open
//!   handle one component at a time with `O_NOFOLLOW | O_DIRECTORY` and end
//!   with `unlinkat`. A directory swapped for a symlink after `store` makes
//!   the walk fail (`ELOOP`/`ENOTDIR`) instead of leaving the root, and a
//!   stored symlink is unlinked itself, never its target. Renaming or
//!   replacing the root itself does not redirect deletions either: the
//!   handle keeps pointing at the directory that was opened.
//! * Within one batch of deletions (one deleter job) the handle of the last
//!   folder walked to is reused for the next file in the same folder; it is
//!   dropped at the end of the batch and before the deleter waits. A folder
//!   swapped during a batch is therefore seen at the next batch, the same
//!   window a walk has between its `openat` and its `unlinkat`; a failure
//!   through the cached handle falls back to a fresh walk.
//! * Under loom the roots are lexical only and the in-memory file table
//!   stands in for the file system.

use std::io;
use std::path::{Component, Path, PathBuf};

/// One managed root.
#[derive(Debug)]
struct Root {
    path: PathBuf,
    /// Whether the orphan sweep walks it (a backend's root is cleaned by the
    /// backend itself, which knows its sidecars and temp files).
    swept: bool,
    #[cfg(all(unix, not(loom)))]
    dir: rustix::fd::OwnedFd,
}

/// The managed roots of a store.
#[derive(Debug)]
pub(crate) struct Roots {
    roots: Vec<Root>,
    /// The folder of the last unlink (root index, path below the root, and
    /// the handle the walk opened), reused by the next unlink in the same
    /// folder so that a batch of deletions in one folder costs one
    /// `unlinkat` per file instead of `openat` + `unlinkat` + `close`. Kept
    /// for one batch only (see [`Roots::end_batch`]): the handle is the
    /// same one the walk would have used a moment earlier. A plain mutex:
    /// taken only by whoever deletes (the deleter thread, or a closed
    /// store's releasing thread), held for one `unlinkat`.
    #[cfg(all(unix, not(loom)))]
    last_dir: std::sync::Mutex<Option<(usize, PathBuf, rustix::fd::OwnedFd)>>,
}

impl Roots {
    /// Creates (if missing) and opens each root. Paths must be absolute.
    pub(crate) fn open(paths: &[PathBuf]) -> io::Result<Self> {
        let mut roots = Vec::with_capacity(paths.len());
        for path in paths {
            #[cfg(not(loom))]
            std::fs::create_dir_all(path)?;
            roots.push(Root {
                #[cfg(all(unix, not(loom)))]
                dir: rustix::fs::open(
                    path,
                    rustix::fs::OFlags::RDONLY
                        | rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?,
                path: path.clone(),
                swept: true,
            });
        }
        Ok(Self {
            roots,
            #[cfg(all(unix, not(loom)))]
            last_dir: std::sync::Mutex::new(None),
        })
    }

    /// Joins several opened root sets into one.
    pub(crate) fn merge(sets: Vec<Roots>) -> Self {
        Self {
            roots: sets.into_iter().flat_map(|s| s.roots).collect(),
            #[cfg(all(unix, not(loom)))]
            last_dir: std::sync::Mutex::new(None),
        }
    }

    /// Ends a batch of deletions: forgets the cached folder handle.
    pub(crate) fn end_batch(&self) {
        #[cfg(all(unix, not(loom)))]
        {
            let old = self
                .last_dir
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            drop(old);
        }
    }

    /// The root `abs` lies strictly inside, and the path relative to it.
    fn find_root(&self, abs: &Path) -> Option<&Root> {
        let a = abs.as_os_str().as_encoded_bytes();
        self.roots.iter().find(|r| {
            // Both paths are absolute and normalised (one spelling per
            // path), so a byte prefix that ends at a separator is a
            // component prefix: cheaper than `strip_prefix` on every store.
            let root = r.path.as_os_str().as_encoded_bytes();
            let Some(rest) = a.strip_prefix(root) else {
                return false;
            };
            let rest = if root.ends_with(b"/") {
                Some(rest)
            } else {
                rest.strip_prefix(b"/")
            };
            rest.is_some_and(|rest| !rest.is_empty())
        })
    }

    /// The root `abs` lies strictly inside, and the path relative to it.
    fn find<'a>(&self, abs: &'a Path) -> Option<(&Root, &'a Path)> {
        let root = self.find_root(abs)?;
        #[cfg(unix)]
        {
            // `find_root` matched the root's bytes up to a separator: the
            // rest, without that separator, is the relative path (cheaper
            // than `strip_prefix`, which walks components).
            use std::os::unix::ffi::OsStrExt;
            let rest = &abs.as_os_str().as_bytes()[root.path.as_os_str().len()..];
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            Some((root, Path::new(std::ffi::OsStr::from_bytes(rest))))
        }
        #[cfg(not(unix))]
        {
            let rel = abs.strip_prefix(&root.path).ok()?;
            Some((root, rel))
        }
    }

    /// Whether `abs` (absolute, folded) lies strictly inside a root.
    pub(crate) fn contains(&self, abs: &Path) -> bool {
        self.find_root(abs).is_some()
    }

    /// Marks every root of this set as not swept for orphans.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn unswept(mut self) -> Self {
        for r in &mut self.roots {
            r.swept = false;
        }
        self
    }

    /// The paths of the roots the orphan sweep walks.
    #[cfg_attr(loom, allow(dead_code))] // the orphan sweep is not built under loom
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        self.roots
            .iter()
            .filter(|r| r.swept)
            .map(|r| r.path.as_path())
    }

    /// Whether `dir` is a root the orphan sweep must not enter.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn is_unswept(&self, dir: &Path) -> bool {
        self.roots.iter().any(|r| !r.swept && r.path == dir)
    }

    /// Unlinks `abs` without following any symlink below its root.
    #[cfg_attr(loom, allow(dead_code))] // loom deletes from its in-memory table
    pub(crate) fn unlink(&self, abs: &Path) -> io::Result<()> {
        let Some((root, rel)) = self.find(abs) else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "refusing to delete a file outside every managed root",
            ));
        };
        // Every component below the root must be a plain name.
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "path is not normalised below its root",
            ));
        }
        let (Some(last), parents) = (rel.file_name(), rel.parent()) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        #[cfg(all(unix, not(loom)))]
        {
            use rustix::fd::AsFd;
            use rustix::fs::{openat, unlinkat, AtFlags, Mode, OFlags};
            let parents = parents.filter(|p| !p.as_os_str().is_empty());
            let index = self
                .roots
                .iter()
                .position(|r| std::ptr::eq(r, root))
                .unwrap_or(usize::MAX);
            let mut cache = self.last_dir.lock().unwrap_or_else(|p| p.into_inner());
            if let (Some(parent), Some((i, dir, fd))) = (parents, cache.as_ref()) {
                // Any failure through the cached handle (the folder may
                // have been replaced) falls back to a fresh walk.
                if *i == index && dir == parent && unlinkat(fd, last, AtFlags::empty()).is_ok() {
                    return Ok(());
                }
            }
            *cache = None;
            let mut held: Option<rustix::fd::OwnedFd> = None;
            for c in parents.into_iter().flat_map(Path::components) {
                let dir = held.as_ref().map_or(root.dir.as_fd(), |d| d.as_fd());
                let next = openat(
                    dir,
                    c.as_os_str(),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                held = Some(next);
            }
            let dir = held.as_ref().map_or(root.dir.as_fd(), |d| d.as_fd());
            unlinkat(dir, last, AtFlags::empty())?;
            if let (Some(parent), Some(fd)) = (parents, held) {
                *cache = Some((index, parent.to_path_buf(), fd));
            }
            Ok(())
        }
        #[cfg(not(all(unix, not(loom))))]
        {
            let _ = (root, parents, last);
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "root-relative unlink is only implemented on Unix",
            ))
        }
    }
}

/// The default managed root: `mediastore` in the OS temp dir.
pub(crate) fn default_root() -> PathBuf {
    std::env::temp_dir().join("mediastore")
}
