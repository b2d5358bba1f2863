//! Token counting with a real tokenizer. The built-in encodings are OpenAI's `o200k_base`
//! (default) and `cl100k_base` through `tiktoken-rs`, whose vocabulary files are compiled in
//! (no network) and whose token ids match Python `tiktoken` (checked against fixtures made
//! with Python `tiktoken`, see `tests/fixtures/`).
//!
//! A model's own Hugging Face `tokenizer.json` can be used instead ([`TokenizerSpec::File`]):
//! it is loaded with the `tokenizers` crate and counts the ids of each content encoded
//! without special tokens; its label carries the file's sha256.
//!
//! A record's token count is the sum of its messages' content tokens, encoded as ordinary
//! text (special-token strings such as `<|endoftext|>` in content are counted as the text they
//! are). Chat-template overhead is not included: `consume` renders the template and counts it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use tiktoken_rs::{CoreBPE, Rank};

/// What a record's token count is, written into the manifest.
pub const DEFINITION: &str = "sum over the record's messages of the content's tokens, encoded as ordinary text; no chat-template tokens";

/// Which tokenizer counts tokens. Recorded in the manifest next to every count.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerName {
    #[default]
    O200kBase,
    Cl100kBase,
}

impl TokenizerName {
    pub const ALL: [TokenizerName; 2] = [TokenizerName::O200kBase, TokenizerName::Cl100kBase];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenizerName::O200kBase => "o200k_base",
            TokenizerName::Cl100kBase => "cl100k_base",
        }
    }
}

impl fmt::Display for TokenizerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenizerName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown tokenizer {s:?}; expected one of: o200k_base, cl100k_base")
            })
    }
}

/// Which tokenizer the configuration asks for: a built-in encoding by name, or a
/// `tokenizer.json` file. Written as one string: `o200k_base`, `cl100k_base`, or a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum TokenizerSpec {
    Builtin(TokenizerName),
    File(PathBuf),
}

impl Default for TokenizerSpec {
    fn default() -> Self {
        TokenizerSpec::Builtin(TokenizerName::default())
    }
}

impl From<String> for TokenizerSpec {
    fn from(s: String) -> Self {
        match s.parse::<TokenizerName>() {
            Ok(name) => TokenizerSpec::Builtin(name),
            Err(_) => TokenizerSpec::File(PathBuf::from(s)),
        }
    }
}

impl From<TokenizerSpec> for String {
    fn from(t: TokenizerSpec) -> Self {
        t.to_string()
    }
}

impl From<TokenizerName> for TokenizerSpec {
    fn from(name: TokenizerName) -> Self {
        TokenizerSpec::Builtin(name)
    }
}

impl fmt::Display for TokenizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerSpec::Builtin(name) => f.write_str(name.as_str()),
            TokenizerSpec::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl TokenizerSpec {
    /// The counter this spec names; a file is read and parsed here.
    pub fn counter(&self) -> Result<TokenCounter, String> {
        match self {
            TokenizerSpec::Builtin(name) => Ok(TokenCounter::new(*name)),
            TokenizerSpec::File(path) => TokenCounter::from_file(path),
        }
    }
}

/// A `tokenizer.json` loaded with the `tokenizers` crate.
struct FileTokenizer {
    label: String,
    tokenizer: tokenizers::Tokenizer,
}

/// Counts tokens. Cheap to clone and share across threads: each built-in encoding is loaded
/// once per process, a tokenizer file once per [`TokenCounter::from_file`].
#[derive(Clone)]
pub struct TokenCounter {
    name: TokenizerName,
    bpe: &'static CoreBPE,
    vocab: &'static Vocab,
    file: Option<Arc<FileTokenizer>>,
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCounter")
            .field("tokenizer", &self.label())
            .finish()
    }
}

impl TokenCounter {
    /// Loads the encoding on first use (about 0.2 s for o200k) and shares it afterwards.
    pub fn new(name: TokenizerName) -> Self {
        static O200K: LazyLock<Vocab> =
            LazyLock::new(|| Vocab::of(tiktoken_rs::o200k_base_singleton()));
        static CL100K: LazyLock<Vocab> =
            LazyLock::new(|| Vocab::of(tiktoken_rs::cl100k_base_singleton()));
        let (bpe, vocab) = match name {
            TokenizerName::O200kBase => (tiktoken_rs::o200k_base_singleton(), &*O200K),
            TokenizerName::Cl100kBase => (tiktoken_rs::cl100k_base_singleton(), &*CL100K),
        };
        Self {
            name,
            bpe,
            vocab,
            file: None,
        }
    }

