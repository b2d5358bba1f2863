//! Human QA: review packets drawn from a built release, the rubrics reviewers score them
//! with, and (later) reviews and the signoff bound to the release digest.
//!
//! `sample` draws, per family × split, a seeded sample of whole exported (already redacted)
//! records: a record's sample hash is the first 8 bytes of
//! sha256(`gatehouse-qa-sample-v1\0` seed `\0` record id), and a group keeps the records with
//! the smallest hashes, so the draw is stable and anyone can redraw it. The size of a group's
//! sample is `rate × population`, rounded up, kept within `[min, max]` (and never more than
//! the population). Each sampled record is assigned the review types its family needs (the
//! registry's `review`), gets a stable sample id and, when it deals with crisis or self-harm,
//! a content warning. Writes `qa/qa_samples.json` and `qa/review_template.json`, both bound
//! to the release digest.
//!
//! When the gates have run on this manifest, the privacy gate's spot-check sample becomes
//! packets of review type `privacy_spot_check` ([`spot_check`]): the ids from its report, the
//! records from the shards.

pub mod proof;
pub mod reviewers;
pub mod signoff;
pub mod spot_check;

use std::collections::BTreeMap;
use std::io::BufReader;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::digest::sha256;
use crate::registry::{Registry, ReviewType};
use crate::report::generated_by;
use crate::store::{Line, LineReader, Store, StoreError};

/// QA file schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// `[qa]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QaConfig {
    pub sample: SampleRule,
    /// Rubric per review type; the defaults are the clinical team's.
    pub rubrics: BTreeMap<ReviewType, Rubric>,
    /// Days an invitation (its sign-in link) stays valid; default
    /// [`reviewers::DEFAULT_INVITATION_DAYS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invitation_days: Option<u32>,
    /// Whether operator-attested reviews (imported without the reviewer's signature) count
    /// towards the signoff; default false: only the review app's and signed imports do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_attested: Option<bool>,
}

/// How many records each family × split group contributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleRule {
    pub rate: f64,
    pub min: u64,
    pub max: u64,
    pub seed: u64,
}

impl Default for SampleRule {
    fn default() -> Self {
        Self {
            rate: 0.02,
            min: 5,
            max: 50,
            seed: 1,
        }
    }
}

impl SampleRule {
    /// The sample size of a group of `population` records.
    pub fn size(&self, population: u64) -> u64 {
        let wanted = (self.rate * population as f64).ceil() as u64;
        wanted
            .clamp(self.min, self.max.max(self.min))
            .min(population)
    }
}

/// A review type's rubric: criteria on a 1–10 scale with weights and minimums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    /// Reviewers each sampled record needs.
    pub reviewers: u32,
    /// The weighted overall score a review must reach.
    pub pass_overall: f64,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub name: String,
    pub weight: f64,
    pub minimum: f64,
}

fn rubric(reviewers: u32, criteria: &[(&str, f64, f64)]) -> Rubric {
    Rubric {
        reviewers,
        pass_overall: 7.0,
        criteria: criteria
            .iter()
            .map(|(name, weight, minimum)| Criterion {
                name: (*name).to_string(),
                weight: *weight,
                minimum: *minimum,
            })
            .collect(),
    }
}

impl Default for QaConfig {
    fn default() -> Self {
        let rubrics = [
            (
                ReviewType::ClinicianFoundation,
                rubric(
                    2,
                    &[
                        ("therapeutic_accuracy", 0.30, 7.0),
                        ("clinical_appropriateness", 0.25, 8.0),
                        ("empathy_warmth", 0.20, 6.0),
                        ("boundary_maintenance", 0.15, 7.0),
                        ("cultural_sensitivity", 0.10, 6.0),
                    ],
                ),
            ),
            (
                ReviewType::ClinicianEdge,
                rubric(
                    2,
                    &[
                        ("crisis_handling", 0.40, 8.0),
                        ("safety_prioritization", 0.30, 9.0),
                        ("de_escalation", 0.20, 7.0),
                        ("resource_referral", 0.10, 8.0),
                    ],
                ),
            ),
            (
                ReviewType::BiasCultural,
                rubric(
                    1,
                    &[
                        ("demographic_bias", 0.30, 8.0),
                        ("cultural_competency", 0.25, 7.0),
                        ("inclusive_language", 0.20, 8.0),
                        ("stereotype_avoidance", 0.15, 8.0),
                        ("accessibility_awareness", 0.10, 6.0),
                    ],
                ),
            ),
        ]
        .into_iter()
        .collect();
        Self {
            sample: SampleRule::default(),
            rubrics,
            invitation_days: None,
            count_attested: None,
        }
    }
}

impl QaConfig {
    pub fn problem(&self) -> Option<String> {
        let s = &self.sample;
        if !(0.0..=1.0).contains(&s.rate) || s.max < s.min {
            return Some("qa.sample: rate must be in [0, 1] and max >= min".into());
        }
        for (t, r) in &self.rubrics {
            if *t == ReviewType::PrivacySpotCheck {
                return Some(
                    "qa.rubrics.privacy_spot_check: the privacy spot-check has no rubric (reviewers mark the identifiers left); remove the table".into(),
                );
            }
            let total: f64 = r.criteria.iter().map(|c| c.weight).sum();
            if r.criteria.is_empty() || (total - 1.0).abs() > 1e-6 {
                return Some(format!(
                    "qa.rubrics.{}: criteria weights must sum to 1 (they sum to {total})",
                    t.as_str()
                ));
            }
            if r.reviewers == 0
                || r.criteria
                    .iter()
                    .any(|c| !(1.0..=10.0).contains(&c.minimum))
            {
                return Some(format!(
                    "qa.rubrics.{}: at least one reviewer; minimums on the 1–10 scale",
                    t.as_str()
                ));
            }
        }
        None
    }
}

