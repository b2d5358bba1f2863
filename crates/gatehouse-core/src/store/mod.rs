//! One storage abstraction over local disk, S3-compatible buckets and memory, built on
//! `object_store`.
//!
//! The record-processing core is synchronous (rayon), so [`Store`] is a *blocking* facade:
//! it owns a small tokio runtime and is the only place in gatehouse-core that awaits. Reads
//! stream ([`ObjectReader`] implements [`std::io::Read`]; [`LineReader`] splits lines with a
//! bounded buffer), large writes go multipart ([`ObjectWriter`]), write-once artefacts use a
//! create-only put ([`Store::put_create`]). Errors name the operation and the key, never
//! the content.

mod config;
mod error;
mod lines;
mod list;
mod observe;
mod open;
mod ranges;

use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use tokio::runtime::Runtime;

pub use config::{
    Backend, Credentials, S3Config, Secret, ServerSideEncryption, StoreConfig, StoreDescription,
    Timeouts,
};
pub use error::StoreError;
pub use lines::{Line, LineReader};
use list::object_key;
pub use list::{ObjectList, escape_key};
pub use observe::{Access, Event, StoreObserver};
pub use ranges::RangeReader;

/// A fault-injection hook for the crash tests: with `GATEHOUSE_TEST_ABORT_AFTER_WRITES=N`
/// the process aborts (as `kill -9` would: no unwinding, no cleanup) right after its N-th
/// completed write or delete. Compiled only with the `fault-injection` feature, which only
/// test builds enable; otherwise `wrote` does nothing and the variable means nothing.
#[cfg(feature = "fault-injection")]
mod fault {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    pub const ENV: &str = crate::config::env::TEST_ABORT_AFTER_WRITES;

    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static WRITES: AtomicU64 = AtomicU64::new(0);

    pub fn wrote() {
        let limit = LIMIT.get_or_init(|| std::env::var(ENV).ok().and_then(|v| v.parse().ok()));
        if let Some(limit) = *limit
            && WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= limit
        {
            std::process::abort();
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
mod fault {
    #[inline(always)]
    pub fn wrote() {}
}

/// Default in-memory buffer of [`ObjectWriter`] before it switches to a multipart upload.
pub const DEFAULT_WRITE_BUFFER: usize = 8 * 1024 * 1024;

/// One listed object. Listing never downloads content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// ETag as the store reports it; local disk synthesises one from inode, mtime and size.
    pub etag: Option<String>,
}

/// A blocking handle on a store. Cheap to clone; share it across threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    lister: open::Lister,
    runtime: Arc<Runtime>,
    config: StoreConfig,
    /// Told of every read, write, delete and listing, when set (the audit log).
    observer: Option<Arc<dyn StoreObserver>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("store", &self.config.describe())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to the configured store. Nothing is read or written yet: a wrong bucket or
    /// bad credentials show up on the first operation (see `gatehouse doctor`).
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let (inner, lister) = open::build(config)?;
        let mut config = config.clone();
        if let Backend::Local { root } = &mut config.backend {
            // One spelling of the root, however it was given, so reports do not depend on
            // the working directory or on how --config was written.
            if let Ok(canonical) = root.canonicalize() {
                *root = canonical;
            }
        }
        let mut store = Self::from_object_store(inner, config)?;
        store.lister = lister;
        Ok(store)
    }