    /// A model's own tokenizer from its Hugging Face `tokenizer.json`. The error says what
    /// is wrong with the file, never its content.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read tokenizer file {}: {e}", path.display()))?;
        let tokenizer = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|_| {
            format!(
                "{} is not a Hugging Face tokenizer.json the tokenizers library can load",
                path.display()
            )
        })?;
        // Encoding cannot fail for a tokenizer that encodes a probe: checked once here.
        tokenizer
            .encode("probe text, 123", false)
            .map_err(|_| format!("the tokenizer in {} cannot encode text", path.display()))?;
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            file: Some(Arc::new(FileTokenizer {
                label: format!("{name} (sha256:{sha})"),
                tokenizer,
            })),
            ..Self::new(TokenizerName::default())
        })
    }

    /// The built-in encoding this counter uses (meaningless for a tokenizer file: see
    /// [`Self::label`]).
    pub fn name(&self) -> TokenizerName {
        self.name
    }

    /// What counts: `o200k_base`, `cl100k_base`, or `<file> (sha256:…)`. Written into
    /// manifests and reports next to every count.
    pub fn label(&self) -> String {
        match &self.file {
            Some(f) => f.label.clone(),
            None => self.name.as_str().to_string(),
        }
    }

    /// Tokens in `text`, encoded as ordinary text.
    pub fn count(&self, text: &str) -> u64 {
        if let Some(f) = &self.file {
            return f
                .tokenizer
                .encode(text, false)
                .map_or(0, |e| e.get_ids().len() as u64);
        }
        let mut n = 0u64;
        if self.pieces(text, |piece| n += self.vocab.count(piece)) {
            n
        } else {
            self.bpe.encode_ordinary(text).len() as u64
        }
    }

    /// Token ids of `text`, encoded as ordinary text.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        if let Some(f) = &self.file {
            return f
                .tokenizer
                .encode(text, false)
                .map_or_else(|_| Vec::new(), |e| e.get_ids().to_vec());
        }
        let mut ids = Vec::with_capacity(text.len() / 3);
        if self.pieces(text, |piece| self.vocab.encode(piece, &mut ids)) {
            ids
        } else {
            self.bpe.encode_ordinary(text)
        }
    }

    /// The reference implementation (`tiktoken-rs`), for tests and benchmarks.
    pub fn encode_reference(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_ordinary(text)
    }

    /// Feeds `f` the pre-tokenised pieces of `text` when every character is one the fast
    /// path classifies; returns false, having called `f` for nothing, otherwise.
    fn pieces(&self, text: &str, mut f: impl FnMut(&[u8])) -> bool {
        let next = match self.name {
            TokenizerName::O200kBase => fast::next_o200k,
            TokenizerName::Cl100kBase => fast::next_cl100k,
        };
        let bytes = text.as_bytes();
        if text.is_ascii() {
            let mut i = 0;
            while i < bytes.len() {
                let end = next(bytes, i);
                f(&bytes[i..end]);
                i = end;
            }
            return true;
        }
        // One code per character, with the byte offset where each starts.
        let mut codes = Vec::with_capacity(bytes.len());
        let mut offsets = Vec::with_capacity(bytes.len() + 1);
        for (at, c) in text.char_indices() {
            let Some(code) = fast::code(c) else {
                return false;
            };
            codes.push(code);
            offsets.push(at);
        }
        offsets.push(bytes.len());
        let mut i = 0;
        while i < codes.len() {
            let end = next(&codes, i);
            f(&bytes[offsets[i]..offsets[end]]);
            i = end;
        }
        true
    }
}

/// An encoding's mergeable ranks, taken from `tiktoken-rs` itself so both paths share one
/// vocabulary.
struct Vocab {
    ranks: FxHashMap<Vec<u8>, Rank>,
}

impl Vocab {
    fn of(bpe: &CoreBPE) -> Self {
        let special: Vec<Rank> = bpe
            .special_tokens()
            .into_iter()
            .flat_map(|s| bpe.encode_with_special_tokens(s))
            .collect();
        let top = special.iter().copied().max().unwrap_or(0);
        let mut ranks = FxHashMap::default();
        for rank in 0..top {
            if special.contains(&rank) {
                continue;
            }
            if let Ok(bytes) = bpe.decode_bytes(&[rank]) {
                ranks.insert(bytes, rank);
            }
        }
        Self { ranks }
    }

