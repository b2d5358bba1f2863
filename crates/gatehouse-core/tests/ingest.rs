//! Issue 19: the datasets teams already have, in their own shapes (ESConv in both schemas,
//! `{"Context", "Response"}`, ChatML under other keys), mapped through the registry and built
//! end to end. Every fixture is written here from the synthetic generator; no public data is
//! copied into the repository.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;

use gatehouse_core::build::{BuildConfig, BuildOutcome};
use gatehouse_core::digest::sha256;
use gatehouse_core::store::Store;
use gatehouse_synth::formats::{self, Labels};
use gatehouse_synth::{Corpus, Family};
use serde_json::Value;

mod common;
use common::*;

const CONVERSATIONS: u64 = 24;

const REGISTRY: &str = r#"
schema_version = 1

[families.professional_therapeutic]
stage = "stage1_foundation"
review = ["clinician_foundation"]

[[datasets]]
name = "esconv"
family = "professional_therapeutic"
include = ["raw/esconv/"]
format = "messages"
fields = { messages = "dialog", role = "speaker", content = "text" }
speaker_roles = { usr = "user", sys = "assistant" }
source_fields = ["emotion_type", "problem_type"]
license_tag = "CC-BY-NC-4.0"
provenance = { origin = "gatehouse-synth", method = "synthetic, ESConv-shaped", consent = "no real persons" }

[[datasets]]
name = "esconv_original"
family = "professional_therapeutic"
include = ["raw/esconv_original/"]
format = "messages"
fields = { messages = "dialog", role = "speaker", content = "content" }
speaker_roles = { seeker = "user", supporter = "assistant" }
license_tag = "CC-BY-NC-4.0"
provenance = { origin = "gatehouse-synth", method = "synthetic, ESConv-shaped", consent = "no real persons" }

[[datasets]]
name = "context_response"
family = "professional_therapeutic"
include = ["raw/context_response/"]
format = "pair"
fields = { user = "Context", assistant = "Response" }
license_tag = "CC0-1.0"
provenance = { origin = "gatehouse-synth", method = "synthetic pairs", consent = "no real persons" }

[[datasets]]
name = "nested_turns"
family = "professional_therapeutic"
include = ["raw/nested/"]
format = "messages"
fields = { messages = "conversation.turns", role = "author", content = "text" }
speaker_roles = { user = "user", bot = "assistant", system = "system" }
source_fields = ["meta.topic"]
license_tag = "CC0-1.0"
provenance = { origin = "gatehouse-synth", method = "synthetic", consent = "no real persons" }
"#;

/// The fixtures' records, as JSON values, by shape.
fn values(shape: &str) -> Vec<Value> {
    let corpus = Corpus::new(19);
    (0..CONVERSATIONS)
        .map(|i| {
            let c = corpus.conversation(Family::ProfessionalTherapeutic, i);
            match shape {
                "esconv" => formats::esconv_value(&c, i, Labels::UsrSys),
                "esconv_original" => formats::esconv_value(&c, i, Labels::SeekerSupporter),
                "context_response" => formats::context_response_value(&c),
                "nested" => formats::nested_turns_value(&c, i),
                _ => unreachable!("{shape}"),
            }
        })
        .collect()
}

fn json_array(values: Vec<Value>) -> Vec<u8> {
    let mut out = Vec::new();
    formats::json_array(&mut out, values, None).unwrap();
    out
}

fn jsonl(values: Vec<Value>) -> Vec<u8> {
    let mut out = Vec::new();
    formats::jsonl(&mut out, values).unwrap();
    out
}

/// The plain fixtures: key → bytes.
fn plain_fixtures() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (
            "raw/esconv/ESConv.json".into(),
            json_array(values("esconv")),
        ),
        (
            "raw/esconv_original/train.jsonl".into(),
            jsonl(values("esconv_original")),
        ),
        (
            "raw/context_response/train.jsonl".into(),
            jsonl(values("context_response")),
        ),
        ("raw/nested/part-0.jsonl".into(), jsonl(values("nested"))),
    ])
}

