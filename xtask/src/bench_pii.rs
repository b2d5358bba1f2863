//! `cargo xtask bench pii`: the PII detector against the planted corpus.
#![allow(clippy::print_stdout)] // a benchmark report: stdout is its interface
//!
//! Generates conversations with planted identifiers and decoys (gatehouse-synth), runs the
//! detector on every message and scores it (precision, recall, F2 per type, decoys touched),
//! then times detection alone and detection + redaction (`redact_conversation`, what the
//! build runs) on one thread over the same text. Prints a table; nothing is written.

use std::time::Instant;

use anyhow::{Context, Result};
use gatehouse_synth::Corpus;
use gatehouse_synth::pii::{self, DecoyKind, Detected, Score};
use gatehouse_text::pii::{Allowlist, Detector, UnsurePolicy, redact_conversation};

use super::flag;

pub fn bench_pii(args: &[String]) -> Result<()> {
    let n: u64 = flag(args, "--conversations").map_or(Ok(20_000), |s| s.parse())?;
    let seed: u64 = flag(args, "--seed").map_or(Ok(20_261_125), |s| s.parse())?;
    let corpus = Corpus::new(seed);
    let started = Instant::now();
    let conversations: Vec<_> = (0..n).map(|i| pii::conversation(&corpus, i)).collect();
    let generated = started.elapsed();
    let detector = Detector::new();
    let allow = Allowlist::default();

    // Synthetic text only: safe to print for diagnosis.
    let show = flag(args, "--show");
    let mut shown = 0;
    let mut score = Score::default();
    for c in &conversations {
        for (_, m) in &c.messages {
            let found: Vec<Detected> = detector
                .detect(&m.text, &allow)
                .into_iter()
                .map(|s| Detected {
                    label: s.kind.label().to_string(),
                    start: s.start,
                    end: s.end,
                })
                .collect();
            if let Some(label) = &show
                && shown < 40
            {
                shown += show_errors(m, &found, label);
            }
            score.add(m, &found);
        }
    }
    let bytes = score.bytes as f64;

    // Timed passes, one thread.
    let t = Instant::now();
    let mut spans = 0usize;
    for c in &conversations {
        for (_, m) in &c.messages {
            spans += detector.detect(&m.text, &allow).len();
        }
    }
    let detect_secs = t.elapsed().as_secs_f64();
    let mut texts: Vec<Vec<String>> = conversations
        .iter()
        .map(|c| c.messages.iter().map(|(_, m)| m.text.clone()).collect())
        .collect();
    let t = Instant::now();
    let mut redacted = 0u64;
    for c in &mut texts {
        let r = redact_conversation(&detector, &allow, UnsurePolicy::Redact, c.iter_mut());
        redacted += u64::from(r.total());
    }
    let redact_secs = t.elapsed().as_secs_f64();

    println!(
        "planted corpus: seed {seed}, {n} conversations, {} messages, {:.1} MB (generated in {:.1} s)\n",
        score.messages,
        bytes / 1e6,
        generated.as_secs_f64()
    );
    print!("{}", score.table());
    let crisis_hit = score
        .decoys_hit
        .get(&DecoyKind::Crisis)
        .copied()
        .unwrap_or(0);
    println!(
        "\nthroughput, one thread: detection {:.1} MB/s ({spans} spans); detection + redaction {:.1} MB/s ({redacted} redactions)",
        bytes / 1e6 / detect_secs,
        bytes / 1e6 / redact_secs,
    );
    let overall = score.overall();
    println!(
        "overall precision {:.4}, recall {:.4}, F2 {:.4}; crisis decoys redacted: {crisis_hit}",
        overall.precision(),
        overall.recall(),
        overall.f2()
    );
    std::hint::black_box(&texts)
        .first()
        .context("no conversations generated")?;
    Ok(())
}

/// Prints planted `label` spans that were missed and `label` detections that were wrong.
fn show_errors(m: &pii::Message, found: &[Detected], label: &str) -> usize {
    let mut n = 0;
    let around = |start: usize, end: usize| {
        let a = m.text[..start]
            .char_indices()
            .rev()
            .nth(30)
            .map_or(0, |(i, _)| i);
        let b = m.text[end..]
            .char_indices()
            .nth(30)
            .map_or(m.text.len(), |(i, _)| end + i);
        format!(
            "{}[[{}]]{}",
            &m.text[a..start],
            &m.text[start..end],
            &m.text[end..b]
        )
    };
    for t in m.planted.iter().filter(|t| t.kind.label() == label) {
        let hit: Vec<String> = found
            .iter()
            .filter(|d| d.start < t.end && t.start < d.end)
            .map(|d| format!("{}:{:?}", d.label, &m.text[d.start..d.end]))
            .collect();
        let full = found
            .iter()
            .any(|d| d.label == label && d.start <= t.start && d.end >= t.end);
        if !full {
            println!("MISS {:?}  got {hit:?}", around(t.start, t.end));
            n += 1;
        }
    }
    for d in found.iter().filter(|d| d.label == label) {
        if !m
            .planted
            .iter()
            .any(|t| t.kind.label() == label && d.start < t.end && t.start < d.end)
        {
            println!("FALSE {:?}", around(d.start, d.end));
            n += 1;
        }
    }
    n
}