#[derive(Debug, Error)]
pub enum QaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: no manifest; this release has not been built")]
    NotBuilt { key: String },
    #[error("{key}: not a gatehouse manifest")]
    BadManifest { key: String },
    #[error("{at}: not an export record")]
    BadRecord { at: String },
    #[error("reading {key} failed")]
    Read {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid [qa] configuration: {0}")]
    Config(String),
    #[error("the reviews cannot be used: {0}")]
    BadReviews(String),
    #[error("{key}: the review packets are for release {packets}, the release now is {current}")]
    StalePackets {
        key: String,
        packets: String,
        current: String,
    },
    #[error("{key}: no review packets; run `gatehouse qa sample` first")]
    NoPackets { key: String },
    #[error("cannot serialise {0}")]
    Serialise(&'static str, #[source] serde_json::Error),
    #[error("{key}: {missing} record(s) of the privacy spot-check sample are not in the export")]
    SpotCheckMismatch { key: String, missing: usize },
}

impl QaError {
    pub fn hint(&self) -> Option<String> {
        match self {
            QaError::Store(e) => e.hint(),
            QaError::NotBuilt { .. } => Some(
                "run `gatehouse build --release-version …` (or `gatehouse release`) first".into(),
            ),
            QaError::Config(_) => Some("fix [qa] in gatehouse.toml (see README.md)".into()),
            QaError::BadReviews(_) => Some(
                "fix the review file (see qa/review_template.json for its shape) and import it again"
                    .into(),
            ),
            QaError::SpotCheckMismatch { .. } => Some(
                "the gates' reports are not of this export: run `gatehouse gates`, then `gatehouse qa sample`"
                    .into(),
            ),
            QaError::StalePackets { .. } | QaError::NoPackets { .. } => Some(
                "the manifest changed since the packets were drawn: run `gatehouse qa sample` and review again"
                    .into(),
            ),
            _ => Some("rebuild the release".into()),
        }
    }
}

/// The part of the manifest the sample needs.
#[derive(Debug, Deserialize)]
struct Manifest {
    release_version: String,
    contents: Vec<ManifestSplit>,
}

#[derive(Debug, Deserialize)]
struct ManifestSplit {
    split: String,
    families: BTreeMap<String, ManifestTally>,
    shards: Vec<ManifestShard>,
}

#[derive(Debug, Deserialize)]
struct ManifestTally {
    records: u64,
}

#[derive(Debug, Deserialize)]
struct ManifestShard {
    key: String,
}

/// One group's population and sample size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupPlan {
    pub family: String,
    pub split: String,
    pub population: u64,
    pub size: u64,
    pub review_types: Vec<ReviewType>,
}

/// One sampled record.
#[derive(Debug, Clone, Serialize)]
pub struct SampleItem {
    pub sample_id: String,
    pub record_id: String,
    pub family: String,
    pub split: String,
    /// `shard:line` in the export.
    pub at: String,
    pub review_types: Vec<ReviewType>,
    /// Shown before the conversation, when it deals with crisis or self-harm.
    pub content_warning: Option<String>,
    /// The whole exported (redacted) record.
    pub record: Box<serde_json::value::RawValue>,
}

/// `qa/qa_samples.json`.
#[derive(Debug, Clone, Serialize)]
pub struct QaSamples {
    pub schema_version: u32,
    pub generated_by: String,
    pub release_version: String,
    pub release_digest: String,
    pub method: &'static str,
    pub rule: SampleRule,
    pub groups: Vec<GroupPlan>,
    /// Review types that cover no sampled record (each must cover one).
    pub review_types_without_samples: Vec<ReviewType>,
    /// The privacy gate's spot-check sample these packets include (review type
    /// `privacy_spot_check`); null when the gates had not run on this manifest.
    pub privacy_spot_check: Option<spot_check::SpotCheckDraw>,
    pub samples: Vec<SampleItem>,
}

/// One blank review in `qa/review_template.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewSlot {
    pub sample_id: String,
    pub review_type: ReviewType,
    /// Criterion → score (1–10), to fill in.
    pub scores: BTreeMap<String, Option<f64>>,
    pub comment: String,
    /// `remove` or `escalate`, with a reason, when the record must not stay.
    pub flag: Option<String>,
    /// `privacy_spot_check` slots only: `identifiers_left`, null to fill in.
    #[serde(flatten)]
    pub spot_check: Option<SpotCheckSlot>,
}

/// The part of a blank review only the privacy spot-check has.
#[derive(Debug, Clone, Serialize)]
pub struct SpotCheckSlot {
    /// The identifiers left (`{message, start, end, type}`), or [] for none.
    pub identifiers_left: Option<Vec<spot_check::IdentifierMark>>,
}

/// `qa/review_template.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewTemplate {
    pub schema_version: u32,
    pub release_version: String,
    pub release_digest: String,
    pub rubrics: BTreeMap<ReviewType, Rubric>,
    pub reviews: Vec<ReviewSlot>,
}

const CRISIS_TERMS: &[&str] = &[
    "suicid",
    "kill myself",
    "end my life",
    "self-harm",
    "self harm",
    "hurt myself",
    "hurting myself",
    "cutting myself",
    "overdose",
    "want to die",
    "988",
    "741741",
    "crisis line",
    "crisis text line",
    "abuse",
    "assault",
];

