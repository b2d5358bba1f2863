//! The gate reports (`gates/*.json`): the part every gate has ([`GateReport`]) with the
//! `[gates]` settings written into each, and each gate's own part (its `detail`, flattened).
//! Strings a gate writes from constants (`gate`, `method`, metric names) are `Cow`: borrowed
//! when written, owned when read back.

use std::borrow::Cow;
use std::collections::BTreeMap;

use gatehouse_text::dedup::NearDupParams;
use gatehouse_text::pii::Policy;
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::report::{Finding, Verdict};
use crate::waiver::WaiverUse;

// The common part of every gate report, and `[gates]` as it is written into each.

/// Finding counts of one code: how many occurrences, how many of them a waiver covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeCount {
    pub found: u64,
    pub waived: u64,
}

/// One gate's verdict, as `gatehouse gates` and `release` print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSummary {
    pub gate: Cow<'static, str>,
    pub verdict: Verdict,
    pub blocking: bool,
    pub report: String,
    /// Finding code → occurrences that still block.
    pub blocking_counts: BTreeMap<String, u64>,
}

/// A gate report: what every gate has, and the gate's own part `D` (flattened in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport<D> {
    pub schema_version: u32,
    pub gate: Cow<'static, str>,
    pub generated_by: String,
    pub release_version: String,
    pub release_digest: String,
    pub verdict: Verdict,
    pub blocking: bool,
    pub method: Cow<'static, str>,
    /// Finding code → occurrences (and how many a waiver covers).
    pub counts: BTreeMap<String, CodeCount>,
    pub findings: Vec<Finding>,
    /// Finding code → the first locators in export order (at most `max_locators`).
    pub locators: BTreeMap<String, Vec<Locator>>,
    /// Every shard as read, against the manifest.
    pub shards: Vec<ShardCheck>,
    #[serde(flatten)]
    pub detail: D,
    pub waivers: Vec<WaiverUse>,
    pub config: GatesConfig,
}

/// `[gates]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatesConfig {
    /// Locators listed per finding code in a report (the first ones in export order); the
    /// counts are always complete.
    pub max_locators: usize,
    /// The privacy gate's sample of records for a human spot-check.
    pub spot_check: SpotCheckConfig,
    /// `[gates.leakage]`: what a cross-split pair outside holdout families does.
    pub leakage: LeakageConfig,
    /// `[gates.distribution]`: expected ranges, regression thresholds, max_seq_length.
    pub distribution: DistributionConfig,
}

/// `[gates.spot_check]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpotCheckConfig {
    /// Share of the exported records drawn (0 to 1).
    pub rate: f64,
    /// At most this many records (the ones with the smallest sample hash).
    pub max: usize,
    pub seed: u64,
}

/// A locator in a report: where, never what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locator {
    /// `shard_key:line`.
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `source_key:line` of the record's origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Index of the message in the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `[start, end)` in chars of the message content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chars: Option<[usize; 2]>,
    /// `[start, end)` in bytes of the message content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<[usize; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Covered by a waiver (code, reason and approver are in the report's waiver list).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waived: bool,
}

/// One shard as read, against the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCheck {
    pub key: String,
    pub records_expected: u64,
    pub records_read: u64,
    pub sha256_expected: String,
    pub sha256_read: Option<String>,
    pub ok: bool,
}

/// `[gates.leakage]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeakageConfig {
    /// Cross-split pairs between families without a holdout policy: `fail` or `warn`.
    pub non_holdout: LeakPolicy,
    /// Candidate pairs the gates verify at most; beyond it they cannot certify, and fail.
    pub max_candidates: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakPolicy {
    #[default]
    Fail,
    Warn,
}

/// `[gates.distribution]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistributionConfig {
    /// The training context length: records with more tokens are counted (and reported).
    pub max_seq_length: u64,
    /// A value this share inside a bound warns: below `low × (1 + margin)` or above
    /// `high × (1 − margin)`.
    pub warning_margin: f64,
    /// Expected ranges per family, over the defaults ([`DistributionConfig::ranges`]):
    /// a family listed here replaces its default ranges (an empty table removes them).
    pub ranges: BTreeMap<String, FamilyRanges>,
    pub regression: RegressionConfig,
}

