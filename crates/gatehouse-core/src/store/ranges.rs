//! Random access to one version of an object, for formats that are not read front to back
//! (Parquet: the footer first, then the column chunks of one row group at a time). Every
//! range is requested with `If-Match` on the etag the object had when it was opened, so a
//! file replaced half-way through is an error, never a mix of two versions.

use std::ops::Range;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{GetOptions, GetRange};

use super::{Access, Event};
use super::{Store, StoreError, object_key};

/// See the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RangeReader {
    store: Store,
    key: String,
    path: Path,
    size: u64,
    etag: Option<String>,
}

impl Store {
    /// Opens `key` for ranged reads: one HEAD, recorded in the audit log as the read.
    pub fn open_ranges(&self, key: &str) -> Result<RangeReader, StoreError> {
        let path = object_key(key)?;
        let info = self.head(key)?;
        self.note(Access::Read, || Event {
            bytes: Some(info.size),
            etag: info.etag.clone(),
            ..Event::key(key)
        });
        Ok(RangeReader {
            store: self.clone(),
            key: key.to_string(),
            path,
            size: info.size,
            etag: info.etag,
        })
    }
}

impl RangeReader {
    /// The object's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's etag when it was opened.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// Bytes `range` of the object (clamped to its size).
    pub fn read(&self, range: Range<u64>) -> Result<Bytes, StoreError> {
        let range = range.start.min(self.size)..range.end.min(self.size);
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let options = GetOptions {
            if_match: self.etag.clone(),
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        };
        let store = &self.store;
        store
            .runtime
            .block_on(async {
                store
                    .inner
                    .get_opts(&self.path, options)
                    .await?
                    .bytes()
                    .await
            })
            .map_err(|e| StoreError::classify("read", store.locate(&self.key), e))
    }
}
