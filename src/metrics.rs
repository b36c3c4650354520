//! Metrics through the `metrics` facade (feature `metrics`), named after
//! Prometheus conventions:
//!
//! | name | kind | meaning |
//! |---|---|---|
//! | `mediastore_refs_stored_total` | counter | refs stored |
//! | `mediastore_refs_released_total` | counter | refs released by `release_all` |
//! | `mediastore_refs_expired_total` | counter | refs expired by sweeps |
//! | `mediastore_files_deleted_total{outcome}` | counter | unlink attempts: `ok`, `not_found`, `error` |
//! | `mediastore_orphans_deleted_total` | counter | files removed by orphan sweeps |
//! | `mediastore_live_refs` | gauge | refs that resolve now |
//! | `mediastore_scopes` | gauge | scopes with live refs |
//! | `mediastore_deleter_queue_depth` | gauge | refs and files waiting for the deleter |
//! | `mediastore_deletion_retries_pending` | gauge | deletions waiting for a retry |
//! | `mediastore_sweep_duration_seconds` | histogram | time of each expiry sweep |
//! | `mediastore_backend_sweeps_total{outcome}` | counter | backend sweeps (shared backends): `ok`, `failed` |
//! | `mediastore_backend_objects_total{outcome}` | counter | objects a backend sweep handled: `expired`, `orphan`, `error`, `dropped` (local refs released elsewhere) |
//!
//! Invariant: handles are taken from the recorder installed when the store
//! is built (install the exporter first); without the feature, or without a
//! recorder, every call is a no-op. Gauges are updated incrementally from
//! the same events as the counters, never by scanning the maps.

#[cfg(feature = "metrics")]
mod imp {
    use std::time::Duration;

    use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

    /// The store's metric handles.
    pub(crate) struct Metrics {
        stored: Counter,
        released: Counter,
        expired: Counter,
        deleted_ok: Counter,
        deleted_not_found: Counter,
        deleted_error: Counter,
        orphans: Counter,
        live_refs: Gauge,
        scopes: Gauge,
        queue_depth: Gauge,
        retries: Gauge,
        sweep: Histogram,
        backend_sweeps: [Counter; 2],
        backend_objects: [Counter; 4],
    }

    fn describe() {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!("mediastore_refs_stored_total", "Media refs stored");
        describe_counter!(
            "mediastore_refs_released_total",
            "Media refs released by scope"
        );
        describe_counter!(
            "mediastore_refs_expired_total",
            "Media refs expired by TTL sweeps"
        );
        describe_counter!(
            "mediastore_files_deleted_total",
            "Unlink attempts of media files, by outcome"
        );
        describe_counter!(
            "mediastore_orphans_deleted_total",
            "Files removed by orphan sweeps at start"
        );
        describe_gauge!("mediastore_live_refs", "Media refs that resolve now");
        describe_gauge!("mediastore_scopes", "Scopes with live media refs");
        describe_gauge!(
            "mediastore_deleter_queue_depth",
            "Refs and files waiting for the deleter thread"
        );
        describe_gauge!(
            "mediastore_deletion_retries_pending",
            "Deletions waiting for a retry"
        );
        describe_histogram!(
            "mediastore_sweep_duration_seconds",
            Unit::Seconds,
            "Duration of TTL sweeps"
        );
        describe_counter!(
            "mediastore_backend_sweeps_total",
            "Backend sweeps of shared backends, by outcome"
        );
        describe_counter!(
            "mediastore_backend_objects_total",
            "Objects handled by backend sweeps, by outcome"
        );
    }