/// A content warning for a record dealing with crisis or self-harm (by family or text).
fn content_warning(family: &str, record: &serde_json::Value) -> Option<String> {
    let text_hits = record["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .any(|c| {
            let lower = c.to_lowercase();
            CRISIS_TERMS.iter().any(|t| lower.contains(t))
        });
    (family == "edge_cases" || text_hits).then(|| {
        "Content warning: this conversation may discuss suicide, self-harm, abuse or other crisis material.".to_string()
    })
}

fn sample_hash(seed: u64, id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(b"gatehouse-qa-sample-v1\0");
    h.update(seed.to_string().as_bytes());
    h.update(b"\0");
    h.update(id.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// What `sample` wrote.
#[derive(Debug, Clone)]
pub struct SampleOutcome {
    pub samples: QaSamples,
    pub written: Vec<String>,
}

/// Draws the review packets for the release at `location` and writes them; see the module
/// docs.
pub fn sample(
    store: &Store,
    registry: &Registry,
    location: &str,
    config: &QaConfig,
    max_line: usize,
) -> Result<SampleOutcome, QaError> {
    let (qa, template) = draw(store, registry, location, config, max_line)?;
    let mut written = Vec::new();
    // The packets last: their presence is what says the QA draw is complete, so a run cut
    // short between these writes draws again.
    for (name, bytes) in [
        (
            "qa/review_template.json",
            json("the review template", &template)?,
        ),
        ("qa/review_template.csv", template_csv(&template, config)?),
        ("qa/qa_samples.json", json("the QA samples", &qa)?),
    ] {
        let key = format!("{location}{name}");
        store.put(&key, bytes)?;
        written.push(key);
    }
    Ok(SampleOutcome {
        samples: qa,
        written,
    })
}

/// Draws the packets (reading the manifest and every shard) without writing anything.
fn draw(
    store: &Store,
    registry: &Registry,
    location: &str,
    config: &QaConfig,
    max_line: usize,
) -> Result<(QaSamples, ReviewTemplate), QaError> {
    if let Some(p) = config.problem() {
        return Err(QaError::Config(p));
    }
    let manifest_key = format!("{location}manifest.json");
    let bytes = match store.get_bytes(&manifest_key) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Err(QaError::NotBuilt { key: manifest_key }),
        Err(e) => return Err(e.into()),
    };
    let digest = sha256(&bytes);
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|_| QaError::BadManifest {
        key: manifest_key.clone(),
    })?;
    let review_of = |family: &str| {
        registry
            .families
            .get(family)
            .map(|f| f.review.clone())
            .unwrap_or_default()
    };

    // Every review type a family needs must have a rubric, or its samples would go unreviewed.
    for c in &manifest.contents {
        for family in c.families.keys() {
            if let Some(t) = review_of(family)
                .into_iter()
                .find(|t| !config.rubrics.contains_key(t))
            {
                return Err(QaError::Config(format!(
                    "family {family} needs {} review, which has no rubric in [qa.rubrics] (a [qa.rubrics] table replaces the defaults: give every review type)",
                    t.as_str()
                )));
            }
        }
    }

    // Plans per family × split, from the manifest's counts.
    let mut plans: BTreeMap<(String, String), GroupPlan> = BTreeMap::new();
    for c in &manifest.contents {
        for (family, t) in &c.families {
            plans.insert(
                (family.clone(), c.split.clone()),
                GroupPlan {
                    family: family.clone(),
                    split: c.split.clone(),
                    population: t.records,
                    size: config.sample.size(t.records),
                    review_types: review_of(family),
                },
            );
        }
    }

    // The privacy gate's spot-check sample of this manifest, when the gates have run.
    let gate_sample = spot_check::gate_sample(store, location, &digest)?;
    let wanted_spot: BTreeMap<&str, usize> = gate_sample
        .iter()
        .flat_map(|g| g.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)))
        .collect();
    let mut spot_items: BTreeMap<usize, SampleItem> = BTreeMap::new();

    // One pass over the shards: each group keeps its smallest sample hashes.
    let mut kept: BTreeMap<(String, String), BTreeMap<u64, SampleItem>> = BTreeMap::new();
    for c in &manifest.contents {
        for shard in &c.shards {
            let reader = store.open_read(&shard.key)?;
            let mut lines = LineReader::new(BufReader::with_capacity(1 << 20, reader), max_line);
            while let Some(line) = lines.next_line().map_err(|source| QaError::Read {
                key: shard.key.clone(),
                source,
            })? {
                let (number, raw) = match line {
                    Line::Text { number, bytes } => (number, bytes),
                    Line::Oversized { number, .. } => {
                        return Err(QaError::BadRecord {
                            at: format!("{}:{number}", shard.key),
                        });
                    }
                };
                let at = format!("{}:{number}", shard.key);
                let value: serde_json::Value = serde_json::from_slice(raw)
                    .map_err(|_| QaError::BadRecord { at: at.clone() })?;
                let (Some(id), Some(family)) = (
                    value["id"].as_str(),
                    value["metadata"]["source_family"].as_str(),
                ) else {
                    return Err(QaError::BadRecord { at });
                };
                let group = (family.to_string(), c.split.clone());
                let Some(plan) = plans.get(&group) else {
                    return Err(QaError::BadRecord { at });
                };
                if let Some(&i) = wanted_spot.get(id) {
                    let record = raw_record(raw, &at)?;
                    spot_items.insert(
                        i,
                        SampleItem {
                            sample_id: spot_check::sample_id(id),
                            record_id: id.to_string(),
                            family: family.to_string(),
                            split: c.split.clone(),
                            at: at.clone(),
                            review_types: vec![ReviewType::PrivacySpotCheck],
                            content_warning: content_warning(family, &value),
                            record,
                        },
                    );
                }
                let hash = sample_hash(config.sample.seed, id);
                let slot = kept.entry(group.clone()).or_default();
                let wanted = plan.size as usize;
                if slot.len() >= wanted && slot.last_key_value().is_none_or(|(k, _)| hash >= *k) {
                    continue;
                }
                let record = raw_record(raw, &at)?;
                slot.insert(
                    hash,
                    SampleItem {
                        sample_id: format!("qa-{hash:016x}"),
                        record_id: id.to_string(),
                        family: family.to_string(),
                        split: c.split.clone(),
                        at,
                        review_types: plan.review_types.clone(),
                        content_warning: content_warning(family, &value),
                        record,
                    },
                );
                if slot.len() > wanted {
                    slot.pop_last();
                }
            }
        }
    }

    if spot_items.len() != wanted_spot.len() {
        return Err(QaError::SpotCheckMismatch {
            key: format!("{location}gates/pii_detection_report.json"),
            missing: wanted_spot.len() - spot_items.len(),
        });
    }
    let mut samples: Vec<SampleItem> = kept.into_values().flat_map(BTreeMap::into_values).collect();
    // The spot-check's records last, in export order.
    samples.extend(spot_items.into_values());
    let review_types_without_samples = config
        .rubrics
        .keys()
        .filter(|t| !samples.iter().any(|s| s.review_types.contains(t)))
        .copied()
        .collect();
    let qa = QaSamples {
        schema_version: SCHEMA_VERSION,
        generated_by: generated_by(),
        release_version: manifest.release_version.clone(),
        release_digest: digest.clone(),
        method: "per family × split, the records with the smallest first 8 bytes of sha256(\"gatehouse-qa-sample-v1\\0\" seed \"\\0\" record id); size = ceil(rate × population) within [min, max]",
        rule: config.sample.clone(),
        groups: plans.into_values().collect(),
        review_types_without_samples,
        privacy_spot_check: gate_sample.map(|g| g.draw),
        samples,
    };
    let template = ReviewTemplate {
        schema_version: SCHEMA_VERSION,
        release_version: manifest.release_version,
        release_digest: digest,
        rubrics: config.rubrics.clone(),
        reviews: qa
            .samples
            .iter()
            .flat_map(|s| {
                s.review_types.iter().filter_map(|t| {
                    if *t == ReviewType::PrivacySpotCheck {
                        return Some(ReviewSlot {
                            sample_id: s.sample_id.clone(),
                            review_type: *t,
                            scores: BTreeMap::new(),
                            comment: String::new(),
                            flag: None,
                            spot_check: Some(SpotCheckSlot {
                                identifiers_left: None,
                            }),
                        });
                    }
                    let rubric = config.rubrics.get(t)?;
                    Some(ReviewSlot {
                        sample_id: s.sample_id.clone(),
                        review_type: *t,
                        scores: rubric
                            .criteria
                            .iter()
                            .map(|c| (c.name.clone(), None))
                            .collect(),
                        comment: String::new(),
                        flag: None,
                        spot_check: None,
                    })
                })
            })
            .collect(),
    };
    Ok((qa, template))
}

