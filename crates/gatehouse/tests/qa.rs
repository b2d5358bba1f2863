//! Human QA from the command line: the release waits for a signoff of its exact manifest,
//! reviews made elsewhere come in as CSV, a flagged record leaves the next build, and
//! invitations store only a token's hash.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{Project, filled_csv, invite_team};

const V: &str = "v2026-02-03";

fn qa_dir(p: &Project) -> PathBuf {
    p.path().join(format!("store/exports/releases/{V}/qa"))
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn release_waits_for_a_signoff_of_this_exact_manifest() {
    let p = Project::new();
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("qa        awaiting signoff"), "{r:?}");
    assert!(
        r.stderr.contains("awaits human QA") && r.stderr.contains("gatehouse qa invite"),
        "{r:?}"
    );
    assert!(qa_dir(&p).join("review_template.csv").is_file());

    // A signoff record edited to say "approved" counts for nothing: the gate recomputes it.
    assert_eq!(p.run(&["qa", "signoff", "--release-version", V]).code, 1);
    let record = qa_dir(&p).join("signoff_record.json");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(
        &record,
        text.replace("\"not_approved\"", "\"approved\"")
            .replace("\"reasons\": [", "\"reasons_\": ["),
    )
    .unwrap();
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("does not match the stored reviews"),
        "{r:?}"
    );

    // Reviews from a spreadsheet: every sample, every reviewer the rubric asks for.
    let team = invite_team(&p, V);
    std::fs::write(
        p.path().join("reviews.csv"),
        filled_csv(&p, V, &team, false),
    )
    .unwrap();
    let r = p.run(&["qa", "import", "reviews.csv", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.matches("qa import: stored").count(), 6, "{r:?}");
    let r = p.run(&["qa", "signoff", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("qa signoff approved"), "{r:?}");

    // A changed manifest voids the signoff.
    p.write_config("[build]\nseed = 7\n");
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("qa        drew"), "{r:?}");
    assert!(r.stdout.contains("a changed manifest voids it"), "{r:?}");

    // Back to the reviewed configuration: the rebuild is byte-identical, so the signoff holds,
    // training consumption passes on the draft, and the release is published.
    p.write_config("");
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("qa        pass"), "{r:?}");
    assert!(r.stdout.contains("consume   pass"), "{r:?}");
    assert!(r.stdout.contains("digest bound by QA signoff"), "{r:?}");
    assert!(r.stdout.contains("publish   pass"), "{r:?}");
    assert!(r.stderr.contains("is published"), "{r:?}");
    let release = p.path().join(format!("store/exports/releases/{V}"));
    for f in [
        "_PUBLISHED",
        "release_notes.json",
        "release_notes.md",
        "release_summary.json",
        "gates/combined_gate_report.json",
        "README.md",
    ] {
        assert!(release.join(f).is_file(), "{f} missing");
    }
    // The release notes say who vouched for each review file (here: the operator).
    let notes = std::fs::read_to_string(release.join("release_notes.md")).unwrap();
    assert_eq!(notes.matches("operator-attested by").count(), 6, "{notes}");
    let marker = json(release.join("_PUBLISHED"));
    let manifest_sha = format!(
        "sha256:{}",
        sha256_hex(&std::fs::read(release.join("manifest.json")).unwrap())
    );
    assert_eq!(marker["release_digest"], manifest_sha.as_str());
    let card = std::fs::read_to_string(release.join("README.md")).unwrap();
    assert!(card.starts_with("---\nlicense:\n"), "{card}");
    assert!(card.contains("path: shards/train/*.parquet"));
    let notes = json(release.join("release_notes.json"));
    assert!(notes["decision"].as_str().unwrap().contains(V));
    assert_eq!(notes["signoff"]["decision"], "approved");
    let summary = json(release.join("release_summary.json"));
    let stages: Vec<&str> = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["coverage", "build", "gates", "qa", "consume"]);

    // Published: never again, never touched; consumable without --draft.
    let before = std::fs::read(release.join("manifest.json")).unwrap();
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("already published"), "{r:?}");
    let r = p.run(&["qa", "signoff", "--release-version", V]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = p.run(&["build", "--release-version", V]);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        std::fs::read(release.join("manifest.json")).unwrap(),
        before
    );
    let r = p.run(&["consume", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("digest bound by publication marker"),
        "{r:?}"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    gatehouse_core::digest::sha256(bytes)["sha256:".len()..].to_string()
}

#[test]
fn a_flagged_record_leaves_the_next_build_and_is_reported() {
    let p = Project::new();
    assert_eq!(p.run(&["build", "--release-version", V]).code, 0);
    assert_eq!(p.run(&["qa", "sample", "--release-version", V]).code, 0);
    let team = invite_team(&p, V);
    std::fs::write(p.path().join("reviews.csv"), filled_csv(&p, V, &team, true)).unwrap();
    let r = p.run(&["qa", "import", "reviews.csv", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = p.run(&["qa", "signoff", "--release-version", V, "--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let blocked = out["signoff"]["blocklist"].as_array().unwrap();
    assert_eq!(blocked.len(), 1);
    let id = blocked[0]["record_id"].as_str().unwrap().to_string();

    let r = p.run(&["build", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    let release = p.path().join(format!("store/exports/releases/{V}"));
    let report = json(release.join("build_report.json"));
    assert_eq!(report["blocklist"]["records_removed"], 1);
    assert_eq!(report["blocklist"]["sources"].as_array().unwrap().len(), 1);
    let manifest = json(release.join("manifest.json"));
    assert_eq!(manifest["blocklist"]["records_removed"], 1);
    let mut found = false;
    gatehouse_test::for_each_file(&release.join("shards"), &mut |key, bytes| {
        if key.ends_with(".jsonl") {
            found |= String::from_utf8(bytes)
                .unwrap()
                .contains(&format!("\"{id}\""));
        }
        Ok(())
    })
    .unwrap();
    assert!(!found, "the flagged record is still exported");
    // The packets of the old manifest are void.
    let r = p.run(&["qa", "signoff", "--release-version", V]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("qa sample"), "{r:?}");
}

#[test]
fn invitations_store_only_a_hash_and_share_out_samples() {
    let p = Project::new();
    assert_eq!(p.run(&["build", "--release-version", V]).code, 0);
    // Nobody can be invited before packets exist.
    let r = p.run(&[
        "qa",
        "invite",
        "--release-version",
        V,
        "--name",
        "A",
        "--role",
        "clinician-edge",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("qa sample"), "{r:?}");
    assert_eq!(p.run(&["qa", "sample", "--release-version", V]).code, 0);
    let edge_samples = json(qa_dir(&p).join("qa_samples.json"))["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["review_types"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "clinician_edge")
        })
        .count();
    assert!(edge_samples >= 2);
    let half = edge_samples.div_ceil(2).to_string();
    let mut tokens = Vec::new();
    for name in ["Dr A", "Dr B", "Dr C", "Dr D"] {
        let r = p.run(&[
            "qa",
            "invite",
            "--release-version",
            V,
            "--name",
            name,
            "--role",
            "clinician-edge",
            "--max-samples",
            &half,
            "--json",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let token = out["token"].as_str().unwrap().to_string();
        assert!(token.len() >= 64 && out["link"].as_str().unwrap().ends_with(&token));
        tokens.push(token);
    }
    let stored = std::fs::read_to_string(qa_dir(&p).join("reviewers.json")).unwrap();
    for t in &tokens {
        assert!(!stored.contains(t.as_str()), "a token is stored in clear");
    }
    // Four reviewers with half each: every sample at least twice, as the rubric asks.
    let reviewers = json(qa_dir(&p).join("reviewers.json"));
    let mut per_sample: BTreeMap<String, usize> = BTreeMap::new();
    for r in reviewers["reviewers"].as_array().unwrap() {
        for a in r["assignments"].as_array().unwrap() {
            *per_sample
                .entry(a.as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(per_sample.len(), edge_samples);
    assert!(per_sample.values().all(|n| *n >= 2), "{per_sample:?}");
}

/// Issue 18: with the default policy, reviews imported without the reviewers' signatures are
/// operator-attested by whoever ran the import and do not count; a reviewer's own key
/// (`qa keygen`, `qa invite --public-key`, `qa sign`) makes their import authenticated;
/// a changed signed file is refused; the release notes say who vouched for what.
#[test]
fn forged_imports_do_not_count_by_default_and_signed_ones_do() {
    let p = Project::new();
    p.write_config("[qa]\ncount_attested = false");
    let r = p.run(&["release", "--release-version", V]);
    assert_eq!(r.code, 1, "{r:?}");
    let team = invite_team(&p, V);
    std::fs::write(
        p.path().join("reviews.csv"),
        filled_csv(&p, V, &team, false),
    )
    .unwrap();
    let r = p.run_env(
        &["qa", "import", "reviews.csv", "--release-version", V],
        &[("GATEHOUSE_ACTOR", "mallory")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("operator-attested by mallory: NOT counted"),
        "{r:?}"
    );
    let r = p.run(&["qa", "signoff", "--release-version", V]);
    assert_eq!(r.code, 1, "forged reviews approved: {r:?}");
    let record = json(qa_dir(&p).join("signoff_record.json"));
    let auth = record["authentication"].as_array().unwrap();
    assert_eq!(auth.len(), 6);
    assert!(auth.iter().all(|a| a["method"] == "operator-attested"
        && a["by"] == "mallory"
        && a["counted"] == false));

    // A reviewer with a key of their own.
    let key = p.path().join("reviewer.key");
    let r = p.run(&["qa", "keygen", "--out", key.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let public: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let public = public["public_key"].as_str().unwrap().to_string();
    let r = p.run(&[
        "qa",
        "invite",
        "--release-version",
        V,
        "--name",
        "Dr Signed",
        "--role",
        "bias-cultural",
        "--public-key",
        &public,
        "--json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["reviewer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let template = json(qa_dir(&p).join("review_template.json"));
    let assigned: Vec<String> = json(qa_dir(&p).join("reviewers.json"))["reviewers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap()["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let criteria = [
        "demographic_bias",
        "cultural_competency",
        "inclusive_language",
        "stereotype_avoidance",
        "accessibility_awareness",
    ];
    let reviews: Vec<serde_json::Value> = assigned
        .iter()
        .map(|s| {
            let scores: serde_json::Map<String, serde_json::Value> =
                criteria.iter().map(|c| (c.to_string(), 9.into())).collect();
            serde_json::json!({"sample_id": s, "scores": scores, "comment": "fine"})
        })
        .collect();
    let file = serde_json::json!({
        "release_digest": template["release_digest"],
        "reviewer": id,
        "review_type": "bias_cultural",
        "reviews": reviews,
    });
    let path = p.path().join("signed.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    // Unsigned: refused, the reviewer has a key.
    let r = p.run(&["qa", "import", "signed.json", "--release-version", V]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("registered a key"), "{r:?}");
    let r = p.run(&["qa", "sign", "signed.json", "--key", key.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{r:?}");
    // Changed after signing: refused.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("fine", "fine!")).unwrap();
    let r = p.run(&["qa", "import", "signed.json", "--release-version", V]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not verify"), "{r:?}");
    std::fs::write(&path, text).unwrap();
    let r = p.run(&["qa", "import", "signed.json", "--release-version", V]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("signed by the reviewer's registered key"),
        "{r:?}"
    );
    p.run(&["qa", "signoff", "--release-version", V]);
    let record = json(qa_dir(&p).join("signoff_record.json"));
    let mine = record["authentication"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["reviewer"].as_str().unwrap().contains(&id))
        .unwrap()
        .clone();
    assert_eq!(mine["method"], "signature");
    assert_eq!(mine["counted"], true);
}
