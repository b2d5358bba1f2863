//! Listing that survives keys object_store cannot represent.
//!
//! object_store turns every listed key into a `Path`, and a key with a control character
//! (tab, newline, ESC), an empty segment (`a//b`) or a `.`/`..` segment is not one: its
//! listing stream ends with an error at that key, so one odd object anywhere in a bucket
//! used to stop `coverage`, `doctor`, `build` and `release`. Here local disk is walked
//! directly and S3 is paged by gatehouse; such a key is reported by name (escaped, see
//! [`escape_key`]), left out, and the listing goes on. Every other key round-trips
//! exactly: reads address it with [`object_key`], never with a re-encoding of it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use tokio::runtime::Runtime;

use super::{ObjectInfo, StoreError};

/// The `object_store` path of a key, exactly as the store names it. `Path::from` would
/// percent-encode `# % ~ ^ [ ] { } < \ " *` and ask for an object that does not exist.
pub(super) fn object_key(key: &str) -> Result<Path, StoreError> {
    Path::parse(key).map_err(|_| StoreError::UnusableKey {
        key: escape_key(key),
    })
}

/// A key for messages: control characters and `\` escaped (`\t`, `\n`, `\u{1b}`), so a key
/// cannot break a log line or a terminal, and two keys never print alike.
pub fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// What a key must be for gatehouse to read it: a valid `Path` and, on local disk, not a
/// name object_store reserves for its partial uploads (`name#123`).
fn usable(key: &str, local: bool) -> bool {
    if Path::parse(key).is_err() || key.ends_with('/') {
        return false;
    }
    if local {
        let name = key.rsplit('/').next().unwrap_or(key);
        if let Some((_, suffix)) = name.split_once('#')
            && !suffix.is_empty()
            && suffix.bytes().all(|b| b.is_ascii_digit())
        {
            return false;
        }
    }
    true
}

pub(super) enum Entry {
    Object(ObjectInfo),
    /// A key that cannot be read through object_store; its escaped name.
    Unusable(String),
}

pub(super) enum Source {
    Stream(BoxStream<'static, object_store::Result<object_store::ObjectMeta>>),
    Local(Box<LocalWalk>),
    S3(Box<S3Pages>),
}

impl Source {
    pub(super) fn next(
        &mut self,
        runtime: &Runtime,
        target: &str,
    ) -> Option<Result<Entry, StoreError>> {
        match self {
            Source::Stream(stream) => {
                let item = runtime.block_on(stream.next())?;
                Some(
                    item.map(|meta| {
                        Entry::Object(ObjectInfo {
                            key: meta.location.to_string(),
                            size: meta.size,
                            etag: meta.e_tag,
                        })
                    })
                    .map_err(|e| StoreError::classify("list", target.to_string(), e)),
                )
            }
            Source::Local(walk) => walk.next(target),
            Source::S3(pages) => pages.next(runtime, target),
        }
    }
}

/// A local directory walked in name order, following symbolic links as object_store does.
pub(super) struct LocalWalk {
    root: PathBuf,
    iter: walkdir::IntoIter,
}

impl LocalWalk {
    /// Walks the folder of `prefix` under `root` (an absent folder lists nothing).
    pub(super) fn new(root: PathBuf, prefix: &str) -> Self {
        let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = if folder.is_empty() {
            root.clone()
        } else {
            root.join(folder)
        };
        let iter = walkdir::WalkDir::new(start)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter();
        Self { root, iter }
    }

    fn next(&mut self, target: &str) -> Option<Result<Entry, StoreError>> {
        loop {
            let entry = match self.iter.next()? {
                Ok(entry) => entry,
                Err(e) => {
                    if e.depth() == 0
                        && e.io_error()
                            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
                    {
                        return None;
                    }
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("file system loop"));
                    return Some(Err(StoreError::Io {
                        op: "list",
                        target: target.to_string(),
                        source,
                    }));
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let mut key = String::new();
            let mut utf8 = true;
            for part in rel.components() {
                if !key.is_empty() {
                    key.push('/');
                }
                match part.as_os_str().to_str() {
                    Some(s) => key.push_str(s),
                    None => {
                        utf8 = false;
                        key.push_str(&part.as_os_str().to_string_lossy());
                    }
                }
            }
            if !utf8 || !usable(&key, true) {
                return Some(Ok(Entry::Unusable(escape_key(&key))));
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("metadata"));
                    return Some(Err(StoreError::Io {
                        op: "list",
                        target: target.to_string(),
                        source,
                    }));
                }
            };
            return Some(Ok(Entry::Object(ObjectInfo {
                key,
                size: meta.len(),
                etag: Some(local_etag(&meta)),
            })));
        }
    }
}

/// object_store's local ETag (inode, mtime in microseconds, size), so listings and reads
/// agree.
fn local_etag(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0u64;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("\"{inode:x}-{mtime:x}-{:x}\"", meta.len())
}

