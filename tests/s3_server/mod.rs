//! A real S3-compatible server for the tests: `s3s-fs` (crates.io, 0.14.1)
//! on 127.0.0.1, started once per test binary, behind a small HTTP proxy
//! that the tests use to count the keys of each DeleteObjects request and
//! to cut the server off (an outage) and bring it back.
//!
//! Without an `s3s-fs` binary the S3 tests are skipped with a loud message,
//! unless `CI=true`, where that is a failure.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "mediastore-test";
pub const ACCESS_KEY: &str = "test";
pub const SECRET_KEY: &str = "testtest";

pub struct Server {
    /// The proxy's URL (what stores are given as their endpoint).
    pub endpoint: String,
    /// The server's data folder: `{data}/{bucket}/{key}` is each object.
    pub data: PathBuf,
    proxy: Arc<Proxy>,
    _child: Mutex<Child>,
    /// Closed at exit: the shell then stops the server.
    _lifeline: Option<std::process::ChildStdin>,
    _dir: tempfile::TempDir,
}

#[derive(Default)]
struct Proxy {
    up: AtomicBool,
    /// Listings and batch deletions wait while this is set.
    hold: AtomicBool,
    /// Keys per DeleteObjects request seen so far.
    deletes: Mutex<Vec<usize>>,
    /// Multipart uploads started (`POST ...?uploads`).
    multipart: std::sync::atomic::AtomicUsize,
}

impl Server {
    /// Stops forwarding: every request fails as if the server were down.
    pub fn cut(&self) {
        self.proxy.up.store(false, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.proxy.up.store(true, Ordering::SeqCst);
    }

    /// Makes listings and batch deletions wait (`true`) until released
    /// (`false`): a deleter thread stuck in the middle of a remote deletion.
    pub fn hold_deletions(&self, on: bool) {
        self.proxy.hold.store(on, Ordering::SeqCst);
    }

    /// Multipart uploads started so far.
    pub fn multipart_uploads(&self) -> usize {
        self.proxy.multipart.load(Ordering::SeqCst)
    }

    /// Keys per DeleteObjects request since the last call.
    pub fn take_delete_batches(&self) -> Vec<usize> {
        std::mem::take(&mut *self.proxy.deletes.lock().unwrap())
    }

    /// The file holding object `key` (s3s-fs keeps objects as plain files).
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.data.join(BUCKET).join(key)
    }

    /// Every object key under `prefix`.
    pub fn keys_under(&self, prefix: &str) -> Vec<String> {
        let root = self.data.join(BUCKET);
        let mut out = Vec::new();
        let mut dirs = vec![root.join(prefix)];
        while let Some(d) = dirs.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    let rel = p
                        .strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned();
                    if !rel.rsplit('/').next().unwrap_or("").starts_with('.') {
                        out.push(rel);
                    }
                }
            }
        }
        out.sort();
        out
    }
}

fn binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return Some(PathBuf::from(p));
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("s3s-fs"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin/s3s-fs"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// The shared server, or `None` (skip) when none can be started locally.
pub fn server() -> Option<&'static Server> {
    SERVER.get_or_init(start).as_ref()
}

fn start() -> Option<Server> {
    let Some(bin) = binary() else {
        let msg = "s3s-fs not found: install it with \
                   `cargo install s3s-fs --version 0.14.1 --features binary --locked`";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg} (CI=true: the S3 suite must run)");
        }
        eprintln!("\n!!!!!!!!!! SKIPPING THE S3 TESTS: {msg} !!!!!!!!!!\n");
        return None;
    };
    // Credentials reach object_store through the standard variables only;
    // set once, before any store of this binary is built.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    std::env::remove_var("AWS_SESSION_TOKEN");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join(BUCKET)).unwrap();
    let port = free_port();
    // A shell holds the server and, when its stdin closes (this test process
    // exits, however it exits), stops it and removes its data: neither
    // outlives the tests.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "\"$0\" \"$@\" & pid=$!; read _; kill $pid; wait $pid; rm -rf \"$MEDIASTORE_S3_TEST_DIR\"",
        ])
        .env("MEDIASTORE_S3_TEST_DIR", dir.path())
        .arg(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin:?}: {e}"));
    let stdin = child.stdin.take();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not open its port");
        std::thread::sleep(Duration::from_millis(20)); // startup poll, not a test wait
    }
    let proxy = Arc::new(Proxy::default());
    proxy.up.store(true, Ordering::SeqCst);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let p = Arc::clone(&proxy);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let _ = relay(&p, conn, port);
            });
        }
    });
    Some(Server {
        endpoint,
        data,
        proxy,
        _child: Mutex::new(child),
        _lifeline: stdin,
        _dir: dir,
    })
}

/// Relays requests of one client connection, one upstream connection per
/// request, and counts the keys of DeleteObjects requests.
fn relay(p: &Proxy, client: TcpStream, port: u16) -> std::io::Result<()> {
    // No Nagle: a head and a body written separately must not wait for a
    // delayed ACK (40 ms per request otherwise).
    client.set_nodelay(true)?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let end = line == b"\r\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        if !p.up.load(Ordering::SeqCst) {
            return Ok(()); // drop the connection: the server is "down"
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let len = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let first = text.lines().next().unwrap_or("");
        let is_delete = first.starts_with("POST") && first.contains("?delete");
        if is_delete {
            let n = String::from_utf8_lossy(&body).matches("<Key>").count();
            p.deletes.lock().unwrap().push(n);
        }
        if first.starts_with("POST") && first.contains("?uploads") {
            p.multipart.fetch_add(1, Ordering::SeqCst);
        }
        if is_delete || first.contains("list-type=2") {
            while p.hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2)); // the proxy's own wait
            }
        }
        let mut up = TcpStream::connect(("127.0.0.1", port))?;
        up.set_nodelay(true)?;
        up.write_all(&head)?;
        up.write_all(&body)?;
        let mut resp = BufReader::new(up);
        // Response head, then a body delimited by Content-Length or chunks.
        let mut rhead = Vec::new();
        loop {
            let mut line = Vec::new();
            if resp.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let end = line == b"\r\n";
            rhead.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let rtext = String::from_utf8_lossy(&rhead).to_ascii_lowercase();
        client.write_all(&rhead)?;
        let chunked = rtext.contains("transfer-encoding: chunked");
        let rlen = rtext.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        if first.starts_with("HEAD") {
        } else if chunked {
            loop {
                let mut size_line = Vec::new();
                resp.read_until(b'\n', &mut size_line)?;
                client.write_all(&size_line)?;
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&size_line)
                        .trim()
                        .split(';')
                        .next()
                        .unwrap_or("0"),
                    16,
                )
                .unwrap_or(0);
                let mut chunk = vec![0; size + 2];
                resp.read_exact(&mut chunk)?;
                client.write_all(&chunk)?;
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = rlen {
            let mut b = vec![0; n];
            resp.read_exact(&mut b)?;
            client.write_all(&b)?;
        }
        client.flush()?;
    }
}
