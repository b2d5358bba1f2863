//! `cargo xtask bench ray`: the same generated store built by `gatehouse build` and by the
//! Ray driver (`python -m gatehouse_ray build`), timed, and compared file by file.
//!
//! The corpus, registry and configuration are `bench e2e`'s. Both builds write the same
//! draft folder one after the other; the draft's files are hashed after each, and every
//! hash must agree (the manifest's build commit is the same: the binary and the wheel are
//! built from this tree). The Ray build runs twice: with the near-duplicate shuffle (the
//! default) and with near duplicates judged on the driver. On one machine this measures the
//! Ray path's overhead, not a speed-up: the single-node build already uses every core.
#![allow(clippy::print_stdout)] // a benchmark report: stdout is its interface

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::bench_e2e::{
    VERSION, absolute, expect, generated_project, label, loadavg, parse_size, run_plain,
};
use crate::flag;

pub const USAGE: &str = "usage: cargo xtask bench ray --python PATH [--size 100k] [--seed S] \
     [--bin PATH] [--work DIR] [--num-cpus N]\n  PATH: a Python with ray[data], pyarrow and \
     the gatehouse-py wheel (build it with --release for timings)";

pub fn bench_ray(args: &[String]) -> Result<()> {
    let Some(python) = flag(args, "--python") else {
        bail!("{USAGE}");
    };
    let n = parse_size(&flag(args, "--size").unwrap_or_else(|| "100k".to_string()))?;
    let seed: u64 = flag(args, "--seed").map_or(Ok(7), |s| s.parse())?;
    let cpus = flag(args, "--num-cpus").unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, |c| c.get())
            .to_string()
    });
    let dir = match flag(args, "--work") {
        Some(w) => absolute(Path::new(&w))?,
        None => PathBuf::from(format!("/tmp/gatehouse-bench-ray-{}", label(n))),
    };
    let (bin, generated) = generated_project(&dir, flag(args, "--bin"), n, seed)?;
    println!(
        "bench ray {}: {} objects, {:.1} MB ({}), {cpus} CPUs, load {}",
        label(n),
        generated.objects,
        generated.bytes as f64 / 1e6,
        dir.display(),
        loadavg().unwrap_or_default()
    );
    let draft = dir.join("store/exports/releases").join(VERSION);

    let build = ["build", "--release-version", VERSION];
    let started = Instant::now();
    let ran = run_plain(&bin, &build, &dir, Some(&dir.join("gatehouse.toml")))?;
    let single_secs = started.elapsed().as_secs_f64();
    expect("the single-node build", &build, &ran, 0, &dir)?;
    let single = hashes(&draft)?;

    println!("single node: {single_secs:.1} s wall (gatehouse build)");
    // The Ray build twice: near duplicates shuffled by band key and judged in partitions
    // (the default), and judged on the driver (`--judge-on-driver`).
    for (mode, extra) in [("shuffled", None), ("on driver", Some("--judge-on-driver"))] {
        let started = Instant::now();
        let out = Command::new(&python)
            .current_dir(&dir)
            .args(["-m", "gatehouse_ray", "--num-cpus", &cpus, "build"])
            .args(["--release-version", VERSION])
            .args(extra)
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .output()
            .with_context(|| format!("cannot start {python}"))?;
        let ray_secs = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "python -m gatehouse_ray build exited with {}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let summary: Value = serde_json::from_slice(&out.stdout).context("the driver's summary")?;
        let ray = hashes(&draft)?;
        let differing: Vec<&String> = single
            .keys()
            .chain(ray.keys())
            .filter(|k| single.get(*k) != ray.get(*k))
            .collect();
        let s = &summary["seconds"];
        println!(
            "ray ({mode}): {ray_secs:.1} s wall (python -m gatehouse_ray build): prepare {} s, \
             ray.init {} s, map {} s, shuffle {} s ({} partitions), finish {} s; {} objects \
             on {} actors\n\
             ratio:       {:.2}×\n\
             draft:       {} files, {}",
            s["prepare"],
            s["ray_init"],
            s["map"],
            s["shuffle"],
            summary["partitions"],
            s["finish"],
            summary["objects"],
            summary["actors"],
            ray_secs / single_secs,
            single.len(),
            if differing.is_empty() {
                format!("identical (release digest {})", summary["release_digest"])
            } else {
                format!("DIFFERENT: {differing:?}")
            }
        );
        if !differing.is_empty() {
            bail!("the Ray build's draft ({mode}) differs from the single-node build's");
        }
    }
    Ok(())
}

/// sha256 of every file under `dir`, by path relative to it.
fn hashes(dir: &Path) -> Result<BTreeMap<String, String>> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p)?;
                let rel = p.strip_prefix(dir)?.display().to_string();
                out.insert(rel, hex::encode(Sha256::digest(&bytes)));
            }
        }
    }
    if out.is_empty() {
        bail!("{} is empty", dir.display());
    }
    Ok(out)
}
