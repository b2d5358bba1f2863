//! Streams the elements of a JSON array out of a document of any size: a top-level array
//! (`[{…}, {…}]`) or an array inside a top-level object (`{"data": [{…}, …]}`).
//!
//! The scanner tracks strings, escapes and nesting byte by byte and hands out each element's
//! raw bytes with the line it starts on, so a 0.7 GB JSON document is read with memory
//! bounded by the largest element (capped: a larger element is skipped to its end and
//! reported as oversized). It does not validate element contents; `serde_json` does that per
//! element. A structural break (truncation, a missing comma) ends the stream with an error
//! carrying the line: elements after it cannot be located reliably, so nothing is guessed.

use std::io::{self, BufRead};

/// Deepest nesting accepted inside one element.
const MAX_DEPTH: usize = 512;

/// One array element.
#[derive(Debug, PartialEq, Eq)]
pub enum Element<'a> {
    Value {
        line: u64,
        bytes: &'a [u8],
    },
    /// Longer than the configured maximum; skipped, not kept.
    Oversized {
        line: u64,
        len: u64,
    },
}

/// Why the document cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureError {
    pub line: u64,
    pub message: String,
}

/// Reads elements one at a time; see the module docs.
#[derive(Debug)]
pub struct JsonElements<R> {
    reader: R,
    line: u64,
    max_element: usize,
    buf: Vec<u8>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first element (just after `[`).
    First,
    /// After an element: expecting `,` or `]`.
    Between,
    Done,
}

type Result<T> = std::result::Result<T, ScanError>;

/// I/O failure or a structural break.
#[derive(Debug)]
pub enum ScanError {
    Io(io::Error),
    Structure(StructureError),
}

impl From<io::Error> for ScanError {
    fn from(e: io::Error) -> Self {
        ScanError::Io(e)
    }
}

impl<R: BufRead> JsonElements<R> {
    /// Positions the reader at the first element of the array: the top-level array when
    /// `wrapper` is `None`, else the array under key `wrapper` of the top-level object.
    pub fn open(reader: R, wrapper: Option<&str>, max_element: usize) -> Result<Self> {
        let mut s = Self {
            reader,
            line: 1,
            max_element,
            buf: Vec::new(),
            state: State::First,
        };
        s.skip_bom()?;
        match wrapper {
            None => {
                s.expect(
                    b'[',
                    "the document to be a JSON array (records wrapped in an object need `fields.records`)",
                )?;
            }
            Some(key) => {
                s.expect(b'{', "the document to be a JSON object")?;
                loop {
                    match s.skip_ws()? {
                        Some(b'}') | None => {
                            return Err(s.structure(format!(
                                "the top-level object has no key {key:?} holding the records"
                            )));
                        }
                        Some(b',') => {
                            s.bump()?;
                            continue;
                        }
                        Some(b'"') => {}
                        Some(_) => {
                            return Err(s.structure("expected a key in the top-level object"));
                        }
                    }
                    let k = s.read_string()?;
                    s.expect(b':', "`:` after a key")?;
                    if k == key.as_bytes() {
                        s.expect(b'[', &format!("key {key:?} to hold an array"))?;
                        break;
                    }
                    s.skip_value()?;
                }
            }
        }
        Ok(s)
    }

