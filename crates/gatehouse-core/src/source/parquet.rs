//! Parquet sources, for the JSON-family formats: each row is turned into a JSON object of the
//! columns the dataset's mapping names (nested `list<struct>` columns become lists of
//! objects) and then mapped exactly like a JSON record, so `fields`, `speaker_roles` and
//! `source_fields` mean the same thing. Locators are `key:row` (1-based, counted across row
//! groups).
//!
//! The object is read by ranges: the footer, then one row group at a time, only the columns
//! the mapping needs (fetched whole, one request per column chunk). Memory is bounded by
//! those column chunks of one row group plus one decoded batch of rows, not by the file.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowDictionaryKeyType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::{Buf, Bytes};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use serde_json::{Map, Value};

use super::{Item, Limits, ObjectSummary, Reason, json_records, quarantine};
use crate::registry::Dataset;

/// Rows decoded at a time.
const BATCH_ROWS: usize = 256;
/// Bytes fetched per request when the reader asks for a stream outside a prefetched chunk
/// (the footer, page indexes).
const READ_AHEAD: u64 = 256 << 10;

/// Random access to a stored object's bytes (a [`crate::store::RangeReader`], or bytes in
/// memory for tests).
pub trait RangeSource: Send + Sync + 'static {
    fn size(&self) -> u64;
    fn read_range(&self, start: u64, end: u64) -> io::Result<Bytes>;
}

impl RangeSource for crate::store::RangeReader {
    fn size(&self) -> u64 {
        crate::store::RangeReader::size(self)
    }
    fn read_range(&self, start: u64, end: u64) -> io::Result<Bytes> {
        self.read(start..end).map_err(io::Error::other)
    }
}

impl RangeSource for Bytes {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_range(&self, start: u64, end: u64) -> io::Result<Bytes> {
        let end = (end as usize).min(self.len());
        Ok(self.slice((start as usize).min(end)..end))
    }
}

/// The whole object as a stream of ranged reads (8 MiB at a time), for hashing exactly the
/// version the rows were decoded from.
#[derive(Debug)]
pub struct Sequential<S> {
    source: S,
    pos: u64,
    chunk: Bytes,
}

impl<S: RangeSource> Sequential<S> {
    pub fn new(source: S) -> Self {
        Self {
            source,
            pos: 0,
            chunk: Bytes::new(),
        }
    }
}

impl<S: RangeSource> Read for Sequential<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.chunk.is_empty() {
            let end = (self.pos + (8 << 20)).min(self.source.size());
            if self.pos >= end {
                return Ok(0);
            }
            self.chunk = self.source.read_range(self.pos, end)?;
            if self.chunk.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.pos += self.chunk.len() as u64;
        }
        let n = self.chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

/// The parquet reader's view of the object: prefetched column chunks of the current row
/// group, else ranged reads. Remembers whether the store itself failed, so that failure is
/// an error and not a broken file.
struct Chunks<S> {
    source: Arc<S>,
    loaded: Arc<Mutex<Vec<(u64, Bytes)>>>,
    store_failed: Arc<AtomicBool>,
}

impl<S> Clone for Chunks<S> {
    fn clone(&self) -> Self {
        Self {
            source: Arc::clone(&self.source),
            loaded: Arc::clone(&self.loaded),
            store_failed: Arc::clone(&self.store_failed),
        }
    }
}

impl<S: RangeSource> Chunks<S> {
    fn fetch(&self, start: u64, end: u64) -> parquet::errors::Result<Bytes> {
        let bytes = self.source.read_range(start, end).map_err(|e| {
            self.store_failed.store(true, Ordering::SeqCst);
            ParquetError::External(Box::new(e))
        })?;
        if (bytes.len() as u64) < end.min(self.source.size()).saturating_sub(start) {
            return Err(ParquetError::EOF("short read".into()));
        }
        Ok(bytes)
    }

    fn cached(&self, start: u64, len: u64) -> Option<Bytes> {
        let loaded = self.loaded.lock().ok()?;
        loaded.iter().find_map(|(at, b)| {
            let off = start.checked_sub(*at)?;
            (off + len <= b.len() as u64).then(|| b.slice(off as usize..(off + len) as usize))
        })
    }

