//! Plain-text transcripts (voice persona): `Speaker: text` lines, continuation lines belong
//! to the current speaker, `#` lines are titles. A transcript is chunked into records of
//! about `transcript_chunk_turns` turns, cut before a user turn; all chunks of one object
//! share the object key as their group, so they never straddle splits. Lines end at `\n`,
//! `\r\n` or a lone `\r`, as in [`crate::store::LineReader`].

use std::io::{self, BufRead};

use super::{Item, Limits, Reason, finish, quarantine, read_bounded};
use crate::record::{Message, Role};
use crate::registry::Dataset;

pub(super) fn adapt(
    reader: impl BufRead,
    key: &str,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<()> {
    let Some(bytes) = read_bounded(reader, limits.max_buffered_object_bytes)? else {
        emit(quarantine(
            1,
            Reason::BrokenStructure,
            format!(
                "the transcript is larger than max_buffered_object_bytes ({})",
                limits.max_buffered_object_bytes
            ),
        ));
        return Ok(());
    };
    let Ok(text) = String::from_utf8(bytes) else {
        emit(quarantine(
            1,
            Reason::InvalidUtf8,
            "the transcript is not valid UTF-8",
        ));
        return Ok(());
    };
    let text = text.trim_start_matches('\u{feff}');

    // (line, role, text) per turn.
    let mut turns: Vec<(u64, Role, String)> = Vec::new();
    for (i, l) in physical_lines(text).enumerate() {
        let line = i as u64 + 1;
        if l.trim().is_empty() {
            if let Some(t) = turns.last_mut()
                && !t.2.ends_with("\n\n")
            {
                t.2.push_str("\n\n");
            }
            continue;
        }
        if l.starts_with('#') && turns.is_empty() {
            continue; // a title
        }
        let speaker = l.split_once(':').and_then(|(label, rest)| {
            let label = label.trim();
            (label.len() <= 40).then_some(())?;
            let role = dataset
                .speaker_roles
                .get(label)
                .and_then(|r| Role::from_label(r))
                .or_else(|| {
                    dataset
                        .speaker_roles
                        .is_empty()
                        .then(|| Role::from_label(label))
                        .flatten()
                })?;
            Some((role, rest.trim_start()))
        });
        match (speaker, turns.last_mut()) {
            (Some((role, rest)), _) => turns.push((line, role, rest.to_string())),
            (None, Some(t)) => {
                if !t.2.is_empty() && !t.2.ends_with('\n') {
                    t.2.push('\n');
                }
                t.2.push_str(l.trim());
            }
            (None, None) => emit(quarantine(
                line,
                Reason::UnknownRole,
                "text before the first speaker label",
            )),
        }
    }

    let chunk = limits.transcript_chunk_turns.max(2);
    let mut current: Vec<(u64, Message)> = Vec::new();
    let flush = |current: &mut Vec<(u64, Message)>, emit: &mut dyn FnMut(Item)| {
        if current.is_empty() {
            return;
        }
        let line = current[0].0;
        let messages = current.drain(..).map(|(_, m)| m).collect();
        emit(finish(
            line,
            0,
            Some(key.to_string()),
            messages,
            limits.merge,
        ));
    };
    for (line, role, text) in turns {
        if current.len() >= chunk && role == Role::User {
            flush(&mut current, emit);
        }
        current.push((line, Message::new(role, text.trim().to_string())));
    }
    flush(&mut current, emit);
    Ok(())
}

/// The lines of `text`, ending at `\n`, `\r\n` or a lone `\r` (like `str::lines`, no empty
/// line after a final line end).
fn physical_lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if b == b'\n' || b == b'\r' {
                let line = &text[start..i - 1];
                if b == b'\r' && bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
                start = i;
                return Some(line);
            }
        }
        (start < bytes.len()).then(|| {
            let line = &text[start..];
            start = bytes.len();
            line
        })
    })
}
