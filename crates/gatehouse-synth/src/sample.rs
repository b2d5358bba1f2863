//! The bundled sample store: all five Release-0 families in several source formats, plus a
//! folder no dataset claims. `cargo xtask sample` writes it to `examples/sample-store`; a
//! test checks the committed copy is exactly what the generator produces.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::formats::{self, Eol};
use crate::{Corpus, Family};

/// Seed of the bundled sample store.
pub const SAMPLE_SEED: u64 = 20_261_125;

/// How many conversations each sample object holds.
#[derive(Debug, Clone, Copy)]
pub struct SampleSize {
    pub per_object: u64,
}

impl Default for SampleSize {
    fn default() -> Self {
        Self { per_object: 24 }
    }
}

fn create(root: &Path, key: &str) -> io::Result<BufWriter<fs_err::File>> {
    let path = root.join(key);
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    Ok(BufWriter::new(fs_err::File::create(path)?))
}

/// Every key the sample store holds, with what it is; documents the layout.
pub const LAYOUT: &[(&str, &str)] = &[
    (
        "sources/professional/sessions/part-000.jsonl",
        "ChatML JSONL, LF",
    ),
    (
        "sources/professional/sessions/part-001.jsonl",
        "ChatML JSONL, CRLF",
    ),
    (
        "sources/professional/counselling_qa.csv",
        "CSV with named columns, multi-line cells, HTML",
    ),
    (
        "sources/professional/mi_transcripts.csv",
        "utterance-per-row CSV",
    ),
    (
        "sources/priority/curated_alpaca.json",
        "Alpaca records wrapped in {\"data\": [...]}",
    ),
    ("sources/priority/pairs.jsonl", "prompt/response JSONL"),
    ("sources/cot/clinical_reasoning.jsonl", "input/output JSONL"),
    (
        "sources/cot/case_questions.json",
        "question/answer JSON array",
    ),
    ("sources/edge/crisis_sharegpt.json", "ShareGPT JSON array"),
    (
        "sources/voice/transcripts/episode-01.txt",
        "plain-text transcript",
    ),
    (
        "sources/voice/transcripts/episode-02.txt",
        "plain-text transcript",
    ),
    (
        "sources/voice/transcripts/episode-03.txt",
        "plain-text transcript",
    ),
    (
        "incoming/unsorted/notes.jsonl",
        "ChatML JSONL that no dataset claims",
    ),
];

/// Writes the sample store under `root` (which should be empty).
pub fn write_sample_store(root: &Path, size: SampleSize) -> io::Result<()> {
    let corpus = Corpus::new(SAMPLE_SEED);
    let n = size.per_object;
    let range = |part: u64| part * n..(part + 1) * n;

    for (part, eol) in [(0, Eol::Lf), (1, Eol::CrLf)] {
        let key = format!("sources/professional/sessions/part-{part:03}.jsonl");
        let mut w = create(root, &key)?;
        for i in range(part) {
            formats::chatml_jsonl(
                &mut w,
                &corpus.conversation(Family::ProfessionalTherapeutic, i),
                eol,
            )?;
        }
        w.flush()?;
    }

    let mut w = create(root, "sources/professional/counselling_qa.csv")?;
    writeln!(w, "{}", formats::QA_CSV_HEADER)?;
    for i in range(2) {
        formats::qa_csv_row(
            &mut w,
            i,
            &corpus.conversation(Family::ProfessionalTherapeutic, i),
        )?;
    }
    w.flush()?;

    let mut w = create(root, "sources/professional/mi_transcripts.csv")?;
    writeln!(w, "{}", formats::UTTERANCE_CSV_HEADER)?;
    for (t, i) in range(3).enumerate() {
        let c = corpus.conversation(Family::ProfessionalTherapeutic, i);
        formats::utterance_csv_rows(&mut w, t as u64, &c)?;
    }
    w.flush()?;

    let mut w = create(root, "sources/priority/curated_alpaca.json")?;
    formats::json_array(
        &mut w,
        range(0).map(|i| formats::alpaca_value(&corpus.conversation(Family::PriorityDatasets, i))),
        Some("data"),
    )?;
    w.flush()?;

    let mut w = create(root, "sources/priority/pairs.jsonl")?;
    for i in range(1) {
        formats::prompt_response_jsonl(
            &mut w,
            &corpus.conversation(Family::PriorityDatasets, i),
            Eol::Lf,
        )?;
    }
    w.flush()?;

    let mut w = create(root, "sources/cot/clinical_reasoning.jsonl")?;
    for i in range(0) {
        formats::input_output_jsonl(
            &mut w,
            &corpus.conversation(Family::CotReasoning, i),
            Eol::Lf,
        )?;
    }
    w.flush()?;

    let mut w = create(root, "sources/cot/case_questions.json")?;
    formats::json_array(
        &mut w,
        range(1)
            .map(|i| formats::question_answer_value(&corpus.conversation(Family::CotReasoning, i))),
        None,
    )?;
    w.flush()?;

    let mut w = create(root, "sources/edge/crisis_sharegpt.json")?;
    formats::json_array(
        &mut w,
        range(0).map(|i| formats::sharegpt_value(&corpus.conversation(Family::EdgeCases, i))),
        None,
    )?;
    w.flush()?;

    for episode in 1..=3u64 {
        let key = format!("sources/voice/transcripts/episode-{episode:02}.txt");
        let mut w = create(root, &key)?;
        let c = corpus.conversation(Family::VoicePersona, episode);
        formats::transcript_txt(&mut w, &format!("Episode {episode}"), &c)?;
        w.flush()?;
    }

    let mut w = create(root, "incoming/unsorted/notes.jsonl")?;
    for i in 0..3 {
        formats::chatml_jsonl(
            &mut w,
            &corpus.conversation(Family::ProfessionalTherapeutic, 1000 + i),
            Eol::Lf,
        )?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let key = p
                        .strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    out.push((key, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn writes_exactly_the_documented_layout_deterministically() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write_sample_store(a.path(), SampleSize::default()).unwrap();
        write_sample_store(b.path(), SampleSize::default()).unwrap();
        let fa = files(a.path());
        assert_eq!(fa, files(b.path()));
        let mut keys: Vec<&str> = fa.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        let mut documented: Vec<&str> = LAYOUT.iter().map(|(k, _)| *k).collect();
        documented.sort_unstable();
        assert_eq!(keys, documented);
    }

    #[test]
    fn json_sources_parse() {
        let dir = tempfile::tempdir().unwrap();
        write_sample_store(dir.path(), SampleSize::default()).unwrap();
        for key in [
            "sources/priority/curated_alpaca.json",
            "sources/cot/case_questions.json",
            "sources/edge/crisis_sharegpt.json",
        ] {
            let bytes = std::fs::read(dir.path().join(key)).unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap();
        }
        let crlf = std::fs::read(
            dir.path()
                .join("sources/professional/sessions/part-001.jsonl"),
        )
        .unwrap();
        for l in crlf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            assert!(l.ends_with(b"\r"));
            serde_json::from_slice::<serde_json::Value>(&l[..l.len() - 1]).unwrap();
        }
    }
}
