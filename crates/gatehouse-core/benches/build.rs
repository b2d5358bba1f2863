//! Builds a generated store and reports throughput and peak memory.
//!
//! `cargo bench -p gatehouse-core --bench build` generates `GATEHOUSE_BENCH_CONVERSATIONS`
//! conversations (default 1,000,000, about 2 GB) into a local store: ChatML JSONL parts of
//! ~256 MB for four families and one large ShareGPT JSON-array document for the fifth, so
//! both the line and the streamed-document paths are measured. The build runs in a fresh
//! child process; its peak RSS (`VmHWM`) is reported with the wall time and MB/s of source.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use gatehouse_core::build::{self, BuildConfig, BuildContext};
use gatehouse_core::gates;
use gatehouse_core::registry::Registry;
use gatehouse_core::store::{Backend, Store, StoreConfig};
use gatehouse_synth::formats::{self, Eol};
use gatehouse_synth::{Corpus, Family};

const REGISTRY: &str = r#"
schema_version = 1
[families.professional_therapeutic]
stage = "stage1_foundation"
required = true
review = ["clinician_foundation"]
[families.priority_datasets]
stage = "stage1_foundation"
review = ["clinician_foundation"]
[families.cot_reasoning]
stage = "stage2_therapeutic_expertise"
review = ["clinician_foundation"]
[families.edge_cases]
stage = "stage3_edge_stress_test"
holdout = "strict"
review = ["clinician_edge"]
[families.voice_persona]
stage = "stage4_voice_persona"
holdout = "strict"
review = ["bias_cultural"]
"#;

fn dataset(name: &str, family: &str, include: &str, format: &str) -> String {
    // Generated ChatML carries a session id; ShareGPT records do not.
    let group = if format == "chatml" {
        "group_by = \"session_id\"\n"
    } else {
        ""
    };
    format!(
        "\n[[datasets]]\nname = \"{name}\"\nfamily = \"{family}\"\ninclude = [\"{include}\"]\nformat = \"{format}\"\n\
         {group}license_tag = \"CC0-1.0\"\n\
         provenance = {{ origin = \"gatehouse-synth\", method = \"synthetic\", consent = \"no real persons\" }}\n"
    )
}

fn main() {
    let s = support::setup("build", 1_000_000);
    if s.child {
        return child(&s.root);
    }
    let bytes = generate(&s.root, s.n);
    let wall = support::run_child(&s);
    println!(
        "{} conversations, {:.2} GB of source in {wall:.1}s wall = {:.0} MB/s ({} cores)",
        s.n,
        bytes as f64 / 1e9,
        bytes as f64 / 1e6 / wall,
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
}

/// Writes the store once; reuses it when present. Returns source bytes.
fn generate(root: &Path, n: u64) -> u64 {
    let marker = root.join(".complete");
    if let Ok(s) = std::fs::read_to_string(&marker) {
        return s.trim().parse().unwrap();
    }
    let _ = std::fs::remove_dir_all(root);
    let started = Instant::now();
    let corpus = Corpus::new(7);
    let mut total = 0u64;
    let per_family = n / 5;
    for (fi, family) in Family::ALL.iter().enumerate() {
        if *family == Family::VoicePersona {
            let path = root.join("sources/voice/sharegpt.json");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
            formats::json_array(
                &mut w,
                (0..per_family).map(|i| formats::sharegpt_value(&corpus.conversation(*family, i))),
                None,
            )
            .unwrap();
            w.flush().unwrap();
            total += std::fs::metadata(&path).unwrap().len();
            continue;
        }
        let mut part = 0;
        let mut written = u64::MAX;
        let mut w: Option<BufWriter<std::fs::File>> = None;
        for i in 0..per_family {
            if written > 256 << 20 {
                if let Some(mut old) = w.take() {
                    old.flush().unwrap();
                }
                let path = root.join(format!("sources/f{fi}/part-{part:03}.jsonl"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                w = Some(BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(path).unwrap(),
                ));
                part += 1;
                written = 0;
            }
            let mut buf = Vec::with_capacity(4096);
            formats::chatml_jsonl(&mut buf, &corpus.conversation(*family, i), Eol::Lf).unwrap();
            w.as_mut().unwrap().write_all(&buf).unwrap();
            written += buf.len() as u64;
            total += buf.len() as u64;
        }
        w.unwrap().flush().unwrap();
    }
    std::fs::write(&marker, total.to_string()).unwrap();
    println!(
        "generated {total} bytes in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    total
}

fn child(root: &Path) {
    let mut text = REGISTRY.to_string();
    for (fi, fam) in [
        "professional_therapeutic",
        "priority_datasets",
        "cot_reasoning",
        "edge_cases",
    ]
    .iter()
    .enumerate()
    {
        text.push_str(&dataset(
            &format!("d{fi}"),
            fam,
            &format!("sources/f{fi}/"),
            "chatml",
        ));
    }
    text.push_str(&dataset(
        "voice",
        "voice_persona",
        "sources/voice/",
        "sharegpt",
    ));
    let registry = Registry::parse(Path::new("bench.toml"), &text, String::new()).unwrap();
    let store = Store::open(&StoreConfig {
        backend: Backend::Local {
            root: root.to_path_buf(),
        },
        exports_prefix: "exports".into(),
    })
    .unwrap();
    let detector = gatehouse_text::pii::Detector::new();
    let ctx = BuildContext {
        release_version: "v2026-11-25",
        location: "exports/releases/v2026-11-25/",
        release_date: None,
        config_digest: String::new(),
        artefacts: Vec::new(),
        detector: &detector,
    };
    let started = Instant::now();
    let out = build::run(
        &store,
        &registry,
        &BuildConfig::default(),
        &ctx,
        &mut |_| {},
    )
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let hwm = support::peak_rss_mb();
    println!(
        "build: {} records exported ({} quarantined) in {secs:.1}s, peak RSS {hwm:.0} MB, verdict {:?}",
        out.report.records_exported, out.report.records_quarantined, out.report.verdict
    );

    // The privacy and provenance gates over the export just built.
    let started = Instant::now();
    let g = gates::run(
        &store,
        &registry,
        ctx.location,
        gates::Policy {
            config: &gates::GatesConfig::default(),
            waivers: &[],
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            limits: &BuildConfig::default().limits,
            dedup: &BuildConfig::default().dedup,
            tokenizer: &Default::default(),
            detector: &detector,
            evaluation: &Default::default(),
        },
    )
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let m = &g.privacy.detail.metrics;
    println!(
        "gates: {} records, {:.0} MB of export read in {secs:.1}s ({:.1} MB/s), peak RSS {:.0} MB, privacy {:?}, provenance {:?}, dedup {:?}, leakage {:?} ({} candidate pairs verified)",
        m.records_scanned,
        m.bytes_read as f64 / 1e6,
        m.bytes_read as f64 / 1e6 / secs,
        support::peak_rss_mb(),
        g.privacy.verdict,
        g.provenance.verdict,
        g.dedup.verdict,
        g.leakage.verdict,
        g.leakage.detail.certificate.candidates_verified,
    );
}
