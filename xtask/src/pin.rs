//! `cargo xtask pin`: the bytes a refactor must not change, on a generated store.
#![allow(clippy::print_stdout)] // a developer check: stdout is its interface

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::bench_e2e::{VERSION, expect, generated_project, label, mb, parse_size, run_plain};
use super::{flag, repo_root};

/// `cargo xtask pin`: a generated store of `--size` conversations in a fixed directory
/// (`/tmp/gatehouse-pin-<size>`; the coverage report names the store's root), released to the
/// QA stop by the release binary; the sha256 of every file in the release folder is compared
/// with `xtask/pins/<size>.txt` (or written there with `--write`). The pins hold across a
/// refactor that must not change a byte of the export, the manifest or the reports; the
/// privacy and provenance reports are hashed with their measured times masked.
pub fn pin(args: &[String]) -> Result<()> {
    let n = parse_size(&flag(args, "--size").unwrap_or_else(|| "100k".to_string()))?;
    let seed: u64 = flag(args, "--seed").map_or(Ok(7), |s| s.parse())?;
    let write = args.iter().any(|a| a == "--write");
    let dir = PathBuf::from(format!("/tmp/gatehouse-pin-{}", label(n)));
    let (bin, generated) = generated_project(&dir, flag(args, "--bin"), n, seed)?;
    println!(
        "pin {}: {} objects, {} ({})",
        label(n),
        generated.objects,
        mb(generated.bytes),
        dir.display()
    );
    let args = ["release", "--release-version", VERSION];
    let ran = run_plain(&bin, &args, &dir, Some(&dir.join("gatehouse.toml")))?;
    expect("release to the QA stop", &args, &ran, 1, &dir)?;
    let release = dir.join("store/exports/releases").join(VERSION);
    let mut lines = String::new();
    let identity = Identity::of(&release)?;
    hash_tree(&release, &release, &identity, &mut lines)?;
    let pins = repo_root().join(format!("xtask/pins/{}.txt", label(n)));
    if write {
        std::fs::create_dir_all(pins.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(&pins, &lines)?;
        println!("wrote {}", pins.display());
        return Ok(());
    }
    let want = std::fs::read_to_string(&pins)
        .with_context(|| format!("read {} (make it with --write)", pins.display()))?;
    if want == lines {
        println!(
            "{} files identical to {}",
            lines.lines().count(),
            pins.display()
        );
        return Ok(());
    }
    let want: BTreeMap<&str, &str> = want.lines().filter_map(|l| l.split_once(' ')).collect();
    let got: BTreeMap<&str, &str> = lines.lines().filter_map(|l| l.split_once(' ')).collect();
    for k in want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if want.get(k) != got.get(k) {
            println!(
                "differs: {k}: pinned {:?}, now {:?}",
                want.get(k),
                got.get(k)
            );
        }
    }
    bail!("the release differs from {}", pins.display())
}

/// The manifest names the commit gatehouse is built from, so the release digest changes with
/// every commit: both become placeholders before hashing.
struct Identity {
    commit: String,
    digest: String,
}

/// A commit id, or text that never occurs when the build named none (`unknown`).
fn commit_id(named: &str) -> String {
    if named.len() == 40 && named.bytes().all(|b| b.is_ascii_hexdigit()) {
        named.to_string()
    } else {
        "\u{0}no commit".to_string()
    }
}

impl Identity {
    fn of(release: &Path) -> Result<Self> {
        let bytes = std::fs::read(release.join("manifest.json"))?;
        let manifest: serde_json::Value = serde_json::from_slice(&bytes)?;
        Ok(Self {
            commit: commit_id(manifest["tool"]["git_commit"].as_str().unwrap_or_default()),
            digest: format!("sha256:{}", sha256_hex(&bytes)),
        })
    }

    fn neutral(&self, bytes: Vec<u8>) -> Vec<u8> {
        match String::from_utf8(bytes) {
            Ok(text) => text
                .replace(&self.digest, "sha256:<release-digest>")
                .replace(&self.commit, "<commit>")
                .into_bytes(),
            Err(e) => e.into_bytes(),
        }
    }
}

fn hash_tree(root: &Path, dir: &Path, identity: &Identity, out: &mut String) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            hash_tree(root, &path, identity, out)?;
            continue;
        }
        let key = path
            .strip_prefix(root)?
            .to_string_lossy()
            .replace('\\', "/");
        let mut bytes = identity.neutral(std::fs::read(&path)?);
        if key.ends_with("pii_detection_report.json")
            || key.ends_with("provenance_validation_report.json")
        {
            let text = String::from_utf8_lossy(&bytes);
            let masked: Vec<String> = text
                .lines()
                .map(|l| {
                    if l.contains("\"scan_seconds\"") || l.contains("\"scan_mb_per_second\"") {
                        String::new()
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            bytes = masked.join("\n").into_bytes();
        }
        out.push_str(&format!("{key} {}\n", sha256_hex(&bytes)));
    }
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
