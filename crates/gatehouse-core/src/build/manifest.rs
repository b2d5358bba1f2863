//! `manifest.json`: everything a release is, by digest. Its own sha256 is the release
//! digest that reviewer signoffs bind to, so it holds no wall-clock time: the release date
//! comes from the version or `SOURCE_DATE_EPOCH`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::shards::ShardInfo;
use super::split::{Ratios, Split};
use super::{BuildConfig, Exclusion, Tally};
use crate::digest::sha256;
use crate::report::Verdict;

/// Manifest schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// How the release digest is defined, written into every manifest.
pub const RELEASE_DIGEST_NOTE: &str =
    "the release digest is the sha256 of this file's bytes; signoffs bind to it";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub release_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_date: Option<String>,
    pub release_digest: &'static str,
    pub tool: Tool,
    pub config_digest: String,
    pub registry_digest: String,
    pub hash_version: u32,
    pub tokens: TokensInfo,
    pub split: SplitInfo,
    /// How duplicates were removed: method, parameters and counts.
    pub dedup: super::dedup::DedupSummary,
    /// Reviewers' blocklists this build honoured (sha256 each) and the records removed.
    pub blocklist: super::blocklist::BlocklistSummary,
    pub inputs: Vec<InputObject>,
    pub excluded_datasets: Vec<Exclusion>,
    pub contents: Vec<SplitContents>,
    pub artefacts: Vec<Artefact>,
    pub verdicts: BTreeMap<String, Verdict>,
    /// Always empty: the signoff binds to this file's digest, so it is kept beside it
    /// (`qa/signoff_record.json`) rather than in it.
    pub signoff: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
    pub git_commit: &'static str,
}

/// How the token counts in this manifest (and in every record) were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokensInfo {
    pub tokenizer: String,
    pub definition: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitInfo {
    pub method: &'static str,
    pub seed: u64,
    pub ratios: Ratios,
    pub counts: BTreeMap<Split, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputObject {
    pub key: String,
    pub dataset: String,
    pub bytes: u64,
    pub sha256: String,
}

/// One split: its records and tokens per family and the shards that hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitContents {
    pub split: Split,
    pub records: u64,
    pub tokens: u64,
    pub families: BTreeMap<String, Tally>,
    pub shards: Vec<ShardInfo>,
    /// The same records as Parquet, one file beside each JSONL shard (`[build] parquet`).
    pub parquet: Vec<ShardInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

pub(super) struct Parts<'a> {
    pub release_version: &'a str,
    pub release_date: Option<String>,
    pub config_digest: &'a str,
    pub registry_digest: &'a str,
    pub hash_version: u32,
    pub config: &'a BuildConfig,
    pub split_counts: &'a BTreeMap<Split, u64>,
    pub inputs: Vec<InputObject>,
    pub excluded: Vec<Exclusion>,
    /// Per split: JSONL shards and their Parquet twins.
    pub contents: &'a [(Split, Vec<ShardInfo>, Vec<ShardInfo>)],
    pub per_family: &'a BTreeMap<(Split, String), Tally>,
    pub artefacts: Vec<Artefact>,
    pub build_verdict: Verdict,
    pub dedup: super::dedup::DedupSummary,
    pub blocklist: super::blocklist::BlocklistSummary,
    /// The tokenizer's label (`o200k_base`, or a file with its sha256).
    pub tokenizer: String,
}

impl Manifest {
    pub(super) fn new(p: Parts<'_>) -> Self {
        let contents = p
            .contents
            .iter()
            .map(|(split, shards, parquet)| {
                let families: BTreeMap<String, Tally> = p
                    .per_family
                    .iter()
                    .filter(|((s, _), _)| s == split)
                    .map(|((_, f), n)| (f.clone(), *n))
                    .collect();
                SplitContents {
                    split: *split,
                    records: families.values().map(|t| t.records).sum(),
                    tokens: families.values().map(|t| t.tokens).sum(),
                    families,
                    shards: shards.clone(),
                    parquet: parquet.clone(),
                }
            })
            .collect();
        Manifest {
            schema_version: SCHEMA_VERSION,
            release_version: p.release_version.to_string(),
            release_date: p.release_date,
            release_digest: RELEASE_DIGEST_NOTE,
            tool: Tool {
                name: "gatehouse",
                version: env!("CARGO_PKG_VERSION"),
                git_commit: option_env!("GATEHOUSE_GIT_COMMIT").unwrap_or("unknown"),
            },
            config_digest: p.config_digest.to_string(),
            registry_digest: p.registry_digest.to_string(),
            hash_version: p.hash_version,
            tokens: TokensInfo {
                tokenizer: p.tokenizer,
                definition: gatehouse_text::tokens::DEFINITION,
            },
            split: SplitInfo {
                method: "sha256(seed, dataset:group) against ratios; test_only families to test; duplicates are removed, so no cluster spans two splits",
                seed: p.config.seed,
                ratios: p.config.ratios,
                counts: p.split_counts.clone(),
            },
            dedup: p.dedup,
            blocklist: p.blocklist,
            inputs: p.inputs,
            excluded_datasets: p.excluded,
            contents,
            artefacts: p.artefacts,
            verdicts: [("build".to_string(), p.build_verdict)]
                .into_iter()
                .collect(),
            signoff: None,
        }
    }
}
