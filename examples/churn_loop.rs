//! A fixed amount of churn for counting CPU cycles, shaped like benchmark
//! W2: each cycle stores 8 existing files (forget-only, three short
//! metadata strings) into a fresh scope, resolves each ref and reads its
//! path, then releases the scope. `N` cycles (default 300 000) on each of
//! `THREADS` threads (default 1), each thread with its own 8 files.
//!
//! As with `resolve_loop`, compare two builds in user-space cycles, which
//! move far less than wall time on a shared machine:
//!
//! ```sh
//! cargo build --release --example churn_loop
//! perf stat -e cycles:u target/release/examples/churn_loop
//! ```
//!
//! Where `perf` cannot count cycles (some virtual machines), count
//! instructions instead: `N=30000 valgrind --tool=callgrind
//! target/release/examples/churn_loop`.

use std::time::Instant;

use mediastore::{CleanupPolicy, ManualClock, MediaMeta, MediaStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir()?;
    let store = MediaStore::builder()
        .clock(ManualClock::new())
        .background_cleaner(false)
        .orphan_sweep(false)
        .build()?;
    let files = (0..threads)
        .map(|t| {
            (0..8)
                .map(|i| {
                    let path = dir.path().join(format!("churn-t{t}-attachment-{i:06}.bin"));
                    std::fs::write(&path, b"x")?;
                    Ok(path)
                })
                .collect::<std::io::Result<Vec<_>>>()
        })
        .collect::<std::io::Result<Vec<_>>>()?;

    let started = Instant::now();
    std::thread::scope(|s| {
        for (t, files) in files.iter().enumerate() {
            let store = &store;
            s.spawn(move || churn(store, files, t, n));
        }
    });
    if n > 0 {
        println!(
            "{threads} x {n} cycles: {:.0} ns per cycle per thread (wall clock)",
            started.elapsed().as_nanos() as f64 / n as f64
        );
    }
    Ok(())
}

/// `n` cycles of thread `t` over its `files`.
fn churn(store: &MediaStore, files: &[std::path::PathBuf], t: usize, n: usize) {
    let mut refs = Vec::with_capacity(files.len());
    let mut acc = 0usize;
    for i in 0..n {
        let scope = format!("churn-{t}-{i}");
        refs.clear();
        for path in files {
            let meta = MediaMeta {
                filename: "attachment.bin".into(),
                content_type: "application/octet-stream".into(),
                source: "bench".into(),
                cleanup_policy: CleanupPolicy::ForgetOnly,
            };
            refs.push(store.store(path, meta, &scope).expect("store"));
        }
        for r in &refs {
            acc += store.resolve(r).expect("resolve").path().as_os_str().len();
        }
        assert_eq!(store.release_all(&scope), files.len());
    }
    std::hint::black_box(acc);
}
