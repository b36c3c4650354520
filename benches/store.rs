//! Criterion benchmarks: throughput workloads, every implementation in the
//! same run (see `common/mod.rs` for the peers).
//!
//! * W1 resolve-hot: 100 000 live refs, uniformly random resolve that reads
//!   the path, on 1 and 2 threads.
//! * W2 churn: per thread, store 8 forget-only refs into a fresh scope,
//!   resolve each, release the scope; 1 and 2 threads.
//! * W5 idle sweep: one expiry sweep with 1 000 000 live refs, none expired.
//! * S1 store: one `store` of an existing file, against a plain `metadata()`;
//!   empty metadata, so that it measures the store and not the caller's
//!   string allocations. Twice: with the refs piling up for the whole
//!   sample (`S1_store`), and with at most 1 024 live, the scope released
//!   untimed in between (`S1_store_steady`). A `store-floor` row in each
//!   does only what any store must: `metadata()`, a random id and one
//!   sharded-map insert.
//!
//! `QUICK=1 cargo bench --bench store` shortens every measurement. The tail
//! latency, memory, release latency and deleter workloads are in
//! `benches/tail.rs`.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use mediastore::{CleanupPolicy, MediaMeta};
use uuid::Uuid;

fn config() -> Criterion {
    let c = Criterion::default().sample_size(if quick() { 10 } else { 20 });
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
    } else {
        c.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
    }
}

/// Runs `op(thread, iters)` on `threads` threads started together; returns
/// the wall time from the start signal until all are done.
fn on_threads<F>(threads: usize, iters: u64, op: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, op) = (&barrier, &op);
            s.spawn(move || {
                barrier.wait();
                op(t, iters);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scope end joins every thread.
        start
    })
    .elapsed()
}

// ---- W1 -------------------------------------------------------------------------------------

fn w1_case<I: Impl>(
    c: &mut Criterion,
    name: &str,
    make: impl Fn() -> I,
    files: &[std::path::PathBuf],
) {
    // Built on first use only, so that a filtered run skips the setup.
    let mut state: Option<(I, Vec<I::Ref>)> = None;
    let mut setup = || {
        let imp = make();
        let refs: Vec<I::Ref> = files
            .iter()
            .enumerate()
            .map(|(i, p)| imp.store(p, CleanupPolicy::ForgetOnly, &format!("w1-{}", i / 4)))
            .collect();
        (imp, refs)
    };
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("W1_resolve_{threads}t"));
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            let (imp, refs) = state.get_or_insert_with(&mut setup);
            let (imp, refs) = (&*imp, &*refs);
            b.iter_custom(|iters| {
                on_threads(threads, iters, |t, iters| {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                    let mut acc = 0usize;
                    for _ in 0..iters {
                        acc += imp.resolve_read(&refs[rng.below(refs.len())]);
                    }
                    black_box(acc);
                })
            })
        });
        g.finish();
    }
}

fn w1(c: &mut Criterion) {
    let dir = temp_dir("w1");
    let files = make_files(dir.path(), "w1-", 100_000);
    w1_case(c, "mediastore", Ours::new, &files);
    w1_case(c, "picoclaw-port", Picoclaw::new, &files);
    w1_case(c, "moka", || Moka::new(MAX_AGE), &files);
    w1_case(c, "dashmap-inline", DashInline::new, &files);
}

// ---- W2 -------------------------------------------------------------------------------------

fn w2_case<I: Impl>(c: &mut Criterion, name: &str, imp: I, files: &[Vec<std::path::PathBuf>]) {
    let imp = Arc::new(imp);
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("W2_churn_{threads}t"));
        g.throughput(Throughput::Elements(threads as u64));
        let mut round = 0u64;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                round += 1;
                let elapsed = on_threads(threads, iters, |t, iters| {
                    let mine = &files[t];
                    let mut refs = Vec::with_capacity(8);
                    for i in 0..iters {
                        let scope = format!("w2-{round}-{t}-{i}");
                        refs.clear();
                        for p in mine {
                            refs.push(imp.store(p, CleanupPolicy::ForgetOnly, &scope));
                        }
                        let mut acc = 0;
                        for r in &refs {
                            acc += imp.resolve_read(r);
                        }
                        black_box(acc);
                        imp.release_all(&scope);
                    }
                });
                imp.settle();
                elapsed
            })
        });
        g.finish();
    }
}

fn w2(c: &mut Criterion) {
    let dir = temp_dir("w2");
    let files: Vec<Vec<_>> = (0..2)
        .map(|t| make_files(dir.path(), &format!("w2-t{t}-"), 8))
        .collect();
    w2_case(c, "mediastore", Ours::new(), &files);
    w2_case(c, "picoclaw-port", Picoclaw::new(), &files);
    w2_case(c, "moka", Moka::new(MAX_AGE), &files);
    w2_case(c, "dashmap-inline", DashInline::new(), &files);
}

