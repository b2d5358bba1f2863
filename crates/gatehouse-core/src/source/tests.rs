//! Adapter fixtures: every format, and the ugly cases real sources have.

use std::io::Read;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::registry::Registry;

fn dataset(entry: &str) -> Dataset {
    let text = format!(
        "schema_version = 1\n[families.f]\nstage = \"stage1_x\"\nreview = [\"clinician_foundation\"]\n\n\
         [[datasets]]\nname = \"d\"\nfamily = \"f\"\ninclude = [\"x/\"]\n{entry}\n"
    );
    let mut r = Registry::parse(Path::new("t.toml"), &text, String::new()).unwrap();
    r.datasets.remove(0)
}

fn run(key: &str, bytes: &[u8], entry: &str) -> (Vec<Item>, ObjectSummary) {
    run_with(key, bytes, entry, &Limits::default())
}

fn run_with(key: &str, bytes: &[u8], entry: &str, limits: &Limits) -> (Vec<Item>, ObjectSummary) {
    let d = dataset(entry);
    let mut items = Vec::new();
    let summary = adapt(bytes, key, &d, limits, &mut |i| items.push(i)).unwrap();
    (items, summary)
}

/// (line, [(role, content)]) of records; (line, reason) of quarantines.
fn records(items: &[Item]) -> Vec<(u64, Vec<(Role, String)>)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Record(r) => Some((
                r.line,
                r.messages
                    .iter()
                    .map(|m| (m.role, m.content.clone()))
                    .collect(),
            )),
            Item::Quarantined(_) => None,
        })
        .collect()
}

fn quarantined(items: &[Item]) -> Vec<(u64, Reason)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Quarantined(q) => Some((q.line, q.reason)),
            Item::Record(_) => None,
        })
        .collect()
}

#[test]
fn every_quarantine_code_is_a_reason_serialised_by_its_name() {
    for code in quarantine::ALL {
        let reason: Reason = serde_json::from_value(serde_json::json!(code.name))
            .unwrap_or_else(|_| panic!("{} {} is no Reason", code.id, code.name));
        assert_eq!(reason.as_code(), *code);
        assert_eq!(serde_json::to_value(reason).unwrap(), code.name);
        assert_eq!((reason.code(), reason.name()), (code.id, code.name));
    }
}

fn ua(u: &str, a: &str) -> Vec<(Role, String)> {
    vec![
        (Role::User, u.to_string()),
        (Role::Assistant, a.to_string()),
    ]
}

#[test]
fn chatml_jsonl_with_bom_crlf_blank_lines_and_no_final_newline() {
    let src = "\u{feff}{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\r\n\
               \r\n\
               {\"messages\":[{\"role\":\"human\",\"content\":\"a\"},{\"role\":\"gpt\",\"content\":\"b\"}]}";
    let (items, summary) = run("x/a.jsonl", src.as_bytes(), "format = \"chatml\"");
    assert_eq!(
        records(&items),
        vec![(1, ua("hi", "hello")), (3, ua("a", "b"))]
    );
    assert_eq!((summary.records, summary.quarantined_total()), (2, 0));
}

#[test]
fn bad_lines_are_quarantined_with_their_line_and_reading_goes_on() {
    let src = b"{\"messages\":[{\"role\":\"user\",\"content\":\"ok\"},{\"role\":\"assistant\",\"content\":\"fine\"}]}\n\
        {\"messages\": [\n\
        \xff\xfe\n\
        [1,2]\n\
        {\"other\": 1}\n\
        {\"messages\": \"text\"}\n\
        {\"messages\":[{\"role\":\"narrator\",\"content\":\"x\"}]}\n\
        {\"messages\":[]}\n\
        {\"messages\":[{\"role\":\"user\",\"content\":\"only a question\"}]}\n\
        {\"messages\":[{\"role\":\"user\",\"content\":\"  \"},{\"role\":\"assistant\",\"content\":\"\"}]}\n\
        {\"messages\":[{\"role\":\"user\",\"content\":\"trunc";
    let (items, summary) = run("x/a.jsonl", src, "format = \"chatml\"");
    assert_eq!(records(&items).len(), 1);
    assert_eq!(
        quarantined(&items),
        vec![
            (2, Reason::InvalidJson),
            (3, Reason::InvalidUtf8),
            (4, Reason::NotAnObject),
            (5, Reason::MissingField),
            (6, Reason::WrongType),
            (7, Reason::UnknownRole),
            (8, Reason::EmptyConversation),
            (9, Reason::NoAssistantTurn),
            (10, Reason::EmptyConversation),
            (11, Reason::InvalidJson),
        ]
    );
    assert_eq!(
        summary.records + summary.quarantined_total(),
        11,
        "every line is accounted for"
    );
    assert!(!summary.incomplete);
}

