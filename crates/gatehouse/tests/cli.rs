//! End-to-end tests of the `gatehouse` binary: what a user runs and sees, exit codes, and the
//! bad-input paths. Every test works on its own copy of the sample store with a cleared
//! environment, so nothing on the developer's machine leaks in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use assert_cmd::Command;
use common::{Project, Run, repo_root, sign_off};
use gatehouse_test::TestS3;

#[test]
fn release_runs_coverage_and_writes_its_reports_into_the_draft() {
    let p = Project::new();
    let r = p.run(&["release", "--release-version", "v2026-11-25"]);
    // Blocked: it waits for the human QA signoff, and says what to do next.
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("coverage  warn: 13 objects, 12 mapped, 1 unmapped"),
        "{r:?}"
    );
    assert!(r.stderr.contains("awaits human QA"), "{r:?}");
    let draft = p.path().join("store/exports/releases/v2026-11-25");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(draft.join("coverage_report.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["families"].as_array().unwrap().len(), 5);
    for artefact in [
        "coverage_report.md",
        "manifest.json",
        "compiled_export.jsonl",
        "routing_config.json",
        "build_report.json",
        "quarantine.jsonl",
        "dedup_removed.jsonl",
        "shards/train/part-00000.jsonl",
    ] {
        assert!(draft.join(artefact).is_file(), "{artefact} missing");
    }
    assert!(
        r.stdout
            .contains("build     pass: 221 records read, 219 exported"),
        "{r:?}"
    );
}

#[test]
fn release_reports_are_byte_identical_across_runs() {
    let p = Project::new();
    let keys = [
        "store/exports/releases/v2026-11-25/coverage_report.json",
        "store/exports/releases/v2026-11-25/manifest.json",
        "store/exports/releases/v2026-11-25/shards/train/part-00000.jsonl",
    ];
    assert_eq!(
        p.run(&["release", "--release-version", "v2026-11-25"]).code,
        1
    );
    let read = || keys.map(|k| std::fs::read(p.path().join(k)).unwrap());
    let first = read();
    assert_eq!(
        p.run(&["release", "--release-version", "v2026-11-25"]).code,
        1
    );
    assert!(first == read(), "a second run changed the release");
}

#[test]
fn build_alone_writes_the_export_and_prints_the_digest() {
    let p = Project::new();
    let r = p.run(&["build", "--release-version", "v2026-01-02", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let digest = v["release_digest"].as_str().unwrap();
    let manifest = std::fs::read(
        p.path()
            .join("store/exports/releases/v2026-01-02/manifest.json"),
    )
    .unwrap();
    assert_eq!(gatehouse_core::digest::sha256(&manifest), digest);
    assert_eq!(v["report"]["records_exported"], 219);
    assert_eq!(v["report"]["records_removed_as_duplicates"], 2);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let p = Project::new();
    let r = p.run(&["release", "--dry-run"]);
    assert_eq!(r.code, 0, "{r:?}");
    for stage in ["coverage", "build", "gates", "qa", "consume", "publish"] {
        assert!(r.stdout.contains(stage), "{stage} missing: {r:?}");
    }
    assert!(r.stdout.contains("dry run: nothing was written"), "{r:?}");
    assert!(!p.exports_exist());
}

#[test]
fn a_published_version_is_refused() {
    let p = Project::new();
    let marker = p
        .path()
        .join("store/exports/releases/v2026-01-01/_PUBLISHED");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, "published").unwrap();
    let r = p.run(&["release", "--release-version", "v2026-01-01"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("already published") && r.stderr.contains("hint:"),
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_dir(marker.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn an_unsafe_release_version_is_refused() {
    let p = Project::new();
    let r = p.run(&["release", "--release-version", "v../../etc"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("invalid release version"), "{r:?}");
    assert!(!p.exports_exist());
}

#[test]
fn coverage_markdown_of_the_sample_store() {
    let p = Project::new();
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 0, "{r:?}");
    let store = p.path().join("store").display().to_string();
    let md = r.stdout.replace(&store, "[STORE]");
    // The as-of date is today's; keep the snapshot stable.
    let md = regex_lite_date(&md);
    insta::assert_snapshot!("coverage_sample_store", md);
}

/// Replaces `as of YYYY-MM-DD` with a fixed string.
fn regex_lite_date(s: &str) -> String {
    match s.find("as of ") {
        Some(i) => format!("{}as of [DATE]{}", &s[..i], &s[i + 16..]),
        None => s.to_string(),
    }
}

#[test]
fn coverage_json_and_out_dir() {
    let p = Project::new();
    let out = p.path().join("reports");
    let r = p.run(&["coverage", "--json", "--out", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verdict"], "warn");
    assert!(out.join("coverage_report.json").is_file() && out.join("coverage_report.md").is_file());
}

#[test]
fn a_missing_required_family_blocks_with_exit_1_unless_waived() {
    let p = Project::new();
    std::fs::remove_dir_all(p.path().join("store/sources/voice")).unwrap();
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("| voice_persona | stage4_voice_persona | yes | strict | **missing**"),
        "{r:?}"
    );
    assert!(r.stdout.contains("COV001"), "{r:?}");

    p.write_config(
        "[[waivers]]\ncode = \"COV001\"\nfamily = \"voice_persona\"\nreason = \"voice drop arrives next sprint\"\napprover = \"release-manager\"\nexpires = \"2999-12-31\"\n",
    );
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("| waived |"), "{r:?}");
    assert!(r.stdout.contains("voice drop arrives next sprint"), "{r:?}");
}

#[test]
fn a_malformed_registry_is_exit_2_with_file_and_line() {
    let p = Project::new();
    p.set_registry(
        &p.registry()
            .replace("format = \"sharegpt\"", "format = sharegpt"),
    );
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("registry.toml:"), "{r:?}");
    assert!(r.stderr.contains("hint:"), "{r:?}");
    assert!(!p.exports_exist());
}

#[test]
fn an_unknown_family_is_exit_2_naming_the_field() {
    let p = Project::new();
    p.set_registry(
        &p.registry()
            .replace("family = \"edge_cases\"", "family = \"edge_case\""),
    );
    let r = p.run(&["release"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(".family: unknown family \"edge_case\""),
        "{r:?}"
    );
    assert!(!p.exports_exist());
}

#[test]
fn overlapping_datasets_are_exit_2() {
    let p = Project::new();
    p.set_registry(&p.registry().replace(
        "include = [\"sources/edge/crisis_sharegpt.json\"]",
        "include = [\"sources/\"]",
    ));
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("both claim"), "{r:?}");
}

#[test]
fn a_key_claimed_by_two_globs_is_exit_2_naming_the_key() {
    let p = Project::new();
    // Two globs: no static check can see they collide; the listing does.
    p.set_registry(
        &p.registry()
            .replace(
                "include = [\"sources/edge/crisis_sharegpt.json\"]",
                "include = [\"sources/edge/*.json\"]",
            )
            .replace(
                "include = [\"sources/cot/case_questions.json\"]",
                "include = [\"sources/**/*sharegpt.json\"]",
            ),
    );
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("sources/edge/crisis_sharegpt.json is claimed by both dataset"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("hint: an object belongs to at most one dataset"),
        "{r:?}"
    );
}

#[test]
fn a_store_with_zero_objects_is_exit_2() {
    let p = Project::new();
    std::fs::remove_dir_all(p.path().join("store")).unwrap();
    std::fs::create_dir(p.path().join("store")).unwrap();
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("holds no objects"), "{r:?}");
}

#[test]
fn a_missing_local_directory_is_exit_2_with_a_hint() {
    let p = Project::new();
    let r = p.run_env(
        &["coverage"],
        &[("DATASET_STORAGE_LOCAL_PATH", "/no/such/dir")],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("/no/such/dir")
            && r.stderr.contains("hint: set DATASET_STORAGE_LOCAL_PATH"),
        "{r:?}"
    );
}

#[test]
fn s3_without_a_bucket_is_exit_2_with_a_hint() {
    let p = Project::new();
    let r = p.run_env(&["doctor"], &[("DATASET_STORAGE_BACKEND", "s3")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("needs a bucket") && r.stderr.contains("OVH_S3_BUCKET"),
        "{r:?}"
    );
}

#[test]
fn a_bucket_that_does_not_exist_is_exit_2_naming_it() {
    let p = Project::new();
    let s3 = TestS3::start().unwrap();
    let r = Run::from(
        s3_cmd(&p, &s3, "gatehouse-no-such-bucket")
            .args(["coverage"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("s3://gatehouse-no-such-bucket"), "{r:?}");
    assert!(r.stderr.contains("the bucket does not exist"), "{r:?}");
    assert!(r.stderr.contains("hint: check the bucket name"), "{r:?}");
}

#[test]
fn half_a_credential_pair_is_exit_2_naming_both_variables() {
    let p = Project::new();
    let r = p.run_env(
        &["doctor"],
        &[
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "b"),
            ("OVH_S3_ACCESS_KEY", "AKIAHALFPAIR"),
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("OVH_S3_ACCESS_KEY is set but OVH_S3_SECRET_KEY is not"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("AKIAHALFPAIR"), "{r:?}");
}

#[test]
fn plain_http_to_a_remote_endpoint_is_refused() {
    let p = Project::new();
    let r = p.run_env(
        &["coverage"],
        &[
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "b"),
            ("OVH_S3_ACCESS_KEY", "a"),
            ("OVH_S3_SECRET_KEY", "s"),
            ("OVH_S3_ENDPOINT", "http://storage.example.com"),
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("plain HTTP") && r.stderr.contains("DATASET_S3_ALLOW_HTTP"),
        "{r:?}"
    );
}

#[test]
fn an_endpoint_with_credentials_in_it_is_refused_without_printing_them() {
    let p = Project::new();
    let r = p.run_env(
        &["doctor"],
        &[
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "b"),
            ("OVH_S3_ACCESS_KEY", "a"),
            ("OVH_S3_SECRET_KEY", "s"),
            ("OVH_S3_ENDPOINT", "https://user:hunter2@s3.example.com"),
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        !r.stderr.contains("hunter2") && !r.stdout.contains("hunter2"),
        "{r:?}"
    );
}

#[test]
fn an_invalid_waiver_is_exit_2() {
    let p = Project::new();
    p.write_config(
        "[[waivers]]\ncode = \"COV001\"\nfamily = \"voice_persona\"\nreason = \"\"\napprover = \"rm\"\nexpires = \"2999-12-31\"\n",
    );
    let r = p.run(&["coverage"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("empty reason") && r.stderr.contains("hint:"),
        "{r:?}"
    );
}

fn s3_cmd(p: &Project, s3: &TestS3, bucket: &str) -> Command {
    let mut c = p.cmd();
    for (k, v) in s3.env(bucket) {
        c.env(k, v);
    }
    c
}

#[test]
fn coverage_over_s3_matches_coverage_over_local_disk() {
    let p = Project::new();
    let s3 = TestS3::start().unwrap();
    let bucket = s3.create_bucket("cli-coverage").unwrap();
    // Upload with the library, then ask the CLI.
    p.upload_to(&s3, &bucket);
    let local = p.run(&["coverage", "--json"]);
    let remote = Run::from(
        s3_cmd(&p, &s3, &bucket)
            .args(["coverage", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(remote.code, 0, "{remote:?}");
    let mut a: serde_json::Value = serde_json::from_str(&local.stdout).unwrap();
    let mut b: serde_json::Value = serde_json::from_str(&remote.stdout).unwrap();
    a["store"] = serde_json::Value::Null;
    b["store"] = serde_json::Value::Null;
    assert_eq!(a, b);
}

#[test]
fn wrong_credentials_are_exit_2_and_never_print_the_secret() {
    let p = Project::new();
    let s3 = TestS3::start_in_process().unwrap();
    let bucket = s3.create_bucket("cli-denied").unwrap();
    let secret = "super-secret-value-do-not-print";
    let r = Run::from(
        s3_cmd(&p, &s3, &bucket)
            .env("DATASET_S3_SECRET_KEY", secret)
            .args(["coverage"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("access denied"), "{r:?}");
    assert!(
        r.stderr.contains("hint: check the access key pair"),
        "{r:?}"
    );
    assert!(!r.stderr.contains(secret) && !r.stdout.contains(secret));
}

#[test]
fn an_unreachable_endpoint_is_exit_2_naming_the_store() {
    let p = Project::new();
    let s3 = TestS3::start_in_process().unwrap();
    let r = Run::from(
        s3_cmd(&p, &s3, "bucket")
            .env("DATASET_S3_ENDPOINT", "http://127.0.0.1:9")
            .args(["coverage"])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("could not reach the store") && r.stderr.contains("s3://bucket"),
        "{r:?}"
    );
}

#[test]
fn doctor_on_local_disk_reports_write_once_safe_and_leaves_nothing() {
    let p = Project::new();
    let r = p.run(&["doctor"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("write-once publication is safe"), "{r:?}");
    assert!(
        r.stdout
            .contains("registry check  valid: 9 dataset(s) in 5 families"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("local_path") && r.stdout.contains("from gatehouse.toml"),
        "{r:?}"
    );
    // The canary was written (its folder exists) and deleted (the folder is empty).
    let canaries = p.path().join("store/exports/_gatehouse/doctor");
    assert_eq!(std::fs::read_dir(&canaries).unwrap().count(), 0);
}

#[test]
fn doctor_on_s3_shows_where_settings_came_from_but_not_secrets() {
    let p = Project::new();
    let s3 = TestS3::start().unwrap();
    let bucket = s3.create_bucket("cli-doctor").unwrap();
    let r = Run::from(s3_cmd(&p, &s3, &bucket).args(["doctor"]).output().unwrap());
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("from DATASET_S3_BUCKET"), "{r:?}");
    assert!(
        r.stdout
            .contains("DATASET_S3_ACCESS_KEY/DATASET_S3_SECRET_KEY"),
        "{r:?}"
    );
    assert!(
        !r.stdout.contains(&s3.secret_key) && !r.stdout.contains(&s3.access_key),
        "{r:?}"
    );
    let json = Run::from(
        s3_cmd(&p, &s3, &bucket)
            .args(["doctor", "--json"])
            .output()
            .unwrap(),
    );
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["create_only"], "enforced");
    assert_eq!(v["publish_safe"], true);
}

#[test]
fn registry_import_writes_a_loadable_registry_and_lists_decisions() {
    let p = Project::new();
    let proto = p.path().join("dataset_registry.json");
    std::fs::write(
        &proto,
        r#"{"datasets": {"professional_therapeutic": {"sessions": {"path": "s3://bucket/sources/professional/sessions/", "stage": "stage1_foundation", "type": "conversation"}}},
            "edge_case_sources": {"crisis": {"path": "s3://bucket/sources/edge/crisis_sharegpt.json", "stage": "stage3_edge_stress_test"}},
            "supplementary": {"kb": {"nested": {"path": "s3://bucket/kb/x.json", "stage": "stage1_foundation", "type": "knowledge_base"}}}}"#,
    )
    .unwrap();
    let out = p.path().join("imported.toml");
    let r = p.run(&[
        "registry",
        "import",
        proto.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("imported 2 dataset(s), 1 written as comments"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("lack license_tag and provenance"),
        "{r:?}"
    );
    let check = p.run(&["--registry", out.to_str().unwrap(), "registry", "check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check.stdout.contains("lacks a licence and provenance"),
        "{check:?}"
    );
    let again = p.run(&[
        "registry",
        "import",
        proto.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 2, "{again:?}");
    assert!(again.stderr.contains("--force"), "{again:?}");
}

#[test]
fn help_explains_the_commands_and_exit_codes() {
    let p = Project::new();
    let r = p.run(&["--help"]);
    assert_eq!(r.code, 0);
    for word in [
        "release",
        "coverage",
        "doctor",
        "registry",
        "Exit codes",
        "OVH_S3_",
    ] {
        assert!(r.stdout.contains(word), "{word}: {r:?}");
    }
}

/// Runs build and gates on PII-laden sources (planted identifiers of every type from
/// gatehouse-synth, plus a malformed line and an unknown role label holding identifiers) with
/// debug logging, and checks that no planted string appears in any output line, error,
/// report or metric. The shards, the compiled export and the spot-check sample are the
/// redacted export itself and are not reports. (There is no HTML output yet.)
#[test]
fn no_planted_identifier_reaches_logs_errors_or_reports() {
    use gatehouse_synth::pii;
    let p = Project::new();
    let corpus = gatehouse_synth::Corpus::new(11);
    let mut planted: Vec<String> = Vec::new();
    let mut lines = String::new();
    for i in 0..400 {
        let c = pii::conversation(&corpus, i);
        let messages: Vec<serde_json::Value> = c
            .messages
            .iter()
            .map(|(s, m)| {
                for t in &m.planted {
                    planted.push(m.text[t.start..t.end].to_string());
                }
                serde_json::json!({"role": s.role(), "content": m.text})
            })
            .collect();
        let record = serde_json::json!({
            "id": c.id,
            "session_id": format!("leak-{}", i / 3),
            "messages": messages,
        });
        lines.push_str(&record.to_string());
        lines.push('\n');
    }
    // Bad input carrying identifiers: a broken line and a role label that is an email.
    let (email, name) = ("lorcan.whitfield@example.org", "Lorcan Whitfield");
    planted.push(email.into());
    planted.push(name.into());
    lines.push_str(&format!(
        "{{\"messages\": [{{\"role\": \"user\", \"content\": \"{name} {email}\"\n"
    ));
    lines.push_str(&format!(
        "{{\"session_id\": \"x\", \"messages\": [{{\"role\": \"{email}\", \"content\": \"hi {name}\"}}, {{\"role\": \"assistant\", \"content\": \"ok\"}}]}}\n"
    ));
    std::fs::write(
        p.path()
            .join("store/sources/professional/sessions/part-000.jsonl"),
        lines,
    )
    .unwrap();
    // Long enough to be specific; the generator's short first names alone ("Noor") are too
    // common as substrings of ordinary output to test.
    planted.retain(|s| s.chars().count() >= 6);
    planted.sort();
    planted.dedup();
    assert!(planted.len() > 300, "{}", planted.len());

    let v = "v2026-11-25";
    let runs = [
        p.run(&["-vv", "release", "--release-version", v]),
        p.run(&["-vv", "gates", "--release-version", v]),
        p.run(&["--json", "gates", "--release-version", v]),
        p.run(&["--json", "build", "--release-version", v]),
    ];
    for r in &runs {
        assert!(r.code == 0 || r.code == 1, "{r:?}");
    }
    let draft = p.path().join("store/exports/releases").join(v);
    let mut outputs: Vec<(String, String)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("run {i}"), format!("{}\n{}", r.stdout, r.stderr)))
        .collect();
    let mut reports = 0;
    gatehouse_test::for_each_file(&draft, &mut |key, bytes| {
        let export = key.starts_with("shards/")
            || key == "compiled_export.jsonl"
            || key == "gates/pii_spot_check_sample.jsonl";
        if !export {
            reports += 1;
            outputs.push((
                key.to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        Ok(())
    })
    .unwrap();
    assert!(
        reports >= 8,
        "reports, quarantine list, manifest, routing config: {reports}"
    );
    let quarantine = std::fs::read_to_string(draft.join("quarantine.jsonl")).unwrap();
    assert_eq!(
        quarantine.lines().count(),
        2,
        "both bad lines are quarantined"
    );
    for (what, text) in &outputs {
        for s in &planted {
            assert!(
                !text.contains(s.as_str()),
                "a planted identifier appears in {what}"
            );
        }
    }
}

#[test]
fn the_tokenizer_can_be_chosen_on_the_command_line() {
    let p = Project::new();
    let r = p.run(&[
        "build",
        "--release-version",
        "v2026-01-02",
        "--tokenizer",
        "cl100k_base",
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.path()
                .join("store/exports/releases/v2026-01-02/manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["tokens"]["tokenizer"], "cl100k_base");

    // A model's tokenizer.json, by path; the manifest names it with its sha256.
    let fixture =
        repo_root().join("crates/gatehouse-text/tests/fixtures/word_level_tokenizer.json");
    std::fs::copy(&fixture, p.path().join("tokenizer.json")).unwrap();
    let r = p.run(&[
        "build",
        "--release-version",
        "v2026-01-03",
        "--tokenizer",
        "tokenizer.json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let manifest = std::fs::read_to_string(
        p.path()
            .join("store/exports/releases/v2026-01-03/manifest.json"),
    )
    .unwrap();
    assert!(
        manifest.contains("\"tokenizer\": \"tokenizer.json (sha256:"),
        "{manifest}"
    );

    // A missing file is a configuration error that names it (exit 2).
    let r = p.run(&["build", "--tokenizer", "missing/tokenizer.json"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing/tokenizer.json"), "{r:?}");
}

#[test]
fn qa_packets_reviews_and_signoff_from_the_command_line() {
    let p = Project::new();
    assert_eq!(
        p.run(&["build", "--release-version", "v2026-01-02"]).code,
        0
    );
    let r = p.run(&["qa", "sample", "--release-version", "v2026-01-02"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("qa sample: "), "{r:?}");
    let qa = p.path().join("store/exports/releases/v2026-01-02/qa");
    assert!(qa.join("qa_samples.json").is_file() && qa.join("review_template.json").is_file());

    // A review file for another release is refused with a hint (exit 2).
    std::fs::write(
        p.path().join("reviews.json"),
        r#"{"release_digest": "sha256:00", "reviewer": "dr-a", "review_type": "clinician_edge", "reviews": []}"#,
    )
    .unwrap();
    let r = p.run(&[
        "qa",
        "import",
        "reviews.json",
        "--release-version",
        "v2026-01-02",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("hint:"), "{r:?}");

    // Without reviews nothing is approved (exit 1), and the record says why.
    let r = p.run(&["qa", "signoff", "--release-version", "v2026-01-02"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("qa signoff not_approved"), "{r:?}");
    assert!(qa.join("signoff_record.json").is_file());
}

#[test]
fn consume_refuses_an_unpublished_release_and_tests_a_draft() {
    let p = Project::new();
    assert_eq!(
        p.run(&["build", "--release-version", "v2026-05-06"]).code,
        0
    );
    let r = p.run(&["consume", "--release-version", "v2026-05-06"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("is not published") && r.stderr.contains("--draft"),
        "{r:?}"
    );
    let r = p.run(&["consume", "--release-version", "v2026-05-06", "--draft"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("consume   warn: 3 shards verified of 3"),
        "{r:?}"
    );
    assert!(
        p.path()
            .join("store/exports/releases/v2026-05-06/tests/training_consumption_test.json")
            .is_file()
    );
}

/// A labelled document: `text` with each needle labelled by type (code-point offsets).
fn labelled(text: &str, labels: &[(&str, &str)]) -> String {
    let spans: Vec<serde_json::Value> = labels
        .iter()
        .map(|(needle, kind)| {
            let at = text.find(needle).unwrap();
            let start = text[..at].chars().count();
            let end = start + needle.chars().count();
            serde_json::json!({"start": start, "end": end, "type": kind})
        })
        .collect();
    serde_json::json!({"text": text, "spans": spans}).to_string()
}

#[test]
fn pii_eval_scores_a_labelled_file_without_printing_its_text() {
    let p = Project::new();
    // Synthetic sentences, written for this test.
    let lines = [
        labelled(
            "You can reach me at 415-555-0132 after six.",
            &[("415-555-0132", "PHONE")],
        ),
        labelled(
            "My email is sam.rivers@example.org if that helps.",
            &[("sam.rivers@example.org", "EMAIL")],
        ),
        labelled("The weather was grey all week.", &[]),
        // A label no detector could find: direct recall stays below 1.
        labelled(
            "I kept thinking about the blue kettle.",
            &[("blue kettle", "PERSON")],
        ),
    ];
    let file = p.path().join("labelled.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let secrets = ["415-555-0132", "sam.rivers", "kettle", "weather"];
    let clean = |r: &Run| {
        for s in secrets {
            assert!(
                !r.stdout.contains(s) && !r.stderr.contains(s),
                "text printed: {r:?}"
            );
        }
    };

    let r = p.run(&["pii", "eval", "labelled.jsonl"]);
    assert_eq!(r.code, 0, "{r:?}");
    clean(&r);
    for want in [
        "4 documents",
        "PHONE*",
        "EMAIL*",
        "direct*",
        "precision",
        "F2",
    ] {
        assert!(r.stdout.contains(want), "{want}: {r:?}");
    }

    let r = p.run(&["pii", "eval", "labelled.jsonl", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    clean(&r);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["scores"]["documents"], 4);
    assert_eq!(v["scores"]["recall_by_type"]["PHONE"]["hits"], 1);
    assert_eq!(v["scores"]["recall_by_type"]["PERSON"]["hits"], 0);
    assert_eq!(v["scores"]["recall_direct"]["total"], 3);
    let [lo, hi] = [
        v["scores"]["recall_direct"]["wilson_95"][0]
            .as_f64()
            .unwrap(),
        v["scores"]["recall_direct"]["wilson_95"][1]
            .as_f64()
            .unwrap(),
    ];
    assert!(lo < 0.67 && 0.67 < hi, "{lo} {hi}");
    assert_eq!(v["policy"]["dates"], "birth");
    assert_eq!(v["passed"], true);

    // Under a minimum given as a flag: exit 1, saying which.
    let r = p.run(&[
        "pii",
        "eval",
        "labelled.jsonl",
        "--min-recall-direct",
        "0.9",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("direct-identifier recall"), "{r:?}");
    clean(&r);
    // … or configured in [privacy.evaluation]; a flag overrides it.
    p.write_config("[privacy.evaluation]\nmin_recall_direct = 0.9\n");
    assert_eq!(p.run(&["pii", "eval", "labelled.jsonl"]).code, 1);
    assert_eq!(
        p.run(&[
            "pii",
            "eval",
            "labelled.jsonl",
            "--min-recall-direct",
            "0.5"
        ])
        .code,
        0
    );
    // The configured policy is the one scored: with phones disabled, the phone is missed.
    p.write_config("[privacy]\ndisabled = [\"PHONE\"]\n");
    let r = p.run(&["pii", "eval", "labelled.jsonl", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["scores"]["recall_by_type"]["PHONE"]["hits"], 0, "{r:?}");
    assert_eq!(v["policy"]["disabled"][0], "PHONE");

    // A malformed line: exit 2 naming the line, never its text.
    std::fs::write(
        &file,
        format!(
            "{}\n{{\"text\": \"a kettle\", \"spans\": [{{\"start\": 2, \"end\": 40, \"type\": \"PERSON\"}}]}}\n",
            lines[0]
        ),
    )
    .unwrap();
    let r = p.run(&["pii", "eval", "labelled.jsonl"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("line 2"), "{r:?}");
    assert!(r.stderr.contains("hint:"), "{r:?}");
    clean(&r);
    // An unreadable file, and a minimum that is not a share: exit 2.
    let r = p.run(&["pii", "eval", "missing.jsonl"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing.jsonl"), "{r:?}");
    assert_eq!(
        p.run(&["pii", "eval", "labelled.jsonl", "--min-precision", "95"])
            .code,
        2
    );
}

#[test]
fn pii_eval_help_explains_the_file_format_and_exit_codes() {
    let p = Project::new();
    let r = p.run(&["pii", "eval", "--help"]);
    assert_eq!(r.code, 0, "{r:?}");
    for want in [
        "\"spans\"",
        "code points",
        "--min-recall-direct",
        "Exit codes",
        "Wilson",
    ] {
        assert!(r.stdout.contains(want), "{want}: {r:?}");
    }
}

#[test]
fn a_release_states_how_well_its_redaction_was_measured_on_labelled_sets() {
    let p = Project::new();
    const V: &str = "v2026-11-25";
    // A small labelled set in the store (synthetic sentences written for this test).
    let set = [
        labelled(
            "You can reach me at 415-555-0132 after six.",
            &[("415-555-0132", "PHONE")],
        ),
        labelled(
            "My email is sam.rivers@example.org if that helps.",
            &[("sam.rivers@example.org", "EMAIL")],
        ),
        labelled("The weather was grey all week.", &[]),
    ]
    .join("\n")
        + "\n";
    let set_path = p.path().join("store/labelled/pii_dev.jsonl");
    std::fs::create_dir_all(set_path.parent().unwrap()).unwrap();
    std::fs::write(&set_path, &set).unwrap();
    p.write_config(
        "[privacy.evaluation]\nsets = [\"labelled/pii_dev.jsonl\"]\nmin_recall_direct = 0.9\nmin_precision = 0.9\n",
    );

    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("awaits human QA"), "{r:?}");
    assert!(
        r.stdout
            .contains("labelled set labelled/pii_dev.jsonl: 3 documents; direct recall 1.000"),
        "{r:?}"
    );
    let draft = p.path().join("store/exports/releases").join(V);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(draft.join("gates/pii_detection_report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["policy"]["dates"], "birth");
    let measured = &report["evaluation"]["sets"][0];
    assert_eq!(measured["scores"]["recall_direct"]["total"], 2);
    assert_eq!(
        measured["sha256"],
        gatehouse_core::digest::sha256(set.as_bytes())
    );
    let html = std::fs::read_to_string(draft.join("report.html")).unwrap();
    assert!(html.contains("Measured redaction on labelled sets"));
    assert!(html.contains("labelled/pii_dev.jsonl"));
    let build: serde_json::Value =
        serde_json::from_slice(&std::fs::read(draft.join("build_report.json")).unwrap()).unwrap();
    assert_eq!(build["privacy"]["policy"]["dates"], "birth");
    assert_eq!(build["privacy"]["records_unsettled"], 0);
    for file in ["gates/pii_detection_report.json", "report.html"] {
        let t = std::fs::read_to_string(draft.join(file)).unwrap();
        assert!(
            !t.contains("sam.rivers") && !t.contains("weather"),
            "{file}"
        );
    }

    // The set's bytes are a resume input of the gates (and not of the build).
    let dry = p.run(&["release", "--release-version", V, "--dry-run"]);
    assert!(dry.stdout.contains("gates     skip"), "{dry:?}");
    std::fs::write(&set_path, set.replace("grey", "gray")).unwrap();
    let dry = p.run(&["release", "--release-version", V, "--dry-run"]);
    assert!(dry.stdout.contains("build     skip"), "{dry:?}");
    assert!(
        dry.stdout.contains("changed: privacy_evaluation_sets"),
        "{dry:?}"
    );
    std::fs::write(&set_path, &set).unwrap();

    // Published: the release notes state the policy and the measurement.
    sign_off(&p, V);
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    let notes = std::fs::read_to_string(draft.join("release_notes.md")).unwrap();
    assert!(notes.contains("## Privacy"), "{notes}");
    assert!(notes.contains("PII policy: dates `birth`"), "{notes}");
    assert!(
        notes.contains("| `labelled/pii_dev.jsonl` | 3 | 1.000 ["),
        "{notes}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(draft.join("release_notes.json")).unwrap()).unwrap();
    assert_eq!(
        json["privacy"]["evaluation"]["sets"][0]["recall_direct"]["hits"],
        2
    );
}

/// Issue 18: keys of every class are read by the build; a key with a control character is
/// named (escaped) and left out, and stops nothing.
#[test]
fn odd_keys_are_built_and_a_control_character_key_is_named_not_fatal() {
    let p = Project::new();
    let sessions = p.path().join("store/sources/professional/sessions");
    let part = std::fs::read(sessions.join("part-000.jsonl")).unwrap();
    std::fs::rename(
        sessions.join("part-000.jsonl"),
        sessions.join("séance #1 [100%] {a~b^c} <x> 'q' \"d\" a*b \\ дневник 会話.jsonl"),
    )
    .unwrap();
    std::fs::write(p.path().join("store/incoming/tab\there.jsonl"), "x").unwrap();
    std::fs::write(sessions.join("esc\u{1b}[31m.jsonl"), &part).unwrap();
    let r = p.run(&["coverage"]);
    assert_ne!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("COV008"), "{r:?}");
    assert!(r.stdout.contains("incoming/tab\\there.jsonl"), "{r:?}");
    assert!(r.stdout.contains("esc\\u{1b}[31m.jsonl"), "{r:?}");
    // The key's own ESC never reaches the output raw (logs may colour their own words).
    assert!(!r.stdout.contains('\u{1b}'), "{r:?}");
    assert!(!r.stderr.contains("esc\u{1b}[31m"), "{r:?}");
    let r = p.run(&["build", "--release-version", "v2026-01-03"]);
    assert_eq!(r.code, 0, "{r:?}");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            p.path()
                .join("store/exports/releases/v2026-01-03/build_report.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let text = report.to_string();
    assert!(
        text.contains("séance #1 [100%]"),
        "the renamed object was read"
    );
    assert!(
        !text.contains("esc\\u001b"),
        "the unusable key was left out"
    );
    let r = p.run(&["doctor"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn a_dry_run_checks_every_setting_before_saying_run() {
    let p = Project::new();
    p.write_config(
        "[build]\nratios = { train = 0.9, val = 0.2, test = 0.05 }\n[qa.sample]\nrate = 2.0",
    );
    let r = p.run(&["release", "--dry-run"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("ratios") && r.stderr.contains("[qa]"),
        "{r:?}"
    );
    assert!(r.stderr.contains("hint:"), "{r:?}");
    assert!(!p.exports_exist());
}

/// A `[qa.rubrics]` table replaces the default rubrics: one that leaves out a review type
/// the registry's families need used to stop the release only at QA, after the build and
/// the gates. It is refused before anything is written, and `doctor` names it.
#[test]
fn a_bad_qa_section_fails_the_dry_run_and_doctor_before_anything_is_written() {
    let p = Project::new();
    p.write_config(
        "[qa.rubrics.clinician_edge]\nreviewers = 2\npass_overall = 7.0\n\
         criteria = [{ name = \"crisis_handling\", weight = 1.0, minimum = 8 }]",
    );
    for args in [
        &["release", "--dry-run"][..],
        &["release", "--release-version", "v2026-01-01"],
    ] {
        let r = p.run(args);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains("invalid configuration: [qa] family ")
                && r.stderr.contains("which has no rubric in [qa.rubrics]"),
            "{r:?}"
        );
        assert!(r.stderr.contains("hint:"), "{r:?}");
        assert!(!p.exports_exist(), "{args:?} wrote to the store");
    }
    let r = p.run(&["doctor"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout
            .contains("config check    NOT VALID: a release would refuse to start"),
        "{r:?}"
    );
    assert!(r.stdout.contains("[qa] family "), "{r:?}");
    // The store itself is fine: the create-only probe still ran.
    assert!(r.stdout.contains("write-once publication is safe"), "{r:?}");
    let r = p.run(&["doctor", "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["config_problems"][0]
            .as_str()
            .unwrap()
            .contains("has no rubric"),
        "{v}"
    );
}

/// An invalid registry fails `doctor` as it fails `release`: exit 2, the problem named.
#[test]
fn doctor_fails_on_an_invalid_registry() {
    let p = Project::new();
    p.set_registry(&format!(
        "{}\n[[datasets]]\nname = \"broken\"\n",
        p.registry()
    ));
    let r = p.run(&["doctor"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("registry check  NOT VALID"), "{r:?}");
    let r = p.run(&["doctor", "--json"]);
    assert_eq!(r.code, 2, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        v["config_problems"][0]
            .as_str()
            .unwrap()
            .starts_with("registry: "),
        "{v}"
    );
}

/// Every section's checks run before the first stage, all problems reported at once.
#[test]
fn every_section_is_checked_before_the_first_stage() {
    let p = Project::new();
    p.write_config(
        "[gates.spot_check]\nrate = 1.5\n[consume]\nbatch_size = 0\n\
         template = \"<|{role}|>\"\n[qa]\ninvitation_days = 0",
    );
    let r = p.run(&["release", "--dry-run"]);
    assert_eq!(r.code, 2, "{r:?}");
    for setting in [
        "[gates] spot_check.rate",
        "[consume] batch_size",
        "[consume] template must contain {content}",
        "[qa] qa.invitation_days",
    ] {
        assert!(r.stderr.contains(setting), "{setting}: {r:?}");
    }
    assert!(!p.exports_exist());
    let r = p.run(&["doctor"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("[consume] batch_size"), "{r:?}");
    // A valid configuration says so.
    let p = Project::new();
    let r = p.run(&["doctor"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("config check    valid: every section checked"),
        "{r:?}"
    );
}

#[test]
fn an_exports_prefix_leaving_the_store_is_refused() {
    let p = Project::new();
    let r = p.run_env(
        &["coverage"],
        &[("DATASET_EXPORTS_PREFIX", "../../outside")],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("not a key prefix") && r.stderr.contains("hint:"),
        "{r:?}"
    );
    assert!(!p.path().join("store/%2E%2E").exists());
}