/// Expected `[low, high]` ranges of one family's per-record statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FamilyRanges {
    pub tokens_mean: Option<[f64; 2]>,
    pub tokens_max: Option<[f64; 2]>,
    pub turns_mean: Option<[f64; 2]>,
    pub turns_max: Option<[f64; 2]>,
}

/// `[gates.distribution.regression]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegressionConfig {
    /// The largest relative change of a mean (tokens, turns) per family × split.
    pub max_relative_change: f64,
    /// The largest population stability index of the token histogram per family × split.
    pub max_psi: f64,
}

// The privacy gate (`gates/pii_detection_report.json`).

/// How the spot-check sample was drawn, and which records it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotCheck {
    pub method: Cow<'static, str>,
    pub seed: u64,
    pub rate: f64,
    pub max: usize,
    pub population: u64,
    pub size: usize,
    /// The sample file: whole exported (already redacted) records, in export order.
    pub key: String,
    /// Ids of the records drawn, in export order.
    pub ids: Vec<String>,
    pub instructions: Cow<'static, str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyMetrics {
    pub records_scanned: u64,
    pub messages_scanned: u64,
    pub content_bytes_scanned: u64,
    pub records_with_detections: u64,
    /// Detections by placeholder label (e.g. `NAME`), waived ones included.
    pub detections_by_type: BTreeMap<Cow<'static, str>, u64>,
    pub unsure_detections: u64,
    /// Records by the `pii_status` the build wrote.
    pub pii_status: BTreeMap<String, u64>,
    /// What the build says it redacted, by placeholder label (from `metadata.redactions`).
    pub build_redactions: BTreeMap<String, u64>,
    /// Lines read from the shards, and their bytes.
    pub lines_read: u64,
    pub bytes_read: u64,
    /// Reading and checking both gates (one shared pass), in seconds.
    pub scan_seconds: f64,
    pub scan_mb_per_second: f64,
}

/// The privacy gate's own part of `gates/pii_detection_report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyDetail {
    /// `[privacy]` `dates` and `disabled`: what the detector looked for (the build's policy).
    pub policy: Policy,
    pub metrics: PrivacyMetrics,
    pub spot_check: SpotCheck,
    /// `[privacy.evaluation]`: the labelled sets measured this run (absent when none is
    /// configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationReport>,
}

/// One labelled set as the privacy gate measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredSet {
    /// The set's key in the store.
    pub key: String,
    /// sha256 of the set as read (absent when it could not be read).
    pub sha256: Option<String>,
    pub scores: Option<SetScores>,
    /// Why it could not be scored (`line N: …`; never its text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Scored, and no minimum fell short.
    pub passed: bool,
}

/// `evaluation` in `gates/pii_detection_report.json`: how well the gate's own detector was
/// measured to work on the configured labelled sets, this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    pub method: Cow<'static, str>,
    pub minimums: Minimums,
    pub sets: Vec<MeasuredSet>,
}

/// A rate as reports show it: hits of total, the share and its 95% Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub hits: u64,
    pub total: u64,
    pub value: Option<f64>,
    /// 95% Wilson score interval `[low, high]`.
    pub wilson_95: Option<[f64; 2]>,
}

/// One labelled set's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetScores {
    pub documents: u64,
    pub characters: u64,
    /// Caught out of labelled, per labelled type.
    pub recall_by_type: BTreeMap<String, Measured>,
    /// Caught out of labelled, over the direct identifiers.
    pub recall_direct: Measured,
    /// True positives out of replaced regions, per placeholder type.
    pub precision_by_type: BTreeMap<String, Measured>,
    pub precision: Measured,
    /// F2 of direct recall and overall precision.
    pub f2_direct: Option<f64>,
    /// Documents whose redaction did not settle (the build would withhold them).
    pub unsettled: u64,
}

