//! The contract's wire types are the files: a manifest the build wrote, read into
//! [`contract::Manifest`] and written again, gives the same bytes back, so every reader that
//! uses the type sees every field the writer wrote. Snapshots (insta) pin the shape of each
//! type as the sample store's build writes it (the commit gatehouse was built from masked).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod common;

use gatehouse_core::build::BuildConfig;
use gatehouse_core::contract::{self, Manifest};
use gatehouse_core::layout;
use gatehouse_core::store::Store;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use common::*;

fn pretty<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap();
    b.push(b'\n');
    b
}

fn sample_manifest() -> (Store, Vec<u8>) {
    let store = Store::memory();
    sample_into(&store);
    let reg = registry(&registry_text());
    build_with(&store, &reg, &BuildConfig::default());
    let bytes = store.get_bytes(&layout::MANIFEST.at(LOC)).unwrap().to_vec();
    (store, bytes)
}

#[test]
fn a_manifest_read_and_written_again_is_byte_identical() {
    let (_, bytes) = sample_manifest();
    let manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
    assert!(
        pretty(&manifest) == bytes,
        "the manifest does not round-trip"
    );
    assert!(manifest.contents.iter().all(|c| !c.shards.is_empty()));
}

#[test]
fn the_manifest_keeps_its_shape() {
    let (_, bytes) = sample_manifest();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["tool"]["git_commit"] = "<commit>".into();
    v["tool"]["version"] = "<version>".into();
    insta::assert_snapshot!("manifest", serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn a_blocklist_file_round_trips() {
    let file = contract::BlocklistFile {
        release_version: "v1".into(),
        release_digest: "sha256:00".into(),
        records: vec![contract::BlockedRecord {
            record_id: "r1".into(),
            sample_id: "qa-1".into(),
            reviewer: "rv-1".into(),
            flag: "remove: stereotyping".into(),
        }],
    };
    let bytes = pretty(&file);
    let back: contract::BlocklistFile = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, file);
    insta::assert_snapshot!("blocklist_file", String::from_utf8(bytes).unwrap());
}

#[test]
fn a_manifest_from_before_blocklists_and_parquet_still_reads() {
    let (_, bytes) = sample_manifest();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v.as_object_mut().unwrap().remove("blocklist");
    for c in v["contents"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("parquet");
    }
    let m: Manifest = serde_json::from_value(v).unwrap();
    assert_eq!(m.blocklist, contract::BlocklistSummary::default());
    assert!(m.contents.iter().all(|c| c.parquet.is_empty()));
}

#[test]
fn a_routing_config_read_and_written_again_is_byte_identical() {
    let (store, _) = sample_manifest();
    let bytes = store
        .get_bytes(&layout::ROUTING_CONFIG.at(LOC))
        .unwrap()
        .to_vec();
    let routing: contract::RoutingConfig = serde_json::from_slice(&bytes).unwrap();
    assert!(
        pretty(&routing) == bytes,
        "the routing config does not round-trip"
    );
    assert!(!routing.families.is_empty());
}

#[test]
fn every_exported_line_reads_back_as_a_record_with_every_field() {
    let (store, bytes) = sample_manifest();
    let manifest: Manifest = serde_json::from_slice(&bytes).unwrap();
    let mut lines = 0;
    for c in &manifest.contents {
        for shard in &c.shards {
            let text = store.get_bytes(&shard.key).unwrap();
            for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let record: contract::record::Record = serde_json::from_slice(line).unwrap();
                assert_eq!(record.metadata.split, c.split.as_str());
                // Nothing written is lost or changed in the reading (key order aside).
                let written: serde_json::Value = serde_json::from_slice(line).unwrap();
                assert!(
                    serde_json::to_value(&record).unwrap() == written,
                    "{}",
                    shard.key
                );
                lines += 1;
            }
        }
    }
    assert_eq!(
        lines,
        manifest.contents.iter().map(|c| c.records).sum::<u64>()
    );
}

// The reports of a release: each read into its contract type and written again gives the
// stored bytes back, and each keeps its shape (snapshots, with the tool's version, measured
// times and the commit masked). Reports hold locators and counts, never conversation text.

