//! Deduplication on a corpus with planted duplicates: recall, precision, signature speed,
//! and the whole build's time and peak memory.
//!
//! `cargo bench -p gatehouse-core --bench dedup` writes `GATEHOUSE_BENCH_CONVERSATIONS`
//! records (default 100,000) of `gatehouse_synth::dups` (originals, exact copies re-cased
//! and re-spaced, near copies at six edit rates, members of shared templates that are
//! different conversations) as ChatML JSONL parts for four families, then builds them in a
//! fresh child process and scores the removals against the ground truth:
//!
//! - recall: planted pairs (original, copy) of which the export no longer holds both, by
//!   the true Jaccard index of the pair (1, 0.8–1, 0.7–0.8, and below 0.7 for
//!   information), and how many ended in the same cluster;
//! - precision: removals whose removed and kept records come from the same original (or
//!   are identical conversations generated twice); a template member merged with another,
//!   or any other pair, is a false positive;
//! - signatures: shingling + MinHash + band keys, one thread, MB/s of message text.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use gatehouse_core::build::{self, BuildConfig, BuildContext};
use gatehouse_core::registry::Registry;
use gatehouse_core::store::{Backend, Store, StoreConfig};
use gatehouse_synth::Speaker;
use gatehouse_synth::dups::{Kind, Stream};
use gatehouse_synth::formats::{self, Eol};
use gatehouse_text::dedup::{MinHasher, NearDupParams, Shingler, exact_key, jaccard};

const PER_PART: u64 = 50_000;
const FAMILIES: [&str; 4] = [
    "professional_therapeutic",
    "priority_datasets",
    "cot_reasoning",
    "edge_cases",
];

fn registry() -> Registry {
    let mut text = String::from("schema_version = 1\n");
    for (i, f) in FAMILIES.iter().enumerate() {
        let holdout = if *f == "edge_cases" { "strict" } else { "none" };
        text.push_str(&format!(
            "[families.{f}]\nstage = \"stage{}_x\"\nholdout = \"{holdout}\"\nreview = [\"clinician_foundation\"]\n",
            i + 1
        ));
    }
    for (i, f) in FAMILIES.iter().enumerate() {
        text.push_str(&format!(
            "[[datasets]]\nname = \"d{i}\"\nfamily = \"{f}\"\ninclude = [\"sources/f{i}/\"]\nformat = \"chatml\"\n\
             group_by = \"session_id\"\nlicense_tag = \"CC0-1.0\"\n\
             provenance = {{ origin = \"gatehouse-synth\", method = \"synthetic\", consent = \"no real persons\" }}\n"
        ));
    }
    Registry::parse(Path::new("bench.toml"), &text, String::new()).unwrap()
}

/// Where each record goes: family index and position within the family.
fn layout(stream: &Stream, n: u64) -> Vec<Vec<u64>> {
    let mut per_family: Vec<Vec<u64>> = vec![Vec::new(); FAMILIES.len()];
    for i in 0..n {
        let f = stream.record(i).family;
        let fi = FAMILIES.iter().position(|x| *x == f.name()).unwrap();
        per_family[fi].push(i);
    }
    per_family
}

fn main() {
    let s = support::setup("dedup", 100_000);
    if s.child {
        return child(&s.root, s.n);
    }
    let bytes = generate(&s.root, s.n);
    let wall = support::run_child(&s);
    println!(
        "{} records, {:.2} GB of source; child wall {wall:.1}s",
        s.n,
        bytes as f64 / 1e9
    );
}

