//! The build's `manifest.json` ([`crate::contract::Manifest`]) assembled from what the build
//! did: the release date comes from the version or `SOURCE_DATE_EPOCH`, never the clock.

use std::collections::BTreeMap;

use super::BuildConfig;
pub use crate::contract::manifest::*;
use crate::contract::{Exclusion, ShardInfo, Split, Tally};
use crate::report::Verdict;

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
            release_digest: RELEASE_DIGEST_NOTE.to_string(),
            tool: Tool {
                name: "gatehouse".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                git_commit: option_env!("GATEHOUSE_GIT_COMMIT")
                    .unwrap_or("unknown")
                    .to_string(),
            },
            config_digest: p.config_digest.to_string(),
            registry_digest: p.registry_digest.to_string(),
            hash_version: p.hash_version,
            tokens: TokensInfo {
                tokenizer: p.tokenizer,
                definition: gatehouse_text::tokens::DEFINITION.to_string(),
            },
            split: SplitInfo {
                method: "sha256(seed, dataset:group) against ratios; test_only families to test; duplicates are removed, so no cluster spans two splits".to_string(),
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
