//! Owned media: the same contract for the filesystem backend and the S3
//! backend (feature `s3`, against a real s3s-fs server), plus what is
//! specific to each (re-index after a restart; two instances on one bucket,
//! batching, an outage, crash leftovers).

mod s3_server;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mediastore::backend::{Backend, BackendConfig, FsBackend};
use mediastore::{ManualClock, MediaMeta, MediaRef, MediaStore, ResolveError, SaveError};

const MAX_AGE: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Fs,
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    S3,
}

/// One store on one backend, on a manual clock with the cleaner off.
struct H {
    kind: Kind,
    dir: tempfile::TempDir,
    clock: ManualClock,
    store: MediaStore,
    /// S3: this test's key prefix.
    prefix: String,
    /// S3: shared hold on the server (the outage test holds it alone).
    _gate: Option<Gate>,
}

#[allow(dead_code)]
enum Gate {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
}

/// The outage test cuts the shared proxy; every other S3 test holds this
/// for reading, so none runs during the cut.
static SERVER_GATE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn meta(ct: &str, name: &str) -> MediaMeta {
    MediaMeta {
        content_type: ct.into(),
        filename: name.into(),
        source: "test".into(),
        ..MediaMeta::default()
    }
}

impl H {
    fn new(kind: Kind) -> Option<Self> {
        let gate = (kind == Kind::S3)
            .then(|| Gate::Shared(SERVER_GATE.read().unwrap_or_else(|p| p.into_inner())));
        Self::with_gate(kind, gate)
    }

    /// As `new`, with the S3 server to itself.
    #[allow(dead_code)]
    fn alone(kind: Kind) -> Option<Self> {
        let gate = Gate::Alone(SERVER_GATE.write().unwrap_or_else(|p| p.into_inner()));
        Self::with_gate(kind, Some(gate))
    }

    fn with_gate(kind: Kind, gate: Option<Gate>) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new();
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        let store = Self::build(kind, dir.path(), &prefix, &clock, "cache")?;
        Some(Self {
            kind,
            dir,
            clock,
            store,
            prefix,
            _gate: gate,
        })
    }

    fn build(
        kind: Kind,
        dir: &Path,
        prefix: &str,
        clock: &ManualClock,
        cache: &str,
    ) -> Option<MediaStore> {
        let b = MediaStore::builder()
            .managed_root(dir.join("tmp"))
            .max_age(MAX_AGE)
            .clock(clock.clone())
            .background_cleaner(false)
            .backend_sweep(Duration::ZERO, Duration::from_secs(20));
        let b = match kind {
            Kind::Fs => b.backend(FsBackend::new(dir.join("media")).unwrap()),
            Kind::S3 => {
                #[cfg(feature = "s3")]
                {
                    let srv = s3_server::server()?;
                    let cfg = mediastore::backend::S3Config::new(s3_server::BUCKET)
                        .endpoint(&srv.endpoint)
                        .prefix(prefix)
                        .cache_dir(dir.join(cache))
                        .retries(1, Duration::from_secs(3));
                    b.backend_config(BackendConfig::S3(cfg))
                }
                #[cfg(not(feature = "s3"))]
                {
                    let _ = (prefix, cache);
                    return None;
                }
            }
        };
        Some(b.build().unwrap())
    }

    /// A second store on the same backend (S3: same bucket and prefix,
    /// its own cache and clock).
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    fn twin(&self, clock: &ManualClock) -> MediaStore {
        Self::build(self.kind, self.dir.path(), &self.prefix, clock, "cache-b").unwrap()
    }

    /// A source file with these bytes.
    fn src(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let d = self.dir.path().join("downloads");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Payload objects held by the backend (not counting records).
    fn payloads(&self) -> usize {
        match self.kind {
            Kind::Fs => walk(&self.dir.path().join("media"))
                .iter()
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .count(),
            Kind::S3 => s3_server::server()
                .unwrap()
                .keys_under(&self.prefix)
                .iter()
                .filter(|k| !k.contains("/_manifests/"))
                .count(),
        }
    }

    /// Records (sidecars or manifests) held by the backend.
    fn records(&self) -> usize {
        match self.kind {
            Kind::Fs => walk(&self.dir.path().join("media"))
                .iter()
                .filter(|p| p.to_string_lossy().ends_with(".meta"))
                .count(),
            Kind::S3 => s3_server::server()
                .unwrap()
                .keys_under(&format!("{}/_manifests", self.prefix))
                .len(),
        }
    }
}

