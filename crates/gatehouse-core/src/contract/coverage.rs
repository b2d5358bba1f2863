//! The coverage report (`coverage.json`): which families and datasets the source store
//! holds, what no dataset claims, and the `[coverage]` settings it was made with.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::contract::split::Holdout;
use crate::contract::store::StoreDescription;
use crate::report::{Finding, Verdict};
use crate::waiver::WaiverUse;

/// `[coverage]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoverageConfig {
    /// Evidence keys listed per dataset (the first ones in key order).
    pub evidence_keys: usize,
    /// Unmapped keys listed as examples (the first ones in key order).
    pub unmapped_examples: usize,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        Self {
            evidence_keys: 5,
            unmapped_examples: 20,
        }
    }
}

/// Presence of a family in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FamilyStatus {
    /// Every dataset of the family has objects.
    Present,
    /// Some datasets have objects, some none.
    Partial,
    /// No dataset of the family has objects (or it has no datasets).
    Missing,
    /// Missing or partial, and an unexpired waiver covers it.
    Waived,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageReport {
    pub schema_version: u32,
    pub generated_by: String,
    pub store: StoreDescription,
    pub registry_digest: String,
    /// The day waivers were judged against.
    pub as_of: NaiveDate,
    pub verdict: Verdict,
    pub totals: Totals,
    pub families: Vec<FamilyCoverage>,
    pub datasets: Vec<DatasetCoverage>,
    pub unmapped: Unmapped,
    pub findings: Vec<Finding>,
    pub config: CoverageConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Objects listed outside the exports prefix.
    pub objects: u64,
    pub bytes: u64,
    pub mapped_objects: u64,
    pub mapped_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyCoverage {
    pub family: String,
    pub stage: String,
    pub required: bool,
    pub holdout: Holdout,
    pub status: FamilyStatus,
    pub datasets: usize,
    pub datasets_present: usize,
    pub objects: u64,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<WaiverUse>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetCoverage {
    pub dataset: String,
    pub family: String,
    pub stage: String,
    pub format: String,
    pub license_tag: Option<String>,
    pub has_provenance: bool,
    pub objects: u64,
    pub bytes: u64,
    /// The first keys in key order, capped by `coverage.evidence_keys`.
    pub evidence_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmapped {
    pub objects: u64,
    pub bytes: u64,
    /// Counts per folder (first two key segments), largest first.
    pub by_prefix: Vec<PrefixCount>,
    /// The first unmapped keys in key order, capped by `coverage.unmapped_examples`.
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixCount {
    pub prefix: String,
    pub objects: u64,
    pub bytes: u64,
}