fn build(fixtures: &BTreeMap<String, Vec<u8>>, registry_text: &str) -> (Store, BuildOutcome) {
    let store = Store::memory();
    for (key, bytes) in fixtures {
        store.put(key, bytes.clone()).unwrap();
    }
    let out = build_with(&store, &registry(registry_text), &BuildConfig::default());
    (store, out)
}

/// Every object read to its end, every record accounted for and none quarantined.
fn assert_clean(out: &BuildOutcome, fixtures: &BTreeMap<String, Vec<u8>>) {
    assert_eq!(out.report.objects.len(), fixtures.len());
    for o in &out.report.objects {
        assert!(
            o.quarantined.is_empty() && !o.incomplete,
            "{}: {:?}",
            o.key,
            o.quarantined
        );
        assert_eq!(o.read, CONVERSATIONS, "{}", o.key);
        assert_eq!(
            o.read,
            o.exported + o.removed_by_policy + o.duplicates_removed,
            "{}: counts reconcile",
            o.key
        );
    }
}

#[test]
fn esconv_context_response_and_renamed_chatml_build_with_nothing_quarantined() {
    let fixtures = plain_fixtures();
    let (store, out) = build(&fixtures, REGISTRY);
    assert_clean(&out, &fixtures);
    let exported = records(&store, &format!("{LOC}compiled_export.jsonl"));
    assert!(!exported.is_empty());
    for r in &exported {
        let md = &r["metadata"];
        let carried = md.get("source_fields");
        match md["dataset"].as_str().unwrap() {
            "esconv" => {
                let f = carried.unwrap().as_object().unwrap();
                assert_eq!(
                    f.keys().collect::<Vec<_>>(),
                    ["emotion_type", "problem_type"],
                    "only the named fields: not situation, seeker_id or survey_score"
                );
            }
            "nested_turns" => {
                let f = carried.unwrap().as_object().unwrap();
                assert_eq!(f.keys().collect::<Vec<_>>(), ["meta.topic"]);
            }
            _ => assert!(carried.is_none(), "absent when the dataset names none"),
        }
        let roles: Vec<&str> = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert!(roles.contains(&"user") && roles.contains(&"assistant"));
    }
    for input in &out.manifest.inputs {
        assert_eq!(input.sha256, sha256(&fixtures[&input.key]));
    }
}

