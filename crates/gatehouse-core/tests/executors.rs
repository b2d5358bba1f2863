//! Two executors, one release: the store-backed executor (`build::fragments`: objects
//! mapped one at a time, in any order, into fragments in the store; the LSH buckets judged
//! in the partitions of a shuffle by band key before the clustering) writes the same bytes
//! as the rayon executor (`build::run`: objects mapped in parallel into local spills; pairs
//! judged when the clustering asks).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use gatehouse_core::build::dedup::Verdicts;
use gatehouse_core::build::dedup::shuffle::{BandRow, JudgedPartition, ShuffleVerdicts};
use gatehouse_core::build::{self, BuildConfig, BuildContext, Prepared};
use gatehouse_core::store::Store;
use serde_json::json;

/// The sample store, plus an object of exact duplicates, near duplicates and a chain of
/// near duplicates (so the clustering has representatives, members and pairs it never
/// asks for).
fn store() -> Store {
    let store = Store::memory();
    sample_into(&store);
    let text = |seed: &str, edits: &[usize]| {
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
    };
    let pair = |p: String, r: &str| format!("{}\n", json!({"prompt": p, "response": r}));
    let mut lines = String::new();
    for seed in ["a", "b", "c"] {
        lines += &pair(text(seed, &[]), "I hear you.");
        lines += &pair(text(seed, &[]).to_uppercase(), "i hear you.");
        lines += &pair(text(seed, &[20, 60]), "I hear you.");
        lines += &pair(text(seed, &[20, 60, 35, 80]), "I hear you.");
        lines += &pair(text(seed, &[20, 60, 35, 80, 10, 90]), "I hear you.");
    }
    // Appended to a sample object its dataset claims.
    let key = "sources/priority/pairs.jsonl";
    let mut bytes = store.get_bytes(key).unwrap().to_vec();
    bytes.extend_from_slice(lines.as_bytes());
    store.put(key, bytes).unwrap();
    store
}

fn ctx() -> BuildContext<'static> {
    BuildContext {
        release_version: "v2026-11-25",
        location: LOC,
        release_date: Some("2026-11-25".into()),
        config_digest: "sha256:test".into(),
        artefacts: Vec::new(),
        detector: detector(),
    }
}

/// The store, registry, default build settings and context every test here starts from.
fn setup() -> (
    Store,
    gatehouse_core::registry::Registry,
    BuildConfig,
    BuildContext<'static>,
) {
    (
        store(),
        registry(&registry_text()),
        BuildConfig::default(),
        ctx(),
    )
}

/// The release digest of the rayon executor's build (what `gatehouse build` runs).
fn rayon_digest(
    store: &Store,
    reg: &gatehouse_core::registry::Registry,
    config: &BuildConfig,
    ctx: &BuildContext<'_>,
) -> String {
    build::run(store, reg, config, ctx, &mut |_| {})
        .unwrap()
        .release_digest
}

/// Every object under `prefix`, with its bytes.
fn files(store: &Store, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    store
        .list(prefix)
        .map(|o| {
            let key = o.unwrap().key;
            let bytes = store.get_bytes(&key).unwrap().to_vec();
            (key, bytes)
        })
        .collect()
}

/// The band rows of every object, grouped into `parts` partitions by band key and each
/// judged by a worker of its own, in reverse order: what a shuffle by band key gives.
fn judged_in_partitions(prepared: &Prepared<'_>, parts: u32) -> Vec<JudgedPartition> {
    let all: Vec<usize> = (0..prepared.keys().len()).collect();
    let mut by_part: BTreeMap<u32, Vec<BandRow>> = BTreeMap::new();
    for (part, row) in prepared.band_rows(&all, parts).unwrap() {
        by_part.entry(part).or_default().push(row);
    }
    by_part
        .iter()
        .rev()
        .map(|(&part, rows)| {
            let mut worker = prepared.judge_state().unwrap();
            prepared.judge(&mut worker, (part, parts), rows).unwrap()
        })
        .collect()
}

