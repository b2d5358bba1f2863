//! `cargo xtask bench record [--mb 10,30,60] [--work DIR]`: peak memory of a build against
//! the size of its largest record (issue 18, item 6).
#![allow(clippy::print_stdout)] // a benchmark report: stdout is its interface
//!
//! For each size, writes a local store holding one `prompt_response` JSONL object whose
//! first line carries a prompt of that many MB of synthetic prose (with names, places and a
//! street address, so the PII detector has work), then runs `gatehouse build` of the
//! release binary under `/usr/bin/time -v` with one worker (`RAYON_NUM_THREADS=1`) and
//! prints peak RSS, its ratio to the record size and the wall time.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::bench_e2e::{build_binary, loadavg, parse_time_v};
use super::flag;

const REGISTRY: &str = r#"schema_version = 1

[families.priority_datasets]
stage = "stage1_foundation"
required = true
holdout = "none"
review = ["clinician_foundation"]
description = "One very large record."

[[datasets]]
name = "bench_large_record"
family = "priority_datasets"
include = ["sources/large.jsonl"]
format = "prompt_response"
license_tag = "CC0-1.0"
provenance = { origin = "cargo xtask bench record", method = "synthetic prose", consent = "synthetic text; no real persons" }
"#;

const WORDS: &[&str] = &[
    "I", "have", "been", "feeling", "anxious", "since", "my", "sister", "Maria", "moved", "to",
    "Lisbon", "and", "I", "keep", "thinking", "about", "what", "Dr.", "Okafor", "said", "at",
    "the", "clinic", "on", "12", "Main", "Street", "last", "week,", "it", "helps", "a", "little.",
];

pub fn bench_record(args: &[String]) -> Result<()> {
    let sizes: Vec<u64> = flag(args, "--mb")
        .unwrap_or_else(|| "10,30,60".to_string())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .context("--mb takes sizes in MB, e.g. 10,30,60")
        })
        .collect::<Result<_>>()?;
    let work = flag(args, "--work").map_or_else(
        || std::env::temp_dir().join("gatehouse-bench-record"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&work)?;
    let bin = build_binary(&work)?;
    println!(
        "largest record vs peak RSS: gatehouse build, release binary, 1 worker (load {})\n",
        loadavg().unwrap_or_default()
    );
    println!(
        "{:>10} {:>14} {:>12} {:>8}",
        "record MB", "peak RSS MB", "RSS/record", "wall s"
    );
    for mb in sizes {
        let dir = work.join(format!("record-{mb}mb"));
        let _ = std::fs::remove_dir_all(&dir);
        let store = dir.join("store");
        std::fs::create_dir_all(store.join("sources"))?;
        std::fs::write(dir.join("registry.toml"), REGISTRY)?;
        let mut f =
            std::io::BufWriter::new(std::fs::File::create(store.join("sources/large.jsonl"))?);
        let target = mb * 1_000_000;
        let mut prompt = String::with_capacity(target as usize + 64);
        let mut i = 0usize;
        while (prompt.len() as u64) < target {
            prompt.push_str(WORDS[i % WORDS.len()]);
            prompt.push(' ');
            i += 7;
        }
        serde_json::to_writer(
            &mut f,
            &serde_json::json!({"prompt": prompt, "response": "Thank you for telling me."}),
        )?;
        f.write_all(b"\n")?;
        f.write_all(b"{\"prompt\":\"A small one.\",\"response\":\"Thank you.\"}\n")?;
        f.flush()?;
        drop(f);
        let out = Command::new("/usr/bin/time")
            .arg("-v")
            .arg(&bin)
            .args(["--registry", "registry.toml", "-q", "build"])
            .current_dir(&dir)
            .env("RAYON_NUM_THREADS", "1")
            .env("DATASET_STORAGE_BACKEND", "local")
            .env("DATASET_STORAGE_LOCAL_PATH", &store)
            .env("SOURCE_DATE_EPOCH", "1767225600")
            .output()
            .context("cannot run /usr/bin/time (apt-get install time)")?;
        if !out.status.success() {
            bail!(
                "gatehouse build of a {mb} MB record exited with {} in {}",
                out.status,
                dir.display()
            );
        }
        let m = parse_time_v(&String::from_utf8_lossy(&out.stderr))?;
        let rss_mb = m.max_rss_kb as f64 / 1024.0;
        println!(
            "{:>10} {:>14.0} {:>12.1} {:>8.1}",
            mb,
            rss_mb,
            rss_mb / mb as f64,
            m.wall_secs
        );
    }
    Ok(())
}
