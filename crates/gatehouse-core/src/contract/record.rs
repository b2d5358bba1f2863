//! One exported record (a line of a shard): how the build writes it and how it is read.
//!
//! The build writes through borrowed views ([`ExportRecordView`]: no copy of a conversation
//! per record); training, QA packets and the reviewer app read the owned [`Record`], whose
//! fields are the same names (the typed ones a consumer needs, every other field kept as
//! written). The gates read the same lines leniently (every field optional), so a damaged
//! record is a finding rather than an unreadable shard. `tests/contract.rs` checks that every
//! line the build writes reads back as a [`Record`] with the fields it was written with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Split;
use crate::record::Message as ChatMessage;

#[derive(Debug, Serialize)]
pub struct ExportRecordView<'a> {
    pub id: &'a str,
    pub messages: &'a [ChatMessage],
    pub metadata: MetadataView<'a>,
}

#[derive(Debug, Serialize)]
pub struct MetadataView<'a> {
    pub source_family: &'a str,
    pub dataset: &'a str,
    pub stage: &'a str,
    pub source_key: &'a str,
    pub source_line: u64,
    pub content_hash: String,
    /// `none_detected` or `scrubbed`; records held for review never reach the export.
    pub pii_status: &'static str,
    pub redactions: BTreeMap<&'static str, u32>,
    pub license_tag: &'a str,
    pub split: Split,
    pub group: &'a str,
    /// The dataset's `source_fields` (redacted like the messages); absent when there are
    /// none, so records of datasets without them are unchanged. Before `provenance`, which
    /// must stay the last field that can hold source text (see `patch_sha`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_fields: &'a BTreeMap<String, serde_json::Value>,
    pub provenance: ProvenanceView<'a>,
    pub turns: usize,
    pub tokens: u64,
}

#[derive(Debug, Serialize)]
pub struct ProvenanceView<'a> {
    pub source_sha256: &'a str,
    pub pipeline: &'a str,
    pub dedup_status: &'static str,
    pub steps: [&'static str; 5],
}

/// One exported record, as training reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub messages: Vec<Message>,
    pub metadata: RecordMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordMetadata {
    pub source_family: String,
    pub dataset: String,
    pub stage: String,
    pub split: String,
    /// Every other field of the contract (provenance, redactions, …), as written.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}