#[test]
fn a_mis_mapped_speaker_is_quarantined_with_the_value_named() {
    let fixtures = BTreeMap::from([(
        "raw/esconv/ESConv.json".to_string(),
        json_array(values("esconv")),
    )]);
    // The original release's labels for the distributed file's data.
    let text = REGISTRY.replace(
        "speaker_roles = { usr = \"user\", sys = \"assistant\" }",
        "speaker_roles = { seeker = \"user\", supporter = \"assistant\" }",
    );
    let (store, out) = build(&fixtures, &text);
    let o = &out.report.objects[0];
    assert_eq!(o.exported, 0);
    assert_eq!(o.quarantined["Q006 unknown-role"], CONVERSATIONS);
    let q = records(&store, &format!("{LOC}quarantine.jsonl"));
    assert_eq!(q.len() as u64, CONVERSATIONS);
    assert_eq!(q[0]["key"], "raw/esconv/ESConv.json");
    let detail = q[0]["detail"].as_str().unwrap();
    assert!(
        detail.ends_with(".speaker value \"usr\" is not in speaker_roles"),
        "{detail}"
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Every plain fixture also as `.gz` and `.zst`.
fn compressed_fixtures() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (key, bytes) in plain_fixtures() {
        out.insert(format!("{key}.gz"), gzip(&bytes));
        out.insert(
            format!("{key}.zst"),
            zstd::encode_all(&bytes[..], 3).unwrap(),
        );
    }
    out
}

#[test]
fn gzip_and_zstd_fixtures_build_and_the_manifest_hashes_the_stored_bytes() {
    let fixtures = compressed_fixtures();
    let (_, out) = build(&fixtures, REGISTRY);
    assert_clean(&out, &fixtures);
    assert_eq!(out.manifest.inputs.len(), fixtures.len());
    for input in &out.manifest.inputs {
        let stored = &fixtures[&input.key];
        assert_eq!(input.sha256, sha256(stored), "{}", input.key);
        assert_eq!(input.bytes, stored.len() as u64, "{}", input.key);
    }
}

#[test]
fn a_corrupt_gzip_object_is_quarantined_by_key_and_fails_its_source() {
    let good = jsonl(values("context_response"));
    let gz = gzip(&good);
    let fixtures = BTreeMap::from([(
        "raw/context_response/train.jsonl.gz".to_string(),
        gz[..gz.len() / 2].to_vec(),
    )]);
    let (store, out) = build(&fixtures, REGISTRY);
    let o = &out.report.objects[0];
    assert!(o.incomplete);
    assert_eq!(o.quarantined["Q010 broken-structure"], 1);
    assert_eq!(o.verdict, gatehouse_core::report::Verdict::Fail);
    assert_eq!(out.manifest.inputs[0].sha256, sha256(&gz[..gz.len() / 2]));
    let q = records(&store, &format!("{LOC}quarantine.jsonl"));
    let detail = q[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("raw/context_response/train.jsonl.gz: the gzip stream is corrupt"),
        "{detail}"
    );
}

// --- Parquet ------------------------------------------------------------------------------

mod arrow_fixtures {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, ListArray, RecordBatch, StringArray, StructArray};
    use arrow_schema::{DataType, Field, Fields, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use serde_json::Value;

    fn text(v: &Value) -> Option<String> {
        v.as_str().map(str::to_string)
    }

    /// A `list<struct<a: utf8, b: utf8>>` column from each row's list at `path`.
    pub fn turns(rows: &[Value], path: &[&str], keys: [&str; 2]) -> (Field, ArrayRef) {
        let (mut a, mut b, mut offsets) = (Vec::new(), Vec::new(), vec![0i32]);
        for r in rows {
            let list = path.iter().fold(r, |v, k| &v[*k]).as_array().unwrap();
            for t in list {
                a.push(text(&t[keys[0]]));
                b.push(text(&t[keys[1]]));
            }
            offsets.push(a.len() as i32);
        }
        let fields = Fields::from(vec![
            Field::new(keys[0], DataType::Utf8, true),
            Field::new(keys[1], DataType::Utf8, true),
        ]);
        let structs = StructArray::new(
            fields.clone(),
            vec![
                Arc::new(StringArray::from(a)) as ArrayRef,
                Arc::new(StringArray::from(b)) as ArrayRef,
            ],
            None,
        );
        let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
        let list = ListArray::new(
            item.clone(),
            arrow_buffer::OffsetBuffer::new(offsets.into()),
            Arc::new(structs),
            None,
        );
        (
            Field::new(path[path.len() - 1], DataType::List(item), true),
            Arc::new(list),
        )
    }

    /// A utf8 column from each row's value at `key`.
    pub fn strings(rows: &[Value], key: &str) -> (Field, ArrayRef) {
        let values: Vec<Option<String>> = rows.iter().map(|r| text(&r[key])).collect();
        (
            Field::new(key, DataType::Utf8, true),
            Arc::new(StringArray::from(values)),
        )
    }

    /// A struct column named `name` holding the given columns.
    pub fn nest(name: &str, columns: Vec<(Field, ArrayRef)>) -> (Field, ArrayRef) {
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        let fields = Fields::from(fields);
        let s = StructArray::new(fields.clone(), arrays, None);
        (
            Field::new(name, DataType::Struct(fields), true),
            Arc::new(s),
        )
    }

    /// A Parquet file of the columns, `rows_per_group` rows per row group.
    pub fn parquet(columns: Vec<(Field, ArrayRef)>, rows_per_group: usize) -> Vec<u8> {
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows_per_group))
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    }
}

