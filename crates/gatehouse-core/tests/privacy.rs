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

/// A labelled set from the planted corpus's ground truth: one message per line, its planted
/// identifiers as spans in code points.
fn labelled_set(n: u64, seed: u64) -> Vec<u8> {
    let corpus = Corpus::new(seed);
    let mut out = Vec::new();
    for i in 0..n {
        for (_, m) in pii::conversation(&corpus, i).messages {
            if m.planted.is_empty() {
                continue;
            }
            let chars = |b: usize| m.text[..b].chars().count();
            let spans: Vec<serde_json::Value> = m
                .planted
                .iter()
                .map(|t| {
                    serde_json::json!({"start": chars(t.start), "end": chars(t.end), "type": t.kind.label()})
                })
                .collect();
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"text": m.text, "spans": spans}),
            )
            .unwrap();
            out.push(b'\n');
        }
    }
    out
}

fn evaluation(
    sets: &[&str],
    min_recall_direct: Option<f64>,
) -> gatehouse_core::privacy::EvaluationConfig {
    gatehouse_core::privacy::EvaluationConfig {
        sets: sets.iter().map(|s| s.to_string()).collect(),
        min_recall_direct,
        min_precision: Some(0.5),
    }
}

#[test]
fn the_privacy_gate_measures_recall_on_labelled_sets_in_the_store_and_fails_below_the_minimum() {
    let store = planted_store(200, 11);
    let reg = registry(REGISTRY);
    build_with(&store, &reg, &BuildConfig::default());
    store
        .put("labelled/dev.jsonl", labelled_set(300, 5))
        .unwrap();
    // A set whose only label nothing could catch: recall 0.
    store
        .put(
            "labelled/hard.jsonl",
            b"{\"text\":\"I kept thinking about the blue kettle.\",\"spans\":[{\"start\":26,\"end\":37,\"type\":\"PERSON\"}]}\n".to_vec(),
        )
        .unwrap();
    let gates = |e: &gatehouse_core::privacy::EvaluationConfig,
                 waivers: &[gatehouse_core::waiver::Waiver]| {
        gates_with_privacy(
            &store,
            &reg,
            &Default::default(),
            waivers,
            &Default::default(),
            detector(),
            e,
        )
        .unwrap()
    };
    let report_text = || text(&store, &format!("{LOC}gates/pii_detection_report.json"));

    // Measured, above the minimum: the report carries the scores with their intervals.
    let out = gates(&evaluation(&["labelled/dev.jsonl"], Some(0.5)), &[]);
    let e = out.privacy.detail.evaluation.as_ref().unwrap();
    assert_eq!(e.sets.len(), 1);
    let set = &e.sets[0];
    assert!(set.passed, "{set:?}");
    let scores = set.scores.as_ref().unwrap();
    assert!(scores.documents > 100, "{}", scores.documents);
    assert!(scores.recall_direct.total > 100);
    let [lo, hi] = scores.recall_direct.wilson_95.unwrap();
    let v = scores.recall_direct.value.unwrap();
    assert!(lo <= v && v <= hi && v > 0.5, "{lo} {v} {hi}");
    assert!(scores.recall_by_type.contains_key("EMAIL"));
    assert!(scores.f2_direct.is_some());
    assert_eq!(
        set.sha256.as_deref(),
        Some(gatehouse_core::digest::sha256(&labelled_set(300, 5)).as_str())
    );
    assert!(!out.privacy.counts.contains_key("PII016"));
    let json: serde_json::Value = serde_json::from_str(&report_text()).unwrap();
    assert_eq!(json["evaluation"]["sets"][0]["key"], "labelled/dev.jsonl");
    assert!(json["evaluation"]["sets"][0]["scores"]["recall_direct"]["wilson_95"].is_array());

    // Below the minimum: PII016 fails the privacy gate, naming the set.
    let out = gates(
        &evaluation(&["labelled/dev.jsonl", "labelled/hard.jsonl"], Some(0.5)),
        &[],
    );
    assert_eq!(out.privacy.verdict, gatehouse_core::report::Verdict::Fail);
    assert_eq!(out.privacy.counts["PII016"].found, 1);
    let f = out
        .privacy
        .findings
        .iter()
        .find(|f| f.code == "PII016")
        .unwrap();
    assert_eq!(f.subject, "labelled/hard.jsonl");
    assert_eq!(f.name, "measured-recall-below-minimum");
    assert!(!report_text().contains("kettle"), "text in the report");
    // report.html shows the measurement, well-formed and without the text.
    let page = text(&store, &format!("{LOC}report.html"));
    roxmltree::Document::parse(page.trim_start_matches("<!DOCTYPE html>\n"))
        .expect("report.html is well-formed");
    assert!(page.contains("Measured redaction on labelled sets"));
    assert!(page.contains("labelled/hard.jsonl") && !page.contains("kettle"));
    // A waiver with its reason makes it a warning.
    let waiver: gatehouse_core::waiver::Waiver = toml::from_str(
        "code = \"PII016\"\nreason = \"the hard set is a known gap\"\napprover = \"privacy@example.org\"\nexpires = \"2099-01-01\"\n",
    )
    .unwrap();
    let out = gates(
        &evaluation(&["labelled/dev.jsonl", "labelled/hard.jsonl"], Some(0.5)),
        &[waiver],
    );
    assert_eq!(out.privacy.verdict, gatehouse_core::report::Verdict::Warn);

    // A malformed line fails the gate by key:line, without the text; so does a missing set.
    store
        .put(
            "labelled/bad.jsonl",
            b"{\"text\":\"fine\",\"spans\":[]}\n{\"text\":\"a secret kettle\",\"spans\":[{\"start\":0,\"end\":99,\"type\":\"PERSON\"}]}\n".to_vec(),
        )
        .unwrap();
    let out = gates(
        &evaluation(&["labelled/bad.jsonl", "labelled/gone.jsonl"], None),
        &[],
    );
    assert_eq!(out.privacy.verdict, gatehouse_core::report::Verdict::Fail);
    assert_eq!(out.privacy.counts["PII018"].found, 2);
    let subjects: Vec<&str> = out
        .privacy
        .findings
        .iter()
        .filter(|f| f.code == "PII018")
        .map(|f| f.subject.as_str())
        .collect();
    assert_eq!(subjects, ["labelled/bad.jsonl:2", "labelled/gone.jsonl"]);
    assert!(!report_text().contains("secret"), "text in the report");

    // The sets' bytes are a resume input of the gates: a changed set is measured again.
    let config = evaluation(&["labelled/dev.jsonl"], None);
    let before = gatehouse_core::privacy::sets_digest(&store, &config).unwrap();
    assert_eq!(
        before,
        gatehouse_core::privacy::sets_digest(&store, &config).unwrap()
    );
    store
        .put("labelled/dev.jsonl", labelled_set(10, 5))
        .unwrap();
    assert_ne!(
        before,
        gatehouse_core::privacy::sets_digest(&store, &config).unwrap()
    );
    assert_eq!(
        gatehouse_core::privacy::sets_digest(&store, &Default::default()).unwrap(),
        "none"
    );
}
