//! The distribution gate over builds of the sample store: statistics that agree with the
//! export, expected ranges, regression against the last published release only, and the
//! same report whatever the thread count.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gatehouse_core::build::BuildConfig;
use gatehouse_core::gates::distribution::DistributionConfig;
use gatehouse_core::gates::{GatesConfig, GatesOutcome};
use gatehouse_core::report::Verdict;
use gatehouse_core::store::Store;
use serde_json::Value;

fn run_gates(store: &Store, config: &GatesConfig) -> GatesOutcome {
    let reg = registry(&registry_text());
    gates_with(store, &reg, config, &[], &Default::default()).unwrap()
}

fn built() -> Store {
    let store = Store::memory();
    sample_into(&store);
    build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    store
}

#[test]
fn statistics_agree_with_the_export_and_ranges_are_judged() {
    let store = built();
    let outcome = run_gates(&store, &sample_gates_config());
    let d = &outcome.distribution.detail;
    assert_eq!(
        outcome.distribution.verdict,
        Verdict::Pass,
        "{:?}",
        outcome.distribution.findings
    );
    assert!(d.baseline.is_none());
    assert!(
        outcome
            .distribution
            .findings
            .iter()
            .any(|f| f.code == "DIST005"),
        "the first release says it has no baseline"
    );
    assert!(
        outcome
            .distribution
            .findings
            .iter()
            .any(|f| f.code == "DIST006" && f.subject == "priority_datasets"),
        "a family without ranges is stated"
    );

    // Counted afresh, the tokens agree with what the build wrote into every record.
    let recs = records(&store, &format!("{LOC}compiled_export.jsonl"));
    for family in ["professional_therapeutic", "edge_cases", "voice_persona"] {
        let mine: Vec<f64> = recs
            .iter()
            .filter(|r| r["metadata"]["source_family"] == family)
            .map(|r| r["metadata"]["tokens"].as_f64().unwrap())
            .collect();
        let g = d
            .groups
            .iter()
            .find(|g| g.family == family && g.split == "all")
            .unwrap();
        assert_eq!(g.records, mine.len() as u64);
        let mean = mine.iter().sum::<f64>() / mine.len() as f64;
        assert!(
            (g.tokens.mean - mean).abs() < 1e-3,
            "{family}: {} vs {mean}",
            g.tokens.mean
        );
        assert_eq!(
            g.tokens.max as f64,
            mine.iter().copied().fold(0.0, f64::max)
        );
        assert_eq!(g.tokens.histogram.counts.iter().sum::<u64>(), g.records);
        let shares: f64 = g.roles.values().map(|r| r.share).sum();
        assert!((shares - 1.0).abs() < 1e-3);
    }
    // Every family × split present in the export has a group.
    let splits: std::collections::BTreeSet<(String, String)> = recs
        .iter()
        .map(|r| {
            (
                r["metadata"]["source_family"].as_str().unwrap().to_string(),
                r["metadata"]["split"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let groups: std::collections::BTreeSet<(String, String)> = d
        .groups
        .iter()
        .filter(|g| g.split != "all")
        .map(|g| (g.family.clone(), g.split.clone()))
        .collect();
    assert_eq!(splits, groups);
    assert!(!d.stages.is_empty());

    // A mean less than 20% above its lower bound warns.
    let edge_mean = d
        .groups
        .iter()
        .find(|g| g.family == "edge_cases" && g.split == "all")
        .unwrap()
        .tokens
        .mean;
    let mut near = sample_gates_config();
    near.distribution.ranges.insert(
        "edge_cases".into(),
        gatehouse_core::gates::distribution::FamilyRanges {
            tokens_mean: Some([edge_mean * 0.9, edge_mean * 10.0]),
            ..Default::default()
        },
    );
    let outcome = run_gates(&store, &near);
    assert_eq!(outcome.distribution.verdict, Verdict::Warn);
    assert!(
        outcome
            .distribution
            .findings
            .iter()
            .any(|f| f.code == "DIST002"
                && f.subject == "edge_cases"
                && f.severity == gatehouse_core::report::Severity::Warning)
    );

    // With the prototype's defaults, the sample's voice transcripts (up to 8 turns) are
    // outside the expected 1–5 turns on average: blocking, named by family.
    let outcome = run_gates(&store, &GatesConfig::default());
    assert_eq!(outcome.distribution.verdict, Verdict::Fail);
    assert!(
        outcome
            .distribution
            .findings
            .iter()
            .any(|f| f.code == "DIST001"
                && f.subject == "voice_persona"
                && f.message.contains("turns_mean"))
    );
}

/// Publishes the current draft's reports as version `v2026-11-01` (a baseline), with the
/// distribution report changed by `edit`.
fn publish_baseline(store: &Store, edit: impl Fn(&mut Value)) {
    let base = "exports/releases/v2026-11-01/";
    let mut report: Value = serde_json::from_str(&text(
        store,
        &format!("{LOC}gates/distribution_report.json"),
    ))
    .unwrap();
    edit(&mut report);
    store
        .put(
            &format!("{base}gates/distribution_report.json"),
            serde_json::to_vec(&report).unwrap(),
        )
        .unwrap();
    store
        .put(&format!("{base}_PUBLISHED"), "published")
        .unwrap();
}

#[test]
fn regression_is_judged_against_the_last_published_release_only() {
    let store = built();
    let config = sample_gates_config();
    run_gates(&store, &config);

    // A draft (no marker) is never a baseline.
    store
        .put(
            "exports/releases/v2026-11-02/gates/distribution_report.json",
            "{}",
        )
        .unwrap();
    let outcome = run_gates(&store, &config);
    assert!(outcome.distribution.detail.baseline.is_none());

    // The same distribution, published: compared, no regression.
    publish_baseline(&store, |_| {});
    let outcome = run_gates(&store, &config);
    let d = &outcome.distribution.detail;
    assert_eq!(d.baseline.as_ref().unwrap().release_version, "v2026-11-01");
    assert!(!d.regression_checks.is_empty());
    assert!(d.regression_checks.iter().all(|c| !c.regressed));
    assert_ne!(outcome.distribution.verdict, Verdict::Fail);

    // Token means half of today's: every group regressed; the shape moved too.
    publish_baseline(&store, |r| {
        for g in r["groups"].as_array_mut().unwrap() {
            let m = g["tokens"]["mean"].as_f64().unwrap();
            g["tokens"]["mean"] = (m / 2.0).into();
            let counts = g["tokens"]["histogram"]["counts"].as_array_mut().unwrap();
            counts.rotate_left(1);
        }
    });
    let outcome = run_gates(&store, &config);
    assert_eq!(outcome.distribution.verdict, Verdict::Fail);
    let codes: Vec<&str> = outcome
        .distribution
        .findings
        .iter()
        .map(|f| f.code)
        .collect();
    assert!(
        codes.contains(&"DIST003") && codes.contains(&"DIST004"),
        "{codes:?}"
    );

    // A published release without a readable report fails closed.
    store
        .put(
            "exports/releases/v2026-11-01/gates/distribution_report.json",
            "not json",
        )
        .unwrap();
    let outcome = run_gates(&store, &config);
    assert!(
        outcome
            .distribution
            .findings
            .iter()
            .any(|f| f.code == "DIST007")
    );
}

#[test]
fn the_report_does_not_depend_on_thread_count() {
    let store = built();
    let detail = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            run_gates(&store, &sample_gates_config())
                .distribution
                .detail
        })
    };
    assert_eq!(detail(1), detail(3));
}

#[test]
fn bad_ranges_are_a_configuration_error() {
    let store = built();
    let config = GatesConfig {
        distribution: DistributionConfig {
            warning_margin: 0.7,
            ..DistributionConfig::default()
        },
        ..GatesConfig::default()
    };
    let err = gates_with(
        &store,
        &registry(&registry_text()),
        &config,
        &[],
        &Default::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("warning_margin"), "{err}");
}