/// Every file under `root` but the backend's own lock file.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else if e.file_name() != ".lock" {
                out.push(e.path());
            }
        }
    }
    out
}

fn read(store: &MediaStore, r: &MediaRef) -> Vec<u8> {
    let mut v = Vec::new();
    store.open(r).unwrap().read_to_end(&mut v).unwrap();
    v
}

/// Runs one contract case on both backends.
macro_rules! contract {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn fs() {
                let h = H::new(Kind::Fs).unwrap();
                ($body)(&h);
            }
            #[cfg(feature = "s3")]
            #[test]
            fn s3() {
                let Some(h) = H::new(Kind::S3) else { return };
                ($body)(&h);
            }
        }
    };
}

contract!(save_resolve_open_round_trip, |h: &H| {
    let src = h.src("photo.tmp", b"jpeg bytes");
    let r = h
        .store
        .save(&src, meta("image/jpeg", ""), "chat:1")
        .unwrap();
    assert!(!src.exists(), "the source moved into the backend");
    let lease = h.store.resolve(&r).unwrap();
    assert_eq!(lease.path().extension().unwrap(), "jpg");
    assert_eq!(std::fs::read(lease.path()).unwrap(), b"jpeg bytes");
    assert_eq!(lease.meta().content_type, "image/jpeg");
    assert_eq!(read(&h.store, &r), b"jpeg bytes");
    drop(lease);
    // An empty extension round-trips (goclaw's glob loses such files).
    let r2 = h
        .store
        .save_reader(
            &b"plain"[..],
            meta("application/octet-stream", "blob"),
            "chat:1",
        )
        .unwrap();
    let p2 = h.store.resolve(&r2).unwrap().path().to_path_buf();
    assert_eq!(
        p2.file_name().unwrap().to_string_lossy(),
        r2.uuid().hyphenated().to_string()
    );
    assert_eq!(read(&h.store, &r2), b"plain");
    assert_eq!((h.payloads(), h.records()), (2, 2));
    assert_eq!(h.store.release_all("chat:1"), 2);
    h.store.flush();
    assert!(matches!(
        h.store.resolve(&r),
        Err(ResolveError::UnknownRef(_))
    ));
    assert!(!p2.exists());
    assert_eq!((h.payloads(), h.records()), (0, 0));
});

contract!(extension_from_mime_then_name, |h: &H| {
    let a = h
        .store
        .save(h.src("voice", b"a"), meta("audio/mpeg", ""), "s")
        .unwrap();
    let b = h
        .store
        .save(h.src("x.tmp", b"b"), meta("", "Report.PDF"), "s")
        .unwrap();
    let c = h
        .store
        .save(h.src("clip.MP4", b"c"), meta("", ""), "s")
        .unwrap();
    let ext = |r| {
        h.store
            .resolve(r)
            .unwrap()
            .path()
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
    };
    assert_eq!(ext(&a).as_deref(), Some("mp3"));
    assert_eq!(ext(&b).as_deref(), Some("pdf"));
    assert_eq!(ext(&c).as_deref(), Some("mp4"));
});

