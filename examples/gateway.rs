//! A simulated chat gateway on top of `mediastore`: the crate's main job.
//!
//! Channel threads "download" attachments into a temp folder and store them
//! under one scope per inbound message; agent threads resolve the refs,
//! read the files while holding leases (the "upload"), sometimes keep a
//! lease past the end of the message (a slow sender), and release the
//! message's scope. About one message in ten is abandoned and left to TTL.
//! A progress line is printed every second and a report at the end; the run
//! fails (exit code 1) if any file is left behind or any read fails.
//!
//! ```text
//! cargo run --release --example gateway -- [--seconds N] [--channels N] [--agents N] [--soak N] [--rate N]
//!     [--metrics-addr 127.0.0.1:9187]
//! ```
//!
//! `--metrics-addr` serves the store's Prometheus metrics over HTTP at that
//! address (any path, e.g. `/metrics`) while the gateway runs.
//!
//! `--soak N` runs for N seconds at a steady 1 000 messages per second per
//! channel (change it with `--rate N`; 0 is as fast as possible) and reports
//! the resident memory (RSS) after the first second and at the end; the run
//! fails if it grew by more than half plus 16 MiB.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediastore::{CleanupConfig, MediaMeta, MediaRef, MediaStore};

struct Args {
    seconds: u64,
    channels: usize,
    agents: usize,
    soak: bool,
    /// Messages per second per channel thread (0: as fast as possible).
    rate: u64,
    /// Serve Prometheus metrics on this address.
    metrics_addr: Option<std::net::SocketAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        seconds: 10,
        channels: 2,
        agents: 2,
        soak: false,
        rate: 0,
        metrics_addr: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            it.next()
                .ok_or(format!("{name} needs a value"))?
                .parse()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--seconds" => a.seconds = num("--seconds")?.max(1),
            "--channels" => a.channels = num("--channels")?.clamp(1, 64) as usize,
            "--agents" => a.agents = num("--agents")?.clamp(1, 64) as usize,
            "--soak" => {
                a.seconds = num("--soak")?.max(2);
                a.soak = true;
                if a.rate == 0 {
                    a.rate = 1000;
                }
            }
            "--rate" => a.rate = num("--rate")?,
            "--metrics-addr" => {
                let v = it.next().ok_or("--metrics-addr needs a value")?;
                a.metrics_addr = Some(v.parse().map_err(|e| format!("--metrics-addr: {e}"))?);
            }
            "-h" | "--help" => {
                println!("usage: gateway [--seconds N] [--channels N] [--agents N] [--soak N] [--rate N] [--metrics-addr 127.0.0.1:9187]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// An inbound message as it crosses the bus: a scope and refs as text.
struct Message {
    scope: String,
    refs: Vec<String>,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    stored: AtomicU64,
    resolves: AtomicU64,
    bytes_read: AtomicU64,
    read_failures: AtomicU64,
    released: AtomicU64,
    abandoned: AtomicU64,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::exit(2);
        }
    };
    if let Some(addr) = args.metrics_addr {
        // Installed before the store is built: the store takes its metric
        // handles from the recorder present at build time.
        if let Err(e) = metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
        {
            eprintln!("gateway: cannot serve metrics on {addr}: {e}");
            std::process::exit(2);
        }
        println!("metrics on http://{addr}/metrics");
    }
    let dir = tempfile::Builder::new()
        .prefix("mediastore-gateway-")
        .tempdir()
        .expect("temp dir");
    // Short TTL so that abandoned messages are reclaimed during the run.
    let store = MediaStore::builder()
        .managed_root(dir.path())
        .max_age(Duration::from_secs(2))
        .sweep_interval(Duration::from_millis(500))
        .build()
        .expect("valid config");
    let counters = Arc::new(Counters::default());
    let running = Arc::new(AtomicBool::new(true));
    let (bus_tx, bus_rx) = crossbeam_channel::bounded::<Message>(1024);

    let channels: Vec<_> = (0..args.channels)
        .map(|c| {
            let (store, counters, running, bus) = (
                store.clone(),
                Arc::clone(&counters),
                Arc::clone(&running),
                bus_tx.clone(),
            );
            let dir = dir.path().to_path_buf();
            let rate = args.rate;
            std::thread::spawn(move || {
                channel_thread(c, &dir, &store, &counters, &running, &bus, rate)
            })
        })
        .collect();
    drop(bus_tx);
    let agents: Vec<_> = (0..args.agents)
        .map(|a| {
            let (store, counters, bus) = (store.clone(), Arc::clone(&counters), bus_rx.clone());
            std::thread::spawn(move || agent_thread(a, &store, &counters, &bus))
        })
        .collect();

    let start = Instant::now();
    let mut last = (0u64, 0u64);
    let mut rss_start = 0u64;
    for sec in 1..=args.seconds {
        let next = start + Duration::from_secs(sec);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let (stored, resolves) = (
            counters.stored.load(Ordering::Relaxed),
            counters.resolves.load(Ordering::Relaxed),
        );
        let s = store.stats();
        if sec == 1 {
            rss_start = rss_bytes();
        }
        println!(
            "[{sec:>3}s] stored {:>8}/s  resolves {:>8}/s  live refs {:>6}  scopes {:>5}  deleted {:>8}  expired {:>6}  pending {:>5}  rss {:>4} MiB",
            stored - last.0,
            resolves - last.1,
            s.live_refs,
            s.scopes,
            s.files_deleted,
            s.refs_expired,
            s.pending_deletions,
            rss_bytes() >> 20
        );
        let _ = std::io::stdout().flush();
        last = (stored, resolves);
    }
    running.store(false, Ordering::Relaxed);
    for h in channels {
        h.join().expect("channel thread");
    }
    let mut latencies: Vec<u32> = Vec::new();
    for h in agents {
        latencies.extend(h.join().expect("agent thread"));
    }
    let elapsed = start.elapsed();

    // Shutdown: stop the background sweeps, then expire whatever is still
    // registered (abandoned messages younger than the TTL) at once with a
    // run-time config change, and wait for the deleter.
    store.stop_cleaner();
    store
        .set_cleanup(CleanupConfig {
            max_age: Duration::from_nanos(1),
            ..store.cleanup()
        })
        .expect("valid config");
    store.clean_expired();
    store.flush();
    let files_left = std::fs::read_dir(dir.path())
        .map(|d| d.count())
        .unwrap_or(0);
    let s = store.stats();
    latencies.sort_unstable();
    let pct = |p: f64| -> u32 {
        if latencies.is_empty() {
            return 0;
        }
        latencies[((latencies.len() as f64 - 1.0) * p).round() as usize]
    };
    let secs = elapsed.as_secs_f64();
    let c = &counters;
    println!();
    println!(
        "== gateway report ({} channels, {} agents, {:.1} s) ==",
        args.channels, args.agents, secs
    );
    let count = |name: &str, v: &AtomicU64| println!("{name:<18}{:>12}", v.load(Ordering::Relaxed));
    let rate = |name: &str, v: &AtomicU64| {
        let n = v.load(Ordering::Relaxed);
        println!("{name:<18}{n:>12}  ({:.0}/s)", n as f64 / secs);
    };
    count("messages", &c.messages);
    rate("refs stored", &c.stored);
    rate("resolves", &c.resolves);
    println!(
        "resolve latency   p50 {} ns  p99 {} ns  p99.9 {} ns  max {} ns",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        latencies.last().copied().unwrap_or(0)
    );
    count("bytes read", &c.bytes_read);
    count("read failures", &c.read_failures);
    println!(
        "scopes released   {:>12}  (refs released {})",
        c.released.load(Ordering::Relaxed),
        s.refs_released
    );
    println!(
        "messages left to TTL {:>9}  (refs expired {})",
        c.abandoned.load(Ordering::Relaxed),
        s.refs_expired
    );
    println!(
        "files deleted     {:>12}  (already gone {}, errors {})",
        s.files_deleted, s.files_already_gone, s.deletion_errors
    );
    println!("live refs         {:>12}", s.live_refs);
    println!("files left        {:>12}", files_left);
    let rss_end = rss_bytes();
    let mut grew = false;
    if args.soak {
        println!(
            "rss               {:>9} MiB after 1 s, {} MiB at the end",
            rss_start >> 20,
            rss_end >> 20
        );
        grew = rss_end > rss_start + rss_start / 2 + (16 << 20);
    }
    store.close();
    if files_left != 0 || c.read_failures.load(Ordering::Relaxed) != 0 || s.deletion_errors != 0 {
        eprintln!("gateway: FAILED (files left, read failures or deletion errors)");
        std::process::exit(1);
    }
    if grew {
        eprintln!("gateway: FAILED (memory grew during the soak)");
        std::process::exit(1);
    }
}

/// Resident memory of this process (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn channel_thread(
    c: usize,
    dir: &std::path::Path,
    store: &MediaStore,
    counters: &Counters,
    running: &AtomicBool,
    bus: &crossbeam_channel::Sender<Message>,
    rate: u64,
) {
    let mut n: u64 = 0;
    let payload = vec![0x5au8; 2048];
    let started = Instant::now();
    while running.load(Ordering::Relaxed) {
        n += 1;
        if rate > 0 {
            // Steady pace: message n is due at n / rate seconds.
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let scope = format!("chan{c}:chat{}:msg{n}", n % 97);
        let attachments = 1 + (n % 3) as usize;
        let mut refs = Vec::with_capacity(attachments);
        for k in 0..attachments {
            // "Download" the attachment.
            let path: PathBuf = dir.join(format!("c{c}-m{n}-{k}.bin"));
            if std::fs::write(&path, &payload[..512 + (n as usize * 131 + k * 17) % 1536]).is_err()
            {
                continue;
            }
            let meta = MediaMeta {
                filename: format!("attachment-{k}.bin"),
                content_type: "application/octet-stream".into(),
                source: format!("channel-{c}"),
                ..MediaMeta::default()
            };
            match store.store(&path, meta, &scope) {
                Ok(r) => {
                    counters.stored.fetch_add(1, Ordering::Relaxed);
                    refs.push(r.to_string());
                }
                Err(e) => eprintln!("gateway: store failed: {e}"),
            }
        }
        counters.messages.fetch_add(1, Ordering::Relaxed);
        if n % 10 == 0 {
            // Abandoned: nobody will release it; TTL will.
            counters.abandoned.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if bus.send(Message { scope, refs }).is_err() {
            break;
        }
    }
}

/// Returns the resolve latencies it measured, in nanoseconds.
fn agent_thread(
    a: usize,
    store: &MediaStore,
    counters: &Counters,
    bus: &crossbeam_channel::Receiver<Message>,
) -> Vec<u32> {
    let mut latencies = Vec::with_capacity(1 << 20);
    let mut slow_sender = Vec::new();
    let mut n: u64 = 0;
    for msg in bus.iter() {
        n += 1;
        let mut leases = Vec::with_capacity(msg.refs.len());
        for text in &msg.refs {
            let r: MediaRef = match text.parse() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("gateway: bad ref on the bus: {e}");
                    continue;
                }
            };
            // The agent looks at the media several times per turn.
            for _ in 0..4 {
                let t = Instant::now();
                let lease = store.resolve(&r);
                let dt = t.elapsed().as_nanos().min(u32::MAX as u128) as u32;
                if latencies.len() < latencies.capacity() {
                    latencies.push(dt);
                }
                counters.resolves.fetch_add(1, Ordering::Relaxed);
                match lease {
                    Ok(l) => leases.push(l),
                    Err(e) => {
                        counters.read_failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("gateway: agent {a}: {e}");
                    }
                }
            }
        }
        // "Upload": read every file while its lease is held.
        for l in leases.iter().step_by(4) {
            match std::fs::read(l.path()) {
                Ok(b) => {
                    counters
                        .bytes_read
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    counters.read_failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("gateway: agent {a}: read {}: {e}", l.path().display());
                }
            }
        }
        store.release_all(&msg.scope);
        counters.released.fetch_add(1, Ordering::Relaxed);
        // A slow sender keeps one lease past the release and reads it later.
        if n % 7 == 0 {
            slow_sender.extend(leases.pop());
        }
        drop(leases);
        if slow_sender.len() > 16 {
            for l in slow_sender.drain(..) {
                if std::fs::read(l.path()).is_err() {
                    counters.read_failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("gateway: agent {a}: file vanished under a lease");
                }
            }
        }
    }
    latencies
}
