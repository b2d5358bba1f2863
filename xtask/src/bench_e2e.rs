//! `cargo xtask bench e2e`: the whole pipeline, end to end, on generated data.
#![allow(clippy::print_stdout)] // a benchmark report: stdout is its interface
//!
//! For each size N (conversations) it generates a local store under `{work}/{N}` (ChatML
//! JSONL objects of about 10,000 conversations each, families round-robin as `cargo xtask
//! gen` does; reused while N, the seed and the layout are unchanged), a registry of the five
//! families of `examples/registry.toml` and a `gatehouse.toml`, then runs the release binary
//! exactly as a user would:
//!
//! 1. `gatehouse release --json` under `/usr/bin/time -v`: must stop with exit 1, awaiting QA;
//! 2. `gatehouse qa invite` for as many reviewers per review type as the rubrics ask (five
//!    with the defaults), the release's `qa/review_template.csv` filled with passing scores
//!    for every reviewer's assignments, `gatehouse qa import`, `gatehouse qa signoff`;
//! 3. `gatehouse release --json` again under `/usr/bin/time -v`: must exit 0 and publish.
//!
//! It prints per-stage seconds of both runs (from their `stage_log`), wall time and peak RSS
//! of each run, input and export bytes and records, a growth table across sizes and whether
//! each size meets the target (coverage → consume of both runs ≤ 5 min, peak RSS ≤ 2 GB), and
//! merges the results into `{work}/results.json`. Generation time is reported apart; it is
//! not part of the measured pipeline. gatehouse prints no conversation text, and neither does
//! this harness: failures show the command, its exit code and the tail of its stderr.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use gatehouse_synth::formats::{self, Eol};
use gatehouse_synth::{Corpus, Family};
use serde_json::{Value, json};

use super::{flag, repo_root};

pub const USAGE: &str = "usage: cargo xtask bench e2e [--sizes 10k,100k,1m] [--bin PATH] \
     [--work DIR] [--seed S] [--keep]";

/// The release version every run uses.
pub(crate) const VERSION: &str = "v2026-11-26";
/// 2026-11-26T00:00:00Z: "now" for every gatehouse command (waivers, artefact dates).
const SOURCE_DATE_EPOCH: &str = "1795651200";
/// Conversations per source object (about 20 MB of ChatML JSONL).
const PER_OBJECT: u64 = 10_000;
/// Bumped whenever the generated layout changes, so old stores are regenerated.
const LAYOUT: u64 = 1;
/// The score given to every criterion (each rubric's minimum if that is higher).
const SCORE: f64 = 9.0;
/// Target for 1M conversations: coverage → consume of both runs, and peak RSS.
const TARGET_SECS: f64 = 300.0;
const TARGET_RSS_BYTES: u64 = 2_000_000_000;
/// Stages summed for the target.
const PIPELINE_STAGES: [&str; 5] = ["coverage", "build", "gates", "qa", "consume"];
const STAGE_ORDER: [&str; 6] = ["coverage", "build", "gates", "qa", "consume", "publish"];
/// Environment that would point gatehouse at another store or registry.
const CLEARED_ENV: [&str; 6] = [
    "GATEHOUSE_CONFIG",
    "GATEHOUSE_REGISTRY",
    "DATASET_STORAGE_BACKEND",
    "DATASET_STORAGE_LOCAL_PATH",
    "DATASET_EXPORTS_PREFIX",
    "GATEHOUSE_LOG",
];

#[derive(Debug)]
struct Opts {
    sizes: Vec<u64>,
    bin: Option<PathBuf>,
    work: PathBuf,
    seed: u64,
    keep: bool,
}

fn parse_args(args: &[String]) -> Result<Opts> {
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--sizes" | "--bin" | "--work" | "--seed" => {
                if args.get(i + 1).is_none() {
                    bail!("{} needs a value\n{USAGE}", args[i]);
                }
                i += 2;
            }
            "--keep" => i += 1,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let sizes = flag(args, "--sizes")
        .unwrap_or_else(|| "10k,100k,1m".into())
        .split(',')
        .map(|s| parse_size(s.trim()))
        .collect::<Result<Vec<_>>>()?;
    let root = repo_root();
    let work = flag(args, "--work").map_or_else(|| root.join("target/bench-e2e"), PathBuf::from);
    Ok(Opts {
        sizes,
        bin: flag(args, "--bin").map(PathBuf::from),
        work: absolute(&work)?,
        seed: flag(args, "--seed").map_or(Ok(1), |s| s.parse().context("--seed"))?,
        keep: args.iter().any(|a| a == "--keep"),
    })
}

pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// `10k`, `100k`, `1m`, `2500` → conversations.
pub(crate) fn parse_size(s: &str) -> Result<u64> {
    let lower = s.to_ascii_lowercase();
    let (digits, mult) = if let Some(d) = lower.strip_suffix('k') {
        (d, 1_000)
    } else if let Some(d) = lower.strip_suffix('m') {
        (d, 1_000_000)
    } else {
        (lower.as_str(), 1)
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("size {s:?}: expected e.g. 10k, 100k, 1m or 2500"))?;
    let n = n * mult;
    if n < 100 {
        bail!("size {s:?}: at least 100 conversations (every family and split needs records)");
    }
    Ok(n)
}