contract!(lease_keeps_the_object_through_release, |h: &H| {
    let r = h
        .store
        .save(h.src("a", b"held"), meta("text/plain", ""), "s")
        .unwrap();
    let lease = h.store.resolve(&r).unwrap();
    assert_eq!(h.store.release_all("s"), 1);
    h.store.flush();
    assert!(lease.path().exists(), "a lease pins the local file");
    assert_eq!(std::fs::read(lease.path()).unwrap(), b"held");
    // The filesystem backend's payload *is* the local file; a shared
    // backend removes the remote object at release and the lease keeps
    // the cached copy.
    assert_eq!(h.payloads(), usize::from(h.kind == Kind::Fs));
    let path = lease.path().to_path_buf();
    drop(lease);
    h.store.flush();
    assert!(!path.exists());
    assert_eq!((h.payloads(), h.records()), (0, 0));
});

contract!(ttl_deletes_the_object, |h: &H| {
    let r = h.store.save(h.src("a", b"x"), meta("", ""), "s").unwrap();
    h.clock.advance(MAX_AGE);
    assert_eq!(h.store.clean_expired(), 0);
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.store.clean_expired(), 1);
    h.store.flush();
    assert!(h.store.resolve(&r).is_err());
    assert_eq!((h.payloads(), h.records()), (0, 0));
});

contract!(scopes_with_similar_names_stay_apart, |h: &H| {
    let a = h
        .store
        .save(h.src("a", b"a"), meta("", ""), "sess2")
        .unwrap();
    let b = h
        .store
        .save(h.src("b", b"b"), meta("", ""), "sess20")
        .unwrap();
    let pa = h.store.resolve(&a).unwrap().path().to_path_buf();
    let dir = pa
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(dir.len(), 32, "a 128-bit scope hash");
    assert!(dir.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(h.store.release_all("sess2"), 1);
    h.store.flush();
    assert_eq!(read(&h.store, &b), b"b");
    assert_eq!((h.payloads(), h.records()), (1, 1));
});

contract!(failed_save_leaves_nothing, |h: &H| {
    let missing = h.dir.path().join("nope");
    let err = h.store.save(&missing, meta("", ""), "s").unwrap_err();
    assert!(matches!(err, SaveError::Backend(_)), "{err:?}");
    assert_eq!(h.store.stats().live_refs, 0);
    assert_eq!((h.payloads(), h.records()), (0, 0));
    // A reader that fails half-way leaves no partial object.
    struct Broken(usize);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("network dropped"));
            }
            self.0 -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }
    assert!(h.store.save_reader(Broken(3), meta("", ""), "s").is_err());
    assert_eq!((h.payloads(), h.records()), (0, 0));
    assert_eq!(h.store.stats().live_refs, 0);
});

#[test]
fn store_without_backend_refuses_save() {
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::builder()
        .managed_root(dir.path())
        .build()
        .unwrap();
    assert!(matches!(
        store.save_reader(&b"x"[..], MediaMeta::default(), "s"),
        Err(SaveError::NoBackend)
    ));
}

// ---- filesystem: restarts ----

#[test]
fn fs_refs_survive_a_restart_with_their_ttl_counted_from_the_first_store() {
    let h = H::new(Kind::Fs).unwrap();
    let old = h
        .store
        .save(h.src("a", b"old"), meta("image/png", ""), "s")
        .unwrap();
    let bare = h
        .store
        .save_reader(&b"bare"[..], meta("", ""), "s")
        .unwrap();
    h.clock.advance(Duration::from_secs(20 * 60));
    let young = h
        .store
        .save(h.src("b", b"young"), meta("", ""), "t")
        .unwrap();
    h.store.close();
    drop(h.store);

    // The "restarted" process: a new clock, whose wall time is the first
    // one's plus 25 minutes.
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(25 * 60));
    let store = MediaStore::builder()
        .managed_root(h.dir.path().join("tmp"))
        .max_age(MAX_AGE)
        .clock(clock.clone())
        .background_cleaner(false)
        .backend(FsBackend::new(h.dir.path().join("media")).unwrap())
        .build()
        .unwrap();
    assert_eq!(read(&store, &old), b"old");
    assert_eq!(read(&store, &bare), b"bare");
    assert_eq!(
        store.resolve(&old).unwrap().meta().content_type,
        "image/png"
    );
    assert_eq!(store.stats().live_refs, 3);
    // 25 min + 6 min > 30 min for the first two, 11 min for the third.
    clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(store.clean_expired(), 2);
    store.flush();
    assert!(store.resolve(&old).is_err() && store.resolve(&bare).is_err());
    assert_eq!(read(&store, &young), b"young");
    // Scopes were restored too.
    assert_eq!(store.release_all("t"), 1);
    store.flush();
    assert!(walk(&h.dir.path().join("media")).is_empty());
}

