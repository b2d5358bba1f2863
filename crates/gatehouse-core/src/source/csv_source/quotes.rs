//! Quoting: the stream between the object and the parser, which normalises line ends and
//! records every quote that never closes or closes with text after it, and the quarantine
//! reason each such problem gets.

use std::io::{self, BufRead};

use crate::source::Reason;

/// The quarantine reason and detail for a quoting problem in the row starting on `row_line`.
/// A problem that swallowed line breaks is a broken structure (the source fails: the rows it
/// merged cannot be counted); text after a closing quote on one line is one bad row.
pub(super) fn describe(problem: &QuoteProblem, row_line: u64, last_line: u64) -> (Reason, String) {
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

/// What [`Tracked`] found wrong with the quoting, at byte offsets of the normalised stream
/// (the offsets `csv` reports), so each finding is matched to the row that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuoteProblem {
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
pub(super) struct Tracked<R> {
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
    pub(super) fn new(inner: R, max_quoted: usize) -> Self {
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
    pub(super) fn line(&self) -> u64 {
        self.q.line - u64::from(self.q.last == b'\n' && self.q.line > 1)
    }

    /// The problems found in the bytes `[start, end)`, removed from the queue (the parser
    /// reads rows in order, so earlier ones belong to rows already seen).
    pub(super) fn problems_in(&mut self, start: u64, end: u64) -> Vec<QuoteProblem> {
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
