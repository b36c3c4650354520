//! Metrics: the Prometheus exporter scrapes the store's counters over HTTP
//! and they move with the store's work. (Its own test binary: the metrics
//! recorder is process-global.)
#![cfg(all(feature = "metrics", not(loom)))]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// A port nobody listens on right now.
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// GET the metrics page; the listener starts on its own thread, so the
/// first connections may be refused (bounded retries).
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        match TcpStream::connect(addr) {
            Ok(mut s) => {
                s.write_all(
                    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
                let mut text = String::new();
                s.read_to_string(&mut text).unwrap();
                break text;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::yield_now();
            }
            Err(e) => panic!("metrics endpoint unreachable: {e}"),
        }
    };
    body.lines()
        .filter(|l| l.starts_with("mediastore_"))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[test]
fn counters_move_and_are_scraped_over_http() {
    let addr = free_addr();
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .unwrap();
    let f = Fixture::new(); // built after the recorder: it takes its handles now
    for i in 0..3 {
        f.store
            .store(f.file(&format!("a{i}")), delete(), "m1")
            .unwrap();
    }
    f.store.store(f.file("b"), delete(), "m2").unwrap();
    assert_eq!(f.store.release_all("m1"), 3);
    f.store.flush();
    let m = scrape(addr);
    assert_eq!(m["mediastore_refs_stored_total"], 4.0);
    assert_eq!(m["mediastore_refs_released_total"], 3.0);
    assert_eq!(m["mediastore_files_deleted_total{outcome=\"ok\"}"], 3.0);
    assert_eq!(m["mediastore_live_refs"], 1.0);
    assert_eq!(m["mediastore_scopes"], 1.0);
    assert_eq!(m["mediastore_deleter_queue_depth"], 0.0);

    f.age_out();
    assert_eq!(f.store.clean_expired(), 1);
    f.store.flush();
    let m2 = scrape(addr);
    assert_eq!(m2["mediastore_refs_expired_total"], 1.0);
    assert_eq!(m2["mediastore_files_deleted_total{outcome=\"ok\"}"], 4.0);
    assert_eq!(m2["mediastore_live_refs"], 0.0);
    assert_eq!(m2["mediastore_scopes"], 0.0);
    assert!(m2["mediastore_sweep_duration_seconds_count"] >= 1.0);
}