#[test]
fn fs_restart_deletes_expired_objects_and_crash_leftovers() {
    let h = H::new(Kind::Fs).unwrap();
    let keep = h.store.save(h.src("a", b"a"), meta("", ""), "s").unwrap();
    h.store.close();
    drop(h.store);
    let media = h.dir.path().join("media");
    let scope_dir = walk(&media)[0].parent().unwrap().to_path_buf();
    // A crash left: a partial copy, a payload without sidecar, a sidecar
    // without payload.
    std::fs::write(
        scope_dir.join(".00000000-0000-4000-8000-000000000001.part"),
        b"half",
    )
    .unwrap();
    std::fs::write(
        scope_dir.join("00000000-0000-4000-8000-000000000002.jpg"),
        b"x",
    )
    .unwrap();
    std::fs::write(
        scope_dir.join(".00000000-0000-4000-8000-000000000003.meta"),
        b"v=1\nid=00000000-0000-4000-8000-000000000003\nscope=s\next=\nstored_at_ms=1\n",
    )
    .unwrap();
    let build = |clock: &ManualClock| {
        MediaStore::builder()
            .managed_root(h.dir.path().join("tmp"))
            .max_age(MAX_AGE)
            .clock(clock.clone())
            .background_cleaner(false)
            .backend(FsBackend::new(&media).unwrap())
            .build()
            .unwrap()
    };
    let store = build(&ManualClock::new());
    assert!(store.resolve(&keep).is_ok());
    assert_eq!(
        walk(&media).len(),
        2,
        "payload and sidecar of the live ref only"
    );
    store.close();
    drop(store);
    // Restarted after the TTL: deleted at build, nothing left.
    let late = ManualClock::new();
    late.advance(MAX_AGE + Duration::from_secs(60));
    let store = build(&late);
    assert!(store.resolve(&keep).is_err());
    assert!(walk(&media).is_empty());
}

#[test]
fn fs_a_second_backend_on_a_root_in_use_is_refused() {
    let h = H::new(Kind::Fs).unwrap();
    let r = h
        .store
        .save_reader(&b"mine"[..], meta("", ""), "s")
        .unwrap();
    let err = FsBackend::new(h.dir.path().join("media")).unwrap_err();
    assert!(
        matches!(err, mediastore::backend::BackendError::Config(_)),
        "{err}"
    );
    assert_eq!(read(&h.store, &r), b"mine");
}

#[test]
fn fs_save_across_file_systems_copies_and_removes_the_source() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm: cross-device save not tested");
        return;
    }
    let h = H::new(Kind::Fs).unwrap();
    let src = tempfile::Builder::new()
        .tempfile_in(shm)
        .unwrap()
        .into_temp_path();
    std::fs::write(&src, b"from another fs").unwrap();
    let r = h.store.save(&src, meta("", "n.bin"), "s").unwrap();
    assert!(!src.exists());
    assert_eq!(read(&h.store, &r), b"from another fs");
    let media = h.dir.path().join("media");
    assert!(walk(&media)
        .iter()
        .all(|p| !p.to_string_lossy().ends_with(".part")));
}