fn generate(root: &Path, n: u64) -> u64 {
    let marker = root.join(".complete");
    if let Ok(s) = std::fs::read_to_string(&marker) {
        return s.trim().parse().unwrap();
    }
    let _ = std::fs::remove_dir_all(root);
    let stream = Stream::new(11);
    let mut total = 0u64;
    for (fi, indices) in layout(&stream, n).iter().enumerate() {
        for (p, chunk) in indices.chunks(PER_PART as usize).enumerate() {
            let path = root.join(format!("sources/f{fi}/part-{p:03}.jsonl"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
            for &i in chunk {
                formats::chatml_jsonl(&mut w, &stream.record(i).conversation, Eol::Lf).unwrap();
            }
            w.flush().unwrap();
            total += std::fs::metadata(&path).unwrap().len();
        }
    }
    std::fs::write(&marker, total.to_string()).unwrap();
    total
}

fn texts(turns: &[(Speaker, String)]) -> impl Iterator<Item = &str> {
    turns
        .iter()
        .filter(|(s, _)| *s != Speaker::System)
        .map(|(_, t)| t.as_str())
}

fn child(root: &Path, n: u64) {
    let stream = Stream::new(11);
    let registry = registry();
    let store = Store::open(&StoreConfig {
        backend: Backend::Local {
            root: root.to_path_buf(),
        },
        exports_prefix: "exports".into(),
    })
    .unwrap();
    let loc = "exports/releases/v2026-11-25/";
    let detector = gatehouse_text::pii::Detector::new();
    let ctx = BuildContext {
        release_version: "v2026-11-25",
        location: loc,
        release_date: None,
        config_digest: String::new(),
        artefacts: Vec::new(),
        detector: &detector,
    };
    let config = BuildConfig::default();
    let started = Instant::now();
    let out = build::run(&store, &registry, &config, &ctx, &mut |_| {}).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let d = &out.report.dedup;
    println!(
        "build with dedup: {} records read, {} exported, {} exact + {} near removed; {} candidate pairs, {} under the estimate floor, {} verified (largest bucket {}, {} over max_bucket); {secs:.1}s, peak RSS {:.0} MB",
        out.report.records_read,
        out.report.records_exported,
        d.exact_removed,
        d.near_removed,
        d.candidates,
        d.candidates_below_estimate,
        d.candidates_verified,
        d.largest_bucket,
        d.oversized_buckets,
        support::peak_rss_mb()
    );

    // The dedup and leakage gates over the deduplicated export.
    let t = Instant::now();
    let g = gatehouse_core::gates::run(
        &store,
        &registry,
        loc,
        gatehouse_core::gates::Policy {
            config: &gatehouse_core::gates::GatesConfig::default(),
            waivers: &[],
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            limits: &config.limits,
            dedup: &config.dedup,
            tokenizer: &config.tokenizer,
            detector: &detector,
            evaluation: &Default::default(),
        },
    )
    .unwrap();
    let c = &g.leakage.detail.certificate;
    println!(
        "gates (all five, one scan): {:.1}s, peak RSS {:.0} MB; dedup {:?}, leakage {:?}: {} candidate pairs, {} verified, complete {}",
        t.elapsed().as_secs_f64(),
        support::peak_rss_mb(),
        g.dedup.verdict,
        g.leakage.verdict,
        c.candidates,
        c.candidates_verified,
        c.complete
    );

    // Signatures, one thread.
    let params = NearDupParams::default();
    let shingler = Shingler::new(&params);
    let minhasher = MinHasher::new(&params);
    let records: Vec<_> = (0..n).map(|i| stream.record(i)).collect();
    let bytes: usize = records
        .iter()
        .flat_map(|r| r.conversation.turns.iter().map(|(_, t)| t.len()))
        .sum();
    let t = Instant::now();
    let (mut set, mut sig, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let mut sink = 0u64;
    for r in &records {
        shingler.shingles(texts(&r.conversation.turns), &mut set);
        minhasher.signature(&set, &mut sig);
        minhasher.band_keys(&sig, &mut keys);
        sink ^= keys.first().copied().unwrap_or(0);
    }
    let sig_secs = t.elapsed().as_secs_f64();
    println!(
        "signatures: {:.1} MB of message text in {sig_secs:.2}s = {:.1} MB/s on one thread ({sink:x})",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / sig_secs
    );

    // Removals, by stream index.
    let layout = layout(&stream, n);
    let index_of = |key: &str, line: u64| -> u64 {
        let fi: usize = key["sources/f".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let part: u64 = key.rsplit("part-").next().unwrap()[..3].parse().unwrap();
        layout[fi][(part * PER_PART + line - 1) as usize]
    };
    let file = std::fs::File::open(root.join(format!("{loc}dedup_removed.jsonl"))).unwrap();
    let mut kept_of: BTreeMap<u64, u64> = BTreeMap::new();
    for line in std::io::BufReader::new(file).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let i = index_of(
            v["source_key"].as_str().unwrap(),
            v["source_line"].as_u64().unwrap(),
        );
        let k = index_of(
            v["kept_source_key"].as_str().unwrap(),
            v["kept_source_line"].as_u64().unwrap(),
        );
        kept_of.insert(i, k);
    }
    let root_of = |mut i: u64| {
        while let Some(&k) = kept_of.get(&i) {
            i = k;
        }
        i
    };
    let set_of = |i: u64| {
        let mut s = Vec::new();
        shingler.shingles(texts(&records[i as usize].conversation.turns), &mut s);
        s
    };
    let exact_of = |i: u64| {
        exact_key(
            records[i as usize]
                .conversation
                .turns
                .iter()
                .map(|(s, t)| (s.role(), t.as_str())),
        )
    };

    // Recall by true Jaccard band.
    let mut bands: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    // Misses, by index and Jaccard (no text). The build dedups redacted text, so a copy
    // redacted differently from its original (e.g. an upper-case word taken for a name) can
    // fall below the threshold.
    let mut shown = 0;
    for r in &records {
        let Some(of) = r.kind.of() else { continue };
        let j = if exact_of(r.index) == exact_of(of) {
            1.0
        } else {
            jaccard(&set_of(r.index), &set_of(of))
        };
        let band = match (r.kind, j) {
            (_, j) if j >= 1.0 => "J = 1 (exact or unchanged)",
            (_, j) if j >= 0.8 => "0.8 <= J < 1",
            (_, j) if j >= 0.7 => "0.7 <= J < 0.8",
            _ => "J < 0.7 (not a near duplicate)",
        };
        if j >= 0.7 && !(kept_of.contains_key(&r.index) || kept_of.contains_key(&of)) && shown < 10
        {
            shown += 1;
            println!(
                "  missed: record {} ({:?}) and its original {of}: Jaccard {j:.3}, {} and {} shingles",
                r.index,
                r.kind,
                set_of(r.index).len(),
                set_of(of).len()
            );
        }
        let e = bands.entry(band).or_default();
        e.0 += 1;
        e.1 += u64::from(kept_of.contains_key(&r.index) || kept_of.contains_key(&of));
        e.2 += u64::from(root_of(r.index) == root_of(of));
    }
    println!("\nrecall of planted pairs (original, copy) by their true Jaccard index:");
    for (band, (planted, resolved, clustered)) in &bands {
        println!(
            "  {band:<32} {planted:>8} planted {resolved:>8} not both exported (recall {:.4}), {clustered:>8} in one cluster",
            *resolved as f64 / (*planted).max(1) as f64
        );
    }

    // Precision of removals.
    let lineage = |i: u64| records[i as usize].kind.of().unwrap_or(i);
    let (mut right, mut identical, mut template_fp, mut other_fp) = (0u64, 0u64, 0u64, 0u64);
    for (&i, &k) in &kept_of {
        if lineage(i) == lineage(k) {
            right += 1;
        } else if exact_of(i) == exact_of(k) {
            identical += 1;
        } else if matches!(records[i as usize].kind, Kind::Template { .. })
            && matches!(records[k as usize].kind, Kind::Template { .. })
        {
            template_fp += 1;
        } else {
            other_fp += 1;
        }
    }
    let removed = kept_of.len() as u64;
    println!(
        "\nremovals: {removed}; same original {right}, identical conversations generated twice {identical}; false: template members merged {template_fp}, other {other_fp}"
    );
    println!(
        "precision {:.4}",
        (right + identical) as f64 / removed.max(1) as f64
    );
}
