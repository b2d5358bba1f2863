//! The detector against the planted corpus of gatehouse-synth (identifiers of every type in
//! many formats, casings and positions, plus decoys), held to the targets of the privacy
//! gate. `cargo xtask bench pii` prints the full table and the throughput.

#![allow(clippy::unwrap_used)]

use gatehouse_synth::Corpus;
use gatehouse_synth::pii::{self, DecoyKind, Detected, Score};
use gatehouse_text::pii::{Allowlist, Detector, replaced_regions};

#[test]
fn planted_pii_is_found_and_decoys_are_left_alone() {
    let detector = Detector::new();
    let allow = Allowlist::default();
    // A different seed from the benchmark's default, so this is not the set tuned on.
    let corpus = Corpus::new(7);
    let mut score = Score::default();
    for i in 0..20_000 {
        // Scored on what the build replaces: the conversation's fixpoint redaction.
        let c = pii::conversation(&corpus, i);
        let texts: Vec<&str> = c.messages.iter().map(|(_, m)| m.text.as_str()).collect();
        let (regions, _) = replaced_regions(&detector, &allow, &texts);
        for ((_, m), rs) in c.messages.iter().zip(regions) {
            let found: Vec<Detected> = rs
                .into_iter()
                .map(|r| Detected {
                    label: r.kind.label().to_string(),
                    start: r.start,
                    end: r.end,
                })
                .collect();
            score.add(m, &found);
        }
    }
    let table = score.table();
    for label in [
        "EMAIL",
        "PHONE",
        "SSN",
        "CARD",
        "IP",
        "ID_NUMBER",
        "HANDLE",
        "URL",
    ] {
        let c = score.by_label[label];
        assert!(c.planted > 300, "{label} is planted\n{table}");
        assert!(c.recall() >= 0.99, "{label} recall\n{table}");
    }
    for label in ["NAME", "ADDRESS", "DOB"] {
        assert!(
            score.by_label[label].recall() >= 0.97,
            "{label} recall\n{table}"
        );
    }
    assert!(score.overall().precision() >= 0.99, "precision\n{table}");
    assert_eq!(
        score
            .decoys_hit
            .get(&DecoyKind::Crisis)
            .copied()
            .unwrap_or(0),
        0,
        "a crisis resource was detected\n{table}"
    );
}
