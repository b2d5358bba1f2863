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

/// Converts a JSONL shard's bytes (`key` names it in errors) to Parquet bytes.
pub fn from_jsonl(key: &str, jsonl: &[u8]) -> Result<Vec<u8>, BuildError> {
    let bad = |line: usize| BuildError::Internal(format!("{key}:{line}: not an export record"));
    let mut id = StringBuilder::new();
    let mut messages =
        ListBuilder::new(StructBuilder::from_fields(message_fields(), 0)).with_field(item_field());
    let mut cols: [StringBuilder; 6] = std::array::from_fn(|_| StringBuilder::new());
    let (mut source_line, mut tokens) = (UInt64Builder::new(), UInt64Builder::new());
    let mut metadata = StringBuilder::new();
    for (i, line) in jsonl
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|_| bad(i + 1))?;
        id.append_value(v["id"].as_str().ok_or_else(|| bad(i + 1))?);
        let msgs = v["messages"].as_array().ok_or_else(|| bad(i + 1))?;
        for m in msgs {
            let (Some(role), Some(content)) = (m["role"].as_str(), m["content"].as_str()) else {
                return Err(bad(i + 1));
            };
            let s = messages.values();
            s.field_builder::<StringBuilder>(0)
                .ok_or_else(|| bad(i + 1))?
                .append_value(role);
            s.field_builder::<StringBuilder>(1)
                .ok_or_else(|| bad(i + 1))?
                .append_value(content);
            s.append(true);
        }
        messages.append(true);
        let md = &v["metadata"];
        for (b, name) in cols.iter_mut().zip([
            "source_family",
            "dataset",
            "stage",
            "split",
            "source_key",
            "license_tag",
        ]) {
            b.append_value(md[name].as_str().unwrap_or_default());
        }
        source_line.append_value(md["source_line"].as_u64().unwrap_or_default());
        tokens.append_value(md["tokens"].as_u64().unwrap_or_default());
        metadata.append_value(md.to_string());
    }
    let [family, dataset, stage, split, source_key, license] =
        cols.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(messages.finish()),
        family,
        dataset,
        stage,
        split,
        source_key,
        Arc::new(source_line.finish()),
        license,
        Arc::new(tokens.finish()),
        Arc::new(metadata.finish()),
    ];
    let batch = RecordBatch::try_new(Arc::new(schema()), columns)
        .map_err(|e| BuildError::Internal(format!("{key}: Parquet batch: {e}")))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("gatehouse {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
        .map_err(|e| BuildError::Internal(format!("{key}: Parquet writer: {e}")))?;
    w.write(&batch)
        .map_err(|e| BuildError::Internal(format!("{key}: Parquet write: {e}")))?;
    w.close()
        .map_err(|e| BuildError::Internal(format!("{key}: Parquet close: {e}")))?;
    Ok(out)
}

/// Rows of a Parquet file, from its footer.
pub fn rows(bytes: bytes::Bytes) -> Result<u64, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(bytes).map_err(|e| e.to_string())?;
    u64::try_from(r.metadata().file_metadata().num_rows()).map_err(|e| e.to_string())
}