#[test]
fn mapped_in_any_order_through_the_store_the_release_is_byte_identical() {
    let store = store();
    let reg = registry(&registry_text());
    let ctx = ctx();
    // The default settings, and buckets of more than 3 left out (so pairs the partitions
    // did not judge are judged on the finishing process).
    let mut small_buckets = BuildConfig::default();
    small_buckets.dedup.max_bucket = 3;

    for config in [BuildConfig::default(), small_buckets] {
        let rayon = build::run(&store, &reg, &config, &ctx, &mut |_| {}).unwrap();
        let want = files(&store, "exports/");
        let d = &rayon.manifest.dedup;
        assert!(d.exact_removed >= 3 && d.near_removed >= 3, "{d:?}");
        assert!(
            d.candidates_verified > 0 && d.candidates_below_estimate > 0,
            "{d:?}"
        );

        for (order, parts) in [("reverse", 1), ("interleaved", 4)] {
            let prepared = Prepared::new(&store, &reg, &config, &ctx).unwrap();
            let n = prepared.keys().len();
            let indices: Vec<usize> = match order {
                "reverse" => (0..n).rev().collect(),
                _ => (0..n).step_by(2).chain((1..n).step_by(2)).collect(),
            };
            let mut fragments = Vec::new();
            for i in indices {
                fragments.push(prepared.map_fragment(i).unwrap());
            }
            // Every fragment is in the store until the build completes.
            assert_eq!(files(&store, &prepared.work_location()).len(), 3 * n);
            let work = prepared.work_location();
            let judged = judged_in_partitions(&prepared, parts);
            let verdicts = Verdicts::Shuffled(ShuffleVerdicts::new(judged).unwrap());
            let out = prepared.finish_from_fragments(fragments, verdicts).unwrap();
            let what = format!(
                "{order}, {parts} partitions, max_bucket {}",
                config.dedup.max_bucket
            );
            assert_eq!(out.release_digest, rayon.release_digest, "{what}");
            assert_eq!(files(&store, "exports/"), want, "{what}: the draft differs");
            assert!(files(&store, &work).is_empty(), "fragments left behind");
        }
    }
}

#[test]
fn a_partition_of_band_rows_that_is_missing_fails_the_finish() {
    let (store, reg, config, ctx) = setup();
    let prepared = Prepared::new(&store, &reg, &config, &ctx).unwrap();
    let fragments: Vec<_> = (0..prepared.keys().len())
        .map(|i| prepared.map_fragment(i).unwrap())
        .collect();
    let mut judged = judged_in_partitions(&prepared, 3);
    judged.pop();
    let verdicts = Verdicts::Shuffled(ShuffleVerdicts::new(judged).unwrap());
    let err = prepared
        .finish_from_fragments(fragments, verdicts)
        .unwrap_err();
    assert!(err.to_string().contains("a partition is missing"), "{err}");
    assert!(!store.exists(&format!("{LOC}manifest.json")).unwrap());
}

#[test]
fn a_missing_or_repeated_fragment_fails_before_anything_is_written() {
    let store = store();
    let reg = registry(&registry_text());
    let config = BuildConfig::default();
    let ctx = ctx();
    let prepared = Prepared::new(&store, &reg, &config, &ctx).unwrap();
    let fragments = vec![
        prepared.map_fragment(0).unwrap(),
        prepared.map_fragment(0).unwrap(),
    ];
    let err = prepared
        .finish_from_fragments(fragments, Verdicts::OnDemand)
        .unwrap_err();
    assert!(
        err.to_string().contains("each object must be mapped once"),
        "{err}"
    );
    assert!(!store.exists(&format!("{LOC}manifest.json")).unwrap());
}

