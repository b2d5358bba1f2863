//! Bounded samples of one object: the first `max_bytes` of it (decompressed through the
//! build's gzip/zstd reader), cut at the end of the last whole record and at most `records`
//! records; for Parquet the footer and the first row group, capped separately. The sample
//! is what shape recognition looks at and what the build's adapter is run over; it is never
//! printed.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::SuggestError;
use crate::source::Container;
use crate::source::compression::{self, Compression, Decompressed};
use crate::source::json_stream::{Element, JsonElements};
use crate::source::parquet::{self, RangeSource, RowSample};
use crate::store::{RangeReader, Store};

/// How much of each object is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Bytes read from the start of a JSON, CSV or text object (and bytes kept after
    /// decompression).
    pub max_bytes: u64,
    /// Records sampled per object.
    pub records: usize,
    /// Bytes a Parquet object's footer and first row group may take.
    pub max_parquet_bytes: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_bytes: 256 << 10,
            records: 20,
            max_parquet_bytes: 32 << 20,
        }
    }
}

/// The kind of object, judged by its key (without a compression extension) and, for
/// unknown extensions, its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Json,
    Csv,
    Text,
    Parquet,
}

/// The sampled records.
#[derive(Debug, Clone)]
pub enum Body {
    /// JSON records (JSON Lines, or elements of a JSON array, `wrapper` naming the key of a
    /// top-level object that holds them). `None` for a record that is not valid JSON.
    Json {
        records: Vec<Option<Value>>,
        container: Container,
        wrapper: Option<String>,
    },
    Csv {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Text {
        lines: Vec<String>,
    },
    Parquet(RowSample),
}

/// One object's sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub key: String,
    /// The records, or why none could be read (names no data).
    pub body: Result<Body, String>,
    /// What the adapter check reads: the sampled bytes (decompressed) cut after the last
    /// whole sampled record, under `adapter_key`. `None` for Parquet, read again by ranges.
    pub adapter_bytes: Option<Vec<u8>>,
    /// The key the adapter sees (the compression extension dropped: the bytes are plain).
    pub adapter_key: String,
    /// The object holds more than the sample.
    pub cut: bool,
}

/// The kind of `key` from its extension, after any compression extension.
pub fn kind_of(key: &str) -> Option<Kind> {
    let inner = compression::inner_key(key).to_ascii_lowercase();
    let ext = inner.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext {
        "jsonl" | "ndjson" | "json" => Some(Kind::Json),
        "csv" => Some(Kind::Csv),
        "txt" => Some(Kind::Text),
        "parquet" => Some(Kind::Parquet),
        _ => None,
    }
}

/// A range source that refuses to read past a byte budget, so a huge row group is
/// reported instead of fetched.
#[derive(Clone)]
pub(crate) struct Budgeted {
    inner: RangeReader,
    left: Arc<AtomicU64>,
    exceeded: Arc<AtomicBool>,
}

impl Budgeted {
    pub(crate) fn new(inner: RangeReader, budget: u64) -> Self {
        Self {
            inner,
            left: Arc::new(AtomicU64::new(budget)),
            exceeded: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::SeqCst)
    }
}

impl RangeSource for Budgeted {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_range(&self, start: u64, end: u64) -> io::Result<Bytes> {
        let want = end.min(self.size()).saturating_sub(start);
        let took = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(want)
            });
        if took.is_err() {
            self.exceeded.store(true, Ordering::SeqCst);
            return Err(io::Error::other("over the sampling budget"));
        }
        self.inner.read_range(start, end)
    }
}

