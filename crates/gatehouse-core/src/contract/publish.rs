//! The completion marker (`_PUBLISHED`): the release digest, every evidence file with its
//! sha256, and the audit log's head it anchors.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::gates::CodeCount;
use super::manifest::Tool;
use super::signoff::{Exception, ReviewAuth, ReviewType, SpotCheckResult, TypeResult};
use crate::report::Verdict;
use crate::waiver::WaiverUse;

/// `_PUBLISHED`: the completion marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub schema_version: u32,
    pub release_version: String,
    pub release_digest: String,
    pub published_at: String,
    pub published_by: String,
    /// Every evidence file with its sha256.
    pub evidence: Vec<Evidence>,
    /// Set when the store does not enforce create-only writes and the operator published
    /// anyway: their reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unenforced_store_override: Option<String>,
    /// The audit log's last line before the marker, so a log cut short is detected
    /// (`gatehouse audit verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<Head>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub key: String,
    pub sha256: String,
}

/// Where the chain stands: the last line written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub log: String,
    pub seq: u64,
    pub sha256: String,
}

// The evidence below was first written as `serde_json::json!` values, whose object keys
// serde_json sorts. These types keep those bytes: their fields are declared in alphabetical
// order, and nested values are written through `sorted` (as a JSON value, keys sorted),
// while readers get the types back.

/// Writes `v` as its JSON value: every object's keys in sorted order.
fn sorted<T: Serialize, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    serde_json::to_value(v)
        .map_err(S::Error::custom)?
        .serialize(s)
}

/// `gates/combined_gate_report.json`: every stage's verdict, every gate's, the human QA
/// gate's, the consumption test's, and the overall verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CombinedGateReport {
    pub gates: Vec<GateVerdict>,
    pub generated_by: String,
    /// The QA gate's decision (`qa::QaGate`, declared by the QA stage).
    pub human_qa: serde_json::Value,
    pub release_digest: String,
    pub release_version: String,
    pub schema_version: u32,
    pub training_consumption: ConsumptionVerdict,
    pub verdict: Verdict,
    /// Stage or gate → verdict.
    pub verdicts: BTreeMap<String, Verdict>,
    #[serde(serialize_with = "sorted")]
    pub waivers: Vec<WaiverUse>,
    pub warnings: Vec<String>,
}

/// One gate in the combined report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    pub blocking: bool,
    /// Finding code → occurrences (and how many a waiver covers).
    #[serde(serialize_with = "sorted")]
    pub counts: BTreeMap<String, CodeCount>,
    pub gate: Cow<'static, str>,
    /// The gate report's key.
    pub report: String,
    pub verdict: Verdict,
}

/// The consumption test in the combined report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumptionVerdict {
    pub report: String,
    pub verdict: Verdict,
}

/// `release_summary.json`: stages, verdict, versions and digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseSummary {
    pub config_digest: String,
    pub generated_by: String,
    pub registry_digest: String,
    pub release_digest: String,
    pub release_version: String,
    pub schema_version: u32,
    /// Every stage of the run (`release` declares the stage records).
    pub stages: serde_json::Value,
    pub tokenizer: String,
    #[serde(serialize_with = "sorted")]
    pub tool: Tool,
    pub verdict: Verdict,
}

/// `release_notes.json`: the release decision record, from the real gate results,
/// exceptions and signoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseNotes {
    pub decision: String,
    pub exclusions: Vec<String>,
    /// Family → dataset → records.
    pub families: BTreeMap<String, BTreeMap<String, u64>>,
    /// The PII policy and the labelled sets' scores (null when the privacy gate did not run).
    pub privacy: serde_json::Value,
    pub release_date: Option<String>,
    pub release_digest: String,
    pub release_version: String,
    pub schema_version: u32,
    pub signoff: NotesSignoff,
    pub training_consumption: NotesConsumption,
    pub unenforced_store_override: Option<String>,
    pub verdicts: BTreeMap<String, Verdict>,
    #[serde(serialize_with = "sorted")]
    pub waivers: Vec<WaiverUse>,
    pub warnings: Vec<String>,
}

/// The signoff in the release notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotesSignoff {
    #[serde(serialize_with = "sorted")]
    pub authentication: Vec<ReviewAuth>,
    pub decision: Cow<'static, str>,
    #[serde(serialize_with = "sorted")]
    pub exceptions: Vec<Exception>,
    #[serde(serialize_with = "sorted")]
    pub privacy_spot_check: SpotCheckResult,
    /// sha256 of the signoff record the QA gate approved (empty if it did not).
    pub record_sha256: String,
    #[serde(serialize_with = "sorted")]
    pub results: Vec<TypeResult>,
    pub reviewers: BTreeMap<String, ReviewType>,
}

/// The consumption test in the release notes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotesConsumption {
    pub batches: u64,
    pub over_max_seq_length: u64,
    pub records: u64,
    pub verdict: Verdict,
}
