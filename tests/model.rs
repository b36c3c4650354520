//! Property test: random sequences of store / resolve-and-hold / drop lease /
//! release_all / advance clock / clean_expired / set_cleanup, run against the
//! store and against a small reference model written here; every return
//! value is compared, and so is the set of files on disk after each step
//! (the step ends with `flush()`, so deletions are settled).
#![cfg(not(loom))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use mediastore::{
    CleanupConfig, CleanupPolicy, ManualClock, MediaLease, MediaMeta, MediaRef, MediaStore,
    StoreError,
};
use proptest::prelude::*;

const PATHS: usize = 4;
const SCOPES: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    Create(usize),
    Store(usize, bool, usize),
    Resolve(usize),
    DropLease(usize),
    Release(usize),
    Advance(u64),
    Sweep,
    SetMaxAge(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..PATHS).prop_map(Op::Create),
        5 => (0..PATHS, any::<bool>(), 0..SCOPES).prop_map(|(p, f, s)| Op::Store(p, f, s)),
        4 => (0..64usize).prop_map(Op::Resolve),
        3 => (0..8usize).prop_map(Op::DropLease),
        3 => (0..SCOPES).prop_map(Op::Release),
        2 => (1..120u64).prop_map(Op::Advance),
        2 => Just(Op::Sweep),
        1 => prop_oneof![Just(10u64), Just(60), Just(600)].prop_map(Op::SetMaxAge),
    ]
}

/// One registration in the model.
struct Entry {
    path: usize,
    scope: usize,
    stored_at: u64,
    live: bool,
    leases: u32,
}

impl Entry {
    fn alive(&self) -> bool {
        self.live || self.leases > 0
    }
}

#[derive(Default, Clone, Copy)]
struct Life {
    armed: bool,
    forget: bool,
}

#[derive(Default)]
struct Model {
    disk: BTreeSet<usize>,
    entries: Vec<Entry>,
    life: BTreeMap<usize, Life>,
    now: u64,
    max_age: u64,
}

impl Model {
    fn count(&self, path: usize) -> usize {
        self.entries
            .iter()
            .filter(|e| e.path == path && e.alive())
            .count()
    }

    /// Call after an entry of `path` stopped being alive.
    fn settle(&mut self, path: usize) {
        if self.count(path) == 0 {
            let life = self.life.remove(&path).unwrap_or_default();
            if life.armed && !life.forget {
                self.disk.remove(&path);
            }
        }
    }

    fn store(&mut self, path: usize, forget: bool, scope: usize) -> bool {
        if !self.disk.contains(&path) {
            return false;
        }
        let life = self.life.entry(path).or_default();
        if forget {
            life.forget = true;
        } else {
            life.armed = true;
        }
        self.entries.push(Entry {
            path,
            scope,
            stored_at: self.now,
            live: true,
            leases: 0,
        });
        true
    }

    fn end(&mut self, pick: impl Fn(&Entry) -> bool) -> usize {
        let hit: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].live && pick(&self.entries[i]))
            .collect();
        for &i in &hit {
            self.entries[i].live = false;
        }
        for &i in &hit {
            let p = self.entries[i].path;
            self.settle(p);
        }
        hit.len()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let store = MediaStore::builder()
        .managed_root(dir.path())
        .max_age(Duration::from_secs(60))
        .clock(clock.clone())
        .background_cleaner(false)
        .orphan_sweep(false)
        .build()
        .unwrap();
    let paths: Vec<PathBuf> = (0..PATHS)
        .map(|i| dir.path().join(format!("p{i}")))
        .collect();
    let mut m = Model {
        max_age: 60,
        ..Model::default()
    };
    let mut refs: Vec<MediaRef> = Vec::new();
    let mut leases: Vec<(usize, MediaLease)> = Vec::new();

    for op in ops {
        match op {
            Op::Create(p) => {
                if !m.disk.contains(&p) {
                    std::fs::write(&paths[p], b"x").unwrap();
                    m.disk.insert(p);
                }
            }
            Op::Store(p, forget, s) => {
                let meta = if forget {
                    MediaMeta::forget_only()
                } else {
                    MediaMeta::default()
                };
                let got = store.store(&paths[p], meta, &format!("scope{s}"));
                let want = m.store(p, forget, s);
                match got {
                    Ok(r) => {
                        prop_assert!(want, "store succeeded, model says not found");
                        refs.push(r);
                    }
                    Err(StoreError::NotFound { .. }) => {
                        prop_assert!(!want, "store failed: {:?}", p)
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                }
            }
            Op::Resolve(i) => {
                if refs.is_empty() {
                    continue;
                }
                let i = i % refs.len();
                let got = store.resolve(&refs[i]);
                prop_assert_eq!(got.is_ok(), m.entries[i].live, "resolve of ref {}", i);
                if let Ok(lease) = got {
                    prop_assert_eq!(lease.path(), paths[m.entries[i].path].as_path());
                    prop_assert!(lease.path().exists(), "resolved a deleted file");
                    m.entries[i].leases += 1;
                    leases.push((i, lease));
                }
            }
            Op::DropLease(k) => {
                if leases.is_empty() {
                    continue;
                }
                let (i, lease) = leases.swap_remove(k % leases.len());
                drop(lease);
                m.entries[i].leases -= 1;
                let p = m.entries[i].path;
                m.settle(p);
            }
            Op::Release(s) => {
                let got = store.release_all(&format!("scope{s}"));
                let want = m.end(|e| e.scope == s);
                prop_assert_eq!(got, want, "release_all(scope{})", s);
            }
            Op::Advance(secs) => {
                clock.advance(Duration::from_secs(secs));
                m.now += secs;
            }
            Op::Sweep => {
                let got = store.clean_expired();
                let (now, max) = (m.now, m.max_age);
                let want = m.end(|e| now - e.stored_at > max);
                prop_assert_eq!(got, want, "clean_expired");
            }
            Op::SetMaxAge(secs) => {
                store
                    .set_cleanup(CleanupConfig {
                        max_age: Duration::from_secs(secs),
                        ..store.cleanup()
                    })
                    .unwrap();
                m.max_age = secs;
            }
        }
        store.flush();
        for (i, p) in paths.iter().enumerate() {
            prop_assert_eq!(
                p.exists(),
                m.disk.contains(&i),
                "file p{} after {:?}",
                i,
                m.now
            );
        }
        for (_, lease) in &leases {
            prop_assert!(lease.path().exists(), "file deleted under a lease");
        }
        let live = m.entries.iter().filter(|e| e.live).count() as u64;
        prop_assert_eq!(store.stats().live_refs, live);
    }
    let _ = CleanupPolicy::default();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_reference_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
