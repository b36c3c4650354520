//! A fixed amount of `store` calls for counting instructions, shaped like
//! benchmark S1 in its steady form: `N` stores (default 1 000 000) of one
//! existing file into one scope, the scope released and the deleter waited
//! for after every 1 024. Then, for comparison, `N` plain `metadata()` calls
//! and `N` `lstat` calls on the same file.
//!
//! The wall-clock figures it prints include the releases; compare builds
//! by instructions, which do not move with the machine's load:
//!
//! ```sh
//! cargo build --release --example s1_loop
//! N=200000 valgrind --tool=callgrind target/release/examples/s1_loop
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep store_as
//! ```

use std::hint::black_box;
use std::time::Instant;

use mediastore::{ManualClock, MediaMeta, MediaStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let store = MediaStore::builder()
        .managed_root(dir.path())
        .clock(ManualClock::new())
        .background_cleaner(false)
        .orphan_sweep(false)
        .build()?;
    let path = dir.path().join("s1-000000.bin");
    std::fs::write(&path, b"x")?;

    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(1024);
        for _ in 0..batch {
            black_box(store.store(&path, MediaMeta::forget_only(), "s1")?);
        }
        store.release_all("s1");
        store.flush();
        done += batch;
    }
    let per = |t: Instant| t.elapsed().as_nanos() as f64 / n.max(1) as f64;
    println!(
        "store:      {:.0} ns per call, releases included",
        per(started)
    );
    let started = Instant::now();
    for _ in 0..n {
        black_box(std::fs::metadata(&path)?);
    }
    println!("metadata(): {:.0} ns per call", per(started));
    let started = Instant::now();
    for _ in 0..n {
        black_box(std::fs::symlink_metadata(&path)?);
    }
    println!("lstat:      {:.0} ns per call", per(started));
    Ok(())
}