    /// The line the scanner is on (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next element, or `None` after the closing `]`.
    pub fn next_element(&mut self) -> Result<Option<Element<'_>>> {
        const ENDS: &str = "the document ends inside the array";
        match self.state {
            State::Done => return Ok(None),
            State::First => match self.skip_ws()? {
                Some(b']') => {
                    self.bump()?;
                    self.state = State::Done;
                    return Ok(None);
                }
                Some(_) => {}
                None => return Err(self.structure(ENDS)),
            },
            State::Between => match self.skip_ws()? {
                Some(b',') => {
                    self.bump()?;
                    match self.skip_ws()? {
                        Some(b']') => return Err(self.structure("a trailing comma before `]`")),
                        Some(_) => {}
                        None => return Err(self.structure(ENDS)),
                    }
                }
                Some(b']') => {
                    self.bump()?;
                    self.state = State::Done;
                    return Ok(None);
                }
                Some(_) => return Err(self.structure("expected `,` or `]` after an element")),
                None => return Err(self.structure(ENDS)),
            },
        }
        let line = self.line;
        self.buf.clear();
        let len = self.capture_value()?;
        self.state = State::Between;
        if len > self.max_element as u64 {
            return Ok(Some(Element::Oversized { line, len }));
        }
        Ok(Some(Element::Value {
            line,
            bytes: &self.buf,
        }))
    }

    fn structure(&self, message: impl Into<String>) -> ScanError {
        ScanError::Structure(StructureError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&mut self) -> Result<Option<u8>> {
        Ok(self.reader.fill_buf()?.first().copied())
    }

    fn bump(&mut self) -> Result<Option<u8>> {
        let b = self.peek()?;
        if let Some(b) = b {
            if b == b'\n' {
                self.line += 1;
            }
            self.reader.consume(1);
        }
        Ok(b)
    }

    fn skip_bom(&mut self) -> Result<()> {
        let buf = self.reader.fill_buf()?;
        if buf.starts_with(b"\xEF\xBB\xBF") {
            self.reader.consume(3);
        }
        Ok(())
    }

    fn skip_ws(&mut self) -> Result<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump()?;
                }
                other => return Ok(other),
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<()> {
        match self.skip_ws()? {
            Some(b) if b == want => {
                self.bump()?;
                Ok(())
            }
            Some(_) => Err(self.structure(format!("expected {what}"))),
            None => Err(self.structure(format!("expected {what}, found the end of the document"))),
        }
    }

    /// Reads a JSON string's raw bytes (escapes kept) after the opening quote is peeked.
    fn read_string(&mut self) -> Result<Vec<u8>> {
        self.bump()?;
        let mut out = Vec::new();
        loop {
            match self.bump()? {
                None => return Err(self.structure("the document ends inside a string")),
                Some(b'"') => return Ok(out),
                Some(b'\\') => {
                    out.push(b'\\');
                    match self.bump()? {
                        Some(b) => out.push(b),
                        None => return Err(self.structure("the document ends inside a string")),
                    }
                }
                Some(b) => out.push(b),
            }
        }
    }

    fn skip_value(&mut self) -> Result<()> {
        self.skip_ws()?;
        let keep = std::mem::take(&mut self.buf);
        let cap = self.max_element;
        self.max_element = 0;
        let r = self.capture_value();
        self.max_element = cap;
        self.buf = keep;
        r.map(|_| ())
    }

    /// Scans one value, appending its bytes to `buf` while it fits in `max_element`.
    /// Returns the value's length in bytes.
    fn capture_value(&mut self) -> Result<u64> {
        // Open brackets, innermost last: `}` must close `{` and `]` must close `[`.
        let mut stack: Vec<u8> = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        let mut len: u64 = 0;
        let max = self.max_element;
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                if stack.is_empty() && !in_string && len > 0 {
                    // A scalar at the very end: the enclosing `]` is missing.
                    return Err(self.structure("the document ends inside the array"));
                }
                return Err(self.structure("the document ends inside an element (truncated?)"));
            }
            let mut consumed = 0;
            let mut finished = false;
            for &b in chunk {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if stack.is_empty() {
                            consumed += 1;
                            if b == b'\n' {
                                self.line += 1;
                            }
                            if (len as usize) < max {
                                self.buf.push(b);
                            }
                            len += 1;
                            finished = true;
                            break;
                        }
                    }
                } else {
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => {
                            if stack.len() >= MAX_DEPTH {
                                return Err(self.structure(format!(
                                    "an element nests deeper than {MAX_DEPTH} levels"
                                )));
                            }
                            stack.push(b);
                        }
                        b'}' | b']' => {
                            let Some(open) = stack.pop() else {
                                // End of a scalar value, not part of it.
                                finished = true;
                                break;
                            };
                            if (open, b) != (b'{', b'}') && (open, b) != (b'[', b']') {
                                return Err(self.structure("mismatched brackets inside an element"));
                            }
                            if stack.is_empty() {
                                consumed += 1;
                                if (len as usize) < max {
                                    self.buf.push(b);
                                }
                                len += 1;
                                finished = true;
                                break;
                            }
                        }
                        b',' | b' ' | b'\t' | b'\r' | b'\n' if stack.is_empty() => {
                            finished = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if b == b'\n' {
                    self.line += 1;
                }
                consumed += 1;
                if (len as usize) < max {
                    self.buf.push(b);
                }
                len += 1;
            }
            if (len as usize) > max {
                self.buf.clear();
            }
            self.reader.consume(consumed);
            if finished {
                if len == 0 {
                    return Err(self.structure("an empty element (a stray `,` or bracket)"));
                }
                return Ok(len);
            }
        }
    }

    /// After the array: the rest of a wrapper object and trailing whitespace must be
    /// well-formed; anything else means the document is not what it claims to be.
    pub fn finish(mut self, wrapped: bool) -> Result<()> {
        if self.state != State::Done {
            return Err(self.structure("the array was not read to its end"));
        }
        if wrapped {
            loop {
                match self.skip_ws()? {
                    Some(b'}') => {
                        self.bump()?;
                        break;
                    }
                    Some(b',') => {
                        self.bump()?;
                        if self.skip_ws()? != Some(b'"') {
                            return Err(self.structure("expected a key in the top-level object"));
                        }
                        self.read_string()?;
                        self.expect(b':', "`:` after a key")?;
                        self.skip_value()?;
                    }
                    _ => return Err(self.structure("expected `,` or `}` in the top-level object")),
                }
            }
        }
        match self.skip_ws()? {
            None => Ok(()),
            Some(_) => Err(self.structure(
                "data after the end of the JSON document (is this JSON Lines? name it .jsonl or set container = \"jsonl\")",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        V(u64, String),
        Big(u64, u64),
    }

    fn elements(
        doc: &str,
        wrapper: Option<&str>,
        max: usize,
        cap: usize,
    ) -> std::result::Result<Vec<Got>, String> {
        let reader = BufReader::with_capacity(cap, doc.as_bytes());
        let mut s = JsonElements::open(reader, wrapper, max).map_err(err)?;
        let mut out = Vec::new();
        while let Some(e) = s.next_element().map_err(err)? {
            out.push(match e {
                Element::Value { line, bytes } => {
                    Got::V(line, String::from_utf8(bytes.to_vec()).unwrap())
                }
                Element::Oversized { line, len } => Got::Big(line, len),
            });
        }
        s.finish(wrapper.is_some()).map_err(err)?;
        Ok(out)
    }

    fn err(e: ScanError) -> String {
        match e {
            ScanError::Io(e) => format!("io: {e}"),
            ScanError::Structure(s) => format!("line {}: {}", s.line, s.message),
        }
    }

    fn v(line: u64, s: &str) -> Got {
        Got::V(line, s.to_string())
    }

    #[test]
    fn splits_a_top_level_array_with_lines() {
        let doc = "[\n  {\"a\": \"x,]}\\\"\"},\n  {\"b\": [1, {\"c\": 2}]},\n  3, \"s\", null\n]\n";
        for cap in [1, 2, 7, 64] {
            assert_eq!(
                elements(doc, None, 1000, cap).unwrap(),
                vec![
                    v(2, "{\"a\": \"x,]}\\\"\"}"),
                    v(3, "{\"b\": [1, {\"c\": 2}]}"),
                    v(4, "3"),
                    v(4, "\"s\""),
                    v(4, "null"),
                ],
                "cap {cap}"
            );
        }
    }

    #[test]
    fn finds_the_wrapped_array_past_other_keys() {
        let doc = "\u{feff}{\"meta\": {\"n\": [1,2]}, \"data\": [{\"x\":1},\n{\"x\":2}], \"tail\": \"t\"}";
        assert_eq!(
            elements(doc, Some("data"), 100, 3).unwrap(),
            vec![v(1, "{\"x\":1}"), v(2, "{\"x\":2}")]
        );
        let err = elements("{\"other\": []}", Some("data"), 100, 8).unwrap_err();
        assert!(err.contains("no key \"data\""), "{err}");
    }

    #[test]
    fn an_empty_array_has_no_elements() {
        assert_eq!(elements(" [ ] ", None, 10, 4).unwrap(), vec![]);
    }

    #[test]
    fn oversized_elements_are_skipped_and_reading_continues() {
        let big = format!("{{\"t\": \"{}\"}}", "y".repeat(500));
        let doc = format!("[{{\"a\":1}}, {big}, {{\"b\":2}}]");
        assert_eq!(
            elements(&doc, None, 100, 16).unwrap(),
            vec![
                v(1, "{\"a\":1}"),
                Got::Big(1, big.len() as u64),
                v(1, "{\"b\":2}")
            ]
        );
    }

    #[test]
    fn truncation_and_broken_structure_name_the_line() {
        let e = elements("[{\"a\":1},\n{\"b\":", None, 100, 4).unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("truncated"), "{e}");
        let e = elements("[{\"a\":1}\n{\"b\":2}]", None, 100, 4).unwrap_err();
        assert!(e.contains("expected `,` or `]`"), "{e}");
        let e = elements("[{\"a\":1},]", None, 100, 4).unwrap_err();
        assert!(e.contains("trailing comma"), "{e}");
        let e = elements("{\"a\":1}\n{\"a\":2}", None, 100, 4).unwrap_err();
        assert!(e.contains("JSON array"), "{e}");
        let e = elements("[{\"a\":1}]\n[{\"a\":2}]", None, 100, 4).unwrap_err();
        assert!(e.contains("JSON Lines"), "{e}");
        let e = elements("[{\"a\":[1}, {\"b\":2}]", None, 100, 4).unwrap_err();
        assert!(e.contains("mismatched"), "{e}");
        for doc in ["[,1]", "[1,,2]", "[}"] {
            let e = elements(doc, None, 100, 4).unwrap_err();
            assert!(
                e.contains("empty element") || e.contains("expected"),
                "{doc}: {e}"
            );
        }
        let deep = format!("[{}{}]", "[".repeat(600), "]".repeat(600));
        assert!(
            elements(&deep, None, 10_000, 64)
                .unwrap_err()
                .contains("deeper")
        );
    }
}