/// Samples `key` within `bounds`. `Err` only when the store fails.
pub fn sample(store: &Store, key: &str, bounds: &Bounds) -> Result<Sample, SuggestError> {
    let inner = compression::inner_key(key).to_string();
    let ranges = store.open_ranges(key)?;
    let size = ranges.size();
    if kind_of(key) == Some(Kind::Parquet) {
        let budgeted = Budgeted::new(ranges, bounds.max_parquet_bytes);
        let body = match parquet::sample_rows(budgeted.clone(), bounds.records) {
            Ok(Ok(rows)) => Ok(Body::Parquet(rows)),
            Ok(Err(why)) => Err(why),
            Err(_) if budgeted.exceeded() => Err(format!(
                "its footer and first row group are larger than --max-parquet-bytes ({}); \
                 raise it to sample this file",
                bounds.max_parquet_bytes
            )),
            Err(e) => {
                return Err(SuggestError::Read {
                    key: key.to_string(),
                    detail: e.to_string(),
                });
            }
        };
        return Ok(Sample {
            key: key.to_string(),
            body,
            adapter_bytes: None,
            adapter_key: key.to_string(),
            cut: false,
        });
    }
    let raw = ranges.read(0..size.min(bounds.max_bytes))?;
    let raw_cut = size > bounds.max_bytes;
    let mut sample = Sample {
        key: key.to_string(),
        body: Err(String::new()),
        adapter_bytes: None,
        adapter_key: inner.clone(),
        cut: raw_cut,
    };
    if raw.is_empty() {
        sample.body = Err("the object is empty (0 bytes)".into());
        return Ok(sample);
    }
    let compression = Compression::detect(key, &raw);
    let data = if compression == Compression::None {
        raw.to_vec()
    } else {
        match decompress(&raw, compression, bounds.max_bytes) {
            (data, DecodeEnd::Complete) => data,
            (data, DecodeEnd::Limit) => {
                sample.cut = true;
                data
            }
            (data, DecodeEnd::Broken) if raw_cut => {
                sample.cut = true;
                data
            }
            (_, DecodeEnd::Broken) => {
                sample.body = Err(format!(
                    "the {} stream is corrupt or truncated",
                    compression.name()
                ));
                return Ok(sample);
            }
        }
    };
    let kind = kind_of(key).or_else(|| sniff_json(&data).then_some(Kind::Json));
    let (body, used) = match kind {
        Some(Kind::Json) => json(&data, sample.cut, bounds),
        Some(Kind::Csv) => csv_rows(&data, sample.cut, bounds),
        Some(Kind::Text) => text(&data, sample.cut),
        Some(Kind::Parquet) => unreachable!("handled above"),
        None => (
            Err(
                "no adapter reads objects with this extension (JSON, JSON Lines, CSV, text and \
                 Parquet are read, optionally .gz or .zst)"
                    .into(),
            ),
            0,
        ),
    };
    if body.is_ok() {
        sample.adapter_bytes = Some(data[..used].to_vec());
    }
    sample.body = body;
    // For a JSON document cut short, the adapter reads the elements kept and a closing
    // bracket (see `json`), appended here so line numbers stay those of the object.
    if let (
        Some(bytes),
        Ok(Body::Json {
            container, wrapper, ..
        }),
    ) = (&mut sample.adapter_bytes, &sample.body)
        && *container == Container::Json
        && used < data.len()
    {
        bytes.extend_from_slice(b"\n]");
        if wrapper.is_some() {
            bytes.push(b'}');
        }
    }
    Ok(sample)
}

enum DecodeEnd {
    Complete,
    Limit,
    Broken,
}

/// Decompresses at most `max` bytes; a decoder error ends the data (a sample cut inside
/// the stream always ends in one).
fn decompress(raw: &[u8], compression: Compression, max: u64) -> (Vec<u8>, DecodeEnd) {
    let mut out = Vec::new();
    let Ok(mut decoder) = Decompressed::new(raw, compression) else {
        return (out, DecodeEnd::Broken);
    };
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => return (out, DecodeEnd::Complete),
            Ok(n) => {
                let room = (max as usize).saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
                if n >= room {
                    return (out, DecodeEnd::Limit);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return (out, DecodeEnd::Broken),
        }
    }
}

fn sniff_json(data: &[u8]) -> bool {
    let start = data.trim_ascii_start();
    let start = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(start);
    matches!(start.first(), Some(b'{' | b'['))
}

/// Up to `records` records and how many bytes of `data` they span.
type Parsed = (Result<Body, String>, usize);

fn too_large(bounds: &Bounds) -> String {
    format!(
        "its first record is larger than --max-bytes ({} bytes); raise --max-bytes",
        bounds.max_bytes
    )
}

