//! Time, injectable: [`Clock`], [`SystemClock`] and [`ManualClock`].
//!
//! Invariant: a clock is monotonic (never goes back). TTL decisions compare
//! two readings of the same clock, so its origin does not matter.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A monotonic clock: the time elapsed since some fixed origin.
///
/// ```
/// use mediastore::{Clock, SystemClock};
/// let c = SystemClock::new();
/// assert!(c.now() <= c.now());
/// ```
pub trait Clock: Send + Sync + Debug {
    /// Time since this clock's origin; never decreases.
    fn now(&self) -> Duration;

    /// Wall-clock time, for what outlives the process (the store time kept
    /// with owned media, compared after a restart or on another replica).
    /// The default is the system time.
    ///
    /// ```
    /// use mediastore::{Clock, SystemClock};
    /// assert!(SystemClock::new().wall() > std::time::UNIX_EPOCH);
    /// ```
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The real monotonic clock (`Instant`).
///
/// ```
/// use mediastore::{Clock, SystemClock};
/// assert!(SystemClock::new().now() < std::time::Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to; clones share one time. For tests:
/// no test of this crate sleeps to let a TTL pass.
///
/// ```
/// use mediastore::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let view = clock.clone();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(view.now(), Duration::from_secs(90));
/// ```
///
/// Its wall time starts at the system time of its creation and moves with
/// it, so a test can age owned media across a simulated restart.
#[derive(Debug, Clone)]
pub struct ManualClock {
    // A plain std atomic: time is an input the test controls, not part of the
    // store's synchronisation (loom models pass time in the same way).
    nanos: Arc<AtomicU64>,
    wall_origin: SystemTime,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            nanos: Arc::default(),
            wall_origin: SystemTime::now(),
        }
    }
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward (saturating at about 584 years).
    ///
    /// ```
    /// # use mediastore::{Clock, ManualClock};
    /// # use std::time::Duration;
    /// let c = ManualClock::new();
    /// c.advance(Duration::from_millis(5));
    /// assert_eq!(c.now(), Duration::from_millis(5));
    /// ```
    pub fn advance(&self, by: Duration) {
        let add = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the value is the whole message; callers that need order
        // with other memory synchronise through the store's own locks.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(add))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        // Relaxed: see `advance`.
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn wall(&self) -> SystemTime {
        self.wall_origin + self.now()
    }
}
