//! The build passes its own privacy gate: every record the build writes from the generator's
//! planted-PII corpus gets zero detections from the gate's scan (the same detector, the same
//! conversation-level scan), and the `[privacy]` policy is recorded in both reports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;
use common::*;

use gatehouse_core::build::BuildConfig;
use gatehouse_core::store::Store;
use gatehouse_synth::{Corpus, pii};
use gatehouse_text::pii::{DatePolicy, Detector, PiiType, Policy};

const REGISTRY: &str = r#"
schema_version = 1
[families.professional_therapeutic]
stage = "stage1_foundation"
required = true
review = ["clinician_foundation"]

[[datasets]]
name = "planted"
family = "professional_therapeutic"
include = ["sources/planted/"]
format = "chatml"
license_tag = "CC0-1.0"
provenance = { origin = "gatehouse-synth", method = "synthetic, planted identifiers", consent = "synthetic text; no real persons" }
"#;

/// `n` planted-PII conversations as ChatML JSONL, in parts of 500.
fn planted_store(n: u64, seed: u64) -> Store {
    let store = Store::memory();
    let corpus = Corpus::new(seed);
    let mut part = Vec::new();
    let mut index = 0;
    for i in 0..n {
        let c = pii::conversation(&corpus, i);
        let messages: Vec<serde_json::Value> = c
            .messages
            .iter()
            .map(|(speaker, m)| serde_json::json!({"role": speaker.role(), "content": m.text}))
            .collect();
        serde_json::to_writer(&mut part, &serde_json::json!({ "messages": messages })).unwrap();
        part.push(b'\n');
        if (i + 1) % 500 == 0 || i + 1 == n {
            store
                .put(
                    &format!("sources/planted/part-{index:03}.jsonl"),
                    std::mem::take(&mut part),
                )
                .unwrap();
            index += 1;
        }
    }
    store
}

fn detections(out: &gatehouse_core::gates::GatesOutcome) -> u64 {
    out.privacy.detail.metrics.detections_by_type.values().sum()
}

fn assert_build_passes_its_own_gate(detector: &Detector, n: u64, seed: u64) {
    let store = planted_store(n, seed);
    let reg = registry(REGISTRY);
    let built = build_with_detector(&store, &reg, &BuildConfig::default(), detector);
    assert!(
        built.report.records_exported > n / 2,
        "{} of {n} exported",
        built.report.records_exported
    );
    let redacted: u64 = built.report.records_exported;
    assert!(redacted > 0);
    let out = gates_with_privacy(
        &store,
        &reg,
        &Default::default(),
        &[],
        &Default::default(),
        detector,
        &Default::default(),
    )
    .unwrap();
    let p = &out.privacy;
    assert_eq!(p.detail.metrics.records_scanned, redacted);
    assert_eq!(
        detections(&out),
        0,
        "the gate found what the build left: {:?} at {:?}",
        p.detail.metrics.detections_by_type,
        p.locators
    );
    assert!(
        PiiType::ALL
            .iter()
            .all(|t| !p.counts.contains_key(t.code())),
        "{:?}",
        p.counts
    );
    // Both reports name the policy the detector ran with.
    assert_eq!(&built.report.privacy.policy, detector.policy());
    assert_eq!(&p.detail.policy, detector.policy());
    // Every record read is accounted for, quarantined-as-unsettled ones included.
    let r = &built.report;
    assert_eq!(
        r.records_read,
        r.records_exported
            + r.records_quarantined
            + r.records_removed_by_policy
            + r.records_removed_as_duplicates
    );
    assert!(r.privacy.records_unsettled <= r.records_quarantined);
}

#[test]
fn every_record_the_build_writes_from_the_planted_corpus_passes_the_gates_scan() {
    assert_build_passes_its_own_gate(detector(), 1500, 20_261_125);
}

#[test]
fn with_every_date_an_identifier_the_build_still_passes_its_own_gate() {
    let detector = Detector::with_policy(Policy {
        dates: DatePolicy::All,
        disabled: [PiiType::Handle].into_iter().collect(),
    });
    assert_build_passes_its_own_gate(&detector, 600, 7);
}

#[test]
fn a_gate_with_another_policy_than_the_build_finds_what_the_build_kept() {
    // The build ignores emails; a gate scanning with the default policy must see them, so
    // the policy really travels to the gate's detector (and is not rebuilt from defaults).
    let lax = Detector::with_policy(Policy {
        disabled: [PiiType::Email].into_iter().collect(),
        ..Policy::default()
    });
    let store = planted_store(300, 3);
    let reg = registry(REGISTRY);
    build_with_detector(&store, &reg, &BuildConfig::default(), &lax);
    let same = gates_with_privacy(
        &store,
        &reg,
        &Default::default(),
        &[],
        &Default::default(),
        &lax,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(
        same.privacy.detail.metrics.detections_by_type.get("EMAIL"),
        None
    );
    let strict = gates_with_privacy(
        &store,
        &reg,
        &Default::default(),
        &[],
        &Default::default(),
        detector(),
        &Default::default(),
    )
    .unwrap();
    assert!(
        strict.privacy.detail.metrics.detections_by_type["EMAIL"] > 0,
        "{:?}",
        strict.privacy.detail.metrics.detections_by_type
    );
    assert!(!strict.passed);
}
