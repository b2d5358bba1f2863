//! `cargo xtask`: project chores that are code, not shell.
#![allow(clippy::print_stderr)] // a developer tool: stderr is its interface
//!
//! - `cargo xtask sample` regenerates `examples/sample-store` with the synthetic generator.
//! - `cargo xtask gen --out FILE --conversations N` writes a large ChatML JSONL object for
//!   benchmarks.
//! - `cargo xtask bench pii [--conversations N] [--seed S] [--dates birth|all] [--pii-dev DIR]`
//!   scores the PII detector on the planted corpus (precision, recall, F2 per type; decoys
//!   touched), measures detection and redaction throughput on one core, and scores the
//!   labelled dev sets in ../shared/data/pii_dev when present.
//! - `cargo xtask bench e2e [--sizes 10k,100k,1m] [--bin PATH] [--work DIR] [--seed S]
//!   [--keep]` runs the whole pipeline end to end on generated stores of each size (release
//!   to the QA stop, offline review import and signoff, release to publication) and reports
//!   per-stage times, wall time and peak RSS (docs/benchmarks-e2e.md).
//! - `cargo xtask bench record [--mb 10,30,60] [--work DIR]` measures a build's peak RSS
//!   against the size of its largest record (one worker).
//! - `cargo xtask bench ray --python PATH [--size 100k] [--num-cpus N]` builds a generated
//!   store with `gatehouse build` and with the Ray driver, times both and compares every
//!   file of the two drafts.
//! - `cargo xtask pin [--size 100k] [--write]` releases a generated store to the QA stop in a
//!   fixed directory and compares every file of the release with `xtask/pins/<size>.txt`: the
//!   bytes a refactor must not change.
//! - `cargo xtask docs [--check]` rewrites the README's tables of finding codes from the
//!   registry in `gatehouse_core::report::codes` (`--check`: fails, naming the stale table).
//! - `cargo xtask ci` runs what CI runs locally: fmt check, code tables, clippy, tests.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use gatehouse_synth::formats::{self, Eol};
use gatehouse_synth::sample::{SampleSize, write_sample_store};
use gatehouse_synth::{Corpus, Family};

mod bench_e2e;
mod bench_pii;
mod bench_ray;
mod bench_record;
mod docs;
mod pin;
use bench_e2e::bench_e2e;
use bench_pii::bench_pii;
use bench_ray::bench_ray;
use bench_record::bench_record;

const USAGE: &str = "usage: cargo xtask <sample | gen --out FILE --conversations N [--seed S] \
     | bench pii [--conversations N] [--seed S] [--dates birth|all] [--pii-dev DIR] \
     | bench e2e [--sizes 10k,100k,1m] [--bin PATH] [--work DIR] [--seed S] [--keep] \
     | bench record [--mb 10,30,60] [--work DIR] \
     | bench ray --python PATH [--size 100k] [--num-cpus N] | pin [--size 100k] [--write] | docs [--check] \
     | ci>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sample") => sample(),
        Some("gen") => gen_corpus(&args[1..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("pii") => bench_pii(&args[2..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("e2e") => bench_e2e(&args[2..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("record") => {
            bench_record(&args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("ray") => bench_ray(&args[2..]),
        Some("pin") => pin::pin(&args[1..]),
        Some("docs") => docs::docs(&args[1..]),
        Some("ci") => ci(),
        _ => bail!(USAGE),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn sample() -> Result<()> {
    let dir = repo_root().join("examples/sample-store");
    for sub in ["sources", "incoming"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("remove {}", p.display()))?;
        }
    }
    write_sample_store(&dir, SampleSize::default())?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}

pub(crate) fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn gen_corpus(args: &[String]) -> Result<()> {
    let out = flag(args, "--out").context(USAGE)?;
    let n: u64 = flag(args, "--conversations").context(USAGE)?.parse()?;
    let seed: u64 = flag(args, "--seed").map_or(Ok(1), |s| s.parse())?;
    let corpus = Corpus::new(seed);
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    for i in 0..n {
        let family = Family::ALL[(i % 5) as usize];
        formats::chatml_jsonl(&mut w, &corpus.conversation(family, i / 5), Eol::Lf)?;
    }
    w.flush()?;
    let size = std::fs::metadata(&out)?.len();
    eprintln!("wrote {n} conversations, {size} bytes, to {out}");
    Ok(())
}

fn ci() -> Result<()> {
    let run = |args: &[&str]| -> Result<()> {
        eprintln!("$ cargo {}", args.join(" "));
        let status = Command::new("cargo")
            .args(args)
            .current_dir(repo_root())
            .status()?;
        if !status.success() {
            bail!("cargo {} failed", args.join(" "));
        }
        Ok(())
    };
    run(&["fmt", "--all", "--", "--check"])?;
    docs::docs(&["--check".to_string()])?;
    run(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    run(&["test", "--workspace"])
}