/// The minimums a set is held to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Minimums {
    pub min_recall_direct: Option<f64>,
    pub min_precision: Option<f64>,
}

// The provenance gate (`gates/provenance_validation_report.json`).

/// One registry dataset as the provenance gate sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetProvenance {
    pub dataset: String,
    pub family: String,
    pub license_tag: Option<String>,
    pub has_provenance: bool,
    /// Records of it in the export.
    pub records: u64,
    pub status: DatasetStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    Included,
    /// Licensed, but no record of it in the export (no objects, or all quarantined).
    NoRecords,
    /// Excluded for lack of licence or provenance; fails the gate.
    Excluded,
    /// Excluded, and a waiver accepts that.
    ExcludedWaived,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenanceMetrics {
    pub records_checked: u64,
    pub records_by_dataset: BTreeMap<String, u64>,
    pub records_by_licence: BTreeMap<String, u64>,
    pub lines_read: u64,
    pub bytes_read: u64,
}

/// The provenance gate's own part of `gates/provenance_validation_report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenanceDetail {
    pub registry_digest: String,
    pub manifest_registry_digest: String,
    pub datasets: Vec<DatasetProvenance>,
    pub metrics: ProvenanceMetrics,
    pub scan_seconds: f64,
}

// The dedup and leakage gates.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairKind {
    Exact,
    Near,
}

/// Near-duplicate clusters and rates of one family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FamilyDuplicates {
    pub records: u64,
    /// Records equal to an earlier record of the export.
    pub exact_duplicates: u64,
    /// Clusters of near duplicates (a representative and the records similar to it).
    pub near_clusters: u64,
    /// Records in a near cluster besides its representative.
    pub near_duplicates: u64,
    pub near_duplicate_rate: f64,
}

/// The dedup gate's own part of its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DedupDetail {
    pub dedup_version: Cow<'static, str>,
    pub near_params: NearDupParams,
    pub records: u64,
    pub candidates: u64,
    pub candidates_below_estimate: u64,
    pub candidates_verified: u64,
    pub largest_bucket: u64,
    pub per_family: BTreeMap<String, FamilyDuplicates>,
}

/// Pairs of one kind between two splits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPairCount {
    pub splits: String,
    pub exact: u64,
    pub near: u64,
}

/// The leakage gate's certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakageDetail {
    pub certificate: Certificate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub method: Cow<'static, str>,
    pub dedup_version: Cow<'static, str>,
    pub near_params: NearDupParams,
    /// Probability that a pair exactly at the threshold shares a band key (and so is
    /// verified); higher above it.
    pub candidate_probability_at_threshold: f64,
    pub records: u64,
    pub records_without_split: u64,
    /// Candidate pairs (sharing a band key) considered.
    pub candidates: u64,
    /// Candidates whose signature estimate was under `estimate_floor`: not near.
    pub estimate_floor: f64,
    pub candidates_below_estimate: u64,
    /// Candidates whose exact Jaccard index was computed.
    pub candidates_verified: u64,
    pub complete: bool,
    pub pairs: Vec<SplitPairCount>,
    pub holdout_families: Vec<String>,
    pub non_holdout_policy: LeakPolicy,
}

// The distribution gate.

/// Summary statistics of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub mean: f64,
    pub stdev: f64,
    pub min: u64,
    pub p5: u64,
    pub p25: u64,
    pub p50: u64,
    pub p75: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
    pub histogram: Histogram,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<u64>,
    pub counts: Vec<u64>,
}

/// One role's share of the turns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleShare {
    pub turns: u64,
    pub share: f64,
}

/// Statistics of one group of records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub family: String,
    /// `train`, `val`, `test`, `all`, or `(none)` for records without a split.
    pub split: String,
    pub stage: String,
    pub records: u64,
    pub tokens: Stats,
    pub turns: Stats,
    pub chars: Stats,
    pub message_tokens: Stats,
    pub message_chars: Stats,
    pub roles: BTreeMap<String, RoleShare>,
    pub over_max_seq_length: u64,
    pub over_max_seq_length_share: f64,
}