pub(crate) fn label(n: u64) -> String {
    if n.is_multiple_of(1_000_000) {
        format!("{}m", n / 1_000_000)
    } else if n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

pub fn bench_e2e(args: &[String]) -> Result<()> {
    let opts = parse_args(args)?;
    if !Path::new("/usr/bin/time").exists() {
        bail!("/usr/bin/time is needed for wall time and peak RSS (apt-get install time)");
    }
    std::fs::create_dir_all(&opts.work)
        .with_context(|| format!("create {}", opts.work.display()))?;
    let bin = match &opts.bin {
        Some(b) => absolute(b)?,
        None => build_binary(&opts.work)?,
    };
    if !bin.is_file() {
        bail!("gatehouse binary {} does not exist", bin.display());
    }
    let version = run_plain(&bin, &["--version"], &opts.work, None)?;
    expect(
        "the gatehouse binary",
        &["--version"],
        &version,
        0,
        &opts.work,
    )?;
    let bin_version = String::from_utf8_lossy(&version.output.stdout)
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "bench e2e: {} ({}), {cores} cores, sizes {}, seed {}, work {}",
        bin.display(),
        bin_version,
        opts.sizes
            .iter()
            .map(|n| label(*n))
            .collect::<Vec<_>>()
            .join(","),
        opts.seed,
        opts.work.display()
    );
    let mut measured = Vec::new();
    for &n in &opts.sizes {
        let r = bench_size(&opts, &bin, n)?;
        print_size(&r);
        let mut entry = r.to_json();
        entry["gatehouse"] = json!({ "binary": bin.display().to_string(), "version": bin_version });
        entry["cores"] = json!(cores);
        entry["git_commit"] = json!(git_commit());
        merge_results(&opts.work, &label(n), &entry)?;
        measured.push(label(n));
    }
    print_growth(&opts.work, &measured)?;
    println!(
        "\nresults merged into {}",
        opts.work.join("results.json").display()
    );
    Ok(())
}

/// A generated project in `dir` for `cargo xtask pin` and `bench ray`: the gatehouse binary
/// (`bin`, or the release build), `n` conversations of `seed` under `dir/store` (reused when
/// already there), this benchmark's registry and configuration, and no exports yet.
pub(crate) fn generated_project(
    dir: &Path,
    bin: Option<String>,
    n: u64,
    seed: u64,
) -> Result<(PathBuf, Generated)> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let bin = match bin {
        Some(b) => absolute(Path::new(&b))?,
        None => build_binary(dir)?,
    };
    let generated = generate(dir, n, seed)?;
    std::fs::write(dir.join("registry.toml"), registry_toml(seed))?;
    std::fs::write(dir.join("gatehouse.toml"), CONFIG)?;
    let exports = dir.join("store/exports");
    if exports.exists() {
        std::fs::remove_dir_all(&exports)
            .with_context(|| format!("remove {}", exports.display()))?;
    }
    Ok((bin, generated))
}

/// `cargo build --release -p gatehouse`, then a private copy so a concurrent build cannot
/// replace the binary mid-benchmark.
pub(crate) fn build_binary(work: &Path) -> Result<PathBuf> {
    let root = repo_root();
    eprintln!("$ cargo build --release -p gatehouse");
    let status = Command::new("cargo")
        .args(["build", "--release", "-p", "gatehouse"])
        .current_dir(&root)
        .status()
        .context("cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p gatehouse failed ({status})");
    }
    let built = root.join("target/release/gatehouse");
    let dir = work.join("bin");
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join("gatehouse");
    std::fs::copy(&built, &copy)
        .with_context(|| format!("copy {} to {}", built.display(), copy.display()))?;
    Ok(copy)
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---------------------------------------------------------------------------------------
// Generation

#[derive(Debug, Clone)]
pub(crate) struct Generated {
    pub(crate) objects: usize,
    pub(crate) bytes: u64,
    secs: f64,
    reused: bool,
}

/// One source object: conversations `start..end` of `family`.
#[derive(Debug, Clone)]
struct Part {
    family: Family,
    key: String,
    start: u64,
    end: u64,
}

/// Conversation `i` of the round-robin corpus is conversation `i / 5` of family `i % 5`, as in
/// `cargo xtask gen`; each family's share is cut into objects of about `PER_OBJECT`.
fn layout(n: u64) -> Vec<Part> {
    let mut parts = Vec::new();
    for (f, family) in Family::ALL.iter().enumerate() {
        let f = f as u64;
        let count = n / 5 + u64::from(f < n % 5);
        let objects = count.div_ceil(PER_OBJECT).max(1);
        for p in 0..objects {
            parts.push(Part {
                family: *family,
                key: format!("sources/{}/part-{p:05}.jsonl", family.name()),
                start: p * count / objects,
                end: (p + 1) * count / objects,
            });
        }
    }
    parts
}

fn stamp(n: u64, seed: u64, objects: &[(String, u64)]) -> Value {
    json!({
        "layout": LAYOUT,
        "conversations": n,
        "seed": seed,
        "per_object": PER_OBJECT,
        "objects": objects.iter().map(|(k, b)| json!({"key": k, "bytes": b})).collect::<Vec<_>>(),
    })
}