#[test]
fn unicode_escapes_with_surrogate_pairs_decode() {
    let src =
        r#"{"prompt": "I feel \ud83d\ude22 today", "response": "I'm here \u2014 tell me more"}"#;
    let (items, _) = run("x/p.jsonl", src.as_bytes(), "format = \"prompt_response\"");
    assert_eq!(
        records(&items),
        vec![(1, ua("I feel 😢 today", "I'm here — tell me more"))]
    );
}

#[test]
fn a_line_over_the_limit_is_quarantined_as_oversized() {
    let big = format!(
        "{{\"prompt\": \"{}\", \"response\": \"r\"}}\n",
        "x".repeat(5000)
    );
    let src = format!("{big}{{\"prompt\": \"p\", \"response\": \"r\"}}\n");
    let limits = Limits {
        max_record_bytes: 1000,
        ..Limits::default()
    };
    let (items, _) = run_with(
        "x/p.jsonl",
        src.as_bytes(),
        "format = \"prompt_response\"",
        &limits,
    );
    assert_eq!(quarantined(&items), vec![(1, Reason::OversizedRecord)]);
    assert_eq!(records(&items), vec![(2, ua("p", "r"))]);
}

#[test]
fn a_fifty_megabyte_record_is_read_when_the_limit_allows() {
    let text = "y".repeat(50 << 20);
    let src = format!("{{\"prompt\": \"q\", \"response\": \"{text}\"}}\n");
    let (items, _) = run("x/p.jsonl", src.as_bytes(), "format = \"prompt_response\"");
    let recs = records(&items);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].1[1].1.len(), 50 << 20);
}

#[test]
fn sharegpt_array_and_wrapped_alpaca_documents() {
    let share = "[\n {\"conversations\": [{\"from\": \"system\", \"value\": \"be kind\"}, {\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a\"}]},\n {\"conversations\": [{\"from\": \"human\", \"value\": \"q2\"}, {\"from\": \"human\", \"value\": \"more\"}, {\"from\": \"gpt\", \"value\": \"a2\"}]}\n]\n";
    let (items, _) = run("x/s.json", share.as_bytes(), "format = \"sharegpt\"");
    let recs = records(&items);
    assert_eq!(recs[0].0, 2);
    assert_eq!(recs[0].1[0], (Role::System, "be kind".to_string()));
    assert_eq!(
        recs[1],
        (3, ua("q2\n\nmore", "a2")),
        "consecutive user turns merge"
    );
    if let Item::Record(r) = &items[1] {
        assert_eq!((r.source_turns, r.merged_turns), (3, 1));
    }

    let alpaca = "{\"version\": 2, \"data\": [\n{\"instruction\": \"Respond kindly.\", \"input\": \"I'm sad\", \"output\": \"I'm sorry\"},\n{\"instruction\": \"Say hi\", \"input\": \"\", \"output\": \"hi\"}\n]}";
    let (items, _) = run(
        "x/a.json",
        alpaca.as_bytes(),
        "format = \"alpaca\"\nfields = { records = \"data\" }",
    );
    assert_eq!(
        records(&items),
        vec![
            (2, ua("Respond kindly.\n\nI'm sad", "I'm sorry")),
            (3, ua("Say hi", "hi"))
        ]
    );
}

#[test]
fn records_of_a_minified_array_get_their_own_parts() {
    let doc =
        r#"[{"question":"q1","answer":"a1"},{"question":"q2","answer":"a2"},{"question":"q3"}]"#;
    let (items, _) = run("x/q.json", doc.as_bytes(), "format = \"question_answer\"");
    let parts: Vec<(u64, u32)> = items
        .iter()
        .map(|i| match i {
            Item::Record(r) => (r.line, r.part),
            Item::Quarantined(q) => (q.line, q.part),
        })
        .collect();
    assert_eq!(parts, vec![(1, 0), (1, 1), (1, 2)]);
}