    /// Fetches the given ranges (the next row group's column chunks), dropping the last.
    fn prefetch(&self, ranges: &[(u64, u64)]) -> parquet::errors::Result<()> {
        let mut next = Vec::with_capacity(ranges.len());
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.clear();
        }
        for &(start, len) in ranges {
            next.push((start, self.fetch(start, start + len)?));
        }
        if let Ok(mut loaded) = self.loaded.lock() {
            *loaded = next;
        }
        Ok(())
    }
}

impl<S: RangeSource> Length for Chunks<S> {
    fn len(&self) -> u64 {
        self.source.size()
    }
}

/// A stream from an offset: served from a prefetched chunk when it lies in one, else read
/// ahead in ranged requests.
struct ChunkRead<S> {
    chunks: Chunks<S>,
    pos: u64,
    buf: Bytes,
}

impl<S: RangeSource> Read for ChunkRead<S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.buf.is_empty() {
            let size = self.chunks.source.size();
            if self.pos >= size {
                return Ok(0);
            }
            let len = READ_AHEAD.min(size - self.pos);
            self.buf = match self.chunks.cached(self.pos, len) {
                Some(b) => b,
                None => self
                    .chunks
                    .fetch(self.pos, self.pos + len)
                    .map_err(io::Error::other)?,
            };
        }
        let n = self.buf.len().min(out.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf.advance(n);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: RangeSource> ChunkReader for Chunks<S> {
    type T = ChunkRead<S>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(ChunkRead {
            chunks: self.clone(),
            pos: start,
            buf: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self.cached(start, length as u64) {
            Some(b) => Ok(b),
            None => self.fetch(start, start + length as u64),
        }
    }
}

/// Reads one Parquet object of `dataset` and hands every item to `emit`, in row order.
/// `Err` only when the store cannot be read.
pub fn adapt<S: RangeSource>(
    source: S,
    key: &str,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<ObjectSummary> {
    adapt_row_groups(source, key, dataset, limits, usize::MAX, emit)
}

/// [`adapt`] over the first row group only (`registry suggest` checks a proposed entry on a
/// bounded sample with the build's own adapter).
pub fn adapt_first_row_group<S: RangeSource>(
    source: S,
    key: &str,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<ObjectSummary> {
    adapt_row_groups(source, key, dataset, limits, 1, emit)
}

fn adapt_row_groups<S: RangeSource>(
    source: S,
    key: &str,
    dataset: &Dataset,
    limits: &Limits,
    max_row_groups: usize,
    emit: &mut dyn FnMut(Item),
) -> io::Result<ObjectSummary> {
    let mut summary = ObjectSummary::default();
    let mut sink = |item: Item| {
        super::count(&mut summary, &item);
        emit(item);
    };
    if source.size() == 0 {
        sink(super::empty_object());
        return Ok(summary);
    }
    let chunks = Chunks {
        source: Arc::new(source),
        loaded: Arc::new(Mutex::new(Vec::new())),
        store_failed: Arc::new(AtomicBool::new(false)),
    };
    let store_error = |chunks: &Chunks<S>, e: &ParquetError| -> Option<io::Error> {
        chunks
            .store_failed
            .load(Ordering::SeqCst)
            .then(|| io::Error::other(format!("reading {key}: {}", error_kind(e))))
    };
    let meta = match ArrowReaderMetadata::load(&chunks, Default::default()) {
        Ok(m) => m,
        Err(e) => {
            if let Some(io) = store_error(&chunks, &e) {
                return Err(io);
            }
            sink(quarantine(
                1,
                Reason::BrokenStructure,
                format!(
                    "{key}: not a readable Parquet file ({}: its footer or metadata cannot be \
                     read)",
                    error_kind(&e)
                ),
            ));
            return Ok(summary);
        }
    };
    let wanted = wanted_roots(dataset);
    let schema = meta.schema().clone();
    let roots: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.iter().any(|w| w == f.name()))
        .map(|(i, _)| i)
        .collect();
    let descr = meta.metadata().file_metadata().schema_descr_ptr();
    let leaves: Vec<usize> = (0..descr.num_columns())
        .filter(|&c| roots.contains(&descr.get_column_root_idx(c)))
        .collect();
    let mut row: u64 = 0;
    for group in 0..meta.metadata().num_row_groups().min(max_row_groups) {
        let rg = meta.metadata().row_group(group);
        let ranges: Vec<(u64, u64)> = leaves.iter().map(|&c| rg.column(c).byte_range()).collect();
        let broken = |e: &ParquetError, row: u64| {
            quarantine(
                row + 1,
                Reason::BrokenStructure,
                format!(
                    "{key}: row group {group} cannot be decoded ({}); the rows after row {row} \
                     cannot be read or counted",
                    error_kind(e)
                ),
            )
        };
        if let Err(e) = chunks.prefetch(&ranges) {
            if let Some(io) = store_error(&chunks, &e) {
                return Err(io);
            }
            sink(broken(&e, row));
            return Ok(summary);
        }
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(chunks.clone(), meta.clone())
                .with_row_groups(vec![group])
                .with_projection(ProjectionMask::roots(&descr, roots.iter().copied()))
                .with_batch_size(BATCH_ROWS)
                .build();
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                if let Some(io) = store_error(&chunks, &e) {
                    return Err(io);
                }
                sink(broken(&e, row));
                return Ok(summary);
            }
        };
        for batch in reader {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    let e = ParquetError::ArrowError(e.to_string());
                    if let Some(io) = store_error(&chunks, &e) {
                        return Err(io);
                    }
                    sink(broken(&e, row));
                    return Ok(summary);
                }
            };
            for i in 0..batch.num_rows() {
                row += 1;
                sink(match row_object(&batch, i) {
                    Ok(obj) => json_records::object_item(row, obj, dataset, limits),
                    Err(detail) => quarantine(row, Reason::WrongType, detail),
                });
            }
        }
    }
    Ok(summary)
}

