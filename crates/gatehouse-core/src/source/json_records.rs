//! JSON-shaped sources: JSON Lines, or one JSON document holding an array of records.
//! Each record is mapped to messages according to the dataset's format.

use std::io::{self, BufRead};

use serde_json::Value;

use super::json_path;
use super::json_stream::{Element, JsonElements, ScanError};
use super::{
    Item, Limits, Reason, SourceFields, finish, quarantine, with_part, with_source_fields,
};
use crate::record::{Message, Role};
use crate::registry::{Dataset, PairMapping, SourceFormat, TurnMapping};
use crate::store::{Line, LineReader};

pub(super) fn adapt_lines(
    reader: impl BufRead,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<()> {
    let mut lines = LineReader::new(reader, limits.max_record_bytes);
    while let Some(line) = lines.next_line()? {
        match line {
            Line::Oversized { number, len } => emit(quarantine(
                number,
                Reason::OversizedRecord,
                format!("{len} bytes, limit {}", limits.max_record_bytes),
            )),
            Line::Text { number, bytes } => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue; // blank lines separate nothing in JSON Lines
                }
                emit(record(number, bytes, dataset, limits));
            }
        }
    }
    Ok(())
}

pub(super) fn adapt_document(
    reader: impl BufRead,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<()> {
    let wrapper = dataset.fields.records.as_deref();
    let broken = |e: ScanError, emit: &mut dyn FnMut(Item)| -> io::Result<()> {
        match e {
            ScanError::Io(e) => Err(e),
            ScanError::Structure(s) => {
                emit(quarantine(s.line, Reason::BrokenStructure, s.message));
                Ok(())
            }
        }
    };
    let mut elements = match JsonElements::open(reader, wrapper, limits.max_record_bytes) {
        Ok(e) => e,
        Err(e) => return broken(e, emit),
    };
    // Several elements can start on one line (a minified array): number them within it so
    // every record keeps its own id and locator.
    let (mut last_line, mut part) = (0u64, 0u32);
    let mut next_part = |line: u64| {
        part = if line == last_line { part + 1 } else { 0 };
        last_line = line;
        part
    };
    loop {
        match elements.next_element() {
            Ok(None) => break,
            Ok(Some(Element::Oversized { line, len })) => emit(with_part(
                quarantine(
                    line,
                    Reason::OversizedRecord,
                    format!("{len} bytes, limit {}", limits.max_record_bytes),
                ),
                next_part(line),
            )),
            Ok(Some(Element::Value { line, bytes })) => {
                let part = next_part(line);
                emit(with_part(record(line, bytes, dataset, limits), part));
            }
            Err(e) => return broken(e, emit),
        }
    }
    match elements.finish(wrapper.is_some()) {
        Ok(()) => Ok(()),
        Err(e) => broken(e, emit),
    }
}

/// One JSON record's bytes → an item.
fn record(line: u64, bytes: &[u8], dataset: &Dataset, limits: &Limits) -> Item {
    if std::str::from_utf8(bytes).is_err() {
        return quarantine(line, Reason::InvalidUtf8, "the record is not valid UTF-8");
    }
    if unique_keys::has_duplicate(bytes) {
        return quarantine(
            line,
            Reason::DuplicateKey,
            "an object in the record has the same key twice",
        );
    }
    if let Some((group, messages)) = fast::parse(bytes, dataset) {
        return finish(line, 0, group, messages, limits.merge);
    }
    record_slow(line, bytes, dataset, limits)
}

/// The exact path: a full `Value` tree, precise quarantine reasons.
fn record_slow(line: u64, bytes: &[u8], dataset: &Dataset, limits: &Limits) -> Item {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return quarantine(
                line,
                Reason::InvalidJson,
                format!("invalid JSON at column {}", e.column()),
            );
        }
    };
    let Value::Object(obj) = value else {
        return quarantine(line, Reason::NotAnObject, "the record is not a JSON object");
    };
    object_item(line, obj, dataset, limits)
}

type Problem = (Reason, String);
type Object = serde_json::Map<String, Value>;

/// Takes a required text field out of the record (no copy).
fn text_field(obj: &mut Object, name: &str) -> Result<String, Problem> {
    match json_path::take(obj, name) {
        None | Some(Value::Null) => {
            Err((Reason::MissingField, format!("field {name:?} is missing")))
        }
        Some(v) => {
            content(v).ok_or_else(|| (Reason::WrongType, format!("field {name:?} is not text")))
        }
    }
}

fn optional_text(obj: &mut Object, name: &str) -> Result<Option<String>, Problem> {
    match json_path::get(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text_field(obj, name).map(Some),
    }
}

