//! Shapes of samples read row by row: a CSV's columns, a transcript's speaker labels.

use std::collections::BTreeMap;

use super::{
    ASSISTANT_KEYS, Proposal, SYSTEM_KEYS, USER_KEYS, empty, label_like, map_roles, role_of_label,
    shown_key, usable_key,
};
use crate::registry::SourceFormat;

const CONVERSATION_COLUMNS: &[&str] = &[
    "conversation_id",
    "conv_id",
    "dialog_id",
    "dialogue_id",
    "session_id",
    "transcript_id",
    "conversation",
    "dialog",
    "dialogue",
    "session",
];
const ORDER_COLUMNS: &[&str] = &[
    "turn",
    "turn_id",
    "turn_index",
    "utterance_id",
    "utterance_index",
    "index",
    "order",
    "seq",
    "position",
];
const SPEAKER_COLUMNS: &[&str] = &["speaker", "role", "author", "from", "interlocutor"];
const TEXT_COLUMNS: &[&str] = &["text", "utterance", "utterance_text", "content", "message"];

fn column<'a>(header: &'a [String], names: &[&str]) -> Option<&'a String> {
    names.iter().find_map(|want| {
        header
            .iter()
            .find(|h| h.to_ascii_lowercase() == *want && usable_key(h))
    })
}

pub(super) fn from_csv(header: &[String], rows: &[Vec<String>]) -> Result<Proposal, String> {
    let utterance = (
        column(header, CONVERSATION_COLUMNS),
        column(header, ORDER_COLUMNS),
        column(header, SPEAKER_COLUMNS),
        column(header, TEXT_COLUMNS),
    );
    if let (Some(conv), Some(order), Some(speaker), Some(text)) = utterance {
        let mut p = empty(
            format!(
                "one utterance per CSV row (conversation {}, order {}, speaker {}, text {})",
                shown_key(conv),
                shown_key(order),
                shown_key(speaker),
                shown_key(text)
            ),
            SourceFormat::UtteranceCsv,
        );
        p.fields.conversation = Some(conv.clone());
        p.fields.order = Some(order.clone());
        p.fields.speaker = Some(speaker.clone());
        p.fields.text = Some(text.clone());
        let at = header.iter().position(|h| h == speaker).unwrap_or(0);
        let mut values = BTreeMap::new();
        for r in rows {
            if let Some(v) = r.get(at) {
                *values.entry(v.trim().to_string()).or_insert(0) += 1;
            }
        }
        map_roles(&values, &mut p);
        return Ok(p);
    }
    let user = column(header, USER_KEYS);
    let assistant = column(header, ASSISTANT_KEYS);
    match (user, assistant) {
        (Some(u), Some(a)) => {
            let mut p = empty(
                format!(
                    "one exchange per CSV row (user column {}, assistant column {})",
                    shown_key(u),
                    shown_key(a)
                ),
                SourceFormat::CsvColumns,
            );
            p.emit_roles = false;
            p.fields.user = Some(u.clone());
            p.fields.assistant = Some(a.clone());
            p.fields.system = column(header, SYSTEM_KEYS).cloned();
            Ok(p)
        }
        _ if header.iter().any(|h| !shown_key(h).starts_with('"')) => Err(format!(
            "a CSV of {} columns whose first row does not look like a header (the CSV formats \
             need one naming the columns)",
            header.len()
        )),
        _ => Err(format!(
            "a CSV whose columns name no user/assistant pair and no utterance layout; columns: {}",
            header
                .iter()
                .map(|h| shown_key(h))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

pub(super) fn from_transcript(lines: &[String]) -> Result<Proposal, String> {
    let mut labels: BTreeMap<String, usize> = BTreeMap::new();
    for l in lines {
        if let Some((label, _)) = l.split_once(':') {
            let label = label.trim();
            if !label.is_empty() && label.len() <= 40 {
                *labels.entry(label.to_string()).or_insert(0) += 1;
            }
        }
    }
    // A label is one that starts at least two lines, or a known one; other `x:` lines read
    // as text (a URL, a time).
    labels.retain(|l, n| (*n >= 2 && label_like(l)) || role_of_label(l).is_some());
    if labels.is_empty() {
        return Err("plain text without `Speaker: text` lines".into());
    }
    let mut p = empty(
        format!("a text transcript with {} speaker label(s)", labels.len()),
        SourceFormat::TextTranscript,
    );
    map_roles(&labels, &mut p);
    if !p.undecided_roles.is_empty() {
        p.notes.push(
            "in a transcript, a line whose label is not in speaker_roles is read as part of \
             the previous turn, not quarantined: map every speaker"
                .into(),
        );
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_layouts_and_transcripts() {
        let h = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = from_csv(&h(&["questionText", "answerText"]), &[]).unwrap();
        assert_eq!(p.format, SourceFormat::CsvColumns);
        let rows = vec![
            h(&["1", "0", "Therapist", "hi"]),
            h(&["1", "1", "Client", "hey"]),
        ];
        let p = from_csv(&h(&["conversation_id", "turn", "speaker", "text"]), &rows).unwrap();
        assert_eq!(p.format, SourceFormat::UtteranceCsv);
        assert_eq!(p.speaker_roles.len(), 2);
        let headerless = h(&["I have not slept properly in weeks and I worry", "ok"]);
        let why = from_csv(&headerless, &[]).unwrap_err();
        assert!(
            !why.contains("slept") && why.contains("does not look like a header"),
            "{why}"
        );
        let t = h(&[
            "# Title",
            "Host: hello",
            "Guest: hi",
            "Host: so",
            "Guest: yes",
        ]);
        let p = from_transcript(&t).unwrap();
        assert_eq!(p.undecided_roles, ["\"Guest\"", "\"Host\""]);
    }
}
