//! Builds the real third-party counselling data in `../shared/data` (counsel_chat, both
//! scrapes; AnnoMI, simple and full) through a registry. Skipped when `../shared` is absent,
//! as in a user's clone. The data never enters the repository; this test only reads it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

use std::path::{Path, PathBuf};

use gatehouse_core::build::{self, BuildConfig, BuildContext};
use gatehouse_core::registry::Registry;
use gatehouse_core::store::{Backend, Store, StoreConfig};

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    p.join("annomi/AnnoMI-simple.csv").is_file().then_some(p)
}

const REGISTRY: &str = r#"
schema_version = 1
[families.professional_therapeutic]
stage = "stage1_foundation"
required = true
review = ["clinician_foundation"]

[[datasets]]
name = "counsel_chat_2020"
family = "professional_therapeutic"
include = ["raw/counsel_chat/20200325_counsel_chat.csv"]
format = "csv_columns"
fields = { user = "questionText", assistant = "answerText" }
group_by = "questionID"
license_tag = "MIT (test fixture only)"
provenance = { origin = "nbertagnolli/counsel-chat", method = "scraped Q&A", consent = "public; test use only" }

[[datasets]]
name = "counsel_chat_older"
family = "professional_therapeutic"
include = ["raw/counsel_chat/counselchat-data.csv"]
format = "csv_columns"
fields = { user = "questionText", assistant = "answerText" }
group_by = "questionID"
license_tag = "MIT (test fixture only)"
provenance = { origin = "nbertagnolli/counsel-chat", method = "scraped Q&A (HTML)", consent = "public; test use only" }

[[datasets]]
name = "annomi_simple"
family = "professional_therapeutic"
include = ["raw/annomi/AnnoMI-simple.csv"]
format = "utterance_csv"
fields = { conversation = "transcript_id", order = "utterance_id", speaker = "interlocutor", text = "utterance_text" }
license_tag = "public-domain (authors' statement)"
provenance = { origin = "uccollab/AnnoMI", method = "transcribed demonstrations", consent = "public demonstrations" }

[[datasets]]
name = "annomi_full"
family = "professional_therapeutic"
include = ["raw/annomi/AnnoMI-full.csv"]
format = "utterance_csv"
fields = { conversation = "transcript_id", order = "utterance_id", speaker = "interlocutor", text = "utterance_text" }
license_tag = "public-domain (authors' statement)"
provenance = { origin = "uccollab/AnnoMI", method = "transcribed demonstrations", consent = "public demonstrations" }
"#;

#[test]
fn counsel_chat_and_annomi_build_through_the_registry() {
    let Some(data) = shared() else {
        eprintln!("skipped: ../shared/data is not present");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        (
            "counsel_chat/20200325_counsel_chat.csv",
            "raw/counsel_chat/20200325_counsel_chat.csv",
        ),
        (
            "counsel_chat/counselchat-data.csv",
            "raw/counsel_chat/counselchat-data.csv",
        ),
        ("annomi/AnnoMI-simple.csv", "raw/annomi/AnnoMI-simple.csv"),
        ("annomi/AnnoMI-full.csv", "raw/annomi/AnnoMI-full.csv"),
    ] {
        let dest = dir.path().join(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(data.join(from), dest).unwrap();
    }
    let store = Store::open(&StoreConfig {
        backend: Backend::Local {
            root: dir.path().to_path_buf(),
        },
        exports_prefix: "exports".into(),
    })
    .unwrap();
    let registry = Registry::parse(Path::new("shared.toml"), REGISTRY, String::new()).unwrap();
    let detector = gatehouse_text::pii::Detector::new();
    let ctx = BuildContext {
        release_version: "v2026-11-25",
        location: "exports/releases/v2026-11-25/",
        release_date: None,
        config_digest: String::new(),
        artefacts: Vec::new(),
        detector: &detector,
    };
    let out = build::run(
        &store,
        &registry,
        &BuildConfig::default(),
        &ctx,
        &mut |_| {},
    )
    .unwrap();
    for o in &out.report.objects {
        eprintln!(
            "{}: read {}, exported {}, quarantined {:?}, duplicates removed {}, merged turns {}, verdict {:?}",
            o.key,
            o.read,
            o.exported,
            o.quarantined,
            o.duplicates_removed,
            o.merged_turns,
            o.verdict
        );
    }
    let d = &out.report.dedup;
    eprintln!(
        "dedup: {} exact, {} near removed; {} candidates verified, largest bucket {}",
        d.exact_removed, d.near_removed, d.candidates_verified, d.largest_bucket
    );
    let by_key = |k: &str| {
        out.report
            .objects
            .iter()
            .find(|o| o.key.ends_with(k))
            .unwrap()
    };
    // One record per answer row (README counts: 2,129 and 1,482 rows).
    assert_eq!(by_key("20200325_counsel_chat.csv").read, 2129);
    assert_eq!(by_key("counselchat-data.csv").read, 1482);
    // One conversation per transcript (133), whether or not annotator rows repeat.
    assert_eq!(by_key("AnnoMI-simple.csv").read, 133);
    assert_eq!(by_key("AnnoMI-full.csv").read, 133);
    assert!(out.report.objects.iter().all(|o| !o.incomplete));
    // AnnoMI-full repeats each utterance once per annotator: collapsed, it must give exactly
    // the conversations AnnoMI-simple gives, so deduplication removes one copy of each
    // (AnnoMI-full's key sorts first: its copies are kept).
    assert_eq!(by_key("AnnoMI-simple.csv").exported, 0);
    assert_eq!(by_key("AnnoMI-full.csv").exported, 133);
    let removed = store
        .get_bytes("exports/releases/v2026-11-25/dedup_removed.jsonl")
        .unwrap();
    let mut kept_for_simple = std::collections::BTreeSet::new();
    for line in removed.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        if v["dataset"] == "annomi_simple" {
            assert_eq!(
                (&v["kind"], &v["kept_dataset"]),
                (&"exact".into(), &"annomi_full".into())
            );
            kept_for_simple.insert(v["kept_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        kept_for_simple.len(),
        133,
        "one distinct AnnoMI-full copy per conversation"
    );
}