#[test]
fn fs_backend_contract_directly() {
    let dir = tempfile::tempdir().unwrap();
    let b = FsBackend::new(dir.path()).unwrap();
    let id = MediaRef::from_uuid(uuid::Uuid::new_v4());
    assert!(b.lookup(id).unwrap_err().is_not_found());
    let mut rec = mediastore::backend::ObjectRecord {
        id,
        scope: "s".into(),
        ext: ".txt".into(),
        stored_at: std::time::SystemTime::now(),
        size: 0,
        meta: MediaMeta::default(),
    };
    let p = b.save_reader(&mut rec, &mut &b"abc"[..]).unwrap();
    assert_eq!(rec.size, 3);
    assert_eq!(b.lookup(id).unwrap().key(), rec.key());
    let mut s = String::new();
    b.open(id).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "abc");
    assert_eq!(b.local_path(&rec).unwrap(), p);
    assert_eq!(b.delete_scope("other").unwrap(), 0);
    assert_eq!(b.delete_scope("s").unwrap(), 1);
    assert!(b.lookup(id).unwrap_err().is_not_found());
    assert!(walk(dir.path()).is_empty());
}

#[test]
fn backend_config_from_environment_variables() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        BackendConfig::from_vars(vars(&[])).unwrap(),
        BackendConfig::Fs {
            base_dir: BackendConfig::default_base_dir()
        }
    );
    assert!(
        BackendConfig::from_vars(vars(&[("MEDIASTORE_BACKEND", "gcs")]))
            .unwrap_err()
            .to_string()
            .contains("unknown backend")
    );
    #[cfg(feature = "s3")]
    {
        assert!(BackendConfig::from_vars(vars(&[("MEDIASTORE_BACKEND", "s3")])).is_err());
        let cfg = BackendConfig::from_vars(vars(&[
            ("MEDIASTORE_BACKEND", " S3 "),
            ("MEDIASTORE_S3_BUCKET", "media"),
            ("MEDIASTORE_S3_PREFIX", "/gw/"),
            ("MEDIASTORE_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("MEDIASTORE_S3_CACHE_DIR", "/var/cache/gw"),
        ]))
        .unwrap();
        let BackendConfig::S3(c) = cfg else {
            panic!("not s3")
        };
        assert_eq!(
            (c.bucket.as_str(), c.prefix.as_str(), c.region.as_str()),
            ("media", "gw", "us-east-1")
        );
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.cache_dir, PathBuf::from("/var/cache/gw"));
    }
}

// ---- S3: replicas, batching, outages, crash leftovers ----

#[cfg(feature = "s3")]
mod s3 {
    use super::*;

    #[test]
    fn second_instance_resolves_releases_and_the_first_sees_it_at_its_sweep() {
        let Some(a) = H::new(Kind::S3) else { return };
        let r = a
            .store
            .save(a.src("a", b"shared bytes"), meta("image/png", ""), "room")
            .unwrap();
        let b_clock = ManualClock::new();
        let b = a.twin(&b_clock);
        // B has never seen the ref: manifest, then download into its cache.
        let lease = b.resolve(&r).unwrap();
        assert_eq!(std::fs::read(lease.path()).unwrap(), b"shared bytes");
        assert_eq!(lease.meta().content_type, "image/png");
        assert!(lease.path().starts_with(a.dir.path().join("cache-b")));
        drop(lease);
        // Warm on B now: served from memory and cache.
        assert_eq!(read(&b, &r), b"shared bytes");
        // B releases the scope: the bucket loses the objects.
        assert_eq!(b.release_all("room"), 1);
        b.flush();
        assert_eq!((a.payloads(), a.records()), (0, 0));
        // A still serves its cached copy (documented: until A's next sweep)...
        assert_eq!(read(&a.store, &r), b"shared bytes");
        let cached = a.store.resolve(&r).unwrap().path().to_path_buf();
        // ...and its sweep drops the ref and its cached copy.
        let report = a
            .store
            .sweep_backend(Duration::from_secs(20))
            .unwrap()
            .unwrap();
        assert!(report.live.is_some());
        assert_eq!(a.store.backend_sweep_totals().dropped, 1);
        a.store.flush();
        assert!(matches!(
            a.store.resolve(&r),
            Err(ResolveError::UnknownRef(_))
        ));
        assert!(!cached.exists());
    }

