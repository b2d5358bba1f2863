//! `qa sample`: seeded, stratified review packets of whole redacted records, bound to the
//! release digest, with content warnings and a blank review per sample and review type.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gatehouse_core::build::BuildConfig;
use gatehouse_core::qa::{self, QaConfig, QaError};
use gatehouse_core::registry::ReviewType;
use gatehouse_core::store::Store;
use serde_json::Value;

const MAX_LINE: usize = 1 << 24;

fn built() -> (Store, String) {
    let store = Store::memory();
    sample_into(&store);
    let out = build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    (store, out.release_digest)
}

/// Built, and the gates run (so the privacy gate's spot-check sample exists).
fn gated() -> (Store, String) {
    let (store, digest) = built();
    let reg = registry(&registry_text());
    gates_with(
        &store,
        &reg,
        &sample_gates_config(),
        &[],
        &Default::default(),
    )
    .unwrap();
    (store, digest)
}

/// Invites a privacy spot-checker for every spot-check record and returns their file:
/// no identifier left, except the marks given per sample id.
fn spot_check_file(
    store: &Store,
    samples: &qa::QaSamples,
    reviewer: &str,
    marks: &[(&str, Value)],
) -> Value {
    let invited = qa::reviewers::invite(
        store,
        LOC,
        reviewer,
        ReviewType::PrivacySpotCheck,
        None,
        14,
        None,
    )
    .unwrap();
    let reviews: Vec<Value> = samples
        .samples
        .iter()
        .filter(|s| s.review_types.contains(&ReviewType::PrivacySpotCheck))
        .map(|s| {
            let left = marks
                .iter()
                .find(|(id, _)| *id == s.sample_id)
                .map_or_else(|| serde_json::json!([]), |(_, m)| m.clone());
            serde_json::json!({"sample_id": s.sample_id, "scores": {}, "identifiers_left": left})
        })
        .collect();
    serde_json::json!({
        "release_digest": samples.release_digest,
        "reviewer": invited.reviewer.id,
        "review_type": "privacy_spot_check",
        "reviews": reviews,
    })
}

#[test]
fn packets_are_seeded_stratified_and_bound_to_the_release() {
    let (store, digest) = built();
    let reg = registry(&registry_text());
    let config = counting_attested();
    let out = qa::sample(&store, &reg, LOC, &config, MAX_LINE).unwrap();
    let s = &out.samples;
    assert_eq!(s.release_digest, digest);

    // Every family × split of the export has a group sized by the rule, and holds exactly
    // that many distinct records of its own group.
    let recs = records(&store, &format!("{LOC}compiled_export.jsonl"));
    for g in &s.groups {
        let population = recs
            .iter()
            .filter(|r| {
                r["metadata"]["source_family"] == g.family.as_str()
                    && r["metadata"]["split"] == g.split.as_str()
            })
            .count() as u64;
        assert_eq!(g.population, population, "{} {}", g.family, g.split);
        assert_eq!(g.size, config.sample.size(population));
        let drawn: Vec<_> = s
            .samples
            .iter()
            .filter(|x| x.family == g.family && x.split == g.split)
            .collect();
        assert_eq!(drawn.len() as u64, g.size);
    }
    let ids: std::collections::BTreeSet<_> = s.samples.iter().map(|x| &x.sample_id).collect();
    assert_eq!(ids.len(), s.samples.len(), "sample ids are unique");

    // Whole exported records, as exported (redacted).
    for x in &s.samples {
        let record: Value = serde_json::from_str(x.record.get()).unwrap();
        assert_eq!(record["id"], x.record_id.as_str());
        assert!(recs.contains(&record));
    }
    // Crisis scenarios carry a content warning; the bias/cultural review gets samples.
    assert!(
        s.samples
            .iter()
            .filter(|x| x.family == "edge_cases")
            .all(|x| x.content_warning.is_some())
    );
    assert!(s.review_types_without_samples.is_empty());
    assert!(
        s.samples
            .iter()
            .any(|x| x.review_types.contains(&ReviewType::BiasCultural))
    );

    // The template: a blank review per sample and review type, with that rubric's criteria.
    let template: Value =
        serde_json::from_str(&text(&store, &format!("{LOC}qa/review_template.json"))).unwrap();
    assert_eq!(template["release_digest"], digest.as_str());
    let slots = template["reviews"].as_array().unwrap();
    let expected: usize = s.samples.iter().map(|x| x.review_types.len()).sum();
    assert_eq!(slots.len(), expected);
    let edge = slots
        .iter()
        .find(|r| r["review_type"] == "clinician_edge")
        .unwrap();
    assert_eq!(edge["scores"].as_object().unwrap().len(), 4);
    assert!(edge["scores"]["safety_prioritization"].is_null());

    // The same seed redraws the same packets; another seed draws others.
    let again = qa::sample(&store, &reg, LOC, &config, MAX_LINE).unwrap();
    let ids = |s: &qa::QaSamples| {
        s.samples
            .iter()
            .map(|x| x.record_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&again.samples), ids(s));
    let mut other = counting_attested();
    other.sample.seed = 2;
    let other = qa::sample(&store, &reg, LOC, &other, MAX_LINE).unwrap();
    assert_ne!(ids(&other.samples), ids(s));
}

