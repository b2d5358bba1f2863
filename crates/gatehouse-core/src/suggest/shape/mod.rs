//! Recognising a sample's shape: which format reads it, with which `fields` and
//! `speaker_roles`. Judged from key names, value types and, for roles, the vocabulary of a
//! few short distinct values; never from what the text says. Whatever it cannot decide is a
//! note for a human, never a guess.

mod rows;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::sample::Body;
use crate::registry::{Fields, SourceFormat};
use crate::source::Container;
use rows::{from_csv, from_transcript};

/// A proposed mapping for one shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proposal {
    /// What was recognised, in words (key names only).
    pub shape: String,
    pub format: SourceFormat,
    /// Set when the container differs from what the key's extension says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    pub fields: Fields,
    /// Observed speaker labels mapped by known vocabulary.
    pub speaker_roles: BTreeMap<String, String>,
    /// Whether the entry must carry `speaker_roles` (a list format whose built-in role
    /// reading would differ, or any format with named speakers).
    #[serde(skip)]
    pub emit_roles: bool,
    /// Speaker values no known label maps: each needs a human's decision.
    pub undecided_roles: Vec<String>,
    /// Scalar fields outside the conversation (path → value types), for `source_fields`.
    pub scalar_fields: BTreeMap<String, String>,
    /// Decisions a human must make about the mapping.
    pub notes: Vec<String>,
}

/// A speaker label's role by common vocabulary; `None` means a human decides.
pub fn role_of_label(label: &str) -> Option<&'static str> {
    let l = label.trim().to_ascii_lowercase().replace(['_', '-'], " ");
    Some(match l.as_str() {
        "user" | "usr" | "seeker" | "help seeker" | "client" | "patient" | "human" | "customer"
        | "speaker 1" | "speaker1" | "person" => "user",
        "assistant" | "sys" | "supporter" | "therapist" | "counselor" | "counsellor" | "gpt"
        | "bot" | "ai" | "chatgpt" | "model" => "assistant",
        "system" => "system",
        _ => return None,
    })
}

/// A value short and plain enough to be a speaker label, so it may be printed (as the
/// build's Q006 reason prints one): 1 to 24 ASCII letters, digits, spaces, `_`, `-`, `.`.
pub fn label_like(s: &str) -> bool {
    (1..=24).contains(&s.len())
        && s.trim() == s
        && s.split_whitespace().count() <= 3
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.'))
}

/// A key name as it may be printed: as written when it looks like a key, else described.
/// A key with spaces is shown only when short (at most 3 words, 32 characters): a longer
/// one is more likely text (a CSV without a header row) than a name.
pub fn shown_key(k: &str) -> String {
    let spaced = k.contains(' ');
    let plain = (1..=64).contains(&k.len())
        && (!spaced || (k.len() <= 32 && k.split_whitespace().count() <= 3 && k.trim() == k))
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '@' | '$'));
    if plain {
        format!("{k:?}")
    } else {
        format!("(a {}-character key)", k.chars().count())
    }
}