    /// Wraps an existing `object_store` implementation; `config` describes it in messages
    /// and says where exports go.
    pub fn from_object_store(
        inner: Arc<dyn ObjectStore>,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gatehouse-store")
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                op: "start storage runtime",
                target: String::new(),
                source,
            })?;
        Ok(Self {
            inner,
            lister: open::Lister::Generic,
            runtime: Arc::new(runtime),
            config,
            observer: None,
        })
    }

    /// This store, telling `observer` of every read, write, delete and listing.
    pub fn observed_by(&self, observer: Arc<dyn StoreObserver>) -> Self {
        Self {
            observer: Some(observer),
            ..self.clone()
        }
    }

    /// This store, unobserved (the audit log writes itself through it).
    pub fn unobserved(&self) -> Self {
        Self {
            observer: None,
            ..self.clone()
        }
    }

    fn note(&self, access: Access, event: impl FnOnce() -> Event) {
        if let Some(o) = &self.observer {
            o.observe(access, event());
        }
    }

    /// A fresh in-memory store, for tests.
    pub fn memory() -> Self {
        // Building an in-memory store cannot fail.
        #[allow(clippy::expect_used)]
        Self::open(&StoreConfig {
            backend: Backend::Memory,
            exports_prefix: "exports".into(),
        })
        .expect("in-memory store")
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn describe(&self) -> StoreDescription {
        self.config.describe()
    }

    /// The key prefix releases are written under, without a trailing slash.
    pub fn exports_prefix(&self) -> &str {
        self.config.exports_prefix.trim_end_matches('/')
    }

    /// Human-readable location of a key, for messages: `s3://bucket/key` or a local path.
    pub fn locate(&self, key: &str) -> String {
        match &self.config.backend {
            Backend::Local { root } => root.join(key).display().to_string(),
            Backend::S3(s3) => format!("s3://{}/{key}", s3.bucket),
            Backend::Memory => format!("memory://{key}"),
        }
    }

    /// Lists every object whose key starts with `prefix` ("" for the whole store), page by
    /// page as the iterator is consumed. Order is the store's (lexicographic on S3 and, by
    /// name, on local disk); callers that need an order sort. A key that cannot be read back
    /// (a control character, an empty or `.` segment) is left out, logged by name and kept
    /// in [`ObjectList::unusable`]; it does not end the listing.
    pub fn list(&self, prefix: &str) -> ObjectList {
        self.note(Access::List, || Event::key(prefix));
        let source = match &self.lister {
            open::Lister::Local(root) => {
                list::Source::Local(Box::new(list::LocalWalk::new(root.clone(), prefix)))
            }
            open::Lister::S3(client) => {
                list::Source::S3(Box::new(list::S3Pages::new(Arc::clone(client), prefix)))
            }
            open::Lister::Generic => {
                // object_store lists whole path segments: list the folder that holds the
                // prefix and filter, so a raw prefix such as "data/par" keeps S3's string
                // semantics.
                let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
                let prefix_path = (!folder.is_empty())
                    .then(|| Path::parse(folder).unwrap_or_else(|_| Path::from(folder)));
                list::Source::Stream(self.inner.list(prefix_path.as_ref()))
            }
        };
        ObjectList {
            source,
            runtime: Arc::clone(&self.runtime),
            target: self.locate(prefix),
            raw_prefix: prefix.to_string(),
            unusable: Vec::new(),
            unusable_count: 0,
        }
    }

    /// Lists one page to prove the store (and on S3 the bucket) exists and is readable.
    /// `head` cannot tell a missing bucket from a missing key; a listing can.
    pub fn probe(&self) -> Result<(), StoreError> {
        self.list("").next().transpose().map(|_| ())
    }

    /// Size and etag of one object.
    pub fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let path = object_key(key)?;
        let meta = self
            .runtime
            .block_on(self.inner.head(&path))
            .map_err(|e| StoreError::classify("head", self.locate(key), e))?;
        Ok(ObjectInfo {
            key: meta.location.to_string(),
            size: meta.size,
            etag: meta.e_tag,
        })
    }

    /// Whether an object exists.
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.head(key) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads a whole (small) object into memory. Use [`Store::open_read`] for data.
    pub fn get_bytes(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = object_key(key)?;
        let (bytes, etag) = self
            .runtime
            .block_on(async {
                let result = self.inner.get(&path).await?;
                let etag = result.meta.e_tag.clone();
                Ok::<_, object_store::Error>((result.bytes().await?, etag))
            })
            .map_err(|e| StoreError::classify("read", self.locate(key), e))?;
        // The store's identity of what was read; hashing here would hash every shard a
        // second time (the readers that need a sha256 compute it).
        self.note(Access::Read, || Event {
            bytes: Some(bytes.len() as u64),
            etag,
            ..Event::key(key)
        });
        Ok(bytes)
    }

    /// Opens an object for streaming reads. Memory use is one network chunk (or one
    /// buffered file read) at a time, whatever the object's size.
    pub fn open_read(&self, key: &str) -> Result<ObjectReader, StoreError> {
        let path = object_key(key)?;
        let target = self.locate(key);
        let result = self
            .runtime
            .block_on(self.inner.get(&path))
            .map_err(|e| StoreError::classify("read", target.clone(), e))?;
        let size = result.meta.size;
        self.note(Access::Read, || Event {
            bytes: Some(size),
            etag: result.meta.e_tag.clone(),
            ..Event::key(key)
        });
        let source = match result.payload {
            GetResultPayload::File(file, _) => ReaderSource::File(file),
            GetResultPayload::Stream(stream) => ReaderSource::Stream {
                stream,
                chunk: Bytes::new(),
                runtime: Arc::clone(&self.runtime),
            },
        };
        Ok(ObjectReader {
            source,
            target,
            size,
        })
    }

    /// Writes an object, replacing any previous version. For draft artefacts only.
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        self.put_with(key, bytes.into(), PutMode::Overwrite)
    }

    /// Writes an object only if no object exists at `key` (a conditional, create-only put).
    /// Returns [`StoreError::AlreadyExists`] otherwise. Whether the store really enforces
    /// this is what `gatehouse doctor` probes.
    pub fn put_create(&self, key: &str, bytes: impl Into<Bytes>) -> Result<(), StoreError> {
        self.put_with(key, bytes.into(), PutMode::Create)
    }

    fn put_with(&self, key: &str, bytes: Bytes, mode: PutMode) -> Result<(), StoreError> {
        let (op, action) = match mode {
            PutMode::Create => ("create-only write", Access::Create),
            _ => ("write", Access::Write),
        };
        // Whole-object puts are reports and markers: small, so the log carries their sha256.
        let event = self.observer.as_ref().map(|_| Event {
            bytes: Some(bytes.len() as u64),
            sha256: Some(crate::digest::sha256(&bytes)),
            ..Event::key(key)
        });
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let path = object_key(key)?;
        self.runtime
            .block_on(
                self.inner
                    .put_opts(&path, PutPayload::from_bytes(bytes), opts),
            )
            .map_err(|e| StoreError::classify(op, self.locate(key), e))?;
        if let Some(event) = event {
            self.note(action, || event);
        }
        fault::wrote();
        Ok(())
    }

    /// Streams a (possibly large) object into the store: buffered up to `buffer` bytes,
    /// then uploaded in parts (multipart on S3). Call [`ObjectWriter::finish`]; a writer
    /// dropped without finishing aborts its upload and leaves no object behind.
    pub fn writer(&self, key: &str, buffer: usize) -> ObjectWriter {
        // gatehouse writes only keys it made (under the exports prefix), which are valid
        // paths; the encoded form is a fallback that keeps this infallible.
        let path = object_key(key).unwrap_or_else(|_| Path::from(key));
        let writer = object_store::buffered::BufWriter::with_capacity(
            Arc::clone(&self.inner),
            path,
            buffer.max(1),
        );
        let bridge =
            tokio_util::io::SyncIoBridge::new_with_handle(writer, self.runtime.handle().clone());
        ObjectWriter {
            bridge: Some(bridge),
            runtime: Arc::clone(&self.runtime),
            target: self.locate(key),
            written: 0,
            observer: self
                .observer
                .as_ref()
                .map(|o| (Arc::clone(o), key.to_string())),
        }
    }

    /// Deletes one object. Only ever used on gatehouse's own keys (doctor canaries, drafts);
    /// source data is never deleted.
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = object_key(key)?;
        self.runtime
            .block_on(self.inner.delete(&path))
            .map_err(|e| StoreError::classify("delete", self.locate(key), e))?;
        self.note(Access::Delete, || Event::key(key));
        fault::wrote();
        Ok(())
    }
}

