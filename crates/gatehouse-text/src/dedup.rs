//! Duplicate detection primitives, shared by the build (which removes duplicates) and the
//! gates (which verify that none are left and that no split leaks into another).
//!
//! - **Exact duplicates** compare a 128-bit key ([`exact_key`]) of the conversation's roles
//!   and contents after [`normalise`]: Unicode NFKC, lower case, whitespace runs collapsed
//!   to one space, trimmed.
//! - **Near duplicates** compare sets of word shingles ([`Shingler`]): the normalised text
//!   is split into words (runs of letters and digits), `k` consecutive words make a
//!   shingle, and a shingle is identified by 32 bits of its xxh3 hash. The Jaccard index of
//!   two shingle sets ([`jaccard`]) is the similarity. [`MinHasher`] gives each set a
//!   signature of `bands × rows` minimum hashes and LSH band keys, so that pairs above the
//!   threshold share a band key with high probability (`1 - (1 - J^rows)^bands`); those
//!   candidates are then verified by their exact Jaccard index.
//!
//! Every hash here is xxh3 (a specified algorithm) or our own arithmetic on fixed seeds,
//! so signatures do not change with dependency upgrades; a golden test pins them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, xxh3_128};

/// Version of the definitions in this module; recorded in manifests and reports.
pub const DEDUP_VERSION: &str = "gatehouse-dedup-v1";

/// Text as duplicate detection sees it: NFKC, lower case, whitespace runs collapsed to
/// one space, trimmed. Appended to `out`.
pub fn normalise(text: &str, out: &mut String) {
    if text.is_ascii() {
        // ASCII is NFKC already; whitespace is 0x09–0x0D and space, as `char::is_whitespace`.
        let mut first = true;
        for word in text
            .split(|c: char| matches!(c, '\t'..='\r' | ' '))
            .filter(|w| !w.is_empty())
        {
            if !first {
                out.push(' ');
            }
            first = false;
            let start = out.len();
            out.push_str(word);
            out[start..].make_ascii_lowercase();
        }
        return;
    }
    normalise_unicode(text, out);
}

/// [`normalise`] for any text.
fn normalise_unicode(text: &str, out: &mut String) {
    let nfkc: Cow<'_, str> = if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfkc().collect())
    };
    let mut first = true;
    for word in nfkc.split_whitespace() {
        if !first {
            out.push(' ');
        }
        first = false;
        if word
            .bytes()
            .all(|b| !b.is_ascii_uppercase() && b.is_ascii())
        {
            out.push_str(word);
        } else {
            out.extend(word.chars().flat_map(char::to_lowercase));
        }
    }
}

/// The exact-duplicate key of a conversation: xxh3-128 over each message's role and
/// normalised content, with separators.
pub fn exact_key<'a>(messages: impl IntoIterator<Item = (&'a str, &'a str)>) -> u128 {
    let mut buf = String::new();
    for (role, content) in messages {
        buf.push_str(role);
        buf.push('\u{1F}');
        normalise(content, &mut buf);
        buf.push('\u{1E}');
    }
    xxh3_128(buf.as_bytes())
}

/// Near-duplicate parameters. Recorded in the manifest; changing any of them changes which
/// records are near duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearDupParams {
    /// Words per shingle.
    pub shingle_words: usize,
    /// LSH bands; `bands × rows` min-hashes per signature.
    pub bands: usize,
    /// Min-hashes per band.
    pub rows: usize,
    /// A candidate pair is a near duplicate when the Jaccard index of its shingle sets is
    /// at least this.
    pub threshold: f64,
    /// Seed of the min-hash functions.
    pub seed: u64,
}

impl Default for NearDupParams {
    fn default() -> Self {
        // 25 × 5: a pair at Jaccard 0.7 becomes a candidate with probability 0.990, at 0.8
        // with 0.99997, at 0.3 with 0.06.
        Self {
            shingle_words: 5,
            bands: 25,
            rows: 5,
            threshold: 0.7,
            seed: 1,
        }
    }
}

