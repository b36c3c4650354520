//! Table benchmarks (a plain binary, `harness = false`): what criterion
//! does not measure well. Every implementation runs in the same process.
//!
//! * W3 release latency: `release_all` of a scope holding 1 000 files, as
//!   the caller sees it (median of repeated runs).
//! * W4 resolve latency during expiry: 200 000 expired refs with files and
//!   1 000 fresh ones; one thread expires (and the files get deleted), one
//!   thread resolves fresh refs; p50 / p99 / p99.9 / max. A last row
//!   measures the machine's floor the same way, with no store at all.
//! * W6 memory: heap bytes per live ref (a counting global allocator).
//! * D1 deleter throughput: files/s through the deleter thread against a
//!   plain `remove_file` loop on the same number of files.
//! * Scaling: resolve and idle-sweep cost at 1 k, 100 k and 1 M live refs.
//!
//! `cargo bench --bench tail` (full: about 4 minutes) or
//! `QUICK=1 cargo bench --bench tail` (smaller sizes, under a minute).
//! Criterion's own flags (`--bench`, filters) are accepted and ignored.

#[path = "common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mediastore::CleanupPolicy;

// ---- a counting allocator (W6) ------------------------------------------------------------

struct Counting;

/// Live heap bytes (requested sizes), counted only while `COUNTING` is on
/// (W6), so that the other workloads run on the plain system allocator.
static LIVE: AtomicIsize = AtomicIsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size() as isize);
        // SAFETY: forwards the caller's layout to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(-(l.size() as isize));
        // SAFETY: `p` was returned by `System.alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new as isize - l.size() as isize);
        // SAFETY: `p` was returned by `System.alloc` with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

// ---- helpers ---------------------------------------------------------------------------------

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn pct(sorted: &[u32], p: f64) -> u32 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

// ---- W3 ---------------------------------------------------------------------------------------

fn w3<I: Impl>(name: &str, imp: I, dir: &std::path::Path, reps: usize) -> f64 {
    let mut times = Vec::with_capacity(reps);
    for rep in 0..reps {
        let files = make_files(dir, &format!("w3-{name}-{rep}-"), 1000);
        for p in &files {
            imp.store(p, CleanupPolicy::DeleteOnCleanup, "w3");
        }
        imp.settle();
        let t = Instant::now();
        let n = imp.release_all("w3");
        times.push(t.elapsed().as_nanos() as f64);
        assert_eq!(n, 1000);
        imp.settle();
        assert!(files.iter().all(|p| !p.exists()), "{name}: files left");
    }
    median(&mut times)
}

// ---- W4 ---------------------------------------------------------------------------------------

struct Tail {
    p50: u32,
    p99: u32,
    p999: u32,
    max: u32,
    resolves: usize,
    misses: usize,
    sweep_ms: f64,
}

impl Tail {
    /// The table cells every W4 row shares: p50, p99, p99.9, max, samples.
    fn latency_cells(&self) -> String {
        format!(
            "{} | {} | {} | {} | {}",
            fmt_ns(self.p50 as f64),
            fmt_ns(self.p99 as f64),
            fmt_ns(self.p999 as f64),
            fmt_ns(self.max as f64),
            self.resolves
        )
    }

    /// Percentiles of the latency samples (ns), the same way for every row.
    fn from_samples(mut lat: Vec<u32>, misses: usize, sweep_ms: f64) -> Self {
        lat.sort_unstable();
        Tail {
            p50: pct(&lat, 0.5),
            p99: pct(&lat, 0.99),
            p999: pct(&lat, 0.999),
            max: *lat.last().unwrap(),
            resolves: lat.len(),
            misses,
            sweep_ms,
        }
    }
}

