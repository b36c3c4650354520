//! The background cleaner: sweeps expired refs once at start and then every
//! `sweep_interval`, with the configuration of the moment.
//!
//! Invariants: at most one cleaner runs per store (the store keeps its
//! handle under a mutex); it stops only when told to (`Stop`, or its
//! control channel closing) and is joined by whoever stops it; a panic in a
//! sweep (for example from a user-supplied clock) is caught and logged, and
//! the cleaner goes on with the next interval. Not built under loom (loom
//! has no time); models call `clean_expired` directly.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::error::ConfigError;
use crate::store::Shared;
use crate::sync::{thread, Arc};

/// How long a disabled cleaner waits before looking at its configuration
/// again if nobody wakes it.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

enum Ctl {
    /// The configuration changed: re-read it now.
    Wake,
    /// Answer, to prove the thread is alive and has handled every earlier
    /// message.
    Ping(Sender<()>),
    /// Exit.
    Stop,
}

/// A running cleaner thread.
pub(crate) struct Cleaner {
    ctl: Sender<Ctl>,
    thread: thread::JoinHandle<()>,
}

impl Cleaner {
    /// Runs the first sweep on the calling thread (so "once at start" is
    /// done when this returns; a sweep touches no file), then starts the
    /// thread that sweeps every interval.
    pub(crate) fn spawn(shared: Arc<Shared>) -> Result<Self, ConfigError> {
        sweep(&shared);
        let (ctl, rx) = crossbeam_channel::unbounded();
        let thread = thread::Builder::new()
            .name("mediastore-cleaner".into())
            .spawn(move || run(&shared, &rx))
            .map_err(|source| ConfigError::Spawn {
                thread: "mediastore-cleaner",
                source,
            })?;
        Ok(Self { ctl, thread })
    }

    /// Asks the cleaner to re-read its configuration.
    pub(crate) fn wake(&self) {
        let _ = self.ctl.send(Ctl::Wake);
    }

    /// Whether the thread answers within `wait` (after handling every
    /// earlier message).
    pub(crate) fn alive(&self, wait: Duration) -> bool {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.ctl.send(Ctl::Ping(tx)).is_ok() && rx.recv_timeout(wait).is_ok()
    }

    /// Stops and joins the thread.
    pub(crate) fn stop(self) {
        let _ = self.ctl.send(Ctl::Stop);
        if self.thread.join().is_err() {
            tracing::error!("mediastore: cleaner thread panicked");
        }
    }
}

/// One sweep if cleanup is enabled; a panic (say, from a user clock) is
/// logged and the next interval tries again.
fn sweep(shared: &Arc<Shared>) {
    // A shared backend is swept on the deleter thread (network I/O); this
    // only queues it. Its orphans need sweeping even with TTL off.
    shared.request_backend_sweep(None);
    if !shared.cleanup_snapshot().enabled {
        return;
    }
    // `clean_expired` logs and measures each sweep itself.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.clean_expired())).is_err() {
        tracing::error!("mediastore: sweep panicked; retrying next interval");
    }
}

fn run(shared: &Arc<Shared>, ctl: &Receiver<Ctl>) {
    tracing::info!("mediastore: cleaner thread started");
    loop {
        let cfg = *shared.cleanup_snapshot();
        let wait = if cfg.enabled {
            cfg.sweep_interval
        } else {
            IDLE_WAIT
        };
        match ctl.recv_timeout(wait) {
            Ok(Ctl::Wake) | Err(RecvTimeoutError::Timeout) => sweep(shared),
            Ok(Ctl::Ping(ack)) => {
                let _ = ack.send(());
            }
            Ok(Ctl::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    tracing::info!("mediastore: cleaner thread stopped");
}
