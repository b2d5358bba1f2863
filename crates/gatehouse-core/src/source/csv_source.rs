//! CSV sources: one exchange per row with named columns (`csv_columns`), or one utterance per
//! row grouped into conversations by a column and ordered by another (`utterance_csv`).
//! RFC 4180 quoting (multi-line cells) is handled by the `csv` crate; HTML in cells is
//! stripped. A configured column missing from the header fails the object: nothing in it
//! could be read correctly.

use std::collections::HashMap;
use std::io::{self, BufRead};

use super::{Item, Limits, Reason, finish, quarantine, strip_html};
use crate::record::{Message, Role};
use crate::registry::{Dataset, SourceFormat};

pub(super) fn adapt(
    reader: impl BufRead,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<()> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let header: Vec<String> = match csv.byte_headers() {
        Ok(h) => h
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = String::from_utf8_lossy(f);
                let name = if i == 0 {
                    name.trim_start_matches('\u{feff}')
                } else {
                    &name
                };
                name.trim().to_string()
            })
            .collect(),
        Err(e) => return csv_failure(e, 1, emit),
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let f = &dataset.fields;
    let wanted: Vec<&str> = match dataset.format {
        SourceFormat::CsvColumns => [
            f.user.as_deref(),
            f.assistant.as_deref(),
            f.system.as_deref(),
        ]
        .into_iter()
        .flatten()
        .chain(dataset.group_by.as_deref())
        .collect(),
        _ => [
            f.conversation.as_deref(),
            f.order.as_deref(),
            f.speaker.as_deref(),
            f.text.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    if let Some(missing) = wanted.iter().find(|w| column(w).is_none()) {
        emit(quarantine(
            1,
            Reason::BrokenStructure,
            format!("column {missing:?} is not in the header"),
        ));
        return Ok(());
    }
    let col = |name: Option<&str>| name.and_then(column);
    let width = header.len();
    match dataset.format {
        SourceFormat::CsvColumns => {
            let (user, assistant) = (col(f.user.as_deref()), col(f.assistant.as_deref()));
            let (system, group) = (col(f.system.as_deref()), col(dataset.group_by.as_deref()));
            rows(
                &mut csv,
                width,
                limits,
                emit,
                &mut |line, cells, emit| {
                    let mut messages = Vec::with_capacity(3);
                    if let Some(Some(s)) = system.map(|i| cells.get(i)) {
                        messages.push(Message::new(Role::System, strip_html(s)));
                    }
                    for (idx, role, name) in [
                        (user, Role::User, f.user.as_deref()),
                        (assistant, Role::Assistant, f.assistant.as_deref()),
                    ] {
                        match idx.and_then(|i| cells.get(i)) {
                            Some(text) => messages.push(Message::new(role, strip_html(text))),
                            None => {
                                emit(quarantine(
                                    line,
                                    Reason::InvalidCsvRow,
                                    format!("the row has no {:?} cell", name.unwrap_or_default()),
                                ));
                                return;
                            }
                        }
                    }
                    let group = match group.map(|g| cells.get(g).map(|s| s.trim())) {
                        None => None,
                        Some(Some(g)) if !g.is_empty() => Some(g.to_string()),
                        Some(_) => {
                            emit(quarantine(
                                line,
                                Reason::MissingField,
                                "the group_by cell is empty",
                            ));
                            return;
                        }
                    };
                    emit(finish(line, 0, group, messages, limits.merge));
                },
                &mut |_| {},
            )
        }
        _ => utterances(
            &mut csv,
            width,
            dataset,
            limits,
            emit,
            [
                col(f.conversation.as_deref()).unwrap_or(0),
                col(f.order.as_deref()).unwrap_or(0),
                col(f.speaker.as_deref()).unwrap_or(0),
                col(f.text.as_deref()).unwrap_or(0),
            ],
        ),
    }
}

fn csv_failure(e: csv::Error, line: u64, emit: &mut dyn FnMut(Item)) -> io::Result<()> {
    if e.is_io_error() {
        if let csv::ErrorKind::Io(io) = e.into_kind() {
            return Err(io);
        }
        return Err(io::Error::other("csv i/o error"));
    }
    emit(quarantine(
        line,
        Reason::BrokenStructure,
        "the CSV cannot be parsed",
    ));
    Ok(())
}

/// Receives a row's start line, its cells and the item sink.
type RowFn<'a> = dyn FnMut(u64, &[&str], &mut dyn FnMut(Item)) + 'a;

/// Told about a row that was quarantined before it reached [`RowFn`] (its raw cells).
type BadRowFn<'a> = dyn FnMut(&csv::ByteRecord) + 'a;

/// Calls `row` for every data row with its start line and its cells as text. Rows that are
/// not UTF-8 or exceed the record limit are quarantined here.
fn rows<R: io::Read>(
    csv: &mut csv::Reader<R>,
    width: usize,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
    row: &mut RowFn<'_>,
    bad_row: &mut BadRowFn<'_>,
) -> io::Result<()> {
    let mut record = csv::ByteRecord::new();
    loop {
        let read = csv.read_byte_record(&mut record);
        let line = record.position().map_or(0, |p| p.line());
        match read {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return csv_failure(e, line, emit),
        }
        if record.as_slice().len() > limits.max_record_bytes {
            emit(quarantine(
                line,
                Reason::OversizedRecord,
                format!(
                    "{} bytes, limit {}",
                    record.as_slice().len(),
                    limits.max_record_bytes
                ),
            ));
            bad_row(&record);
            continue;
        }
        if record.len() != width {
            // An unquoted comma or a lost cell: the text would land under the wrong column.
            emit(quarantine(
                line,
                Reason::InvalidCsvRow,
                format!("the row has {} cells, the header {width}", record.len()),
            ));
            bad_row(&record);
            continue;
        }
        let cells: Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
        match cells {
            Ok(cells) => row(line, &cells, emit),
            Err(_) => {
                emit(quarantine(
                    line,
                    Reason::InvalidUtf8,
                    "a cell is not valid UTF-8",
                ));
                bad_row(&record);
            }
        }
    }
}

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
fn utterances<R: io::Read>(
    csv: &mut csv::Reader<R>,
    width: usize,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
    [conv_col, order_col, speaker_col, text_col]: [usize; 4],
) -> io::Result<()> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut conversations: Vec<(String, u64, Vec<Utterance>)> = Vec::new();
    let mut held: u64 = 0;
    let mut too_big = false;
    // Conversations with a row that could not be read: exporting them would drop a turn.
    let mut incomplete: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    rows(
        csv,
        width,
        limits,
        emit,
        &mut |line, cells, emit| {
            if too_big {
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
            held += (conv.len() + order.len() + speaker.len() + text.len()) as u64 + 64;
            if held > limits.max_buffered_object_bytes {
                too_big = true;
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
            let slot = *index.entry(conv.to_string()).or_insert_with(|| {
                conversations.push((conv.to_string(), line, Vec::new()));
                conversations.len() - 1
            });
            conversations[slot].2.push(Utterance {
                order: (
                    order.trim().parse::<f64>().unwrap_or(f64::NAN),
                    order.trim().to_string(),
                ),
                line,
                speaker: speaker.trim().to_string(),
                text: strip_html(text),
            });
        },
        &mut |raw| {
            if let Some(conv) = raw.get(conv_col) {
                incomplete.insert(String::from_utf8_lossy(conv).to_string());
            }
        },
    )?;
    if too_big {
        return Ok(());
    }
    for (conv, first_line, mut rows) in conversations {
        if incomplete.contains(&conv) {
            emit(quarantine(
                first_line,
                Reason::InvalidCsvRow,
                "a row of this conversation was quarantined, so the conversation is incomplete",
            ));
            continue;
        }
        rows.sort_by(|a, b| {
            a.order
                .0
                .total_cmp(&b.order.0)
                .then_with(|| a.order.1.cmp(&b.order.1))
                .then(a.line.cmp(&b.line))
        });
        let mut messages = Vec::with_capacity(rows.len());
        let mut problem = None;
        let mut last: Option<&Utterance> = None;
        for u in &rows {
            if u.order.0.is_nan() {
                problem = Some((
                    u.line,
                    Reason::WrongType,
                    "an utterance index is not a number".to_string(),
                ));
                break;
            }
            if let Some(prev) = last
                && prev.order.1 == u.order.1
            {
                if prev.speaker == u.speaker && prev.text == u.text {
                    continue; // the same utterance again (another annotator's row)
                }
                problem = Some((
                    u.line,
                    Reason::ConflictingRows,
                    "two rows share an utterance index with different text or speaker".to_string(),
                ));
                break;
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
                    problem = Some((
                        u.line,
                        Reason::UnknownRole,
                        "a speaker label is not in speaker_roles".to_string(),
                    ));
                    break;
                }
            }
        }
        match problem {
            Some((line, reason, detail)) => emit(quarantine(line, reason, detail)),
            None => emit(finish(first_line, 0, Some(conv), messages, limits.merge)),
        }
    }
    Ok(())
}
