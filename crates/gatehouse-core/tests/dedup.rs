//! Duplicate removal in the build: exact duplicates by normalised content, near duplicates
//! verified against their cluster's representative (never by chaining), the keep policy,
//! the removed list, and determinism.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gatehouse_core::build::BuildConfig;
use gatehouse_core::store::Store;
use serde_json::{Value, json};

/// 100 distinct words; `edits` replaces the words at those positions.
fn text(seed: &str, edits: &[usize]) -> String {
    (0..100)
        .map(|i| {
            if edits.contains(&i) {
                format!("{seed}edit{i}")
            } else {
                format!("{seed}{i}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn pair(prompt: &str, response: &str) -> String {
    format!("{}\n", json!({"prompt": prompt, "response": response}))
}

fn by_line(recs: &[Value], key: &str) -> Vec<u64> {
    let mut lines: Vec<u64> = recs
        .iter()
        .filter(|r| r["metadata"]["source_key"] == key)
        .map(|r| r["metadata"]["source_line"].as_u64().unwrap())
        .collect();
    lines.sort_unstable();
    lines
}

const PAIRS: &str = "sources/priority/pairs.jsonl";
const EDGE: &str = "sources/edge/crisis_sharegpt.json";

/// With 5-word shingles over 100 distinct words and a 3-word reply (99 shingles), each
/// replaced word changes 5 shingles: 2 edits give Jaccard 89/109 = 0.82, 4 edits
/// 79/119 = 0.66.
fn store() -> Store {
    let store = Store::memory();
    let a = text("a", &[]);
    let b = text("b", &[]);
    let lines = [
        // 1: A.
        pair(&a, "I hear you."),
        // 2: A again, in other case and spacing: an exact duplicate.
        pair(
            &format!("  {}\n", a.to_uppercase().replace(' ', "   ")),
            "i HEAR you.",
        ),
        // 3: A with two words changed: a near duplicate of A (0.82).
        pair(&text("a", &[20, 60]), "I hear you."),
        // 4: B.
        pair(&b, "Go on."),
        // 5: B with two words changed (0.82 to B).
        pair(&text("b", &[20, 60]), "Go on."),
        // 6: 5 with two more changed: 0.82 to 5 but 0.66 to B. Chaining would remove it.
        pair(&text("b", &[20, 60, 35, 80]), "Go on."),
        // 7: a different conversation on the same template as A (shares 40 words of 100).
        pair(
            &(0..100)
                .map(|i| {
                    if i % 5 < 2 {
                        format!("a{i}")
                    } else {
                        format!("c{i}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
            "I hear you.",
        ),
    ];
    store.put(PAIRS, lines.concat()).unwrap();
    // B, in the holdout family: its copy there is the one kept.
    let edge = json!([{"conversations": [
        {"from": "human", "value": b},
        {"from": "gpt", "value": "Go on."}
    ]}]);
    store.put(EDGE, edge.to_string()).unwrap();
    store
}

#[test]
fn exact_and_near_duplicates_are_removed_against_representatives_only() {
    let store = store();
    let reg = registry(&registry_text());
    let out = build_with(&store, &reg, &BuildConfig::default());
    let recs = records(&store, &format!("{LOC}compiled_export.jsonl"));
    // Kept: A (1), 6 (not chained), 7 (shares a template only), and B's edge copy.
    assert_eq!(by_line(&recs, PAIRS), vec![1, 6, 7]);
    assert_eq!(by_line(&recs, EDGE).len(), 1);
    let d = &out.report.dedup;
    assert_eq!((d.exact_removed, d.near_removed), (2, 2));
    assert_eq!(out.report.records_removed_as_duplicates, 4);

    let removed = records(&store, &format!("{LOC}dedup_removed.jsonl"));
    let summary: Vec<(u64, &str, &str, u64)> = removed
        .iter()
        .map(|r| {
            (
                r["source_line"].as_u64().unwrap(),
                r["kind"].as_str().unwrap(),
                r["kept_source_key"].as_str().unwrap(),
                r["kept_source_line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, "exact", PAIRS, 1),
            (3, "near", PAIRS, 1),
            // B in the training family loses to its holdout copy.
            (4, "exact", EDGE, 1),
            (5, "near", EDGE, 1),
        ]
    );
    let near = removed.iter().find(|r| r["source_line"] == 3).unwrap();
    assert!((near["jaccard"].as_f64().unwrap() - 89.0 / 109.0).abs() < 1e-6);

    // Representatives say so; the others are unique.
    let status = |key: &str, line: u64| {
        recs.iter()
            .find(|r| r["metadata"]["source_key"] == key && r["metadata"]["source_line"] == line)
            .map(|r| r["metadata"]["provenance"]["dedup_status"].clone())
            .unwrap()
    };
    assert_eq!(status(PAIRS, 1), "kept_representative");
    assert_eq!(status(EDGE, 1), "kept_representative");
    assert_eq!(status(PAIRS, 6), "unique");
    assert_eq!(status(PAIRS, 7), "unique");

    // The manifest records the method and its parameters.
    let manifest: Value =
        serde_json::from_str(&text_of(&store, &format!("{LOC}manifest.json"))).unwrap();
    assert_eq!(manifest["dedup"]["version"], "gatehouse-dedup-v1");
    assert_eq!(manifest["dedup"]["near_params"]["threshold"], 0.7);
    assert_eq!(manifest["dedup"]["keep_order"][0], "edge_cases");
}

#[test]
fn the_keep_policy_and_switches_are_configurable() {
    let store = store();
    let reg = registry(&registry_text());
    let mut config = BuildConfig::default();
    config.dedup.keep_priority = vec!["priority_datasets".into()];
    build_with(&store, &reg, &config);
    let recs = records(&store, &format!("{LOC}compiled_export.jsonl"));
    assert_eq!(by_line(&recs, PAIRS), vec![1, 4, 6, 7]);
    assert!(by_line(&recs, EDGE).is_empty());

    let mut config = BuildConfig::default();
    config.dedup.near = false;
    build_with(&store, &reg, &config);
    let recs = records(&store, &format!("{LOC}compiled_export.jsonl"));
    assert_eq!(by_line(&recs, PAIRS), vec![1, 3, 5, 6, 7]);

    let mut config = BuildConfig::default();
    config.dedup.exact = false;
    config.dedup.near = false;
    let out = build_with(&store, &reg, &config);
    assert_eq!(out.report.records_removed_as_duplicates, 0);
}

#[test]
fn deduplication_is_deterministic_across_thread_counts() {
    let digest = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let store = store();
            sample_into(&store);
            build_with(&store, &registry(&registry_text()), &BuildConfig::default()).release_digest
        })
    };
    assert_eq!(digest(1), digest(4));
}

fn text_of(store: &Store, key: &str) -> String {
    common::text(store, key)
}