/// S3 ListObjectsV2, page by page. When a page holds a key object_store refuses (the
/// error names it), the pages before it are re-read in halves (`start-after`, `max-keys`)
/// until the key is the next one alone; it is reported and the listing resumes after it.
pub(super) struct S3Pages {
    client: Arc<AmazonS3>,
    prefix: Option<String>,
    token: Option<String>,
    /// The last key listed, where a re-read starts after.
    last: Option<String>,
    max_keys: Option<usize>,
    buffer: VecDeque<ObjectInfo>,
    unusable: Option<String>,
    done: bool,
}

impl S3Pages {
    pub(super) fn new(client: Arc<AmazonS3>, prefix: &str) -> Self {
        Self {
            client,
            prefix: (!prefix.is_empty()).then(|| prefix.to_string()),
            token: None,
            last: None,
            max_keys: None,
            buffer: VecDeque::new(),
            unusable: None,
            done: false,
        }
    }

    fn next(&mut self, runtime: &Runtime, target: &str) -> Option<Result<Entry, StoreError>> {
        loop {
            if let Some(o) = self.buffer.pop_front() {
                return Some(Ok(Entry::Object(o)));
            }
            if let Some(key) = self.unusable.take() {
                return Some(Ok(Entry::Unusable(escape_key(&key))));
            }
            if self.done {
                return None;
            }
            let opts = PaginatedListOptions {
                offset: if self.token.is_none() {
                    self.last.clone()
                } else {
                    None
                },
                page_token: self.token.clone(),
                max_keys: self.max_keys,
                ..PaginatedListOptions::default()
            };
            let page = runtime.block_on(self.client.list_paginated(self.prefix.as_deref(), opts));
            match page {
                Ok(page) => {
                    for meta in page.result.objects {
                        let key = meta.location.to_string();
                        self.last = Some(key.clone());
                        self.buffer.push_back(ObjectInfo {
                            key,
                            size: meta.size,
                            etag: meta.e_tag,
                        });
                    }
                    match page.page_token {
                        None => self.done = true,
                        // Re-reading before an unusable key: go on from the last key.
                        Some(_) if self.max_keys.is_some() => self.token = None,
                        Some(token) => self.token = Some(token),
                    }
                }
                Err(e) => {
                    let Some(bad) = refused_key(&e) else {
                        self.done = true;
                        return Some(Err(StoreError::classify("list", target.to_string(), e)));
                    };
                    self.token = None;
                    match self.max_keys.unwrap_or(1000) {
                        n if n <= 1 => {
                            // The next key is the unusable one: report it, list after it.
                            self.last = Some(bad.clone());
                            self.unusable = Some(bad);
                            self.max_keys = None;
                        }
                        n => self.max_keys = Some(n / 2),
                    }
                }
            }
        }
    }
}

/// The key named by object_store's refusal to make a `Path` of a listed key.
fn refused_key(e: &object_store::Error) -> Option<String> {
    use object_store::path::Error as P;
    match e {
        object_store::Error::InvalidPath {
            source: P::BadSegment { path, .. } | P::EmptySegment { path },
        } => Some(path.clone()),
        _ => None,
    }
}

/// Whether a listed key is one gatehouse can read back (S3 keys object_store accepted, and
/// memory keys, need no further check but a trailing `/`).
pub(super) fn listed_key_usable(key: &str) -> bool {
    usable(key, false)
}

/// Iterator over a listing; fetches pages lazily.
pub struct ObjectList {
    pub(super) source: Source,
    pub(super) runtime: Arc<Runtime>,
    pub(super) target: String,
    pub(super) raw_prefix: String,
    pub(super) unusable: Vec<String>,
    pub(super) unusable_count: u64,
}

/// Unusable keys kept by name in [`ObjectList::unusable`]; more are only counted.
const MAX_UNUSABLE_NAMES: usize = 1000;

impl std::fmt::Debug for ObjectList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectList")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl ObjectList {
    /// Keys listed so far that cannot be read back, escaped ([`escape_key`]), in listing
    /// order: the first 1000 by name.
    pub fn unusable(&self) -> &[String] {
        &self.unusable
    }

    /// How many keys were left out as unusable (all of them, named or not).
    pub fn unusable_count(&self) -> u64 {
        self.unusable_count
    }
}

impl Iterator for ObjectList {
    type Item = Result<ObjectInfo, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.source.next(&self.runtime, &self.target)? {
                Ok(Entry::Object(info)) => {
                    if !info.key.starts_with(&self.raw_prefix) {
                        continue;
                    }
                    if !listed_key_usable(&info.key) {
                        self.skip(escape_key(&info.key));
                        continue;
                    }
                    return Some(Ok(info));
                }
                Ok(Entry::Unusable(key)) => {
                    if key.starts_with(&escape_key(&self.raw_prefix)) {
                        self.skip(key);
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl ObjectList {
    fn skip(&mut self, key: String) {
        tracing::warn!(
            key = %key,
            "left out an object whose key cannot be read back (a control character, or an \
             empty or `.` segment); rename it to include it"
        );
        self.unusable_count += 1;
        if self.unusable.len() < MAX_UNUSABLE_NAMES {
            self.unusable.push(key);
        }
    }
}