#[test]
fn a_configured_group_key_must_be_present() {
    let src = "{\"sid\": \"s1\", \"prompt\": \"p\", \"response\": \"r\"}\n{\"prompt\": \"p\", \"response\": \"r\"}\n{\"sid\": \"\", \"prompt\": \"p\", \"response\": \"r\"}\n";
    let (items, _) = run(
        "x/p.jsonl",
        src.as_bytes(),
        "format = \"prompt_response\"\ngroup_by = \"sid\"",
    );
    assert_eq!(records(&items).len(), 1);
    assert_eq!(
        quarantined(&items),
        vec![(2, Reason::MissingField), (3, Reason::WrongType)]
    );
}

#[test]
fn ragged_csv_rows_and_non_numeric_utterance_indexes_are_quarantined() {
    let entry = "format = \"csv_columns\"\nfields = { user = \"q\", assistant = \"a\" }";
    let (items, _) = run("x/c.csv", b"q,a\nfine,ok\nan, unquoted, comma\n", entry);
    assert_eq!(quarantined(&items), vec![(3, Reason::InvalidCsvRow)]);
    let entry = "format = \"utterance_csv\"\nfields = { conversation = \"c\", order = \"o\", speaker = \"s\", text = \"t\" }";
    let (items, _) = run(
        "x/u.csv",
        b"c,o,s,t\n1,first,client,hi\n1,2,therapist,hello\n",
        entry,
    );
    assert_eq!(quarantined(&items), vec![(2, Reason::WrongType)]);
    // A bad row (invalid UTF-8) quarantines itself and makes its conversation incomplete.
    let (items, _) = run(
        "x/u.csv",
        b"c,o,s,t\n1,0,client,hi\n1,1,therapist,\xff\n2,0,client,a\n2,1,therapist,b\n",
        entry,
    );
    assert_eq!(
        quarantined(&items),
        vec![(3, Reason::InvalidUtf8), (2, Reason::InvalidCsvRow)]
    );
    assert_eq!(records(&items).len(), 1);
}

#[test]
fn a_truncated_json_document_keeps_what_came_before_and_fails_the_object() {
    let doc = "[{\"question\": \"q1\", \"answer\": \"a1\"},\n{\"question\": \"q2\", \"ans";
    let (items, summary) = run("x/q.json", doc.as_bytes(), "format = \"question_answer\"");
    assert_eq!(records(&items), vec![(1, ua("q1", "a1"))]);
    assert_eq!(quarantined(&items), vec![(2, Reason::BrokenStructure)]);
    assert!(summary.incomplete);
}

#[test]
fn csv_columns_with_multiline_cells_html_and_a_group_column() {
    let csv = "\u{feff}questionID,questionText,answerText\n\
               q1,\"Two\nlines\",\"<p>It&#39;s &quot;ok&quot;</p><p>Really.</p>\"\n\
               q2,short,plain\n";
    let entry = "format = \"csv_columns\"\nfields = { user = \"questionText\", assistant = \"answerText\" }\ngroup_by = \"questionID\"";
    let (items, _) = run("x/c.csv", csv.as_bytes(), entry);
    assert_eq!(
        records(&items),
        vec![
            (2, ua("Two\nlines", "It's \"ok\"\nReally.")),
            (4, ua("short", "plain"))
        ]
    );
    if let Item::Record(r) = &items[0] {
        assert_eq!(r.group.as_deref(), Some("q1"));
    }
    let (items, summary) = run("x/c.csv", b"a,b\n1,2\n", entry);
    assert_eq!(quarantined(&items), vec![(1, Reason::BrokenStructure)]);
    assert!(summary.incomplete, "a missing column fails the object");
}

#[test]
fn utterance_csv_groups_orders_collapses_annotator_repeats_and_refuses_conflicts() {
    let csv = "transcript_id,utterance_id,interlocutor,utterance_text\n\
               7,1,client,\"Sure.\"\n\
               7,0,therapist,Hello there\n\
               8,0,client,hi\n\
               7,1,client,\"Sure.\"\n\
               8,1,therapist,hey\n\
               9,0,client,one\n\
               9,0,client,two\n\
               9,1,therapist,x\n";
    let entry = "format = \"utterance_csv\"\nfields = { conversation = \"transcript_id\", order = \"utterance_id\", speaker = \"interlocutor\", text = \"utterance_text\" }";
    let (items, _) = run("x/u.csv", csv.as_bytes(), entry);
    assert_eq!(
        records(&items),
        vec![
            (
                2,
                vec![
                    (Role::Assistant, "Hello there".into()),
                    (Role::User, "Sure.".into())
                ]
            ),
            (4, ua("hi", "hey")),
        ]
    );
    assert_eq!(quarantined(&items), vec![(8, Reason::ConflictingRows)]);
}