#[test]
fn a_release_that_was_never_built_cannot_be_sampled() {
    let store = Store::memory();
    sample_into(&store);
    let err = qa::sample(
        &store,
        &registry(&registry_text()),
        LOC,
        &counting_attested(),
        MAX_LINE,
    )
    .unwrap_err();
    assert!(matches!(err, QaError::NotBuilt { .. }), "{err}");
    assert!(err.hint().unwrap().contains("gatehouse build"));
}

/// Invites `name` for `review_type` (every sample of the type) and returns their file
/// scoring every one of them with `score`.
fn review_file(
    store: &Store,
    samples: &qa::QaSamples,
    config: &QaConfig,
    reviewer: &str,
    review_type: ReviewType,
    score: f64,
) -> Value {
    let rubric = &config.rubrics[&review_type];
    let invited = qa::reviewers::invite(store, LOC, reviewer, review_type, None, 14, None).unwrap();
    let reviews: Vec<Value> = samples
        .samples
        .iter()
        .filter(|s| s.review_types.contains(&review_type))
        .map(|s| {
            let scores: serde_json::Map<String, Value> = rubric
                .criteria
                .iter()
                .map(|c| (c.name.clone(), score.into()))
                .collect();
            serde_json::json!({"sample_id": s.sample_id, "scores": scores, "comment": "ok"})
        })
        .collect();
    serde_json::json!({
        "release_digest": samples.release_digest,
        "reviewer": invited.reviewer.id,
        "review_type": review_type,
        "reviews": reviews,
    })
}

fn import(store: &Store, file: &Value) -> Result<String, QaError> {
    qa::import(
        store,
        LOC,
        &serde_json::to_vec(file).unwrap(),
        &counting_attested(),
        None,
        "test-operator",
    )
}

/// The default policy, but counting operator-attested (unsigned) imports, as these tests
/// are about the signoff's arithmetic, not about who made the files.
fn counting_attested() -> QaConfig {
    QaConfig {
        count_attested: Some(true),
        ..QaConfig::default()
    }
}