    #[test]
    fn a_released_ref_never_comes_back_from_the_bucket() {
        let Some(a) = H::alone(Kind::S3) else { return };
        let srv = s3_server::server().unwrap();
        let b = a.twin(&ManualClock::new());
        let r = a.store.save(a.src("a", b"x"), meta("", ""), "s").unwrap();
        // B saw it, then B releases it: B must not fetch it again from the
        // bucket while the remote deletion is still under way.
        assert!(b.resolve(&r).is_ok());
        srv.hold_deletions(true);
        assert_eq!(b.release_all("s"), 1);
        let got = b.resolve(&r);
        srv.hold_deletions(false);
        assert!(matches!(got, Err(ResolveError::UnknownRef(_))), "{got:?}");
        b.flush();
        assert!(matches!(b.resolve(&r), Err(ResolveError::UnknownRef(_))));
        // The scope can be used again: a later save in it resolves on B.
        let again = a.store.save(a.src("b", b"y"), meta("", ""), "s").unwrap();
        assert_eq!(read(&b, &again), b"y");
    }

    #[test]
    fn release_on_the_saving_instance_removes_every_instance_cold_path() {
        let Some(a) = H::new(Kind::S3) else { return };
        let r = a.store.save(a.src("a", b"x"), meta("", ""), "s").unwrap();
        assert_eq!(a.store.release_all("s"), 1);
        a.store.flush();
        let b = a.twin(&ManualClock::new());
        assert!(matches!(b.resolve(&r), Err(ResolveError::UnknownRef(_))));
        assert_eq!((a.payloads(), a.records()), (0, 0));
    }

    #[test]
    fn ttl_across_instances_by_the_sweeper() {
        let Some(a) = H::new(Kind::S3) else { return };
        let r = a.store.save(a.src("a", b"x"), meta("", ""), "s").unwrap();
        let late = ManualClock::new();
        late.advance(MAX_AGE + Duration::from_secs(5));
        let b = a.twin(&late);
        // Expired by B's clock: never fetched.
        assert!(matches!(b.resolve(&r), Err(ResolveError::UnknownRef(_))));
        let report = b.sweep_backend(Duration::from_secs(20)).unwrap().unwrap();
        assert_eq!((report.expired, report.errors), (1, 0));
        assert_eq!((a.payloads(), a.records()), (0, 0));
        assert_eq!(b.backend_sweep_totals().expired, 1);
    }

    #[test]
    fn the_sweeper_runs_once_at_start_with_the_background_cleaner() {
        let Some(a) = H::new(Kind::S3) else { return };
        let srv = s3_server::server().unwrap();
        a.store.save(a.src("a", b"x"), meta("", ""), "s").unwrap();
        let late = ManualClock::new();
        late.advance(MAX_AGE + Duration::from_secs(5));
        let cfg = mediastore::backend::S3Config::new(s3_server::BUCKET)
            .endpoint(&srv.endpoint)
            .prefix(&a.prefix)
            .cache_dir(a.dir.path().join("cache-c"));
        let c = MediaStore::builder()
            .managed_root(a.dir.path().join("tmp"))
            .max_age(MAX_AGE)
            .clock(late)
            .background_cleaner(true)
            .backend_config(BackendConfig::S3(cfg))
            .build()
            .unwrap();
        // The start-up sweep is queued on the deleter before anything else;
        // a flush waits for it.
        c.flush();
        assert_eq!(c.backend_sweep_totals().runs, 1);
        assert_eq!(c.backend_sweep_totals().expired, 1);
        assert_eq!((a.payloads(), a.records()), (0, 0));
    }

