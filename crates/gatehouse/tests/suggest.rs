//! `gatehouse registry suggest` end to end: objects no dataset claims, in the shapes teams
//! already have (ESConv in both schemas, Context/Response, turns under other keys, Parquet,
//! gzip, CSV), get an entry that, pasted into the registry with a licence and provenance,
//! makes `gatehouse build` adapt them with nothing quarantined. Record text never appears in
//! the output; a speaker value no common label maps is left for a human.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::io::Write as _;
use std::sync::Arc;

use arrow_array::{ArrayRef, ListArray, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Fields, Schema};
use gatehouse_synth::formats::{self, Labels};
use gatehouse_synth::{Conversation, Corpus, Family};
use serde_json::Value;

mod common;
use common::*;

/// Planted in every turn of every fixture: it must never be printed.
const MARKER: &str = "QUOKKA-7731-MARKER";
const CONVERSATIONS: u64 = 12;

fn conversations() -> Vec<Conversation> {
    let corpus = Corpus::new(19);
    (0..CONVERSATIONS)
        .map(|i| {
            let mut c = corpus.conversation(Family::ProfessionalTherapeutic, i);
            for (_, text) in &mut c.turns {
                text.push_str(&format!(" {MARKER}"));
            }
            c
        })
        .collect()
}

fn jsonl(values: impl IntoIterator<Item = Value>) -> Vec<u8> {
    let mut out = Vec::new();
    formats::jsonl(&mut out, values).unwrap();
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// ESConv rows as Parquet: `emotion_type` and `dialog: list<struct<speaker, text>>`, four
/// rows per row group.
fn esconv_parquet(rows: &[Value]) -> Vec<u8> {
    let (mut speakers, mut texts, mut offsets) = (Vec::new(), Vec::new(), vec![0i32]);
    for r in rows {
        for t in r["dialog"].as_array().unwrap() {
            speakers.push(t["speaker"].as_str().map(str::to_string));
            texts.push(t["text"].as_str().map(str::to_string));
        }
        offsets.push(speakers.len() as i32);
    }
    let fields = Fields::from(vec![
        Field::new("speaker", DataType::Utf8, true),
        Field::new("text", DataType::Utf8, true),
    ]);
    let structs = StructArray::new(
        fields.clone(),
        vec![
            Arc::new(StringArray::from(speakers)) as ArrayRef,
            Arc::new(StringArray::from(texts)) as ArrayRef,
        ],
        None,
    );
    let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
    let dialog = ListArray::new(
        item.clone(),
        arrow_buffer::OffsetBuffer::new(offsets.into()),
        Arc::new(structs),
        None,
    );
    let emotion: Vec<Option<String>> = rows
        .iter()
        .map(|r| r["emotion_type"].as_str().map(str::to_string))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("emotion_type", DataType::Utf8, true),
        Field::new("dialog", DataType::List(item), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(emotion)), Arc::new(dialog)],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// Key → bytes of every good shape, each with CONVERSATIONS records.
fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let cs = conversations();
    let esconv: Vec<Value> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| formats::esconv_value(c, i as u64, Labels::UsrSys))
        .collect();
    let original = cs
        .iter()
        .enumerate()
        .map(|(i, c)| formats::esconv_value(c, i as u64, Labels::SeekerSupporter));
    let pairs: Vec<Value> = cs.iter().map(formats::context_response_value).collect();
    let nested = cs
        .iter()
        .enumerate()
        .map(|(i, c)| formats::nested_turns_value(c, i as u64));
    let mut array = Vec::new();
    formats::json_array(&mut array, esconv.clone(), None).unwrap();
    let mut csv = Vec::new();
    writeln!(csv, "{}", formats::QA_CSV_HEADER).unwrap();
    for (i, c) in cs.iter().enumerate() {
        formats::qa_csv_row(&mut csv, i as u64, c).unwrap();
    }
    vec![
        ("incoming/esconv/ESConv.json", array),
        ("incoming/esconv_original/train.jsonl", jsonl(original)),
        // Two parts of one folder: one entry with the folder as its include.
        ("incoming/counsel/part-0.jsonl", jsonl(pairs[..6].to_vec())),
        ("incoming/counsel/part-1.jsonl", jsonl(pairs[6..].to_vec())),
        ("incoming/assistant_logs/logs.jsonl", jsonl(nested)),
        (
            "incoming/esconv_parquet/train.parquet",
            esconv_parquet(&esconv),
        ),
        (
            "incoming/counsel_gz/train.jsonl.gz",
            gzip(&jsonl(pairs.clone())),
        ),
        ("incoming/counsel_csv/answers.csv", csv),
    ]
}