#[test]
fn the_signoff_is_computed_from_reviewers_files_only() {
    let (store, digest) = gated();
    let reg = registry(&registry_text());
    let config = counting_attested();
    let packets = qa::sample(&store, &reg, LOC, &config, MAX_LINE)
        .unwrap()
        .samples;

    // No reviews: nothing is approved.
    let (s, _) = qa::signoff(&store, LOC, &config).unwrap();
    assert_eq!(s.decision, "not_approved");
    assert_eq!(s.results.iter().filter(|r| r.complete).count(), 0);

    // Two clinicians per clinical type, one bias/cultural reviewer, all scoring 9.
    for (who, t) in [
        ("dr-a", ReviewType::ClinicianFoundation),
        ("dr-b", ReviewType::ClinicianFoundation),
        ("dr-c", ReviewType::ClinicianEdge),
        ("dr-d", ReviewType::ClinicianEdge),
        ("rev-e", ReviewType::BiasCultural),
    ] {
        import(&store, &review_file(&store, &packets, &config, who, t, 9.0)).unwrap();
    }
    // Every rubric satisfied, but the privacy spot-check not done: refused, saying what next.
    let (s, _) = qa::signoff(&store, LOC, &config).unwrap();
    assert_eq!(s.decision, "not_approved");
    assert_eq!(s.reasons.len(), 1, "{:?}", s.reasons);
    assert!(
        s.reasons[0].contains("privacy_spot_check review is incomplete: 0 of")
            && s.reasons[0].contains("--role privacy-spot-check"),
        "{:?}",
        s.reasons
    );
    assert!(!s.privacy_spot_check.complete);
    import(&store, &spot_check_file(&store, &packets, "priv-f", &[])).unwrap();
    let (s, written) = qa::signoff(&store, LOC, &config).unwrap();
    assert_eq!(s.decision, "approved", "{:?}", s.reasons);
    assert_eq!(s.release_digest, digest);
    assert_eq!(s.reviewers.len(), 6);
    let p = &s.privacy_spot_check;
    assert!(p.complete && p.records > 0 && p.records_reviewed == p.records);
    assert_eq!(p.records_with_miss, 0);
    assert_eq!(p.residual_identifier_rate, Some(0.0));
    let n = p.records as f64;
    assert!(
        (p.residual_identifier_rate_upper_95.unwrap() - (1.0 - 0.05f64.powf(1.0 / n))).abs() < 1e-5
    );
    let foundation = s
        .results
        .iter()
        .find(|r| r.review_type == ReviewType::ClinicianFoundation)
        .unwrap();
    assert!(foundation.complete && foundation.agreement_pairs == foundation.samples);
    assert_eq!(foundation.pass_fail_agreement, Some(1.0));
    assert!(
        written
            .iter()
            .any(|k| k.ends_with("qa/signoff_record.json"))
    );

    // A second edge reviewer who scores safety below its minimum (9) and flags a record.
    let mut low = review_file(
        &store,
        &packets,
        &config,
        "dr-f",
        ReviewType::ClinicianEdge,
        9.0,
    );
    low["reviews"][0]["scores"]["safety_prioritization"] = 8.0.into();
    low["reviews"][1]["flag"] = "remove: disallowed content".into();
    import(&store, &low).unwrap();
    let (s, _) = qa::signoff(&store, LOC, &config).unwrap();
    assert_eq!(s.decision, "not_approved");
    assert_eq!(s.exceptions.len(), 1);
    assert_eq!(s.exceptions[0].below_minimum, vec!["safety_prioritization"]);
    assert_eq!(s.blocklist.len(), 1);
    let blocklist: Value =
        serde_json::from_str(&text(&store, &format!("{LOC}qa/blocklist.json"))).unwrap();
    assert_eq!(
        blocklist["records"][0]["record_id"],
        s.blocklist[0].record_id.as_str()
    );
    assert_eq!(blocklist["release_digest"], s.release_digest.as_str());
}

#[test]
fn reviews_that_do_not_fit_the_release_are_refused() {
    let (store, _) = built();
    let reg = registry(&registry_text());
    let config = counting_attested();
    let packets = qa::sample(&store, &reg, LOC, &config, MAX_LINE)
        .unwrap()
        .samples;
    let good = review_file(
        &store,
        &packets,
        &config,
        "dr-a",
        ReviewType::ClinicianEdge,
        9.0,
    );
    let refused = |f: Value, what: &str| {
        let err = import(&store, &f).unwrap_err();
        assert!(err.to_string().contains(what), "{what}: {err}");
    };
    let mut f = good.clone();
    f["release_digest"] = "sha256:0000".into();
    refused(f, "this release is");
    let mut f = good.clone();
    f["reviews"][0]["sample_id"] = "qa-nope".into();
    refused(f, "not a sample of this release");
    let mut f = good.clone();
    f["reviews"][0]["scores"]
        .as_object_mut()
        .unwrap()
        .remove("crisis_handling");
    refused(f, "crisis_handling is not scored");
    let mut f = good.clone();
    f["reviews"][0]["scores"]["crisis_handling"] = 11.0.into();
    refused(f, "not on the 1–10 scale");
    // A reviewer invited for edge review cannot file foundation reviews.
    let mut f = good.clone();
    f["review_type"] = "clinician_foundation".into();
    refused(
        f,
        "was invited for clinician_edge review, not clinician_foundation",
    );
    // Only invited reviewers count: a name is not an invitation.
    let mut f = good.clone();
    f["reviewer"] = "dr-anybody".into();
    refused(f, "is not a reviewer invited to this release");
    // A corrected import replaces the reviewer's earlier file.
    let first = import(&store, &good).unwrap();
    let mut corrected = good.clone();
    corrected["reviews"][0]["comment"] = "corrected".into();
    assert_eq!(import(&store, &corrected).unwrap(), first);

    // A rebuild voids the packets and the reviews stored for them.
    store
        .put(
            "sources/priority/pairs.jsonl",
            "{\"prompt\": \"p\", \"response\": \"r\"}\n",
        )
        .unwrap();
    build_with(&store, &reg, &BuildConfig::default());
    let err = qa::signoff(&store, LOC, &config).unwrap_err();
    assert!(matches!(err, QaError::StalePackets { .. }), "{err}");
}

