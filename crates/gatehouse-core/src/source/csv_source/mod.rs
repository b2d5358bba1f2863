//! CSV sources: one exchange per row with named columns (`csv_columns`), or one utterance per
//! row grouped into conversations by a column and ordered by another (`utterance_csv`).
//! RFC 4180 quoting (multi-line cells) is handled by the `csv` crate; HTML in cells is
//! stripped. A configured column missing from the header fails the object: nothing in it
//! could be read correctly. So does a quote that never closes, or closes only lines later
//! with text after it ([`Tracked`]): the rows it swallowed cannot be counted.

mod columns;
mod quotes;
mod utterance;

use std::io::{self, BufRead};

use crate::registry::{Dataset, SourceFormat};
use crate::source::{Item, Limits, Reason, quarantine};
use columns::Exchange;
use quotes::{Tracked, describe};
use utterance::utterances;

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
