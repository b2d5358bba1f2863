//! The training-consumption report (`tests/training_consumption_test.json`): the release
//! opened as a trainer would, its shards verified, splits counted, routing checked and
//! batches planned.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::split::Split;
use crate::report::{Registered, Severity, Verdict};

/// A finding of the consumption test: a stable code, and locators (never text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumeFinding {
    #[serde(deserialize_with = "crate::report::registered_id")]
    pub code: Registered,
    #[serde(deserialize_with = "crate::report::registered_name")]
    pub name: Registered,
    pub severity: Severity,
    pub message: String,
    /// `shard:line` locators and ids, capped at `max_locators`.
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardResult {
    pub key: String,
    pub split: Split,
    pub records: u64,
    pub bytes: u64,
    /// sha256 and record count as the manifest says.
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitResult {
    pub split: Split,
    pub records: u64,
    pub tokens: u64,
    pub over_max_seq_length: u64,
    pub max_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingCheck {
    pub families_in_routing: Vec<String>,
    pub families_in_manifest: Vec<String>,
    pub weights_sum: f64,
    pub consistent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub seconds: f64,
    pub records_per_second: f64,
    pub megabytes_per_second: f64,
    pub tokens_per_second: f64,
}

/// `tests/training_consumption_test.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumeReport {
    pub schema_version: u32,
    pub generated_by: String,
    pub release_version: String,
    pub release_digest: String,
    /// What the digest was verified against.
    pub digest_bound_by: Binding,
    pub verdict: Verdict,
    pub tokenizer: String,
    pub chat_template: String,
    pub max_seq_length: u64,
    pub shards: Vec<ShardResult>,
    /// Parquet twins checked (sha256 and row count); problems are CON010 findings.
    pub parquet_files_verified: u64,
    pub splits: Vec<SplitResult>,
    pub routing: RoutingCheck,
    pub batches: BatchPlan,
    pub throughput: Throughput,
    pub findings: Vec<ConsumeFinding>,
}

/// What binds the manifest's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// The publication marker names it.
    Published,
    /// A draft whose QA signoff names it.
    Signoff,
    /// A draft nothing binds yet (tests of a draft before signoff).
    Unbound,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageBatches {
    pub stage: String,
    pub order: u32,
    pub records: u64,
    pub batches: u64,
    pub tokens: u64,
    pub mean_batch_tokens: f64,
    pub max_batch_tokens: u64,
    /// Records per family in this stage.
    pub families: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPlan {
    pub batch_size: usize,
    pub batches: u64,
    pub stages: Vec<StageBatches>,
    /// sha256 over the record ids in batch order: equal plans have equal digests.
    pub order_sha256: String,
    /// Training records whose family is in no stage of the routing config.
    pub unrouted_records: u64,
}