#[test]
fn a_driver_that_died_resumes_from_the_fragments_in_the_store() {
    let (store, reg, config, ctx) = setup();
    let want = rayon_digest(&store, &reg, &config, &ctx);

    // The first driver maps half the objects, then dies.
    let first = Prepared::new(&store, &reg, &config, &ctx).unwrap();
    let n = first.keys().len();
    for i in (0..n).step_by(2) {
        first.map_fragment(i).unwrap();
    }
    drop(first);

    // A worker of the second run plans the same build without writing anything.
    let worker = Prepared::open(&store, &reg, &config, &ctx).unwrap();
    let mut reused = 0;
    for i in 0..n {
        let (_, was_there) = worker.map_or_resume(i).unwrap();
        reused += usize::from(was_there);
    }
    assert_eq!(
        reused,
        n.div_ceil(2),
        "the first run's fragments are reused"
    );
    let out = Prepared::new(&store, &reg, &config, &ctx)
        .unwrap()
        .finish_from_store(Verdicts::OnDemand)
        .unwrap();
    assert_eq!(out.release_digest, want);
}

#[test]
fn a_fragment_made_for_other_settings_or_another_object_is_not_reused() {
    let store = store();
    let reg = registry(&registry_text());
    let ctx = ctx();
    let config = BuildConfig::default();
    let prepared = Prepared::new(&store, &reg, &config, &ctx).unwrap();
    prepared.map_fragment(0).unwrap();
    assert!(prepared.load_fragment(0).unwrap().is_some());

    let other = BuildConfig {
        seed: config.seed + 1,
        ..BuildConfig::default()
    };
    let reseeded = Prepared::open(&store, &reg, &other, &ctx).unwrap();
    assert!(
        reseeded.load_fragment(0).unwrap().is_none(),
        "other settings"
    );

    // The source object changes after its fragment was made.
    let key = prepared.keys().next().unwrap().to_string();
    let mut bytes = store.get_bytes(&key).unwrap().to_vec();
    bytes.extend_from_slice(b"\n");
    store.put(&key, bytes).unwrap();
    let changed = Prepared::open(&store, &reg, &config, &ctx).unwrap();
    assert!(
        changed.load_fragment(0).unwrap().is_none(),
        "the object changed"
    );
    let err = changed.finish_from_store(Verdicts::OnDemand).unwrap_err();
    assert!(
        err.to_string()
            .contains("no map fragment made for this build"),
        "{err}"
    );
}

#[test]
fn a_fragment_whose_lines_or_sets_are_gone_or_rewritten_is_mapped_again() {
    let (store, reg, config, ctx) = setup();
    let want = rayon_digest(&store, &reg, &config, &ctx);
    let prepared = Prepared::new(&store, &reg, &config, &ctx).unwrap();
    let n = prepared.keys().len();
    assert!(n >= 2, "two objects at least");
    for i in 0..n {
        prepared.map_fragment(i).unwrap();
    }
    let work = prepared.work_location();
    let data = |i: usize, ext: &str| {
        files(&store, &work)
            .into_keys()
            .find(|k| k.ends_with(&format!("{i:08}.{ext}")))
            .unwrap_or_else(|| panic!("no .{ext} of fragment {i}"))
    };
    // A finish that died after removing object 0's lines (its record still there), and a
    // run for other settings that rewrote object 1's sets, then died before its record.
    store.delete(&data(0, "lines")).unwrap();
    let sets = data(1, "shingles");
    let mut bytes = store.get_bytes(&sets).unwrap().to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    store.put(&sets, bytes).unwrap();

    let worker = Prepared::open(&store, &reg, &config, &ctx).unwrap();
    assert!(worker.load_fragment(0).unwrap().is_none(), "lines gone");
    assert!(worker.load_fragment(1).unwrap().is_none(), "sets rewritten");
    let reused: usize = (0..n)
        .map(|i| usize::from(worker.map_or_resume(i).unwrap().1))
        .sum();
    assert_eq!(reused, n - 2);
    let out = worker.finish_from_store(Verdicts::OnDemand).unwrap();
    assert_eq!(out.release_digest, want);
}
