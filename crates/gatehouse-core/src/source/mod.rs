//! Source adapters: read one source object in its own format and turn it into canonical
//! conversations, or quarantine what cannot be turned into one, with a reason code and
//! `key:line`. Quarantine is a finding, not an error: an adapter fails (returns `Err`) only
//! when the object itself cannot be read.
//!
//! Every adapter streams. Memory is bounded by [`Limits`]: the largest record, and for
//! formats that must gather rows first (utterance CSV, transcripts), the largest object.

pub mod compression;
mod csv_source;
mod json_path;
mod json_records;
pub mod json_stream;
mod markup;
pub mod parquet;
mod text;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use crate::record::{MergePolicy, Message, Role, normalise};
use crate::registry::Dataset;
use crate::report::Code;
use crate::report::codes::quarantine;
use compression::{Compression, Decompressed};

pub use markup::strip_html;

pub use crate::registry::Container;

/// Memory and policy bounds for adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest record (JSON line or array element, CSV row) read; larger ones are quarantined.
    pub max_record_bytes: usize,
    /// Largest object read whole (utterance CSV, transcripts); larger ones fail the source.
    pub max_buffered_object_bytes: u64,
    /// Consecutive same-role turns.
    pub merge: MergePolicy,
    /// Turns per record when a transcript is chunked.
    pub transcript_chunk_turns: usize,
}

impl Limits {
    /// Longest line of an exported shard: a record holds at most `max_record_bytes` of
    /// source text, escaped (at most doubled), plus metadata.
    pub fn max_export_line(&self) -> usize {
        self.max_record_bytes
            .saturating_mul(2)
            .saturating_add(1 << 20)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_record_bytes: 64 << 20,
            max_buffered_object_bytes: 512 << 20,
            merge: MergePolicy::Merge,
            transcript_chunk_turns: 8,
        }
    }
}

/// Why a record was quarantined. Codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    InvalidUtf8,
    InvalidJson,
    NotAnObject,
    MissingField,
    WrongType,
    UnknownRole,
    EmptyConversation,
    NoAssistantTurn,
    OversizedRecord,
    BrokenStructure,
    ConflictingRows,
    InvalidCsvRow,
    /// A JSON object holds the same key twice: which value counts is up to the reader, so
    /// the record is ambiguous.
    DuplicateKey,
    /// The build's PII redaction did not reach a fixpoint (a scan of the redacted text still
    /// found identifiers): the record is withheld, never exported half-redacted. Set by the
    /// build, not by an adapter.
    PiiRedactionUnsettled,
}

impl Reason {
    /// The registry entry of this reason: its stable code, name and documentation.
    pub const fn as_code(self) -> &'static Code {
        match self {
            Reason::InvalidUtf8 => &quarantine::INVALID_UTF8,
            Reason::InvalidJson => &quarantine::INVALID_JSON,
            Reason::NotAnObject => &quarantine::NOT_AN_OBJECT,
            Reason::MissingField => &quarantine::MISSING_FIELD,
            Reason::WrongType => &quarantine::WRONG_TYPE,
            Reason::UnknownRole => &quarantine::UNKNOWN_ROLE,
            Reason::EmptyConversation => &quarantine::EMPTY_CONVERSATION,
            Reason::NoAssistantTurn => &quarantine::NO_ASSISTANT_TURN,
            Reason::OversizedRecord => &quarantine::OVERSIZED_RECORD,
            Reason::BrokenStructure => &quarantine::BROKEN_STRUCTURE,
            Reason::ConflictingRows => &quarantine::CONFLICTING_ROWS,
            Reason::InvalidCsvRow => &quarantine::INVALID_CSV_ROW,
            Reason::DuplicateKey => &quarantine::DUPLICATE_KEY,
            Reason::PiiRedactionUnsettled => &quarantine::PII_REDACTION_UNSETTLED,
        }
    }

    /// Stable code, e.g. `Q001`.
    pub fn code(self) -> &'static str {
        self.as_code().id
    }

    /// Stable name, e.g. `invalid-utf8` (also the reason's serialised form).
    pub fn name(self) -> &'static str {
        self.as_code().name
    }
}

/// One adapted conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapted {
    /// Line where the record starts in the object (1-based).
    pub line: u64,
    /// Index among the records starting on that line (chunks of a transcript).
    pub part: u32,
    /// Conversation group (the `group_by` value), if the source has one.
    pub group: Option<String>,
    pub messages: Vec<Message>,
    /// Turns present in the source before blank ones were dropped and same-role ones merged.
    pub source_turns: u32,
    pub merged_turns: u32,
    pub blank_turns_dropped: u32,
    /// The dataset's `source_fields` found in the record (scalars only); empty for most.
    pub source_fields: SourceFields,
}

/// Record fields carried into `metadata.source_fields`, by their registry path.
pub type SourceFields = BTreeMap<String, serde_json::Value>;

/// Attaches carried fields to an adapted record (a quarantined one has none).
pub(crate) fn with_source_fields(mut item: Item, fields: SourceFields) -> Item {
    if let Item::Record(r) = &mut item {
        r.source_fields = fields;
    }
    item
}

/// A value from a record, quoted in a quarantine reason only when it looks like a speaker
/// label (at most 16 ASCII letters, digits, `_`, `-`, `.`: `usr`, `supporter`, `0`); anything
/// else is described by its length, so a mis-mapped key cannot carry text into a report.
pub(crate) fn shown_label(value: &str) -> String {
    let plain = !value.is_empty()
        && value.len() <= 16
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        format!("{value:?}")
    } else {
        format!(
            "(a {}-character value that is not a label)",
            value.chars().count()
        )
    }
}

