//! A fixed amount of resolve work for counting CPU cycles: 100 000 refs to
//! distinct files (60-byte paths, four refs per scope), then `N` random
//! resolves (default 10 000 000) on one thread, each reading the path's
//! length and last byte, as benchmark W1 does.
//!
//! Wall time on a shared machine moves by 2× between identical runs;
//! user-space cycles move far less, so this is the loop to compare two
//! builds with:
//!
//! ```sh
//! cargo build --release --example resolve_loop
//! N=0        perf stat -e cycles:u target/release/examples/resolve_loop   # setup only
//! N=10000000 perf stat -e cycles:u target/release/examples/resolve_loop
//! ```
//!
//! (difference / N = cycles per resolve). It also prints its own wall-clock
//! figure, for what that is worth.

use std::time::Instant;

use mediastore::{CleanupPolicy, ManualClock, MediaMeta, MediaRef, MediaStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir()?;
    let store = MediaStore::builder()
        .clock(ManualClock::new())
        .background_cleaner(false)
        .orphan_sweep(false)
        .build()?;
    let refs = (0..100_000)
        .map(|i| {
            let path = dir
                .path()
                .join(format!("attachment-padding-name-{i:06}.bin"));
            std::fs::write(&path, b"")?;
            let meta = MediaMeta {
                filename: "attachment.bin".into(),
                content_type: "application/octet-stream".into(),
                source: "bench".into(),
                cleanup_policy: CleanupPolicy::ForgetOnly,
            };
            Ok(store.store(&path, meta, &format!("s{}", i / 4))?)
        })
        .collect::<Result<Vec<MediaRef>, Box<dyn std::error::Error>>>()?;

    let started = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut acc = 0usize;
    for _ in 0..n {
        // xorshift64: a cheap, fixed sequence of random refs.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let lease = store.resolve(&refs[(x % refs.len() as u64) as usize])?;
        let bytes = lease.path().as_os_str().as_encoded_bytes();
        acc += bytes.len() + usize::from(bytes.last().copied().unwrap_or(0));
    }
    std::hint::black_box(acc);
    if n > 0 {
        println!(
            "{n} resolves: {:.1} ns each (wall clock)",
            started.elapsed().as_nanos() as f64 / n as f64
        );
    }
    Ok(())
}
