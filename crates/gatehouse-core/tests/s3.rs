//! Storage, coverage and doctor against a real S3 server over HTTP.
//!
//! By default the server is an in-process s3s-fs; `.ci/run` runs this same module again with
//! `GATEHOUSE_TEST_S3_ENDPOINT` pointing at a moto server. Each test uses its own bucket.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use gatehouse_core::config::{self, CoverageConfig};
use gatehouse_core::coverage::{self, CoverageReport};
use gatehouse_core::doctor::{self, CreateOnly};
use gatehouse_core::registry::Registry;
use gatehouse_core::store::{Backend, Line, LineReader, Store, StoreConfig, StoreError};
use gatehouse_test::TestS3;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Resolves an S3 store the way the CLI does: from environment variables.
fn s3_store(server: &TestS3, bucket: &str, extra: &[(&str, &str)]) -> Result<Store, String> {
    let mut env: BTreeMap<String, String> = server.env(bucket).into_iter().collect();
    for (k, v) in extra {
        env.insert((*k).to_string(), (*v).to_string());
    }
    let store = config::store_from_env(&env).map_err(|e| e.to_string())?;
    Store::open(&store).map_err(|e| e.to_string())
}

fn server() -> TestS3 {
    TestS3::start().expect("start S3 test server")
}