impl NearDupParams {
    /// A problem with the parameters, if any.
    pub fn problem(&self) -> Option<String> {
        if self.shingle_words == 0 || self.shingle_words > 32 {
            return Some("dedup shingle_words must be between 1 and 32".into());
        }
        if self.bands == 0 || self.rows == 0 || self.bands * self.rows > 1024 {
            return Some(
                "dedup bands and rows must be at least 1, bands × rows at most 1024".into(),
            );
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Some("dedup threshold must be in (0, 1]".into());
        }
        None
    }

    /// Probability that a pair with Jaccard index `j` shares at least one band key.
    pub fn candidate_probability(&self, j: f64) -> f64 {
        let rows = i32::try_from(self.rows).unwrap_or(i32::MAX);
        let bands = i32::try_from(self.bands).unwrap_or(i32::MAX);
        1.0 - (1.0 - j.powi(rows)).powi(bands)
    }
}

/// Turns a conversation's texts into its sorted set of shingle ids.
#[derive(Debug, Clone)]
pub struct Shingler {
    words: usize,
    /// Normalised phrases left out of the shingles (configured boilerplate).
    boilerplate: Vec<String>,
}

impl Shingler {
    pub fn new(params: &NearDupParams) -> Self {
        Self::with_boilerplate(params, &[] as &[&str])
    }

