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
