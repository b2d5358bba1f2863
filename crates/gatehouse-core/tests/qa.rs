//! `qa sample`: seeded, stratified review packets of whole redacted records, bound to the
//! release digest, with content warnings and a blank review per sample and review type.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gatehouse_core::build::BuildConfig;
use gatehouse_core::qa::{self, QaConfig, QaError};
use gatehouse_core::registry::ReviewType;
use gatehouse_core::store::Store;
use serde_json::Value;

const MAX_LINE: usize = 1 << 24;

fn built() -> (Store, String) {
    let store = Store::memory();
    sample_into(&store);
    let out = build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    (store, out.release_digest)
}

#[test]
fn packets_are_seeded_stratified_and_bound_to_the_release() {
    let (store, digest) = built();
    let reg = registry(&registry_text());
    let config = QaConfig::default();
    let out = qa::sample(&store, &reg, LOC, &config, MAX_LINE).unwrap();
    let s = &out.samples;
    assert_eq!(s.release_digest, digest);

    // Every family × split of the export has a group sized by the rule, and holds exactly
    // that many distinct records of its own group.
    let recs = records(&store, &format!("{LOC}compiled_export.jsonl"));
    for g in &s.groups {
        let population = recs
            .iter()
            .filter(|r| {
                r["metadata"]["source_family"] == g.family.as_str()
                    && r["metadata"]["split"] == g.split.as_str()
            })
            .count() as u64;
        assert_eq!(g.population, population, "{} {}", g.family, g.split);
        assert_eq!(g.size, config.sample.size(population));
        let drawn: Vec<_> = s
            .samples
            .iter()
            .filter(|x| x.family == g.family && x.split == g.split)
            .collect();
        assert_eq!(drawn.len() as u64, g.size);
    }
    let ids: std::collections::BTreeSet<_> = s.samples.iter().map(|x| &x.sample_id).collect();
    assert_eq!(ids.len(), s.samples.len(), "sample ids are unique");

    // Whole exported records, as exported (redacted).
    for x in &s.samples {
        let record: Value = serde_json::from_str(x.record.get()).unwrap();
        assert_eq!(record["id"], x.record_id.as_str());
        assert!(recs.contains(&record));
    }
    // Crisis scenarios carry a content warning; the bias/cultural review gets samples.
    assert!(
        s.samples
            .iter()
            .filter(|x| x.family == "edge_cases")
            .all(|x| x.content_warning.is_some())
    );
    assert!(s.review_types_without_samples.is_empty());
    assert!(
        s.samples
            .iter()
            .any(|x| x.review_types.contains(&ReviewType::BiasCultural))
    );

    // The template: a blank review per sample and review type, with that rubric's criteria.
    let template: Value =
        serde_json::from_str(&text(&store, &format!("{LOC}qa/review_template.json"))).unwrap();
    assert_eq!(template["release_digest"], digest.as_str());
    let slots = template["reviews"].as_array().unwrap();
    let expected: usize = s.samples.iter().map(|x| x.review_types.len()).sum();
    assert_eq!(slots.len(), expected);
    let edge = slots
        .iter()
        .find(|r| r["review_type"] == "clinician_edge")
        .unwrap();
    assert_eq!(edge["scores"].as_object().unwrap().len(), 4);
    assert!(edge["scores"]["safety_prioritization"].is_null());

    // The same seed redraws the same packets; another seed draws others.
    let again = qa::sample(&store, &reg, LOC, &config, MAX_LINE).unwrap();
    let ids = |s: &qa::QaSamples| {
        s.samples
            .iter()
            .map(|x| x.record_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again.samples), ids(s));
    let mut other = QaConfig::default();
    other.sample.seed = 2;
    let other = qa::sample(&store, &reg, LOC, &other, MAX_LINE).unwrap();
    assert_ne!(ids(&other.samples), ids(s));
}

#[test]
fn a_release_that_was_never_built_cannot_be_sampled() {
    let store = Store::memory();
    sample_into(&store);
    let err = qa::sample(
        &store,
        &registry(&registry_text()),
        LOC,
        &QaConfig::default(),
        MAX_LINE,
    )
    .unwrap_err();
    assert!(matches!(err, QaError::NotBuilt { .. }), "{err}");
    assert!(err.hint().unwrap().contains("gatehouse build"));
}
