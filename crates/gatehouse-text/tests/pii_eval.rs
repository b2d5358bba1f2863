//! The detector against the planted corpus of gatehouse-synth (identifiers of every type in
//! many formats, casings and positions, plus decoys), held to the targets of the privacy
//! gate. `cargo xtask bench pii` prints the full table and the throughput.

#![allow(clippy::unwrap_used)]

use gatehouse_synth::Corpus;
use gatehouse_synth::pii::{self, DecoyKind, Detected, Score};
use gatehouse_text::pii::{Allowlist, Detector};

#[test]
fn planted_pii_is_found_and_decoys_are_left_alone() {
    let detector = Detector::new();
    let allow = Allowlist::default();
    // A different seed from the benchmark's default, so this is not the set tuned on.
    let corpus = Corpus::new(7);
    let mut score = Score::default();
    for i in 0..20_000 {
        for (_, m) in &pii::conversation(&corpus, i).messages {
            let found: Vec<Detected> = detector
                .detect(&m.text, &allow)
                .into_iter()
                .map(|s| Detected {
                    label: s.kind.label().to_string(),
                    start: s.start,
                    end: s.end,
                })
                .collect();
            score.add(m, &found);
        }
    }
    let table = score.table();
    for label in ["EMAIL", "PHONE", "SSN", "CARD", "IP"] {
        let c = score.by_label[label];
        assert!(c.planted > 300, "{label} is planted\n{table}");
        assert!(c.recall() >= 0.99, "{label} recall\n{table}");
    }
    for label in ["NAME", "ADDRESS", "DOB"] {
        assert!(
            score.by_label[label].recall() >= 0.95,
            "{label} recall\n{table}"
        );
    }
    assert!(score.overall().precision() >= 0.95, "precision\n{table}");
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
