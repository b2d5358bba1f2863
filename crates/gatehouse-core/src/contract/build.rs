//! What the build states about a release, in the manifest and the build report: records and
//! tokens, shards, exclusions, how duplicates were removed, and the reviewers' blocklists it
//! honoured (the blocklist files themselves are written by the QA signoff).

use std::collections::BTreeMap;

use gatehouse_text::dedup::NearDupParams;
use serde::{Deserialize, Serialize};

use crate::contract::split::Split;
use crate::report::Verdict;

/// Records and their tokens, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub records: u64,
    pub tokens: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.records += other.records;
        self.tokens += other.tokens;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    pub dataset: String,
    pub reason: String,
}

/// One finished shard, as listed in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub key: String,
    pub bytes: u64,
    pub records: u64,
    pub sha256: String,
}

/// Counts of one family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyDedup {
    /// Records that reached deduplication (after PII policy and quarantine).
    pub records: u64,
    pub exact_removed: u64,
    pub near_removed: u64,
    /// Kept records with at least one duplicate removed in their favour.
    pub representatives: u64,
}

/// The dedup section of the build report and manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupSummary {
    pub version: String,
    pub exact: bool,
    pub near: bool,
    pub near_params: NearDupParams,
    pub shingle_system: bool,
    pub boilerplate_phrases: usize,
    /// Families in keep order.
    pub keep_order: Vec<String>,
    pub records: u64,
    pub exact_removed: u64,
    pub near_removed: u64,
    /// Candidate pairs (a representative and a record sharing a bucket) considered.
    pub candidates: u64,
    /// Candidates whose signature estimate was under `estimate_floor`: not near.
    pub candidates_below_estimate: u64,
    /// Candidates whose exact Jaccard index was computed.
    pub candidates_verified: u64,
    /// The largest LSH bucket (records sharing one band key).
    pub largest_bucket: u64,
    /// Buckets over `max_bucket`, not used for candidates, and the records in them
    /// (counted once per bucket).
    pub oversized_buckets: u64,
    pub oversized_bucket_records: u64,
    pub per_family: BTreeMap<String, FamilyDedup>,
    /// Where every removed record is listed with the record kept in its place.
    pub removed_list: String,
}

/// A blocklist file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlocklistFile {
    pub release_version: String,
    pub release_digest: String,
    pub records: Vec<BlockedRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedRecord {
    pub record_id: String,
    pub sample_id: String,
    pub reviewer: String,
    pub flag: String,
}

/// A blocklist the build read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistSource {
    pub key: String,
    pub sha256: String,
    pub records: u64,
}

/// In the manifest and build report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlocklistSummary {
    pub sources: Vec<BlocklistSource>,
    /// Distinct record ids listed.
    pub records_listed: u64,
    /// Records this build left out because they were listed.
    pub records_removed: u64,
}

/// Where one source object stands after the build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectReport {
    pub key: String,
    pub dataset: String,
    pub bytes: u64,
    pub sha256: String,
    /// Records read: exported + quarantined (+ removed by policy, none yet).
    pub read: u64,
    pub exported: u64,
    /// Tokens of the exported records (tokenizer in the report's config).
    pub tokens: u64,
    pub quarantined: BTreeMap<String, u64>,
    /// Held for review plus blocked by reviewers.
    pub removed_by_policy: u64,
    /// Records left out because a reviewer flagged them (the blocklist).
    pub blocked_by_reviewers: u64,
    /// Exported records removed as exact or near duplicates of another record.
    pub duplicates_removed: u64,
    /// Records the PII policy held back for human review (ids; their text is not exported).
    pub held_for_review: Vec<String>,
    pub merged_turns: u64,
    pub blank_turns_dropped: u64,
    pub quarantine_rate: f64,
    /// The object could not be read to its end.
    pub incomplete: bool,
    pub verdict: Verdict,
}

/// `build_report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildReport<C> {
    pub schema_version: u32,
    pub generated_by: String,
    pub release_version: String,
    pub verdict: Verdict,
    pub records_read: u64,
    pub records_exported: u64,
    pub records_quarantined: u64,
    pub records_removed_by_policy: u64,
    pub records_removed_as_duplicates: u64,
    pub tokens_exported: u64,
    pub split_counts: BTreeMap<Split, u64>,
    pub objects: Vec<ObjectReport>,
    pub excluded_datasets: Vec<Exclusion>,
    pub dedup: DedupSummary,
    /// Reviewers' blocklists read and records they removed.
    pub blocklist: BlocklistSummary,
    /// The PII policy the records were redacted under, and what it withheld.
    pub privacy: BuildPrivacy,
    /// `[build]` as resolved (the build stage's `BuildConfig`).
    pub config: C,
}

/// `privacy` in `build_report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPrivacy {
    /// `[privacy]` `dates` and `disabled`: what the detector looked for.
    pub policy: gatehouse_text::pii::Policy,
    /// Records quarantined because their redaction did not settle (Q014, in
    /// `quarantine.jsonl`; counted in `records_quarantined`).
    pub records_unsettled: u64,
}
