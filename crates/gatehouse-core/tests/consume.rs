//! Training consumption: the release opened by its prefix only, every shard verified, every
//! conversation rendered and tokenised, curriculum batches; and each bad input failing with
//! a message that names what is wrong and where.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gatehouse_core::build::BuildConfig;
use gatehouse_core::build::split::Split;
use gatehouse_core::consume::{self, ConsumeConfig, ConsumeError, OpenRelease};
use gatehouse_core::report::Verdict;
use gatehouse_core::store::Store;
use gatehouse_text::TokenizerSpec;
use serde_json::Value;

fn built() -> (Store, String) {
    let store = Store::memory();
    sample_into(&store);
    let out = build_with(&store, &registry(&registry_text()), &BuildConfig::default());
    (store, out.release_digest)
}

fn run(store: &Store, draft: bool) -> Result<consume::ConsumeOutcome, ConsumeError> {
    consume::run(
        store,
        LOC,
        &ConsumeConfig::default(),
        &TokenizerSpec::default(),
        draft,
    )
}

fn manifest(store: &Store) -> Value {
    serde_json::from_str(&text(store, &format!("{LOC}manifest.json"))).unwrap()
}

fn publish_marker(store: &Store, digest: &str) {
    store
        .put(
            &format!("{LOC}_PUBLISHED"),
            format!("{{\"release_digest\": \"{digest}\"}}"),
        )
        .unwrap();
}

#[test]
fn a_draft_loads_every_record_and_batches_by_curriculum() {
    let (store, digest) = built();
    let out = run(&store, true).unwrap();
    let r = &out.report;
    assert_eq!(r.verdict, Verdict::Warn, "{:?}", r.findings); // unbound draft: CON008
    assert_eq!(r.release_digest, digest);
    assert!(r.findings.iter().all(|f| f.code == "CON008"));
    let m = manifest(&store);
    for c in m["contents"].as_array().unwrap() {
        let split = r
            .splits
            .iter()
            .find(|s| s.split.as_str() == c["split"].as_str().unwrap())
            .unwrap();
        assert_eq!(split.records, c["records"].as_u64().unwrap());
        // Rendering adds the template's text, so more tokens than the bare messages.
        assert!(split.tokens > c["tokens"].as_u64().unwrap());
    }
    assert!(r.shards.iter().all(|s| s.verified));
    assert!(r.routing.consistent);
    // Batches: stage order, never spanning stages.
    let train = r.splits.iter().find(|s| s.split == Split::Train).unwrap();
    let staged: u64 = r.batches.stages.iter().map(|s| s.records).sum();
    assert_eq!(staged, train.records);
    let expected: u64 = r
        .batches
        .stages
        .iter()
        .map(|s| s.records.div_ceil(32))
        .sum();
    assert_eq!(r.batches.batches, expected);
    let orders: Vec<u32> = r.batches.stages.iter().map(|s| s.order).collect();
    assert!(orders.windows(2).all(|w| w[0] < w[1]));
    assert!(
        store
            .exists(&format!("{LOC}tests/training_consumption_test.json"))
            .unwrap()
    );
    // Deterministic.
    assert_eq!(
        run(&store, true).unwrap().report.batches.order_sha256,
        r.batches.order_sha256
    );
}

#[test]
fn the_api_iterates_verified_records_by_split_and_stage() {
    let (store, digest) = built();
    publish_marker(&store, &digest);
    let release = OpenRelease::open(&store, LOC, false).unwrap();
    assert_eq!(release.binding, consume::Binding::Published);
    let m = manifest(&store);
    let train: Vec<_> = release
        .records(Split::Train)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        train.len() as u64,
        m["contents"][0]["records"].as_u64().unwrap()
    );
    let stage1 = release
        .stage_records(Split::Train, "stage1_foundation")
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert!(!stage1.is_empty() && stage1.len() < train.len());
    assert!(
        stage1
            .iter()
            .all(|r| r.metadata.stage == "stage1_foundation")
    );
}

#[test]
fn an_unpublished_version_or_another_digest_is_refused() {
    let (store, digest) = built();
    let err = OpenRelease::open(&store, LOC, false).unwrap_err();
    assert!(matches!(err, ConsumeError::NotPublished { .. }), "{err}");
    assert!(err.to_string().contains("_PUBLISHED"), "{err}");
    publish_marker(&store, "sha256:0000");
    let err = OpenRelease::open(&store, LOC, false).unwrap_err();
    assert!(matches!(err, ConsumeError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&digest), "{err}");
    store.put(&format!("{LOC}_PUBLISHED"), "yes").unwrap();
    let err = OpenRelease::open(&store, LOC, false).unwrap_err();
    assert!(matches!(err, ConsumeError::BadMarker { .. }), "{err}");
}

#[test]
fn a_truncated_manifest_is_named_with_its_line() {
    let (store, _) = built();
    let key = format!("{LOC}manifest.json");
    let t = text(&store, &key);
    store.put(&key, t[..t.len() / 2].to_string()).unwrap();
    let err = OpenRelease::open(&store, LOC, true).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConsumeError::BadManifest { .. }), "{msg}");
    assert!(
        msg.contains("manifest.json") && msg.contains("line"),
        "{msg}"
    );
    assert!(err.hint().is_some());
}