fn json(data: &[u8], cut: bool, bounds: &Bounds) -> Parsed {
    let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        return json_document(data, None, cut, bounds);
    }
    // An object: JSON Lines (whatever the extension), or one object wrapping the records.
    let first_line_end = body.iter().position(|&b| b == b'\n');
    let first_line = &body[..first_line_end.unwrap_or(body.len())];
    let first_is_record = serde_json::from_slice::<Value>(first_line).is_ok_and(|v| v.is_object());
    let more = first_line_end.is_some_and(|e| !body[e..].trim_ascii().is_empty());
    if first_is_record && (more || !cut) {
        // A single-object document on one line reads as one JSON Lines record, as the
        // build would read it under a .jsonl key; a wrapper is looked for first.
        if !more && let Some(w) = wrapper_key(body) {
            return json_document(data, Some(w), cut, bounds);
        }
        return json_lines(data, cut, bounds);
    }
    match wrapper_key(body) {
        Some(w) => json_document(data, Some(w), cut, bounds),
        None if first_line_end.is_none() && cut => (Err(too_large(bounds)), 0),
        None => (
            Err(
                "a JSON object that is neither one record per line nor an object wrapping \
                     a list of records under its first key"
                    .into(),
            ),
            0,
        ),
    }
}

/// The first key of a top-level object when it holds an array of objects (`{"data": [{`).
fn wrapper_key(body: &[u8]) -> Option<String> {
    let s = body
        .trim_ascii_start()
        .strip_prefix(b"{")?
        .trim_ascii_start();
    let s = s.strip_prefix(b"\"")?;
    let mut end = None;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        match (escaped, b) {
            (true, _) => escaped = false,
            (false, b'\\') => escaped = true,
            (false, b'"') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end?;
    let key: String = serde_json::from_slice(&[b"\"", &s[..end], b"\""].concat()).ok()?;
    let rest = s[end + 1..].trim_ascii_start().strip_prefix(b":")?;
    let rest = rest.trim_ascii_start().strip_prefix(b"[")?;
    (rest.trim_ascii_start().first() == Some(&b'{')).then_some(key)
}

fn json_lines(data: &[u8], cut: bool, bounds: &Bounds) -> Parsed {
    // When the sample was cut, its last line is partial.
    let whole = if cut {
        match data.iter().rposition(|&b| b == b'\n') {
            Some(p) => &data[..=p],
            None => return (Err(too_large(bounds)), 0),
        }
    } else {
        data
    };
    let mut records = Vec::new();
    let mut used = 0;
    let mut start = 0;
    while start < whole.len() && records.len() < bounds.records {
        let end = whole[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(whole.len(), |p| start + p + 1);
        let line = &whole[start..end];
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if !line.trim_ascii().is_empty() {
            records.push(serde_json::from_slice::<Value>(line).ok());
        }
        used = end;
        start = end;
    }
    (
        Ok(Body::Json {
            records,
            container: Container::Jsonl,
            wrapper: None,
        }),
        used,
    )
}

/// A `BufRead` over a slice that tells how far it was consumed.
struct Counting<'a> {
    data: &'a [u8],
    pos: Rc<Cell<usize>>,
}

impl Read for Counting<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.pos.get()..];
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.pos.set(self.pos.get() + n);
        Ok(n)
    }
}

impl BufRead for Counting<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.data[self.pos.get()..])
    }
    fn consume(&mut self, n: usize) {
        self.pos.set(self.pos.get() + n);
    }
}

fn json_document(data: &[u8], wrapper: Option<String>, cut: bool, bounds: &Bounds) -> Parsed {
    let pos = Rc::new(Cell::new(0));
    let reader = Counting {
        data,
        pos: Rc::clone(&pos),
    };
    let max = usize::try_from(bounds.max_bytes).unwrap_or(usize::MAX);
    let Ok(mut elements) = JsonElements::open(reader, wrapper.as_deref(), max) else {
        return (
            Err("a JSON document whose start cannot be read as an array of records".into()),
            0,
        );
    };
    let mut records = Vec::new();
    let mut used = 0;
    let mut complete = false;
    while records.len() < bounds.records {
        match elements.next_element() {
            Ok(Some(Element::Value { bytes, .. })) => {
                records.push(serde_json::from_slice::<Value>(bytes).ok());
                used = pos.get();
            }
            Ok(Some(Element::Oversized { .. })) => break,
            Ok(None) => {
                complete = true;
                break;
            }
            Err(_) => break,
        }
    }
    if records.is_empty() && !complete && cut {
        return (Err(too_large(bounds)), 0);
    }
    // A document read to its end is handed to the adapter whole.
    let used = if complete || (!cut && records.len() < bounds.records) {
        data.len()
    } else {
        used
    };
    (
        Ok(Body::Json {
            records,
            container: Container::Json,
            wrapper,
        }),
        used,
    )
}