/// One expected-range check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeCheck {
    pub family: String,
    pub metric: Cow<'static, str>,
    pub value: f64,
    pub range: [f64; 2],
    /// `ok`, `near_bound` or `out_of_range`.
    pub status: Cow<'static, str>,
}

/// One regression check against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionCheck {
    pub family: String,
    pub split: String,
    pub metric: Cow<'static, str>,
    pub baseline: f64,
    pub current: f64,
    pub value: f64,
    pub threshold: f64,
    pub regressed: bool,
}

/// The release compared against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub release_version: String,
    pub release_digest: Option<String>,
    pub report: String,
}

/// The distribution gate's own part of its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistributionDetail {
    pub tokenizer: String,
    pub tokens_definition: Cow<'static, str>,
    pub max_seq_length: u64,
    /// Per family × split, then per family over all splits (`split: all`).
    pub groups: Vec<GroupStats>,
    /// Per stage over all families and splits.
    pub stages: Vec<GroupStats>,
    pub range_checks: Vec<RangeCheck>,
    /// `null` for the first release: there is nothing published to compare with.
    pub baseline: Option<Baseline>,
    pub regression_checks: Vec<RegressionCheck>,
    /// The ranges in force (defaults with the configured families over them).
    pub ranges: BTreeMap<String, FamilyRanges>,
}

// Each gate's report.

/// `gates/distribution_report.json`.
pub type DistributionReport = GateReport<DistributionDetail>;

/// `gates/deduplication_report.json`.
pub type DedupReport = GateReport<DedupDetail>;

/// `gates/cross_split_leakage_report.json`.
pub type LeakageReport = GateReport<LeakageDetail>;

/// `gates/pii_detection_report.json`.
pub type PrivacyReport = GateReport<PrivacyDetail>;

/// `gates/provenance_validation_report.json`.
pub type ProvenanceReport = GateReport<ProvenanceDetail>;

impl<D> GateReport<D> {
    /// The same report with its gate's own part replaced by `f(detail)`.
    pub fn map_detail<E>(self, f: impl FnOnce(D) -> E) -> GateReport<E> {
        GateReport {
            schema_version: self.schema_version,
            gate: self.gate,
            generated_by: self.generated_by,
            release_version: self.release_version,
            release_digest: self.release_digest,
            verdict: self.verdict,
            blocking: self.blocking,
            method: self.method,
            counts: self.counts,
            findings: self.findings,
            locators: self.locators,
            shards: self.shards,
            detail: f(self.detail),
            waivers: self.waivers,
            config: self.config,
        }
    }
}

/// A gate report read with its own type (`file` is its name in the release folder, e.g.
/// `gates/pii_detection_report.json`), so every field is checked; its gate's own part is
/// then kept as JSON, for readers that show every gate alike.
pub fn read_gate_report(
    file: &str,
    bytes: &[u8],
) -> Result<GateReport<serde_json::Value>, serde_json::Error> {
    fn read<D: serde::de::DeserializeOwned + Serialize>(
        bytes: &[u8],
    ) -> Result<GateReport<serde_json::Value>, serde_json::Error> {
        let report: GateReport<D> = serde_json::from_slice(bytes)?;
        let detail = serde_json::to_value(&report.detail)?;
        Ok(report.map_detail(|_| detail))
    }
    match file {
        f if f == layout::PII_REPORT.name() => read::<PrivacyDetail>(bytes),
        f if f == layout::PROVENANCE_REPORT.name() => read::<ProvenanceDetail>(bytes),
        f if f == layout::DEDUP_REPORT.name() => read::<DedupDetail>(bytes),
        f if f == layout::LEAKAGE_REPORT.name() => read::<LeakageDetail>(bytes),
        f if f == layout::DISTRIBUTION_REPORT.name() => read::<DistributionDetail>(bytes),
        other => Err(serde::de::Error::custom(format!(
            "{other} is not a gate report"
        ))),
    }
}