fn put(p: &Project, key: &str, bytes: &[u8]) {
    let path = p.path().join("store").join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// What a person does with a printed entry: fill in the licence and provenance.
fn decide(entries: &str) -> String {
    entries
        .lines()
        .map(|l| {
            if l.starts_with("# license_tag = ") {
                "license_tag = \"CC0-1.0\"".to_string()
            } else if l.starts_with("# provenance = ") {
                "provenance = { origin = \"gatehouse-synth\", method = \"synthetic\", consent = \"no real persons\" }".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn suggested_entries_build_every_shape_with_nothing_quarantined_and_print_no_text() {
    let p = Project::new();
    let fixtures = fixtures();
    for (key, bytes) in &fixtures {
        put(&p, key, bytes);
    }
    // Small bounds, so JSON arrays, gzip streams and CSV are cut mid-record and Parquet is
    // read by its first row group.
    let args = [
        "registry",
        "suggest",
        "incoming/",
        "--max-bytes",
        "9000",
        "--records",
        "3",
    ];
    let text = p.run(&args);
    assert_eq!(text.code, 0, "{text:?}");
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let json = p.run(&json_args);
    assert_eq!(json.code, 0, "{json:?}");
    for out in [&text.stdout, &text.stderr, &json.stdout, &json.stderr] {
        assert!(!out.contains(MARKER), "record text printed:\n{out}");
        assert!(!out.contains("Thank you"), "record text printed:\n{out}");
    }

    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    let groups = report["groups"].as_array().unwrap();
    // One group per folder (the two counsel parts share one), plus the sample store's
    // unsorted notes.
    assert_eq!(groups.len(), 8, "{}", text.stdout);
    for g in groups {
        let check = &g["check"];
        assert!(check["sampled_records"].as_u64().unwrap() > 0, "{g}");
        assert_eq!(check["adapted"], check["sampled_records"], "{g}");
        assert_eq!(check["quarantined"], serde_json::json!([]), "{g}");
        assert!(
            g["proposal"]["undecided_roles"]
                .as_array()
                .unwrap()
                .is_empty(),
            "{g}"
        );
    }
    let group = |folder: &str| {
        groups
            .iter()
            .find(|g| g["folder"] == folder)
            .unwrap_or_else(|| panic!("no group for {folder}"))
    };
    let esconv = &group("incoming/esconv/")["proposal"];
    assert_eq!(esconv["format"], "messages");
    assert_eq!(esconv["fields"]["messages"], "dialog");
    assert_eq!(esconv["fields"]["role"], "speaker");
    assert_eq!(esconv["fields"]["content"], "text");
    assert_eq!(esconv["speaker_roles"]["usr"], "user");
    assert_eq!(esconv["speaker_roles"]["sys"], "assistant");
    let original = &group("incoming/esconv_original/")["proposal"];
    assert_eq!(original["fields"]["content"], "content");
    assert_eq!(original["speaker_roles"]["seeker"], "user");
    assert_eq!(original["speaker_roles"]["supporter"], "assistant");
    let counsel = group("incoming/counsel/");
    assert_eq!(counsel["objects"], 2);
    assert_eq!(counsel["include"], serde_json::json!(["incoming/counsel/"]));
    assert_eq!(counsel["proposal"]["format"], "pair");
    assert_eq!(counsel["proposal"]["fields"]["user"], "Context");
    assert_eq!(
        group("incoming/assistant_logs/")["proposal"]["fields"]["messages"],
        "conversation.turns"
    );
    assert_eq!(
        group("incoming/counsel_csv/")["proposal"]["format"],
        "csv_columns"
    );
    assert_eq!(
        group("incoming/esconv_parquet/")["proposal"]["speaker_roles"]["sys"],
        "assistant"
    );
    // Scalars are offered for source_fields, commented out, never on by default.
    assert!(
        text.stdout.contains("# source_fields = ["),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("\nsource_fields"), "{}", text.stdout);
    assert!(text.stdout.contains("# adapts 3 of 3 sampled records"));

    // Nothing was written: not the registry, not the store.
    assert!(!p.exports_exist());
    let registry = p.registry();
    assert!(!registry.contains("incoming/"));

    // Pasted, with a licence and provenance, the entries build every object cleanly.
    p.set_registry(&format!("{registry}\n{}", decide(&text.stdout)));
    let check = p.run(&["registry", "check"]);
    assert_eq!(check.code, 0, "{check:?}");
    let build = p.run(&["--json", "build", "--release-version", "v2026-02-03"]);
    assert_eq!(build.code, 0, "{build:?}");
    let built: Value = serde_json::from_str(&build.stdout).unwrap();
    let objects = built["report"]["objects"].as_array().unwrap();
    for (key, _) in &fixtures {
        let o = objects
            .iter()
            .find(|o| o["key"] == *key)
            .unwrap_or_else(|| panic!("{key} was not built"));
        assert_eq!(o["quarantined"], serde_json::json!({}), "{key}: {o}");
        let expected = if key.starts_with("incoming/counsel/") {
            CONVERSATIONS / 2
        } else {
            CONVERSATIONS
        };
        assert_eq!(o["read"], expected, "{key}: {o}");
    }
}

#[test]
fn an_unknown_speaker_is_left_undecided_and_its_quarantine_shown() {
    let p = Project::new();
    let cs = conversations();
    // ESConv with a third speaker, "narrator", in every other record.
    let records = cs.iter().enumerate().map(|(i, c)| {
        let mut v = formats::esconv_value(c, i as u64, Labels::UsrSys);
        if i % 2 == 0 {
            let dialog = v["dialog"].as_array_mut().unwrap();
            dialog.push(serde_json::json!({"speaker": "narrator", "text": MARKER}));
        }
        v
    });
    put(&p, "incoming/roleplay/chat.jsonl", &jsonl(records));
    let mut transcript = Vec::new();
    formats::transcript_txt(&mut transcript, "Episode", &cs[0]).unwrap();
    put(&p, "incoming/podcast/episode.txt", &transcript);

    let r = p.run(&["registry", "suggest", "incoming/", "--records", "6"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains(MARKER), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "# decision needed: speaker value \"narrator\" has no known role; add it to speaker_roles"
        ),
        "{}",
        r.stdout
    );
    // Known labels are mapped, the unknown one is not guessed.
    assert!(
        r.stdout
            .contains("speaker_roles = { \"sys\" = \"assistant\", \"usr\" = \"user\" }"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("# adapts 3 of 6 sampled records"),
        "{}",
        r.stdout
    );
    // The build's own reasons, with the value named because it looks like a label.
    let quarantined: u64 = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("# would quarantine "))
        .filter(|l| l.contains(": Q006 unknown-role: dialog["))
        .filter(|l| l.ends_with(".speaker value \"narrator\" is not in speaker_roles"))
        .map(|l| l.split(':').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(quarantined, 3, "{}", r.stdout);
    // Transcript speakers no common label names are decisions too.
    assert!(
        r.stdout
            .contains("speaker value \"Host\" has no known role"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("speaker value \"Listener\" has no known role")
    );
}

#[test]
fn nothing_unclaimed_is_said_plainly() {
    let p = Project::new();
    let r = p.run(&["registry", "suggest", "sources/"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(
        r.stderr
            .contains("is claimed by a dataset; nothing to suggest"),
        "{r:?}"
    );
    let r = p.run(&["registry", "suggest", "exports/"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("exports prefix"), "{r:?}");
}