/// A shard line as the record a packet shows.
fn raw_record(raw: &[u8], at: &str) -> Result<Box<serde_json::value::RawValue>, QaError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| QaError::BadRecord { at: at.to_string() })?
        .to_string();
    serde_json::value::RawValue::from_string(text)
        .map_err(|_| QaError::BadRecord { at: at.to_string() })
}

/// `qa/review_template.csv`: the template as one row per review to fill in, for teams
/// that review in a spreadsheet (read back by [`reviews_from_csv`]).
fn template_csv(template: &ReviewTemplate, config: &QaConfig) -> Result<Vec<u8>, QaError> {
    let mut criteria: Vec<&str> = Vec::new();
    for r in config.rubrics.values() {
        for c in &r.criteria {
            if !criteria.contains(&c.name.as_str()) {
                criteria.push(&c.name);
            }
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| QaError::Config(format!("cannot write the CSV template: {e}"));
    let mut header = vec!["release_digest", "reviewer", "review_type", "sample_id"];
    header.extend(&criteria);
    header.extend(["comment", "flag", "identifiers_left"]);
    w.write_record(&header).map_err(err)?;
    for slot in &template.reviews {
        let mut row = vec![
            template.release_digest.as_str(),
            "",
            slot.review_type.as_str(),
            slot.sample_id.as_str(),
        ];
        row.extend(criteria.iter().map(|_| ""));
        row.extend(["", "", ""]);
        w.write_record(&row).map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| QaError::Config(format!("cannot write the CSV template: {e}")))
}

pub(crate) fn json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, QaError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| QaError::Serialise(what, e))?;
    b.push(b'\n');
    Ok(b)
}

/// The facts of each sample, by sample id.
type Facts = BTreeMap<String, signoff::SampleFacts>;

/// Version, digest and the facts of each sample.
type PacketFacts = (String, String, Facts);

/// The packets of the release at `location`: version, digest and the facts of each sample.
/// Fails when the packets were drawn from another manifest (a rebuild voids them).
pub fn packets(store: &Store, location: &str) -> Result<PacketFacts, QaError> {
    packets_and_spot_check(store, location).map(|(p, _)| p)
}

