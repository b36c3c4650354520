//! Async callers (feature `tokio`): the store used from a multi-threaded
//! runtime, blocking work on the blocking pool.
#![cfg(all(feature = "tokio", not(loom)))]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_resolve_release_from_many_tasks() {
    let f = Fixture::new();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = f.store.clone();
        let paths: Vec<_> = (0..10).map(|i| f.file(&format!("t{t}-{i}"))).collect();
        tasks.push(tokio::spawn(async move {
            let scope = format!("task-{t}");
            for p in &paths {
                let r = store.store_async(p, delete(), scope.clone()).await.unwrap();
                let lease = store.resolve(&r).unwrap();
                assert_eq!(lease.path(), p.as_path());
                tokio::task::yield_now().await;
            }
            assert_eq!(store.release_all(&scope), 10);
            store.flush_async().await;
            paths
        }));
    }
    for t in tasks {
        let paths = t.await.unwrap();
        assert!(paths.iter().all(|p| !exists(p)));
    }
    let missing = f
        .store
        .store_async(f.dir.path().join("nope"), delete(), "x")
        .await;
    assert_eq!(
        missing.unwrap_err().io_kind(),
        Some(std::io::ErrorKind::NotFound)
    );
    let s = f.store.stats();
    assert_eq!(
        (s.refs_released, s.files_deleted, s.live_refs),
        (160, 160, 0)
    );
    let report = f.store.shutdown_async(Duration::from_secs(10)).await;
    assert!(report.completed);
}