#[test]
fn transcripts_are_chunked_before_user_turns_and_share_a_group() {
    let mut t = String::from("# Episode 1\n\n");
    for i in 0..6 {
        t.push_str(&format!(
            "Listener: question {i}\ncontinued\n\nHost: answer {i}\n\n"
        ));
    }
    let limits = Limits {
        transcript_chunk_turns: 4,
        ..Limits::default()
    };
    let entry = "format = \"text_transcript\"\nspeaker_roles = { Listener = \"user\", Host = \"assistant\" }";
    let (items, summary) = run_with("x/ep.txt", t.as_bytes(), entry, &limits);
    let recs = records(&items);
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0].0, 3);
    assert_eq!(recs[0].1[0], (Role::User, "question 0\ncontinued".into()));
    assert!(recs.iter().all(|r| r.1.len() == 4));
    assert!(
        items
            .iter()
            .all(|i| matches!(i, Item::Record(r) if r.group.as_deref() == Some("x/ep.txt")))
    );
    assert_eq!(summary.quarantined_total(), 0);
}

/// A reader that hands out bytes in the given chunk sizes.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: Vec<usize>,
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.sizes[self.i % self.sizes.len()]
            .max(1)
            .min(buf.len())
            .min(self.data.len());
        self.i += 1;
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn how_an_object_is_split_into_reads_and_lines_does_not_change_the_records(
        turns in proptest::collection::vec(("[a-z \"\\\\{}\\[\\],:]{0,12}", "[a-z \u{e9}\u{1F622}]{1,12}"), 1..12),
        sizes in proptest::collection::vec(1usize..64, 1..6),
    ) {
        let values: Vec<serde_json::Value> = turns
            .iter()
            .map(|(q, a)| serde_json::json!({"prompt": q, "response": a}))
            .collect();
        let jsonl: String = values.iter().map(|v| format!("{v}\n")).collect();
        let array = serde_json::to_string_pretty(&values).unwrap();
        let d = dataset("format = \"prompt_response\"");
        let collect = |key: &str, bytes: &[u8], sizes: Vec<usize>| {
            let mut out = Vec::new();
            adapt(Chunked { data: bytes, sizes, i: 0 }, key, &d, &Limits::default(), &mut |i| {
                if let Item::Record(r) = i { out.push(r.messages) } else { out.push(Vec::new()) }
            }).unwrap();
            out
        };
        let a = collect("x/p.jsonl", jsonl.as_bytes(), sizes.clone());
        let b = collect("x/p.jsonl", jsonl.as_bytes(), vec![1 << 20]);
        let c = collect("x/p.json", array.as_bytes(), sizes);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        prop_assert_eq!(a.len(), turns.len());
    }
}

// Issue 18: quoting that swallows rows, line ends, duplicate keys.

const QA_ENTRY: &str = "format = \"csv_columns\"\nfields = { user = \"q\", assistant = \"a\" }";

/// A `q,a` file of `rows` rows (lines 2..=rows+1), with `edit` applied to row `n`'s line.
fn csv_rows(rows: usize, edit: impl Fn(usize, String) -> String) -> String {
    let mut out = String::from("q,a\n");
    for n in 1..=rows {
        out.push_str(&edit(n, format!("question {n},answer {n}")));
        out.push('\n');
    }
    out
}

#[test]
fn a_stray_quote_in_the_last_column_fails_the_object_instead_of_merging_the_rows_after_it() {
    // Row 50 (line 51): `question 50,"answer 50` opens a quote that never closes.
    let src = csv_rows(100, |n, row| {
        if n == 50 {
            row.replace("answer", "\"answer")
        } else {
            row
        }
    });
    let (items, summary) = run("x/c.csv", src.as_bytes(), QA_ENTRY);
    assert_eq!(records(&items).len(), 49, "rows 1-49 are read");
    assert_eq!(quarantined(&items), vec![(51, Reason::BrokenStructure)]);
    assert!(summary.incomplete, "the source fails its bound");
    let detail = items
        .iter()
        .find_map(|i| match i {
            Item::Quarantined(q) => Some(q.detail.clone()),
            Item::Record(_) => None,
        })
        .unwrap();
    assert!(
        detail.contains("line 51") && detail.contains("lines 51-101"),
        "{detail}"
    );
    assert!(
        !detail.contains("answer"),
        "no content in details: {detail}"
    );
}

