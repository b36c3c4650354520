//! A concurrent store of media refs for AI chat gateways.
//!
//! A gateway downloads an attachment to a file, registers it with
//! [`MediaStore::store`] and gets back a [`MediaRef`] (`media://<uuid>`), a
//! 16-byte handle that travels through the message bus, the agent and its
//! tools. Whoever needs the file calls [`MediaStore::resolve`] and gets a
//! [`MediaLease`]: the path, the metadata, and a promise that the file stays
//! on disk until the lease is dropped. When the message is done,
//! [`MediaStore::release_all`] drops every ref of its *scope*; refs nobody
//! released expire after a TTL. Files are deleted by a dedicated deleter
//! thread, each once its last ref and its last lease are gone.
//!
//! # Hello, media
//!
//! ```
//! use mediastore::{MediaMeta, MediaStore};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("photo.jpg");
//! # std::fs::write(&path, b"jpeg bytes")?;
//!
//! let store = MediaStore::builder().managed_root(dir.path()).build()?;
//! let meta = MediaMeta {
//!     filename: "photo.jpg".into(),
//!     content_type: "image/jpeg".into(),
//!     source: "telegram".into(),
//!     ..MediaMeta::default()
//! };
//! let r = store.store(&path, meta, "telegram:42:1001")?;
//!
//! // The ref crosses the bus as text and comes back.
//! let text = r.to_string();
//! let lease = store.resolve_str(&text)?;
//! assert_eq!(lease.meta().content_type, "image/jpeg");
//! let bytes = std::fs::read(lease.path())?;
//! assert_eq!(bytes, b"jpeg bytes");
//! drop(lease);
//!
//! // The message is done: its media go.
//! assert_eq!(store.release_all("telegram:42:1001"), 1);
//! store.flush(); // wait for the deleter (tests only, never needed in production)
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Leases
//!
//! A lease pins the file, not the ref: a release or an expiry makes the ref
//! stop resolving at once, but a sender that is halfway through an upload
//! keeps its file until it drops the lease.
//!
//! ```
//! use mediastore::{MediaMeta, MediaStore};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("voice.ogg");
//! # std::fs::write(&path, b"ogg")?;
//! let store = MediaStore::builder().managed_root(dir.path()).build()?;
//! let r = store.store(&path, MediaMeta::default(), "msg")?;
//! let uploading = store.resolve(&r)?;
//! store.release_all("msg");
//! store.flush();
//! assert!(store.resolve(&r).is_err());   // the ref is gone
//! assert!(uploading.path().exists());     // the file is not
//! drop(uploading);
//! store.flush();
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Shared paths and cleanup policies
//!
//! Several refs may name one path. The file is deleted only when the last of
//! them is gone, and only if every ref of that lifetime was
//! [`CleanupPolicy::DeleteOnCleanup`]; one [`CleanupPolicy::ForgetOnly`] ref
//! (a workspace file the agent sends back, say) protects it.
//!
//! ```
//! use mediastore::{MediaMeta, MediaStore};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("report.pdf");
//! # std::fs::write(&path, b"pdf")?;
//! let store = MediaStore::builder().managed_root(dir.path()).build()?;
//! store.store(&path, MediaMeta::default(), "inbound")?;
//! store.store(&path, MediaMeta::forget_only(), "tool:send_file")?;
//! store.release_all("inbound");
//! store.release_all("tool:send_file");
//! store.flush();
//! assert!(path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # TTL
//!
//! A ref expires once strictly more than `max_age` has passed since it was
//! stored; the background cleaner sweeps every `sweep_interval` (and once at
//! start). Settings change at run time with [`MediaStore::set_cleanup`],
//! without losing a ref. Tests use a [`ManualClock`] and call
//! [`MediaStore::clean_expired`] themselves.
//!
//! ```
//! use mediastore::{ManualClock, MediaMeta, MediaStore};
//! use std::time::Duration;
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("gen.png");
//! # std::fs::write(&path, b"png")?;
//! let clock = ManualClock::new();
//! let store = MediaStore::builder()
//!     .managed_root(dir.path())
//!     .max_age(Duration::from_secs(30 * 60))
//!     .clock(clock.clone())
//!     .build()?;
//! let r = store.store(&path, MediaMeta::default(), "tool:image")?;
//! clock.advance(Duration::from_secs(31 * 60));
//! assert_eq!(store.clean_expired(), 1);
//! assert!(store.resolve(&r).is_err());
//! store.flush();
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Managed roots
//!
//! The store deletes files only beneath its *managed roots* (by default
//! `mediastore` in the OS temp dir; add your download folders with
//! [`MediaStoreBuilder::managed_root`]). A `DeleteOnCleanup` file outside
//! every root is refused with [`StoreError::OutsideManagedRoots`];
//! `ForgetOnly` files may live anywhere. Deletions go through an open handle
//! of the root and never follow a symlink, so a directory swapped for a link
//! after `store` cannot redirect them. On build, files under the roots that
//! no live store knows and that are older than `max_age` are swept away
//! (left by a crash or a restart).
//!
//! # Owned media: refs that survive restarts and span replicas
//!
//! With a [`backend`] (the filesystem one, or S3 and its cousins with the
//! `s3` feature), [`MediaStore::save`] moves the bytes into the store and
//! the ref outlives the process: a filesystem store re-indexes its root
//! when it is built, and any store on the same bucket resolves a ref saved
//! by another one. The lifecycle stays the one above.
//!
//! ```
//! use mediastore::backend::FsBackend;
//! use mediastore::{MediaMeta, MediaStore};
//! # let dir = tempfile::tempdir()?;
//! let open = || {
//!     MediaStore::builder()
//!         .managed_root(dir.path().join("tmp"))
//!         .backend(FsBackend::new(dir.path().join("media")).unwrap())
//!         .build()
//! };
//! let store = open()?;
//! let r = store.save_reader(&b"generated image"[..], MediaMeta::default(), "s")?;
//! store.close();
//! drop(store);
//! let restarted = open()?;
//! assert!(restarted.resolve(&r).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Threads and shutdown
//!
//! Each store runs one deleter thread and, unless switched off, one cleaner
//! thread. [`MediaStore::close`] (or dropping the last clone) stops both
//! after every queued deletion is done; files of refs still live are kept.
//! [`MediaStore::shutdown`] releases every scope first and waits for the
//! deletions up to a deadline. A deletion the OS refuses is retried with
//! backoff and then kept in [`MediaStore::failed_deletions`].
//!
//! # Model checking
//!
//! Built with `--cfg loom`, the same code runs on loom's primitives with
//! deterministic ids and an in-memory file table; the models live in the
//! `loom-tests/` workspace member.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod clock;
mod config;
mod deleter;
mod entry;
mod error;
mod expiry;
mod file;
mod files;
mod lease;
mod media_ref;
mod meta;
mod metrics;
mod report;
mod roots;
mod scope;
mod settings;
mod stats;
mod store;
mod sync;

#[cfg(all(feature = "tokio", not(loom)))]
mod async_api;
#[cfg(not(loom))]
mod cleaner;
#[cfg(not(loom))]
mod orphans;
#[cfg(not(loom))]
mod owned;

pub mod backend;

#[cfg(loom)]
#[doc(hidden)]
pub mod faults;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{CleanupConfig, MediaStoreBuilder};
pub use error::{ConfigError, ParseRefError, ResolveError, SaveError, StoreError};
pub use lease::MediaLease;
pub use media_ref::{MediaRef, MEDIA_REF_PREFIX};
pub use meta::{CleanupPolicy, MediaMeta, MediaMetaView};
#[cfg(not(loom))]
pub use owned::{BackendSweepTotals, MediaReader};
pub use report::{FailedDeletion, ShutdownReport};
pub use settings::{parse_duration, ENV_ENABLED, ENV_INTERVAL, ENV_MAX_AGE};
pub use stats::Stats;
pub use store::MediaStore;

#[cfg(loom)]
#[doc(hidden)]
pub use sync::MemFs;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