/// [`packets`], and the privacy spot-check they include (`None`: the gates had not run).
pub fn packets_and_spot_check(
    store: &Store,
    location: &str,
) -> Result<(PacketFacts, Option<spot_check::SpotCheckDraw>), QaError> {
    #[derive(Deserialize)]
    struct Packets {
        release_version: String,
        release_digest: String,
        #[serde(default)]
        privacy_spot_check: Option<spot_check::SpotCheckDraw>,
        samples: Vec<PacketSample>,
    }
    #[derive(Deserialize)]
    struct PacketSample {
        sample_id: String,
        record_id: String,
        review_types: Vec<ReviewType>,
        record: PacketRecord,
    }
    #[derive(Deserialize)]
    struct PacketRecord {
        #[serde(default)]
        messages: Vec<PacketMessage>,
    }
    #[derive(Deserialize)]
    struct PacketMessage {
        #[serde(default)]
        content: String,
    }
    let manifest_key = format!("{location}manifest.json");
    let current = match store.get_bytes(&manifest_key) {
        Ok(b) => sha256(&b),
        Err(StoreError::NotFound { .. }) => return Err(QaError::NotBuilt { key: manifest_key }),
        Err(e) => return Err(e.into()),
    };
    let key = format!("{location}qa/qa_samples.json");
    let bytes = match store.get_bytes(&key) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Err(QaError::NoPackets { key }),
        Err(e) => return Err(e.into()),
    };
    let p: Packets =
        serde_json::from_slice(&bytes).map_err(|_| QaError::BadManifest { key: key.clone() })?;
    if p.release_digest != current {
        return Err(QaError::StalePackets {
            key,
            packets: p.release_digest,
            current,
        });
    }
    let facts = p
        .samples
        .into_iter()
        .map(|s| {
            (
                s.sample_id,
                signoff::SampleFacts {
                    record_id: s.record_id,
                    review_types: s.review_types,
                    message_chars: s
                        .record
                        .messages
                        .iter()
                        .map(|m| m.content.chars().count())
                        .collect(),
                },
            )
        })
        .collect();
    Ok((
        (p.release_version, p.release_digest, facts),
        p.privacy_spot_check,
    ))
}

/// Where a reviewer's file is kept: one per reviewer.
fn review_key(location: &str, review_type: ReviewType, reviewer_id: &str) -> String {
    format!(
        "{location}qa/reviews/{}-{reviewer_id}.json",
        review_type.as_str()
    )
}