/// The store's source objects, generated unless the stamp says they already are.
pub(crate) fn generate(dir: &Path, n: u64, seed: u64) -> Result<Generated> {
    let store = dir.join("store");
    let stamp_path = dir.join("bench-stamp.json");
    let parts = layout(n);
    if let Ok(text) = std::fs::read_to_string(&stamp_path)
        && let Ok(old) = serde_json::from_str::<Value>(&text)
    {
        let objects: Vec<(String, u64)> = old["objects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| Some((o["key"].as_str()?.to_string(), o["bytes"].as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let intact = objects.len() == parts.len()
            && objects
                .iter()
                .all(|(k, b)| std::fs::metadata(store.join(k)).is_ok_and(|m| m.len() == *b));
        if intact && old == stamp(n, seed, &objects) {
            return Ok(Generated {
                objects: objects.len(),
                bytes: objects.iter().map(|(_, b)| b).sum(),
                secs: 0.0,
                reused: true,
            });
        }
    }
    let _ = std::fs::remove_file(&stamp_path);
    let sources = store.join("sources");
    if sources.exists() {
        std::fs::remove_dir_all(&sources)
            .with_context(|| format!("remove {}", sources.display()))?;
    }
    let started = Instant::now();
    let corpus = Corpus::new(seed);
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, u64)>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = std::thread::available_parallelism().map_or(1, |c| c.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(part) = parts.get(i) else { break };
                    match write_part(&store, &corpus, part) {
                        Ok(bytes) => done.lock().map(|mut d| d.push((i, bytes))).unwrap_or(()),
                        Err(e) => {
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(e);
                            }
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_unstable();
    if done.len() != parts.len() {
        bail!("generation wrote {} of {} objects", done.len(), parts.len());
    }
    let objects: Vec<(String, u64)> = done
        .iter()
        .map(|(i, b)| (parts[*i].key.clone(), *b))
        .collect();
    let mut text = serde_json::to_string_pretty(&stamp(n, seed, &objects))?;
    text.push('\n');
    std::fs::write(&stamp_path, text)?;
    Ok(Generated {
        objects: objects.len(),
        bytes: objects.iter().map(|(_, b)| b).sum(),
        secs: started.elapsed().as_secs_f64(),
        reused: false,
    })
}

fn write_part(store: &Path, corpus: &Corpus, part: &Part) -> Result<u64> {
    let path = store.join(&part.key);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file =
        std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    for j in part.start..part.end {
        formats::chatml_jsonl(&mut w, &corpus.conversation(part.family, j), Eol::Lf)?;
    }
    w.flush()?;
    Ok(std::fs::metadata(&path)?.len())
}

/// Stage, required flag, holdout and review types of each family: examples/registry.toml.
const FAMILIES: &str = r#"schema_version = 1

[families.professional_therapeutic]
stage = "stage1_foundation"
required = true
holdout = "none"
review = ["clinician_foundation", "bias_cultural"]
description = "Counselling sessions and therapist answers."

[families.priority_datasets]
stage = "stage1_foundation"
required = true
holdout = "none"
review = ["clinician_foundation", "bias_cultural"]
description = "Curated high-priority exchanges."

[families.cot_reasoning]
stage = "stage2_therapeutic_expertise"
required = true
holdout = "none"
review = ["clinician_foundation"]
description = "Clinical reasoning written out before the response."

[families.edge_cases]
stage = "stage3_edge_stress_test"
required = true
holdout = "strict"
review = ["clinician_edge", "bias_cultural"]
description = "Crisis and safety scenarios."

[families.voice_persona]
stage = "stage4_voice_persona"
required = true
holdout = "strict"
review = ["bias_cultural"]
description = "Transcripts in the voice of a public persona."
"#;

pub(crate) fn registry_toml(seed: u64) -> String {
    let mut t = String::from(
        "# Registry of the end-to-end benchmark store, written by `cargo xtask bench e2e`.\n\
         # Every object in it is synthetic (crates/gatehouse-synth); families as in\n\
         # examples/registry.toml.\n\n",
    );
    t.push_str(FAMILIES);
    for family in Family::ALL {
        let name = family.name();
        t.push_str(&format!(
            "\n[[datasets]]\nname = \"bench_{name}\"\nfamily = \"{name}\"\n\
             include = [\"sources/{name}/\"]\nformat = \"chatml\"\ngroup_by = \"session_id\"\n\
             license_tag = \"CC0-1.0\"\n\
             provenance = {{ origin = \"gatehouse-synth\", method = \"synthetic, generated from phrase banks with seed {seed}\", consent = \"synthetic text; no real persons\" }}\n"
        ));
    }
    t
}

/// The benchmark's configuration. The distribution ranges are the ones the repository's
/// gatehouse.toml sets for the same synthetic generator.
pub(crate) const CONFIG: &str = r#"# gatehouse configuration of the end-to-end benchmark store (cargo xtask bench e2e).
registry = "registry.toml"

[store]
backend = "local"
local_path = "store"
exports_prefix = "exports"

# The benchmark imports its reviewers' files offline, unsigned: operator-attested.
[qa]
count_attested = true

[gates.distribution.ranges.voice_persona]
tokens_mean = [100, 800]
tokens_max = [200, 2000]
turns_mean = [1, 10]
turns_max = [1, 15]

[gates.distribution.ranges.cot_reasoning]
tokens_mean = [20, 1000]
tokens_max = [50, 3000]
turns_mean = [1, 10]
turns_max = [1, 20]
"#;

// ---------------------------------------------------------------------------------------
// Running gatehouse

/// A finished gatehouse command.
#[derive(Debug)]
pub(crate) struct Ran {
    code: Option<i32>,
    output: Output,
}

fn gatehouse_command(program: &Path, dir: &Path) -> Command {
    let mut c = Command::new(program);
    c.current_dir(dir)
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    for v in CLEARED_ENV {
        c.env_remove(v);
    }
    c
}

/// Runs `gatehouse ARGS` in `dir` (with its gatehouse.toml when `config` is given).
pub(crate) fn run_plain(
    bin: &Path,
    args: &[&str],
    dir: &Path,
    config: Option<&Path>,
) -> Result<Ran> {
    let mut c = gatehouse_command(bin, dir);
    if let Some(cfg) = config {
        c.arg("--config").arg(cfg);
    }
    c.args(args);
    let output = c
        .output()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    Ok(Ran {
        code: output.status.code(),
        output,
    })
}

/// The command line as shown in errors.
fn shown(args: &[&str]) -> String {
    format!("gatehouse {}", args.join(" "))
}

/// A clear failure: the command, its exit code and the last lines of its stderr (gatehouse
/// writes no conversation text there; stdout is not shown, it can hold invitation tokens).
fn failure(what: &str, args: &[&str], ran: &Ran, expected: i32, dir: &Path) -> anyhow::Error {
    let stderr = String::from_utf8_lossy(&ran.output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail: Vec<String> = lines[lines.len().saturating_sub(25)..]
        .iter()
        .map(|l| format!("    {}", l.chars().take(400).collect::<String>()))
        .collect();
    anyhow::anyhow!(
        "{what}: `{}` exited with {} (expected {expected}) in {}\n  stderr (last {} lines):\n{}",
        shown(args),
        ran.code
            .map_or_else(|| "a signal".to_string(), |c| c.to_string()),
        dir.display(),
        tail.len(),
        if tail.is_empty() {
            "    (empty)".to_string()
        } else {
            tail.join("\n")
        }
    )
}

pub(crate) fn expect(what: &str, args: &[&str], ran: &Ran, code: i32, dir: &Path) -> Result<()> {
    if ran.code == Some(code) {
        Ok(())
    } else {
        Err(failure(what, args, ran, code, dir))
    }
}

/// What `/usr/bin/time -v` measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Measured {
    pub(crate) wall_secs: f64,
    pub(crate) max_rss_kb: u64,
    user_secs: f64,
    system_secs: f64,
    cpu_percent: Option<u64>,
}

pub(crate) fn parse_time_v(text: &str) -> Result<Measured> {
    let mut m = Measured::default();
    let mut have = (false, false);
    for line in text.lines() {
        let line = line.trim();
        let Some((key, value)) = line.rsplit_once(": ") else {
            continue;
        };
        let value = value.trim();
        if key.starts_with("Maximum resident set size") {
            m.max_rss_kb = value.parse().context("Maximum resident set size")?;
            have.0 = true;
        } else if key.starts_with("Elapsed (wall clock) time") {
            // h:mm:ss or m:ss(.ss)
            let mut secs = 0.0;
            for part in value.split(':') {
                secs = secs * 60.0 + part.parse::<f64>().context("Elapsed (wall clock) time")?;
            }
            m.wall_secs = secs;
            have.1 = true;
        } else if key == "User time (seconds)" {
            m.user_secs = value.parse().unwrap_or(0.0);
        } else if key == "System time (seconds)" {
            m.system_secs = value.parse().unwrap_or(0.0);
        } else if key == "Percent of CPU this job got" {
            m.cpu_percent = value.trim_end_matches('%').parse().ok();
        }
    }
    if have != (true, true) {
        bail!("/usr/bin/time -v output has no peak RSS or wall time");
    }
    Ok(m)
}

pub(crate) fn loadavg() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// rustc processes running now: a concurrent compile competes for the cores.
fn compilers_running() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "rustc")
                })
                .count()
        })
        .unwrap_or(0)
}

