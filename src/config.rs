//! Configuration: [`CleanupConfig`] (swappable at run time) and the
//! consuming [`MediaStoreBuilder`].
//!
//! Invariants: a `CleanupConfig` held by a store has passed
//! [`CleanupConfig::validate`] (non-zero durations that fit in `u64`
//! nanoseconds); a wrong value is an error, never a silently disabled
//! cleaner.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::store::MediaStore;

/// TTL cleanup settings, as in picoclaw's `tools.media_cleanup` section.
///
/// ```
/// use mediastore::CleanupConfig;
/// use std::time::Duration;
///
/// let c = CleanupConfig::default();
/// assert!(c.enabled);
/// assert_eq!(c.max_age, Duration::from_secs(30 * 60));
/// assert_eq!(c.sweep_interval, Duration::from_secs(5 * 60));
/// assert!(c.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupConfig {
    /// Whether the background cleaner sweeps. [`MediaStore::clean_expired`]
    /// works either way.
    pub enabled: bool,
    /// A ref expires once strictly more than this has passed since it was
    /// stored.
    pub max_age: Duration,
    /// How often the background cleaner sweeps.
    pub sweep_interval: Duration,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_age: Duration::from_secs(30 * 60),
            sweep_interval: Duration::from_secs(5 * 60),
        }
    }
}

impl CleanupConfig {
    /// The defaults with the background cleaner switched off.
    ///
    /// ```
    /// # use mediastore::CleanupConfig;
    /// assert!(!CleanupConfig::disabled().enabled);
    /// ```
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Checks the durations: both non-zero and below about 584 years.
    /// Checked even when `enabled` is false, so that switching the cleaner on
    /// later cannot fail.
    ///
    /// ```
    /// use mediastore::{CleanupConfig, ConfigError};
    /// use std::time::Duration;
    ///
    /// let bad = CleanupConfig { sweep_interval: Duration::ZERO, ..CleanupConfig::default() };
    /// assert!(matches!(bad.validate(), Err(ConfigError::ZeroSweepInterval)));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_age.is_zero() {
            return Err(ConfigError::ZeroMaxAge);
        }
        if self.sweep_interval.is_zero() {
            return Err(ConfigError::ZeroSweepInterval);
        }
        for (field, value) in [
            ("max_age", self.max_age),
            ("sweep_interval", self.sweep_interval),
        ] {
            if u64::try_from(value.as_nanos()).is_err() {
                return Err(ConfigError::TooLarge { field, value });
            }
        }
        Ok(())
    }

    /// `max_age` in nanoseconds (valid configs fit).
    pub(crate) fn max_age_nanos(&self) -> u64 {
        u64::try_from(self.max_age.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Builds a [`MediaStore`]. Every setting has a documented default.
///
/// ```
/// use mediastore::{ManualClock, MediaStore};
/// use std::time::Duration;
///
/// let store = MediaStore::builder()
///     .max_age(Duration::from_secs(600))
///     .sweep_interval(Duration::from_secs(60))
///     .clock(ManualClock::new())
///     .build()?;
/// assert_eq!(store.cleanup().max_age, Duration::from_secs(600));
/// # Ok::<(), mediastore::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct MediaStoreBuilder {
    pub(crate) cleanup: CleanupConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) background_cleaner: bool,
    pub(crate) shards: usize,
    pub(crate) roots: Vec<std::path::PathBuf>,
    pub(crate) orphan_sweep: bool,
    pub(crate) retry: crate::deleter::RetryPolicy,
    #[cfg(not(loom))]
    pub(crate) backend: Option<BackendChoice>,
    #[cfg(not(loom))]
    pub(crate) backend_grace: Duration,
    #[cfg(not(loom))]
    pub(crate) backend_sweep_deadline: Duration,
    #[cfg(loom)]
    pub(crate) fs: crate::sync::MemFs,
}

/// A backend given to the builder, built or to be built.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) enum BackendChoice {
    Ready(Arc<dyn crate::backend::Backend>),
    #[cfg(feature = "s3")]
    S3(Arc<crate::backend::S3Backend>),
    Config(crate::backend::BackendConfig),
}

