//! `utterance_csv`: one utterance per row, gathered into conversations by one column and
//! ordered by another.

use std::collections::HashMap;
use std::io::{self, BufRead};

use super::quotes::Tracked;
use super::rows;
use crate::record::{Message, Role};
use crate::registry::Dataset;
use crate::source::{Item, Limits, Reason, finish, quarantine, strip_html};

struct Utterance {
    order: (f64, String),
    line: u64,
    speaker: String,
    text: String,
}

/// Gathers utterances per conversation (bounded by `max_buffered_object_bytes`), then emits
/// each conversation in order of first appearance, utterances sorted by the order column.
/// Rows repeating an utterance with identical text (one per annotator) collapse to one; rows
/// with the same order but different text make the conversation ambiguous: quarantined.
pub(super) fn utterances<R: BufRead>(
    csv: &mut csv::Reader<Tracked<R>>,
    width: usize,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
    columns: [usize; 4],
) -> io::Result<()> {
    let conv_col = columns[0];
    let mut gathered = Gathered::default();
    // Conversations with a row that could not be read: exporting them would drop a turn.
    let mut incomplete: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    rows(
        csv,
        width,
        limits,
        emit,
        &mut |line, cells, emit| gathered.add(line, cells, columns, limits, emit),
        &mut |raw| {
            if let Some(conv) = raw.get(conv_col) {
                incomplete.insert(String::from_utf8_lossy(conv).to_string());
            }
        },
    )?;
    if gathered.too_big {
        return Ok(());
    }
    for mut c in gathered.conversations {
        if incomplete.contains(&c.id) {
            emit(quarantine(
                c.first_line,
                Reason::InvalidCsvRow,
                "a row of this conversation was quarantined, so the conversation is incomplete",
            ));
            continue;
        }
        match c.messages(dataset) {
            Err((line, reason, detail)) => emit(quarantine(line, reason, detail)),
            Ok(messages) => emit(finish(c.first_line, 0, Some(c.id), messages, limits.merge)),
        }
    }
    Ok(())
}

/// The utterances of one conversation, in row order until sorted.
struct Conversation {
    id: String,
    first_line: u64,
    utterances: Vec<Utterance>,
}

/// Conversations in order of first appearance, and the bytes their utterances hold.
#[derive(Default)]
struct Gathered {
    index: HashMap<String, usize>,
    conversations: Vec<Conversation>,
    held: u64,
    /// Past `max_buffered_object_bytes`: the object is quarantined and nothing is emitted.
    too_big: bool,
}

impl Gathered {
    /// Adds a row's utterance to its conversation; `columns` are the conversation, order,
    /// speaker and text columns.
    fn add(
        &mut self,
        line: u64,
        cells: &[&str],
        [conv_col, order_col, speaker_col, text_col]: [usize; 4],
        limits: &Limits,
        emit: &mut dyn FnMut(Item),
    ) {
        if self.too_big {
            return;
        }
        let cell = |i: usize| cells.get(i).copied();
        let (Some(conv), Some(order), Some(speaker), Some(text)) = (
            cell(conv_col),
            cell(order_col),
            cell(speaker_col),
            cell(text_col),
        ) else {
            emit(quarantine(
                line,
                Reason::InvalidCsvRow,
                "the row is missing a configured column",
            ));
            return;
        };
        self.held += (conv.len() + order.len() + speaker.len() + text.len()) as u64 + 64;
        if self.held > limits.max_buffered_object_bytes {
            self.too_big = true;
            emit(quarantine(
                line,
                Reason::BrokenStructure,
                format!(
                    "the object holds more than max_buffered_object_bytes ({}) of utterances",
                    limits.max_buffered_object_bytes
                ),
            ));
            return;
        }
        let conversations = &mut self.conversations;
        let slot = *self.index.entry(conv.to_string()).or_insert_with(|| {
            conversations.push(Conversation {
                id: conv.to_string(),
                first_line: line,
                utterances: Vec::new(),
            });
            conversations.len() - 1
        });
        conversations[slot].utterances.push(Utterance {
            order: (
                order.trim().parse::<f64>().unwrap_or(f64::NAN),
                order.trim().to_string(),
            ),
            line,
            speaker: speaker.trim().to_string(),
            text: strip_html(text),
        });
    }
}

impl Conversation {
    /// The messages in utterance order, or the line, reason and detail of the first
    /// utterance that stops the conversation.
    fn messages(&mut self, dataset: &Dataset) -> Result<Vec<Message>, (u64, Reason, String)> {
        self.utterances.sort_by(|a, b| {
            a.order
                .0
                .total_cmp(&b.order.0)
                .then_with(|| a.order.1.cmp(&b.order.1))
                .then(a.line.cmp(&b.line))
        });
        let mut messages = Vec::with_capacity(self.utterances.len());
        let mut last: Option<&Utterance> = None;
        for u in &self.utterances {
            if u.order.0.is_nan() {
                return Err((
                    u.line,
                    Reason::WrongType,
                    "an utterance index is not a number".to_string(),
                ));
            }
            if let Some(prev) = last
                && prev.order.1 == u.order.1
            {
                if prev.speaker == u.speaker && prev.text == u.text {
                    continue; // the same utterance again (another annotator's row)
                }
                return Err((
                    u.line,
                    Reason::ConflictingRows,
                    "two rows share an utterance index with different text or speaker".to_string(),
                ));
            }
            last = Some(u);
            let role = dataset
                .speaker_roles
                .get(&u.speaker)
                .and_then(|r| Role::from_label(r))
                .or_else(|| Role::from_label(&u.speaker));
            match role {
                Some(role) => messages.push(Message::new(role, u.text.clone())),
                None => {
                    return Err((
                        u.line,
                        Reason::UnknownRole,
                        "a speaker label is not in speaker_roles".to_string(),
                    ));
                }
            }
        }
        Ok(messages)
    }
}