/// The machine's own floor for W4, measured the same way (timer around
/// each sample, the same recorder): each sample is six reads at random
/// places in 4 MiB of already-touched memory, about the cache lines a
/// resolve reads, with no store and no other thread running. Where this
/// row's p99.9 is high, the machine (not an implementation) sets W4's tail:
/// on some hosts a few random reads now and then find the caches and TLB
/// cold (seen here: this row's p99.9 at 2.0-2.6 us on a host where every
/// implementation's W4 p99.9 was 2.3-3.2 us, after an earlier host had
/// given the store 170-420 ns).
fn w4_floor(samples: usize) -> Tail {
    let mem = vec![1u64; 512 * 1024];
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 24);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut acc = 0u64;
    for _ in 0..samples {
        let t = Instant::now();
        for _ in 0..6 {
            acc = acc.wrapping_add(mem[rng.below(mem.len())]);
        }
        let dt = t.elapsed().as_nanos().min(u32::MAX as u128) as u32;
        if lat.len() < lat.capacity() {
            lat.push(dt);
        }
    }
    black_box(acc);
    Tail::from_samples(lat, 0, 0.0)
}

/// `expire_setup` makes the first batch of refs expired (clock or sleep).
fn w4<I: Impl>(
    name: &str,
    imp: I,
    dir: &std::path::Path,
    expired: usize,
    expire_setup: impl FnOnce(&I),
) -> Tail {
    let old = make_files(dir, &format!("w4-{name}-old-"), expired);
    let young = make_files(dir, &format!("w4-{name}-new-"), 1000);
    for (i, p) in old.iter().enumerate() {
        imp.store(p, CleanupPolicy::DeleteOnCleanup, &format!("old-{}", i / 4));
    }
    expire_setup(&imp);
    let fresh: Vec<I::Ref> = young
        .iter()
        .enumerate()
        .map(|(i, p)| imp.store(p, CleanupPolicy::DeleteOnCleanup, &format!("new-{}", i / 4)))
        .collect();
    let imp = Arc::new(imp);
    let done = Arc::new(AtomicBool::new(false));
    let expirer = {
        let (imp, done) = (Arc::clone(&imp), Arc::clone(&done));
        std::thread::spawn(move || {
            let t = Instant::now();
            let mut total = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while total < expired && Instant::now() < deadline {
                total += imp.clean_expired();
            }
            imp.settle();
            done.store(true, Ordering::Release);
            (total, t.elapsed())
        })
    };
    let mut lat: Vec<u32> = Vec::with_capacity(1 << 24);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut misses = 0;
    while !done.load(Ordering::Acquire) {
        let r = &fresh[rng.below(fresh.len())];
        let t = Instant::now();
        let hit = imp.resolve_read(r);
        let dt = t.elapsed().as_nanos().min(u32::MAX as u128) as u32;
        if hit == 0 {
            misses += 1;
        }
        if lat.len() < lat.capacity() {
            lat.push(dt);
        }
    }
    let (total, took) = expirer.join().unwrap();
    assert!(total >= expired, "{name}: expired {total} of {expired}");
    assert!(
        old.iter().all(|p| !p.exists()),
        "{name}: expired files left"
    );
    Tail::from_samples(lat, misses, took.as_secs_f64() * 1e3)
}

// ---- W6 ---------------------------------------------------------------------------------------

/// Heap bytes the implementation holds per live ref. The caller's own
/// list of refs is allocated before counting starts and is not included.
/// `content_type` replaces the common metadata's (same length) when given.
fn w6<I: Impl>(make: impl FnOnce() -> I, files: &[PathBuf], content_type: Option<&str>) -> f64 {
    let mut refs: Vec<I::Ref> = Vec::with_capacity(files.len());
    COUNTING.store(true, Ordering::SeqCst);
    let before = live();
    let imp = make();
    for (i, p) in files.iter().enumerate() {
        let mut m = meta(CleanupPolicy::ForgetOnly);
        if let Some(c) = content_type {
            m.content_type = c.into();
        }
        refs.push(imp.store_meta(p, m, &format!("telegram:42:{}", i / 2)));
    }
    imp.settle();
    let used = live() - before;
    COUNTING.store(false, Ordering::SeqCst);
    drop(refs);
    drop(imp);
    used as f64 / files.len() as f64
}

// ---- D1 ---------------------------------------------------------------------------------------