impl Default for MediaStoreBuilder {
    fn default() -> Self {
        Self {
            cleanup: CleanupConfig::default(),
            clock: Arc::new(SystemClock::new()),
            background_cleaner: true,
            shards: 64,
            roots: Vec::new(),
            orphan_sweep: true,
            retry: crate::deleter::RetryPolicy::default(),
            #[cfg(not(loom))]
            backend: None,
            #[cfg(not(loom))]
            backend_grace: Duration::from_secs(3600),
            #[cfg(not(loom))]
            backend_sweep_deadline: Duration::from_secs(30),
            #[cfg(loom)]
            fs: crate::sync::MemFs::new(),
        }
    }
}

impl MediaStoreBuilder {
    /// All TTL settings at once (default: [`CleanupConfig::default`]).
    ///
    /// ```
    /// # use mediastore::{CleanupConfig, MediaStore};
    /// let store = MediaStore::builder().cleanup(CleanupConfig::disabled()).build()?;
    /// assert!(!store.cleanup().enabled);
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn cleanup(mut self, cfg: CleanupConfig) -> Self {
        self.cleanup = cfg;
        self
    }

    /// Switches the background cleaner on or off (default: on).
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// let store = MediaStore::builder().cleanup_enabled(false).build()?;
    /// assert!(!store.cleanup().enabled);
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn cleanup_enabled(mut self, on: bool) -> Self {
        self.cleanup.enabled = on;
        self
    }

    /// How old a ref may get (default 30 min). Zero is a build error.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # use std::time::Duration;
    /// assert!(MediaStore::builder().max_age(Duration::ZERO).build().is_err());
    /// ```
    pub fn max_age(mut self, d: Duration) -> Self {
        self.cleanup.max_age = d;
        self
    }

    /// How often the cleaner sweeps (default 5 min). Zero is a build error.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # use std::time::Duration;
    /// assert!(MediaStore::builder().sweep_interval(Duration::ZERO).build().is_err());
    /// ```
    pub fn sweep_interval(mut self, d: Duration) -> Self {
        self.cleanup.sweep_interval = d;
        self
    }

    /// The clock TTL is measured with (default: [`SystemClock`]). Tests pass
    /// a [`ManualClock`](crate::ManualClock).
    ///
    /// ```
    /// # use mediastore::{ManualClock, MediaStore};
    /// let store = MediaStore::builder().clock(ManualClock::new()).build()?;
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether `build` starts the background cleaner thread (default: yes).
    /// Without it, TTL applies only when [`MediaStore::clean_expired`] is
    /// called; [`MediaStore::start_cleaner`] can start it later.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// let store = MediaStore::builder().background_cleaner(false).build()?;
    /// assert!(!store.cleaner_running());
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn background_cleaner(mut self, start: bool) -> Self {
        self.background_cleaner = start;
        self
    }

