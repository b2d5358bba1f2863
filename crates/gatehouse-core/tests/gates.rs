//! The privacy and provenance gates over real builds of the sample store: they pass a clean
//! release, and fail closed, by locator and without text, on detections, tampered, missing
//! or garbled shards, unverified records, licence drift and unlicensed datasets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;
use common::*;

use gatehouse_core::build::BuildConfig;
use gatehouse_core::gates::{self, GatesConfig, GatesOutcome, SpotCheckConfig};
use gatehouse_core::registry::Registry;
use gatehouse_core::report::Verdict;
use gatehouse_core::store::Store;
use gatehouse_core::waiver::Waiver;

fn run_gates(
    store: &Store,
    reg: &Registry,
    config: &GatesConfig,
    waivers: &[Waiver],
) -> GatesOutcome {
    gates_with(store, reg, config, waivers, &Default::default()).unwrap()
}

fn gate_reports(store: &Store) -> String {
    [
        "gates/pii_detection_report.json",
        "gates/provenance_validation_report.json",
        "gates/deduplication_report.json",
        "gates/cross_split_leakage_report.json",
    ]
    .iter()
    .map(|f| text(store, &format!("{LOC}{f}")))
    .collect::<Vec<_>>()
    .join("\n")
}

/// Rewrites a shard with `f` and records its new sha256 in the manifest, so the gates see
/// a consistent release whose content changed after the build.
fn rewrite_shard(store: &Store, split: &str, f: impl Fn(&str) -> String) {
    let key = format!("{LOC}shards/{split}/part-00000.jsonl");
    let old = text(store, &key);
    let new = f(&old);
    assert_ne!(old, new, "the rewrite changed nothing");
    store.put(&key, new.clone().into_bytes()).unwrap();
    let manifest_key = format!("{LOC}manifest.json");
    let manifest = text(store, &manifest_key).replace(
        &gatehouse_core::digest::sha256(old.as_bytes()),
        &gatehouse_core::digest::sha256(new.as_bytes()),
    );
    store.put(&manifest_key, manifest.into_bytes()).unwrap();
}

#[test]
fn a_clean_release_passes_and_the_spot_check_sample_is_seeded() {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    let built = build_with(&store, &reg, &BuildConfig::default());
    let out = run_gates(&store, &reg, &sample_gates_config(), &[]);
    assert!(out.passed, "{:#?}", out.summaries);
    let p = &out.privacy;
    assert_eq!(p.verdict, Verdict::Pass);
    assert_eq!(p.release_digest, built.release_digest);
    assert_eq!(
        p.detail.metrics.records_scanned,
        built.report.records_exported
    );
    assert_eq!(p.detail.metrics.lines_read, built.report.records_exported);
    assert!(p.shards.iter().all(|s| s.ok) && p.shards.len() == 3);
    assert_eq!(out.provenance.verdict, Verdict::Pass);
    assert_eq!(
        out.provenance.detail.metrics.records_checked,
        built.report.records_exported
    );

    // The sample: about 10% by default, whole records, redrawn identically from the seed.
    let s = &p.detail.spot_check;
    assert!(s.size > 0 && s.size < 60, "{}", s.size);
    assert_eq!(s.population, built.report.records_exported);
    let sample_key = format!("{LOC}gates/pii_spot_check_sample.jsonl");
    let lines: Vec<serde_json::Value> = records(&store, &sample_key);
    assert_eq!(lines.len(), s.size);
    for (line, id) in lines.iter().zip(&s.ids) {
        assert_eq!(line["id"], id.as_str());
        assert_eq!(line["record"]["id"], id.as_str());
        assert!(line["record"]["messages"].is_array());
    }
    let again = run_gates(&store, &reg, &sample_gates_config(), &[]);
    assert_eq!(again.privacy.detail.spot_check.ids, s.ids);
    let other_seed = GatesConfig {
        spot_check: SpotCheckConfig {
            seed: 2,
            ..SpotCheckConfig::default()
        },
        ..sample_gates_config()
    };
    let reseeded = run_gates(&store, &reg, &other_seed, &[]);
    assert_ne!(reseeded.privacy.detail.spot_check.ids, s.ids);
    let capped = GatesConfig {
        spot_check: SpotCheckConfig {
            rate: 1.0,
            max: 7,
            seed: 1,
        },
        ..sample_gates_config()
    };
    assert_eq!(
        run_gates(&store, &reg, &capped, &[])
            .privacy
            .detail
            .spot_check
            .size,
        7
    );
}

