//! A published release carries `croissant.json` (Croissant 1.1): it describes exactly the
//! Parquet shards the manifest lists (sha256 and size), a record set whose fields are the
//! shard columns, and responsible-AI properties from the release's own evidence. The
//! MLCommons reference loader (`mlcroissant`, in the Python named by `GATEHOUSE_TEST_PYTHON`)
//! validates it and reads every record; without that Python the loader half is skipped, in CI
//! (`CI` set) it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

mod common;

use std::collections::BTreeSet;

use common::{Project, Run, repo_root, sign_off};

const V: &str = "v2026-12-04";

fn json(path: std::path::PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn a_published_release_is_described_in_croissant() {
    let p = Project::new();
    assert_eq!(p.run(&["release", "--release-version", V]).code, 1);
    sign_off(&p, V);
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    let release = p.path().join(format!("store/exports/releases/{V}"));
    let doc = json(release.join("croissant.json"));
    let manifest = json(release.join("manifest.json"));

    assert_eq!(doc["conformsTo"], "http://mlcommons.org/croissant/1.1");
    assert_eq!(doc["@type"], "sc:Dataset");
    assert_eq!(
        doc["@context"]["rai"],
        "http://mlcommons.org/croissant/RAI/"
    );

    // The distribution is the manifest's Parquet shards, relative to the release folder.
    let prefix = format!("exports/releases/{V}/");
    let want: BTreeSet<(String, String, String)> = manifest["contents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["parquet"].as_array().unwrap().iter())
        .map(|s| {
            (
                s["key"]
                    .as_str()
                    .unwrap()
                    .strip_prefix(&prefix)
                    .unwrap()
                    .to_string(),
                s["sha256"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("sha256:")
                    .unwrap()
                    .to_string(),
                format!("{} B", s["bytes"]),
            )
        })
        .collect();
    assert!(!want.is_empty());
    let got: BTreeSet<(String, String, String)> = doc["distribution"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["@type"] == "cr:FileObject")
        .map(|d| {
            (
                d["contentUrl"].as_str().unwrap().to_string(),
                d["sha256"].as_str().unwrap().to_string(),
                d["contentSize"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, want);
    for (path, _, _) in &got {
        assert!(release.join(path).is_file(), "{path} is not in the release");
    }

    // The record set's fields are the Parquet columns, no more, no fewer.
    let fields: Vec<&str> = doc["recordSet"][0]["field"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let columns: Vec<String> = gatehouse_core::build::parquet::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(fields, columns);

    // Responsible-AI properties come from the release's evidence.
    let pii = doc["rai:personalSensitiveInformation"].as_str().unwrap();
    assert!(
        pii.contains("re-scanned 100% of the export: 0 record(s)"),
        "{pii}"
    );
    let annotation = doc["rai:dataAnnotationProtocol"].as_str().unwrap();
    assert!(
        annotation.contains(manifest_digest(&release).as_str()),
        "{annotation}"
    );
    assert!(annotation.contains("clinician_foundation"), "{annotation}");
    // The reviews were imported by the operator (unsigned): said so, never counted as
    // authenticated reviewers.
    assert!(
        annotation.starts_with("Human QA: 0 authenticated reviewer(s) and ")
            && annotation.contains(" reviewer(s) whose reviews the operator attested"),
        "{annotation}"
    );
    assert!(
        doc["rai:dataCollection"]
            .as_str()
            .unwrap()
            .contains("origin")
    );

    // It is evidence: the publication marker names it with its sha256.
    let marker = json(release.join("_PUBLISHED"));
    assert!(
        marker["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["key"] == format!("{prefix}croissant.json").as_str())
    );

    // The reference loader validates it and reads every record.
    let Some(python) = std::env::var_os("GATEHOUSE_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set GATEHOUSE_TEST_PYTHON to a Python with mlcroissant and pyarrow"
        );
        eprintln!("skipped the loader: set GATEHOUSE_TEST_PYTHON to a Python with mlcroissant");
        return;
    };
    let out = std::process::Command::new(python)
        .arg(repo_root().join("crates/gatehouse/tests/python/load_croissant.py"))
        .arg(&release)
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{r:?}");
    let summary: serde_json::Value =
        serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["problems"], serde_json::json!([]));
    assert_eq!(summary["conforms_to"], "http://mlcommons.org/croissant/1.1");
    let records: u64 = manifest["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["records"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["records"], records);
    // A date-like version is not a semantic one; anything else mlcroissant warns about fails.
    assert_eq!(summary["warnings"], serde_json::json!([]), "{summary}");
}

fn manifest_digest(release: &std::path::Path) -> String {
    gatehouse_core::digest::sha256(&std::fs::read(release.join("manifest.json")).unwrap())
}