    impl Metrics {
        pub(crate) fn new() -> Self {
            describe();
            Self {
                stored: counter!("mediastore_refs_stored_total"),
                released: counter!("mediastore_refs_released_total"),
                expired: counter!("mediastore_refs_expired_total"),
                deleted_ok: counter!("mediastore_files_deleted_total", "outcome" => "ok"),
                deleted_not_found: counter!("mediastore_files_deleted_total", "outcome" => "not_found"),
                deleted_error: counter!("mediastore_files_deleted_total", "outcome" => "error"),
                orphans: counter!("mediastore_orphans_deleted_total"),
                live_refs: gauge!("mediastore_live_refs"),
                scopes: gauge!("mediastore_scopes"),
                queue_depth: gauge!("mediastore_deleter_queue_depth"),
                retries: gauge!("mediastore_deletion_retries_pending"),
                sweep: histogram!("mediastore_sweep_duration_seconds"),
                backend_sweeps: ["ok", "failed"]
                    .map(|o| counter!("mediastore_backend_sweeps_total", "outcome" => o)),
                backend_objects: ["expired", "orphan", "error", "dropped"]
                    .map(|o| counter!("mediastore_backend_objects_total", "outcome" => o)),
            }
        }
        pub(crate) fn stored(&self, new_scope: bool) {
            self.stored.increment(1);
            self.live_refs.increment(1.0);
            if new_scope {
                self.scopes.increment(1.0);
            }
        }
        pub(crate) fn released(&self, refs: u64, scopes: u64) {
            self.released.increment(refs);
            self.live_refs.decrement(refs as f64);
            self.scopes.decrement(scopes as f64);
        }
        pub(crate) fn expired(&self, refs: u64, scopes: u64, took: Duration) {
            self.expired.increment(refs);
            self.live_refs.decrement(refs as f64);
            self.scopes.decrement(scopes as f64);
            self.sweep.record(took.as_secs_f64());
        }
        pub(crate) fn deleted(&self, ok: bool, not_found: bool) {
            match (ok, not_found) {
                (true, _) => self.deleted_ok.increment(1),
                (false, true) => self.deleted_not_found.increment(1),
                (false, false) => self.deleted_error.increment(1),
            }
        }
        pub(crate) fn orphans(&self, n: u64) {
            self.orphans.increment(n);
        }
        pub(crate) fn queue_depth(&self, n: u64) {
            self.queue_depth.set(n as f64);
        }
        pub(crate) fn retries(&self, n: u64) {
            self.retries.set(n as f64);
        }
        /// One backend sweep: `None` if it failed, else the objects it
        /// expired, reclaimed as orphans, failed to delete, and the local
        /// refs it dropped.
        #[cfg_attr(loom, allow(dead_code))]
        pub(crate) fn backend_sweep(&self, counts: Option<[u64; 4]>) {
            match counts {
                None => self.backend_sweeps[1].increment(1),
                Some(c) => {
                    self.backend_sweeps[0].increment(1);
                    for (counter, n) in self.backend_objects.iter().zip(c) {
                        counter.increment(n);
                    }
                }
            }
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use std::time::Duration;

    /// Without the `metrics` feature: nothing is recorded.
    pub(crate) struct Metrics;

    impl Metrics {
        pub(crate) fn new() -> Self {
            Metrics
        }
        pub(crate) fn stored(&self, _new_scope: bool) {}
        pub(crate) fn released(&self, _refs: u64, _scopes: u64) {}
        #[cfg_attr(loom, allow(dead_code))] // sweeps are timed outside loom only
        pub(crate) fn expired(&self, _refs: u64, _scopes: u64, _took: Duration) {}
        pub(crate) fn deleted(&self, _ok: bool, _not_found: bool) {}
        #[cfg_attr(loom, allow(dead_code))] // the orphan sweep is not built under loom
        pub(crate) fn orphans(&self, _n: u64) {}
        pub(crate) fn queue_depth(&self, _n: u64) {}
        pub(crate) fn retries(&self, _n: u64) {}
        #[cfg_attr(loom, allow(dead_code))]
        pub(crate) fn backend_sweep(&self, _counts: Option<[u64; 4]>) {}
    }
}

pub(crate) use imp::Metrics;