#[test]
fn a_name_left_in_the_export_fails_the_privacy_gate_by_locator_without_text() {
    let store = Store::memory();
    sample_into(&store);
    let name = "Sarah Okonkwo";
    store
        .put(
            "sources/priority/pairs.jsonl",
            format!(
                "{{\"prompt\": \"I feel tired.\", \"response\": \"Tell me more.\"}}\n\
                 {{\"prompt\": \"Hi, my name is {name} and I cannot sleep.\", \"response\": \"Thank you for telling me.\"}}\n"
            ),
        )
        .unwrap();
    // The build is told the name is public (an allowlist), so it stays in the export …
    let allowing = registry_text().replace(
        "include = [\"sources/priority/pairs.jsonl\"]",
        &format!("include = [\"sources/priority/pairs.jsonl\"]\npii_allowlist = [\"{name}\"]"),
    );
    build_with(&store, &registry(&allowing), &BuildConfig::default());
    let exported = text(&store, &format!("{LOC}compiled_export.jsonl"));
    assert!(exported.contains(name));
    // … and passes the gate under that registry.
    let out = run_gates(&store, &registry(&allowing), &sample_gates_config(), &[]);
    assert!(out.passed, "{:#?}", out.summaries);

    // Under the registry without the allowlist, the gate finds it.
    let out = run_gates(
        &store,
        &registry(&registry_text()),
        &sample_gates_config(),
        &[],
    );
    assert!(!out.passed);
    let p = &out.privacy;
    assert_eq!(p.verdict, Verdict::Fail);
    assert_eq!(p.counts["PII011"].found, 1);
    let loc = &p.locators["PII011"][0];
    assert_eq!(
        loc.source.as_deref(),
        Some("sources/priority/pairs.jsonl:2")
    );
    assert_eq!(loc.message, Some(0));
    let start = "Hi, my name is ".chars().count();
    assert_eq!(loc.chars, Some([start, start + name.chars().count()]));
    assert!(loc.at.contains("shards/") && loc.id.is_some());
    // The registry changed since the build: provenance fails too.
    assert!(out.provenance.counts.contains_key("PRV008"));
    let reports = gate_reports(&store);
    for part in name.split(' ') {
        assert!(!reports.contains(part), "a report holds the planted name");
    }

    // A waiver for that record and code lets the privacy gate pass, and is shown.
    let id = loc.id.clone().unwrap();
    let waiver = Waiver {
        code: "PII011".into(),
        family: None,
        dataset: None,
        record: Some(id),
        reason: "a public figure of the persona's show".into(),
        approver: "privacy-officer".into(),
        expires: "2026-12-31".parse().unwrap(),
    };
    let out = run_gates(
        &store,
        &registry(&registry_text()),
        &sample_gates_config(),
        &[waiver],
    );
    assert_eq!(out.privacy.verdict, Verdict::Pass);
    assert_eq!(out.privacy.counts["PII011"].waived, 1);
    assert_eq!(out.privacy.waivers.len(), 1);
    assert!(out.privacy.locators["PII011"][0].waived);
    // The uniform list (what the audit log records) holds each gate's waivers, in order.
    let gates: Vec<&str> = out.waivers.iter().map(|g| g.gate).collect();
    let summaries: Vec<&str> = out.summaries.iter().map(|g| g.gate.as_ref()).collect();
    assert_eq!(gates, summaries);
    assert_eq!(out.waivers[0].waivers, out.privacy.waivers);
    assert!(out.waivers[1..].iter().all(|g| g.waivers.is_empty()));
}

#[test]
fn a_name_left_in_a_carried_source_field_fails_the_privacy_gate() {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    build_with(&store, &reg, &BuildConfig::default());
    let name = "Sarah Okonkwo";
    rewrite_shard(&store, "train", |s| {
        s.replacen(
            "\"metadata\":{",
            &format!(
                "\"metadata\":{{\"source_fields\":{{\"situation\":\"I told {name} everything\"}},"
            ),
            1,
        )
    });
    let out = run_gates(&store, &reg, &sample_gates_config(), &[]);
    let p = &out.privacy;
    assert_eq!(p.verdict, Verdict::Fail);
    assert_eq!(p.counts["PII011"].found, 1, "{:#?}", p.counts);
    let loc = &p.locators["PII011"][0];
    assert_eq!(loc.message, None);
    let detail = loc.detail.as_deref().unwrap();
    assert!(
        detail.contains("source_fields") && detail.contains("situation"),
        "{detail}"
    );
    let start = "I told ".chars().count();
    assert_eq!(loc.chars, Some([start, start + name.chars().count()]));
    for part in name.split(' ') {
        assert!(
            !gate_reports(&store).contains(part),
            "a report holds the name"
        );
    }
}

#[test]
fn tampered_garbled_and_missing_shards_fail_both_gates_by_locator() {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    build_with(&store, &reg, &BuildConfig::default());

    // Edited after the build, manifest untouched: the digest no longer matches.
    let train = format!("{LOC}shards/train/part-00000.jsonl");
    let original = text(&store, &train);
    let garbled = original.replacen('\n', "\n{\"secret-marker\": not json\n", 2);
    store.put(&train, garbled.into_bytes()).unwrap();
    store
        .delete(&format!("{LOC}shards/val/part-00000.jsonl"))
        .unwrap();
    let out = run_gates(&store, &reg, &sample_gates_config(), &[]);
    assert!(!out.passed);
    for counts in [&out.privacy.counts, &out.provenance.counts] {
        assert_eq!(counts["EXP001"].found, 1, "missing shard");
        assert_eq!(counts["EXP002"].found, 2, "unparseable lines");
        assert_eq!(counts["EXP003"].found, 1, "digest mismatch");
        assert_eq!(counts["EXP004"].found, 1, "count mismatch");
    }
    let bad = &out.privacy.locators["EXP002"];
    assert_eq!(bad[0].at, format!("{train}:2"));
    assert!(bad[1].at.starts_with(&train));
    assert_eq!(out.privacy.verdict, Verdict::Fail);
    assert_eq!(out.provenance.verdict, Verdict::Fail);
    assert!(!gate_reports(&store).contains("secret-marker"));
}

