//! `cargo xtask bench pii`: the PII detector against the planted corpus.
#![allow(clippy::print_stdout)] // a benchmark report: stdout is its interface
//!
//! Generates conversations with planted identifiers and decoys (gatehouse-synth), runs the
//! detector on every message and scores it (precision, recall, F2 per type, decoys touched),
//! then times detection alone and detection + redaction (`redact_conversation`, what the
//! build runs) on one thread over the same text, and scans the redacted text as the privacy
//! gate does (`detect_conversation`), counting what it still finds. Then scores every labelled dev set in
//! `../shared/data/pii_dev` (`*/*_test.jsonl` and `confide_en/confide_en.jsonl`; `--pii-dev
//! DIR` elsewhere; skipped with a note when absent) with `pii::eval`, as `gatehouse pii eval`
//! does, and prints one table: precision, direct recall, F2 and recall per direct type.
//! Prints tables of counts and rates; nothing is written, no labelled text is printed.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use gatehouse_synth::Corpus;
use gatehouse_synth::pii::{self, DecoyKind, Detected, Score};
use gatehouse_text::pii::eval::{Document, Evaluation, Rate, is_direct};
use gatehouse_text::pii::{
    Allowlist, DatePolicy, Detector, Policy, UnsurePolicy, redact_conversation,
};

use super::flag;

pub fn bench_pii(args: &[String]) -> Result<()> {
    let n: u64 = flag(args, "--conversations").map_or(Ok(20_000), |s| s.parse())?;
    let seed: u64 = flag(args, "--seed").map_or(Ok(20_261_125), |s| s.parse())?;
    let corpus = Corpus::new(seed);
    let started = Instant::now();
    let conversations: Vec<_> = (0..n).map(|i| pii::conversation(&corpus, i)).collect();
    let generated = started.elapsed();
    let dates = match flag(args, "--dates").as_deref() {
        None | Some("birth") => DatePolicy::Birth,
        Some("all") => DatePolicy::All,
        Some(other) => anyhow::bail!("--dates {other}: expected birth or all"),
    };
    let detector = Detector::with_policy(Policy {
        dates,
        ..Policy::default()
    });
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
    let mut unsettled = vec![false; texts.len()];
    for (c, unsettled) in texts.iter_mut().zip(&mut unsettled) {
        let r = redact_conversation(&detector, &allow, UnsurePolicy::Redact, c.iter_mut());
        redacted += u64::from(r.total());
        *unsettled = r.unsettled;
    }
    let redact_secs = t.elapsed().as_secs_f64();
    // The privacy gate's scan of what the build would export: a record whose redaction did
    // not settle is quarantined (Q014), every other one must scan clean.
    let mut gate = GateScan::default();
    for (c, unsettled) in texts.iter().zip(&unsettled) {
        if *unsettled {
            gate.quarantined += 1;
            continue;
        }
        gate.exported += 1;
        let refs: Vec<&str> = c.iter().map(String::as_str).collect();
        let found: usize = detector
            .detect_conversation(&refs, &allow)
            .iter()
            .map(Vec::len)
            .sum();
        if found > 0 {
            gate.records_with_detections += 1;
            gate.detections += found as u64;
        }
    }

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
    println!(
        "gate scan of the redacted export: {} detections in {} of {} exported conversations; {} quarantined as unsettled (Q014)",
        gate.detections, gate.records_with_detections, gate.exported, gate.quarantined
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
    println!();
    dev_sets(args, &detector)
}

/// What the privacy gate would find in the export of the planted corpus.
#[derive(Default)]
struct GateScan {
    exported: u64,
    quarantined: u64,
    records_with_detections: u64,
    detections: u64,
}

/// The labelled dev sets: `DIR/*/*_test.jsonl` and `DIR/confide_en/confide_en.jsonl`.
fn dev_set_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    for sub in subdirs {
        let mut here: Vec<PathBuf> = std::fs::read_dir(&sub)
            .with_context(|| format!("cannot list {}", sub.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("_test.jsonl"))
            })
            .collect();
        here.sort();
        files.extend(here);
    }
    let confide = dir.join("confide_en/confide_en.jsonl");
    if confide.is_file() {
        files.push(confide);
    }
    Ok(files)
}

/// Scores every dev set and prints one table.
fn dev_sets(args: &[String], detector: &Detector) -> Result<()> {
    let dir = flag(args, "--pii-dev").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pii_dev"),
        PathBuf::from,
    );
    if !dir.is_dir() {
        println!(
            "labelled dev sets: skipped, {} is not present (it holds third-party data, never in this repository)",
            dir.display()
        );
        return Ok(());
    }
    let allow = Allowlist::default();
    let mut rows: Vec<(String, Evaluation)> = Vec::new();
    for file in dev_set_files(&dir)? {
        let name = file
            .strip_prefix(&dir)
            .unwrap_or(&file)
            .display()
            .to_string();
        let reader = BufReader::new(
            std::fs::File::open(&file).with_context(|| format!("cannot read {name}"))?,
        );
        let mut e = Evaluation::default();
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("{name}:{}: unreadable", i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            // Never the text: the line number and the parser's content-free message.
            let doc = Document::parse(&line).map_err(|e| anyhow!("{name}:{}: {e}", i + 1))?;
            e.add(detector, &allow, &doc);
        }
        rows.push((name, e));
    }
    let direct: BTreeSet<String> = rows
        .iter()
        .flat_map(|(_, e)| e.recall_by_type.keys())
        .filter(|k| is_direct(k))
        .cloned()
        .collect();
    let value = |r: &Rate| {
        r.value()
            .map_or_else(|| "-".to_string(), |v| format!("{v:.3}"))
    };
    let policy = detector.policy();
    println!(
        "labelled dev sets in {}, dates {:?}, disabled {:?}; recall: labels at least half replaced; precision: replaced regions overlapping a label",
        dir.canonicalize().unwrap_or(dir.clone()).display(),
        policy.dates,
        policy.disabled
    );
    let mut header = format!(
        "{:<32} {:>6} {:>9} {:>13} {:>6}",
        "set", "docs", "precision", "direct recall", "F2"
    );
    for t in &direct {
        header.push_str(&format!(" {:>14}", t));
    }
    println!("{header}");
    for (name, e) in &rows {
        let mut line = format!(
            "{:<32} {:>6} {:>9} {:>13} {:>6}",
            name,
            e.documents,
            value(&e.precision),
            value(&e.recall_direct),
            e.f2_direct()
                .map_or_else(|| "-".to_string(), |f| format!("{f:.3}"))
        );
        for t in &direct {
            let cell = e.recall_by_type.get(t).map_or_else(
                || "-".to_string(),
                |r| format!("{} ({})", value(r), r.total),
            );
            line.push_str(&format!(" {cell:>14}"));
        }
        println!("{line}");
        if e.unsettled > 0 {
            println!("{:<32} {} document(s) did not settle", "", e.unsettled);
        }
    }
    println!("direct-type cells: recall (labelled spans); intervals: `gatehouse pii eval FILE`");
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
