//! Drawing the review packets: `qa/qa_samples.json`, `qa/review_template.json` and
//! `qa/review_template.csv`, all bound to the release digest.
//!
//! Per family × split, a seeded sample of whole exported (already redacted) records: a
//! record's sample hash is the first 8 bytes of sha256(`gatehouse-qa-sample-v1\0` seed `\0`
//! record id), and a group keeps the records with the smallest hashes, so the draw is stable
//! and anyone can redraw it. The size of a group's sample is `rate × population`, rounded up,
//! kept within `[min, max]` (and never more than the population). Each sampled record is
//! assigned the review types its family needs (the registry's `review`), gets a stable sample
//! id and, when it deals with crisis or self-harm, a content warning.
//!
//! The draw is four steps: the manifest ([`read_manifest`]), a plan per group from its
//! counts ([`plan_groups`]), one pass over the shards ([`Pass`]), and the blank reviews
//! ([`review_template`]). Reading the stored packets back, bound to the digest, is
//! `packets.rs`.

use std::collections::BTreeMap;
use std::io::BufReader;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::spot_check;
use super::{QaConfig, QaError, Rubric, SCHEMA_VERSION, SampleRule, json};
use crate::contract::Manifest;
use crate::digest::sha256;
use crate::registry::{Registry, ReviewType};
use crate::report::generated_by;
use crate::store::{Line, LineReader, Store, StoreError};

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

/// What `sample` wrote.
#[derive(Debug, Clone)]
pub struct SampleOutcome {
    pub samples: QaSamples,
    pub written: Vec<String>,
}

const METHOD: &str = "per family × split, the records with the smallest first 8 bytes of sha256(\"gatehouse-qa-sample-v1\\0\" seed \"\\0\" record id); size = ceil(rate × population) within [min, max]";

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

/// The sample id of a record in a family × split group: `qa-` and its sample hash in hex.
fn group_sample_id(hash: u64) -> String {
    format!("qa-{hash:016x}")
}

/// The sample id the draw gives record `record_id` of a family × split group under `seed`
/// (what `packets.rs` checks stored packets against without reading the shards).
pub(super) fn expected_sample_id(seed: u64, record_id: &str) -> String {
    group_sample_id(sample_hash(seed, record_id))
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
    for (file, bytes) in [
        (
            crate::layout::REVIEW_TEMPLATE,
            json("the review template", &template)?,
        ),
        (
            crate::layout::REVIEW_TEMPLATE_CSV,
            template_csv(&template, config)?,
        ),
        (crate::layout::QA_SAMPLES, json("the QA samples", &qa)?),
    ] {
        let key = file.at(location);
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
    let (manifest, digest) = read_manifest(store, location)?;
    let plans = plan_groups(&manifest, registry, config)?;
    // The privacy gate's spot-check sample of this manifest, when the gates have run.
    let gate_sample = spot_check::gate_sample(store, location, &digest)?;
    let samples = {
        let spot_ids = gate_sample.as_ref().map_or(&[][..], |g| g.ids.as_slice());
        let mut pass = Pass::new(&plans, config.sample.seed, spot_ids);
        for_each_line(store, &manifest, max_line, |split, at, raw| {
            pass.offer(split, at, raw)
        })?;
        pass.finish(location)?
    };
    let review_types_without_samples = config
        .rubrics
        .keys()
        .filter(|t| !samples.iter().any(|s| s.review_types.contains(t)))
        .copied()
        .collect();
    let qa = QaSamples {
        schema_version: SCHEMA_VERSION,
        generated_by: generated_by(),
        release_version: manifest.release_version,
        release_digest: digest,
        method: METHOD,
        rule: config.sample.clone(),
        groups: plans.into_values().collect(),
        review_types_without_samples,
        privacy_spot_check: gate_sample.map(|g| g.draw),
        samples,
    };
    let template = review_template(&qa, config);
    Ok((qa, template))
}

/// The manifest of the release at `location`, and its digest.
pub(super) fn read_manifest(store: &Store, location: &str) -> Result<(Manifest, String), QaError> {
    let manifest_key = crate::layout::MANIFEST.at(location);
    let bytes = match store.get_bytes(&manifest_key) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Err(QaError::NotBuilt { key: manifest_key }),
        Err(e) => return Err(e.into()),
    };
    let digest = sha256(&bytes);
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|_| QaError::BadManifest {
        key: manifest_key.clone(),
    })?;
    Ok((manifest, digest))
}