fn usable_key(k: &str) -> bool {
    shown_key(k).starts_with('"') && !k.contains('.')
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "text",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

const ROLE_KEYS: &[&str] = &[
    "role",
    "speaker",
    "from",
    "author",
    "sender",
    "interlocutor",
];
const CONTENT_KEYS: &[&str] = &["content", "text", "value", "utterance", "message", "body"];
const USER_KEYS: &[&str] = &[
    "context",
    "query",
    "question",
    "prompt",
    "input",
    "instruction",
    "human",
    "user",
    "patient",
    "client",
    "seeker",
    "post",
    "request",
    "questiontext",
];
const ASSISTANT_KEYS: &[&str] = &[
    "response",
    "reply",
    "answer",
    "output",
    "assistant",
    "therapist",
    "counselor",
    "gpt",
    "bot",
    "completion",
    "answertext",
    "target",
];
const SYSTEM_KEYS: &[&str] = &["system", "system_prompt"];

/// What a sample's records look like; `Err` says why no shape was recognised (key names
/// and value types only).
pub fn recognise(body: &Body, key: &str) -> Result<Proposal, String> {
    match body {
        Body::Json {
            records,
            container,
            wrapper,
        } => {
            let objects: Vec<&Map<String, Value>> = records
                .iter()
                .filter_map(|r| r.as_ref().and_then(Value::as_object))
                .collect();
            let mut p = from_objects(&objects)?;
            p.fields.records = wrapper.clone();
            let by_key = if crate::source::compression::inner_key(key)
                .to_ascii_lowercase()
                .ends_with(".json")
            {
                Container::Json
            } else {
                Container::Jsonl
            };
            if by_key != *container {
                p.container = Some(*container);
            }
            Ok(p)
        }
        Body::Parquet(sample) => {
            let objects: Vec<&Map<String, Value>> = sample.rows.iter().collect();
            let mut p = from_objects(&objects)?;
            for (column, ty) in &sample.unreadable_columns {
                p.notes.push(format!(
                    "column {} has type {ty}, which gatehouse does not read (leave it out of \
                     the mapping)",
                    shown_key(column)
                ));
            }
            Ok(p)
        }
        Body::Csv { header, rows } => from_csv(header, rows),
        Body::Text { lines } => from_transcript(lines),
    }
}

/// Per-key statistics over a set of objects.
#[derive(Debug, Default)]
struct KeyStats {
    seen: usize,
    strings: usize,
    numbers: usize,
    chars: usize,
    max_chars: usize,
    /// Distinct short values (label candidates), capped.
    distinct: BTreeMap<String, usize>,
    many: bool,
}

const MAX_DISTINCT: usize = 16;

impl KeyStats {
    fn add(&mut self, v: &Value) {
        self.seen += 1;
        let s = match v {
            Value::String(s) => {
                self.strings += 1;
                s.clone()
            }
            Value::Number(n) => {
                self.numbers += 1;
                n.to_string()
            }
            _ => return,
        };
        let n = s.chars().count();
        self.chars += n;
        self.max_chars = self.max_chars.max(n);
        if !self.many {
            *self.distinct.entry(s).or_insert(0) += 1;
            if self.distinct.len() > MAX_DISTINCT {
                self.many = true;
                self.distinct.clear();
            }
        }
    }

    fn mean_chars(&self) -> usize {
        self.chars / self.strings.max(1)
    }

    fn is_role_like(&self, of: usize) -> bool {
        self.strings + self.numbers >= (of * 9).div_ceil(10)
            && !self.many
            && !self.distinct.is_empty()
            && self.max_chars <= 32
    }
}

fn stats<'a>(objects: impl Iterator<Item = &'a Map<String, Value>>) -> BTreeMap<String, KeyStats> {
    let mut out: BTreeMap<String, KeyStats> = BTreeMap::new();
    for o in objects {
        for (k, v) in o {
            if usable_key(k) {
                out.entry(k.clone()).or_default().add(v);
            }
        }
    }
    out
}

/// Paths (dotted, through objects) of lists of objects, with how many records hold each.
fn turn_lists(
    obj: &Map<String, Value>,
    prefix: &str,
    depth: usize,
    out: &mut BTreeMap<String, usize>,
) {
    for (k, v) in obj {
        if !usable_key(k) {
            continue;
        }
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                *out.entry(path).or_insert(0) += 1;
            }
            Value::Object(inner) if depth < 3 => turn_lists(inner, &path, depth + 1, out),
            _ => {}
        }
    }
}

fn get<'v>(obj: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut segments = path.split('.');
    let mut v = obj.get(segments.next()?)?;
    for s in segments {
        v = v.as_object()?.get(s)?;
    }
    Some(v)
}

/// Scalar fields (dotted paths through objects) outside the conversation, with their types.
fn scalars(objects: &[&Map<String, Value>], skip: &[&str]) -> BTreeMap<String, String> {
    fn walk(
        obj: &Map<String, Value>,
        prefix: &str,
        depth: usize,
        skip: &[&str],
        out: &mut BTreeMap<String, (BTreeSet<&'static str>, usize, usize)>,
    ) {
        for (k, v) in obj {
            if !usable_key(k) {
                continue;
            }
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if skip.iter().any(|s| *s == path) {
                continue;
            }
            match v {
                Value::Object(inner) if depth < 3 => walk(inner, &path, depth + 1, skip, out),
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    let e = out.entry(path).or_default();
                    e.0.insert(type_name(v));
                    if let Value::String(s) = v {
                        e.1 += s.chars().count();
                        e.2 += 1;
                    }
                }
                _ => {}
            }
        }
    }
    let mut found = BTreeMap::new();
    for o in objects {
        walk(o, "", 0, skip, &mut found);
    }
    found
        .into_iter()
        .map(|(path, (types, chars, n))| {
            let mut t = types.into_iter().collect::<Vec<_>>().join(" or ");
            if n > 0 && chars / n > 64 {
                t.push_str(" (long: free text, not a label)");
            }
            (path, t)
        })
        .collect()
}

/// Maps observed speaker values: known labels to roles, the rest listed for a decision.
fn map_roles(values: &BTreeMap<String, usize>, p: &mut Proposal) {
    for value in values.keys() {
        match (label_like(value), role_of_label(value)) {
            (true, Some(role)) => {
                p.speaker_roles.insert(value.clone(), role.to_string());
            }
            (true, None) => p.undecided_roles.push(format!("{value:?}")),
            (false, _) => p.undecided_roles.push(format!(
                "(a {}-character value that is not a label)",
                value.chars().count()
            )),
        }
    }
}