#[test]
fn a_corrupted_or_missing_shard_fails_by_its_key() {
    let (store, _) = built();
    let m = manifest(&store);
    let shard = m["contents"][0]["shards"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut bytes = text(&store, &shard).into_bytes();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    store.put(&shard, bytes).unwrap();
    let r = run(&store, true).unwrap().report;
    assert_eq!(r.verdict, Verdict::Fail);
    let f = r.findings.iter().find(|f| f.code == "CON002").unwrap();
    assert!(
        f.message.contains(&shard) && f.message.contains("sha256"),
        "{}",
        f.message
    );
    // The API gives no record of a shard that fails verification.
    let release = OpenRelease::open(&store, LOC, true).unwrap();
    let first = release.records(Split::Train).next().unwrap();
    assert!(matches!(first, Err(ConsumeError::ShardMismatch { .. })));

    store.delete(&shard).unwrap();
    let r = run(&store, true).unwrap().report;
    let f = r.findings.iter().find(|f| f.code == "CON001").unwrap();
    assert!(f.message.contains(&shard), "{}", f.message);
}

#[test]
fn a_routing_config_naming_a_family_not_in_the_release_fails() {
    let (store, _) = built();
    let key = format!("{LOC}routing_config.json");
    let mut routing: Value = serde_json::from_str(&text(&store, &key)).unwrap();
    routing["families"][0]["family"] = "ghost_family".into();
    store
        .put(&key, serde_json::to_vec(&routing).unwrap())
        .unwrap();
    let r = run(&store, true).unwrap().report;
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(!r.routing.consistent);
    assert!(
        r.findings
            .iter()
            .any(|f| f.code == "CON005" && f.message.contains("ghost_family")),
        "{:?}",
        r.findings
    );
}

#[test]
fn a_line_breaking_the_contract_is_named_by_shard_and_line() {
    let (store, _) = built();
    let m = manifest(&store);
    let shard = &m["contents"][0]["shards"][0];
    let key = shard["key"].as_str().unwrap();
    // A record with an unknown role, its shard's sha256 updated so only the contract fails.
    let body = text(&store, key);
    let broken = body.replacen("\"role\":\"user\"", "\"role\":\"narrator\"", 1);
    store.put(key, broken.clone()).unwrap();
    let mkey = format!("{LOC}manifest.json");
    let mtext = text(&store, &mkey).replace(
        shard["sha256"].as_str().unwrap(),
        &gatehouse_core::digest::sha256(broken.as_bytes()),
    );
    store.put(&mkey, mtext).unwrap();
    let r = run(&store, true).unwrap().report;
    let f = r.findings.iter().find(|f| f.code == "CON004").unwrap();
    assert!(
        f.evidence[0].contains(&format!("{key}:")),
        "{:?}",
        f.evidence
    );
    assert!(
        f.evidence[0].contains("message 0: the role"),
        "{:?}",
        f.evidence
    );
    assert!(
        !f.evidence[0].contains("narrator"),
        "a value from the line is echoed"
    );
}

#[test]
fn parquet_twins_hold_the_same_records_and_are_verified() {
    use arrow_array::{Array, ListArray, StringArray, StructArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let (store, _) = built();
    let m = manifest(&store);
    let train = &m["contents"][0];
    let pq = train["parquet"][0]["key"].as_str().unwrap().to_string();
    let jsonl = records(&store, train["shards"][0]["key"].as_str().unwrap());
    let bytes = store.get_bytes(&pq).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let (mut ids, mut first_roles) = (Vec::new(), Vec::new());
    for batch in reader {
        let batch = batch.unwrap();
        let id = batch
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let msgs = batch
            .column_by_name("messages")
            .unwrap()
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        for i in 0..batch.num_rows() {
            ids.push(id.value(i).to_string());
            let v = msgs.value(i);
            let s = v.as_any().downcast_ref::<StructArray>().unwrap();
            let roles = s
                .column_by_name("role")
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            first_roles.push(roles.value(0).to_string());
        }
    }
    let want: Vec<String> = jsonl
        .iter()
        .map(|r| r["id"].as_str().unwrap().into())
        .collect();
    assert_eq!(ids, want);
    let roles: Vec<String> = jsonl
        .iter()
        .map(|r| r["messages"][0]["role"].as_str().unwrap().into())
        .collect();
    assert_eq!(first_roles, roles);

    let r = run(&store, true).unwrap().report;
    assert_eq!(r.parquet_files_verified, 3);
    store.put(&pq, b"not parquet".to_vec()).unwrap();
    let r = run(&store, true).unwrap().report;
    assert_eq!(r.verdict, Verdict::Fail);
    let f = r.findings.iter().find(|f| f.code == "CON010").unwrap();
    assert!(f.message.contains(&pq), "{}", f.message);
}