/// The sample store built, gated and consumed as a draft at [`LOC`].
fn sample_release() -> (Store, contract::consume::ConsumeReport) {
    let (store, _) = sample_manifest();
    let reg = registry(&registry_text());
    gates_with(
        &store,
        &reg,
        &sample_gates_config(),
        &[],
        &gatehouse_core::build::dedup::DedupConfig::default(),
    )
    .unwrap();
    let consumed = gatehouse_core::consume::run(
        &store,
        LOC,
        &gatehouse_core::consume::ConsumeConfig::default(),
        &gatehouse_text::TokenizerSpec::default(),
        true,
    )
    .unwrap();
    (store, consumed.report)
}

/// `bytes` read as `T` and written again: the same bytes.
fn round_trips<T: Serialize + DeserializeOwned>(what: &str, bytes: &[u8]) -> T {
    let typed: T = serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(pretty(&typed) == bytes, "{what} does not round-trip");
    typed
}

/// The report as JSON with what changes from run to run or commit to commit (the tool's
/// version, the commit and so the release digest, measured times) masked.
fn masked(bytes: &[u8]) -> String {
    fn mask(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if ["generated_by", "git_commit", "release_digest"].contains(&k.as_str())
                        || (k == "version" && v.is_string())
                    {
                        *v = "<masked>".into();
                    } else if k.ends_with("seconds") || k.ends_with("_per_second") {
                        *v = 0.into();
                    } else {
                        mask(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(mask),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_slice(bytes).unwrap();
    mask(&mut v);
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn every_report_of_the_sample_release_round_trips_and_keeps_its_shape() {
    let (store, consumed) = sample_release();
    let get = |file: layout::File| store.get_bytes(&file.at(LOC)).unwrap().to_vec();

    let build = get(layout::BUILD_REPORT);
    let report: gatehouse_core::build::BuildReport = round_trips("build_report.json", &build);
    assert!(!report.objects.is_empty());
    insta::assert_snapshot!("build_report", masked(&build));

    use contract::gates::{
        DedupReport, DistributionReport, LeakageReport, PrivacyReport, ProvenanceReport,
    };
    let privacy = get(layout::PII_REPORT);
    round_trips::<PrivacyReport>("the privacy report", &privacy);
    insta::assert_snapshot!("privacy_report", masked(&privacy));
    let provenance = get(layout::PROVENANCE_REPORT);
    round_trips::<ProvenanceReport>("the provenance report", &provenance);
    insta::assert_snapshot!("provenance_report", masked(&provenance));
    let dedup = get(layout::DEDUP_REPORT);
    round_trips::<DedupReport>("the dedup report", &dedup);
    insta::assert_snapshot!("dedup_report", masked(&dedup));
    let leakage = get(layout::LEAKAGE_REPORT);
    round_trips::<LeakageReport>("the leakage report", &leakage);
    insta::assert_snapshot!("leakage_report", masked(&leakage));
    let distribution = get(layout::DISTRIBUTION_REPORT);
    round_trips::<DistributionReport>("the distribution report", &distribution);
    insta::assert_snapshot!("distribution_report", masked(&distribution));
    for file in layout::GATE_REPORTS {
        contract::gates::read_gate_report(file.name(), &get(file)).unwrap();
    }

    let consume = pretty(&consumed);
    round_trips::<contract::consume::ConsumeReport>("the consumption report", &consume);
    insta::assert_snapshot!("consume_report", masked(&consume));
}

#[test]
fn a_gate_report_that_does_not_match_its_type_is_refused() {
    let (store, _) = sample_release();
    let bytes = store.get_bytes(&layout::PII_REPORT.at(LOC)).unwrap();
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["metrics"]["records_scanned"] = "many".into();
    let e = contract::gates::read_gate_report(
        layout::PII_REPORT.name(),
        &serde_json::to_vec(&v).unwrap(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("invalid type"), "{e}");
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["findings"] = serde_json::json!([{"code": "XYZ999", "name": "x", "severity": "error",
        "subject": "s", "message": "m"}]);
    let e = serde_json::from_value::<contract::gates::PrivacyReport>(v).unwrap_err();
    assert!(e.to_string().contains("unknown finding code"), "{e}");
}

#[test]
fn the_coverage_report_round_trips_and_keeps_its_shape() {
    let store = Store::memory();
    sample_into(&store);
    let report = gatehouse_core::coverage::run(
        &store,
        &registry(&registry_text()),
        &contract::coverage::CoverageConfig::default(),
        &[],
        "2026-11-25".parse().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let bytes = pretty(&report);
    let back: contract::coverage::CoverageReport = round_trips("the coverage report", &bytes);
    assert_eq!(back, report);
    insta::assert_snapshot!("coverage_report", masked(&bytes));
}

#[test]
fn a_signoff_record_round_trips_and_keeps_its_shape() {
    use contract::signoff::*;
    let signoff = Signoff {
        schema_version: 1,
        release_version: "v1".into(),
        release_digest: "sha256:00".into(),
        decision: "not_approved".into(),
        reasons: vec!["clinician_foundation: 1 review(s) below the rubric".into()],
        reviewers: [("rv-1".to_string(), ReviewType::ClinicianFoundation)].into(),
        review_files: vec!["qa/reviews/rv-1.json".into()],
        void_review_files: vec![],
        authentication: vec![ReviewAuth {
            reviewer: "rv-1".into(),
            review_type: ReviewType::ClinicianFoundation,
            file: "qa/reviews/rv-1.json".into(),
            method: Authentication::OperatorAttested,
            by: Some("operator".into()),
            counted: true,
        }],
        results: vec![TypeResult {
            review_type: ReviewType::ClinicianFoundation,
            reviewers_required: 1,
            samples: 2,
            samples_complete: 2,
            reviews: 2,
            reviews_passing: 1,
            mean_overall: 6.5,
            complete: true,
            agreement_pairs: 0,
            mean_overall_difference: None,
            pass_fail_agreement: None,
        }],
        privacy_spot_check: SpotCheckResult {
            drawn: true,
            records: 1,
            records_reviewed: 1,
            records_with_miss: 1,
            marks_by_type: [(IdentifierKind::Name, 1)].into(),
            residual_identifier_rate: Some(1.0),
            residual_identifier_rate_upper_95: Some(1.0),
            bound_method: "exact one-sided binomial".into(),
            complete: true,
            misses: vec![Miss {
                record_id: "r1".into(),
                sample_id: "qa-1".into(),
                reviewer: "rv-1".into(),
                marks: vec![IdentifierMark {
                    message: 0,
                    start: 3,
                    end: 8,
                    kind: IdentifierKind::Name,
                }],
            }],
        },
        exceptions: vec![Exception {
            sample_id: "qa-2".into(),
            record_id: "r2".into(),
            review_type: ReviewType::ClinicianFoundation,
            reviewer: "rv-1".into(),
            overall: 4.0,
            below_minimum: vec!["safety".into()],
        }],
        blocklist: vec![Blocked {
            record_id: "r1".into(),
            sample_id: "qa-1".into(),
            reviewer: "rv-1".into(),
            flag: "remove: stereotyping".into(),
        }],
    };
    let bytes = pretty(&signoff);
    let back: Signoff = round_trips("the signoff record", &bytes);
    assert_eq!(back, signoff);
    insta::assert_snapshot!("signoff_record", String::from_utf8(bytes).unwrap());
}

#[test]
fn a_publication_marker_round_trips_and_keeps_its_shape() {
    use contract::publish::{Evidence, Head, Marker};
    let marker = Marker {
        schema_version: 1,
        release_version: "v1".into(),
        release_digest: "sha256:00".into(),
        published_at: "2026-11-25T00:00:00Z".into(),
        published_by: "gatehouse 0.0.0".into(),
        evidence: vec![Evidence {
            key: "exports/releases/v1/manifest.json".into(),
            sha256: "sha256:01".into(),
        }],
        unenforced_store_override: None,
        audit_head: Some(Head {
            log: "exports/audit/run.jsonl".into(),
            seq: 7,
            sha256: "sha256:02".into(),
        }),
    };
    let bytes = pretty(&marker);
    let back: Marker = round_trips("the marker", &bytes);
    assert_eq!(back, marker);
    insta::assert_snapshot!("published_marker", String::from_utf8(bytes).unwrap());
}