#[test]
fn an_unverified_record_and_licence_drift_fail_closed() {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    build_with(&store, &reg, &BuildConfig::default());
    rewrite_shard(&store, "test", |s| {
        s.replacen(
            "\"pii_status\":\"none_detected\"",
            "\"pii_status\":\"not_scanned\"",
            1,
        )
        .replacen("\"license_tag\":\"CC0-1.0\"", "\"license_tag\":\"\"", 1)
        .replacen("\"pipeline\":\"gatehouse", "\"pipeline_x\":\"gatehouse", 1)
    });
    let out = run_gates(&store, &reg, &sample_gates_config(), &[]);
    assert!(
        out.privacy.shards.iter().all(|s| s.ok),
        "manifest was patched"
    );
    assert_eq!(out.privacy.counts["PII012"].found, 1);
    assert_eq!(out.privacy.verdict, Verdict::Fail);
    let v = &out.provenance;
    assert_eq!(v.verdict, Verdict::Fail);
    assert_eq!(v.counts["PRV001"].found, 2, "{:#?}", v.locators);
    let details: Vec<&str> = v.locators["PRV001"]
        .iter()
        .filter_map(|l| l.detail.as_deref())
        .collect();
    assert!(details.iter().any(|d| d.contains("license_tag")));
    assert!(details.iter().any(|d| d.contains("pipeline")));

    // The registry's licence changes after the build: every record disagrees.
    let relicensed = registry_text().replace(
        "include = [\"sources/priority/pairs.jsonl\"]\nformat = \"prompt_response\"\nlicense_tag = \"CC0-1.0\"",
        "include = [\"sources/priority/pairs.jsonl\"]\nformat = \"prompt_response\"\nlicense_tag = \"CC-BY-4.0\"",
    );
    assert_ne!(relicensed, registry_text());
    let out = run_gates(&store, &registry(&relicensed), &sample_gates_config(), &[]);
    assert_eq!(out.provenance.counts["PRV003"].found, 24);
    assert!(out.provenance.counts.contains_key("PRV008"));
}

#[test]
fn an_unlicensed_dataset_fails_the_provenance_gate_unless_waived() {
    let store = Store::memory();
    sample_into(&store);
    let text = format!(
        "{}\n[[datasets]]\nname = \"scraped_forum\"\nfamily = \"priority_datasets\"\ninclude = [\"sources/forum/*.jsonl\"]\nformat = \"chatml\"\n",
        registry_text()
    );
    let reg = registry(&text);
    let built = build_with(&store, &reg, &BuildConfig::default());
    assert!(
        built
            .report
            .excluded_datasets
            .iter()
            .any(|e| e.dataset == "scraped_forum")
    );
    let out = run_gates(&store, &reg, &sample_gates_config(), &[]);
    let v = &out.provenance;
    assert_eq!(v.verdict, Verdict::Fail);
    assert_eq!(v.counts["PRV006"].found, 1);
    let d = v
        .detail
        .datasets
        .iter()
        .find(|d| d.dataset == "scraped_forum")
        .unwrap();
    assert_eq!(d.status, gates::provenance::DatasetStatus::Excluded);
    assert!(!out.passed);

    let waiver = Waiver {
        code: "PRV006".into(),
        family: None,
        dataset: Some("scraped_forum".into()),
        record: None,
        reason: "licence under negotiation; not in this release".into(),
        approver: "release-manager".into(),
        expires: "2026-12-31".parse().unwrap(),
    };
    let out = run_gates(
        &store,
        &reg,
        &sample_gates_config(),
        std::slice::from_ref(&waiver),
    );
    assert_eq!(out.provenance.verdict, Verdict::Warn);
    assert!(out.passed);
    // An expired waiver is shown and not applied.
    let expired = Waiver {
        expires: "2026-11-24".parse().unwrap(),
        ..waiver
    };
    let out = run_gates(&store, &reg, &sample_gates_config(), &[expired]);
    assert_eq!(out.provenance.verdict, Verdict::Fail);
    assert_eq!(out.provenance.waivers.len(), 1);
}

#[test]
fn gates_refuse_a_release_that_was_never_built() {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    let err = gates_with(
        &store,
        &reg,
        &sample_gates_config(),
        &[],
        &Default::default(),
    )
    .unwrap_err();
    assert!(matches!(err, gates::GateError::NotBuilt { .. }), "{err}");
    assert!(err.hint().unwrap().contains("gatehouse build"));
}
