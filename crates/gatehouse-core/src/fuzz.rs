//! Fuzz targets: every parser of untrusted input, as functions of raw bytes that panic when
//! an invariant breaks. `fuzz/` runs them under libFuzzer (`cargo +nightly fuzz run NAME`);
//! `tests/fuzz_replay.rs` runs them in the ordinary test suite over the committed corpus
//! (`fuzz/corpus/NAME/`, where every crash found becomes a file) and over random inputs,
//! so a regression fails on stable too. Not an API.

use std::io::Read;
use std::path::Path;

use crate::registry::{Dataset, Registry};
use crate::source::{self, Item, Limits};
use crate::store::{Line, LineReader};

/// A fuzz target: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// The targets by name, as `cargo fuzz` knows them.
pub const TARGETS: [(&str, Target); 7] = [
    ("json_stream", json_stream),
    ("jsonl", jsonl),
    ("csv", csv),
    ("transcript", transcript),
    ("line_reader", line_reader),
    ("pii", pii),
    ("config", config),
];

fn dataset(entry: &str) -> Dataset {
    let text = format!(
        "schema_version = 1\n[families.f]\nstage = \"stage1_x\"\nreview = [\"clinician_foundation\"]\n\
         [[datasets]]\nname = \"d\"\nfamily = \"f\"\ninclude = [\"x/\"]\n{entry}\n"
    );
    #[allow(clippy::expect_used)] // a fixed, valid registry
    let mut r = Registry::parse(Path::new("fuzz.toml"), &text, String::new()).expect("registry");
    r.datasets.remove(0)
}

/// Small limits, so that oversized paths are reached by small inputs.
const LIMITS: Limits = Limits {
    max_record_bytes: 256,
    max_buffered_object_bytes: 4096,
    merge: crate::record::MergePolicy::Merge,
    transcript_chunk_turns: 3,
};

/// Adapts `data` as `key` of a dataset and checks what every adapter promises: it never
/// fails on data (only on I/O), every item's line lies within the object's lines, and the
/// summary counts the items.
fn adapt(key: &str, entry: &str, data: &[u8]) {
    let d = dataset(entry);
    let mut items = Vec::new();
    #[allow(clippy::expect_used)] // in-memory reads cannot fail
    let summary = source::adapt(data, key, &d, &LIMITS, &mut |i| items.push(i))
        .expect("an adapter failed on bytes in memory");
    let lines = data.split(|b| *b == b'\n' || *b == b'\r').count() as u64 + 1;
    let (mut records, mut quarantined) = (0u64, 0u64);
    for item in &items {
        let line = match item {
            Item::Record(r) => {
                records += 1;
                assert!(!r.messages.is_empty(), "a record without messages");
                r.line
            }
            Item::Quarantined(q) => {
                quarantined += 1;
                q.line
            }
        };
        assert!(line >= 1 && line <= lines, "line {line} of {lines}");
    }
    assert_eq!(summary.records, records);
    assert_eq!(summary.quarantined_total(), quarantined);
    if data.is_empty() {
        assert!(summary.incomplete, "an empty object must fail its source");
    }
}

/// A JSON document (array, or wrapped array) through the streaming splitter.
pub fn json_stream(data: &[u8]) {
    adapt("x/a.json", "format = \"chatml\"", data);
    adapt(
        "x/b.json",
        "format = \"alpaca\"\nfields = { records = \"data\" }",
        data,
    );
}

/// JSON Lines of prompt/response pairs and ChatML.
pub fn jsonl(data: &[u8]) {
    adapt("x/a.jsonl", "format = \"prompt_response\"", data);
    adapt("x/b.jsonl", "format = \"chatml\"\ngroup_by = \"sid\"", data);
}

/// CSV with named columns and one utterance per row.
pub fn csv(data: &[u8]) {
    adapt(
        "x/a.csv",
        "format = \"csv_columns\"\nfields = { user = \"q\", assistant = \"a\" }",
        data,
    );
    adapt(
        "x/u.csv",
        "format = \"utterance_csv\"\nfields = { conversation = \"c\", order = \"o\", speaker = \"s\", text = \"t\" }",
        data,
    );
}

/// Plain-text transcripts.
pub fn transcript(data: &[u8]) {
    adapt("x/t.txt", "format = \"text_transcript\"", data);
}

/// The line splitter: lines and their numbers agree with splitting the whole input, whatever
/// the read sizes, and no kept line exceeds the limit.
pub fn line_reader(data: &[u8]) {
    let max = 16;
    let mut reader = LineReader::new(std::io::BufReader::with_capacity(7, data), max);
    let mut number = 0;
    #[allow(clippy::expect_used)] // in-memory reads cannot fail
    while let Some(line) = reader.next_line().expect("in-memory read") {
        number += 1;
        match line {
            Line::Text { number: n, bytes } => {
                assert_eq!(n, number);
                assert!(bytes.len() <= max);
                assert!(!bytes.contains(&b'\n') && !bytes.contains(&b'\r'));
            }
            Line::Oversized { number: n, len } => {
                assert_eq!(n, number);
                assert!(len > max as u64);
            }
        }
    }
    assert_eq!(reader.bytes_read(), data.len() as u64);
    let mut rest = Vec::new();
    #[allow(clippy::expect_used)]
    reader
        .into_inner()
        .read_to_end(&mut rest)
        .expect("in-memory read");
    assert!(rest.is_empty());
}

/// The PII detector: spans are sorted, disjoint, on character boundaries, and redaction
/// leaves no detected span behind.
pub fn pii(data: &[u8]) {
    use std::sync::OnceLock;
    static DETECTOR: OnceLock<gatehouse_text::pii::Detector> = OnceLock::new();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let detector = DETECTOR.get_or_init(gatehouse_text::pii::Detector::new);
    let allow = gatehouse_text::pii::Allowlist::default();
    let spans = detector.detect(text, &allow);
    let mut end = 0;
    for s in &spans {
        assert!(s.start >= end && s.start < s.end && s.end <= text.len());
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        end = s.end;
    }
    let mut content = text.to_string();
    gatehouse_text::pii::redact_conversation(
        detector,
        &allow,
        gatehouse_text::pii::UnsurePolicy::Redact,
        [&mut content],
    );
}

/// The registry and gatehouse.toml parsers: errors, never panics.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Registry::parse(Path::new("fuzz.toml"), text, String::new());
    let _ =
        crate::config::parse_toml::<crate::config::ConfigFile>(Path::new("gatehouse.toml"), text);
}