fn empty(shape: String, format: SourceFormat) -> Proposal {
    Proposal {
        shape,
        format,
        container: None,
        fields: Fields::default(),
        speaker_roles: BTreeMap::new(),
        emit_roles: true,
        undecided_roles: Vec::new(),
        scalar_fields: BTreeMap::new(),
        notes: Vec::new(),
    }
}

fn from_objects(objects: &[&Map<String, Value>]) -> Result<Proposal, String> {
    if objects.is_empty() {
        return Err("no sampled record is a JSON object".into());
    }
    let mut lists = BTreeMap::new();
    for o in objects {
        turn_lists(o, "", 0, &mut lists);
    }
    // The list most records hold (the shortest path on a tie).
    if let Some((path, _)) = lists.iter().max_by(|a, b| {
        a.1.cmp(b.1)
            .then(b.0.len().cmp(&a.0.len()))
            .then(b.0.cmp(a.0))
    }) && let Some(p) = from_turns(objects, path)
    {
        return Ok(p);
    }
    from_pair(objects)
}

fn from_turns(objects: &[&Map<String, Value>], path: &str) -> Option<Proposal> {
    let turns: Vec<&Map<String, Value>> = objects
        .iter()
        .filter_map(|o| get(o, path)?.as_array())
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let keys = stats(turns.iter().copied());
    let n = turns.len();
    let role = keys
        .iter()
        .filter(|(_, s)| s.is_role_like(n))
        .min_by_key(|(k, s)| {
            (
                !ROLE_KEYS.contains(&k.to_ascii_lowercase().as_str()),
                s.distinct.len(),
                k.as_str(),
            )
        })?
        .0
        .clone();
    let content = keys
        .iter()
        .filter(|(k, s)| **k != role && s.strings * 2 >= n && s.mean_chars() > 0)
        .max_by_key(|(k, s)| {
            (
                CONTENT_KEYS.contains(&k.to_ascii_lowercase().as_str()),
                s.mean_chars(),
            )
        })?
        .0
        .clone();
    let (format, defaults) = match (path, role.as_str(), content.as_str()) {
        ("messages", "role", "content") => (SourceFormat::Chatml, true),
        ("conversations", "from", "value") => (SourceFormat::Sharegpt, true),
        _ => (SourceFormat::Messages, false),
    };
    let mut p = empty(
        format!(
            "a list of turns under {} (speaker {}, text {})",
            shown_key(path),
            shown_key(&role),
            shown_key(&content)
        ),
        format,
    );
    if !defaults {
        p.fields.messages = Some(path.to_string());
        p.fields.role = Some(role.clone());
        p.fields.content = Some(content.clone());
    }
    map_roles(&keys[&role].distinct, &mut p);
    // The built-in formats read common labels without speaker_roles; keep it out when that
    // reading agrees with the vocabulary here (and every value is decided).
    p.emit_roles = !defaults
        || !p.undecided_roles.is_empty()
        || p.speaker_roles.iter().any(|(label, role)| {
            crate::record::Role::from_label(label).map(|r| r.as_str()) != Some(role.as_str())
        });
    let missing = objects.len() - objects.iter().filter(|o| get(o, path).is_some()).count();
    if missing > 0 {
        p.notes.push(format!(
            "{missing} sampled record(s) have no {} list",
            shown_key(path)
        ));
    }
    p.scalar_fields = scalars(objects, &[path]);
    Some(p)
}

fn find_key<'a>(keys: &'a BTreeMap<String, KeyStats>, names: &[&str], n: usize) -> Option<&'a str> {
    names.iter().find_map(|want| {
        keys.iter()
            .find(|(k, s)| k.to_ascii_lowercase() == *want && s.strings * 2 >= n)
            .map(|(k, _)| k.as_str())
    })
}