fn csv_rows(data: &[u8], cut: bool, bounds: &Bounds) -> Parsed {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(data);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let f = if i == 0 {
                    f.trim_start_matches('\u{feff}')
                } else {
                    f
                };
                f.trim().to_string()
            })
            .collect(),
        Err(_) => return (Err("its header row cannot be read as CSV".into()), 0),
    };
    let mut used = usize::try_from(reader.position().byte()).unwrap_or(0);
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while rows.len() < bounds.records {
        match reader.read_record(&mut record) {
            Ok(true) => {
                let end = usize::try_from(reader.position().byte()).unwrap_or(data.len());
                // A row running to the end of a cut sample may be partial.
                if cut && end >= data.len() {
                    break;
                }
                rows.push(record.iter().map(str::to_string).collect());
                used = end;
            }
            Ok(false) | Err(_) => break,
        }
    }
    if rows.is_empty() && cut {
        return (Err(too_large(bounds)), 0);
    }
    (Ok(Body::Csv { header, rows }), used)
}

fn text(data: &[u8], cut: bool) -> Parsed {
    let used = if cut {
        data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)
    } else {
        data.len()
    };
    match std::str::from_utf8(&data[..used]) {
        Ok(s) => (
            Ok(Body::Text {
                lines: s.lines().map(str::to_string).collect(),
            }),
            used,
        ),
        Err(_) => (Err("the text is not valid UTF-8".into()), 0),
    }
}

/// Records of a sample as JSON objects (JSON records and Parquet rows), and how many
/// sampled records are not objects.
pub fn objects(body: &Body) -> (Vec<&Map<String, Value>>, usize) {
    match body {
        Body::Json { records, .. } => {
            let objects: Vec<_> = records
                .iter()
                .filter_map(|r| r.as_ref().and_then(Value::as_object))
                .collect();
            let others = records.len() - objects.len();
            (objects, others)
        }
        Body::Parquet(s) => (s.rows.iter().collect(), 0),
        _ => (Vec::new(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(max_bytes: u64, records: usize) -> Bounds {
        Bounds {
            max_bytes,
            records,
            ..Bounds::default()
        }
    }

    #[test]
    fn a_cut_json_array_keeps_whole_elements_and_is_closed_for_the_adapter() {
        let doc = br#"[{"a": [1]}, {"a": [2]}, {"a": [3, 4, 5]}]"#;
        let (body, used) = json(&doc[..30], true, &bounds(30, 10));
        let Ok(Body::Json { records, .. }) = body else {
            panic!("{body:?}")
        };
        assert_eq!(records.len(), 2);
        assert_eq!(&doc[..used], br#"[{"a": [1]}, {"a": [2]}"#);
    }

    #[test]
    fn wrapped_records_and_json_lines_are_told_apart() {
        assert_eq!(
            wrapper_key(br#" {"data": [ {"x": 1}]}"#).as_deref(),
            Some("data")
        );
        assert_eq!(wrapper_key(br#"{"data": 1}"#), None);
        let (body, used) = json(b"{\"a\":1}\n{\"a\":2}\n{\"a\"", true, &bounds(64, 10));
        let Ok(Body::Json {
            records, container, ..
        }) = body
        else {
            panic!()
        };
        assert_eq!((records.len(), container, used), (2, Container::Jsonl, 16));
    }

    #[test]
    fn a_cut_csv_drops_its_partial_last_row() {
        let data = b"a,b\n1,\"two\nlines\"\n3,4\n5,\"si";
        let (body, used) = csv_rows(data, true, &bounds(64, 10));
        let Ok(Body::Csv { header, rows }) = body else {
            panic!()
        };
        assert_eq!(header, ["a", "b"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(&data[used..], b"5,\"si");
    }

    #[test]
    fn a_first_record_over_the_bound_is_named() {
        let (body, _) = json_lines(b"{\"a\": \"xxxxxxxx", true, &bounds(16, 10));
        assert!(body.unwrap_err().contains("--max-bytes"));
    }
}