#[test]
fn a_stray_quote_closed_rows_later_by_another_quote_fails_the_object() {
    // Row 20 opens a quote; row 30 quotes its question, which closes it with text after.
    let src = csv_rows(40, |n, row| match n {
        20 => row.replace("answer", "\"answer"),
        30 => "\"question 30\",answer 30".to_string(),
        _ => row,
    });
    let (items, summary) = run("x/c.csv", src.as_bytes(), QA_ENTRY);
    assert_eq!(quarantined(&items), vec![(21, Reason::BrokenStructure)]);
    assert_eq!(records(&items).len(), 29, "rows 1-19 and 31-40");
    assert_eq!(records(&items).last().unwrap().0, 41);
    assert!(summary.incomplete);
}

#[test]
fn a_quote_not_doubled_inside_a_one_line_cell_quarantines_that_row_only() {
    let src = "q,a\nfine,\"she said \"no\" twice\"\nok,good\n\"multi\nline\",\"with \"\"doubled\"\" quotes\"\n";
    let (items, summary) = run("x/c.csv", src.as_bytes(), QA_ENTRY);
    assert_eq!(quarantined(&items), vec![(2, Reason::InvalidCsvRow)]);
    assert_eq!(
        records(&items),
        vec![
            (3, ua("ok", "good")),
            (4, ua("multi\nline", "with \"doubled\" quotes"))
        ]
    );
    assert!(!summary.incomplete);
}

#[test]
fn a_quoted_cell_longer_than_the_record_limit_stops_reading_and_fails_the_object() {
    let src = csv_rows(2000, |n, row| {
        if n == 3 {
            row.replace("answer", "\"answer")
        } else {
            row
        }
    });
    let limits = Limits {
        max_record_bytes: 1000,
        ..Limits::default()
    };
    let (items, summary) = run_with("x/c.csv", src.as_bytes(), QA_ENTRY, &limits);
    assert_eq!(records(&items).len(), 2);
    assert_eq!(quarantined(&items), vec![(4, Reason::BrokenStructure)]);
    assert!(summary.incomplete);
}

#[test]
fn cr_only_line_ends_separate_rows_lines_and_transcript_turns() {
    let (items, _) = run("x/c.csv", b"q,a\rq1,a1\rq2,\"a\r2\"\r\nq3,a3", QA_ENTRY);
    assert_eq!(
        records(&items),
        vec![
            (2, ua("q1", "a1")),
            (3, ua("q2", "a\n2")),
            (5, ua("q3", "a3"))
        ]
    );
    let line = "{\"prompt\": \"p\", \"response\": \"r\"}";
    let src = format!("{line}\r{line}\r\r{line}\r");
    let (items, summary) = run("x/p.jsonl", src.as_bytes(), "format = \"prompt_response\"");
    assert_eq!(
        records(&items),
        vec![(1, ua("p", "r")), (2, ua("p", "r")), (4, ua("p", "r"))]
    );
    assert_eq!(summary.quarantined_total(), 0);
    let (items, _) = run(
        "x/t.txt",
        b"User: hello\rAssistant: hi\rUser: bye\rAssistant: take care",
        "format = \"text_transcript\"",
    );
    assert_eq!(records(&items).len(), 1);
    let Item::Record(r) = &items[0] else {
        panic!("a record")
    };
    assert_eq!(r.messages.len(), 4);
}

