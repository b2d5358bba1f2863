//! Fault tolerance of `gatehouse release`: the process killed at many points during the
//! build and the publication, and the S3 server stopped mid-run. Never a partial published
//! release; a re-run completes with a manifest byte-identical to an uninterrupted run's, and
//! the record counts reconcile.
//!
//! Kills use the test hook `GATEHOUSE_TEST_ABORT_AFTER_WRITES=N` (the process aborts, like
//! `kill -9`, right after its N-th completed store write); the points are chosen from the
//! audit log of an uninterrupted run, so they spread over every stage.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{Project, Run, sign_off};
use gatehouse_test::TestS3;
use serde_json::Value;

const V: &str = "v2026-03-04";
const ABORT: &str = "GATEHOUSE_TEST_ABORT_AFTER_WRITES";

fn release_dir(p: &Project) -> PathBuf {
    p.path().join(format!("store/exports/releases/{V}"))
}

fn sha256_of(path: &Path) -> String {
    gatehouse_core::digest::sha256(&std::fs::read(path).unwrap())
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The events of every audit log of `V`, oldest run first.
fn audit_runs(p: &Project) -> Vec<Vec<Value>> {
    let dir = p.path().join(format!("store/exports/_gatehouse/audit/{V}"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    logs.sort();
    logs.iter()
        .map(|l| {
            std::fs::read_to_string(l)
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect()
        })
        .collect()
}

/// The store write count (as the abort hook counts: every audited write, create and
/// delete, and the audit log's own flush at each stage boundary and at publication) at
/// which each event of a run happened.
fn write_counts(events: &[Value]) -> Vec<(u64, &Value)> {
    let mut n = 0;
    let mut out = Vec::new();
    for e in events {
        match e["action"].as_str().unwrap() {
            "write" | "create" | "delete" => {
                n += 1;
                out.push((n, e));
            }
            // The log is flushed after these are recorded.
            "stage_end" | "stage_skip" | "publish" => n += 1,
            _ => {}
        }
    }
    out
}

/// `k` points spread evenly over `1..=total`.
fn spread(total: u64, k: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (1..=k).map(|i| (i * total / (k + 1)).max(1)).collect();
    v.dedup();
    v
}

fn total_records(manifest: &Value) -> u64 {
    manifest["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["records"].as_u64().unwrap())
        .sum()
}

/// Every record read is exported, quarantined, removed by policy or removed as a duplicate.
fn assert_counts_reconcile(p: &Project) {
    let b = json(&release_dir(p).join("build_report.json"));
    let n = |k: &str| b[k].as_u64().unwrap();
    assert_eq!(
        n("records_read"),
        n("records_exported")
            + n("records_quarantined")
            + n("records_removed_by_policy")
            + n("records_removed_as_duplicates"),
        "{b}"
    );
    assert_eq!(
        n("records_exported"),
        total_records(&json(&release_dir(p).join("manifest.json")))
    );
}

fn killed(r: &Run) -> bool {
    // Aborted by a signal: no exit code.
    r.code == -1
}

fn assert_not_published(p: &Project, k: u64) {
    assert!(
        !release_dir(p).join("_PUBLISHED").exists(),
        "killed after write {k}: a marker exists"
    );
}

/// A published release is complete: every evidence file the marker names is there, with
/// the sha256 the marker records.
fn assert_complete(p: &Project) {
    let marker = json(&release_dir(p).join("_PUBLISHED"));
    let root = p.path().join("store");
    for e in marker["evidence"].as_array().unwrap() {
        let bytes = std::fs::read(root.join(e["key"].as_str().unwrap())).unwrap();
        assert_eq!(
            gatehouse_core::digest::sha256(&bytes),
            e["sha256"].as_str().unwrap(),
            "{}",
            e["key"]
        );
    }
}

/// A copy of the project's store, to start several runs from the same state. Hard links,
/// so every file keeps its inode and mtime (the local store's etag), as if never copied;
/// gatehouse replaces files (write and rename), never edits them in place.
struct Snapshot(tempfile::TempDir);

fn link_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            link_tree(&entry.path(), &target);
        } else {
            std::fs::hard_link(entry.path(), &target).unwrap();
        }
    }
}

impl Snapshot {
    fn take(p: &Project) -> Self {
        let dir = tempfile::tempdir().unwrap();
        link_tree(&p.path().join("store"), dir.path());
        Self(dir)
    }

    fn restore(&self, p: &Project) {
        let store = p.path().join("store");
        std::fs::remove_dir_all(&store).unwrap();
        std::fs::create_dir(&store).unwrap();
        link_tree(self.0.path(), &store);
    }
}

#[test]
fn kills_during_build_and_publication_never_publish_a_partial_release() {
    // The uninterrupted reference, in the same folder (reports name the store's path).
    let p = Project::new();
    let pristine = Snapshot::take(&p);
    let reference = &p;
    assert_eq!(reference.run(&["release", "--release-version", V]).code, 1);
    sign_off(reference, V);
    let r = reference.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    let manifest = sha256_of(&release_dir(reference).join("manifest.json"));
    let runs = audit_runs(reference);
    assert_eq!(runs.len(), 2);
    let first = write_counts(&runs[0]);
    let second = write_counts(&runs[1]);
    let first_total = first.last().unwrap().0;
    let marker_at = second
        .iter()
        .find(|(_, e)| {
            e["action"] == "create" && e["key"].as_str().unwrap().ends_with("/_PUBLISHED")
        })
        .map(|(n, _)| *n)
        .unwrap();
    let build_writes: Vec<u64> = first
        .iter()
        .filter(|(_, e)| e["stage"] == "build")
        .map(|(n, _)| *n)
        .collect();
    assert!(build_writes.len() >= 6, "{build_writes:?}");

    // Kills during the first run, each from a fresh store: coverage, the build (at least
    // three inside it), the gates, QA; then a re-run.
    let mut points = spread(first_total, 4);
    points.extend([
        build_writes[1],
        build_writes[build_writes.len() / 2],
        build_writes[build_writes.len() - 1],
    ]);
    points.sort_unstable();
    points.dedup();
    let mut kills = 0;
    for &k in &points {
        pristine.restore(&p);
        let r = p.run_env(
            &["release", "--release-version", V],
            &[(ABORT, &k.to_string())],
        );
        assert!(killed(&r), "write {k} of {first_total}: {r:?}");
        assert_not_published(&p, k);
        kills += 1;
        let r = p.run(&["release", "--release-version", V]);
        assert_eq!(r.code, 1, "after a kill at write {k}: {r:?}");
        assert_eq!(
            sha256_of(&release_dir(&p).join("manifest.json")),
            manifest,
            "after a kill at write {k}, the manifest differs from an uninterrupted run's"
        );
        assert_counts_reconcile(&p);
    }

    // Kills during the run that publishes, each from the signed-off draft: consumption,
    // the evidence, the marker itself.
    pristine.restore(&p);
    assert_eq!(p.run(&["release", "--release-version", V]).code, 1);
    sign_off(&p, V);
    let signed = Snapshot::take(&p);
    let mut points = spread(marker_at - 1, 5);
    points.push(marker_at);
    let stage_at = |k: u64| {
        second
            .iter()
            .find(|(n, _)| *n >= k)
            .map(|(_, e)| e["stage"].as_str().unwrap_or("").to_string())
            .unwrap()
    };
    let stages: std::collections::BTreeSet<String> = points.iter().map(|&k| stage_at(k)).collect();
    assert!(
        stages.contains("consume") && stages.contains("publish"),
        "{stages:?}"
    );
    for &k in &points {
        signed.restore(&p);
        let r = p.run_env(
            &["release", "--release-version", V],
            &[(ABORT, &k.to_string())],
        );
        assert!(killed(&r), "write {k} of the publishing run: {r:?}");
        kills += 1;
        if k < marker_at {
            assert_not_published(&p, k);
            let r = p.run(&["release", "--release-version", V]);
            assert_eq!(r.code, 0, "after a kill at write {k}: {r:?}");
        } else {
            // Killed right after the marker: published, complete, and never again.
            let r = p.run(&["release", "--release-version", V]);
            assert_eq!(r.code, 2, "{r:?}");
            assert!(r.stderr.contains("already published"), "{r:?}");
        }
        assert_complete(&p);
        assert_eq!(sha256_of(&release_dir(&p).join("manifest.json")), manifest);
        assert_counts_reconcile(&p);
        let notes = json(&release_dir(&p).join("release_notes.json"));
        assert_eq!(notes["signoff"]["decision"], "approved");
        assert_eq!(
            notes["training_consumption"]["records"].as_u64().unwrap(),
            total_records(&json(&release_dir(&p).join("manifest.json")))
        );
    }
    assert!(kills >= 10, "{kills}");

    // The audit log of the last runs is one intact chain, the interrupted run marked.
    let r = p.run(&["audit", "verify", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("did not finish: interrupted"), "{r:?}");
    assert!(
        r.stdout.contains("anchored by the publication marker"),
        "{r:?}"
    );
}

#[test]
fn resume_skips_unchanged_stages_and_says_why_others_run() {
    let p = Project::new();
    assert_eq!(p.run(&["release", "--release-version", V]).code, 1);
    let dry = p.run(&["release", "--release-version", V, "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout
            .contains("skip: unchanged since it last completed"),
        "{dry:?}"
    );
    let before = sha256_of(&release_dir(&p).join("manifest.json"));

    // A re-run skips the build and the gates.
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("build     pass: skipped"), "{r:?}");
    assert!(r.stdout.contains("gates     pass: skipped"), "{r:?}");

    // A source object rewritten with the same bytes (a new etag): the dry run names the
    // changed input and writes nothing; the build runs, its manifest is byte-identical, so
    // the gates, which depend on the manifest, resume.
    let source = p.path().join("store/sources/priority/pairs.jsonl");
    let text = std::fs::read(&source).unwrap();
    std::fs::remove_file(&source).unwrap();
    std::fs::write(&source, &text).unwrap();
    let listing = |p: &Project| {
        let mut v = Vec::new();
        gatehouse_test::for_each_file(&p.path().join("store"), &mut |k, b| {
            v.push((k.to_string(), b));
            Ok(())
        })
        .unwrap();
        v
    };
    let state = listing(&p);
    let dry = p.run(&["release", "--release-version", V, "--dry-run"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("run: changed: sources"), "{dry:?}");
    assert!(dry.stdout.contains("gates     run"), "{dry:?}");
    assert!(listing(&p) == state, "a dry run wrote to the store");
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("build     pass: "), "{r:?}");
    assert!(!r.stdout.contains("build     pass: skipped"), "{r:?}");
    assert_eq!(sha256_of(&release_dir(&p).join("manifest.json")), before);
    assert!(r.stdout.contains("gates     pass: skipped"), "{r:?}");

    // Changed content: a new manifest (its inputs' sha256), so the gates run again.
    let mut changed = text.clone();
    changed.push(b'\n');
    std::fs::write(&source, &changed).unwrap();
    let dry = p.run(&["release", "--release-version", V, "--dry-run"]);
    assert!(
        dry.stdout
            .contains("run: changed: coverage_report, sources"),
        "{dry:?}"
    );
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_ne!(sha256_of(&release_dir(&p).join("manifest.json")), before);
    assert!(r.stdout.contains("privacy   pass"), "{r:?}");
    std::fs::write(&source, &text).unwrap();
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(sha256_of(&release_dir(&p).join("manifest.json")), before);

    // A tampered output is noticed: the gates run again.
    std::fs::write(release_dir(&p).join("gates/distribution_report.json"), "{}").unwrap();
    let dry = p.run(&["release", "--release-version", V, "--dry-run"]);
    assert!(
        dry.stdout
            .contains("gates/distribution_report.json changed since"),
        "{dry:?}"
    );
    let r = p.run(&["release", "--release-version", V]);
    assert!(!r.stdout.contains("gates     pass: skipped"), "{r:?}");

    // --no-resume runs everything.
    let r = p.run(&["release", "--release-version", V, "--no-resume"]);
    assert!(!r.stdout.contains("skipped"), "{r:?}");
    assert_eq!(sha256_of(&release_dir(&p).join("manifest.json")), before);
}

#[test]
fn an_edited_audit_log_fails_verification_naming_the_line() {
    let p = Project::new();
    assert_eq!(p.run(&["release", "--release-version", V]).code, 1);
    let r = p.run(&["audit", "verify", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    let dir = p.path().join(format!("store/exports/_gatehouse/audit/{V}"));
    let log = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&log).unwrap();
    // Every object read and written is there, by key and digest; no content.
    assert!(text.contains("\"action\":\"read\""));
    assert!(text.contains("manifest.json"));
    assert!(text.contains("\"action\":\"signoff\""));
    for t in common::packet_texts(&p, V) {
        assert!(!text.contains(&t));
    }
    // Someone rewrites a verdict.
    let edited = text.replacen("\"verdict\":\"pass\"", "\"verdict\":\"fail\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&log, edited).unwrap();
    let r = p.run(&["audit", "verify", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("BROKEN"), "{r:?}");
    assert!(r.stdout.contains("chain broken"), "{r:?}");
}

#[test]
fn the_s3_server_stopping_mid_run_is_exit_2_naming_the_operation_and_a_rerun_completes() {
    let mut s3 = TestS3::start_in_process().unwrap();
    let bucket = s3.create_bucket("faults").unwrap();
    let p = Project::new();
    p.upload_to(&s3, &bucket);
    // Fail fast when the server is gone: a 2-second retry budget.
    std::fs::write(
        p.path().join("gatehouse.toml"),
        format!(
            "registry = \"registry.toml\"\n[store]\nbackend = \"s3\"\nretry_budget_secs = 2\nmax_retries = 2\n{}",
            common::SAMPLE_RANGES
        ),
    )
    .unwrap();
    let env = s3.env(&bucket);
    let cmd = |p: &Project| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("gatehouse"));
        c.current_dir(p.path()).env_clear();
        for (k, v) in &env {
            c.env(k, v);
        }
        c.args(["release", "--release-version", V]);
        c
    };
    let mut child = cmd(&p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the server once the build has begun writing the draft.
    let started = s3
        .bucket_dir(&bucket)
        .unwrap()
        .join(format!("exports/releases/{V}/coverage_report.json"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(s3.stop());
    let out = Run::from(child.wait_with_output().unwrap());
    assert_eq!(out.code, 2, "{out:?}");
    // The operation and the key: "error: list s3://…/: could not reach the store".
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains(&format!("s3://{bucket}/"))),
        "{out:?}"
    );
    assert!(out.stderr.contains("could not reach the store"), "{out:?}");
    assert!(
        !s3.bucket_dir(&bucket)
            .unwrap()
            .join(format!("exports/releases/{V}/_PUBLISHED"))
            .exists()
    );

    // Back up: the re-run completes, with the same records as a local run.
    s3.restart().unwrap();
    let r = Run::from(cmd(&p).output().unwrap());
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("qa        awaiting signoff"), "{r:?}");
    let local = Project::new();
    assert_eq!(local.run(&["release", "--release-version", V]).code, 1);
    let remote = json(
        &s3.bucket_dir(&bucket)
            .unwrap()
            .join(format!("exports/releases/{V}/manifest.json")),
    );
    let here = json(&release_dir(&local).join("manifest.json"));
    assert_eq!(total_records(&remote), total_records(&here));
    assert_eq!(remote["contents"], here["contents"]);
}