enum ReaderSource {
    File(std::fs::File),
    Stream {
        stream: BoxStream<'static, object_store::Result<Bytes>>,
        chunk: Bytes,
        runtime: Arc<Runtime>,
    },
}

/// A streaming, blocking reader over one object. Wrap it in a `BufReader` or a
/// [`LineReader`].
pub struct ObjectReader {
    source: ReaderSource,
    target: String,
    size: u64,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("target", &self.target)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl ObjectReader {
    /// Object size in bytes, as the store reported it when the read began.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.source {
            ReaderSource::File(file) => file.read(buf),
            ReaderSource::Stream {
                stream,
                chunk,
                runtime,
            } => loop {
                if !chunk.is_empty() {
                    let n = chunk.len().min(buf.len());
                    buf[..n].copy_from_slice(&chunk[..n]);
                    chunk.advance(n);
                    return Ok(n);
                }
                match runtime.block_on(stream.next()) {
                    None => return Ok(0),
                    Some(Ok(next)) => *chunk = next,
                    Some(Err(e)) => {
                        let err = StoreError::classify("read", self.target.clone(), e);
                        return Err(io::Error::other(err));
                    }
                }
            },
        }
    }
}

/// Blocking writer for one object; see [`Store::writer`].
pub struct ObjectWriter {
    bridge: Option<tokio_util::io::SyncIoBridge<object_store::buffered::BufWriter>>,
    runtime: Arc<Runtime>,
    target: String,
    written: u64,
    /// The observer and key to report the finished write under. Streamed writes (shards,
    /// Parquet) report their size; their sha256 is in the manifest, which the log hashes.
    observer: Option<(Arc<dyn StoreObserver>, String)>,
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("target", &self.target)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl ObjectWriter {
    /// Completes the upload; the object becomes visible atomically. Returns bytes written.
    pub fn finish(mut self) -> Result<u64, StoreError> {
        let Some(mut bridge) = self.bridge.take() else {
            return Ok(self.written);
        };
        bridge.shutdown().map_err(|source| StoreError::Io {
            op: "finish upload",
            target: self.target.clone(),
            source,
        })?;
        if let Some((observer, key)) = self.observer.take() {
            observer.observe(
                Access::Write,
                Event {
                    bytes: Some(self.written),
                    ..Event::key(&key)
                },
            );
        }
        fault::wrote();
        Ok(self.written)
    }
}

impl io::Write for ObjectWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let bridge = self
            .bridge
            .as_mut()
            .ok_or_else(|| io::Error::other("write after finish"))?;
        let n = bridge.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-object would upload undersized parts; the upload completes in finish().
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(bridge) = self.bridge.take() {
            let mut writer = bridge.into_inner();
            // Best effort: an unfinished upload must not become a visible object.
            if let Err(e) = self.runtime.block_on(writer.abort()) {
                tracing::warn!(target = %self.target, error = %e, "could not abort unfinished upload");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn create_only_put_refuses_the_second_write() {
        let store = Store::memory();
        store.put_create("a/marker", "one").unwrap();
        let err = store.put_create("a/marker", "two").unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
        assert_eq!(store.get_bytes("a/marker").unwrap(), "one");
    }

    #[test]
    fn writer_streams_and_reader_reads_back() {
        let store = Store::memory();
        let mut w = store.writer("big/object", 1024);
        for i in 0..1000u32 {
            writeln!(w, "line {i}").unwrap();
        }
        let n = w.finish().unwrap();
        let mut back = String::new();
        store
            .open_read("big/object")
            .unwrap()
            .read_to_string(&mut back)
            .unwrap();
        assert_eq!(back.len() as u64, n);
        assert!(back.starts_with("line 0\nline 1\n") && back.ends_with("line 999\n"));
    }

    #[test]
    fn dropped_writer_leaves_no_object() {
        let store = Store::memory();
        {
            let mut w = store.writer("half/written", 16);
            w.write_all(&[b'x'; 100]).unwrap();
        }
        assert!(!store.exists("half/written").unwrap());
    }

    #[test]
    fn list_respects_raw_prefixes() {
        let store = Store::memory();
        for k in ["data/part-1", "data/part-2", "data/other", "database/x"] {
            store.put(k, "x").unwrap();
        }
        let mut keys: Vec<_> = store.list("data/par").map(|o| o.unwrap().key).collect();
        keys.sort();
        assert_eq!(keys, ["data/part-1", "data/part-2"]);
        assert_eq!(store.list("data/").count(), 3);
        assert_eq!(store.list("").count(), 4);
    }

    /// Keys of every class users have: non-ASCII, and each character object_store's
    /// `Path::from` would percent-encode.
    pub(crate) const ODD_KEYS: [&str; 18] = [
        "raw/café.jsonl",
        "raw/дневник.jsonl",
        "raw/会話ログ.jsonl",
        "raw/a#b.jsonl",
        "raw/100%.jsonl",
        "raw/%41%2F.jsonl",
        "raw/a~b.jsonl",
        "raw/a^b.jsonl",
        "raw/[x].jsonl",
        "raw/{x}.jsonl",
        "raw/a<b.jsonl",
        "raw/a\\b.jsonl",
        "raw/a\"b.jsonl",
        "raw/it's.jsonl",
        "raw/a*b.jsonl",
        "raw/sp ace.jsonl",
        "raw/a|b?c`.jsonl",
        "raw/x#12.jsonl",
    ];

    #[test]
    fn local_keys_of_every_class_round_trip_and_control_characters_are_named_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::create_dir(&raw).unwrap();
        for key in ODD_KEYS {
            std::fs::write(dir.path().join(key), key).unwrap();
        }
        for bad in ["tab\there.jsonl", "nl\nx.jsonl", "esc\u{1b}x.jsonl", "n#12"] {
            std::fs::write(raw.join(bad), "x").unwrap();
        }
        let store = Store::open(&StoreConfig {
            backend: Backend::Local {
                root: dir.path().to_path_buf(),
            },
            exports_prefix: "exports".into(),
        })
        .unwrap();
        let mut list = store.list("");
        let mut keys: Vec<String> = list.by_ref().map(|o| o.unwrap().key).collect();
        keys.sort();
        let mut want: Vec<String> = ODD_KEYS.iter().map(|k| k.to_string()).collect();
        want.sort();
        assert_eq!(keys, want);
        let mut skipped = list.unusable().to_vec();
        skipped.sort();
        assert_eq!(
            skipped,
            [
                "raw/esc\\u{1b}x.jsonl",
                "raw/n#12",
                "raw/nl\\nx.jsonl",
                "raw/tab\\there.jsonl"
            ]
        );
        assert_eq!(list.unusable_count(), 4);
        for key in ODD_KEYS {
            assert_eq!(store.get_bytes(key).unwrap(), key, "{key}");
            let mut text = String::new();
            store
                .open_read(key)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, key);
            let listed = store.list(key).next().unwrap().unwrap();
            assert_eq!(store.head(key).unwrap().etag, listed.etag, "{key}");
        }
        // Written keys land where they are read.
        store.put("exports/é#1.json", "w").unwrap();
        assert!(dir.path().join("exports/é#1.json").is_file());
        let err = store.get_bytes("raw/tab\there.jsonl").unwrap_err();
        assert!(err.to_string().contains("raw/tab\\there.jsonl"), "{err}");
    }

    #[test]
    fn missing_object_is_not_found_and_names_the_key() {
        let store = Store::memory();
        let err = store.open_read("no/such/key").unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
        assert!(err.to_string().contains("no/such/key"), "{err}");
    }
}