#[test]
fn duplicate_json_keys_at_any_depth_are_quarantined() {
    let src = concat!(
        "{\"prompt\": \"p\", \"response\": \"r\", \"response\": \"other\"}\n",
        "{\"prompt\": \"p\", \"response\": \"r\", \"meta\": {\"a\": 1, \"a\": 2}}\n",
        "{\"prompt\": \"p\", \"response\": \"r\", \"resp\\u006fnse\": \"escaped twin\"}\n",
        "{\"prompt\": \"p\", \"response\": \"r\", \"meta\": [{\"a\": 1}, {\"a\": 2}]}\n",
    );
    let (items, summary) = run("x/p.jsonl", src.as_bytes(), "format = \"prompt_response\"");
    assert_eq!(
        quarantined(&items),
        vec![
            (1, Reason::DuplicateKey),
            (2, Reason::DuplicateKey),
            (3, Reason::DuplicateKey)
        ]
    );
    assert_eq!(records(&items), vec![(4, ua("p", "r"))]);
    assert_eq!(summary.quarantined["Q013 duplicate-key"], 3);
    let chat = r#"[{"messages": [{"role": "user", "content": "a", "content": "b"}, {"role": "assistant", "content": "c"}]}]"#;
    let (items, _) = run("x/c.json", chat.as_bytes(), "format = \"chatml\"");
    assert_eq!(quarantined(&items), vec![(1, Reason::DuplicateKey)]);
}

#[test]
fn a_zero_byte_object_fails_its_source_whatever_the_format() {
    for (key, entry) in [
        ("x/a.jsonl", "format = \"chatml\""),
        ("x/a.json", "format = \"chatml\""),
        ("x/a.csv", QA_ENTRY),
        (
            "x/u.csv",
            "format = \"utterance_csv\"\nfields = { conversation = \"c\", order = \"o\", speaker = \"s\", text = \"t\" }",
        ),
        ("x/t.txt", "format = \"text_transcript\""),
    ] {
        let (items, summary) = run(key, b"", entry);
        assert_eq!(
            quarantined(&items),
            vec![(1, Reason::BrokenStructure)],
            "{key}"
        );
        assert!(summary.incomplete, "{key}");
    }
}

// --- Field mapping (issue 19) -------------------------------------------------------------

const ESCONV: &str = "format = \"messages\"\n\
    fields = { messages = \"dialog\", role = \"speaker\", content = \"text\" }\n\
    speaker_roles = { usr = \"user\", sys = \"assistant\" }\n\
    source_fields = [\"emotion_type\", \"problem_type\", \"missing_one\"]";

fn details(items: &[Item]) -> Vec<(Reason, String)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Quarantined(q) => Some((q.reason, q.detail.clone())),
            Item::Record(_) => None,
        })
        .collect()
}

#[test]
fn esconv_dialogs_map_through_fields_and_speaker_roles_and_carry_only_named_fields() {
    let src = r#"[{"emotion_type": "anxiety", "problem_type": "job crisis", "situation": "free text", "seeker_id": 7,
      "dialog": [{"speaker": "usr", "text": "hi", "annotation": {}}, {"speaker": "sys", "text": "hello", "annotation": {"strategy": "Question"}}]}]"#;
    let (items, summary) = run("x/ESConv.json", src.as_bytes(), ESCONV);
    assert_eq!(records(&items), vec![(1, ua("hi", "hello"))]);
    assert_eq!(summary.quarantined_total(), 0);
    let Item::Record(r) = &items[0] else {
        panic!("a record")
    };
    assert_eq!(
        r.source_fields.keys().collect::<Vec<_>>(),
        ["emotion_type", "problem_type"],
        "named fields only; a missing one is left out"
    );
    assert_eq!(r.source_fields["emotion_type"], "anxiety");
}

#[test]
fn a_mis_mapped_role_is_quarantined_naming_the_value_and_never_guessed() {
    // `sys` is a built-in label for system; with speaker_roles the map is the whole truth.
    let src = "{\"dialog\": [{\"speaker\": \"seeker\", \"content\": \"hi\"}, {\"speaker\": \"supporter\", \"content\": \"yo\"}]}\n\
               {\"dialog\": [{\"speaker\": \"usr\", \"content\": \"hi\"}, {\"speaker\": \"sys\", \"content\": \"yo\"}]}\n\
               {\"dialog\": [{\"speaker\": \"I feel alone tonight and\", \"content\": \"x\"}]}\n";
    let entry = "format = \"messages\"\n\
        fields = { messages = \"dialog\", role = \"speaker\", content = \"content\" }\n\
        speaker_roles = { seeker = \"user\", supporter = \"assistant\" }";
    let (items, _) = run("x/a.jsonl", src.as_bytes(), entry);
    assert_eq!(records(&items), vec![(1, ua("hi", "yo"))]);
    let d = details(&items);
    assert_eq!(d[0].0, Reason::UnknownRole);
    assert_eq!(
        d[0].1,
        "dialog[0].speaker value \"usr\" is not in speaker_roles"
    );
    assert!(
        !d[1].1.contains("alone"),
        "text is never quoted: {}",
        d[1].1
    );
    assert!(d[1].1.contains("24-character value"), "{}", d[1].1);
}