/// Files/s through the deleter, through a plain loop on the thread that
/// made the files, and through a plain loop on another thread (the limit
/// for any dedicated deleter: the files' kernel objects are warm in the
/// other core's caches).
fn d1(dir: &std::path::Path, n: usize, reps: usize) -> (f64, f64, f64) {
    let ours = Ours::new();
    let (mut deleter, mut plain, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..reps {
        let files = make_files(dir, &format!("d1-a{rep}-"), n);
        for p in &files {
            ours.store(p, CleanupPolicy::DeleteOnCleanup, "d1");
        }
        let t = Instant::now();
        ours.release_all("d1");
        ours.settle();
        deleter.push(n as f64 / t.elapsed().as_secs_f64());
        assert!(files.iter().all(|p| !p.exists()));

        let files = make_files(dir, &format!("d1-b{rep}-"), n);
        let t = Instant::now();
        for p in &files {
            std::fs::remove_file(p).unwrap();
        }
        plain.push(n as f64 / t.elapsed().as_secs_f64());

        let files = make_files(dir, &format!("d1-c{rep}-"), n);
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                for p in &files {
                    std::fs::remove_file(p).unwrap();
                }
            });
        });
        other.push(n as f64 / t.elapsed().as_secs_f64());
    }
    (median(&mut deleter), median(&mut plain), median(&mut other))
}

// ---- scaling ----------------------------------------------------------------------------------

fn scaling<I: Impl>(
    make: impl Fn() -> I,
    files: &[PathBuf],
    sizes: &[usize],
) -> Vec<(usize, f64, f64)> {
    sizes
        .iter()
        .map(|&n| {
            let imp = make();
            let refs: Vec<I::Ref> = files[..n]
                .iter()
                .enumerate()
                .map(|(i, p)| imp.store(p, CleanupPolicy::ForgetOnly, &format!("s{}", i / 2)))
                .collect();
            imp.advance(Duration::from_secs(60));
            let mut rng = Rng(0x1234_5678_9abc_def1);
            let mut res = Vec::new();
            for _ in 0..5 {
                let ops = 1_000_000;
                let t = Instant::now();
                let mut acc = 0;
                for _ in 0..ops {
                    acc += imp.resolve_read(&refs[rng.below(n)]);
                }
                black_box(acc);
                res.push(t.elapsed().as_nanos() as f64 / ops as f64);
            }
            let mut sweeps = Vec::new();
            let calls = if n >= 100_000 { 20 } else { 200 };
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..calls {
                    assert_eq!(imp.clean_expired(), 0);
                }
                sweeps.push(t.elapsed().as_nanos() as f64 / calls as f64);
            }
            (n, median(&mut res), median(&mut sweeps))
        })
        .collect()
}

