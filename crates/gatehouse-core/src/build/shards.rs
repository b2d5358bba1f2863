//! Shard writing: records of one split go to `shards/{split}/part-NNNNN.jsonl`, a new part
//! starting when the current one reaches the configured record or byte bound. Each part's
//! sha256, size and record count are computed while writing.

use std::io::{BufWriter, Write};

pub use crate::contract::ShardInfo;
use crate::digest::Sha256Digest;
use crate::store::{DEFAULT_WRITE_BUFFER, ObjectWriter, Store, StoreError};

/// A writer into the store that hashes and counts every byte written through it (for
/// outputs another library writes, such as Parquet).
pub struct HashingWriter {
    key: String,
    inner: BufWriter<ObjectWriter>,
    digest: Sha256Digest,
    bytes: u64,
}

impl std::fmt::Debug for HashingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingWriter")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl HashingWriter {
    pub fn create(store: &Store, key: &str) -> Self {
        Self {
            key: key.to_string(),
            inner: BufWriter::with_capacity(1 << 20, store.writer(key, DEFAULT_WRITE_BUFFER)),
            digest: Sha256Digest::new(),
            bytes: 0,
        }
    }

    /// Completes the upload; returns the bytes written and their sha256.
    pub fn finish(self) -> Result<(u64, String), StoreError> {
        let writer = self.inner.into_inner().map_err(|e| StoreError::Io {
            op: "write",
            target: self.key.clone(),
            source: e.into_error(),
        })?;
        writer.finish()?;
        Ok((self.bytes, self.digest.finish()))
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A stream of JSON lines into the store, hashed and counted as it goes.
pub struct HashedObject {
    key: String,
    /// Batches lines so the store writer (one runtime call per write) sees MiB-sized writes.
    writer: BufWriter<ObjectWriter>,
    digest: Sha256Digest,
    bytes: u64,
    records: u64,
}

impl std::fmt::Debug for HashedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashedObject")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl HashedObject {
    pub fn create(store: &Store, key: String) -> Self {
        Self {
            writer: BufWriter::with_capacity(1 << 20, store.writer(&key, DEFAULT_WRITE_BUFFER)),
            key,
            digest: Sha256Digest::new(),
            bytes: 0,
            records: 0,
        }
    }

    /// Appends one line (the caller's bytes must not contain a newline).
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), StoreError> {
        let io = |source| StoreError::Io {
            op: "write",
            target: self.key.clone(),
            source,
        };
        self.writer.write_all(line).map_err(io)?;
        self.writer.write_all(b"\n").map_err(io)?;
        self.digest.update(line);
        self.digest.update(b"\n");
        self.bytes += line.len() as u64 + 1;
        self.records += 1;
        Ok(())
    }

    pub fn finish(self) -> Result<ShardInfo, StoreError> {
        let writer = self.writer.into_inner().map_err(|e| StoreError::Io {
            op: "write",
            target: self.key.clone(),
            source: e.into_error(),
        })?;
        writer.finish()?;
        Ok(ShardInfo {
            key: self.key,
            bytes: self.bytes,
            records: self.records,
            sha256: self.digest.finish(),
        })
    }
}

/// Writes one split's shards, rotating by records or bytes.
#[derive(Debug)]
pub struct ShardSet {
    prefix: String,
    max_records: u64,
    max_bytes: u64,
    current: Option<HashedObject>,
    done: Vec<ShardInfo>,
}

impl ShardSet {
    /// `prefix` ends with `/`; parts are `{prefix}part-00000.jsonl`, …
    pub fn new(prefix: String, max_records: u64, max_bytes: u64) -> Self {
        Self {
            prefix,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            current: None,
            done: Vec::new(),
        }
    }

    pub fn write_line(&mut self, store: &Store, line: &[u8]) -> Result<(), StoreError> {
        let full = self.current.as_ref().is_some_and(|c| {
            c.records >= self.max_records || c.bytes + line.len() as u64 + 1 > self.max_bytes
        });
        if full {
            self.rotate()?;
        }
        let current = match &mut self.current {
            Some(c) => c,
            None => {
                let key = crate::layout::shard_key(&self.prefix, self.done.len());
                self.current.insert(HashedObject::create(store, key))
            }
        };
        current.write_line(line)
    }

    fn rotate(&mut self) -> Result<(), StoreError> {
        if let Some(c) = self.current.take() {
            self.done.push(c.finish()?);
        }
        Ok(())
    }

    /// Finishes the last part; returns every part in order.
    pub fn finish(mut self) -> Result<Vec<ShardInfo>, StoreError> {
        self.rotate()?;
        Ok(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_rotate_by_records_and_bytes_and_hash_what_they_hold() {
        let store = Store::memory();
        let mut set = ShardSet::new("r/shards/train/".into(), 3, 1_000);
        for i in 0..7 {
            set.write_line(&store, format!("{{\"n\":{i}}}").as_bytes())
                .unwrap();
        }
        let shards = set.finish().unwrap();
        assert_eq!(
            shards.iter().map(|s| s.records).collect::<Vec<_>>(),
            [3, 3, 1]
        );
        for s in &shards {
            let bytes = store.get_bytes(&s.key).unwrap();
            assert_eq!(crate::digest::sha256(&bytes), s.sha256);
            assert_eq!(bytes.len() as u64, s.bytes);
        }
        let mut by_bytes = ShardSet::new("r/s/".into(), 100, 20);
        for _ in 0..4 {
            by_bytes.write_line(&store, b"0123456789").unwrap();
        }
        assert_eq!(
            by_bytes.finish().unwrap().len(),
            4,
            "each 11-byte line: one per 20-byte shard"
        );
    }
}