/// Each shape as a Parquet file (five rows per row group, so rows are counted across
/// groups).
fn parquet_fixtures() -> BTreeMap<String, Vec<u8>> {
    use arrow_fixtures::*;
    let esconv = values("esconv");
    let original = values("esconv_original");
    let pairs = values("context_response");
    let nested = values("nested");
    BTreeMap::from([
        (
            "raw/esconv/ESConv.parquet".into(),
            parquet(
                vec![
                    strings(&esconv, "emotion_type"),
                    strings(&esconv, "problem_type"),
                    strings(&esconv, "situation"),
                    turns(&esconv, &["dialog"], ["speaker", "text"]),
                ],
                5,
            ),
        ),
        (
            "raw/esconv_original/train.parquet".into(),
            parquet(
                vec![turns(&original, &["dialog"], ["speaker", "content"])],
                5,
            ),
        ),
        (
            "raw/context_response/train.parquet".into(),
            parquet(
                vec![strings(&pairs, "Context"), strings(&pairs, "Response")],
                5,
            ),
        ),
        (
            "raw/nested/part-0.parquet".into(),
            parquet(
                vec![
                    nest(
                        "meta",
                        vec![strings(
                            &nested.iter().map(|r| r["meta"].clone()).collect::<Vec<_>>(),
                            "topic",
                        )],
                    ),
                    nest(
                        "conversation",
                        vec![turns(
                            &nested,
                            &["conversation", "turns"],
                            ["author", "text"],
                        )],
                    ),
                ],
                5,
            ),
        ),
    ])
}

#[test]
fn parquet_versions_of_every_shape_build_like_their_json() {
    let fixtures = parquet_fixtures();
    let (store, out) = build(&fixtures, REGISTRY);
    assert_clean(&out, &fixtures);
    for input in &out.manifest.inputs {
        assert_eq!(input.sha256, sha256(&fixtures[&input.key]), "{}", input.key);
    }
    // The same conversations as the JSON fixtures, message for message.
    let (json_store, _) = build(&plain_fixtures(), REGISTRY);
    let messages = |store: &Store| {
        let mut m: Vec<(String, String, Value, Value)> =
            records(store, &format!("{LOC}compiled_export.jsonl"))
                .into_iter()
                .map(|r| {
                    let md = &r["metadata"];
                    (
                        md["dataset"].as_str().unwrap().to_string(),
                        md["content_hash"].as_str().unwrap().to_string(),
                        md.get("source_fields").cloned().unwrap_or(Value::Null),
                        r["messages"].clone(),
                    )
                })
                .collect();
        m.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        m
    };
    assert_eq!(messages(&store), messages(&json_store));
}

#[test]
fn parquet_quarantine_locators_are_key_and_row_across_row_groups() {
    let fixtures: BTreeMap<String, Vec<u8>> = parquet_fixtures()
        .into_iter()
        .filter(|(k, _)| k.starts_with("raw/esconv/"))
        .collect();
    let text = REGISTRY.replace(
        "speaker_roles = { usr = \"user\", sys = \"assistant\" }",
        "speaker_roles = { usr = \"user\" }",
    );
    let (store, out) = build(&fixtures, &text);
    assert_eq!(
        out.report.objects[0].quarantined["Q006 unknown-role"],
        CONVERSATIONS
    );
    let q = records(&store, &format!("{LOC}quarantine.jsonl"));
    let rows: Vec<u64> = q.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(rows, (1..=CONVERSATIONS).collect::<Vec<_>>());
    assert!(q.iter().all(|e| e["key"] == "raw/esconv/ESConv.parquet"));
    assert!(
        q[0]["detail"]
            .as_str()
            .unwrap()
            .ends_with(".speaker value \"sys\" is not in speaker_roles")
    );
}

#[test]
fn a_truncated_parquet_object_is_quarantined_by_key() {
    let mut fixtures = parquet_fixtures();
    fixtures.retain(|k, _| k.starts_with("raw/context_response/"));
    for bytes in fixtures.values_mut() {
        bytes.truncate(bytes.len() - 100);
    }
    let (store, out) = build(&fixtures, REGISTRY);
    let o = &out.report.objects[0];
    assert!(o.incomplete);
    assert_eq!(o.verdict, gatehouse_core::report::Verdict::Fail);
    let q = records(&store, &format!("{LOC}quarantine.jsonl"));
    let detail = q[0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("raw/context_response/train.parquet: not a readable Parquet file"),
        "{detail}"
    );
}
