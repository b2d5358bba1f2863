//! `manifest.json`: everything a release is, by digest. Its own sha256 is the release digest
//! that reviewer signoffs bind to, so it holds no wall-clock time. Written by the build,
//! read back by the gates, QA, consumption and publication.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::build::{BlocklistSummary, DedupSummary, Exclusion, ShardInfo, Tally};
use super::split::{Ratios, Split};
use crate::digest::sha256;
use crate::report::Verdict;

/// Manifest schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// How the release digest is defined, written into every manifest.
pub const RELEASE_DIGEST_NOTE: &str =
    "the release digest is the sha256 of this file's bytes; signoffs bind to it";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub release_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    pub release_digest: String,
    pub tool: Tool,
    pub config_digest: String,
    pub registry_digest: String,
    pub hash_version: u32,
    pub tokens: TokensInfo,
    pub split: SplitInfo,
    /// How duplicates were removed: method, parameters and counts.
    pub dedup: DedupSummary,
    /// Reviewers' blocklists this build honoured (sha256 each) and the records removed
    /// (absent from manifests written before blocklists existed).
    #[serde(default)]
    pub blocklist: BlocklistSummary,
    pub inputs: Vec<InputObject>,
    pub excluded_datasets: Vec<Exclusion>,
    pub contents: Vec<SplitContents>,
    pub artefacts: Vec<Artefact>,
    pub verdicts: BTreeMap<String, Verdict>,
    /// Always empty: the signoff binds to this file's digest, so it is kept beside it
    /// (`qa/signoff_record.json`) rather than in it.
    pub signoff: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
    pub git_commit: String,
}

/// How the token counts in this manifest (and in every record) were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokensInfo {
    pub tokenizer: String,
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    pub method: String,
    pub seed: u64,
    pub ratios: Ratios,
    pub counts: BTreeMap<Split, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputObject {
    pub key: String,
    pub dataset: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One split: its records and tokens per family and the shards that hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitContents {
    pub split: Split,
    pub records: u64,
    pub tokens: u64,
    pub families: BTreeMap<String, Tally>,
    pub shards: Vec<ShardInfo>,
    /// The same records as Parquet, one file beside each JSONL shard (`[build] parquet`);
    /// none when the build wrote none.
    #[serde(default)]
    pub parquet: Vec<ShardInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artefact {
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Artefact {
    pub fn of(key: &str, bytes: &[u8]) -> Self {
        Self {
            key: key.to_string(),
            bytes: bytes.len() as u64,
            sha256: sha256(bytes),
        }
    }
}

impl From<&ShardInfo> for Artefact {
    fn from(s: &ShardInfo) -> Self {
        Self {
            key: s.key.clone(),
            bytes: s.bytes,
            sha256: s.sha256.clone(),
        }
    }
}