    /// Shard count of the concurrent maps, rounded up to a power of two and
    /// clamped to 2..=1024 (default 64).
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// let store = MediaStore::builder().shards(16).build()?;
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n.clamp(2, 1024).next_power_of_two();
        self
    }

    /// Adds a managed root: a folder whose files the store may delete
    /// (created if missing). `DeleteOnCleanup` files must lie strictly
    /// inside one; `ForgetOnly` files may live anywhere. Without any call,
    /// the one root is `mediastore` in the OS temp dir.
    ///
    /// ```
    /// use mediastore::{MediaMeta, MediaStore, StoreError};
    /// # let dir = tempfile::tempdir()?;
    /// # let elsewhere = tempfile::tempdir()?;
    /// # std::fs::write(elsewhere.path().join("user.txt"), b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let outside = elsewhere.path().join("user.txt");
    /// assert!(matches!(
    ///     store.store(&outside, MediaMeta::default(), "s"),
    ///     Err(StoreError::OutsideManagedRoots { .. })
    /// ));
    /// assert!(store.store(&outside, MediaMeta::forget_only(), "s").is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn managed_root(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.roots.push(dir.into());
        self
    }

    /// Whether `build` sweeps the managed roots for orphans: files older
    /// than `max_age` (by modification time) that no live store in this
    /// process knows, left by an earlier run (default: on). The sweep runs
    /// on the deleter thread and is counted in
    /// [`Stats::orphans_deleted`](crate::Stats::orphans_deleted).
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # let dir = tempfile::tempdir()?;
    /// let store = MediaStore::builder().managed_root(dir.path()).orphan_sweep(false).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn orphan_sweep(mut self, on: bool) -> Self {
        self.orphan_sweep = on;
        self
    }

    /// How failed deletions (other than not-found) are retried: `attempts`
    /// in all, the first included, waiting `first_backoff` before the
    /// second and twice as long before each further one, on the store's
    /// clock (default: 5 attempts, 200 ms). What still fails is kept in
    /// [`MediaStore::failed_deletions`]. Zero attempts is a build error.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// # use std::time::Duration;
    /// # let dir = tempfile::tempdir()?;
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path())
    ///     .deletion_retries(3, Duration::from_secs(1))
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deletion_retries(mut self, attempts: u32, first_backoff: Duration) -> Self {
        self.retry = crate::deleter::RetryPolicy {
            attempts,
            first_backoff,
        };
        self
    }

    /// Gives the store a backend for owned media ([`MediaStore::save`]):
    /// an [`FsBackend`](crate::backend::FsBackend), an `S3Backend` (feature
    /// `s3`) or your own. Its local root becomes a managed root that the
    /// orphan sweep leaves to the backend. A non-shared backend is
    /// re-indexed by `build`: refs saved before a restart resolve again.
    ///
    /// ```
    /// use mediastore::backend::FsBackend;
    /// use mediastore::MediaStore;
    /// # let dir = tempfile::tempdir()?;
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path().join("tmp"))
    ///     .backend(FsBackend::new(dir.path().join("media"))?)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(not(loom))]
    pub fn backend<B: crate::backend::Backend>(mut self, backend: B) -> Self {
        let any: Box<dyn std::any::Any> = Box::new(backend);
        #[cfg(feature = "s3")]
        let any = match any.downcast::<crate::backend::S3Backend>() {
            Ok(s3) => {
                self.backend = Some(BackendChoice::S3(Arc::new(*s3)));
                return self;
            }
            Err(other) => other,
        };
        match any.downcast::<B>() {
            Ok(b) => self.backend = Some(BackendChoice::Ready(Arc::new(*b))),
            Err(_) => unreachable!("a Box<B> downcasts to B"),
        }
        self
    }

    /// As [`MediaStoreBuilder::backend`], for a backend already shared.
    #[cfg(not(loom))]
    pub fn backend_arc(mut self, backend: Arc<dyn crate::backend::Backend>) -> Self {
        self.backend = Some(BackendChoice::Ready(backend));
        self
    }

    /// A backend described by settings (for example
    /// [`BackendConfig::from_env`](crate::backend::BackendConfig::from_env)),
    /// built by `build`.
    ///
    /// ```
    /// use mediastore::backend::BackendConfig;
    /// use mediastore::MediaStore;
    /// # let dir = tempfile::tempdir()?;
    /// let cfg = BackendConfig::Fs { base_dir: dir.path().join("media") };
    /// let store = MediaStore::builder()
    ///     .managed_root(dir.path().join("tmp"))
    ///     .backend_config(cfg)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(not(loom))]
    pub fn backend_config(mut self, cfg: crate::backend::BackendConfig) -> Self {
        self.backend = Some(BackendChoice::Config(cfg));
        self
    }

    /// Backend sweep settings: crash leftovers (a payload without its
    /// manifest) younger than `grace` are never reclaimed, since a save may
    /// be between the two (default 1 h); one sweep stops after `deadline`
    /// (default 30 s) and the next one goes on.
    #[cfg(not(loom))]
    pub fn backend_sweep(mut self, grace: Duration, deadline: Duration) -> Self {
        self.backend_grace = grace;
        self.backend_sweep_deadline = deadline;
        self
    }

    /// Under loom: the in-memory file table the store uses.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn mem_fs(mut self, fs: crate::sync::MemFs) -> Self {
        self.fs = fs;
        self
    }

    /// Validates the settings, starts the deleter thread (and the cleaner,
    /// unless switched off) and returns the store.
    ///
    /// # Errors
    /// [`ConfigError`] for a zero or oversized duration, zero deletion
    /// attempts, a managed root that cannot be created or opened, or a
    /// thread that cannot be started.
    ///
    /// ```
    /// # use mediastore::MediaStore;
    /// let store = MediaStore::builder().build()?;
    /// store.close();
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<MediaStore, ConfigError> {
        self.cleanup.validate()?;
        if self.retry.attempts == 0 {
            return Err(ConfigError::ZeroAttempts);
        }
        MediaStore::from_builder(self)
    }
}
