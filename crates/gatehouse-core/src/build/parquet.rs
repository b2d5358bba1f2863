//! Parquet beside every JSONL shard (`part-NNNNN.parquet` next to `part-NNNNN.jsonl`), with
//! the same records in the same order, for pyarrow, pandas and Hugging Face `datasets`.
//!
//! Columns: `id`; `messages`, a list of `{role, content}`; the metadata a training job filters
//! on (`source_family`, `dataset`, `stage`, `split`, `source_key`, `source_line`,
//! `license_tag`, `tokens`); and `metadata`, the record's whole metadata as JSON text.
//! Snappy-compressed; the writer's settings are fixed, so the bytes are deterministic.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder, StructBuilder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Fields, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::BuildError;

fn message_fields() -> Fields {
    Fields::from(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, false),
    ])
}

fn item_field() -> Field {
    Field::new("item", DataType::Struct(message_fields()), false)
}

/// The Parquet schema of an export shard.
pub fn schema() -> Schema {
    let text = |n: &str| Field::new(n, DataType::Utf8, false);
    Schema::new(vec![
        text("id"),
        Field::new("messages", DataType::List(Arc::new(item_field())), false),
        text("source_family"),
        text("dataset"),
        text("stage"),
        text("split"),
        text("source_key"),
        Field::new("source_line", DataType::UInt64, false),
        text("license_tag"),
        Field::new("tokens", DataType::UInt64, false),
        text("metadata"),
    ])
}

/// Rows per row group (and per in-memory batch): what bounds the conversion's memory,
/// whatever the shard's size.
pub const ROW_GROUP_ROWS: usize = 4096;

/// The column builders of one batch of rows.
struct Batch {
    id: StringBuilder,
    messages: ListBuilder<StructBuilder>,
    cols: [StringBuilder; 6],
    source_line: UInt64Builder,
    tokens: UInt64Builder,
    metadata: StringBuilder,
    rows: usize,
}

impl Batch {
    fn new() -> Self {
        Self {
            id: StringBuilder::new(),
            messages: ListBuilder::new(StructBuilder::from_fields(message_fields(), 0))
                .with_field(item_field()),
            cols: std::array::from_fn(|_| StringBuilder::new()),
            source_line: UInt64Builder::new(),
            tokens: UInt64Builder::new(),
            metadata: StringBuilder::new(),
            rows: 0,
        }
    }

    /// Appends one export record; `None` when the line is not one.
    fn append(&mut self, line: &[u8]) -> Option<()> {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        let msgs = v["messages"].as_array()?;
        let id = v["id"].as_str()?;
        for m in msgs {
            let (Some(role), Some(content)) = (m["role"].as_str(), m["content"].as_str()) else {
                return None;
            };
            let s = self.messages.values();
            s.field_builder::<StringBuilder>(0)?.append_value(role);
            s.field_builder::<StringBuilder>(1)?.append_value(content);
            s.append(true);
        }
        self.id.append_value(id);
        self.messages.append(true);
        let md = &v["metadata"];
        for (b, name) in self.cols.iter_mut().zip([
            "source_family",
            "dataset",
            "stage",
            "split",
            "source_key",
            "license_tag",
        ]) {
            b.append_value(md[name].as_str().unwrap_or_default());
        }
        self.source_line
            .append_value(md["source_line"].as_u64().unwrap_or_default());
        self.tokens
            .append_value(md["tokens"].as_u64().unwrap_or_default());
        self.metadata.append_value(md.to_string());
        self.rows += 1;
        Some(())
    }

    /// The rows so far as a record batch; the builders start again empty.
    fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let [family, dataset, stage, split, source_key, license] = self
            .cols
            .each_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.messages.finish()),
            family,
            dataset,
            stage,
            split,
            source_key,
            Arc::new(self.source_line.finish()),
            license,
            Arc::new(self.tokens.finish()),
            Arc::new(self.metadata.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(Arc::new(schema()), columns)
    }
}

/// Streams a JSONL shard (`key` names it in errors) into Parquet written to `out`, one row
/// group of [`ROW_GROUP_ROWS`] at a time; returns the rows written.
pub fn convert(
    key: &str,
    jsonl: impl std::io::BufRead,
    max_line: usize,
    out: impl std::io::Write + Send,
) -> Result<u64, BuildError> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        BuildError::Internal(format!("{key}: Parquet {what}: {e}"))
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("gatehouse {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = ArrowWriter::try_new(out, Arc::new(schema()), Some(props))
        .map_err(|e| internal("writer", &e))?;
    let mut batch = Batch::new();
    let mut rows = 0u64;
    let mut lines = crate::store::LineReader::new(jsonl, max_line);
    while let Some(line) = lines.next_line().map_err(|e| internal("read", &e))? {
        let (number, bytes) = match line {
            crate::store::Line::Text { number, bytes } => (number, bytes),
            crate::store::Line::Oversized { number, .. } => {
                return Err(BuildError::Internal(format!(
                    "{key}:{number}: not an export record"
                )));
            }
        };
        if bytes.is_empty() {
            continue;
        }
        batch
            .append(bytes)
            .ok_or_else(|| BuildError::Internal(format!("{key}:{number}: not an export record")))?;
        rows += 1;
        if batch.rows == ROW_GROUP_ROWS {
            let b = batch.finish().map_err(|e| internal("batch", &e))?;
            w.write(&b).map_err(|e| internal("write", &e))?;
        }
    }
    if batch.rows > 0 {
        let b = batch.finish().map_err(|e| internal("batch", &e))?;
        w.write(&b).map_err(|e| internal("write", &e))?;
    }
    w.close().map_err(|e| internal("close", &e))?;
    Ok(rows)
}

/// Converts a JSONL shard's bytes to Parquet bytes (tests and small inputs).
pub fn from_jsonl(key: &str, jsonl: &[u8]) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::new();
    convert(key, jsonl, usize::MAX, &mut out)?;
    Ok(out)
}

/// Rows of a Parquet file, from its footer.
pub fn rows(bytes: bytes::Bytes) -> Result<u64, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(bytes).map_err(|e| e.to_string())?;
    u64::try_from(r.metadata().file_metadata().num_rows()).map_err(|e| e.to_string())
}