fn main() {
    let quick = quick();
    let dir = temp_dir("tail");
    let started = Instant::now();
    println!(
        "# mediastore tail benchmarks ({} mode, {} cores)\n",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // `ONLY=w6,d1` runs just those sections (w3, d1, w4, w6, scaling).
    let only = std::env::var("ONLY").unwrap_or_default();
    let want = |s: &str| only.is_empty() || only.split(',').any(|o| o.trim() == s);

    if want("w3") {
        // W3
        let reps = if quick { 9 } else { 25 };
        println!("## W3 release latency: release_all of a 1 000-file scope (caller side, median of {reps})\n");
        println!("| implementation | median | vs picoclaw-port |");
        println!("|---|---|---|");
        let pico = w3("pico", Picoclaw::new(), dir.path(), reps);
        let rows = [
            ("mediastore", w3("ours", Ours::new(), dir.path(), reps)),
            ("picoclaw-port", pico),
            ("moka", w3("moka", Moka::new(MAX_AGE), dir.path(), reps)),
            (
                "dashmap-inline",
                w3("inline", DashInline::new(), dir.path(), reps),
            ),
        ];
        for (name, t) in rows {
            println!("| {name} | {} | {:.3}× |", fmt_ns(t), t / pico);
        }
    }
    if want("d1") {
        // D1
        let (n, reps) = if quick { (5_000, 3) } else { (20_000, 5) };
        let (deleter, plain, other) = d1(dir.path(), n, reps);
        println!("\n## D1 deleter throughput ({n} files, median of {reps})\n");
        println!("| path | files/s | mediastore's ratio to it |");
        println!("|---|---|---|");
        println!(
            "| plain `remove_file` loop, on the thread that made the files | {plain:.0} | {:.2} |",
            deleter / plain
        );
        println!(
            "| plain `remove_file` loop, on another thread | {other:.0} | {:.2} |",
            deleter / other
        );
        println!("| mediastore deleter (release_all → flush) | {deleter:.0} | 1.00 |");
    }
    if want("w4") {
        // W4
        let expired = if quick { 50_000 } else { 200_000 };
        println!("\n## W4 resolve latency while {expired} refs expire and their files are deleted (1 000 fresh refs resolved)\n");
        println!(
            "| implementation | p50 | p99 | p99.9 | max | resolves | misses | sweep + deletions |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let age = |i: &dyn Fn(Duration)| i(MAX_AGE + Duration::from_secs(1));
        let rows: Vec<(&str, Tail)> = vec![
            (
                "mediastore",
                w4("ours", Ours::new(), dir.path(), expired, |i| {
                    age(&|d| i.advance(d))
                }),
            ),
            (
                "picoclaw-port",
                w4("pico", Picoclaw::new(), dir.path(), expired, |i| {
                    age(&|d| i.advance(d))
                }),
            ),
            (
                "dashmap-inline",
                w4("inline", DashInline::new(), dir.path(), expired, |i| {
                    age(&|d| i.advance(d))
                }),
            ),
            ("moka", {
                // moka runs on real time: a short TTL, then wait it out.
                let ttl = Duration::from_secs(if quick { 5 } else { 10 });
                let start = Instant::now();
                w4("moka", Moka::new(ttl), dir.path(), expired, move |_| {
                    std::thread::sleep(
                        (start + ttl + Duration::from_millis(200))
                            .saturating_duration_since(Instant::now()),
                    );
                })
            }),
        ];
        let floor = w4_floor(if quick { 2_000_000 } else { 10_000_000 });
        for (name, t) in &rows {
            println!(
                "| {name} | {} | {} | {:.0} ms |",
                t.latency_cells(),
                t.misses,
                t.sweep_ms
            );
        }
        println!(
            "| machine floor: 6 random reads in 4 MiB, no store | {} | — | — |",
            floor.latency_cells()
        );
    }
    // W6 and scaling share one pool of files.
    let n = if quick { 100_000 } else { 1_000_000 };
    let pool = if want("w6") || want("scaling") {
        make_files(dir.path(), "pool-", n)
    } else {
        Vec::new()
    };
    if want("w6") {
        println!("\n## W6 heap bytes per live ref ({n} refs, distinct ~60-byte paths, 2 refs per scope, metadata of 3 short strings)\n");
        println!("| implementation | bytes/ref |");
        println!("|---|---|");
        println!("| mediastore | {:.0} |", w6(Ours::new, &pool, None));
        // The same with a content type outside the store's table of
        // everyday types (same length as `application/octet-stream`).
        let custom = Some("application/x-bench-blob");
        println!(
            "| mediastore, custom content type | {:.0} |",
            w6(Ours::new, &pool, custom)
        );
        println!("| picoclaw-port | {:.0} |", w6(Picoclaw::new, &pool, None));
        println!("| moka | {:.0} |", w6(|| Moka::new(MAX_AGE), &pool, None));
        println!(
            "| dashmap-inline | {:.0} |",
            w6(DashInline::new, &pool, None)
        );
    }
    if want("scaling") {
        let sizes: Vec<usize> = [1_000, 100_000, 1_000_000]
            .into_iter()
            .filter(|&s| s <= n)
            .collect();
        println!("\n## Scaling with live refs: random resolve (reads the path) and idle sweep\n");
        println!("| live refs | mediastore resolve | mediastore idle sweep | picoclaw-port resolve | picoclaw-port idle sweep |");
        println!("|---|---|---|---|---|");
        let ours = scaling(Ours::new, &pool, &sizes);
        let pico = scaling(Picoclaw::new, &pool, &sizes);
        for (o, p) in ours.iter().zip(&pico) {
            println!(
                "| {} | {} | {} | {} | {} |",
                o.0,
                fmt_ns(o.1),
                fmt_ns(o.2),
                fmt_ns(p.1),
                fmt_ns(p.2)
            );
        }
    }
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}