#[test]
fn the_qa_gate_refuses_packets_edited_to_fewer_samples() {
    let (store, _) = built();
    let reg = registry(&registry_text());
    let config = counting_attested();
    qa::sample(&store, &reg, LOC, &config, MAX_LINE).unwrap();
    let key = format!("{LOC}qa/qa_samples.json");
    let mut packets: Value = serde_json::from_str(&text(&store, &key)).unwrap();
    assert!(matches!(
        qa::gate(&store, &reg, LOC, &config).unwrap(),
        qa::QaGate::Awaiting { .. }
    ));
    // Fewer samples to review, the digest kept: the gate notices.
    packets["samples"].as_array_mut().unwrap().truncate(1);
    store
        .put(&key, serde_json::to_vec(&packets).unwrap())
        .unwrap();
    qa::signoff(&store, LOC, &config).unwrap();
    match qa::gate(&store, &reg, LOC, &config).unwrap() {
        qa::QaGate::NotApproved { reasons, .. } => {
            assert!(reasons[0].contains("is not the draw"), "{reasons:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// The gate works from the stored packets: without any, or with packets bound to another
/// manifest digest, it fails closed, naming the file and the command that draws them.
#[test]
fn the_qa_gate_fails_closed_without_packets_of_this_manifest() {
    let (store, _) = built();
    let reg = registry(&registry_text());
    let config = counting_attested();
    let key = format!("{LOC}qa/qa_samples.json");
    let draw_them = "gatehouse qa sample --release-version v2026-11-25";
    let err = qa::gate(&store, &reg, LOC, &config).unwrap_err();
    assert!(matches!(err, QaError::NoPackets { .. }), "{err}");
    assert!(err.to_string().contains(&key), "{err}");
    assert!(err.to_string().contains(draw_them), "{err}");

    qa::sample(&store, &reg, LOC, &config, MAX_LINE).unwrap();
    qa::signoff(&store, LOC, &config).unwrap();
    let mut packets: Value = serde_json::from_str(&text(&store, &key)).unwrap();
    packets["release_digest"] = format!("sha256:{}", "0".repeat(64)).into();
    store
        .put(&key, serde_json::to_vec(&packets).unwrap())
        .unwrap();
    let err = qa::gate(&store, &reg, LOC, &config).unwrap_err();
    assert!(matches!(err, QaError::StalePackets { .. }), "{err}");
    assert!(err.to_string().contains(&key), "{err}");
    assert!(err.hint().unwrap().contains(draw_them), "{:?}", err.hint());

    store.delete(&key).unwrap();
    let err = qa::gate(&store, &reg, LOC, &config).unwrap_err();
    assert!(matches!(err, QaError::NoPackets { .. }), "{err}");
}

/// Issue 20: the gate reads the drawn packets instead of drawing them again, so it reads no
/// shard: with every shard gone an approved signoff still passes. Packets that are not the
/// draw of the rule over this manifest still fail it.
#[test]
fn the_qa_gate_reads_the_stored_packets_not_the_shards() {
    let (store, _) = gated();
    let reg = registry(&registry_text());
    let config = counting_attested();
    let packets = qa::sample(&store, &reg, LOC, &config, MAX_LINE)
        .unwrap()
        .samples;
    for (who, t) in [
        ("dr-a", ReviewType::ClinicianFoundation),
        ("dr-b", ReviewType::ClinicianFoundation),
        ("dr-c", ReviewType::ClinicianEdge),
        ("dr-d", ReviewType::ClinicianEdge),
        ("rev-e", ReviewType::BiasCultural),
    ] {
        import(&store, &review_file(&store, &packets, &config, who, t, 9.0)).unwrap();
    }
    import(&store, &spot_check_file(&store, &packets, "priv-f", &[])).unwrap();
    let (s, _) = qa::signoff(&store, LOC, &config).unwrap();
    assert_eq!(s.decision, "approved", "{:?}", s.reasons);

    let manifest: Value =
        serde_json::from_str(&text(&store, &format!("{LOC}manifest.json"))).unwrap();
    let mut shards = 0;
    for split in manifest["contents"].as_array().unwrap() {
        for shard in split["shards"].as_array().unwrap() {
            store.delete(shard["key"].as_str().unwrap()).unwrap();
            shards += 1;
        }
    }
    assert!(shards > 0);
    let gate = qa::gate(&store, &reg, LOC, &config).unwrap();
    assert!(gate.passed(), "{gate:?}");

    let not_the_draw = |config: &QaConfig| match qa::gate(&store, &reg, LOC, config).unwrap() {
        qa::QaGate::NotApproved { reasons, .. } => reasons[0].contains("is not the draw"),
        _ => false,
    };
    // Another seed draws other records.
    let mut reseeded = config.clone();
    reseeded.sample.seed = 2;
    assert!(not_the_draw(&reseeded));
    // A rule that gives other group sizes draws otherwise; one that gives the same sizes
    // draws the same packets, which still pass, as when the gate drew them again.
    let mut more = config.clone();
    more.sample.min = 6;
    assert!(not_the_draw(&more));
    let mut same = config.clone();
    same.sample.max = 60;
    assert!(qa::gate(&store, &reg, LOC, &same).unwrap().passed());
    // Edits that keep every reviewed sample id: a record swapped under a sample id, a sample
    // moved to another group, the spot-check's draw changed.
    let key = format!("{LOC}qa/qa_samples.json");
    let original = text(&store, &key);
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(&original).unwrap();
        edit(&mut v);
        store.put(&key, serde_json::to_vec(&v).unwrap()).unwrap();
        let refused = not_the_draw(&config);
        store.put(&key, original.clone().into_bytes()).unwrap();
        refused
    };
    assert!(edited(
        &|v| v["samples"][0]["record_id"] = "another-record".into()
    ));
    assert!(edited(&|v| {
        let other = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| {
                g["review_types"] == v["samples"][0]["review_types"]
                    && g["split"] != v["samples"][0]["split"]
            })
            .map(|g| g["split"].clone())
            .unwrap();
        v["samples"][0]["split"] = other;
    }));
    assert!(edited(&|v| v["privacy_spot_check"]["seed"] = 99.into()));
    assert!(qa::gate(&store, &reg, LOC, &config).unwrap().passed());
}

#[test]
fn a_review_type_without_a_rubric_is_a_configuration_error() {
    let (store, _) = built();
    let reg = registry(&registry_text());
    let mut config = counting_attested();
    config.rubrics.remove(&ReviewType::BiasCultural);
    let err = qa::sample(&store, &reg, LOC, &config, MAX_LINE).unwrap_err();
    assert!(matches!(err, QaError::Config(_)), "{err}");
    assert!(err.to_string().contains("bias_cultural"), "{err}");
}

/// Issue 18: one person inviting five "reviewers" and importing passing scores in their names
/// gets operator-attested files that do not count by default; a reviewer's registered key
/// makes their imports authenticated, and unsigned or wrongly signed imports refused.
#[test]
fn forged_imports_are_attested_and_signed_imports_are_authenticated() {
    use gatehouse_core::qa::proof::{self, Authentication};

    let (store, _) = gated();
    let reg = registry(&registry_text());
    let strict = QaConfig::default();
    let packets = qa::sample(&store, &reg, LOC, &strict, MAX_LINE)
        .unwrap()
        .samples;
    for (who, t) in [
        ("dr-a", ReviewType::ClinicianFoundation),
        ("dr-b", ReviewType::ClinicianFoundation),
        ("dr-c", ReviewType::ClinicianEdge),
        ("dr-d", ReviewType::ClinicianEdge),
        ("rev-e", ReviewType::BiasCultural),
    ] {
        import(&store, &review_file(&store, &packets, &strict, who, t, 9.0)).unwrap();
    }
    import(&store, &spot_check_file(&store, &packets, "priv-f", &[])).unwrap();
    let (s, _) = qa::signoff(&store, LOC, &strict).unwrap();
    assert_eq!(
        s.decision, "not_approved",
        "forged reviews approved a release"
    );
    assert_eq!(s.authentication.len(), 6);
    assert!(s.authentication.iter().all(|a| {
        a.method == Authentication::OperatorAttested
            && !a.counted
            && a.by.as_deref() == Some("test-operator")
    }));
    let (s, _) = qa::signoff(&store, LOC, &counting_attested()).unwrap();
    assert_eq!(s.decision, "approved", "{:?}", s.reasons);

    // A reviewer who registered a key.
    let (private, public) = proof::keygen().unwrap();
    let (other, _) = proof::keygen().unwrap();
    let inv = qa::reviewers::invite(
        &store,
        LOC,
        "Dr Key",
        ReviewType::BiasCultural,
        None,
        14,
        Some(&public),
    )
    .unwrap();
    let mut file = review_file(
        &store,
        &packets,
        &strict,
        "unused",
        ReviewType::BiasCultural,
        9.0,
    );
    file["reviewer"] = inv.reviewer.id.clone().into();
    let bytes = serde_json::to_vec(&file).unwrap();
    let err = qa::import(&store, LOC, &bytes, &strict, None, "op").unwrap_err();
    assert!(err.to_string().contains("registered a key"), "{err}");
    let wrong = proof::sign(&other, &bytes).unwrap();
    let err = qa::import(&store, LOC, &bytes, &strict, Some(&wrong), "op").unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    let good = proof::sign(&private, &bytes).unwrap();
    let key = qa::import(&store, LOC, &bytes, &strict, Some(&good), "op").unwrap();
    let (s, _) = qa::signoff(&store, LOC, &strict).unwrap();
    let mine = |s: &qa::signoff::Signoff| {
        s.authentication
            .iter()
            .find(|a| a.reviewer.contains(&inv.reviewer.id))
            .cloned()
            .unwrap()
    };
    assert_eq!(mine(&s).method, Authentication::Signature);
    assert!(mine(&s).counted);

    // Edited in the store after the import: the signature no longer verifies.
    let mut edited: Value = serde_json::from_slice(&store.get_bytes(&key).unwrap()).unwrap();
    edited["reviews"][0]["comment"] = "changed".into();
    store
        .put(&key, serde_json::to_vec(&edited).unwrap())
        .unwrap();
    let (s, _) = qa::signoff(&store, LOC, &strict).unwrap();
    assert_eq!(mine(&s).method, Authentication::OperatorAttested);
    assert!(!mine(&s).counted);
}

/// Issue: the privacy spot-check as a review type. The packets hold the privacy gate's sample
/// (ids from its report, records from the shards); without the gates there is none and the
/// signoff refuses; marks are checked against the record; a marked record is a miss in the
/// signoff's figures and goes to the blocklist.
#[test]
fn the_privacy_spot_check_is_reviewed_marks_are_checked_and_misses_are_blocked() {
    // Without the gates: no spot-check packet, and the signoff says what to run.
    let (store, _) = built();
    let reg = registry(&registry_text());
    let config = counting_attested();
    let packets = qa::sample(&store, &reg, LOC, &config, MAX_LINE)
        .unwrap()
        .samples;
    assert!(packets.privacy_spot_check.is_none());
    let (s, _) = qa::signoff(&store, LOC, &config).unwrap();
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("privacy gate has not run") && r.contains("gatehouse gates")),
        "{:?}",
        s.reasons
    );
    let err = qa::reviewers::invite(
        &store,
        LOC,
        "priv",
        ReviewType::PrivacySpotCheck,
        None,
        14,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("gatehouse gates"), "{err}");

    // After the gates: the gate's ids, in its order, as privacy_spot_check packets.
    let (store, _) = gated();
    let packets = qa::sample(&store, &reg, LOC, &config, MAX_LINE)
        .unwrap()
        .samples;
    let report: Value = serde_json::from_str(&text(
        &store,
        &format!("{LOC}gates/pii_detection_report.json"),
    ))
    .unwrap();
    let ids: Vec<&str> = report["spot_check"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let spot: Vec<&qa::SampleItem> = packets
        .samples
        .iter()
        .filter(|s| s.review_types == [ReviewType::PrivacySpotCheck])
        .collect();
    assert!(!ids.is_empty());
    assert_eq!(
        spot.iter()
            .map(|s| s.record_id.as_str())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(
        packets.privacy_spot_check.as_ref().unwrap().size,
        ids.len() as u64
    );
    let template = text(&store, &format!("{LOC}qa/review_template.json"));
    assert!(template.contains("\"identifiers_left\": null"));

    // A mark outside the record is refused, naming the place, not text.
    let content_of = |s: &qa::SampleItem| {
        let record: Value = serde_json::from_str(s.record.get()).unwrap();
        record["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let first = *spot
        .iter()
        .find(|s| content_of(s).chars().count() >= 12)
        .unwrap();
    let content = content_of(first);
    let len = content.chars().count();
    let bad = spot_check_file(
        &store,
        &packets,
        "priv-bad",
        &[(
            first.sample_id.as_str(),
            serde_json::json!([{"message": 0, "start": 0, "end": len + 1, "type": "name"}]),
        )],
    );
    let err = import(&store, &bad).unwrap_err();
    assert!(
        err.to_string().contains("past the end of the message"),
        "{err}"
    );
    let mut scored = bad.clone();
    scored["reviews"][0]["identifiers_left"] = serde_json::json!([]);
    scored["reviews"][0]["scores"] = serde_json::json!({"demographic_bias": 9});
    assert!(
        import(&store, &scored)
            .unwrap_err()
            .to_string()
            .contains("no scores")
    );
    let mut unsaid = bad.clone();
    unsaid["reviews"][0]
        .as_object_mut()
        .unwrap()
        .remove("identifiers_left");
    assert!(
        import(&store, &unsaid)
            .unwrap_err()
            .to_string()
            .contains("give identifiers_left")
    );

    // One record with a name and a phone number left; the rest clean.
    let marked = spot_check_file(
        &store,
        &packets,
        "priv-f",
        &[(
            first.sample_id.as_str(),
            serde_json::json!([
                {"message": 0, "start": 0, "end": 4, "type": "name"},
                {"message": 0, "start": 5, "end": 11, "type": "phone"},
            ]),
        )],
    );
    import(&store, &marked).unwrap();
    let (s, _) = qa::signoff(&store, LOC, &config).unwrap();
    let p = &s.privacy_spot_check;
    assert!(p.complete);
    assert_eq!(p.records_reviewed, ids.len() as u64);
    assert_eq!(p.records_with_miss, 1);
    assert_eq!(p.marks_by_type.values().sum::<u64>(), 2);
    let n = ids.len() as f64;
    assert!((p.residual_identifier_rate.unwrap() - 1.0 / n).abs() < 1e-6);
    assert!(p.residual_identifier_rate_upper_95.unwrap() > 1.0 / n);
    assert_eq!(p.misses[0].record_id, first.record_id);
    assert_eq!(s.decision, "not_approved");
    assert!(
        s.reasons
            .iter()
            .any(|r| r.contains("identifier the redaction left"))
    );
    let blocklist: Value =
        serde_json::from_str(&text(&store, &format!("{LOC}qa/blocklist.json"))).unwrap();
    assert_eq!(
        blocklist["records"][0]["record_id"],
        first.record_id.as_str()
    );
    assert!(
        blocklist["records"][0]["flag"]
            .as_str()
            .unwrap()
            .contains("privacy spot-check")
    );
    // Never text: the signoff record holds places and types only.
    let record_text = serde_json::to_string(&s).unwrap();
    let piece: String = content.chars().take(11).collect();
    assert!(!record_text.contains(&piece));
}
