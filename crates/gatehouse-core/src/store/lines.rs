//! Line splitting with bounded memory, for line-oriented sources (JSONL, text transcripts).
//!
//! A line longer than the configured maximum is not buffered: it is skipped to its end and
//! reported as [`Line::Oversized`] with its number and length, so the caller can quarantine
//! it by `key:line`. Memory is therefore the read buffer plus at most `max_line` bytes,
//! whatever the object's size. A line ends at `\n`, `\r\n` or a lone `\r` (old Mac files:
//! read as one line, such a file would become one record); a UTF-8 BOM before the first line
//! is removed; the last line needs no line end. Bytes are returned as they
//! are: deciding what invalid UTF-8 means is the caller's job.

use std::io::{self, BufRead};

/// One line of an object, numbered from 1.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes without its terminator.
    Text { number: u64, bytes: &'a [u8] },
    /// A line longer than the maximum; its bytes were skipped, not kept.
    Oversized { number: u64, len: u64 },
}

/// Splits a byte stream into lines; see the module docs.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    number: u64,
    max_line: usize,
    bytes_read: u64,
    /// The last line ended at a `\r`: a `\n` right after it belongs to that line end.
    after_cr: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<R: BufRead> LineReader<R> {
    /// `max_line` is the longest line (in bytes, terminator excluded) that is returned as text.
    pub fn new(inner: R, max_line: usize) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            number: 0,
            max_line,
            bytes_read: 0,
            after_cr: false,
        }
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Bytes consumed from the underlying reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line, or `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let first = self.number == 0;
        // Room for a BOM on line 1, which is stripped before the limit applies.
        let limit = self
            .max_line
            .saturating_add(if first { BOM.len() } else { 0 });
        let mut len: u64 = 0;
        let mut oversized = false;
        let mut seen_any = false;
        let mut head = [0u8; 3];
        loop {
            let available = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if self.after_cr && !available.is_empty() {
                self.after_cr = false;
                if available[0] == b'\n' {
                    self.inner.consume(1);
                    self.bytes_read += 1;
                    continue;
                }
            }
            if available.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let (part, consumed, at_end) = match memchr::memchr2(b'\n', b'\r', available) {
                Some(i) => {
                    self.after_cr = available[i] == b'\r';
                    (&available[..i], i + 1, true)
                }
                None => (available, available.len(), false),
            };
            for (i, b) in part
                .iter()
                .take(3usize.saturating_sub(len as usize))
                .enumerate()
            {
                head[len as usize + i] = *b;
            }
            len += part.len() as u64;
            if !oversized {
                if self.buf.len() + part.len() > limit {
                    oversized = true;
                    self.buf.clear();
                    self.buf.shrink_to(self.max_line.min(1 << 20));
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            self.inner.consume(consumed);
            self.bytes_read += consumed as u64;
            if at_end {
                break;
            }
        }
        self.number += 1;
        // The same stripping applies whether or not the bytes were kept.
        let bom = first && len >= 3 && head == *BOM;
        let content_len = len - if bom { 3 } else { 0 };
        if oversized || content_len > self.max_line as u64 {
            return Ok(Some(Line::Oversized {
                number: self.number,
                len: content_len,
            }));
        }
        if bom {
            self.buf.drain(..BOM.len());
        }
        Ok(Some(Line::Text {
            number: self.number,
            bytes: &self.buf,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{BufReader, Read};

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Text(u64, Vec<u8>),
        Oversized(u64, u64),
    }

    fn collect<R: BufRead>(mut r: LineReader<R>) -> Vec<Owned> {
        let mut out = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            out.push(match line {
                Line::Text { number, bytes } => Owned::Text(number, bytes.to_vec()),
                Line::Oversized { number, len } => Owned::Oversized(number, len),
            });
        }
        out
    }

    fn lines(input: &[u8], max: usize) -> Vec<Owned> {
        collect(LineReader::new(input, max))
    }

    fn text(n: u64, s: &str) -> Owned {
        Owned::Text(n, s.as_bytes().to_vec())
    }

    #[test]
    fn splits_lf_crlf_and_a_last_line_without_newline() {
        assert_eq!(
            lines(b"a\r\nbb\n\nccc", 100),
            vec![text(1, "a"), text(2, "bb"), text(3, ""), text(4, "ccc")]
        );
    }

    #[test]
    fn empty_input_has_no_lines_and_a_lone_newline_has_one() {
        assert_eq!(lines(b"", 10), vec![]);
        assert_eq!(lines(b"\n", 10), vec![text(1, "")]);
    }

    #[test]
    fn strips_bom_on_first_line_only() {
        assert_eq!(
            lines(b"\xEF\xBB\xBF{}\n\xEF\xBB\xBFx", 100),
            vec![text(1, "{}"), Owned::Text(2, b"\xEF\xBB\xBFx".to_vec())]
        );
    }

    #[test]
    fn oversized_line_is_reported_with_its_length_and_reading_continues() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend(b"\nafter\n");
        assert_eq!(
            lines(&input, 100),
            vec![text(1, "ok"), Owned::Oversized(2, 5000), text(3, "after")]
        );
    }

    #[test]
    fn line_of_exactly_max_length_is_kept_even_with_crlf() {
        assert_eq!(
            lines(b"abcd\r\nabcde\n", 4),
            vec![text(1, "abcd"), Owned::Oversized(2, 5)]
        );
    }

    #[test]
    fn invalid_utf8_is_passed_through_for_the_caller_to_judge() {
        assert_eq!(
            lines(b"\xff\xfe\n", 10),
            vec![Owned::Text(1, vec![0xff, 0xfe])]
        );
    }

    #[test]
    fn a_fifty_megabyte_line_is_read_whole_when_allowed() {
        let mut input = vec![b'y'; 50 * 1024 * 1024];
        input.push(b'\n');
        let mut r = LineReader::new(BufReader::with_capacity(64 * 1024, &input[..]), 64 << 20);
        match r.next_line().unwrap().unwrap() {
            Line::Text { number, bytes } => {
                assert_eq!(number, 1);
                assert_eq!(bytes.len(), 50 * 1024 * 1024);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(r.next_line().unwrap().is_none());
        assert_eq!(r.bytes_read(), input.len() as u64);
    }

    /// A reader that hands out the input in the given chunk sizes, to move chunk boundaries.
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        i: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let want = self.sizes[self.i % self.sizes.len()].max(1);
            self.i += 1;
            let n = want.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// The obvious, unbounded definition the reader must agree with.
    fn reference(input: &[u8], max: usize) -> Vec<Owned> {
        if input.is_empty() {
            return vec![];
        }
        // Every line end becomes `\n`, then the input is split on it.
        let mut norm = Vec::with_capacity(input.len());
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'\r' {
                norm.push(b'\n');
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            } else {
                norm.push(input[i]);
            }
            i += 1;
        }
        let mut parts: Vec<&[u8]> = norm.split(|b| *b == b'\n').collect();
        if norm.ends_with(b"\n") {
            parts.pop();
        }
        parts
            .into_iter()
            .enumerate()
            .map(|(i, mut p)| {
                if i == 0 && p.starts_with(BOM) {
                    p = &p[3..];
                }
                let n = i as u64 + 1;
                if p.len() > max {
                    Owned::Oversized(n, p.len() as u64)
                } else {
                    Owned::Text(n, p.to_vec())
                }
            })
            .collect()
    }

    #[test]
    fn a_lone_cr_ends_a_line_like_lf_and_crlf() {
        assert_eq!(
            lines(b"a\rbb\r\rc\r\nd\n\re\r", 100),
            vec![
                text(1, "a"),
                text(2, "bb"),
                text(3, ""),
                text(4, "c"),
                text(5, "d"),
                text(6, ""),
                text(7, "e")
            ]
        );
    }

    #[test]
    fn bom_and_cr_do_not_count_against_the_limit_or_the_reported_length() {
        assert_eq!(
            lines(b"\xEF\xBB\xBFabcd\r\nabcd\r\n", 4),
            vec![text(1, "abcd"), text(2, "abcd")]
        );
        assert_eq!(
            lines(b"\xEF\xBB\xBFabcde\r\nabcde\r\nabcde\n", 4),
            vec![
                Owned::Oversized(1, 5),
                Owned::Oversized(2, 5),
                Owned::Oversized(3, 5)
            ]
        );
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_definition(
            input in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(0xEFu8), Just(0xBBu8), Just(0xBFu8), any::<u8>()], 0..400),
            max in 0usize..40,
        ) {
            prop_assert_eq!(lines(&input, max), reference(&input, max));
        }

        #[test]
        fn chunk_boundaries_do_not_change_the_lines(
            input in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(0xEFu8), any::<u8>()], 0..600),
            sizes in proptest::collection::vec(1usize..40, 1..8),
            cap in 1usize..64,
            max in 0usize..50,
        ) {
            let expected = lines(&input, max);
            let chunked = Chunked { data: &input, sizes, i: 0 };
            let got = collect(LineReader::new(BufReader::with_capacity(cap, chunked), max));
            prop_assert_eq!(got, expected);
        }
    }
}