/// The plans, by (family, split).
pub(super) type Plans = BTreeMap<(String, String), GroupPlan>;

/// A plan per family × split, from the manifest's counts, the registry's review types and
/// the rule. Every review type a family needs must have a rubric, or its samples would go
/// unreviewed.
pub(super) fn plan_groups(
    manifest: &Manifest,
    registry: &Registry,
    config: &QaConfig,
) -> Result<Plans, QaError> {
    let review_of = |family: &str| {
        registry
            .families
            .get(family)
            .map(|f| f.review.clone())
            .unwrap_or_default()
    };
    for c in &manifest.contents {
        for family in c.families.keys() {
            if let Some(p) = config.missing_rubric(family, &review_of(family)) {
                return Err(QaError::Config(p));
            }
        }
    }
    let mut plans = Plans::new();
    for c in &manifest.contents {
        for (family, t) in &c.families {
            plans.insert(
                (family.clone(), c.split.as_str().to_string()),
                GroupPlan {
                    family: family.clone(),
                    split: c.split.as_str().to_string(),
                    population: t.records,
                    size: config.sample.size(t.records),
                    review_types: review_of(family),
                },
            );
        }
    }
    Ok(plans)
}

/// Streams every line of every shard in the manifest, in manifest order, to `each` with the
/// shard's split and the line's `shard:line`. A line longer than `max_line` is a bad record.
fn for_each_line(
    store: &Store,
    manifest: &Manifest,
    max_line: usize,
    mut each: impl FnMut(&str, String, &[u8]) -> Result<(), QaError>,
) -> Result<(), QaError> {
    for c in &manifest.contents {
        for shard in &c.shards {
            let reader = store.open_read(&shard.key)?;
            let mut lines = LineReader::new(BufReader::with_capacity(1 << 20, reader), max_line);
            while let Some(line) = lines.next_line().map_err(|source| QaError::Read {
                key: shard.key.clone(),
                source,
            })? {
                match line {
                    Line::Text { number, bytes } => {
                        each(c.split.as_str(), format!("{}:{number}", shard.key), bytes)?;
                    }
                    Line::Oversized { number, .. } => {
                        return Err(QaError::BadRecord {
                            at: format!("{}:{number}", shard.key),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// The one pass over the shards: each group keeps the records with its smallest sample
/// hashes, and the privacy gate's spot-check records are picked out by id.
struct Pass<'a> {
    plans: &'a Plans,
    seed: u64,
    /// The spot-check's record ids → their place in the gate's sample (export order).
    wanted_spot: BTreeMap<&'a str, usize>,
    spot_items: BTreeMap<usize, SampleItem>,
    /// Per group: sample hash → record, at most the group's size.
    kept: BTreeMap<(String, String), BTreeMap<u64, SampleItem>>,
}

impl<'a> Pass<'a> {
    fn new(plans: &'a Plans, seed: u64, spot_ids: &'a [String]) -> Self {
        Self {
            plans,
            seed,
            wanted_spot: spot_ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect(),
            spot_items: BTreeMap::new(),
            kept: BTreeMap::new(),
        }
    }

    /// One exported record: the shard line `raw` at `at`, of `split`.
    fn offer(&mut self, split: &str, at: String, raw: &[u8]) -> Result<(), QaError> {
        let value: serde_json::Value =
            serde_json::from_slice(raw).map_err(|_| QaError::BadRecord { at: at.clone() })?;
        let (Some(id), Some(family)) = (
            value["id"].as_str(),
            value["metadata"]["source_family"].as_str(),
        ) else {
            return Err(QaError::BadRecord { at });
        };
        let group = (family.to_string(), split.to_string());
        let Some(plan) = self.plans.get(&group) else {
            return Err(QaError::BadRecord { at });
        };
        let item = |sample_id: String, review_types: Vec<ReviewType>, at: String| {
            Ok::<_, QaError>(SampleItem {
                sample_id,
                record_id: id.to_string(),
                family: family.to_string(),
                split: split.to_string(),
                record: raw_record(raw, &at)?,
                at,
                review_types,
                content_warning: content_warning(family, &value),
            })
        };
        if let Some(&i) = self.wanted_spot.get(id) {
            let spot = item(
                spot_check::sample_id(id),
                vec![ReviewType::PrivacySpotCheck],
                at.clone(),
            )?;
            self.spot_items.insert(i, spot);
        }
        let hash = sample_hash(self.seed, id);
        let slot = self.kept.entry(group).or_default();
        let wanted = plan.size as usize;
        if slot.len() >= wanted && slot.last_key_value().is_none_or(|(k, _)| hash >= *k) {
            return Ok(());
        }
        slot.insert(
            hash,
            item(group_sample_id(hash), plan.review_types.clone(), at)?,
        );
        if slot.len() > wanted {
            slot.pop_last();
        }
        Ok(())
    }

    /// The samples: each group's in group and hash order, then the spot-check's records in
    /// export order. Fails when a record of the spot-check is not in the export.
    fn finish(self, location: &str) -> Result<Vec<SampleItem>, QaError> {
        if self.spot_items.len() != self.wanted_spot.len() {
            return Err(QaError::SpotCheckMismatch {
                key: crate::layout::PII_REPORT.at(location),
                missing: self.wanted_spot.len() - self.spot_items.len(),
            });
        }
        let mut samples: Vec<SampleItem> = self
            .kept
            .into_values()
            .flat_map(BTreeMap::into_values)
            .collect();
        samples.extend(self.spot_items.into_values());
        Ok(samples)
    }
}

/// A shard line as the record a packet shows.
fn raw_record(raw: &[u8], at: &str) -> Result<Box<serde_json::value::RawValue>, QaError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| QaError::BadRecord { at: at.to_string() })?
        .to_string();
    serde_json::value::RawValue::from_string(text)
        .map_err(|_| QaError::BadRecord { at: at.to_string() })
}

/// `qa/review_template.json`: a blank review per sample and review type.
fn review_template(qa: &QaSamples, config: &QaConfig) -> ReviewTemplate {
    ReviewTemplate {
        schema_version: SCHEMA_VERSION,
        release_version: qa.release_version.clone(),
        release_digest: qa.release_digest.clone(),
        rubrics: config.rubrics.clone(),
        reviews: qa
            .samples
            .iter()
            .flat_map(|s| {
                s.review_types
                    .iter()
                    .filter_map(|t| blank_review(&s.sample_id, *t, config))
            })
            .collect(),
    }
}

/// A blank review of `sample_id` by type `t`: the rubric's criteria unscored, or the
/// identifiers left to mark for the privacy spot-check; none for a type without a rubric.
fn blank_review(sample_id: &str, t: ReviewType, config: &QaConfig) -> Option<ReviewSlot> {
    if t == ReviewType::PrivacySpotCheck {
        return Some(ReviewSlot {
            sample_id: sample_id.to_string(),
            review_type: t,
            scores: BTreeMap::new(),
            comment: String::new(),
            flag: None,
            spot_check: Some(SpotCheckSlot {
                identifiers_left: None,
            }),
        });
    }
    let rubric = config.rubrics.get(&t)?;
    Some(ReviewSlot {
        sample_id: sample_id.to_string(),
        review_type: t,
        scores: rubric
            .criteria
            .iter()
            .map(|c| (c.name.clone(), None))
            .collect(),
        comment: String::new(),
        flag: None,
        spot_check: None,
    })
}

/// `qa/review_template.csv`: the template as one row per review to fill in, for teams
/// that review in a spreadsheet (read back by [`super::reviews_from_csv`]).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crisis_material_gets_a_content_warning() {
        let calm = serde_json::json!({"messages": [{"role": "user", "content": "I slept well."}]});
        let crisis = serde_json::json!({"messages": [{"role": "user", "content": "I keep thinking about suicide."}]});
        assert!(content_warning("professional_therapeutic", &calm).is_none());
        assert!(content_warning("professional_therapeutic", &crisis).is_some());
        assert!(content_warning("edge_cases", &calm).is_some());
    }
}
