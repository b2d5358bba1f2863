//! The detector on labelled sets it was not written against (`../shared/data/pii_dev`, the
//! test splits): recall and precision held to floors, every redacted text scanning clean
//! (the build's output is a fixpoint of the gate's scan), crisis numbers never altered.
//!
//! The sets are third-party text for testing only and are never copied into the repository;
//! without `../shared` (a user's clone) these tests skip, in CI (`CI` set) they fail.
//! The floors are what the detector measures today less a margin for noise, so a change
//! that loses recall fails here; `cargo xtask bench pii` prints the full tables.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::path::PathBuf;

use gatehouse_synth::{Corpus, pii};
use gatehouse_text::pii::eval::{Document, Evaluation};
use gatehouse_text::pii::{Allowlist, Detector, UnsurePolicy, redact_conversation};

fn dev_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pii_dev");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs these tests: ../shared/data/pii_dev is missing"
    );
    eprintln!("skipped: ../shared/data/pii_dev is not here");
    None
}

fn documents(dir: &std::path::Path, set: &str) -> Vec<Document> {
    std::fs::read_to_string(dir.join(set))
        .unwrap()
        .lines()
        .map(|l| Document::parse(l).unwrap())
        .collect()
}

fn evaluate(docs: &[Document]) -> Evaluation {
    let detector = Detector::new();
    let mut e = Evaluation::default();
    for d in docs {
        e.add(&detector, &Allowlist::default(), d);
    }
    e
}

#[track_caller]
fn at_least(e: &Evaluation, label: &str, floor: f64) {
    let r = if label == "direct" {
        e.recall_direct
    } else {
        e.recall_by_type[label]
    };
    let v = r.value().unwrap();
    assert!(v >= floor, "{label} recall {v:.3} < {floor}\n{}", e.table());
}

#[track_caller]
fn precise(e: &Evaluation, floor: f64) {
    let v = e.precision.value().unwrap();
    assert!(v >= floor, "precision {v:.3} < {floor}\n{}", e.table());
}

#[test]
fn dialogues_names_addresses_phones() {
    let Some(dir) = dev_dir() else { return };
    let e = evaluate(&documents(&dir, "sgd/sgd_test.jsonl"));
    at_least(&e, "PERSON", 0.91);
    at_least(&e, "ADDRESS", 0.86);
    at_least(&e, "PHONE", 0.99);
    // SGD's gold is incomplete (artists, films, brands unlabelled): see its README.
    precise(&e, 0.75);
}

#[test]
fn tweets_and_social_text_persons() {
    let Some(dir) = dev_dir() else { return };
    let btc = evaluate(&documents(&dir, "btc/btc_test.jsonl"));
    at_least(&btc, "PERSON", 0.88);
    precise(&btc, 0.86);
    let wnut = evaluate(&documents(&dir, "wnut17/wnut17_test.jsonl"));
    at_least(&wnut, "PERSON", 0.48);
    precise(&wnut, 0.72);
}

#[test]
fn therapy_client_sentences() {
    let Some(dir) = dev_dir() else { return };
    let e = evaluate(&documents(&dir, "confide_en/confide_en.jsonl"));
    at_least(&e, "PERSON", 1.0);
    at_least(&e, "direct", 0.90);
    precise(&e, 0.95);
}

/// Redacts `texts` as one conversation and checks the output scans clean and keeps every
/// crisis number it held; false when the redaction did not settle (the build would
/// quarantine the record), which the callers bound so the check cannot pass vacuously.
#[track_caller]
fn settles(detector: &Detector, texts: &[String]) -> bool {
    let mut out = texts.to_vec();
    let r = redact_conversation(
        detector,
        &Allowlist::default(),
        UnsurePolicy::Redact,
        out.iter_mut(),
    );
    if r.unsettled {
        // Quarantined by the build (Q014), never exported: nothing to check.
        return false;
    }
    let views: Vec<&str> = out.iter().map(String::as_str).collect();
    let again = detector.detect_conversation(&views, &Allowlist::default());
    assert!(
        again.iter().all(Vec::is_empty),
        "a redacted conversation still holds detections: {:?}",
        again
            .iter()
            .flatten()
            .map(|s| (s.kind, s.rule))
            .collect::<Vec<_>>()
    );
    for crisis in ["988", "741741", "1-800-273-8255", "911", "116 123"] {
        let before: usize = texts.iter().map(|t| standalone(t, crisis)).sum();
        let after: usize = out.iter().map(|t| standalone(t, crisis)).sum();
        assert_eq!(before, after, "the crisis number {crisis} was altered");
    }
    true
}

/// Occurrences of `number` not inside a longer number or code ("988", not "415-988-1234"
/// or "c911:6bc0::1").
fn standalone(text: &str, number: &str) -> usize {
    let joined = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "-.:".contains(c));
    text.match_indices(number)
        .filter(|(i, _)| {
            let before = text[..*i].chars().next_back();
            let after = text[i + number.len()..].chars().next();
            let after2 = text[i + number.len()..].chars().nth(1);
            // "ext. 988" is the extension of a personal number.
            let extension = text[..*i].trim_end().to_ascii_lowercase().ends_with("ext.")
                || text[..*i].trim_end().to_ascii_lowercase().ends_with("ext");
            let continued = after.is_some_and(|c| c.is_alphanumeric() || c == ':')
                || matches!(after, Some('-' | '.')) && after2.is_some_and(|c| c.is_ascii_digit());
            !(joined(before) || extension || continued)
        })
        .count()
}

#[test]
fn every_redacted_dev_text_scans_clean() {
    let Some(dir) = dev_dir() else { return };
    let detector = Detector::new();
    for set in [
        "sgd/sgd_test.jsonl",
        "btc/btc_test.jsonl",
        "wnut17/wnut17_test.jsonl",
        "confide_en/confide_en.jsonl",
    ] {
        let docs = documents(&dir, set);
        let settled = docs
            .iter()
            .filter(|d| settles(&detector, std::slice::from_ref(&d.text)))
            .count();
        assert!(settled > 0, "{set}: nothing settled");
        unsettled_at_most(set, settled, docs.len());
    }
}

#[test]
fn every_redacted_generated_conversation_scans_clean() {
    let detector = Detector::new();
    let corpus = Corpus::new(3);
    let mut settled = 0;
    for i in 0..5_000 {
        let c = pii::conversation(&corpus, i);
        let texts: Vec<String> = c.messages.into_iter().map(|(_, m)| m.text).collect();
        settled += usize::from(settles(&detector, &texts));
    }
    unsettled_at_most("generated", settled, 5_000);
}

/// Redaction settles for all but a sliver (0.1%) of the texts.
#[track_caller]
fn unsettled_at_most(set: &str, settled: usize, total: usize) {
    assert!(
        (total - settled) * 1000 <= total,
        "{set}: {} of {total} redactions did not settle",
        total - settled
    );
}