/// A record that could not be adapted. `detail` names fields, never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub line: u64,
    /// Index among the records starting on that line (minified JSON arrays).
    pub part: u32,
    pub reason: Reason,
    pub detail: String,
}

/// What an adapter emits, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Record(Adapted),
    Quarantined(Quarantined),
}

/// Per-object counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectSummary {
    pub records: u64,
    pub quarantined: BTreeMap<String, u64>,
    /// True when the object could not be read to its end (broken structure); what followed
    /// the break is not counted, so such a source always fails the build.
    pub incomplete: bool,
}

impl ObjectSummary {
    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.values().sum()
    }
}

/// Builds a quarantine item.
pub(crate) fn quarantine(line: u64, reason: Reason, detail: impl Into<String>) -> Item {
    Item::Quarantined(Quarantined {
        line,
        part: 0,
        reason,
        detail: detail.into(),
    })
}

/// Sets the part (index among records starting on the same line) of an item.
pub(crate) fn with_part(mut item: Item, part: u32) -> Item {
    match &mut item {
        Item::Record(r) => r.part = part,
        Item::Quarantined(q) => q.part = part,
    }
    item
}

/// Checks and normalises a conversation into an item.
pub(crate) fn finish(
    line: u64,
    part: u32,
    group: Option<String>,
    mut messages: Vec<Message>,
    merge: MergePolicy,
) -> Item {
    let source_turns = messages.len() as u32;
    let (blank_turns_dropped, merged_turns) = normalise(&mut messages, merge);
    if messages.is_empty() {
        return quarantine(line, Reason::EmptyConversation, "no non-empty turn");
    }
    if !messages.iter().any(|m| m.role == Role::Assistant) {
        return quarantine(line, Reason::NoAssistantTurn, "no assistant turn");
    }
    Item::Record(Adapted {
        line,
        part,
        group,
        messages,
        source_turns,
        merged_turns,
        blank_turns_dropped,
        source_fields: SourceFields::new(),
    })
}

/// Reads one object of `dataset` and hands every item to `emit`, in source order.
/// Returns the object's summary; `Err` only when the object cannot be read at all.
pub fn adapt(
    reader: impl Read,
    key: &str,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<ObjectSummary> {
    let mut summary = ObjectSummary::default();
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut sink = |item: Item| {
        count(&mut summary, &item);
        emit(item);
    };
    // One rule for every format: an empty object is a broken one (a failed upload or an
    // export cut short looks the same), never a source that holds no records.
    if reader.fill_buf()?.is_empty() {
        sink(empty_object());
        return Ok(summary);
    }
    let compression = Compression::detect(key, reader.fill_buf()?);
    if compression == Compression::None {
        dispatch(
            reader,
            key,
            Container::of(dataset, key),
            dataset,
            limits,
            &mut sink,
        )?;
        return Ok(summary);
    }
    let container = Container::of(dataset, compression::inner_key(key));
    let mut inner = BufReader::with_capacity(1 << 20, Decompressed::new(reader, compression)?);
    let result = match inner.fill_buf() {
        Ok([]) => {
            sink(empty_object());
            Ok(())
        }
        Ok(_) => dispatch(inner, key, container, dataset, limits, &mut sink),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {}
        Err(e) => match compression::Corrupt::of(&e) {
            // What followed the break cannot be counted: the object fails (Q010).
            Some(c) => sink(quarantine(
                c.line,
                Reason::BrokenStructure,
                format!("{key}: {c}; the records after the break cannot be read or counted"),
            )),
            None => return Err(e),
        },
    }
    Ok(summary)
}

/// Counts an item into an object's summary.
pub(crate) fn count(summary: &mut ObjectSummary, item: &Item) {
    match item {
        Item::Record(_) => summary.records += 1,
        Item::Quarantined(q) => {
            *summary
                .quarantined
                .entry(format!("{} {}", q.reason.code(), q.reason.name()))
                .or_insert(0) += 1;
            if q.reason == Reason::BrokenStructure {
                summary.incomplete = true;
            }
        }
    }
}

pub(crate) fn empty_object() -> Item {
    quarantine(
        1,
        Reason::BrokenStructure,
        "the object is empty (0 bytes); remove it, or leave it out of the dataset's include",
    )
}

/// Hands a (decompressed) stream to the adapter of its container.
fn dispatch(
    reader: impl BufRead,
    key: &str,
    container: Container,
    dataset: &Dataset,
    limits: &Limits,
    sink: &mut dyn FnMut(Item),
) -> io::Result<()> {
    match container {
        Container::Jsonl => json_records::adapt_lines(reader, dataset, limits, sink),
        Container::Json => json_records::adapt_document(reader, dataset, limits, sink),
        Container::Csv => csv_source::adapt(reader, dataset, limits, sink),
        Container::Text => text::adapt(reader, key, dataset, limits, sink),
        // Random access, not a stream: the build calls `parquet::adapt` for these.
        Container::Parquet => Err(io::Error::other(
            "a Parquet object is read by ranges (source::parquet::adapt), not as a stream",
        )),
    }
}

/// Reads at most `max` bytes; `None` if the object is larger.
pub(crate) fn read_bounded(mut reader: impl BufRead, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let n = reader.by_ref().take(max + 1).read_to_end(&mut buf)?;
    Ok(((n as u64) <= max).then_some(buf))
}

#[cfg(test)]
mod tests;