/// The first rows of a Parquet object, every column, for recognising its shape.
#[derive(Debug, Clone, Default)]
pub struct RowSample {
    /// Up to the requested number of rows of the first row group, as JSON objects.
    pub rows: Vec<Map<String, Value>>,
    /// Columns of types gatehouse does not read (left out of `rows`), with their type.
    pub unreadable_columns: Vec<(String, String)>,
}

/// Reads the footer and up to `max_rows` rows of the first row group, all columns. `Ok(Err)`
/// when the file cannot be read as Parquet (the reason names no data); `Err` when the store
/// fails.
pub fn sample_rows<S: RangeSource>(
    source: S,
    max_rows: usize,
) -> io::Result<Result<RowSample, String>> {
    let chunks = Chunks {
        source: Arc::new(source),
        loaded: Arc::new(Mutex::new(Vec::new())),
        store_failed: Arc::new(AtomicBool::new(false)),
    };
    let failed = |chunks: &Chunks<S>, e: &ParquetError, what: &str| {
        if chunks.store_failed.load(Ordering::SeqCst) {
            Err(io::Error::other(format!("{what}: {}", error_kind(e))))
        } else {
            Ok(Err(format!("{what} ({})", error_kind(e))))
        }
    };
    let meta = match ArrowReaderMetadata::load(&chunks, Default::default()) {
        Ok(m) => m,
        Err(e) => return failed(&chunks, &e, "not a readable Parquet file"),
    };
    let mut sample = RowSample::default();
    if meta.metadata().num_row_groups() == 0 {
        return Ok(Ok(sample));
    }
    let rg = meta.metadata().row_group(0);
    let ranges: Vec<(u64, u64)> = (0..rg.num_columns())
        .map(|c| rg.column(c).byte_range())
        .collect();
    if let Err(e) = chunks.prefetch(&ranges) {
        return failed(&chunks, &e, "its first row group cannot be read");
    }
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks.clone(), meta)
        .with_row_groups(vec![0])
        .with_batch_size(max_rows.max(1))
        .build();
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => return failed(&chunks, &e, "its first row group cannot be decoded"),
    };
    let batch = match reader.next() {
        None => return Ok(Ok(sample)),
        Some(Ok(b)) => b,
        Some(Err(e)) => {
            let e = ParquetError::ArrowError(e.to_string());
            return failed(&chunks, &e, "its first row group cannot be decoded");
        }
    };
    let schema = batch.schema();
    for i in 0..batch.num_rows().min(max_rows) {
        let mut obj = Map::new();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            match value(column.as_ref(), i) {
                Ok(v) => {
                    obj.insert(field.name().clone(), v);
                }
                Err(_) => {
                    if !sample
                        .unreadable_columns
                        .iter()
                        .any(|(n, _)| n == field.name())
                    {
                        sample
                            .unreadable_columns
                            .push((field.name().clone(), field.data_type().to_string()));
                    }
                }
            }
        }
        sample.rows.push(obj);
    }
    Ok(Ok(sample))
}