    fn count(&self, piece: &[u8]) -> u64 {
        if piece.len() == 1 || self.ranks.contains_key(piece) {
            1
        } else {
            tiktoken_rs::byte_pair_split(piece, &self.ranks).len() as u64
        }
    }

    fn encode(&self, piece: &[u8], out: &mut Vec<Rank>) {
        if let Some(&r) = self.ranks.get(piece) {
            out.push(r);
        } else {
            for part in tiktoken_rs::byte_pair_split(piece, &self.ranks) {
                // Every part of a split is in the vocabulary by construction.
                out.push(self.ranks.get(part).copied().unwrap_or(Rank::MAX));
            }
        }
    }
}

/// Pre-tokenisation equivalent to the encodings' regular expressions, on text whose every
/// character has a code: ASCII characters are their own byte (`\p{L}` is `[A-Za-z]`, `\p{N}`
/// is `[0-9]`, `\s` is `[\t\n\x0b\x0c\r ]`), and the non-ASCII characters most common in
/// English conversation text (curly quotes, dashes, the ellipsis, the no-break space, Latin-1
/// letters) get a code for their class. Any other character sends the text to `tiktoken-rs`.
/// Each `next_*` function returns the end of the piece starting at `i`. Differential tests
/// against `tiktoken-rs` keep them honest.
mod fast {
    /// A non-ASCII character of `[^\s\p{L}\p{N}]`.
    const OTHER: u8 = 0x80;
    /// A non-ASCII, non-newline `\s`.
    const SPACE: u8 = 0x81;
    /// A non-ASCII `\p{Lu}`.
    const UPPER: u8 = 0x82;
    /// A non-ASCII `\p{Ll}`.
    const LOWER: u8 = 0x83;

    pub(super) fn code(c: char) -> Option<u8> {
        match c {
            c if c.is_ascii() => Some(c as u8),
            // ‘ ’ “ ” – — … • (general categories Pi/Pf/Pd/Po)
            '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}' | '\u{2013}' | '\u{2014}'
            | '\u{2026}' | '\u{2022}' => Some(OTHER),
            // Latin-1 punctuation and symbols: ¡ ¢ £ ¤ ¥ ¦ § ¨ © « ¬ soft-hyphen ® ¯ ° ± ´ ¶ · ¸ » ¿
            // (not ª º µ, which are letters, nor ² ³ ¹ ¼ ½ ¾, which are numbers)
            '\u{00A1}'..='\u{00A9}'
            | '\u{00AB}'..='\u{00B1}'
            | '\u{00B4}'
            | '\u{00B6}'..='\u{00B8}'
            | '\u{00BB}'
            | '\u{00BF}' => Some(OTHER),
            '\u{00A0}' => Some(SPACE),
            // Latin-1 letters: À–Þ upper case, ß–ÿ lower case, but × and ÷.
            '\u{00C0}'..='\u{00DE}' if c != '\u{00D7}' => Some(UPPER),
            '\u{00DF}'..='\u{00FF}' if c != '\u{00F7}' => Some(LOWER),
            _ => None,
        }
    }