fn upload_sample_store(store: &Store) {
    gatehouse_test::for_each_file(
        &repo_root().join("examples/sample-store"),
        &mut |key, bytes| {
            if !key.starts_with("exports/") {
                store.put(key, bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(())
        },
    )
    .expect("upload sample store");
}

fn sample_registry() -> Registry {
    Registry::load(&repo_root().join("examples/registry.toml")).expect("sample registry")
}

fn coverage_of(store: &Store) -> CoverageReport {
    coverage::run(
        store,
        &sample_registry(),
        &CoverageConfig::default(),
        &[],
        "2026-11-25".parse().unwrap(),
        &mut |_| {},
    )
    .expect("coverage")
}

#[test]
fn put_get_list_head_and_delete_round_trip() {
    let s3 = server();
    let bucket = s3.create_bucket("roundtrip").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    store.put("a/one.jsonl", "{}\n").unwrap();
    store.put("a/two.jsonl", "{}\n{}\n").unwrap();
    store.put("b/three.txt", "x").unwrap();
    let mut keys: Vec<_> = store.list("a/").map(|o| o.unwrap().key).collect();
    keys.sort();
    assert_eq!(keys, ["a/one.jsonl", "a/two.jsonl"]);
    assert_eq!(store.head("a/two.jsonl").unwrap().size, 6);
    assert_eq!(store.get_bytes("b/three.txt").unwrap(), "x");
    store.delete("b/three.txt").unwrap();
    assert!(!store.exists("b/three.txt").unwrap());
    assert!(matches!(
        store.open_read("b/three.txt").unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

#[test]
fn listing_is_paginated_past_one_thousand_keys() {
    let s3 = server();
    let bucket = s3.create_bucket("pages").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    for i in 0..1105 {
        store.put(&format!("many/{i:05}"), "").unwrap();
    }
    assert_eq!(store.list("many/").count(), 1105);
}

#[test]
fn create_only_put_is_refused_the_second_time() {
    let s3 = server();
    let bucket = s3.create_bucket("create-only").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    store
        .put_create("exports/releases/v1/_PUBLISHED", "first")
        .unwrap();
    let err = store
        .put_create("exports/releases/v1/_PUBLISHED", "second")
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(
        store.get_bytes("exports/releases/v1/_PUBLISHED").unwrap(),
        "first"
    );
}

#[test]
fn large_writes_go_multipart_and_stream_back_line_by_line() {
    let s3 = server();
    let bucket = s3.create_bucket("multipart").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    // 5 MiB buffer: a 12 MB object needs three parts.
    let mut w = store.writer("big/object.jsonl", 5 * 1024 * 1024);
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(990));
    let lines = 12_000;
    for _ in 0..lines {
        w.write_all(line.as_bytes()).unwrap();
    }
    let written = w.finish().unwrap();
    assert_eq!(written, (line.len() * lines) as u64);
    assert_eq!(store.head("big/object.jsonl").unwrap().size, written);
    if let Some(dir) = s3.bucket_dir(&bucket) {
        // s3s-fs keeps a completed multipart object as one plain file.
        assert_eq!(
            std::fs::metadata(dir.join("big/object.jsonl"))
                .unwrap()
                .len(),
            written
        );
    }

    let reader = store.open_read("big/object.jsonl").unwrap();
    let mut lines_read = 0u64;
    let mut r = LineReader::new(BufReader::with_capacity(64 * 1024, reader), 4096);
    while let Some(l) = r.next_line().unwrap() {
        match l {
            Line::Text { bytes, .. } => assert_eq!(bytes.len(), line.len() - 1),
            Line::Oversized { number, .. } => panic!("line {number} oversized"),
        }
        lines_read += 1;
    }
    assert_eq!(lines_read, lines as u64);
    assert_eq!(r.bytes_read(), written);
}

#[test]
fn an_abandoned_writer_leaves_no_object() {
    let s3 = server();
    let bucket = s3.create_bucket("abandon").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    {
        let mut w = store.writer("half/object", 5 * 1024 * 1024);
        w.write_all(&vec![b'x'; 6 * 1024 * 1024]).unwrap();
    }
    assert!(!store.exists("half/object").unwrap());
}

#[test]
fn reader_streams_a_whole_object_in_chunks() {
    let s3 = server();
    let bucket = s3.create_bucket("stream").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    store.put("bin/object", data.clone()).unwrap();
    let mut r = store.open_read("bin/object").unwrap();
    assert_eq!(r.size(), data.len() as u64);
    let mut buf = [0u8; 7919];
    let mut back = Vec::new();
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert!(back == data);
}

#[test]
fn coverage_is_the_same_from_local_disk_and_from_s3() {
    // A clean copy: a quick-start run may have left exports/ in the checked-out sample store.
    let dir = tempfile::tempdir().unwrap();
    let local = Store::open(&StoreConfig {
        backend: Backend::Local {
            root: dir.path().to_path_buf(),
        },
        exports_prefix: "exports".into(),
    })
    .unwrap();
    upload_sample_store(&local);
    let s3 = server();
    let bucket = s3.create_bucket("coverage").unwrap();
    let remote = s3_store(&s3, &bucket, &[]).unwrap();
    upload_sample_store(&remote);

    let mut from_disk = serde_json::to_value(coverage_of(&local)).unwrap();
    let mut from_s3 = serde_json::to_value(coverage_of(&remote)).unwrap();
    // Only the description of where the store is may differ.
    assert_eq!(from_disk["store"]["backend"], "local");
    assert_eq!(from_s3["store"]["backend"], "s3");
    from_disk["store"] = serde_json::Value::Null;
    from_s3["store"] = serde_json::Value::Null;
    assert_eq!(from_disk, from_s3);
    assert_eq!(
        from_s3["verdict"], "warn",
        "one unmapped object in the sample"
    );
    assert_eq!(from_s3["totals"]["objects"], 13);
}

#[test]
fn doctor_finds_create_only_enforced_and_cleans_up() {
    let s3 = server();
    let bucket = s3.create_bucket("doctor").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    store.put("sources/a.jsonl", "{}\n").unwrap();
    let report = doctor::run(&store, vec![]);
    assert_eq!(report.create_only, CreateOnly::Enforced, "{report:#?}");
    assert!(report.publish_safe && !report.store_unusable());
    let keys: Vec<_> = store.list("").map(|o| o.unwrap().key).collect();
    assert_eq!(keys, ["sources/a.jsonl"], "the canary is deleted");
}

#[test]
fn wrong_credentials_are_access_denied_with_a_hint() {
    let s3 = server();
    let bucket = s3.create_bucket("denied").unwrap();
    let store = s3_store(&s3, &bucket, &[("DATASET_S3_SECRET_KEY", "wrong-secret")]).unwrap();
    match store.list("").next() {
        Some(Err(e @ StoreError::AccessDenied { .. })) => {
            assert!(e.hint().unwrap().contains("access key"));
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("wrong-secret"), "secret leaked: {shown}");
            assert!(
                !shown.contains(&s3.access_key),
                "access key id leaked: {shown}"
            );
        }
        // moto does not check signatures by default: nothing to assert there.
        _ if s3.kind() == "external" => {}
        other => panic!("expected access denied, got {other:?}"),
    }
}

#[test]
fn a_missing_bucket_is_named() {
    let s3 = server();
    let store = s3_store(&s3, "no-such-bucket-gatehouse", &[]).unwrap();
    let err = store.list("").next().unwrap().unwrap_err();
    assert!(matches!(err, StoreError::NoSuchBucket { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no-such-bucket-gatehouse"),
        "{err}"
    );
}

#[test]
fn an_unreachable_endpoint_fails_fast_and_says_so() {
    // Port 9 (discard) on loopback: nothing listens there.
    let env_endpoint = [("DATASET_S3_ENDPOINT", "http://127.0.0.1:9")];
    let s3 = server();
    let store = s3_store(&s3, "any", &env_endpoint).unwrap();
    let started = std::time::Instant::now();
    let err = store.list("").next().unwrap().unwrap_err();
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("endpoint"));
    assert!(started.elapsed().as_secs() < 60, "retries are bounded");
}

/// Issue 18: keys with non-ASCII characters or any of `# % ~ ^ [ ] { } < \ " ' *` are read
/// back exactly; a key with a control character is named, escaped, and left out without
/// stopping the listing, coverage or doctor.
#[test]
fn keys_of_every_class_round_trip_and_unusable_keys_are_named_not_fatal() {
    let s3 = server();
    let bucket = s3.create_bucket("odd-keys").unwrap();
    let store = s3_store(&s3, &bucket, &[]).unwrap();
    let good = [
        "raw/café.jsonl",
        "raw/дневник.jsonl",
        "raw/会話ログ.jsonl",
        "raw/a#b.jsonl",
        "raw/100%.jsonl",
        "raw/%41%2F.jsonl",
        "raw/a~b^c.jsonl",
        "raw/[x]{y}.jsonl",
        "raw/a<b.jsonl",
        "raw/a\\b.jsonl",
        "raw/a\"b'c.jsonl",
        "raw/a*b.jsonl",
        "raw/sp ace+plus.jsonl",
    ];
    // Written by another tool (not through object_store), as users' data is.
    for key in good {
        s3.put_raw(&bucket, key, key.as_bytes()).unwrap();
    }
    let mut bad = vec!["raw/tab\there.jsonl", "raw/esc\u{1b}x.jsonl"];
    if s3.bucket_dir(&bucket).is_some() {
        bad.push("raw/nl\nx.jsonl"); // moto refuses to store a newline in a key
    }
    for key in &bad {
        s3.put_raw(&bucket, key, b"x").unwrap();
    }
    // Enough good keys after the bad ones that the listing has to go on past them.
    for i in 0..30 {
        s3.put_raw(&bucket, &format!("raw/z{i:02}.jsonl"), b"z")
            .unwrap();
    }
    let mut list = store.list("");
    let keys: Vec<String> = list.by_ref().map(|o| o.unwrap().key).collect();
    for key in good {
        assert!(keys.iter().any(|k| k == key), "{key} not listed: {keys:?}");
        assert_eq!(store.get_bytes(key).unwrap(), key, "{key}");
        let mut text = String::new();
        store
            .open_read(key)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, key);
        assert_eq!(store.head(key).unwrap().size, key.len() as u64);
    }
    assert_eq!(keys.len(), good.len() + 30, "{keys:?}");
    let mut skipped = list.unusable().to_vec();
    skipped.sort();
    let mut want: Vec<String> = bad
        .iter()
        .map(|k| gatehouse_core::store::escape_key(k))
        .collect();
    want.sort();
    assert_eq!(skipped, want);
    assert!(skipped.iter().all(|k| !k.chars().any(char::is_control)));

    // Coverage names them and goes on; doctor's listing works.
    let registry = Registry::parse(
        Path::new("r.toml"),
        "schema_version = 1\n[families.f]\nstage = \"stage1_x\"\nrequired = true\nreview = [\"clinician_foundation\"]\n\
         [[datasets]]\nname = \"d\"\nfamily = \"f\"\ninclude = [\"raw/\"]\nformat = \"chatml\"\n",
        String::new(),
    )
    .unwrap();
    let report = coverage::run(
        &store,
        &registry,
        &CoverageConfig::default(),
        &[],
        "2026-11-25".parse().unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let finding = report
        .findings
        .iter()
        .find(|f| f.code == "COV008")
        .expect("COV008");
    assert!(
        finding.message.contains("raw/tab\\there.jsonl"),
        "{}",
        finding.message
    );
    assert_eq!(report.datasets[0].objects, good.len() as u64 + 30);
    let report = doctor::run(&store, Vec::new());
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.name == "list" && c.detail.contains("listing works")),
        "{:?}",
        report.checks
    );
}
