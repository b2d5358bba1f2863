//! The build stage end to end on the bundled sample store: determinism, reconciliation,
//! group-aware splits, holdouts, exclusions and quarantine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::build::{self, BuildConfig};
use gatehouse_core::report::Verdict;
use gatehouse_core::store::{Backend, Store, StoreConfig};
use gatehouse_text::{TokenizerName, TokenizerSpec};
use serde_json::Value;

mod common;
use common::*;

fn release_files(store: &Store) -> BTreeMap<String, Vec<u8>> {
    store
        .list(LOC)
        .map(|o| {
            let key = o.unwrap().key;
            let bytes = store.get_bytes(&key).unwrap().to_vec();
            (key, bytes)
        })
        .collect()
}

#[test]
fn two_builds_from_two_copies_are_byte_identical() {
    let (a, b) = (Store::memory(), Store::memory());
    sample_into(&a);
    sample_into(&b);
    let reg = registry(&registry_text());
    let oa = build_with(&a, &reg, &BuildConfig::default());
    let ob = build_with(&b, &reg, &BuildConfig::default());
    assert_eq!(oa.release_digest, ob.release_digest);
    let (fa, fb) = (release_files(&a), release_files(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(v == &fb[k], "{k} differs");
    }
}

#[test]
fn the_manifest_names_the_commit_gatehouse_was_built_from() {
    let store = Store::memory();
    sample_into(&store);
    let out = build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    let commit = out.manifest.tool.git_commit;
    let in_checkout = repo_root().join(".git").is_dir();
    if in_checkout && std::env::var_os("GATEHOUSE_GIT_COMMIT").is_none() {
        assert_eq!(commit.len(), 40, "{commit}");
        assert!(commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
    }
}

#[test]
fn the_thread_count_does_not_change_the_release() {
    let (a, b) = (Store::memory(), Store::memory());
    sample_into(&a);
    sample_into(&b);
    let reg = registry(&registry_text());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let da = one.install(|| build_with(&a, &reg, &BuildConfig::default()).release_digest);
    let db = four.install(|| build_with(&b, &reg, &BuildConfig::default()).release_digest);
    assert_eq!(da, db);
}

#[test]
fn a_rebuild_into_the_same_draft_leaves_no_stale_output() {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    let small = BuildConfig {
        shard_max_records: 10,
        ..BuildConfig::default()
    };
    build_with(&store, &reg, &small);
    assert!(store.list(&format!("{LOC}shards/train/")).count() > 5);
    let out = build_with(&store, &reg, &BuildConfig::default());
    let listed: BTreeSet<String> = store.list(LOC).map(|o| o.unwrap().key).collect();
    let mut expected: BTreeSet<String> = out.written.iter().cloned().collect();
    expected.insert(format!("{LOC}manifest.json"));
    assert_eq!(listed, expected);
}

#[test]
fn local_disk_and_s3_give_the_same_release() {
    let dir = tempfile::tempdir().unwrap();
    let local = Store::open(&StoreConfig {
        backend: Backend::Local {
            root: dir.path().to_path_buf(),
        },
        exports_prefix: "exports".into(),
    })
    .unwrap();
    sample_into(&local);
    let s3 = gatehouse_test::TestS3::start().unwrap();
    let bucket = s3.create_bucket("build").unwrap();
    let env: BTreeMap<String, String> = s3.env(&bucket).into_iter().collect();
    let remote = Store::open(&gatehouse_core::config::store_from_env(&env).unwrap()).unwrap();
    sample_into(&remote);
    let reg = registry(&registry_text());
    let a = build_with(&local, &reg, &BuildConfig::default());
    let b = build_with(&remote, &reg, &BuildConfig::default());
    assert_eq!(a.release_digest, b.release_digest);
}

#[test]
fn counts_reconcile_and_every_record_follows_the_contract() {
    let store = Store::memory();
    sample_into(&store);
    let out = build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    let r = &out.report;
    assert_eq!(r.verdict, Verdict::Pass);
    assert_eq!(
        r.records_read,
        r.records_exported
            + r.records_quarantined
            + r.records_removed_by_policy
            + r.records_removed_as_duplicates
    );
    // The sample's synthetic crisis scenarios share templates: two pairs are near
    // duplicates (Jaccard 0.71 and 0.74), listed with the record kept in their place.
    assert_eq!(r.records_removed_as_duplicates, 2);
    let removed = records(&store, &format!("{LOC}dedup_removed.jsonl"));
    assert_eq!(removed.len(), 2);
    for d in &removed {
        assert_eq!(d["kind"], "near");
        assert!(d["jaccard"].as_f64().unwrap() >= 0.7);
        assert!(d["kept_id"].as_str().unwrap().len() == 16);
    }
    for o in &r.objects {
        assert_eq!(
            o.read,
            o.exported
                + o.quarantined.values().sum::<u64>()
                + o.removed_by_policy
                + o.duplicates_removed,
            "{}",
            o.key
        );
        // Counted independently of the adapters: one JSON Lines record per non-blank line.
        if o.key.ends_with(".jsonl") {
            let bytes = store.get_bytes(&o.key).unwrap();
            let lines = bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count() as u64;
            assert_eq!(o.read, lines, "{}", o.key);
        }
    }
    let compiled = records(&store, &format!("{LOC}compiled_export.jsonl"));
    assert_eq!(compiled.len() as u64, r.records_exported);
    let mut in_shards = 0;
    for split in ["train", "val", "test"] {
        for o in store.list(&format!("{LOC}shards/{split}/")) {
            let key = o.unwrap().key;
            if !key.ends_with(".jsonl") {
                continue; // the Parquet twins hold the same records
            }
            for rec in records(&store, &key) {
                assert_eq!(rec["metadata"]["split"], split);
                in_shards += 1;
            }
        }
    }
    assert_eq!(in_shards, r.records_exported);
    let ids: BTreeSet<_> = compiled
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), compiled.len(), "ids are unique");
    for rec in &compiled {
        let m = &rec["metadata"];
        for field in [
            "source_family",
            "dataset",
            "stage",
            "source_key",
            "license_tag",
            "split",
        ] {
            assert!(m[field].is_string(), "{field}");
        }
        assert!(m["source_line"].as_u64().unwrap() >= 1);
        assert!(m["content_hash"].as_str().unwrap().starts_with("sha256:"));
        let sha = m["provenance"]["source_sha256"].as_str().unwrap();
        let input = out
            .manifest
            .inputs
            .iter()
            .find(|i| i.key == m["source_key"])
            .unwrap();
        assert_eq!(
            sha, input.sha256,
            "provenance is the source object's digest"
        );
        let msgs = rec["messages"].as_array().unwrap();
        assert!(msgs.iter().any(|m| m["role"] == "assistant"));
        assert!(
            msgs.iter()
                .all(|m| ["system", "user", "assistant"].contains(&m["role"].as_str().unwrap()))
        );
    }
    // The manifest lists what is really there.
    let manifest: Value =
        serde_json::from_slice(&store.get_bytes(&format!("{LOC}manifest.json")).unwrap()).unwrap();
    for split in manifest["contents"].as_array().unwrap() {
        for shard in split["shards"].as_array().unwrap() {
            let bytes = store.get_bytes(shard["key"].as_str().unwrap()).unwrap();
            assert_eq!(gatehouse_core::digest::sha256(&bytes), shard["sha256"]);
        }
    }
    assert_eq!(
        out.release_digest,
        gatehouse_core::digest::sha256(&store.get_bytes(&format!("{LOC}manifest.json")).unwrap())
    );
    // Routing: exactly the included families, weights normalised.
    let routing: Value = serde_json::from_slice(
        &store
            .get_bytes(&format!("{LOC}routing_config.json"))
            .unwrap(),
    )
    .unwrap();
    let fams = routing["families"].as_array().unwrap();
    assert_eq!(fams.len(), 5);
    let sum: f64 = fams.iter().map(|f| f["weight"].as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{sum}");
}

#[test]
fn token_counts_are_real_and_add_up_in_manifest_and_routing() {
    let store = Store::memory();
    sample_into(&store);
    // A model's own tokenizer.json (a small word-level one) beside the built-in encodings.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokenizer.json");
    std::fs::copy(
        repo_root().join("crates/gatehouse-text/tests/fixtures/word_level_tokenizer.json"),
        &file,
    )
    .unwrap();
    let specs = TokenizerName::ALL
        .into_iter()
        .map(TokenizerSpec::from)
        .chain([TokenizerSpec::File(file)]);
    for tokenizer in specs {
        let config = BuildConfig {
            tokenizer: tokenizer.clone(),
            ..BuildConfig::default()
        };
        let out = build_with(&store, &registry(&registry_text()), &config);
        let counter = tokenizer.counter().unwrap();
        // Recounted independently from the exported text, per split and family.
        let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
        for rec in records(&store, &format!("{LOC}compiled_export.jsonl")) {
            let tokens: u64 = rec["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| counter.count(m["content"].as_str().unwrap()))
                .sum();
            assert_eq!(rec["metadata"]["tokens"], tokens, "{}", rec["id"]);
            let m = &rec["metadata"];
            *expected
                .entry((
                    m["split"].as_str().unwrap().to_string(),
                    m["source_family"].as_str().unwrap().to_string(),
                ))
                .or_default() += tokens;
        }
        assert!(expected.values().sum::<u64>() > 0);
        let manifest = &out.manifest;
        assert_eq!(manifest.tokens.tokenizer, counter.label());
        if let TokenizerSpec::File(_) = tokenizer {
            assert!(counter.label().starts_with("tokenizer.json (sha256:"));
        }
        let mut in_manifest = BTreeMap::new();
        for c in &manifest.contents {
            assert_eq!(c.tokens, c.families.values().map(|t| t.tokens).sum::<u64>());
            for (family, t) in &c.families {
                in_manifest.insert((c.split.as_str().to_string(), family.clone()), t.tokens);
            }
        }
        assert_eq!(in_manifest, expected);
        let routing: Value = serde_json::from_slice(
            &store
                .get_bytes(&format!("{LOC}routing_config.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(routing["tokenizer"], counter.label());
        let mut in_routing = BTreeMap::new();
        for f in routing["families"].as_array().unwrap() {
            for (split, n) in f["tokens"].as_object().unwrap() {
                if n.as_u64().unwrap() > 0 {
                    in_routing.insert(
                        (split.clone(), f["family"].as_str().unwrap().to_string()),
                        n.as_u64().unwrap(),
                    );
                }
            }
        }
        assert_eq!(in_routing, expected);
    }
}

#[test]
fn a_conversation_group_never_straddles_splits() {
    let store = Store::memory();
    sample_into(&store);
    // A small seed-independent check needs many groups in several splits: use 50/25/25.
    let config = BuildConfig {
        ratios: build::Ratios {
            train: 0.5,
            val: 0.25,
            test: 0.25,
        },
        ..BuildConfig::default()
    };
    build_with(&store, &registry(&registry_text()), &config);
    let mut split_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rec in records(&store, &format!("{LOC}compiled_export.jsonl")) {
        split_of
            .entry(rec["metadata"]["group"].as_str().unwrap().to_string())
            .or_default()
            .insert(rec["metadata"]["split"].as_str().unwrap().to_string());
    }
    let multi = split_of
        .keys()
        .filter(|g| g.starts_with("synthetic_sessions:"))
        .count();
    assert!(multi > 3, "sessions form groups");
    assert!(
        split_of.values().all(|s| s.len() == 1),
        "a group spans splits"
    );
    let used: BTreeSet<_> = split_of.values().flatten().collect();
    assert_eq!(used.len(), 3);
}

#[test]
fn test_only_families_go_to_test_and_unlicensed_datasets_are_excluded() {
    let store = Store::memory();
    sample_into(&store);
    let text = registry_text()
        .replace(
            "stage = \"stage3_edge_stress_test\"\nrequired = true\nholdout = \"strict\"",
            "stage = \"stage3_edge_stress_test\"\nrequired = true\nholdout = \"test_only\"",
        )
        .replacen("license_tag = \"CC0-1.0\"\n", "", 1);
    let out = build_with(&store, &registry(&text), &BuildConfig::default());
    assert_eq!(out.report.excluded_datasets.len(), 1);
    assert_eq!(
        out.report.excluded_datasets[0].dataset,
        "synthetic_sessions"
    );
    assert_eq!(out.report.verdict, Verdict::Warn);
    let recs = records(&store, &format!("{LOC}compiled_export.jsonl"));
    assert!(
        recs.iter()
            .all(|r| r["metadata"]["dataset"] != "synthetic_sessions")
    );
    let edge: Vec<_> = recs
        .iter()
        .filter(|r| r["metadata"]["source_family"] == "edge_cases")
        .collect();
    // 24 scenarios, 2 removed as near duplicates.
    assert_eq!(edge.len(), 22);
    assert!(edge.iter().all(|r| r["metadata"]["split"] == "test"));
}

#[test]
fn bad_records_are_quarantined_by_locator_and_a_bad_source_fails_the_build() {
    let store = Store::memory();
    sample_into(&store);
    let secret_text = "MY-PRIVATE-SENTENCE";
    let good = "{\"prompt\": \"p\", \"response\": \"r\"}\n";
    let bad = format!("{{\"prompt\": \"{secret_text}\"}}\n");
    store
        .put("sources/priority/pairs.jsonl", format!("{good}{bad}{good}"))
        .unwrap();
    // More ways for text to reach an error: invalid JSON and an unknown role label.
    store
        .put(
            "sources/professional/sessions/part-002.jsonl",
            format!(
                "{{\"session_id\": \"x\", \"messages\": [{{\"role\": \"{secret_text}\", \"content\": \"c\"}}]}}\n{{\"messages\": \"{secret_text}\n"
            ),
        )
        .unwrap();
    let out = build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    let pairs = out
        .report
        .objects
        .iter()
        .find(|o| o.key == "sources/priority/pairs.jsonl")
        .unwrap();
    // The two good lines are the same conversation: one is removed as a duplicate.
    assert_eq!(
        (pairs.read, pairs.exported, pairs.duplicates_removed),
        (3, 1, 1)
    );
    assert_eq!(
        pairs.verdict,
        Verdict::Fail,
        "1 of 3 quarantined is over the 5% bound"
    );
    assert_eq!(out.report.verdict, Verdict::Fail);
    let q = records(&store, &format!("{LOC}quarantine.jsonl"));
    assert_eq!(q.len(), 3);
    let pairs_q = q
        .iter()
        .find(|e| e["key"] == "sources/priority/pairs.jsonl")
        .unwrap();
    assert_eq!(pairs_q["line"], 2);
    assert_eq!(pairs_q["code"], "Q004");
    for (key, bytes) in release_files(&store) {
        if !key.contains("shards/") && !key.ends_with("compiled_export.jsonl") {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret_text),
                "content leaked into {key}"
            );
        }
    }
}

#[test]
fn planted_pii_is_redacted_and_unsure_records_can_be_held_for_review() {
    let store = Store::memory();
    sample_into(&store);
    let planted = [
        "Sarah Okonkwo",
        "sarah.okonkwo@example.com",
        "(415) 555-0132",
        "123-45-6789",
    ];
    let lines = [
        format!(
            "{{\"prompt\": \"Hi, I'm {}. Email {} or call {}. SSN {}.\", \"response\": \"Thank you. If you are in crisis, call 988.\"}}\n",
            planted[0], planted[1], planted[2], planted[3]
        ),
        // Only an ambiguous capitalised first name: unsure.
        "{\"prompt\": \"Yesterday I argued with Tom about money.\", \"response\": \"That sounds hard.\"}\n".to_string(),
        "{\"prompt\": \"I feel tired.\", \"response\": \"Tell me more.\"}\n".to_string(),
    ];
    store
        .put("sources/priority/pairs.jsonl", lines.concat())
        .unwrap();
    let reg = registry(&registry_text());

    let out = build_with(&store, &reg, &BuildConfig::default());
    let compiled = text(&store, &format!("{LOC}compiled_export.jsonl"));
    for p in planted {
        assert!(!compiled.contains(p), "a planted value reached the export");
    }
    assert!(compiled.contains("call 988"), "crisis numbers stay");
    let recs: Vec<Value> = records(&store, &format!("{LOC}compiled_export.jsonl"))
        .into_iter()
        .filter(|r| r["metadata"]["source_key"] == "sources/priority/pairs.jsonl")
        .collect();
    assert_eq!(recs.len(), 3);
    let first = &recs[0];
    assert_eq!(first["metadata"]["pii_status"], "scrubbed");
    assert_eq!(first["metadata"]["redactions"]["NAME"], 1);
    assert_eq!(first["metadata"]["redactions"]["EMAIL"], 1);
    assert_eq!(first["metadata"]["redactions"]["PHONE"], 1);
    assert_eq!(first["metadata"]["redactions"]["SSN"], 1);
    let content = first["messages"][0]["content"].as_str().unwrap();
    assert!(
        content.contains("I'm [NAME_1]. Email [EMAIL_1]"),
        "{content}"
    );
    assert_eq!(recs[2]["metadata"]["pii_status"], "none_detected");
    assert_eq!(out.report.records_removed_by_policy, 0);

    // Review policy: the unsure record is held back, listed by id, and counts reconcile.
    let config = BuildConfig {
        pii_unsure: gatehouse_text::pii::UnsurePolicy::Review,
        ..BuildConfig::default()
    };
    let out = build_with(&store, &reg, &config);
    let pairs = out
        .report
        .objects
        .iter()
        .find(|o| o.key == "sources/priority/pairs.jsonl")
        .unwrap();
    assert_eq!(
        (pairs.read, pairs.exported, pairs.removed_by_policy),
        (3, 2, 1)
    );
    assert_eq!(pairs.held_for_review.len(), 1);
    assert_eq!(
        out.report.records_read,
        out.report.records_exported
            + out.report.records_quarantined
            + out.report.records_removed_by_policy
            + out.report.records_removed_as_duplicates
    );
    let report = text(&store, &format!("{LOC}build_report.json"));
    for p in planted {
        assert!(!report.contains(p), "a planted value reached the report");
    }
}