    fn is_upper(b: u8) -> bool {
        b.is_ascii_uppercase() || b == UPPER
    }
    fn is_lower(b: u8) -> bool {
        b.is_ascii_lowercase() || b == LOWER
    }
    fn is_letter(b: u8) -> bool {
        is_upper(b) || is_lower(b)
    }
    fn is_digit(b: u8) -> bool {
        b.is_ascii_digit()
    }
    fn is_space(b: u8) -> bool {
        matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | SPACE)
    }
    fn is_newline(b: u8) -> bool {
        matches!(b, b'\r' | b'\n')
    }
    /// `[^\s\p{L}\p{N}]`
    fn is_other(b: u8) -> bool {
        !is_space(b) && !is_letter(b) && !is_digit(b)
    }
    /// `[^\r\n\p{L}\p{N}]`
    fn is_prefix(b: u8) -> bool {
        !is_newline(b) && !is_letter(b) && !is_digit(b)
    }
    fn at(t: &[u8], i: usize) -> Option<u8> {
        t.get(i).copied()
    }
    fn run(t: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
        while i < t.len() && f(t[i]) {
            i += 1;
        }
        i
    }
    /// The contraction at `i` (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`, any case): its end.
    fn contraction(t: &[u8], i: usize) -> Option<usize> {
        if at(t, i) != Some(b'\'') {
            return None;
        }
        let lower = |k: usize| at(t, k).map(|b| b.to_ascii_lowercase());
        match lower(i + 1)? {
            b's' | b't' | b'm' | b'd' => Some(i + 2),
            b'r' | b'v' if lower(i + 2) == Some(b'e') => Some(i + 3),
            b'l' if lower(i + 2) == Some(b'l') => Some(i + 3),
            _ => None,
        }
    }
    /// The start of letters at `i`, after an optional prefix character.
    fn letters_at(t: &[u8], i: usize) -> Option<usize> {
        if is_letter(t[i]) {
            Some(i)
        } else if is_prefix(t[i]) && at(t, i + 1).is_some_and(is_letter) {
            Some(i + 1)
        } else {
            None
        }
    }
    /// ` ?[^\s\p{L}\p{N}]+` then a run of `trailing`.
    fn other_run(t: &[u8], i: usize, trailing: fn(u8) -> bool) -> Option<usize> {
        let start = if is_other(t[i]) {
            i
        } else if t[i] == b' ' && at(t, i + 1).is_some_and(is_other) {
            i + 1
        } else {
            return None;
        };
        Some(run(t, run(t, start, is_other), trailing))
    }
    /// End of the last newline in the whitespace run `i..end`, if any.
    fn through_last_newline(t: &[u8], i: usize, end: usize) -> Option<usize> {
        t[i..end]
            .iter()
            .rposition(|b| is_newline(*b))
            .map(|p| i + p + 1)
    }

    /// o200k_base: `[^\r\n\p{L}\p{N}]?[\p{Lu}…]*[\p{Ll}…]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`
    /// `| [^\r\n\p{L}\p{N}]?[\p{Lu}…]+[\p{Ll}…]*(?i:…)?` `| \p{N}{1,3}`
    /// `| ?[^\s\p{L}\p{N}]+[\r\n/]*` `| \s*[\r\n]+` `| \s+(?!\S)` `| \s+`
    pub(super) fn next_o200k(t: &[u8], i: usize) -> usize {
        if let Some(start) = letters_at(t, i) {
            // Upper case then lower case, both maximal: the first two alternatives.
            let end = run(t, run(t, start, is_upper), is_lower);
            return contraction(t, end).unwrap_or(end);
        }
        if is_digit(t[i]) {
            return run(t, i, is_digit).min(i + 3);
        }
        if let Some(end) = other_run(t, i, |b| is_newline(b) || b == b'/') {
            return end;
        }
        whitespace(t, i)
    }

    /// cl100k_base: `'(?i:[sdmt]|ll|ve|re)` `| [^\r\n\p{L}\p{N}]?+\p{L}++` `| \p{N}{1,3}+`
    /// `| ?[^\s\p{L}\p{N}]++[\r\n]*+` `| \s++$` `| \s*[\r\n]` `| \s+(?!\S)` `| \s`
    pub(super) fn next_cl100k(t: &[u8], i: usize) -> usize {
        if let Some(end) = contraction(t, i) {
            return end;
        }
        if let Some(start) = letters_at(t, i) {
            return run(t, start, is_letter);
        }
        if is_digit(t[i]) {
            return run(t, i, is_digit).min(i + 3);
        }
        if let Some(end) = other_run(t, i, is_newline) {
            return end;
        }
        let end = run(t, i, is_space);
        if end == t.len() {
            return end;
        }
        whitespace(t, i)
    }

    /// The whitespace alternatives shared by both encodings, at a whitespace byte `i`:
    /// through the run's last newline; else the run but its last byte when something
    /// follows (`\s+(?!\S)`); else the single byte.
    fn whitespace(t: &[u8], i: usize) -> usize {
        let end = run(t, i, is_space);
        if let Some(nl) = through_last_newline(t, i, end) {
            return nl;
        }
        if end == t.len() {
            end
        } else if end - i >= 2 {
            end - 1
        } else {
            (i + 1).max(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in TokenizerName::ALL {
            assert_eq!(t.as_str().parse::<TokenizerName>(), Ok(t));
        }
        assert!("gpt2".parse::<TokenizerName>().is_err());
    }

    #[test]
    fn counts_differ_between_encodings_where_vocabularies_differ() {
        // Known ids from OpenAI's published examples.
        let cl = TokenCounter::new(TokenizerName::Cl100kBase);
        assert_eq!(cl.encode("hello world"), vec![15339, 1917]);
        let o = TokenCounter::new(TokenizerName::O200kBase);
        assert_eq!(o.encode("hello world"), vec![24912, 2375]);
        assert_eq!(o.count(""), 0);
    }

    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "a",
        "b",
        "Z",
        "Q",
        "word",
        "Word",
        "WORD",
        "wORD",
        "'",
        "s",
        "S",
        "t",
        "re",
        "RE",
        "ve",
        "ll",
        "Ll",
        "m",
        "d",
        "x",
        " ",
        "  ",
        "   ",
        "\n",
        "\r",
        "\r\n",
        "\n\n",
        "\t",
        "\x0b",
        "\x0c",
        "1",
        "12",
        "1234567",
        "/",
        "//",
        ".",
        "...",
        "!",
        "?",
        "\"",
        "-",
        "_",
        "(",
        ")",
        "\x00",
        "\x1f",
        "\x7f",
        "don't",
        "I'M",
        "we'll",
        "they've",
        "'s",
        "'re",
        "http://x.y/z",
        "a/b",
        "<|endoftext|>",
        "\u{2019}",
        "don\u{2019}t",
        "\u{201C}",
        "\u{201D}",
        "\u{2014}",
        "\u{2013}",
        "\u{2026}",
        "\u{00A0}",
        "\u{00B4}",
        "\u{2022}",
        "caf\u{00E9}",
        "\u{00C9}T\u{00C9}",
        "\u{00DF}",
        "\u{00D7}",
        "\u{00F7}",
        "\u{00FF}",
        "na\u{00EF}ve",
        "\u{00C0}",
        "\u{00DE}",
        "\u{00DF}e",
        "\u{00E9}",
        "\u{0301}",
        "\u{03A9}",
        "\u{1F642}",
        "\u{4E2D}",
        "\u{0085}",
        "\u{2028}",
        "\u{00AA}",
        "\u{00B5}",
        "\u{00B2}",
        "\u{00BA}",
        "\u{00BC}",
        "\u{00BF}",
        "\u{00A3}",
        "\u{00AD}",
        "\u{00A1}",
        "\u{00B7}",
    ];

    fn both_paths_agree(text: &str) -> Result<(), TestCaseError> {
        for name in TokenizerName::ALL {
            let c = TokenCounter::new(name);
            let reference = c.encode_reference(text);
            prop_assert_eq!(&c.encode(text), &reference, "{} on {:?}", name, text);
            prop_assert_eq!(c.count(text), reference.len() as u64);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn ascii_fast_path_equals_tiktoken_on_tricky_pieces(
            parts in proptest::collection::vec(proptest::sample::select(PIECES), 0..24)
        ) {
            both_paths_agree(&parts.concat())?;
        }

        #[test]
        fn ascii_fast_path_equals_tiktoken_on_any_ascii(text in "[\\x00-\\x7f]{0,80}") {
            both_paths_agree(&text)?;
        }

        #[test]
        fn fast_path_equals_tiktoken_on_latin1_and_punctuation(
            text in "[\\x00-\\x7f\\u{a0}-\\u{ff}\\u{2010}-\\u{2030}]{0,60}"
        ) {
            both_paths_agree(&text)?;
        }
    }

    #[test]
    fn long_runs_and_unusual_pieces_agree() {
        for text in [
            " ".repeat(300),
            format!("{}x", " ".repeat(300)),
            "a".repeat(5000),
            "ab1".repeat(400),
            "!".repeat(1000),
            format!("{}\n{}", "\n ".repeat(50), " ".repeat(7)),
            "Mixed   spacing\t\tand\r\n\r\nlines  \n".repeat(20),
        ] {
            both_paths_agree(&text).expect("agree");
        }
    }

    #[test]
    fn special_token_text_is_ordinary_text() {
        let o = TokenCounter::new(TokenizerName::O200kBase);
        assert!(o.count("<|endoftext|>") > 1);
    }
}
