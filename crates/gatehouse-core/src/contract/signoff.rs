//! The QA signoff record (`qa/signoff_record.json`): per review type, the privacy
//! spot-check, exceptions and the blocklist, computed from the stored review files.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A review below its rubric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exception {
    pub sample_id: String,
    pub record_id: String,
    pub review_type: ReviewType,
    pub reviewer: String,
    pub overall: f64,
    /// Criteria under their minimum.
    pub below_minimum: Vec<String>,
}

/// A record a reviewer flagged: the next build leaves it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blocked {
    pub record_id: String,
    pub sample_id: String,
    pub reviewer: String,
    pub flag: String,
}

/// One review type's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeResult {
    pub review_type: ReviewType,
    pub reviewers_required: u32,
    pub samples: u64,
    /// Samples with the required number of distinct reviewers.
    pub samples_complete: u64,
    pub reviews: u64,
    pub reviews_passing: u64,
    pub mean_overall: f64,
    pub complete: bool,
    /// Where two reviewers scored the same sample: pairs, mean absolute difference of the
    /// overall score, and the share of pairs agreeing on pass/fail.
    pub agreement_pairs: u64,
    pub mean_overall_difference: Option<f64>,
    pub pass_fail_agreement: Option<f64>,
}

/// `qa/signoff_record.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signoff {
    pub schema_version: u32,
    pub release_version: String,
    pub release_digest: String,
    /// `approved` only when every review type is complete, no review is below its rubric
    /// and no record is flagged; otherwise `not_approved` with the reasons.
    pub decision: Cow<'static, str>,
    pub reasons: Vec<String>,
    pub reviewers: BTreeMap<String, ReviewType>,
    pub review_files: Vec<String>,
    /// Review files for another digest (made before a rebuild) or by a revoked reviewer:
    /// void, not counted.
    pub void_review_files: Vec<String>,
    /// How every valid review file was made: in the review app, signed by the reviewer's
    /// registered key, or attested by the operator who imported it (and whether it counted).
    pub authentication: Vec<ReviewAuth>,
    pub results: Vec<TypeResult>,
    /// The privacy spot-check: records reviewed, misses, marks by type, the residual
    /// identifier rate and its 95% upper bound.
    pub privacy_spot_check: SpotCheckResult,
    pub exceptions: Vec<Exception>,
    pub blocklist: Vec<Blocked>,
}

/// Who vouches for one review file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewAuth {
    pub reviewer: String,
    pub review_type: ReviewType,
    pub file: String,
    pub method: Authentication,
    /// For attested files: who imported them (`GATEHOUSE_ACTOR` or the login name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Attested files count only with `[qa] count_attested = true`.
    pub counted: bool,
}

/// What a reviewer says an identifier left in the text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    Name,
    Address,
    Phone,
    Email,
    Id,
    Date,
    Other,
}

/// A record of the spot-check in which a reviewer marked an identifier left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Miss {
    pub record_id: String,
    pub sample_id: String,
    pub reviewer: String,
    pub marks: Vec<IdentifierMark>,
}

/// `privacy_spot_check` in `qa/signoff_record.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotCheckResult {
    /// Whether the privacy gate's sample for this manifest is known (the gates ran before the
    /// packets were drawn).
    pub drawn: bool,
    /// Records the gate drew (all of them must be reviewed).
    pub records: u64,
    /// Records at least one counted reviewer reviewed.
    pub records_reviewed: u64,
    /// Records in which some reviewer marked an identifier left.
    pub records_with_miss: u64,
    /// Distinct marks (record, message, start, end, type) by type.
    pub marks_by_type: BTreeMap<IdentifierKind, u64>,
    /// records_with_miss / records_reviewed; absent when nothing was reviewed.
    pub residual_identifier_rate: Option<f64>,
    /// Its one-sided 95% upper bound (see `bound_method`).
    pub residual_identifier_rate_upper_95: Option<f64>,
    pub bound_method: Cow<'static, str>,
    /// Every record reviewed.
    pub complete: bool,
    pub misses: Vec<Miss>,
}

/// An identifier the redaction left, by place: `message` (0-based index into the record's
/// messages) and `start..end` in Unicode code points of that message's content. Never the
/// text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierMark {
    pub message: usize,
    pub start: usize,
    pub end: usize,
    #[serde(rename = "type")]
    pub kind: IdentifierKind,
}

/// How the signoff judged a review file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authentication {
    /// The review app's sign-in (the reviewer's secret link).
    AppSession,
    /// A signature by the reviewer's registered key, verified.
    Signature,
    /// Nobody but the operator vouches for it.
    OperatorAttested,
}

/// Kinds of human review (rubrics are defined in the QA config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewType {
    ClinicianFoundation,
    ClinicianEdge,
    BiasCultural,
    /// Reading the privacy gate's spot-check sample for identifiers the redaction left. Not
    /// a family's review: its packets are the gate's sample (`qa::spot_check`).
    PrivacySpotCheck,
}