#[test]
fn dotted_paths_reach_nested_turn_lists_pair_fields_and_source_fields() {
    let src = r#"{"meta": {"topic": "grief", "who": {"name": "x"}}, "conversation": {"turns": [{"author": "user", "text": "a"}, {"author": "bot", "text": "b"}]}}
{"meta": {"topic": "grief"}, "conversation": {}}
"#;
    let entry = "format = \"messages\"\n\
        fields = { messages = \"conversation.turns\", role = \"author\", content = \"text\" }\n\
        speaker_roles = { user = \"user\", bot = \"assistant\" }\n\
        source_fields = [\"meta.topic\"]";
    let (items, _) = run("x/a.jsonl", src.as_bytes(), entry);
    assert_eq!(records(&items), vec![(1, ua("a", "b"))]);
    let Item::Record(r) = &items[0] else {
        panic!("a record")
    };
    assert_eq!(r.source_fields["meta.topic"], "grief");
    assert_eq!(
        details(&items),
        vec![(
            Reason::MissingField,
            "field \"conversation.turns\" is missing".into()
        )]
    );
    // A structure named as a source field is refused, not copied.
    let entry = entry.replace("meta.topic", "meta.who");
    let (items, _) = run("x/a.jsonl", src.as_bytes(), &entry);
    assert_eq!(quarantined(&items)[0], (1, Reason::WrongType));

    let pairs =
        "{\"Context\": \"c\", \"Response\": \"r\"}\n{\"q\": {\"body\": \"c\"}, \"a\": \"r\"}\n";
    let (items, _) = run(
        "x/p.jsonl",
        pairs.as_bytes(),
        "format = \"pair\"\nfields = { user = \"Context\", assistant = \"Response\" }",
    );
    assert_eq!(records(&items), vec![(1, ua("c", "r"))]);
    assert_eq!(
        details(&items),
        vec![(Reason::MissingField, "field \"Context\" is missing".into())]
    );
    let (items, _) = run(
        "x/p.jsonl",
        pairs.as_bytes(),
        "format = \"pair\"\nfields = { user = \"q.body\", assistant = \"a\" }",
    );
    assert_eq!(records(&items), vec![(2, ua("c", "r"))]);
}

#[test]
fn chatml_and_sharegpt_keys_can_be_renamed_and_numeric_speakers_mapped() {
    let src = "{\"turns\": [{\"speaker\": 0, \"utterance\": \"a\"}, {\"speaker\": 1, \"utterance\": \"b\"}]}\n";
    let entry = "format = \"chatml\"\n\
        fields = { messages = \"turns\", role = \"speaker\", content = \"utterance\" }\n\
        speaker_roles = { \"0\" = \"user\", \"1\" = \"assistant\" }";
    let (items, _) = run("x/a.jsonl", src.as_bytes(), entry);
    assert_eq!(records(&items), vec![(1, ua("a", "b"))]);
}