/// Message content: a string, or a list of `{type: "text", text}` parts (joined).
fn content(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        Value::Array(parts) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                match p {
                    Value::String(s) => out.push(s),
                    Value::Object(mut o) => match o.remove("text") {
                        Some(Value::String(s)) => out.push(s),
                        _ => return None,
                    },
                    _ => return None,
                }
            }
            Some(out.join("\n"))
        }
        _ => None,
    }
}

fn turn_list(
    obj: &mut Object,
    dataset: &Dataset,
    map: TurnMapping<'_>,
) -> Result<Vec<Message>, Problem> {
    let list = map.list;
    let items = match json_path::take(obj, list) {
        None | Some(Value::Null) => {
            return Err((Reason::MissingField, format!("field {list:?} is missing")));
        }
        Some(Value::Array(items)) => items,
        Some(_) => return Err((Reason::WrongType, format!("field {list:?} is not a list"))),
    };
    let (role_key, text_key) = (map.role, map.content);
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut turn) = item else {
            return Err((Reason::WrongType, format!("{list}[{i}] is not an object")));
        };
        let label = match json_path::get(&turn, role_key) {
            Some(Value::String(label)) => std::borrow::Cow::Borrowed(label.as_str()),
            // Numeric speaker ids (0/1) are labels too: `speaker_roles = { "0" = "user" }`.
            Some(Value::Number(n)) => std::borrow::Cow::Owned(n.to_string()),
            None | Some(Value::Null) => {
                return Err((
                    Reason::MissingField,
                    format!("{list}[{i}].{role_key} is missing"),
                ));
            }
            Some(_) => {
                return Err((
                    Reason::WrongType,
                    format!("{list}[{i}].{role_key} is not text"),
                ));
            }
        };
        let Some(role) = dataset.turn_role(&label) else {
            return Err((
                Reason::UnknownRole,
                unknown_role(dataset, list, i, role_key, &label),
            ));
        };
        let text = match json_path::take(&mut turn, text_key) {
            None | Some(Value::Null) => {
                return Err((
                    Reason::MissingField,
                    format!("{list}[{i}].{text_key} is missing"),
                ));
            }
            Some(v) => content(v).ok_or_else(|| {
                (
                    Reason::WrongType,
                    format!("{list}[{i}].{text_key} is not text"),
                )
            })?,
        };
        out.push(Message::new(role, text));
    }
    Ok(out)
}

/// The quarantine detail of a speaker label with no role: the label is named when it looks
/// like one (short, no spaces), so a mis-mapped key cannot copy text into the report.
pub(super) fn unknown_role(
    dataset: &Dataset,
    list: &str,
    i: usize,
    key: &str,
    label: &str,
) -> String {
    let shown = super::shown_label(label);
    if dataset.speaker_roles.is_empty() {
        format!("{list}[{i}].{key} value {shown} is not a known role; map it with speaker_roles")
    } else {
        format!("{list}[{i}].{key} value {shown} is not in speaker_roles")
    }
}

fn pair(obj: &mut Object, map: PairMapping<'_>) -> Result<Vec<Message>, Problem> {
    let mut out = Vec::with_capacity(3);
    if let Some(system) = map.system
        && let Some(s) = optional_text(obj, system)?
    {
        out.push(Message::new(Role::System, s));
    }
    out.push(Message::new(Role::User, text_field(obj, map.user)?));
    out.push(Message::new(
        Role::Assistant,
        text_field(obj, map.assistant)?,
    ));
    Ok(out)
}

fn messages(obj: &mut Object, dataset: &Dataset) -> Result<Vec<Message>, Problem> {
    if let Some(map) = dataset.turn_mapping() {
        return turn_list(obj, dataset, map);
    }
    if let Some(map) = dataset.pair_mapping() {
        return pair(obj, map);
    }
    match dataset.format {
        SourceFormat::Alpaca => {
            let instruction = text_field(obj, "instruction")?;
            let input = optional_text(obj, "input")?.unwrap_or_default();
            let user = if input.trim().is_empty() {
                instruction
            } else {
                format!("{instruction}\n\n{input}")
            };
            Ok(vec![
                Message::new(Role::User, user),
                Message::new(Role::Assistant, text_field(obj, "output")?),
            ])
        }
        _ => Err((
            Reason::WrongType,
            format!("format {} is not a JSON format", dataset.format),
        )),
    }
}