// ---- W5 -------------------------------------------------------------------------------------

fn w5_case<I: Impl>(
    c: &mut Criterion,
    name: &str,
    make: impl Fn() -> I,
    files: &[std::path::PathBuf],
    n: usize,
) {
    let mut state: Option<I> = None;
    let mut g = c.benchmark_group("W5_idle_sweep");
    g.bench_function(BenchmarkId::from_parameter(name), |b| {
        let imp = state.get_or_insert_with(|| {
            let imp = make();
            for i in 0..n {
                imp.store(
                    &files[i % files.len()],
                    CleanupPolicy::ForgetOnly,
                    &format!("w5-{}", i / 8),
                );
            }
            imp.advance(Duration::from_secs(60));
            imp
        });
        b.iter(|| assert_eq!(imp.clean_expired(), 0))
    });
    g.finish();
}

fn w5(c: &mut Criterion) {
    let n = if quick() { 200_000 } else { 1_000_000 };
    let dir = temp_dir("w5");
    let files = make_files(dir.path(), "w5-", 1000);
    w5_case(c, "mediastore", Ours::new, &files, n);
    w5_case(c, "picoclaw-port", Picoclaw::new, &files, n);
    w5_case(c, "moka", || Moka::new(MAX_AGE), &files, n);
    w5_case(c, "dashmap-inline", DashInline::new, &files, n);
}

// ---- S1 -------------------------------------------------------------------------------------

/// One S1 row: times `store`, running `reset` (untimed) after every `batch`
/// stores and at the end of each sample. With `PILING` the refs pile up for
/// the whole sample (group `S1_store`); with `STEADY` at most 1 024 are
/// live, so that the store's memory is reused as in a gateway that releases
/// its messages, and growth (page faults on fresh heap, map resizes) is not
/// part of the figure (group `S1_store_steady`).
fn s1_case(c: &mut Criterion, name: &str, batch: u64, store: impl Fn(), reset: impl Fn()) {
    let group = if batch == PILING {
        "S1_store"
    } else {
        "S1_store_steady"
    };
    let mut g = c.benchmark_group(group);
    g.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(batch);
                let start = Instant::now();
                for _ in 0..n {
                    store();
                }
                timed += start.elapsed();
                reset();
                left -= n;
            }
            timed
        })
    });
    g.finish();
}

const PILING: u64 = u64::MAX;
const STEADY: u64 = 1024;

/// One S1 row for one implementation: forget-only stores of `file`, with
/// empty metadata, into one scope, released between batches.
fn s1_row<I: Impl>(c: &mut Criterion, name: &str, imp: I, file: &std::path::Path, batch: u64) {
    let store = || {
        black_box(imp.store_meta(file, MediaMeta::forget_only(), "s1"));
    };
    let reset = || {
        imp.release_all("s1");
        imp.settle();
    };
    s1_case(c, name, batch, store, reset);
}

/// The "store-floor" row: the least any store that hands out refs can do
/// per call — one `metadata()`, one random id, one insert into a sharded
/// map — with no scope, no path count, no expiry and no metadata. What it
/// reaches against `plain-metadata` bounds what S1 can show on this machine.
fn s1_floor_row(c: &mut Criterion, file: &std::path::Path, batch: u64) {
    // foldhash, as fast as the store's own hashing: a floor should not pay
    // for SipHash.
    let refs: DashMap<Uuid, (), foldhash::fast::RandomState> = DashMap::default();
    let store = || {
        black_box(std::fs::metadata(file).unwrap());
        refs.insert(Uuid::new_v4(), ());
    };
    s1_case(c, "store-floor", batch, store, || refs.clear());
}

fn s1(c: &mut Criterion) {
    let dir = temp_dir("s1");
    let file = make_files(dir.path(), "s1-", 1).remove(0);
    let mut g = c.benchmark_group("S1_store");
    g.bench_function(BenchmarkId::from_parameter("plain-metadata"), |b| {
        b.iter(|| black_box(std::fs::metadata(&file).unwrap()))
    });
    g.finish();
    // Every implementation's piling-up row, then every steady row, each on
    // a fresh instance.
    for batch in [PILING, STEADY] {
        s1_row(c, "mediastore", Ours::new(), &file, batch);
        s1_row(c, "picoclaw-port", Picoclaw::new(), &file, batch);
        s1_row(c, "moka", Moka::new(MAX_AGE), &file, batch);
        s1_row(c, "dashmap-inline", DashInline::new(), &file, batch);
        s1_floor_row(c, &file, batch);
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = w1, w2, w5, s1
}
criterion_main!(benches);
