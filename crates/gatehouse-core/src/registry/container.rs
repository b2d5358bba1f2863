//! How an object's bytes are laid out: named by a dataset entry, or inferred from its format
//! and the key's extension.

use serde::{Deserialize, Serialize};

use super::{Dataset, SourceFormat};

/// How an object's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// One JSON record per line.
    Jsonl,
    /// One JSON document: an array of records, or an object wrapping one.
    Json,
    Csv,
    Text,
    /// Apache Parquet, read by ranges (see [`crate::source::parquet`]); for the JSON-family formats.
    Parquet,
}

impl Container {
    /// The container of `key` for `dataset`: the registry's explicit choice, else the format
    /// and the file extension.
    pub fn of(dataset: &Dataset, key: &str) -> Container {
        if let Some(c) = dataset.container {
            return c;
        }
        if dataset.format.is_json_family() && key.to_ascii_lowercase().ends_with(".parquet") {
            return Container::Parquet;
        }
        match dataset.format {
            SourceFormat::CsvColumns | SourceFormat::UtteranceCsv => Container::Csv,
            SourceFormat::TextTranscript => Container::Text,
            _ => {
                if key.to_ascii_lowercase().ends_with(".json") {
                    Container::Json
                } else {
                    Container::Jsonl
                }
            }
        }
    }
}
