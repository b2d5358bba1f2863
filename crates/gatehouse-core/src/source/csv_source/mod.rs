//! CSV sources: one exchange per row with named columns (`csv_columns`), or one utterance per
//! row grouped into conversations by a column and ordered by another (`utterance_csv`).
//! RFC 4180 quoting (multi-line cells) is handled by the `csv` crate; HTML in cells is
//! stripped. A configured column missing from the header fails the object: nothing in it
//! could be read correctly. So does a quote that never closes, or closes only lines later
//! with text after it ([`Tracked`]): the rows it swallowed cannot be counted.

use std::collections::HashMap;
use std::io::{self, BufRead};

use super::{Item, Limits, Reason, finish, quarantine, strip_html};
use crate::record::{Message, Role};
use crate::registry::{Dataset, Fields, SourceFormat};

pub(super) fn adapt(
    reader: impl BufRead,
    dataset: &Dataset,
    limits: &Limits,
    emit: &mut dyn FnMut(Item),
) -> io::Result<()> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(Tracked::new(reader, limits.max_record_bytes));
    let Some(header) = header(&mut csv, emit)? else {
        return Ok(());
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    if let Some(missing) = wanted_columns(dataset).iter().find(|w| column(w).is_none()) {
        emit(quarantine(
            1,
            Reason::BrokenStructure,
            format!("column {missing:?} is not in the header"),
        ));
        return Ok(());
    }
    let col = |name: Option<&str>| name.and_then(column);
    let f = &dataset.fields;
    let width = header.len();
    match dataset.format {
        SourceFormat::CsvColumns => {
            let exchange = Exchange {
                fields: f,
                user: col(f.user.as_deref()),
                assistant: col(f.assistant.as_deref()),
                system: col(f.system.as_deref()),
                group: col(dataset.group_by.as_deref()),
            };
            rows(
                &mut csv,
                width,
                limits,
                emit,
                &mut |line, cells, emit| exchange.row(line, cells, limits, emit),
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

/// The header's column names (a byte-order mark and surrounding spaces removed); `None`
/// when the header cannot be read, which is quarantined.
fn header<R: BufRead>(
    csv: &mut csv::Reader<Tracked<R>>,
    emit: &mut dyn FnMut(Item),
) -> io::Result<Option<Vec<String>>> {
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
        Err(e) => return csv_failure(e, 1, emit).map(|()| None),
    };
    let header_end = csv.position().byte();
    if let Some(problem) = csv.get_mut().problems_in(0, header_end.max(1)).first() {
        let (_, detail) = describe(problem, 1, csv.get_ref().line());
        emit(quarantine(
            1,
            Reason::BrokenStructure,
            format!("header row: {detail}"),
        ));
        return Ok(None);
    }
    Ok(Some(header))
}

/// The columns the dataset's format reads, in the order a missing one is reported.
fn wanted_columns(dataset: &Dataset) -> Vec<&str> {
    let f = &dataset.fields;
    match dataset.format {
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
    }
}

/// Where a `csv_columns` row keeps its cells: header positions of the configured columns.
struct Exchange<'a> {
    fields: &'a Fields,
    user: Option<usize>,
    assistant: Option<usize>,
    system: Option<usize>,
    group: Option<usize>,
}

impl Exchange<'_> {
    /// One row as one exchange: the system cell if any, the user and assistant cells, and
    /// the group cell when the dataset is grouped.
    fn row(&self, line: u64, cells: &[&str], limits: &Limits, emit: &mut dyn FnMut(Item)) {
        let f = self.fields;
        let mut messages = Vec::with_capacity(3);
        if let Some(Some(s)) = self.system.map(|i| cells.get(i)) {
            messages.push(Message::new(Role::System, strip_html(s)));
        }
        for (idx, role, name) in [
            (self.user, Role::User, f.user.as_deref()),
            (self.assistant, Role::Assistant, f.assistant.as_deref()),
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
        let group = match self.group.map(|g| cells.get(g).map(|s| s.trim())) {
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
fn rows<R: BufRead>(
    csv: &mut csv::Reader<Tracked<R>>,
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
        let start = record.position().map_or(0, |p| p.byte());
        let end = csv.position().byte().max(start + 1);
        let last_line = csv.get_ref().line();
        if let Some(problem) = csv.get_mut().problems_in(start, end).first() {
            let (reason, detail) = describe(problem, line, last_line);
            emit(quarantine(line, reason, detail));
            bad_row(&record);
            continue;
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

/// The quarantine reason and detail for a quoting problem in the row starting on `row_line`.
/// A problem that swallowed line breaks is a broken structure (the source fails: the rows it
/// merged cannot be counted); text after a closing quote on one line is one bad row.
fn describe(problem: &QuoteProblem, row_line: u64, last_line: u64) -> (Reason, String) {
    match *problem {
        QuoteProblem::Unclosed { line, .. } => (
            Reason::BrokenStructure,
            format!(
                "a quote opened on line {line} never closes: lines {line}-{last_line} became one \
                 cell and cannot be split into rows"
            ),
        ),
        QuoteProblem::Runaway { line, .. } => (
            Reason::BrokenStructure,
            format!(
                "a quoted cell opened on line {line} runs past max_record_bytes without closing: \
                 reading stopped there"
            ),
        ),
        QuoteProblem::TextAfterClose {
            line, closed_line, ..
        } if closed_line > line => (
            Reason::BrokenStructure,
            format!(
                "a quoted cell opened on line {line} closes on line {closed_line} with text after \
                 the quote: an unbalanced quote merged lines {line}-{closed_line} into the row \
                 of line {row_line}"
            ),
        ),
        QuoteProblem::TextAfterClose { .. } => (
            Reason::InvalidCsvRow,
            "text follows a closing quote (a quote inside a quoted cell is not doubled)"
                .to_string(),
        ),
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
fn utterances<R: BufRead>(
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

/// What [`Tracked`] found wrong with the quoting, at byte offsets of the normalised stream
/// (the offsets `csv` reports), so each finding is matched to the row that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteProblem {
    /// A quote opened at `at` (on `line`) and the object ended inside it: every row after
    /// it became part of one cell.
    Unclosed { at: u64, line: u64 },
    /// A quoted cell opened at `at` (on `line`) was closed on `closed_line` by a quote
    /// followed by more text: an unbalanced quote, which swallowed the line breaks between
    /// when the two lines differ.
    TextAfterClose {
        at: u64,
        line: u64,
        closed_line: u64,
    },
    /// A quoted cell opened at `at` (on `line`) ran past `max_record_bytes`: what follows
    /// cannot be split into rows, so reading stops there.
    Runaway { at: u64, line: u64 },
}

impl QuoteProblem {
    fn at(&self) -> u64 {
        match *self {
            QuoteProblem::Unclosed { at, .. }
            | QuoteProblem::TextAfterClose { at, .. }
            | QuoteProblem::Runaway { at, .. } => at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// Sits between the object and the CSV parser. It turns every line end (`\r\n`, and a lone
/// `\r` as old Mac files have) into `\n`, so the parser's line numbers count every physical
/// line, and it follows RFC 4180 quoting exactly as the parser does (a quote opens a cell
/// only at its start; a doubled quote inside is a literal), recording every quote that
/// never closes, or closes with text after it. The `csv` crate accepts both silently: a
/// stray `"` would merge every following row into one cell.
struct Tracked<R> {
    inner: R,
    q: Quotes,
}

/// The quoting state of the bytes handed to the parser so far.
struct Quotes {
    state: Quoting,
    /// Bytes handed to the parser so far (offsets match `csv::Position::byte`).
    offset: u64,
    line: u64,
    /// The last byte read was a `\r` (turned into `\n`): a `\n` right after it is dropped.
    after_cr: bool,
    /// Where the current quoted cell opened: (offset, line).
    opened: (u64, u64),
    max_quoted: u64,
    stopped: bool,
    problems: std::collections::VecDeque<QuoteProblem>,
    last: u8,
}

impl Quotes {
    fn step(&mut self, b: u8) {
        use Quoting::*;
        self.state = match (self.state, b) {
            (StartField, b'"') => {
                self.opened = (self.offset, self.line);
                InQuoted
            }
            (StartField | InField, b',' | b'\n') => StartField,
            (StartField | InField, _) => InField,
            (InQuoted, b'"') => QuoteInQuoted,
            (InQuoted, _) => InQuoted,
            (QuoteInQuoted, b'"') => InQuoted,
            (QuoteInQuoted, b',' | b'\n') => StartField,
            (QuoteInQuoted, _) => {
                self.problems.push_back(QuoteProblem::TextAfterClose {
                    at: self.opened.0,
                    line: self.opened.1,
                    closed_line: self.line,
                });
                InField
            }
        };
        if b == b'\n' {
            self.line += 1;
        }
        self.last = b;
        self.offset += 1;
    }
}

impl<R: BufRead> Tracked<R> {
    fn new(inner: R, max_quoted: usize) -> Self {
        Self {
            inner,
            q: Quotes {
                state: Quoting::StartField,
                offset: 0,
                line: 1,
                after_cr: false,
                opened: (0, 1),
                max_quoted: max_quoted as u64,
                stopped: false,
                problems: std::collections::VecDeque::new(),
                last: 0,
            },
        }
    }

    /// The number of the last line read (a final line end starts no new line).
    fn line(&self) -> u64 {
        self.q.line - u64::from(self.q.last == b'\n' && self.q.line > 1)
    }

    /// The problems found in the bytes `[start, end)`, removed from the queue (the parser
    /// reads rows in order, so earlier ones belong to rows already seen).
    fn problems_in(&mut self, start: u64, end: u64) -> Vec<QuoteProblem> {
        let problems = &mut self.q.problems;
        while problems.front().is_some_and(|p| p.at() < start) {
            problems.pop_front();
        }
        let mut out = Vec::new();
        while problems.front().is_some_and(|p| p.at() < end) {
            out.extend(problems.pop_front());
        }
        out
    }
}

impl<R: BufRead> io::Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let q = &mut self.q;
        if q.stopped || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let available = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if q.state == Quoting::InQuoted {
                    let (at, line) = q.opened;
                    q.problems.push_back(QuoteProblem::Unclosed { at, line });
                    q.state = Quoting::StartField;
                }
                return Ok(0);
            }
            let mut taken = 0;
            let mut written = 0;
            for &b in available {
                if written == buf.len() {
                    break;
                }
                taken += 1;
                let b = match b {
                    b'\n' if q.after_cr => {
                        q.after_cr = false;
                        continue;
                    }
                    b'\r' => {
                        q.after_cr = true;
                        b'\n'
                    }
                    other => {
                        q.after_cr = false;
                        other
                    }
                };
                buf[written] = b;
                written += 1;
                q.step(b);
                if q.state == Quoting::InQuoted && q.offset - q.opened.0 > q.max_quoted {
                    let (at, line) = q.opened;
                    q.problems.push_back(QuoteProblem::Runaway { at, line });
                    q.stopped = true;
                    break;
                }
            }
            self.inner.consume(taken);
            if written > 0 || q.stopped {
                return Ok(written);
            }
        }
    }
}