fn from_pair(objects: &[&Map<String, Value>]) -> Result<Proposal, String> {
    let keys = stats(objects.iter().copied());
    let n = objects.len();
    let has = |k: &str| keys.get(k).is_some_and(|s| s.strings * 2 >= n);
    let builtin = if has("instruction") && has("output") {
        Some((SourceFormat::Alpaca, "instruction", "output"))
    } else if has("prompt") && has("response") {
        Some((SourceFormat::PromptResponse, "prompt", "response"))
    } else if has("input") && has("output") {
        Some((SourceFormat::InputOutput, "input", "output"))
    } else if has("question") && has("answer") {
        Some((SourceFormat::QuestionAnswer, "question", "answer"))
    } else {
        None
    };
    let (format, user, assistant, guessed) = match builtin {
        Some((f, u, a)) => (f, u.to_string(), a.to_string(), false),
        None => {
            let user = find_key(&keys, USER_KEYS, n);
            let assistant = find_key(&keys, ASSISTANT_KEYS, n);
            match (user, assistant) {
                (Some(u), Some(a)) => (SourceFormat::Pair, u.to_string(), a.to_string(), false),
                _ => {
                    // Two free-text fields and nothing to tell them apart by name.
                    let texts: Vec<&String> = keys
                        .iter()
                        .filter(|(_, s)| s.strings * 2 >= n && s.mean_chars() >= 20)
                        .map(|(k, _)| k)
                        .collect();
                    if texts.len() != 2 {
                        return Err(format!(
                            "no list of turns and no pair of text fields; keys seen: {}",
                            describe_keys(objects)
                        ));
                    }
                    (SourceFormat::Pair, texts[0].clone(), texts[1].clone(), true)
                }
            }
        }
    };
    let mut p = empty(
        format!(
            "one exchange per record (user {}, assistant {})",
            shown_key(&user),
            shown_key(&assistant)
        ),
        format,
    );
    p.emit_roles = false;
    if format == SourceFormat::Pair {
        p.fields.user = Some(user.clone());
        p.fields.assistant = Some(assistant.clone());
    }
    let system = (format != SourceFormat::Alpaca)
        .then(|| find_key(&keys, SYSTEM_KEYS, n))
        .flatten();
    if let Some(s) = system {
        p.fields.system = Some(s.to_string());
    }
    if guessed {
        p.notes.push(format!(
            "the user and assistant fields were told apart by nothing but their order: \
             confirm {} is the user's turn and {} the assistant's",
            shown_key(&user),
            shown_key(&assistant)
        ));
    }
    let mut used: Vec<&str> = vec![&user, &assistant];
    if format == SourceFormat::Alpaca {
        used.push("input");
    }
    used.extend(system);
    p.scalar_fields = scalars(objects, &used);
    Ok(p)
}

/// Key names and value types of the records' top-level keys, for a "not recognised" note.
fn describe_keys(objects: &[&Map<String, Value>]) -> String {
    let mut types: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for o in objects {
        for (k, v) in *o {
            types.entry(shown_key(k)).or_default().insert(type_name(v));
        }
    }
    if types.is_empty() {
        return "none".into();
    }
    types
        .into_iter()
        .map(|(k, t)| format!("{k} ({})", t.into_iter().collect::<Vec<_>>().join(" or ")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects(values: &[Value]) -> Vec<&Map<String, Value>> {
        values.iter().filter_map(Value::as_object).collect()
    }

    #[test]
    fn esconv_turns_are_found_by_types_and_vocabulary() {
        let records = [
            json!({"emotion_type": "anxiety", "situation": "x", "dialog": [
                {"speaker": "usr", "text": "a much longer message here", "annotation": {}},
                {"speaker": "sys", "text": "another long message here", "annotation": {"strategy": "Question"}},
                {"speaker": "narrator", "text": "more text"}]}),
        ];
        let p = from_objects(&objects(&records)).unwrap();
        assert_eq!(p.format, SourceFormat::Messages);
        assert_eq!(p.fields.messages.as_deref(), Some("dialog"));
        assert_eq!(p.fields.role.as_deref(), Some("speaker"));
        assert_eq!(p.fields.content.as_deref(), Some("text"));
        assert_eq!(p.speaker_roles["usr"], "user");
        assert_eq!(p.speaker_roles["sys"], "assistant");
        assert_eq!(p.undecided_roles, ["\"narrator\""]);
        assert!(p.scalar_fields.contains_key("emotion_type"));
        assert!(!p.scalar_fields.contains_key("dialog"));
    }

    #[test]
    fn chatml_keeps_its_builtin_keys_and_pairs_are_named() {
        let chat = [json!({"id": 1, "messages": [
            {"role": "user", "content": "hello there friend"},
            {"role": "assistant", "content": "hello to you as well"}]})];
        let p = from_objects(&objects(&chat)).unwrap();
        assert_eq!((p.format, p.emit_roles), (SourceFormat::Chatml, false));
        assert_eq!(p.fields, Fields::default());

        let pairs = [json!({"Context": "a question", "Response": "an answer"})];
        let p = from_objects(&objects(&pairs)).unwrap();
        assert_eq!(p.format, SourceFormat::Pair);
        assert_eq!(p.fields.user.as_deref(), Some("Context"));
        assert_eq!(p.fields.assistant.as_deref(), Some("Response"));

        let alpaca = [json!({"instruction": "do", "input": "", "output": "done"})];
        assert_eq!(
            from_objects(&objects(&alpaca)).unwrap().format,
            SourceFormat::Alpaca
        );
    }

    #[test]
    fn nothing_recognised_names_keys_and_types_only() {
        let odd = [json!({"a": 1, "b": [1, 2]})];
        let why = from_objects(&objects(&odd)).unwrap_err();
        assert!(
            why.contains("\"a\" (number)") && why.contains("\"b\" (list)"),
            "{why}"
        );
    }
}