/// The kind of a parquet error, without its text (which may quote the file's bytes).
fn error_kind(e: &ParquetError) -> &'static str {
    match e {
        ParquetError::General(_) => "malformed",
        ParquetError::NYI(_) => "uses a feature this reader does not support",
        ParquetError::EOF(_) => "ends early",
        ParquetError::ArrowError(_) => "cannot be decoded",
        ParquetError::IndexOutOfBound(..) => "an index is out of bounds",
        ParquetError::External(_) => "a read failed",
        _ => "unreadable",
    }
}

/// Top-level columns the mapping reads (the first segment of each path, or a column named
/// with the whole dotted path).
fn wanted_roots(dataset: &Dataset) -> Vec<String> {
    let mut paths: Vec<&str> = Vec::new();
    if let Some(t) = dataset.turn_mapping() {
        paths.push(t.list);
    } else if let Some(p) = dataset.pair_mapping() {
        paths.extend(
            [Some(p.user), Some(p.assistant), p.system]
                .into_iter()
                .flatten(),
        );
    } else {
        paths.extend(["instruction", "input", "output"]);
    }
    paths.extend(dataset.group_by.as_deref());
    paths.extend(dataset.source_fields.iter().map(String::as_str));
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        for name in [p, p.split('.').next().unwrap_or(p)] {
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Row `i` of a batch as a JSON object, column by column.
fn row_object(batch: &RecordBatch, i: usize) -> Result<Map<String, Value>, String> {
    let mut obj = Map::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let v = value(column.as_ref(), i)
            .map_err(|what| format!("column {:?} {what}", field.name()))?;
        obj.insert(field.name().clone(), v);
    }
    Ok(obj)
}

/// One cell as JSON. Names types, never values.
fn value(array: &dyn Array, i: usize) -> Result<Value, String> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(|s| Value::String(s.to_string()))
            .map_err(|_| "holds binary data that is not UTF-8 text".to_string())
    };
    let float = |f: f64| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    Ok(match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(i).to_string()),
        DataType::Binary => text(array.as_binary::<i32>().value(i))?,
        DataType::LargeBinary => text(array.as_binary::<i64>().value(i))?,
        DataType::BinaryView => text(array.as_binary_view().value(i))?,
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => array.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).into(),
        DataType::UInt8 => array.as_primitive::<UInt8Type>().value(i).into(),
        DataType::UInt16 => array.as_primitive::<UInt16Type>().value(i).into(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(i).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i).into(),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        DataType::List(_) => list(array.as_list::<i32>().value(i).as_ref())?,
        DataType::LargeList(_) => list(array.as_list::<i64>().value(i).as_ref())?,
        DataType::FixedSizeList(..) => list(array.as_fixed_size_list().value(i).as_ref())?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut obj = Map::new();
            for (f, column) in fields.iter().zip(s.columns()) {
                obj.insert(f.name().clone(), value(column.as_ref(), i)?);
            }
            Value::Object(obj)
        }
        DataType::Dictionary(k, _) => match k.as_ref() {
            DataType::Int8 => dictionary::<Int8Type>(array, i)?,
            DataType::Int16 => dictionary::<Int16Type>(array, i)?,
            DataType::Int32 => dictionary::<Int32Type>(array, i)?,
            DataType::Int64 => dictionary::<Int64Type>(array, i)?,
            DataType::UInt8 => dictionary::<UInt8Type>(array, i)?,
            DataType::UInt16 => dictionary::<UInt16Type>(array, i)?,
            DataType::UInt32 => dictionary::<UInt32Type>(array, i)?,
            DataType::UInt64 => dictionary::<UInt64Type>(array, i)?,
            other => return Err(format!("has dictionary keys of type {other}")),
        },
        other => {
            return Err(format!(
                "has Arrow type {other}, which gatehouse does not read"
            ));
        }
    })
}

fn list(items: &dyn Array) -> Result<Value, String> {
    (0..items.len())
        .map(|j| value(items, j))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn dictionary<K: ArrowDictionaryKeyType>(array: &dyn Array, i: usize) -> Result<Value, String> {
    let d = array.as_dictionary::<K>();
    match d.key(i) {
        Some(key) => value(d.values().as_ref(), key),
        None => Ok(Value::Null),
    }
}
