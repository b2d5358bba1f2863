//! Test support: a real S3 server for tests.
//!
//! [`TestS3::start`] gives tests an S3 endpoint over real HTTP with SigV4 authentication:
//! by default an in-process `s3s-fs` server on 127.0.0.1 (so plain `cargo test` needs
//! nothing installed), or, when `GATEHOUSE_TEST_S3_ENDPOINT` is set, an external server such
//! as moto that `.ci/run` starts. The same test module runs against either; each test makes
//! its own bucket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};

/// Set to an `http://127.0.0.1:PORT` endpoint to run S3 tests against an external server.
pub const ENDPOINT_ENV: &str = "GATEHOUSE_TEST_S3_ENDPOINT";

const ACCESS_KEY: &str = "gatehouse-test-access";
const SECRET_KEY: &str = "gatehouse-test-secret-key";
const REGION: &str = "us-east-1";

/// A running S3 endpoint for tests.
#[derive(Debug)]
pub struct TestS3 {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    server: Option<InProcess>,
}

#[derive(Debug)]
struct InProcess {
    root: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts `serve` on a thread; returns the bound port.
fn spawn_server(
    root: &Path,
    port: u16,
) -> Result<(u16, tokio::sync::oneshot::Sender<()>, JoinHandle<()>)> {
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs root: {e:?}"))?;
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("test-s3".into())
        .spawn(move || serve(fs, port, port_tx, stop_rx))
        .context("spawn s3 server thread")?;
    let port = port_rx
        .recv()
        .context("s3 server thread died")?
        .context("bind s3 server")?;
    Ok((port, stop_tx, thread))
}

static BUCKETS: AtomicU32 = AtomicU32::new(0);

impl TestS3 {
    /// The external server named by `GATEHOUSE_TEST_S3_ENDPOINT`, or a fresh in-process one.
    pub fn start() -> Result<Self> {
        match std::env::var(ENDPOINT_ENV) {
            Ok(endpoint) if !endpoint.trim().is_empty() => Ok(Self {
                endpoint: endpoint.trim().trim_end_matches('/').to_string(),
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                region: REGION.into(),
                server: None,
            }),
            _ => Self::start_in_process(),
        }
    }

    /// An in-process `s3s-fs` server on an ephemeral loopback port.
    pub fn start_in_process() -> Result<Self> {
        let root = tempfile::tempdir().context("temp dir for s3s-fs")?;
        let (port, stop_tx, thread) = spawn_server(root.path(), 0)?;
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: REGION.into(),
            server: Some(InProcess {
                root,
                shutdown: Some(stop_tx),
                thread: Some(thread),
            }),
        })
    }

    /// Stops the in-process server: open connections drop, new ones are refused; the
    /// objects stay on disk. Returns false for an external server (which tests cannot stop).
    pub fn stop(&mut self) -> bool {
        match &mut self.server {
            Some(s) => {
                s.shutdown();
                true
            }
            None => false,
        }
    }

    /// Starts a stopped in-process server again, on the same port over the same objects.
    pub fn restart(&mut self) -> Result<()> {
        let port: u16 = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("endpoint port")?;
        let s = self
            .server
            .as_mut()
            .context("only the in-process server can be restarted")?;
        s.shutdown();
        let (_, stop_tx, thread) = spawn_server(s.root.path(), port)?;
        s.shutdown = Some(stop_tx);
        s.thread = Some(thread);
        Ok(())
    }

    /// Which server this is, for messages.
    pub fn kind(&self) -> &'static str {
        if self.server.is_some() {
            "in-process s3s-fs"
        } else {
            "external"
        }
    }

    /// Creates a bucket with a unique name starting with `prefix` and returns its name.
    pub fn create_bucket(&self, prefix: &str) -> Result<String> {
        let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut name = format!("{prefix}-{}-{n}-{nanos}", std::process::id());
        name.truncate(63);
        let name = name.to_ascii_lowercase();
        match &self.server {
            Some(s) => std::fs::create_dir(s.root.path().join(&name))
                .with_context(|| format!("create bucket dir {name}"))?,
            None => http_put(&self.endpoint, &format!("/{name}"))?,
        }
        Ok(name)
    }

    /// Puts an object under exactly `key`, bypassing object_store (which cannot write keys
    /// with control characters): a file in the in-process server's bucket directory, or an
    /// unsigned PUT to an external server (moto).
    pub fn put_raw(&self, bucket: &str, key: &str, bytes: &[u8]) -> Result<()> {
        match &self.server {
            Some(s) => {
                let path = s.root.path().join(bucket).join(key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))
            }
            None => {
                let mut encoded = format!("/{bucket}/");
                for b in key.bytes() {
                    if b.is_ascii_alphanumeric() || b"/-_.".contains(&b) {
                        encoded.push(b as char);
                    } else {
                        encoded.push_str(&format!("%{b:02X}"));
                    }
                }
                http_put_body(&self.endpoint, &encoded, bytes)
            }
        }
    }

    /// Directory holding a bucket's objects, for the in-process server.
    pub fn bucket_dir(&self, bucket: &str) -> Option<PathBuf> {
        self.server.as_ref().map(|s| s.root.path().join(bucket))
    }

    /// Environment variables that point gatehouse at `bucket` on this server.
    pub fn env(&self, bucket: &str) -> Vec<(String, String)> {
        [
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("DATASET_S3_BUCKET", bucket),
            ("DATASET_S3_ENDPOINT", &self.endpoint),
            ("DATASET_S3_REGION", &self.region),
            ("DATASET_S3_ACCESS_KEY", &self.access_key),
            ("DATASET_S3_SECRET_KEY", &self.secret_key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

fn serve(
    fs: s3s_fs::FileSystem,
    port: u16,
    port_tx: std::sync::mpsc::Sender<std::io::Result<u16>>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder as ConnBuilder;

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = port_tx.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(fs);
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            b.build()
        };
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                let _ = port_tx.send(Err(e));
                return;
            }
        };
        let port = listener.local_addr().map(|a| a.port());
        let _ = port_tx.send(port);
        let http = ConnBuilder::new(TokioExecutor::new());
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((socket, _)) = accepted else { continue };
                    let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                    tokio::spawn(async move { let _ = conn.await; });
                }
                _ = &mut stop => break,
            }
        }
    });
}

/// A bare HTTP/1.1 PUT without a body; enough to create a bucket on moto, which does not
/// check signatures by default.
fn http_put(endpoint: &str, path: &str) -> Result<()> {
    http_put_body(endpoint, path, b"")
}

/// An unsigned PUT (moto does not check signatures), for test setup only.
fn http_put_body(endpoint: &str, path: &str, body: &[u8]) -> Result<()> {
    let authority = endpoint
        .strip_prefix("http://")
        .context("external test endpoint must be http://host:port")?;
    let mut stream =
        TcpStream::connect(authority).with_context(|| format!("connect to {endpoint}"))?;
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        bail!("creating bucket {path} on {endpoint} answered {status}");
    }
    Ok(())
}

/// Copies every file below `dir` into `put(key, bytes)`, keys relative to `dir` with `/`.
pub fn for_each_file(dir: &Path, put: &mut dyn FnMut(&str, Vec<u8>) -> Result<()>) -> Result<()> {
    fn walk(
        root: &Path,
        dir: &Path,
        put: &mut dyn FnMut(&str, Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let path = e.path();
            if path.is_dir() {
                walk(root, &path, put)?;
            } else {
                let rel = path.strip_prefix(root)?;
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                put(&key, std::fs::read(&path)?)?;
            }
        }
        Ok(())
    }
    walk(dir, dir, put)
}