    #[test]
    fn deletions_go_in_batches_of_at_most_1000_keys() {
        let Some(a) = H::new(Kind::S3) else { return };
        let srv = s3_server::server().unwrap();
        let n = 1005;
        for i in 0..n {
            a.store
                .save_reader(&b"x"[..], meta("", ""), &format!("scope{}", i % 2))
                .unwrap();
        }
        assert_eq!(a.payloads(), n);
        // Deleting directly through the backend sweep: everything expired.
        let b_clock = ManualClock::new();
        b_clock.advance(MAX_AGE + Duration::from_secs(5));
        let b = a.twin(&b_clock);
        srv.take_delete_batches();
        let report = b.sweep_backend(Duration::from_secs(60)).unwrap().unwrap();
        assert_eq!(report.expired, n as u64);
        let batches = srv.take_delete_batches();
        assert!(batches.iter().all(|&k| k <= 1000), "{batches:?}");
        assert!(
            batches.iter().filter(|&&k| k == 1000).count() >= 2,
            "{batches:?}"
        );
        assert!(batches.iter().sum::<usize>() >= 2 * n, "{batches:?}");
        assert_eq!((a.payloads(), a.records()), (0, 0));
    }

    #[test]
    fn an_outage_fails_saves_keeps_warm_resolves_and_loses_no_deletion() {
        let Some(a) = H::alone(Kind::S3) else { return };
        let srv = s3_server::server().unwrap();
        let r = a
            .store
            .save(a.src("a", b"warm"), meta("", ""), "s")
            .unwrap();
        let r2 = a.store.save(a.src("b", b"two"), meta("", ""), "s").unwrap();
        srv.cut();
        let src = a.src("c", b"new");
        let err = a.store.save(&src, meta("", ""), "s").unwrap_err();
        assert!(matches!(err, SaveError::Backend(_)), "{err:?}");
        assert!(src.exists(), "a failed save leaves the source in place");
        assert_eq!(read(&a.store, &r), b"warm"); // no network on warm resolves
        assert_eq!(a.store.release_all("s"), 2);
        a.store.flush();
        assert!(a.store.backend_pending_deletions() > 0);
        assert_eq!(a.payloads(), 2, "nothing could be deleted yet");
        // A sweep during the outage fails, is counted, and stops nothing.
        assert!(matches!(
            a.store.sweep_backend(Duration::from_secs(30)),
            Some(Err(_))
        ));
        assert_eq!(a.store.backend_sweep_totals().failed_runs, 1);
        srv.restore();
        a.store.flush();
        assert_eq!(a.store.backend_pending_deletions(), 0);
        assert!(matches!(
            a.store.sweep_backend(Duration::from_secs(30)),
            Some(Ok(_))
        ));
        assert_eq!(a.store.backend_sweep_totals().runs, 1);
        assert_eq!((a.payloads(), a.records()), (0, 0));
        assert!(a.store.resolve(&r2).is_err());
    }

    #[test]
    fn a_crash_between_payload_and_manifest_is_reclaimed_by_a_sweep() {
        let Some(a) = H::new(Kind::S3) else { return };
        let srv = s3_server::server().unwrap();
        let r = a.store.save(a.src("a", b"x"), meta("", ""), "s").unwrap();
        let keep = a.store.save(a.src("b", b"y"), meta("", ""), "s").unwrap();
        // Simulate the crash: the manifest never got written.
        let manifest = srv.object_file(&format!(
            "{}/_manifests/{}",
            a.prefix,
            r.uuid().hyphenated()
        ));
        std::fs::remove_file(&manifest).unwrap();
        let b = a.twin(&ManualClock::new());
        assert!(matches!(b.resolve(&r), Err(ResolveError::UnknownRef(_))));
        let report = b.sweep_backend(Duration::from_secs(20)).unwrap().unwrap();
        assert_eq!((report.orphans, report.expired), (1, 0));
        assert_eq!((a.payloads(), a.records()), (1, 1));
        assert_eq!(read(&b, &keep), b"y");
    }

