//! How a JSON-family record (a JSON or JSONL record, or a Parquet row) maps onto a
//! conversation: a list of turns with a role key and a content key, or the fields of one
//! exchange. Each built-in format has default keys; `fields` overrides them, and the generic
//! `messages` and `pair` formats have none, so every key is named in the registry.
//!
//! Paths are dotted (`conversation.turns`): each segment is a key of a nested object. A key
//! that itself contains a dot is found as written first.

use super::{Dataset, Fields, SourceFormat};
use crate::record::Role;

/// Where a record keeps its turns and what a turn's keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnMapping<'a> {
    /// Path of the list of turns.
    pub list: &'a str,
    /// Path of the role or speaker inside a turn.
    pub role: &'a str,
    /// Path of the text inside a turn.
    pub content: &'a str,
}

/// The fields of a one-exchange record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairMapping<'a> {
    pub system: Option<&'a str>,
    pub user: &'a str,
    pub assistant: &'a str,
}

impl SourceFormat {
    /// Default (list, role, content) keys of the list formats; empty where there is none.
    fn turn_keys(self) -> Option<[&'static str; 3]> {
        match self {
            SourceFormat::Chatml => Some(["messages", "role", "content"]),
            SourceFormat::Sharegpt => Some(["conversations", "from", "value"]),
            SourceFormat::Messages => Some(["", "", ""]),
            _ => None,
        }
    }

    /// Default (user, assistant) keys of the one-exchange formats.
    fn pair_keys(self) -> Option<[&'static str; 2]> {
        match self {
            SourceFormat::PromptResponse => Some(["prompt", "response"]),
            SourceFormat::InputOutput => Some(["input", "output"]),
            SourceFormat::QuestionAnswer => Some(["question", "answer"]),
            SourceFormat::Pair => Some(["", ""]),
            _ => None,
        }
    }

    /// Whether records are JSON-shaped (JSON, JSON Lines or Parquet rows), as opposed to CSV
    /// rows or text.
    pub fn is_json_family(self) -> bool {
        !matches!(
            self,
            SourceFormat::CsvColumns | SourceFormat::UtteranceCsv | SourceFormat::TextTranscript
        )
    }
}

impl Dataset {
    /// The turn mapping of a list format (`chatml`, `sharegpt`, `messages`).
    pub fn turn_mapping(&self) -> Option<TurnMapping<'_>> {
        let [list, role, content] = self.format.turn_keys()?;
        let f = &self.fields;
        Some(TurnMapping {
            list: f.messages.as_deref().unwrap_or(list),
            role: f.role.as_deref().unwrap_or(role),
            content: f.content.as_deref().unwrap_or(content),
        })
    }

    /// True when the turn keys are the format's built-in ones.
    pub fn default_turn_keys(&self) -> bool {
        let f = &self.fields;
        f.messages.is_none() && f.role.is_none() && f.content.is_none()
    }

    /// The field mapping of a one-exchange format (`prompt_response`, `input_output`,
    /// `question_answer`, `pair`).
    pub fn pair_mapping(&self) -> Option<PairMapping<'_>> {
        let [user, assistant] = self.format.pair_keys()?;
        let f = &self.fields;
        Some(PairMapping {
            system: f.system.as_deref(),
            user: f.user.as_deref().unwrap_or(user),
            assistant: f.assistant.as_deref().unwrap_or(assistant),
        })
    }

    /// The role of a turn's speaker label in a list format. With `speaker_roles` the map is
    /// the whole truth (a label it does not name has no role: it is never guessed); without
    /// it, the common labels are recognised (`Role::from_label`).
    pub fn turn_role(&self, label: &str) -> Option<Role> {
        if self.speaker_roles.is_empty() {
            Role::from_label(label)
        } else {
            self.speaker_roles
                .get(label)
                .and_then(|r| Role::from_label(r))
        }
    }
}

/// The segments of a dotted path.
pub fn path_segments(path: &str) -> std::str::Split<'_, char> {
    path.split('.')
}

fn valid_path(path: &str) -> bool {
    !path.is_empty() && path_segments(path).all(|s| !s.trim().is_empty())
}

/// Whether one path is the other or lies inside it.
fn overlaps(a: &str, b: &str) -> bool {
    let inside = |x: &str, y: &str| x.strip_prefix(y).is_some_and(|r| r.starts_with('.'));
    a == b || inside(a, b) || inside(b, a)
}

/// Problems with a dataset's field mapping, as (`field`, message).
pub(super) fn check(
    format: SourceFormat,
    fields: &Fields,
    source_fields: &[String],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let turn_keys = [
        ("messages", &fields.messages),
        ("role", &fields.role),
        ("content", &fields.content),
    ];
    for (key, value) in turn_keys {
        let Some(value) = value else { continue };
        if format.turn_keys().is_none() {
            out.push((
                format!("fields.{key}"),
                format!(
                    "fields.{key} names a key of a list of turns: it applies to formats chatml, \
                     sharegpt and messages, not {format}"
                ),
            ));
        } else if !valid_path(value) {
            out.push((format!("fields.{key}"), bad_path(value)));
        }
    }
    let pair_keys = [
        ("user", &fields.user),
        ("assistant", &fields.assistant),
        ("system", &fields.system),
    ];
    for (key, value) in pair_keys {
        let Some(value) = value else { continue };
        if format.turn_keys().is_some() || format == SourceFormat::Alpaca {
            out.push((
                format!("fields.{key}"),
                format!(
                    "fields.{key} names the field of one exchange: it applies to formats pair, \
                     prompt_response, input_output, question_answer and csv_columns, not {format}"
                ),
            ));
        } else if format.pair_keys().is_some() && !valid_path(value) {
            out.push((format!("fields.{key}"), bad_path(value)));
        }
    }
    if source_fields.is_empty() {
        return out;
    }
    if !format.is_json_family() {
        out.push((
            "source_fields".into(),
            format!(
                "source_fields are read from JSON, JSON Lines and Parquet records; format \
                 {format} has none"
            ),
        ));
        return out;
    }
    // The conversation's own fields: carrying them as metadata would copy the text past
    // the redaction of messages into a second place.
    let conversation: Vec<&str> = match format.turn_keys() {
        Some([list, ..]) => vec![fields.messages.as_deref().unwrap_or(list)],
        None => match format.pair_keys() {
            Some([user, assistant]) => [
                Some(fields.user.as_deref().unwrap_or(user)),
                Some(fields.assistant.as_deref().unwrap_or(assistant)),
                fields.system.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect(),
            None => vec!["instruction", "input", "output"],
        },
    };
    for (i, path) in source_fields.iter().enumerate() {
        if !valid_path(path) {
            out.push(("source_fields".into(), bad_path(path)));
        } else if source_fields[..i].contains(path) {
            out.push(("source_fields".into(), format!("{path:?} is listed twice")));
        } else if let Some(c) = conversation
            .iter()
            .find(|c| !c.is_empty() && overlaps(path, c))
        {
            out.push((
                "source_fields".into(),
                format!(
                    "{path:?} is (or holds) the conversation field {c:?}; source_fields carry \
                     labels such as emotion_type, never the conversation"
                ),
            ));
        }
    }
    out
}

fn bad_path(path: &str) -> String {
    format!(
        "{path:?} is not a key or a dotted path of keys (`dialog`, `conversation.turns`): no \
         segment may be empty"
    )
}