/// One entry of a run's `stage_log`.
#[derive(Debug, Clone)]
struct StageEntry {
    stage: String,
    verdict: String,
    seconds: f64,
    /// Set when `release` skipped the stage (resume: nothing it depends on changed).
    skipped: Option<String>,
}

/// One timed `gatehouse release` run.
#[derive(Debug, Clone)]
struct RunResult {
    code: i32,
    measured: Measured,
    stages: Vec<StageEntry>,
    json: Value,
    load_before: Option<String>,
    load_after: Option<String>,
    /// rustc processes seen before and after the run (another engineer's build).
    compilers: (usize, usize),
}

impl RunResult {
    fn stage_secs(&self, stage: &str) -> Option<f64> {
        self.stages
            .iter()
            .filter(|e| e.stage == stage)
            .map(|e| e.seconds)
            .reduce(|a, b| a + b)
    }

    fn skipped(&self, stage: &str) -> bool {
        self.stages
            .iter()
            .any(|e| e.stage == stage && e.skipped.is_some())
    }

    fn pipeline_secs(&self) -> f64 {
        PIPELINE_STAGES
            .iter()
            .filter_map(|s| self.stage_secs(s))
            .sum()
    }

    fn to_json(&self) -> Value {
        json!({
            "exit_code": self.code,
            "wall_secs": self.measured.wall_secs,
            "max_rss_kb": self.measured.max_rss_kb,
            "user_secs": self.measured.user_secs,
            "system_secs": self.measured.system_secs,
            "cpu_percent": self.measured.cpu_percent,
            "coverage_to_consume_secs": round3(self.pipeline_secs()),
            "stage_log": self.stages.iter()
                .map(|e| json!({
                    "stage": e.stage, "verdict": e.verdict, "seconds": e.seconds, "skipped": e.skipped,
                }))
                .collect::<Vec<_>>(),
            "loadavg_before": self.load_before,
            "loadavg_after": self.load_after,
            "rustc_processes_before_after": [self.compilers.0, self.compilers.1],
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// `gatehouse release --release-version V --json -q` under `/usr/bin/time -v`.
fn timed_release(bin: &Path, dir: &Path, run: u32, expected: i32, what: &str) -> Result<RunResult> {
    let config = dir.join("gatehouse.toml");
    let args = ["release", "--release-version", VERSION, "--json", "-q"];
    let time_file = dir.join(format!("run{run}.time"));
    let _ = std::fs::remove_file(&time_file);
    let mut c = gatehouse_command(Path::new("/usr/bin/time"), dir);
    c.arg("-v")
        .arg("-o")
        .arg(&time_file)
        .arg(bin)
        .arg("--config")
        .arg(&config)
        .args(args);
    let load_before = loadavg();
    let compilers_before = compilers_running();
    let output = c.output().context("cannot start /usr/bin/time")?;
    let ran = Ran {
        code: output.status.code(),
        output,
    };
    let load_after = loadavg();
    let compilers = (compilers_before, compilers_running());
    // Kept for diagnosis: gatehouse's stdout (JSON: ids, keys, counts) and stderr hold no
    // conversation text.
    std::fs::write(dir.join(format!("run{run}.json")), &ran.output.stdout)?;
    std::fs::write(dir.join(format!("run{run}.stderr")), &ran.output.stderr)?;
    expect(what, &args, &ran, expected, dir)?;
    let measured = std::fs::read_to_string(&time_file)
        .map_err(anyhow::Error::from)
        .and_then(|t| parse_time_v(&t))
        .with_context(|| format!("{what}: reading {}", time_file.display()))?;
    let json: Value = serde_json::from_slice(&ran.output.stdout).map_err(|e| {
        anyhow::anyhow!(
            "{what}: `{}` printed no JSON on stdout ({} at line {}); see {}",
            shown(&args),
            match e.classify() {
                serde_json::error::Category::Eof => "truncated",
                _ => "not JSON",
            },
            e.line(),
            dir.join(format!("run{run}.json")).display()
        )
    })?;
    let stages = json["stage_log"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| StageEntry {
                    stage: s["stage"].as_str().unwrap_or("?").to_string(),
                    verdict: s["verdict"].as_str().unwrap_or("?").to_string(),
                    seconds: s["seconds"].as_f64().unwrap_or(0.0),
                    skipped: s["skipped"].as_str().map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(RunResult {
        code: expected,
        measured,
        stages,
        json,
        load_before,
        load_after,
        compilers,
    })
}

// ---------------------------------------------------------------------------------------
// One size

#[derive(Debug, Default)]
struct BuildCounts {
    read: u64,
    quarantined: u64,
    duplicates: u64,
    tokens: u64,
    largest_bucket: u64,
    oversized_buckets: u64,
}

#[derive(Debug)]
struct SizeResult {
    n: u64,
    seed: u64,
    generated: Generated,
    run1: RunResult,
    run2: RunResult,
    /// `release_summary.json` "stages" of the published release.
    summary_stages: Value,
    jsonl_bytes: u64,
    parquet_bytes: u64,
    shards: usize,
    records: u64,
    /// From `build_report.json`: records read, quarantined, removed as duplicates; tokens.
    build: BuildCounts,
    reviewers: usize,
    reviews: usize,
    qa_secs: f64,
    dir: PathBuf,
}

impl SizeResult {
    fn pipeline_secs(&self) -> f64 {
        self.run1.pipeline_secs() + self.run2.pipeline_secs()
    }

    fn max_rss_bytes(&self) -> u64 {
        self.run1
            .measured
            .max_rss_kb
            .max(self.run2.measured.max_rss_kb)
            * 1024
    }

    fn meets(&self) -> (bool, bool) {
        (
            self.pipeline_secs() <= TARGET_SECS,
            self.max_rss_bytes() <= TARGET_RSS_BYTES,
        )
    }

    fn to_json(&self) -> Value {
        let (time_ok, rss_ok) = self.meets();
        json!({
            "conversations": self.n,
            "seed": self.seed,
            "release_version": VERSION,
            "source_date_epoch": SOURCE_DATE_EPOCH,
            "dir": self.dir.display().to_string(),
            "finished_unix": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "generation": {
                "objects": self.generated.objects,
                "input_bytes": self.generated.bytes,
                "secs": round3(self.generated.secs),
                "reused": self.generated.reused,
            },
            "runs": [self.run1.to_json(), self.run2.to_json()],
            "release_summary_stages": self.summary_stages,
            "qa": { "reviewers": self.reviewers, "reviews": self.reviews, "secs": round3(self.qa_secs) },
            "build": {
                "records_read": self.build.read,
                "records_quarantined": self.build.quarantined,
                "records_removed_as_duplicates": self.build.duplicates,
                "tokens_exported": self.build.tokens,
                "dedup_largest_bucket": self.build.largest_bucket,
                "dedup_oversized_buckets": self.build.oversized_buckets,
            },
            "export": {
                "records": self.records,
                "jsonl_shards": self.shards,
                "jsonl_bytes": self.jsonl_bytes,
                "parquet_bytes": self.parquet_bytes,
            },
            "target": {
                "coverage_to_consume_secs": round3(self.pipeline_secs()),
                "max_rss_bytes": self.max_rss_bytes(),
                "limit_secs": TARGET_SECS,
                "limit_rss_bytes": TARGET_RSS_BYTES,
                "time_ok": time_ok,
                "rss_ok": rss_ok,
            },
        })
    }
}

fn bench_size(opts: &Opts, bin: &Path, n: u64) -> Result<SizeResult> {
    let dir = opts.work.join(label(n));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    println!("\n== {} conversations: {}", label(n), dir.display());
    let generated = generate(&dir, n, opts.seed)?;
    if generated.reused {
        println!(
            "generation: reused {} objects, {} (same N, seed and layout)",
            generated.objects,
            mb(generated.bytes)
        );
    } else {
        println!(
            "generation: {} objects, {} in {:.1} s (not part of the measured pipeline)",
            generated.objects,
            mb(generated.bytes),
            generated.secs
        );
    }
    std::fs::write(dir.join("registry.toml"), registry_toml(opts.seed))?;
    std::fs::write(dir.join("gatehouse.toml"), CONFIG)?;
    let config = dir.join("gatehouse.toml");
    // Every run starts from a store without releases: the version is fixed, and a published
    // one is never overwritten.
    let exports = dir.join("store/exports");
    if exports.exists() {
        std::fs::remove_dir_all(&exports)
            .with_context(|| format!("remove {}", exports.display()))?;
    }
    for stale in [
        "reviews.csv",
        "run1.json",
        "run2.json",
        "run1.time",
        "run2.time",
    ] {
        let _ = std::fs::remove_file(dir.join(stale));
    }

    println!("run 1: gatehouse release (expects exit 1, awaiting QA) ...");
    let run1 = timed_release(bin, &dir, 1, 1, "run 1 (release up to the QA stop)")?;
    check_awaiting(&run1, &dir)?;

    let qa_started = Instant::now();
    let (reviewers, reviews) = sign_off(bin, &dir, &config)?;
    let qa_secs = qa_started.elapsed().as_secs_f64();
    println!("qa: {reviewers} reviewers invited, {reviews} reviews imported, signed off");

    println!("run 2: gatehouse release (expects exit 0, published) ...");
    let run2 = timed_release(bin, &dir, 2, 0, "run 2 (release after the signoff)")?;
    if run2.json["published"].is_null() {
        bail!(
            "run 2 exited 0 but its JSON names no publication marker (see {})",
            dir.join("run2.json").display()
        );
    }

    let release = dir.join("store/exports/releases").join(VERSION);
    let summary = read_json(&release.join("release_summary.json"))?;
    let manifest = read_json(&release.join("manifest.json"))?;
    let report = read_json(&release.join("build_report.json"))?;
    let build = BuildCounts {
        read: report["records_read"].as_u64().unwrap_or(0),
        quarantined: report["records_quarantined"].as_u64().unwrap_or(0),
        duplicates: report["records_removed_as_duplicates"]
            .as_u64()
            .unwrap_or(0),
        tokens: report["tokens_exported"].as_u64().unwrap_or(0),
        largest_bucket: manifest["dedup"]["largest_bucket"].as_u64().unwrap_or(0),
        oversized_buckets: manifest["dedup"]["oversized_buckets"].as_u64().unwrap_or(0),
    };
    let (mut jsonl_bytes, mut parquet_bytes, mut shards, mut records) = (0, 0, 0, 0);
    for c in manifest["contents"].as_array().into_iter().flatten() {
        records += c["records"].as_u64().unwrap_or(0);
        for s in c["shards"].as_array().into_iter().flatten() {
            jsonl_bytes += s["bytes"].as_u64().unwrap_or(0);
            shards += 1;
        }
        for s in c["parquet"].as_array().into_iter().flatten() {
            parquet_bytes += s["bytes"].as_u64().unwrap_or(0);
        }
    }
    let result = SizeResult {
        n,
        seed: opts.seed,
        generated,
        run1,
        run2,
        summary_stages: summary["stages"].clone(),
        jsonl_bytes,
        parquet_bytes,
        shards,
        records,
        build,
        reviewers,
        reviews,
        qa_secs,
        dir: dir.clone(),
    };
    if !opts.keep {
        std::fs::remove_dir_all(&exports)
            .with_context(|| format!("remove {}", exports.display()))?;
    }
    Ok(result)
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// Run 1 must have stopped at the QA stage, waiting for reviewers, and nowhere else.
fn check_awaiting(run: &RunResult, dir: &Path) -> Result<()> {
    let failed: Vec<&str> = run
        .stages
        .iter()
        .filter(|e| e.verdict == "fail" && e.stage != "qa")
        .map(|e| e.stage.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "run 1 exited 1 because a stage failed ({}), not because it awaits QA: see the reports under {}",
            failed.join(", "),
            dir.join("store/exports/releases").join(VERSION).display()
        );
    }
    let qa_state = run.json["stages"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["stage"] == "qa"))
        .and_then(|s| s["gate"]["state"].as_str());
    if !run.stages.iter().any(|e| e.stage == "qa") || qa_state != Some("awaiting") {
        bail!(
            "run 1 exited 1 but did not stop awaiting QA (qa state {qa_state:?}); see {}",
            dir.join("run1.json").display()
        );
    }
    Ok(())
}

static EMPTY: Vec<Value> = Vec::new();

/// Invites reviewers, fills the review template with passing scores for each reviewer's
/// assignments, imports it and signs off. Returns (reviewers, reviews).
fn sign_off(bin: &Path, dir: &Path, config: &Path) -> Result<(usize, usize)> {
    let qa = dir.join("store/exports/releases").join(VERSION).join("qa");
    let template = read_json(&qa.join("review_template.json"))?;
    let rubrics = template["rubrics"]
        .as_object()
        .context("qa/review_template.json has no rubrics")?;
    // As many reviewers of each type as its rubric asks per sample (2 + 2 + 1 by default),
    // and one privacy spot-checker when the packets hold the privacy gate's sample.
    let spot_check = template["reviews"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["review_type"] == "privacy_spot_check"));
    let mut types: Vec<(&str, u64)> = rubrics
        .iter()
        .map(|(t, r)| (t.as_str(), r["reviewers"].as_u64().unwrap_or(1).max(1)))
        .collect();
    if spot_check {
        types.push(("privacy_spot_check", 1));
    }
    let mut invited = 0;
    for (review_type, needed) in types {
        let role = review_type.replace('_', "-");
        for k in 1..=needed {
            let name = format!("Bench {role} {k}");
            let args = [
                "qa",
                "invite",
                "--release-version",
                VERSION,
                "--name",
                &name,
                "--role",
                &role,
                "-q",
            ];
            // stdout holds the secret sign-in link: never printed or kept.
            let ran = run_plain(bin, &args, dir, Some(config))?;
            expect("qa invite", &args, &ran, 0, dir)?;
            invited += 1;
        }
    }

    let reviewers = read_json(&qa.join("reviewers.json"))?;
    let reviewers = reviewers["reviewers"]
        .as_array()
        .context("qa/reviewers.json has no reviewers")?;
    if reviewers.len() != invited {
        bail!(
            "qa/reviewers.json lists {} reviewers, {invited} were invited",
            reviewers.len()
        );
    }
    let csv_path = qa.join("review_template.csv");
    let mut reader = csv::Reader::from_path(&csv_path)
        .with_context(|| format!("read {}", csv_path.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no column {name}", csv_path.display()))
    };
    let (c_reviewer, c_type, c_sample) = (col("reviewer")?, col("review_type")?, col("sample_id")?);
    let template_rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    let filled = dir.join("reviews.csv");
    let mut w = csv::Writer::from_path(&filled)?;
    w.write_record(&header)?;
    let mut reviews = 0;
    for r in reviewers {
        let id = r["id"].as_str().context("a reviewer without id")?;
        let review_type = r["review_type"]
            .as_str()
            .context("a reviewer without type")?;
        let assigned: Vec<&str> = r["assignments"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let spot = review_type == "privacy_spot_check";
        let criteria: BTreeMap<&str, f64> = rubrics
            .get(review_type)
            .and_then(|r| r["criteria"].as_array())
            .or(spot.then_some(&EMPTY))
            .with_context(|| format!("no rubric for {review_type}"))?
            .iter()
            .filter_map(|c| {
                let min = c["minimum"].as_f64().unwrap_or(1.0);
                Some((c["name"].as_str()?, SCORE.max(min.ceil()).min(10.0)))
            })
            .collect();
        for row in &template_rows {
            if row.get(c_type) != Some(review_type)
                || !row.get(c_sample).is_some_and(|s| assigned.contains(&s))
            {
                continue;
            }
            let out: Vec<String> = header
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    if c == c_reviewer {
                        id.to_string()
                    } else if spot && name == "identifiers_left" {
                        // The benchmark's reviewer finds nothing left (not a real review).
                        "none".to_string()
                    } else if let Some(score) = criteria.get(name.as_str()) {
                        score.to_string()
                    } else {
                        row.get(c).unwrap_or("").to_string()
                    }
                })
                .collect();
            w.write_record(&out)?;
            reviews += 1;
        }
    }
    w.flush()?;
    if reviews == 0 {
        bail!("the review template has no row for any invited reviewer");
    }
    let file = filled.display().to_string();
    let args = ["qa", "import", &file, "--release-version", VERSION, "-q"];
    let ran = run_plain(bin, &args, dir, Some(config))?;
    expect("qa import", &args, &ran, 0, dir)?;
    let args = ["qa", "signoff", "--release-version", VERSION, "-q"];
    let ran = run_plain(bin, &args, dir, Some(config))?;
    expect("qa signoff (must approve)", &args, &ran, 0, dir)?;
    Ok((invited, reviews))
}

// ---------------------------------------------------------------------------------------
// Reports

pub(crate) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn print_size(r: &SizeResult) {
    let mut stages: Vec<String> = STAGE_ORDER.iter().map(|s| s.to_string()).collect();
    for e in r.run1.stages.iter().chain(&r.run2.stages) {
        if !stages.contains(&e.stage) {
            stages.push(e.stage.clone());
        }
    }
    let runs = [&r.run1, &r.run2];
    let row = |name: &str, cells: [String; 2]| {
        println!("  {name:<28} {:>12} {:>12}", cells[0], cells[1]);
    };
    println!(
        "\n{} conversations (seed {}): {} objects, {} input",
        label(r.n),
        r.seed,
        r.generated.objects,
        mb(r.generated.bytes)
    );
    row("stage seconds", ["run 1".into(), "run 2".into()]);
    for s in &stages {
        if runs.iter().all(|run| run.stage_secs(s).is_none()) {
            continue;
        }
        row(
            s,
            runs.map(|run| match run.stage_secs(s) {
                None => "-".to_string(),
                Some(t) if run.skipped(s) => format!("skip {t:.2}"),
                Some(t) => format!("{t:.2}"),
            }),
        );
    }
    if runs
        .iter()
        .any(|run| run.stages.iter().any(|e| e.skipped.is_some()))
    {
        println!("  (skip: resumed, the stage's inputs were unchanged since it last ran)");
    }
    row(
        "coverage → consume",
        runs.map(|run| format!("{:.2}", run.pipeline_secs())),
    );
    row(
        "wall (time -v)",
        runs.map(|run| format!("{:.2}", run.measured.wall_secs)),
    );
    // Process start, configuration, store probe and publication: outside the stage log.
    row(
        "  outside stages",
        runs.map(|run| {
            let staged: f64 = run.stages.iter().map(|e| e.seconds).sum();
            format!("{:.2}", (run.measured.wall_secs - staged).max(0.0))
        }),
    );
    row(
        "peak RSS (MB)",
        runs.map(|run| format!("{:.0}", run.measured.max_rss_kb as f64 * 1024.0 / 1e6)),
    );
    row(
        "CPU user+sys s (% of 1 core)",
        runs.map(|run| {
            format!(
                "{:.1} ({}%)",
                run.measured.user_secs + run.measured.system_secs,
                run.measured.cpu_percent.unwrap_or(0)
            )
        }),
    );
    row(
        "load avg 1 min before/after",
        runs.map(|run| {
            let first = |l: &Option<String>| {
                l.as_deref()
                    .and_then(|l| l.split_whitespace().next())
                    .unwrap_or("?")
                    .to_string()
            };
            format!("{}/{}", first(&run.load_before), first(&run.load_after))
        }),
    );
    row(
        "rustc running before/after",
        runs.map(|run| format!("{}/{}", run.compilers.0, run.compilers.1)),
    );
    println!(
        "  input    {} in {} objects, {} records read ({} quarantined, {} duplicates removed)",
        mb(r.generated.bytes),
        r.generated.objects,
        r.build.read,
        r.build.quarantined,
        r.build.duplicates
    );
    println!(
        "  export   {} records, {} tokens, {} JSONL in {} shards (+ {} Parquet); largest LSH bucket {}{}",
        r.records,
        r.build.tokens,
        mb(r.jsonl_bytes),
        r.shards,
        mb(r.parquet_bytes),
        r.build.largest_bucket,
        if r.build.oversized_buckets > 0 {
            format!(", {} oversized (not searched)", r.build.oversized_buckets)
        } else {
            String::new()
        }
    );
    println!(
        "  qa       {} reviewers invited, {} reviews imported, signed off ({:.1} s, not measured)",
        r.reviewers, r.reviews, r.qa_secs
    );
    let (time_ok, rss_ok) = r.meets();
    println!(
        "  target   coverage → consume of both runs ≤ {:.0} s: {:.1} s {}; peak RSS ≤ {:.0} GB: {:.0} MB {} → {}",
        TARGET_SECS,
        r.pipeline_secs(),
        if time_ok { "ok" } else { "OVER" },
        TARGET_RSS_BYTES as f64 / 1e9,
        r.max_rss_bytes() as f64 / 1e6,
        if rss_ok { "ok" } else { "OVER" },
        if time_ok && rss_ok {
            "meets the target"
        } else {
            "MISSES the target"
        }
    );
}

/// The growth table over every size in `{work}/results.json`: the sizes measured now and
/// any measured by earlier invocations (marked, since load and binary may differ).
fn print_growth(work: &Path, now: &[String]) -> Result<()> {
    let all = read_json(&work.join("results.json"))?;
    let mut rows: Vec<(&String, &Value)> = all["sizes"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    rows.sort_by_key(|(_, e)| e["conversations"].as_u64().unwrap_or(0));
    println!("\ngrowth across sizes (every size in results.json)");
    println!(
        "  {:>6} {:>9} {:>9} {:>11} {:>11} {:>9} {:>8} {:>8}  measured",
        "size", "input MB", "records", "cov→cons s", "s/1k conv", "wall s", "RSS MB", "target"
    );
    // (conversations, coverage → consume seconds, peak RSS bytes)
    let mut points: Vec<(f64, f64, f64)> = Vec::new();
    for (key, e) in &rows {
        let n = e["conversations"].as_u64().unwrap_or(0) as f64;
        let secs = e["target"]["coverage_to_consume_secs"]
            .as_f64()
            .unwrap_or(0.0);
        let rss = e["target"]["max_rss_bytes"].as_f64().unwrap_or(0.0);
        let wall: f64 = e["runs"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["wall_secs"].as_f64()).sum())
            .unwrap_or(0.0);
        let ok = e["target"]["time_ok"] == true && e["target"]["rss_ok"] == true;
        let when = if now.contains(key) {
            "now".to_string()
        } else {
            format!(
                "earlier (commit {})",
                e["git_commit"]
                    .as_str()
                    .unwrap_or("?")
                    .get(..9)
                    .unwrap_or("?")
            )
        };
        println!(
            "  {:>6} {:>9.1} {:>9} {:>11.2} {:>11.3} {:>9.2} {:>8.0} {:>8}  {when}",
            key,
            e["generation"]["input_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            e["export"]["records"].as_u64().unwrap_or(0),
            secs,
            secs / (n / 1e3).max(1e-9),
            wall,
            rss / 1e6,
            if ok { "meets" } else { "MISSES" },
        );
        points.push((n, secs, rss));
    }
    // A rough projection to 1M from the two largest sizes below it (linear in N).
    let below: Vec<&(f64, f64, f64)> = points.iter().filter(|p| p.0 < 1e6).collect();
    if points.iter().all(|p| p.0 < 1e6)
        && let [.., a, b] = below.as_slice()
        && b.0 > a.0
    {
        let at = |ya: f64, yb: f64| yb + (yb - ya) / (b.0 - a.0) * (1e6 - b.0);
        println!(
            "  linear projection to 1m from {} and {}: ~{:.0} s coverage → consume (target {:.0} s), ~{:.0} MB peak RSS (target {:.0} MB)",
            label(a.0 as u64),
            label(b.0 as u64),
            at(a.1, b.1),
            TARGET_SECS,
            at(a.2, b.2) / 1e6,
            TARGET_RSS_BYTES as f64 / 1e6
        );
    }
    Ok(())
}

/// Merges this size's entry into `{work}/results.json` (keyed by size), keeping others.
fn merge_results(work: &Path, key: &str, entry: &Value) -> Result<()> {
    let path = work.join("results.json");
    let mut all = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(|v| v["sizes"].is_object())
        .unwrap_or_else(|| json!({ "sizes": {} }));
    all["sizes"][key] = entry.clone();
    let mut text = serde_json::to_string_pretty(&all)?;
    text.push('\n');
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() -> Result<()> {
        assert_eq!(parse_size("10k")?, 10_000);
        assert_eq!(parse_size("1M")?, 1_000_000);
        assert_eq!(parse_size("2500")?, 2500);
        assert!(parse_size("5").is_err());
        assert_eq!(label(100_000), "100k");
        assert_eq!(label(1_000_000), "1m");
        Ok(())
    }

    #[test]
    fn layout_covers_every_conversation_once() {
        for n in [100, 10_000, 123_457] {
            let parts = layout(n);
            let total: u64 = parts.iter().map(|p| p.end - p.start).sum();
            assert_eq!(total, n);
            for f in Family::ALL {
                assert!(parts.iter().any(|p| p.family == f && p.end > p.start));
            }
            assert!(parts.iter().all(|p| p.end - p.start <= PER_OBJECT));
        }
    }

    #[test]
    fn time_v_parses() -> Result<()> {
        let t = "\tCommand being timed: \"x\"\n\tUser time (seconds): 1.50\n\
                 \tSystem time (seconds): 0.25\n\tPercent of CPU this job got: 150%\n\
                 \tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.5\n\
                 \tMaximum resident set size (kbytes): 2048\n";
        let m = parse_time_v(t)?;
        assert_eq!(m.max_rss_kb, 2048);
        assert!((m.wall_secs - 3723.5).abs() < 1e-9);
        assert_eq!(m.cpu_percent, Some(150));
        Ok(())
    }
}
