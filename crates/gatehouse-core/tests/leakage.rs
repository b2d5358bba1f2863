//! The dedup and leakage gates: a clean release passes; duplicates left in an export (a
//! build with dedup switched off) fail them, by locator; and a brute-force checker (every
//! pair, exact keys and exact Jaccard) verifies the leakage certificate's counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use gatehouse_core::build::BuildConfig;
use gatehouse_core::build::dedup::DedupConfig;
use gatehouse_core::gates::duplicates::LeakPolicy;
use gatehouse_core::gates::{GatesConfig, GatesOutcome};
use gatehouse_core::report::Verdict;
use gatehouse_core::store::Store;
use gatehouse_text::dedup::{Shingler, exact_key, jaccard};
use serde_json::{Value, json};

fn run_gates(store: &Store, config: &GatesConfig, dedup: &DedupConfig) -> GatesOutcome {
    gates_with(store, &registry(&registry_text()), config, &[], dedup).unwrap()
}

fn words(seed: usize, edits: &[usize]) -> String {
    (0..80)
        .map(|i| {
            if edits.contains(&i) {
                format!("x{seed}e{i}")
            } else {
                format!("x{seed}w{i}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sample store plus 40 conversations, each with an exact copy (in other case) and a
/// near copy (two words changed), under distinct groups so that copies land in different
/// splits; and the edge-case scenarios (a holdout family) copied into a training family.
fn store_with_duplicates() -> Store {
    let store = Store::memory();
    sample_into(&store);
    let mut lines = String::new();
    for seed in 0..40 {
        let base = words(seed, &[]);
        for prompt in [base.clone(), base.to_uppercase(), words(seed, &[10, 50])] {
            lines.push_str(&format!(
                "{}\n",
                json!({"prompt": prompt, "response": "Go on."})
            ));
        }
    }
    // The edge-case scenarios of the sample, as training pairs.
    let edge: Value =
        serde_json::from_str(&text(&store, "sources/edge/crisis_sharegpt.json")).unwrap();
    for scenario in edge.as_array().unwrap() {
        let turns = &scenario["conversations"];
        lines.push_str(&format!(
            "{}\n",
            json!({"prompt": turns[0]["value"], "response": turns[1]["value"]})
        ));
    }
    store.put("sources/priority/pairs.jsonl", lines).unwrap();
    store
}

fn no_dedup() -> BuildConfig {
    let mut config = BuildConfig::default();
    config.dedup.exact = false;
    config.dedup.near = false;
    config
}

/// Every pair of exported records, compared in full: the cross-split pair counts a
/// certificate must report.
fn brute_force(store: &Store, dedup: &DedupConfig) -> BTreeMap<String, (u64, u64)> {
    let shingler = Shingler::with_boilerplate(&dedup.near_params, &dedup.boilerplate);
    let recs = records(store, &format!("{LOC}compiled_export.jsonl"));
    let facts: Vec<(String, u128, Vec<u32>)> = recs
        .iter()
        .map(|r| {
            let messages: Vec<(&str, &str)> = r["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
                .collect();
            let mut set = Vec::new();
            shingler.shingles(
                messages
                    .iter()
                    .filter(|(role, _)| *role != "system")
                    .map(|(_, c)| *c),
                &mut set,
            );
            (
                r["metadata"]["split"].as_str().unwrap().to_string(),
                exact_key(messages.iter().copied()),
                set,
            )
        })
        .collect();
    let order = ["train", "val", "test"];
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (i, a) in facts.iter().enumerate() {
        for b in &facts[i + 1..] {
            if a.0 == b.0 {
                continue;
            }
            let (x, y) =
                if order.iter().position(|s| *s == a.0) < order.iter().position(|s| *s == b.0) {
                    (&a.0, &b.0)
                } else {
                    (&b.0, &a.0)
                };
            let c = counts.entry(format!("{x}-{y}")).or_default();
            if a.1 == b.1 {
                c.0 += 1;
            } else if !a.2.is_empty()
                && !b.2.is_empty()
                && jaccard(&a.2, &b.2) >= dedup.near_params.threshold
            {
                c.1 += 1;
            }
        }
    }
    counts
}

fn certified(outcome: &GatesOutcome) -> BTreeMap<String, (u64, u64)> {
    outcome
        .leakage
        .detail
        .certificate
        .pairs
        .iter()
        .filter(|p| p.exact + p.near > 0)
        .map(|p| (p.splits.clone(), (p.exact, p.near)))
        .collect()
}

#[test]
fn a_deduplicated_release_passes_and_the_certificate_agrees_with_brute_force() {
    let store = store_with_duplicates();
    build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    let dedup = DedupConfig::default();
    let outcome = run_gates(&store, &GatesConfig::default(), &dedup);
    assert_eq!(
        outcome.dedup.verdict,
        Verdict::Pass,
        "{:?}",
        outcome.dedup.findings
    );
    assert_eq!(outcome.leakage.verdict, Verdict::Pass);
    let cert = &outcome.leakage.detail.certificate;
    assert!(cert.complete);
    assert_eq!(
        cert.records,
        records(&store, &format!("{LOC}compiled_export.jsonl")).len() as u64
    );
    let brute = brute_force(&store, &dedup);
    assert!(brute.values().all(|c| *c == (0, 0)), "{brute:?}");
    assert!(certified(&outcome).is_empty());
}

#[test]
fn duplicates_left_in_an_export_fail_both_gates_by_locator() {
    let store = store_with_duplicates();
    build_with(&store, &registry(&registry_text()), &no_dedup());
    let dedup = DedupConfig::default();
    let outcome = run_gates(&store, &GatesConfig::default(), &dedup);

    // Dedup: 40 exact copies left, plus the scenarios whose first exchange is all of them
    // (a blocking finding each); near copies warn.
    assert_eq!(outcome.dedup.verdict, Verdict::Fail);
    assert!((41..=64).contains(&outcome.dedup.counts["DUP001"].found));
    assert!(outcome.dedup.counts["DUP002"].found >= 40);
    let dup = &outcome.dedup.locators["DUP001"][0];
    assert!(dup.at.starts_with(LOC) && dup.id.is_some() && dup.source.is_some());
    assert!(
        dup.detail
            .as_deref()
            .unwrap()
            .starts_with("same content as ")
    );

    // Leakage: the certificate's counts are exactly the brute-force ones.
    let brute: BTreeMap<String, (u64, u64)> = brute_force(&store, &dedup)
        .into_iter()
        .filter(|(_, c)| c.0 + c.1 > 0)
        .collect();
    assert!(!brute.is_empty(), "some copies landed in other splits");
    assert_eq!(certified(&outcome), brute);
    assert_eq!(outcome.leakage.verdict, Verdict::Fail);
    // Edge-case scenarios copied into training leak into a holdout family.
    assert!(outcome.leakage.counts["LEAK001"].found >= 1);
    let leak = &outcome.leakage.locators["LEAK001"][0];
    assert!(leak.detail.as_deref().unwrap().contains("pair ("));

    // No text: the reports hold ids and locators only.
    let reports = [
        "gates/deduplication_report.json",
        "gates/cross_split_leakage_report.json",
    ]
    .map(|f| text(&store, &format!("{LOC}{f}")))
    .join("\n");
    assert!(
        !reports.contains("x3w10"),
        "conversation text reached a report"
    );
}

#[test]
fn the_leakage_policy_and_candidate_limit_are_configurable() {
    let store = store_with_duplicates();
    build_with(&store, &registry(&registry_text()), &no_dedup());
    let dedup = DedupConfig::default();

    let mut config = GatesConfig::default();
    config.leakage.non_holdout = LeakPolicy::Warn;
    let outcome = run_gates(&store, &config, &dedup);
    let leak = outcome
        .leakage
        .findings
        .iter()
        .find(|f| f.code == "LEAK002")
        .unwrap();
    assert_eq!(leak.severity, gatehouse_core::report::Severity::Warning);
    // Holdout leaks still block.
    assert_eq!(outcome.leakage.verdict, Verdict::Fail);

    let mut config = GatesConfig::default();
    config.leakage.max_candidates = 10;
    let outcome = run_gates(&store, &config, &dedup);
    assert_eq!(outcome.leakage.counts["LEAK003"].found, 1);
    assert!(!outcome.leakage.detail.certificate.complete);
    assert_eq!(outcome.leakage.verdict, Verdict::Fail);
}