/// Where the proof of who made a review file is kept ([`proof::Proof`]).
fn proof_key(location: &str, review_type: ReviewType, reviewer_id: &str) -> String {
    format!(
        "{location}qa/review_proofs/{}-{reviewer_id}.json",
        review_type.as_str()
    )
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The proof an import of `bytes` gets: a signature verified against the reviewer's
/// registered key, or the operator's attestation when the reviewer registered none. A
/// reviewer with a key can only be imported signed; a signature without a key is refused.
fn import_proof(
    file: &signoff::ReviewFile,
    bytes: &[u8],
    invited: &[reviewers::Reviewer],
    signature: Option<&str>,
    actor: &str,
) -> Result<proof::Proof, QaError> {
    let key = invited
        .iter()
        .find(|r| r.id == file.reviewer)
        .and_then(|r| r.public_key.as_deref());
    match (signature, key) {
        (Some(sig), Some(key)) if proof::verify(key, bytes, sig) => Ok(proof::Proof::Signature {
            signature: sig.trim().to_string(),
            at: now_rfc3339(),
        }),
        (Some(_), Some(_)) => Err(QaError::BadReviews(format!(
            "the signature does not verify with the key registered for reviewer {}: the file was \
             changed after it was signed, or signed with another key",
            file.reviewer
        ))),
        (Some(_), None) => Err(QaError::BadReviews(format!(
            "reviewer {} registered no key at invitation (qa invite --public-key), so a signature \
             proves nothing; import without it to record the reviews as operator-attested",
            file.reviewer
        ))),
        (None, Some(_)) => Err(QaError::BadReviews(format!(
            "reviewer {} registered a key at invitation: files in their name must carry their \
             signature (`gatehouse qa sign FILE --key KEY` writes FILE.sig)",
            file.reviewer
        ))),
        (None, None) => Ok(proof::Proof::OperatorAttested {
            by: actor.to_string(),
            at: now_rfc3339(),
        }),
    }
}

/// How the signoff judges a stored review file: a signature is verified again, from the
/// stored bytes and the key in the invitations (a proof file cannot vouch for itself).
fn authenticate(
    store: &Store,
    location: &str,
    file: &signoff::ReviewFile,
    bytes: &[u8],
    invited: &[reviewers::Reviewer],
) -> Result<(proof::Authentication, Option<String>), QaError> {
    let key = proof_key(location, file.review_type, &file.reviewer);
    let stored: Option<proof::Proof> = match store.get_bytes(&key) {
        Ok(b) => serde_json::from_slice(&b).ok(),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let registered = invited
        .iter()
        .find(|r| r.id == file.reviewer)
        .and_then(|r| r.public_key.as_deref());
    Ok(match stored {
        Some(proof::Proof::AppSession { .. }) => (proof::Authentication::AppSession, None),
        Some(proof::Proof::Signature { signature, .. })
            if registered.is_some_and(|k| proof::verify(k, bytes, &signature)) =>
        {
            (proof::Authentication::Signature, None)
        }
        Some(proof::Proof::Signature { .. }) => (
            proof::Authentication::OperatorAttested,
            Some("nobody: its signature does not verify".into()),
        ),
        Some(proof::Proof::OperatorAttested { by, .. }) => {
            (proof::Authentication::OperatorAttested, Some(by))
        }
        None => (
            proof::Authentication::OperatorAttested,
            Some("unknown: no proof recorded".into()),
        ),
    })
}

/// Checks a reviewer's file like [`import`] without storing it.
pub fn check_import(
    store: &Store,
    location: &str,
    bytes: &[u8],
    config: &QaConfig,
    signature: Option<&str>,
) -> Result<(), QaError> {
    let file = parse_review_file(bytes)?;
    let (_, digest, samples) = packets(store, location)?;
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    signoff::check(&file, &digest, &samples, &invited, config)?;
    import_proof(&file, bytes, &invited, signature, "check").map(|_| ())
}

fn parse_review_file(bytes: &[u8]) -> Result<signoff::ReviewFile, QaError> {
    serde_json::from_slice(bytes).map_err(|e| {
        QaError::BadReviews(format!(
            "not a review file ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Checks a reviewer's file (JSON, see [`signoff::ReviewFile`]) against the release's
/// packets and rubrics, and stores it unchanged under `qa/reviews/`; returns its key.
///
/// `signature` (`ed25519:<hex>`, from `gatehouse qa sign`) must verify against the key the
/// reviewer registered at invitation; without one the reviews are recorded as attested by
/// `actor` (who ran the import), and count only when `[qa] count_attested` is true.
pub fn import(
    store: &Store,
    location: &str,
    bytes: &[u8],
    config: &QaConfig,
    signature: Option<&str>,
    actor: &str,
) -> Result<String, QaError> {
    let file = parse_review_file(bytes)?;
    let (_, digest, samples) = packets(store, location)?;
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    signoff::check(&file, &digest, &samples, &invited, config)?;
    let proof = import_proof(&file, bytes, &invited, signature, actor)?;
    // One file per reviewer: a corrected import (or a web resubmission) replaces the last.
    // The id was checked against the invitations, so it is a safe key segment.
    let key = review_key(location, file.review_type, &file.reviewer);
    store.put(&key, bytes.to_vec())?;
    store.put(
        &proof_key(location, file.review_type, &file.reviewer),
        json("the review proof", &proof)?,
    )?;
    Ok(key)
}

/// Computes the signoff from every stored review file and writes
/// `qa/signoff_record.json` and `qa/blocklist.json`.
pub fn signoff(
    store: &Store,
    location: &str,
    config: &QaConfig,
) -> Result<(signoff::Signoff, Vec<String>), QaError> {
    let ((version, digest, samples), spot) = packets_and_spot_check(store, location)?;
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    let Stored { files, void, auth } =
        stored_reviews(store, location, &digest, &samples, &invited, config)?;
    let record = signoff::compute(
        &version,
        &digest,
        &samples,
        signoff::StoredFiles {
            files: &files,
            void: &void,
            auth: &auth,
        },
        &names(&invited),
        config,
        spot.is_some(),
    );
    let mut written = Vec::new();
    let key = format!("{location}qa/signoff_record.json");
    store.put(&key, json("the signoff record", &record)?)?;
    written.push(key);
    let blocklist = crate::build::blocklist::BlocklistFile {
        release_version: record.release_version.clone(),
        release_digest: record.release_digest.clone(),
        records: record
            .blocklist
            .iter()
            .map(|b| crate::build::blocklist::BlockedRecord {
                record_id: b.record_id.clone(),
                sample_id: b.sample_id.clone(),
                reviewer: b.reviewer.clone(),
                flag: b.flag.clone(),
            })
            .collect(),
    };
    let bytes = json("the blocklist", &blocklist)?;
    let key = format!("{location}qa/blocklist.json");
    store.put(&key, bytes.clone())?;
    written.push(key);
    // Where every later build looks; one file per signed-off digest, and only when
    // something is flagged (an empty one would change the next manifest for nothing).
    if !blocklist.records.is_empty() {
        let key = format!(
            "{}{}-{}.json",
            crate::build::blocklist::prefix(store),
            record.release_version,
            &record.release_digest["sha256:".len().."sha256:".len() + 12]
        );
        store.put(&key, bytes)?;
        written.push(key);
    }
    Ok((record, written))
}

/// Stores a web reviewer's reviews as their review file `qa/reviews/{type}-{id}.json`
/// (replacing an earlier submission of theirs), after the same checks as an import, and
/// only for samples assigned to them.
pub fn submit(
    store: &Store,
    location: &str,
    reviewer: &reviewers::Reviewer,
    reviews: Vec<signoff::Review>,
    config: &QaConfig,
) -> Result<String, QaError> {
    let (_, digest, samples) = packets(store, location)?;
    if let Some(r) = reviews
        .iter()
        .find(|r| !reviewer.assignments.contains(&r.sample_id))
    {
        return Err(QaError::BadReviews(format!(
            "{} is not assigned to reviewer {}",
            r.sample_id, reviewer.id
        )));
    }
    let file = signoff::ReviewFile {
        release_digest: digest.clone(),
        reviewer: reviewer.id.clone(),
        review_type: reviewer.review_type,
        reviews,
    };
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    signoff::check(&file, &digest, &samples, &invited, config)?;
    let key = review_key(location, reviewer.review_type, &reviewer.id);
    store.put(&key, json("the reviews", &file)?)?;
    // The reviewer signed in with their secret link: the app vouches for them.
    store.put(
        &proof_key(location, reviewer.review_type, &reviewer.id),
        json(
            "the review proof",
            &proof::Proof::AppSession { at: now_rfc3339() },
        )?,
    )?;
    Ok(key)
}

/// Review types of `[qa.rubrics]` that no sampled record of the current packets needs.
pub fn review_types_without_samples(
    store: &Store,
    location: &str,
    config: &QaConfig,
) -> Result<Vec<ReviewType>, QaError> {
    let (_, _, samples) = packets(store, location)?;
    Ok(config
        .rubrics
        .keys()
        .filter(|t| !samples.values().any(|s| s.review_types.contains(t)))
        .copied()
        .collect())
}

fn names(invited: &[reviewers::Reviewer]) -> BTreeMap<String, String> {
    invited
        .iter()
        .map(|r| (r.id.clone(), r.name.clone()))
        .collect()
}

/// Where the human QA gate stands for the release at `location`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum QaGate {
    /// No signoff for this digest yet.
    Awaiting {
        release_digest: String,
        samples: usize,
        reviewers_invited: usize,
        review_files: usize,
    },
    /// A signoff exists for this digest but does not approve (or no longer matches).
    NotApproved {
        release_digest: String,
        reasons: Vec<String>,
    },
    /// A signoff for this exact digest, recomputed from the stored reviews, approves.
    Approved {
        release_digest: String,
        signoff_sha256: String,
        reviewers: usize,
    },
}

impl QaGate {
    pub fn passed(&self) -> bool {
        matches!(self, QaGate::Approved { .. })
    }
}

/// Stored review files with their keys.
type ReviewFiles = Vec<(String, signoff::ReviewFile)>;

/// The reviews stored for the release, each re-checked against the current packets. Files
/// for another digest (made before a rebuild) are void: returned apart, never counted. A
/// file for this digest that fails its checks (edited since) fails the whole signoff.
fn stored_reviews(
    store: &Store,
    location: &str,
    digest: &str,
    samples: &BTreeMap<String, signoff::SampleFacts>,
    invited: &[reviewers::Reviewer],
    config: &QaConfig,
) -> Result<Stored, QaError> {
    let prefix = format!("{location}qa/reviews/");
    let mut keys = Vec::new();
    for info in store.list(&prefix) {
        let info = info?;
        if info.key.ends_with(".json") {
            keys.push(info.key);
        }
    }
    keys.sort();
    let revoked: Vec<String> = reviewers::load(store, location, digest)?
        .revoked
        .into_iter()
        .map(|r| r.id)
        .collect();
    let (mut files, mut void, mut auth) = (Vec::new(), Vec::new(), Vec::new());
    for key in keys {
        let bytes = store.get_bytes(&key)?;
        let file: signoff::ReviewFile = serde_json::from_slice(&bytes)
            .map_err(|_| QaError::BadReviews(format!("{key} is not a review file")))?;
        // Made before a rebuild, or by a reviewer since revoked: void, never counted.
        if file.release_digest != digest || revoked.contains(&file.reviewer) {
            void.push(key);
            continue;
        }
        // Re-checked: a file edited since it was stored must not count.
        signoff::check(&file, digest, samples, invited, config)
            .map_err(|e| QaError::BadReviews(format!("{key}: {e}")))?;
        let (method, by) = authenticate(store, location, &file, &bytes, invited)?;
        let counted = method != proof::Authentication::OperatorAttested
            || config.count_attested.unwrap_or(false);
        auth.push(signoff::ReviewAuth {
            reviewer: file.reviewer.clone(),
            review_type: file.review_type,
            file: key.clone(),
            method,
            by,
            counted,
        });
        if !counted {
            continue;
        }
        if let Some((other, _)) = files
            .iter()
            .find(|(_, f): &&(String, signoff::ReviewFile)| f.reviewer == file.reviewer)
        {
            return Err(QaError::BadReviews(format!(
                "{key} and {other} are both by reviewer {}: keep one",
                file.reviewer
            )));
        }
        files.push((key, file));
    }
    Ok(Stored { files, void, auth })
}

/// The stored review files: counted, void, and how each valid one was authenticated.
struct Stored {
    files: ReviewFiles,
    void: Vec<String>,
    auth: Vec<signoff::ReviewAuth>,
}

/// The QA gate: approved only when `qa/signoff_record.json` is for the current manifest's
/// digest, approves, and equals the signoff recomputed now from the stored reviews (so an
/// edited record or a review changed since counts for nothing). Fails closed on anything
/// unreadable. The caller draws packets first when there are none for this digest.
pub fn gate(
    store: &Store,
    registry: &Registry,
    location: &str,
    config: &QaConfig,
    max_line: usize,
) -> Result<QaGate, QaError> {
    let ((version, digest, samples), spot) = packets_and_spot_check(store, location)?;
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    let key = format!("{location}qa/signoff_record.json");
    let stored = match store.get_bytes(&key) {
        Ok(b) => Some(b),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let Stored { files, void, auth } =
        stored_reviews(store, location, &digest, &samples, &invited, config)?;
    let Some(stored) = stored else {
        return Ok(QaGate::Awaiting {
            reviewers_invited: invited.len(),
            release_digest: digest,
            samples: samples.len(),
            review_files: files.len(),
        });
    };
    #[derive(Deserialize)]
    struct Bound {
        release_digest: String,
    }
    let bound: Bound =
        serde_json::from_slice(&stored).map_err(|_| QaError::BadManifest { key: key.clone() })?;
    if bound.release_digest != digest {
        return Ok(QaGate::NotApproved {
            reasons: vec![format!(
                "the signoff is for release {}, not this manifest ({digest}): a changed manifest voids it",
                bound.release_digest
            )],
            release_digest: digest,
        });
    }
    // The packets themselves must be the draw the rule gives: a qa_samples.json edited to
    // fewer samples would otherwise shrink what has to be reviewed.
    let (fresh, _) = draw(store, registry, location, config, max_line)?;
    let drawn: BTreeMap<&str, (&str, &Vec<ReviewType>)> = fresh
        .samples
        .iter()
        .map(|s| {
            (
                s.sample_id.as_str(),
                (s.record_id.as_str(), &s.review_types),
            )
        })
        .collect();
    let stored_set: BTreeMap<&str, (&str, &Vec<ReviewType>)> = samples
        .iter()
        .map(|(id, s)| (id.as_str(), (s.record_id.as_str(), &s.review_types)))
        .collect();
    if drawn != stored_set || fresh.privacy_spot_check != spot {
        return Ok(QaGate::NotApproved {
            reasons: vec![format!(
                "{location}qa/qa_samples.json is not the draw of [qa.sample] over this manifest (edited, or the rule changed): run `gatehouse qa sample` and review again"
            )],
            release_digest: digest,
        });
    }
    let record = signoff::compute(
        &version,
        &digest,
        &samples,
        signoff::StoredFiles {
            files: &files,
            void: &void,
            auth: &auth,
        },
        &names(&invited),
        config,
        spot.is_some(),
    );
    if json("the signoff record", &record)? != stored.as_ref() {
        return Ok(QaGate::NotApproved {
            reasons: vec![format!(
                "{key} does not match the stored reviews (reviews changed since, or the record was edited): run `gatehouse qa signoff` again"
            )],
            release_digest: digest,
        });
    }
    Ok(if record.decision == "approved" {
        QaGate::Approved {
            signoff_sha256: sha256(&stored),
            reviewers: record.reviewers.len(),
            release_digest: digest,
        }
    } else {
        QaGate::NotApproved {
            reasons: record.reasons,
            release_digest: digest,
        }
    })
}

/// Reads reviews in CSV: one row per review, columns `release_digest, reviewer,
/// review_type, sample_id`, one column per criterion (blank where the row's rubric has no
/// such criterion), `comment` and `flag`. Rows become one review file per reviewer and type.
pub fn reviews_from_csv(bytes: &[u8]) -> Result<Vec<signoff::ReviewFile>, QaError> {
    let bad = |m: String| QaError::BadReviews(m);
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| bad(format!("the CSV has no header row ({e})")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(c_digest), Some(c_reviewer), Some(c_type), Some(c_sample)) = (
        col("release_digest"),
        col("reviewer"),
        col("review_type"),
        col("sample_id"),
    ) else {
        return Err(bad(
            "the CSV needs the columns release_digest, reviewer, review_type and sample_id (see qa/review_template.csv)".into(),
        ));
    };
    let (c_comment, c_flag, c_marks) = (col("comment"), col("flag"), col("identifiers_left"));
    let fixed = [
        Some(c_digest),
        Some(c_reviewer),
        Some(c_type),
        Some(c_sample),
        c_comment,
        c_flag,
        c_marks,
    ];
    let mut files: BTreeMap<(String, String, String), signoff::ReviewFile> = BTreeMap::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| bad(format!("CSV line {line}: {e}")))?;
        let get = |c: usize| row.get(c).unwrap_or("").trim();
        let review_type: ReviewType =
            serde_json::from_value(serde_json::Value::String(get(c_type).to_string()))
                .map_err(|_| bad(format!("CSV line {line}: unknown review_type")))?;
        let mut scores = BTreeMap::new();
        for (c, name) in headers.iter().enumerate() {
            if fixed.contains(&Some(c)) || get(c).is_empty() {
                continue;
            }
            let v: f64 = get(c)
                .parse()
                .map_err(|_| bad(format!("CSV line {line}: {} is not a number", name.trim())))?;
            scores.insert(name.trim().to_string(), v);
        }
        let flag = c_flag
            .map(get)
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        let identifiers_left = match c_marks {
            Some(c) => spot_check::marks_from_cell(get(c))
                .map_err(|e| bad(format!("CSV line {line}: {e}")))?,
            None => None,
        };
        let review = signoff::Review {
            sample_id: get(c_sample).to_string(),
            scores,
            comment: c_comment.map(get).unwrap_or_default().to_string(),
            flag,
            identifiers_left,
        };
        let (digest, reviewer) = (get(c_digest).to_string(), get(c_reviewer).to_string());
        files
            .entry((
                digest.clone(),
                reviewer.clone(),
                review_type.as_str().to_string(),
            ))
            .or_insert_with(|| signoff::ReviewFile {
                release_digest: digest,
                reviewer,
                review_type,
                reviews: Vec::new(),
            })
            .reviews
            .push(review);
    }
    if files.is_empty() {
        return Err(bad("the CSV has no reviews".into()));
    }
    Ok(files.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sizes_follow_the_rule() {
        let r = SampleRule::default();
        assert_eq!(r.size(0), 0);
        assert_eq!(r.size(3), 3);
        assert_eq!(r.size(100), 5);
        assert_eq!(r.size(1000), 20);
        assert_eq!(r.size(1_000_000), 50);
    }

    #[test]
    fn default_rubrics_are_the_clinical_teams_and_validate() {
        let c = QaConfig::default();
        assert!(c.problem().is_none());
        let edge = &c.rubrics[&ReviewType::ClinicianEdge];
        assert_eq!(edge.reviewers, 2);
        assert_eq!(edge.criteria[1].name, "safety_prioritization");
        assert_eq!(edge.criteria[1].minimum, 9.0);
        let mut bad = c.clone();
        bad.rubrics
            .get_mut(&ReviewType::BiasCultural)
            .unwrap()
            .criteria[0]
            .weight = 0.5;
        assert!(bad.problem().unwrap().contains("sum to 1"));
    }

    #[test]
    fn crisis_material_gets_a_content_warning() {
        let calm = serde_json::json!({"messages": [{"role": "user", "content": "I slept well."}]});
        let crisis = serde_json::json!({"messages": [{"role": "user", "content": "I keep thinking about suicide."}]});
        assert!(content_warning("professional_therapeutic", &calm).is_none());
        assert!(content_warning("professional_therapeutic", &crisis).is_some());
        assert!(content_warning("edge_cases", &calm).is_some());
    }
}
