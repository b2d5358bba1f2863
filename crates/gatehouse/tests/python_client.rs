//! A real Python training client reads the release: Hugging Face `datasets` (JSON and
//! Parquet) over s3fs, from an S3 server, and its record counts and ids match the manifest.
//!
//! Needs a Python with `datasets s3fs pyarrow`, named by `GATEHOUSE_TEST_PYTHON` (`.ci/run`
//! makes a venv and sets it). Without it the test is skipped with a message; in CI (`CI` set)
//! it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

mod common;

use common::{Project, Run, repo_root};
use gatehouse_test::TestS3;

#[test]
fn hugging_face_datasets_loads_the_release_from_s3() {
    let Some(python) = std::env::var_os("GATEHOUSE_TEST_PYTHON") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set GATEHOUSE_TEST_PYTHON to a Python with datasets, s3fs and pyarrow"
        );
        eprintln!("skipped: set GATEHOUSE_TEST_PYTHON to a Python with datasets s3fs pyarrow");
        return;
    };
    let p = Project::new();
    let s3 = TestS3::start().unwrap();
    let bucket = s3.create_bucket("hf-client").unwrap();
    p.upload_to(&s3, &bucket);
    let mut build = p.cmd();
    build.args(["build", "--release-version", "v2026-06-07"]);
    for (k, v) in s3.env(&bucket) {
        build.env(k, v);
    }
    let r = Run::from(build.output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");

    let hf_home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(python)
        .arg(repo_root().join("crates/gatehouse/tests/python/load_release.py"))
        .args([
            s3.endpoint.as_str(),
            bucket.as_str(),
            "exports/releases/v2026-06-07",
        ])
        .env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
        .env("HF_HOME", hf_home.path())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .output()
        .unwrap();
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{r:?}");
    let summary: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(summary["problems"], serde_json::json!([]));
    let train = &summary["splits"]["train"];
    assert!(train["manifest"].as_u64().unwrap() > 0);
    assert_eq!(train["json"], train["manifest"]);
    assert_eq!(train["parquet"], train["manifest"]);
}