/// The record's `source_fields`: only the listed paths, and only scalar values. A missing
/// or null field is left out; a list or object quarantines the record (the mapping is wrong,
/// and a structure could hold anything).
pub(super) fn source_fields(obj: &Object, dataset: &Dataset) -> Result<SourceFields, Problem> {
    let mut out = SourceFields::new();
    for path in &dataset.source_fields {
        match json_path::get(obj, path) {
            None | Some(Value::Null) => {}
            Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                out.insert(path.clone(), v.clone());
            }
            Some(_) => {
                return Err((
                    Reason::WrongType,
                    format!(
                        "source field {path:?} is a list or an object; only text, numbers and \
                         booleans are carried"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// One JSON object (a record, or a Parquet row converted to one) → an item.
pub(super) fn object_item(line: u64, mut obj: Object, dataset: &Dataset, limits: &Limits) -> Item {
    // A configured group key must be there: without it, chunks of one conversation could
    // land in different splits.
    let group = match dataset.group_by.as_deref() {
        None => None,
        Some(g) => match obj.get(g) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            None | Some(Value::Null) => {
                return quarantine(
                    line,
                    Reason::MissingField,
                    format!("group_by field {g:?} is missing"),
                );
            }
            Some(_) => {
                return quarantine(
                    line,
                    Reason::WrongType,
                    format!("group_by field {g:?} is not a non-empty string or number"),
                );
            }
        },
    };
    let fields = match source_fields(&obj, dataset) {
        Ok(f) => f,
        Err((reason, detail)) => return quarantine(line, reason, detail),
    };
    match messages(&mut obj, dataset) {
        Ok(messages) => with_source_fields(finish(line, 0, group, messages, limits.merge), fields),
        Err((reason, detail)) => quarantine(line, reason, detail),
    }
}

/// Finds a key repeated within one JSON object, at any depth. serde_json (like most readers)
/// keeps the last value silently, another reader may keep the first: such a record means
/// different things to different tools. One pass over the record, no values kept.
mod unique_keys {
    use std::cell::Cell;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

    /// True when the record is valid JSON and some object in it repeats a key. (Invalid
    /// JSON is for the parsers to quarantine.)
    pub(super) fn has_duplicate(bytes: &[u8]) -> bool {
        let found = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let _ = Check(&found).deserialize(&mut de);
        found.get()
    }

    #[derive(Clone, Copy)]
    struct Check<'a>(&'a Cell<bool>);

    impl<'de> DeserializeSeed<'de> for Check<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    /// A key as text, borrowed when it has no escapes.
    struct Key;

    impl<'de> DeserializeSeed<'de> for Key {
        type Value = std::borrow::Cow<'de, str>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for Key {
        type Value = std::borrow::Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(v.into())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.to_string().into())
        }
    }

    impl<'de> Visitor<'de> for Check<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut keys: Vec<std::borrow::Cow<'de, str>> = Vec::new();
            while let Some(key) = map.next_key_seed(Key)? {
                if keys.contains(&key) {
                    self.0.set(true);
                    return Err(de::Error::custom("duplicate key"));
                }
                keys.push(key);
                map.next_value_seed(self)?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(self)?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
}

/// The fast path for well-formed records: a borrowed top-level map and typed turns, with no
/// `Value` tree. It returns `None` on anything unusual (a missing or odd field, an unknown
/// role, escaped keys, content given as parts), and the exact path above then decides, with
/// its precise quarantine reasons. Both paths give the same messages for the same record.
mod fast {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::value::RawValue;

    use crate::record::{Message, Role};
    use crate::registry::{Dataset, PairMapping, SourceFormat};

    #[derive(Deserialize)]
    struct ChatTurn {
        role: String,
        content: String,
    }

    #[derive(Deserialize)]
    struct ShareTurn {
        from: String,
        value: String,
    }

    fn text(map: &BTreeMap<&str, &RawValue>, name: &str) -> Option<String> {
        serde_json::from_str::<String>(map.get(name)?.get()).ok()
    }

    fn optional(map: &BTreeMap<&str, &RawValue>, name: &str) -> Option<Option<String>> {
        match map.get(name) {
            None => Some(None),
            Some(raw) if raw.get() == "null" => Some(None),
            Some(raw) => serde_json::from_str::<String>(raw.get()).ok().map(Some),
        }
    }

    fn turns(
        dataset: &Dataset,
        pairs: impl Iterator<Item = (String, String)>,
    ) -> Option<Vec<Message>> {
        pairs
            .map(|(label, content)| Some(Message::new(dataset.turn_role(&label)?, content)))
            .collect()
    }

    pub(super) fn parse(bytes: &[u8], dataset: &Dataset) -> Option<(Option<String>, Vec<Message>)> {
        // Renamed turn keys and carried fields are for the exact path.
        if !dataset.default_turn_keys() || !dataset.source_fields.is_empty() {
            return None;
        }
        if let Some(p) = dataset.pair_mapping()
            && [Some(p.user), Some(p.assistant), p.system]
                .into_iter()
                .flatten()
                .any(|k| k.contains('.'))
        {
            return None;
        }
        let map: BTreeMap<&str, &RawValue> = serde_json::from_slice(bytes).ok()?;
        let group = match dataset.group_by.as_deref() {
            None => None,
            Some(g) => {
                let raw = map.get(g)?.get();
                if raw.starts_with('"') {
                    let s: String = serde_json::from_str(raw).ok()?;
                    (!s.trim().is_empty()).then_some(s)?.into()
                } else {
                    match serde_json::from_str::<serde_json::Value>(raw).ok()? {
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => return None,
                    }
                }
            }
        };
        let pair = |p: PairMapping<'_>| -> Option<Vec<Message>> {
            let mut out = Vec::with_capacity(3);
            if let Some(system) = p.system
                && let Some(s) = optional(&map, system)?
            {
                out.push(Message::new(Role::System, s));
            }
            out.push(Message::new(Role::User, text(&map, p.user)?));
            out.push(Message::new(Role::Assistant, text(&map, p.assistant)?));
            Some(out)
        };
        let messages = match dataset.format {
            SourceFormat::Chatml => {
                let list: Vec<ChatTurn> = serde_json::from_str(map.get("messages")?.get()).ok()?;
                turns(dataset, list.into_iter().map(|t| (t.role, t.content)))?
            }
            SourceFormat::Sharegpt => {
                let list: Vec<ShareTurn> =
                    serde_json::from_str(map.get("conversations")?.get()).ok()?;
                turns(dataset, list.into_iter().map(|t| (t.from, t.value)))?
            }
            SourceFormat::PromptResponse
            | SourceFormat::InputOutput
            | SourceFormat::QuestionAnswer
            | SourceFormat::Pair => pair(dataset.pair_mapping()?)?,
            SourceFormat::Alpaca => {
                let instruction = text(&map, "instruction")?;
                let input = optional(&map, "input")?.unwrap_or_default();
                let user = if input.trim().is_empty() {
                    instruction
                } else {
                    format!("{instruction}\n\n{input}")
                };
                vec![
                    Message::new(Role::User, user),
                    Message::new(Role::Assistant, text(&map, "output")?),
                ]
            }
            _ => return None,
        };
        Some((group, messages))
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    fn dataset(format: &str, group: bool) -> Dataset {
        let text = format!(
            "schema_version = 1\n[families.f]\nstage = \"stage1_x\"\nreview = [\"clinician_foundation\"]\n\
             [[datasets]]\nname = \"d\"\nfamily = \"f\"\ninclude = [\"x/\"]\nformat = \"{format}\"\n{}",
            if group { "group_by = \"sid\"\n" } else { "" }
        );
        crate::registry::Registry::parse(Path::new("t"), &text, String::new())
            .unwrap()
            .datasets
            .remove(0)
    }

    fn text_value() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            "[a-z \"\\\\\u{e9}]{0,8}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            any::<i32>().prop_map(serde_json::Value::from),
            "[a-z]{0,5}".prop_map(|s| serde_json::json!([{"type": "text", "text": s}])),
        ]
    }

    fn role() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just("user".into()),
            Just("assistant".into()),
            Just("human".into()),
            Just("gpt".into()),
            Just("system".into()),
            Just("narrator".into()),
            Just(serde_json::Value::Null),
        ]
    }

    proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_exact_path(
            turns in proptest::collection::vec((role(), text_value()), 0..5),
            prompt in text_value(),
            response in text_value(),
            sid in prop_oneof![Just(None), Just(Some(serde_json::json!(""))), Just(Some(serde_json::json!(7))), "[a-z]{1,4}".prop_map(|s| Some(serde_json::json!(s)))],
            group in any::<bool>(),
        ) {
            let mut chat = serde_json::json!({
                "messages": turns.iter().map(|(r, c)| serde_json::json!({"role": r, "content": c})).collect::<Vec<_>>(),
                "conversations": turns.iter().map(|(r, c)| serde_json::json!({"from": r, "value": c})).collect::<Vec<_>>(),
                "prompt": prompt, "response": response,
                "instruction": prompt, "input": response, "output": response,
                "question": prompt, "answer": response,
                "extra": {"nested": [1, 2, {"a": "b"}]},
            });
            if let Some(s) = sid {
                chat["sid"] = s;
            }
            let bytes = serde_json::to_vec(&chat).unwrap();
            for format in ["chatml", "sharegpt", "prompt_response", "alpaca", "question_answer"] {
                let d = dataset(format, group);
                let limits = Limits::default();
                prop_assert_eq!(record(1, &bytes, &d, &limits), record_slow(1, &bytes, &d, &limits), "{}", format);
            }
        }
    }
}