    /// A shingler that leaves the given phrases (compared after [`normalise`]) out.
    pub fn with_boilerplate<S: AsRef<str>>(params: &NearDupParams, boilerplate: &[S]) -> Self {
        Self {
            words: params.shingle_words.max(1),
            boilerplate: boilerplate
                .iter()
                .map(|b| {
                    let mut n = String::new();
                    normalise(b.as_ref(), &mut n);
                    n
                })
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// The shingle set of `texts` (in order, as one stream of words), sorted and without
    /// repeats, into `out` (cleared first). A text with fewer words than a shingle gives one
    /// shingle of all its words; a text without words gives the empty set.
    pub fn shingles<'a>(&self, texts: impl IntoIterator<Item = &'a str>, out: &mut Vec<u32>) {
        out.clear();
        let mut norm = String::new();
        let mut word_hashes: Vec<u64> = Vec::new();
        for text in texts {
            norm.clear();
            normalise(text, &mut norm);
            for phrase in &self.boilerplate {
                if norm.contains(phrase.as_str()) {
                    norm = norm.replace(phrase.as_str(), " ");
                }
            }
            if norm.is_ascii() {
                word_hashes.extend(
                    norm.as_bytes()
                        .split(|b| !b.is_ascii_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .map(xxh3_64),
                );
            } else {
                word_hashes.extend(
                    norm.split(|c: char| !c.is_alphanumeric())
                        .filter(|w| !w.is_empty())
                        .map(|w| xxh3_64(w.as_bytes())),
                );
            }
        }
        if word_hashes.is_empty() {
            return;
        }
        let k = self.words.min(word_hashes.len());
        out.extend(word_hashes.windows(k).map(shingle_id));
        out.sort_unstable();
        out.dedup();
    }
}

/// A shingle's id from its words' hashes: an order-sensitive fold, finished by the
/// splitmix64 mixer; the low 32 bits.
fn shingle_id(words: &[u64]) -> u32 {
    let mut acc = 0x9E37_79B9_7F4A_7C15u64;
    for &h in words {
        acc = (acc.rotate_left(23) ^ h).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    let mut state = acc;
    splitmix64(&mut state) as u32
}

/// The Jaccard index of two sorted sets without repeats; 0 when both are empty.
pub fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// The Jaccard index estimated from two signatures' [`MinHasher::low_bytes`]: equal bytes
/// happen with probability `J + (1 - J) / 256`.
pub fn estimate_jaccard(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64;
    ((equal - 1.0 / 256.0) / (1.0 - 1.0 / 256.0)).max(0.0)
}

impl NearDupParams {
    /// Below this estimate a candidate pair is not verified: five standard errors under
    /// the threshold, so a pair at the threshold is skipped with probability under 1e-6.
    pub fn estimate_floor(&self) -> f64 {
        let n = (self.bands * self.rows) as f64;
        let t = self.threshold;
        t - 5.0 * (t * (1.0 - t) / n).sqrt()
    }
}

/// Min-hash signatures and LSH band keys.
///
/// Hash function `i` maps a 32-bit shingle id `x` to `(a_i · x + b_i) mod 2^64 >> 32`,
/// with `a_i` and `b_i` 64-bit numbers drawn by splitmix64 from the seed: Dietzfelbinger's
/// multiply-add-shift family, universal and one multiplication per hash.
#[derive(Debug, Clone)]
pub struct MinHasher {
    bands: usize,
    rows: usize,
    a: Vec<u64>,
    b: Vec<u64>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl MinHasher {
    pub fn new(params: &NearDupParams) -> Self {
        let n = params.bands * params.rows;
        let mut state = params.seed ^ 0x6761_7465_686F_7573; // "gatehous"
        let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            a.push(splitmix64(&mut state));
            b.push(splitmix64(&mut state));
        }
        Self {
            bands: params.bands,
            rows: params.rows,
            a,
            b,
        }
    }

    /// Min-hashes per signature.
    pub fn len(&self) -> usize {
        self.a.len()
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    pub fn bands(&self) -> usize {
        self.bands
    }

    /// The signature of a shingle set into `out` (resized to [`Self::len`]).
    pub fn signature(&self, shingles: &[u32], out: &mut Vec<u32>) {
        out.clear();
        // One hash function at a time over the (cached) set: its constants stay in
        // registers and the minimum is a plain reduction.
        out.extend(self.a.iter().zip(&self.b).map(|(&a, &b)| {
            shingles
                .iter()
                .map(|&x| (a.wrapping_mul(u64::from(x)).wrapping_add(b) >> 32) as u32)
                .min()
                .unwrap_or(u32::MAX)
        }));
    }

    /// The low 8 bits of each min-hash: a compact copy of the signature for estimating
    /// the Jaccard index of a pair ([`estimate_jaccard`]) before computing it exactly.
    pub fn low_bytes(signature: &[u32], out: &mut Vec<u8>) {
        out.clear();
        out.extend(signature.iter().map(|&m| m as u8));
    }

    /// The LSH band keys of a signature into `out` (cleared first): xxh3 of each band's
    /// rows, seeded with the band's index, so equal rows in different bands differ.
    pub fn band_keys(&self, signature: &[u32], out: &mut Vec<u64>) {
        out.clear();
        let mut bytes = Vec::with_capacity(4 * self.rows);
        for (band, rows) in signature.chunks(self.rows).enumerate() {
            bytes.clear();
            for r in rows {
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            out.push(xxh3_64_with_seed(&bytes, band as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &Shingler, texts: &[&str]) -> Vec<u32> {
        let mut out = Vec::new();
        s.shingles(texts.iter().copied(), &mut out);
        out
    }

    #[test]
    fn normalisation_folds_case_width_and_whitespace() {
        let mut a = String::new();
        normalise("  Hello\u{00A0}\tWORLD\n\n ﬁne  ", &mut a);
        assert_eq!(a, "hello world fine");
        assert_eq!(
            exact_key([
                ("user", "I feel  LOW today"),
                ("assistant", "Tell me more.")
            ]),
            exact_key([
                ("user", "i feel low today "),
                ("assistant", "tell me\nmore.")
            ])
        );
        assert_ne!(
            exact_key([("user", "I feel low today")]),
            exact_key([("assistant", "I feel low today")])
        );
        assert_ne!(
            exact_key([("user", "a"), ("user", "b")]),
            exact_key([("user", "a b")])
        );
    }

    proptest::proptest! {
        /// The ASCII fast path normalises exactly as the Unicode path does.
        #[test]
        fn ascii_normalisation_agrees(text in "[ -~\t\n\x0B\x0C\r\x1C-\x1F]{0,40}") {
            let (mut fast, mut general) = (String::new(), String::new());
            normalise(&text, &mut fast);
            normalise_unicode(&text, &mut general);
            proptest::prop_assert_eq!(fast, general);
        }
    }

    #[test]
    fn shingles_and_jaccard() {
        let s = Shingler::new(&NearDupParams {
            shingle_words: 2,
            ..NearDupParams::default()
        });
        let a = set(&s, &["the cat sat on the mat"]);
        assert_eq!(a.len(), 5);
        assert_eq!(jaccard(&a, &a), 1.0);
        let b = set(&s, &["The CAT sat, on the mat!"]);
        assert_eq!(a, b, "punctuation and case do not matter");
        let c = set(&s, &["the cat sat on the rug"]);
        assert!((jaccard(&a, &c) - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(set(&s, &["hello"]).len(), 1, "a short text is one shingle");
        assert!(set(&s, &["", " ... "]).is_empty());
        assert_eq!(jaccard(&[], &[]), 0.0);
        let b = Shingler::with_boilerplate(
            &NearDupParams {
                shingle_words: 2,
                ..NearDupParams::default()
            },
            &["You are a helpful  THERAPIST."],
        );
        assert_eq!(
            set(&b, &["You are a helpful therapist. the cat sat on the mat"]),
            a
        );
    }

    /// The signature of a fixed text never changes: a dependency upgrade that changed it
    /// would silently change which records are duplicates.
    #[test]
    fn signatures_are_pinned() {
        let p = NearDupParams::default();
        let s = Shingler::new(&p);
        let m = MinHasher::new(&p);
        let shingles = set(
            &s,
            &["I have been feeling anxious about work lately and cannot sleep"],
        );
        let (mut sig, mut keys) = (Vec::new(), Vec::new());
        m.signature(&shingles, &mut sig);
        m.band_keys(&sig, &mut keys);
        assert_eq!(sig.len(), 125);
        assert_eq!(keys.len(), 25);
        assert_eq!(
            (shingles[0], sig[0], sig[124], keys[0], keys[24]),
            (
                155_269_668,
                983_234_404,
                496_351_334,
                12_173_049_066_937_065_624,
                8_305_052_551_176_961_982
            )
        );
    }

    #[test]
    fn signatures_estimate_jaccard() {
        let p = NearDupParams {
            bands: 64,
            rows: 4,
            ..NearDupParams::default()
        };
        let s = Shingler::new(&p);
        let m = MinHasher::new(&p);
        let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let a = set(&s, &[&words[..300].join(" ")]);
        let b = set(&s, &[&words[60..360].join(" ")]);
        let exact = jaccard(&a, &b);
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        m.signature(&a, &mut sa);
        m.signature(&b, &mut sb);
        let estimate = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
        // 256 min-hashes: standard error about 0.03.
        assert!(
            (exact - estimate).abs() < 0.08,
            "exact {exact}, estimate {estimate}"
        );
    }

    #[test]
    fn low_bytes_estimate_jaccard_and_the_floor_keeps_pairs_at_the_threshold() {
        let p = NearDupParams::default();
        let s = Shingler::new(&p);
        let m = MinHasher::new(&p);
        let words: Vec<String> = (0..400).map(|i| format!("w{i}")).collect();
        let base = set(&s, &[&words[..200].join(" ")]);
        let low = |set: &[u32]| {
            let (mut sig, mut bytes) = (Vec::new(), Vec::new());
            m.signature(set, &mut sig);
            MinHasher::low_bytes(&sig, &mut bytes);
            bytes
        };
        let a = low(&base);
        assert_eq!(estimate_jaccard(&a, &a), 1.0);
        for shift in [10, 30, 60, 120] {
            let other = set(&s, &[&words[shift..200 + shift].join(" ")]);
            let exact = jaccard(&base, &other);
            let est = estimate_jaccard(&a, &low(&other));
            assert!(
                (exact - est).abs() < 0.2,
                "shift {shift}: exact {exact}, estimate {est}"
            );
        }
        let floor = p.estimate_floor();
        assert!(floor > 0.45 && floor < 0.55, "{floor}");
    }

    #[test]
    fn candidate_probability_follows_the_s_curve() {
        let p = NearDupParams::default();
        assert!(p.candidate_probability(0.8) > 0.999);
        assert!(p.candidate_probability(0.7) > 0.98);
        assert!(p.candidate_probability(0.2) < 0.01);
        assert!(p.problem().is_none());
        assert!(
            NearDupParams {
                threshold: 0.0,
                ..p
            }
            .problem()
            .is_some()
        );
    }
}