#[test]
fn the_mapping_is_validated_when_the_registry_loads() {
    let load = |entry: &str| {
        let text = format!(
            "schema_version = 1\n[families.f]\nstage = \"stage1_x\"\nreview = [\"clinician_foundation\"]\n\n\
             [[datasets]]\nname = \"d\"\nfamily = \"f\"\ninclude = [\"x/\"]\n{entry}\n"
        );
        Registry::parse(Path::new("t.toml"), &text, String::new())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let msg = load("format = \"messages\"\nfields = { messages = \"dialog\" }");
    assert!(
        msg.contains("t.toml:6: datasets[0].fields.role: format messages needs fields.role"),
        "{msg}"
    );
    assert!(msg.contains("fields.content"), "{msg}");
    let msg = load("format = \"pair\"\nfields = { user = \"Context\" }");
    assert!(msg.contains("datasets[0].fields.assistant"), "{msg}");
    let msg = load(
        "format = \"csv_columns\"\nfields = { user = \"q\", assistant = \"a\", messages = \"m\" }",
    );
    assert!(
        msg.contains("fields.messages names a key of a list of turns"),
        "{msg}"
    );
    let msg = load("format = \"chatml\"\nfields = { messages = \"conversation..turns\" }");
    assert!(msg.contains("no segment may be empty"), "{msg}");
    let msg = load(
        "format = \"messages\"\nfields = { messages = \"dialog\", role = \"speaker\", content = \"text\" }\n\
                    source_fields = [\"emotion_type\", \"dialog.0\", \"emotion_type\"]",
    );
    assert!(
        msg.contains(
            "t.toml:12: datasets[0].source_fields: \"dialog.0\" is (or holds) the conversation"
        ),
        "{msg}"
    );
    assert!(msg.contains("\"emotion_type\" is listed twice"), "{msg}");
    let msg = load(
        "format = \"pair\"\nfields = { user = \"Context\", assistant = \"Response\" }\nsource_fields = [\"Context\"]",
    );
    assert!(msg.contains("conversation field \"Context\""), "{msg}");
    let msg = load(
        "format = \"utterance_csv\"\nfields = { conversation = \"c\", order = \"o\", speaker = \"s\", text = \"t\" }\nsource_fields = [\"topic\"]",
    );
    assert!(msg.contains("format utterance_csv has none"), "{msg}");
    let msg = load("format = \"chatml\"\nfields = { user = \"u\" }");
    assert!(
        msg.contains("fields.user names the field of one exchange"),
        "{msg}"
    );
}

// --- Compressed sources (issue 19) -----------------------------------------------------------

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_and_zstd_objects_read_like_their_plain_bytes_in_every_container() {
    let jsonl =
        "{\"prompt\": \"p\", \"response\": \"r\"}\n{\"prompt\": \"q\", \"response\": \"s\"}\n";
    let doc = "[{\"prompt\": \"p\", \"response\": \"r\"}]";
    let csv = "q,a\n\"multi\nline\",ok\n";
    let cases: [(&str, &str, &str); 3] = [
        ("x/a.jsonl", jsonl, "format = \"prompt_response\""),
        ("x/a.json", doc, "format = \"prompt_response\""),
        (
            "x/a.csv",
            csv,
            "format = \"csv_columns\"\nfields = { user = \"q\", assistant = \"a\" }",
        ),
    ];
    for (key, plain, entry) in cases {
        let (want, _) = run(key, plain.as_bytes(), entry);
        assert!(!records(&want).is_empty());
        let gz = gzip(plain.as_bytes());
        let zs = zstd::encode_all(plain.as_bytes(), 3).unwrap();
        for (k, bytes) in [
            (format!("{key}.gz"), &gz),
            (format!("{key}.zst"), &zs),
            // By magic bytes alone.
            (key.to_string(), &gz),
        ] {
            let (got, summary) = run(&k, bytes, entry);
            assert_eq!(got, want, "{k}");
            assert!(!summary.incomplete, "{k}");
        }
    }
}

#[test]
fn a_corrupt_compressed_stream_is_quarantined_naming_the_key_after_what_it_held() {
    let body: String = (0..3000)
        .map(|i| format!("{{\"prompt\": \"p{i}\", \"response\": \"r{i}\"}}\n"))
        .collect();
    let gz = gzip(body.as_bytes());
    let cut = &gz[..gz.len() * 2 / 3];
    let (items, summary) = run("x/part.jsonl.gz", cut, "format = \"prompt_response\"");
    assert!(summary.incomplete);
    let q = details(&items);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].0, Reason::BrokenStructure);
    assert!(
        q[0].1
            .starts_with("x/part.jsonl.gz: the gzip stream is corrupt or truncated after "),
        "{}",
        q[0].1
    );
    assert!(summary.records > 0 && summary.records < 3000);
    // Not gzip at all, though the key says so; and a gzip of nothing is an empty object.
    let (items, _) = run(
        "x/a.jsonl.gz",
        b"{\"prompt\": 1}\n",
        "format = \"prompt_response\"",
    );
    assert_eq!(quarantined(&items), vec![(1, Reason::BrokenStructure)]);
    let (items, summary) = run("x/a.jsonl.gz", &gzip(b""), "format = \"prompt_response\"");
    assert!(summary.incomplete);
    assert!(details(&items)[0].1.contains("empty"));
}
