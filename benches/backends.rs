//! Owned media against real backends: save, cold resolve, warm resolve and
//! release, on the filesystem backend and on the S3 backend against a local
//! s3s-fs server, next to a goclaw-style warm resolve (a manifest GET and a
//! cache stat on every call, as goclaw's `LocalPath` does).
//!
//! `cargo bench --bench backends --features s3` (`QUICK=1`: fewer rounds).
//! Prints median and p90 per operation; the table in the README comes from
//! one run of it.

#[path = "../tests/s3_server/mod.rs"]
mod s3_server;

use std::time::{Duration, Instant};

use mediastore::backend::{Backend, BackendConfig, FsBackend, S3Backend, S3Config};
use mediastore::{MediaMeta, MediaRef, MediaStore};

const PAYLOAD: usize = 16 << 10;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

fn row(name: &str, samples: Vec<Duration>) -> Duration {
    let (p50, p90) = stats(samples);
    println!("{name:<44} {:>12.1?} {:>12.1?}", p50, p90);
    p50
}

fn timed(n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed()
        })
        .collect()
}

fn store(dir: &std::path::Path, backend: BackendConfig) -> MediaStore {
    MediaStore::builder()
        .managed_root(dir.join("tmp"))
        .background_cleaner(false)
        .backend_config(backend)
        .build()
        .expect("store")
}

fn main() {
    let n = if std::env::var("QUICK").is_ok() {
        50
    } else {
        300
    };
    let body = vec![7u8; PAYLOAD];
    let meta = || MediaMeta {
        content_type: "image/jpeg".into(),
        ..MediaMeta::default()
    };
    println!("payload {PAYLOAD} B, {n} rounds per row");
    println!("{:<44} {:>12} {:>12}", "operation", "median", "p90");

    // ---- filesystem backend, writes synced (default) and not ----
    let dir = tempfile::tempdir().expect("tmp");
    for sync in [true, false] {
        let tag = if sync { "fs" } else { "fs, no sync" };
        let backend = FsBackend::new(dir.path().join(format!("media-{sync}")))
            .expect("fs")
            .sync_writes(sync);
        let fs = MediaStore::builder()
            .managed_root(dir.path().join("tmp"))
            .background_cleaner(false)
            .backend(backend)
            .build()
            .expect("store");
        let mut refs: Vec<MediaRef> = Vec::with_capacity(n);
        row(
            &format!("{tag}: save_reader"),
            timed(n, |i| {
                refs.push(fs.save_reader(&body[..], meta(), &format!("s{i}")).unwrap());
            }),
        );
        row(
            &format!("{tag}: resolve (warm)"),
            timed(n, |i| {
                std::hint::black_box(fs.resolve(&refs[i]).unwrap());
            }),
        );
        row(
            &format!("{tag}: release_all (caller)"),
            timed(n, |i| {
                fs.release_all(&format!("s{i}"));
            }),
        );
        per_release(&format!("{tag}: deletion, per release"), n, || fs.flush());
    }

    // ---- S3 backend on s3s-fs ----
    let Some(srv) = s3_server::server() else {
        println!("(no s3s-fs: S3 rows skipped)");
        return;
    };
    let prefix = format!("bench{}", uuid::Uuid::new_v4().simple());
    let s3cfg = |cache: &str| {
        S3Config::new(s3_server::BUCKET)
            .endpoint(&srv.endpoint)
            .prefix(&prefix)
            .cache_dir(dir.path().join(cache))
    };
    let a = store(dir.path(), BackendConfig::S3(s3cfg("cache-a")));
    let b = store(dir.path(), BackendConfig::S3(s3cfg("cache-b")));
    let mut refs = Vec::with_capacity(n);
    row(
        "s3: save_reader (payload + manifest PUT)",
        timed(n, |i| {
            refs.push(a.save_reader(&body[..], meta(), &format!("s{i}")).unwrap());
        }),
    );
    row(
        "s3: resolve on another instance (cold)",
        timed(n, |i| {
            std::hint::black_box(b.resolve(&refs[i]).unwrap());
        }),
    );
    let ours = row(
        "s3: resolve (warm)",
        timed(n, |i| {
            std::hint::black_box(b.resolve(&refs[i]).unwrap());
        }),
    );
    // goclaw's LocalPath: GET the manifest, then stat the cached copy.
    let goclaw = S3Backend::new(s3cfg("cache-goclaw")).expect("s3");
    for r in &refs {
        let rec = goclaw.lookup(*r).unwrap();
        goclaw.local_path(&rec).unwrap();
    }
    let peer = row(
        "s3: goclaw-style warm LocalPath (GET + stat)",
        timed(n, |i| {
            let rec = goclaw.lookup(refs[i]).unwrap();
            std::hint::black_box(goclaw.local_path(&rec).unwrap());
        }),
    );
    println!(
        "warm resolve: {:.0}x faster than goclaw-style",
        peer.as_secs_f64() / ours.as_secs_f64().max(1e-9)
    );
    row(
        "s3: release_all (caller)",
        timed(n, |i| {
            b.release_all(&format!("s{i}"));
        }),
    );
    per_release("s3: remote scope deletion, per release", n, || b.flush());
}

/// Times one flush after `n` releases and prints it per release.
fn per_release(name: &str, n: usize, flush: impl FnOnce()) {
    let t = Instant::now();
    flush();
    println!(
        "{name:<44} {:>12.1?}   (one flush after {n} releases, / {n})",
        t.elapsed() / n as u32
    );
}