    #[test]
    fn a_second_store_on_a_cache_in_use_is_refused() {
        let Some(a) = H::new(Kind::S3) else { return };
        let srv = s3_server::server().unwrap();
        let r = a
            .store
            .save(a.src("a", b"kept"), meta("", ""), "s")
            .unwrap();
        let lease = a.store.resolve(&r).unwrap();
        let same_cache = mediastore::backend::S3Config::new(s3_server::BUCKET)
            .endpoint(&srv.endpoint)
            .prefix(&a.prefix)
            .cache_dir(a.dir.path().join("cache"));
        let err = MediaStore::builder()
            .managed_root(a.dir.path().join("tmp"))
            .backend_config(BackendConfig::S3(same_cache))
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
        // The first store's cached copy was not touched.
        assert_eq!(std::fs::read(lease.path()).unwrap(), b"kept");
        // A store that is gone leaves its cache to the next one.
        let clock = ManualClock::new();
        let d = H::build(Kind::S3, a.dir.path(), &a.prefix, &clock, "cache-d").unwrap();
        assert_eq!(read(&d, &r), b"kept");
        drop(d);
        let again = H::build(Kind::S3, a.dir.path(), &a.prefix, &clock, "cache-d").unwrap();
        assert_eq!(read(&again, &r), b"kept");
    }

    #[test]
    fn large_files_go_up_in_parts_and_come_back_whole() {
        let Some(a) = H::new(Kind::S3) else { return };
        // 8 MiB parts: 17 MiB is two full parts and a short last one.
        let srv = s3_server::server().unwrap();
        let body: Vec<u8> = (0..17u32 << 20).map(|i| (i % 251) as u8).collect();
        let before = srv.multipart_uploads();
        let r = a
            .store
            .save(a.src("big", &body), meta("video/mp4", ""), "s")
            .unwrap();
        assert!(srv.multipart_uploads() > before, "a multipart upload");
        let b = a.twin(&ManualClock::new());
        let lease = b.resolve(&r).unwrap();
        assert_eq!(lease.path().extension().unwrap(), "mp4");
        assert!(std::fs::read(lease.path()).unwrap() == body, "bytes differ");
        drop(lease);
        assert_eq!(b.release_all("s"), 1);
        b.flush();
        assert_eq!((a.payloads(), a.records()), (0, 0));
    }

    #[test]
    fn concurrent_cold_resolves_download_once() {
        let Some(a) = H::new(Kind::S3) else { return };
        let r = a
            .store
            .save(a.src("a", b"once"), meta("", ""), "s")
            .unwrap();
        let b = a.twin(&ManualClock::new());
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| b.resolve(&r).unwrap().path().to_path_buf()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(paths.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(b.stats().live_refs, 1, "registered once");
    }

    #[test]
    fn sync_and_async_calls_inside_tokio_runtimes() {
        let Some(a) = H::new(Kind::S3) else { return };
        let b = a.twin(&ManualClock::new());
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let r = multi.block_on(async {
            // The sync API inside a worker does not panic...
            let r = a
                .store
                .save(a.src("a", b"in rt"), meta("", ""), "s")
                .unwrap();
            // ...and the async twins run on this runtime.
            let r2 = a
                .store
                .save_async(a.src("b", b"async"), meta("", ""), "s")
                .await
                .unwrap();
            let lease = b.resolve_async(&r2).await.unwrap();
            assert_eq!(tokio_read(lease.path()), b"async");
            r
        });
        // The last handle of an S3 store dropped on a runtime worker: no
        // panic (a runtime inside the backend must not block there).
        let c = H::build(
            Kind::S3,
            a.dir.path(),
            &a.prefix,
            &ManualClock::new(),
            "cache-c",
        )
        .unwrap();
        multi.block_on(async move {
            let r = c
                .save_reader(&b"dropped here"[..], meta("", ""), "s")
                .unwrap();
            assert!(c.resolve(&r).is_ok());
            drop(c);
        });
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        current.block_on(async {
            assert_eq!(read(&b, &r), b"in rt");
            b.release_all("s");
            b.flush_async().await;
        });
        assert_eq!((a.payloads(), a.records()), (0, 0));
    }

    fn tokio_read(p: &Path) -> Vec<u8> {
        std::fs::read(p).unwrap()
    }
}
