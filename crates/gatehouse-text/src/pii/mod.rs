//! PII detection: direct identifiers in conversation text, found by pattern and context
//! rules with validation (Luhn for cards, SSN ranges, address and birth-date contexts, IPv6
//! parsing) and, for person names, context rules plus first/last-name lists with an
//! ambiguity list. Crisis resources (988, 741741, 1-800-273-8255, …) are never PII.
//!
//! The detector reports spans with byte and char offsets and a confidence; what to do with
//! them (redact, or hold a record for review) is the caller's policy, see [`redact`].
//! Detection never logs or returns text other than the spans' offsets into the caller's
//! own string.

mod address;
mod crisis;
mod dates;
pub mod eval;
mod names;
mod patterns;
pub mod redact;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use redact::{Redaction, Replaced, UnsurePolicy, redact_conversation, replaced_regions};

/// A kind of identifier. The order is the priority when two detections overlap with the
/// same extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PiiType {
    Email,
    Ssn,
    Card,
    Phone,
    Ip,
    Url,
    Handle,
    Dob,
    IdNumber,
    Address,
    Name,
    /// An IBAN (checked with ISO 13616 mod-97).
    Iban,
    /// A date other than a birth date (with `dates = "all"`: every date element but the year).
    Date,
    /// An age over 89 (with `dates = "all"`, as HIPAA Safe Harbor asks).
    Age,
}

impl PiiType {
    pub const ALL: [PiiType; 14] = [
        PiiType::Email,
        PiiType::Ssn,
        PiiType::Card,
        PiiType::Phone,
        PiiType::Ip,
        PiiType::Url,
        PiiType::Handle,
        PiiType::Dob,
        PiiType::IdNumber,
        PiiType::Address,
        PiiType::Name,
        PiiType::Iban,
        PiiType::Date,
        PiiType::Age,
    ];

    /// The placeholder word, e.g. `NAME` in `[NAME_1]`.
    pub fn label(self) -> &'static str {
        match self {
            PiiType::Email => "EMAIL",
            PiiType::Ssn => "SSN",
            PiiType::Card => "CARD",
            PiiType::Phone => "PHONE",
            PiiType::Ip => "IP",
            PiiType::Url => "URL",
            PiiType::Handle => "HANDLE",
            PiiType::Dob => "DOB",
            PiiType::IdNumber => "ID_NUMBER",
            PiiType::Address => "ADDRESS",
            PiiType::Name => "NAME",
            PiiType::Iban => "IBAN",
            PiiType::Date => "DATE",
            PiiType::Age => "AGE",
        }
    }

    /// Stable finding code, e.g. `PII001` (documented in gatehouse-core's finding-code
    /// registry, `report::codes::privacy`, which takes it from here).
    pub const fn code(self) -> &'static str {
        match self {
            PiiType::Email => "PII001",
            PiiType::Phone => "PII002",
            PiiType::Ssn => "PII003",
            PiiType::Card => "PII004",
            PiiType::Ip => "PII005",
            PiiType::Address => "PII006",
            PiiType::Dob => "PII007",
            PiiType::IdNumber => "PII008",
            PiiType::Url => "PII009",
            PiiType::Handle => "PII010",
            PiiType::Name => "PII011",
            PiiType::Iban => "PII013",
            PiiType::Date => "PII014",
            PiiType::Age => "PII015",
        }
    }

    /// Finding name, e.g. `email-address`.
    pub const fn name(self) -> &'static str {
        match self {
            PiiType::Email => "email-address",
            PiiType::Phone => "phone-number",
            PiiType::Ssn => "us-social-security-number",
            PiiType::Card => "payment-card-number",
            PiiType::Ip => "ip-address",
            PiiType::Address => "street-address",
            PiiType::Dob => "date-of-birth",
            PiiType::IdNumber => "record-or-licence-number",
            PiiType::Url => "personal-url",
            PiiType::Handle => "social-handle",
            PiiType::Name => "person-name",
            PiiType::Iban => "iban",
            PiiType::Date => "date",
            PiiType::Age => "age-over-89",
        }
    }

    pub fn from_label(s: &str) -> Option<PiiType> {
        Self::ALL.into_iter().find(|t| t.label() == s)
    }
}

impl fmt::Display for PiiType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Which dates are identifiers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatePolicy {
    /// Dates of birth only (a date after a birth cue).
    #[default]
    Birth,
    /// HIPAA Safe Harbor: every date element except the year (day and month, month and
    /// year, weekday dates), and every age over 89.
    All,
}

/// What the detector looks for: the privacy policy of a release. The same policy must be
/// used by the build and the privacy gate (the gate's scan is the build's fixpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub dates: DatePolicy,
    /// Types never reported (e.g. `HANDLE` for a dataset of public posts). Empty by default.
    #[serde(default)]
    pub disabled: BTreeSet<PiiType>,
}

impl Policy {
    pub fn enabled(&self, kind: PiiType) -> bool {
        !self.disabled.contains(&kind)
            && (self.dates == DatePolicy::All || !matches!(kind, PiiType::Date | PiiType::Age))
    }
}

/// How sure the detector is. `Unsure` spans follow the configured policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Unsure,
    Sure,
}

/// One detection: `text[start..end]` (bytes) is `chars_start..chars_end` in chars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub kind: PiiType,
    pub start: usize,
    pub end: usize,
    pub char_start: usize,
    pub char_end: usize,
    pub confidence: Confidence,
    /// Which rule found it (for evaluation and reports; never the text).
    pub rule: &'static str,
}

/// Strings that are not PII for one dataset (a persona's public name, a clinic's published
/// number), compared case-insensitively with whitespace collapsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: BTreeSet<String>,
}

impl Allowlist {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> Self {
        Self {
            entries: items.into_iter().map(|s| normalise(s.as_ref())).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn allows(&self, text: &str) -> bool {
        !self.entries.is_empty() && self.entries.contains(&normalise(text))
    }
}

/// Lower case, whitespace collapsed: how allowlists and placeholder identities compare.
pub(crate) fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out
}

/// The detector. Built once (name lists, compiled patterns) and shared across threads.
#[derive(Debug)]
pub struct Detector {
    patterns: patterns::Patterns,
    names: names::Names,
    policy: Policy,
}

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

/// Public figures of the field whose names are content, not PII.
const BUILT_IN_ALLOWED: &[&str] = &[
    "sigmund freud",
    "freud",
    "carl jung",
    "jung",
    "carl rogers",
    "aaron beck",
    "judith beck",
    "albert ellis",
    "marsha linehan",
    "abraham maslow",
    "maslow",
    "john bowlby",
    "bowlby",
    "mary ainsworth",
    "erik erikson",
    "erikson",
    "b. f. skinner",
    "skinner",
    "ivan pavlov",
    "pavlov",
    "jean piaget",
    "piaget",
    "alfred adler",
    "adler",
    "viktor frankl",
    "frankl",
    "albert bandura",
    "bandura",
    "martin seligman",
    "john gottman",
    "julie gottman",
    "brené brown",
    "brene brown",
    "elisabeth kübler-ross",
    "kübler-ross",
    "kubler-ross",
    "irvin yalom",
    "yalom",
    "donald winnicott",
    "winnicott",
    "melanie klein",
    "karen horney",
    "steven hayes",
    "kristin neff",
    "jon kabat-zinn",
    "kabat-zinn",
    "william miller",
    "stephen rollnick",
    "bessel van der kolk",
    "van der kolk",
    "gabor maté",
    "gabor mate",
    "jesus",
    "jesus christ",
    "christ",
    "god",
    "allah",
    "buddha",
];

impl Detector {
    /// The detector with the default policy (birth dates, every type).
    pub fn new() -> Self {
        Self::with_policy(Policy::default())
    }

    pub fn with_policy(policy: Policy) -> Self {
        Self {
            patterns: patterns::Patterns::new(),
            names: names::Names::load(),
            policy,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Every identifier in `text`, sorted, non-overlapping, crisis resources and allowlisted
    /// strings left out.
    pub fn detect(&self, text: &str, allow: &Allowlist) -> Vec<Span> {
        let raw = self.raw(text, allow);
        with_char_offsets(text, resolve_overlaps(raw))
    }

    /// Every identifier in each message of one conversation: [`Self::detect`] per message,
    /// and every mention anywhere in the conversation of a name found in any message, or of
    /// a part of it, in any case or possessive ("my name is Oluwaseun Adeyemi" … "thank you,
    /// Oluwaseun"). This is the scan both redaction and the privacy gate run.
    pub fn detect_conversation(&self, texts: &[&str], allow: &Allowlist) -> Vec<Vec<Span>> {
        self.detect_conversation_where(texts, allow, &vec![true; texts.len()])
    }

    /// [`Self::detect_conversation`], where a message whose `scan` is false is known to
    /// hold nothing of its own (it was scanned before and found clean, and has not
    /// changed): only mentions of names found elsewhere are looked for in it.
    pub(crate) fn detect_conversation_where(
        &self,
        texts: &[&str],
        allow: &Allowlist,
        scan: &[bool],
    ) -> Vec<Vec<Span>> {
        let mut raw: Vec<Vec<RawSpan>> = texts
            .iter()
            .zip(scan)
            .map(|(t, &scan)| if scan { self.raw(t, allow) } else { Vec::new() })
            .collect();
        let mut known: BTreeMap<String, bool> = BTreeMap::new();
        for (text, spans) in texts.iter().zip(&raw) {
            for s in spans.iter().filter(|s| s.kind == PiiType::Name) {
                for part in text[s.start..s.end]
                    .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
                    .map(|p| p.trim_end_matches("'s").trim_end_matches("’s"))
                    .map(|p| p.trim_matches(['\'', '’']).to_lowercase())
                {
                    if let Some(capital_only) = self.names.memorable(&part) {
                        let e = known.entry(part).or_insert(capital_only);
                        *e &= capital_only;
                    }
                }
            }
        }
        if !known.is_empty() {
            for (text, spans) in texts.iter().zip(&mut raw) {
                let mut again = Vec::new();
                self.names.mentions(text, &known, &mut again);
                // A mention adds a name where nothing else was found; it does not make
                // a detection already there surer.
                let mut found: Vec<(usize, usize)> =
                    spans.iter().map(|d| (d.start, d.end)).collect();
                found.sort_unstable();
                let reach: Vec<usize> = found
                    .iter()
                    .scan(0, |m, &(_, e)| {
                        *m = (*m).max(e);
                        Some(*m)
                    })
                    .collect();
                again.retain(|s| {
                    // The spans starting before this one's end; the furthest any reaches.
                    let before = found.partition_point(|&(a, _)| a < s.end);
                    let overlaps = before > 0 && reach[before - 1] > s.start;
                    !allowed(text, s, allow) && !overlaps
                });
                spans.extend(again);
            }
        }
        texts
            .iter()
            .zip(raw)
            .map(|(text, spans)| with_char_offsets(text, resolve_overlaps(spans)))
            .collect()
    }

    /// Detections in one text before overlaps are resolved, allowed strings left out.
    fn raw(&self, text: &str, allow: &Allowlist) -> Vec<RawSpan> {
        let mut raw: Vec<RawSpan> = Vec::new();
        self.patterns.find(text, &mut raw);
        if self.policy.dates == DatePolicy::All {
            self.patterns.find_dates(text, &mut raw);
        }
        self.names.find(text, &mut raw);
        raw.retain(|s| self.policy.enabled(s.kind) && !allowed(text, s, allow));
        raw
    }
}

/// Left alone: a placeholder already, on the dataset's allowlist, or a public figure.
fn allowed(text: &str, s: &RawSpan, allow: &Allowlist) -> bool {
    let t = &text[s.start..s.end];
    placeholder_at(text, s.start, s.end)
        || allow.allows(t)
        || (s.kind == PiiType::Name && {
            let n = normalise(t);
            BUILT_IN_ALLOWED.contains(&n.as_str()) || crisis::is_crisis_name(&n)
        })
}

/// A detection before overlap resolution and char offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawSpan {
    pub kind: PiiType,
    pub start: usize,
    pub end: usize,
    pub confidence: Confidence,
    pub rule: &'static str,
}

/// Keeps the longest of overlapping spans (then the surer, then by type priority).
fn resolve_overlaps(mut raw: Vec<RawSpan>) -> Vec<RawSpan> {
    raw.sort_by(|a, b| {
        (b.end - b.start)
            .cmp(&(a.end - a.start))
            .then(b.confidence.cmp(&a.confidence))
            .then(a.kind.cmp(&b.kind))
            .then(a.start.cmp(&b.start))
    });
    // Kept spans by start, disjoint: a span overlaps a kept one only if the kept span
    // starting last before its end reaches past its start.
    let mut kept: BTreeMap<usize, RawSpan> = BTreeMap::new();
    for s in raw {
        let clear = kept
            .range(..s.end)
            .next_back()
            .is_none_or(|(_, k)| k.end <= s.start);
        if clear {
            kept.insert(s.start, s);
        }
    }
    kept.into_values().collect()
}

fn with_char_offsets(text: &str, spans: Vec<RawSpan>) -> Vec<Span> {
    let mut out = Vec::with_capacity(spans.len());
    let (mut byte, mut chars) = (0usize, 0usize);
    let mut advance = |to: usize| {
        chars += text[byte..to].chars().count();
        byte = to;
        chars
    };
    for s in spans {
        let char_start = advance(s.start);
        let char_end = advance(s.end);
        out.push(Span {
            kind: s.kind,
            start: s.start,
            end: s.end,
            char_start,
            char_end,
            confidence: s.confidence,
            rule: s.rule,
        });
    }
    out
}

/// Whether `start..end` lies inside a redaction placeholder such as `[NAME_2]`.
fn placeholder_at(text: &str, start: usize, end: usize) -> bool {
    // A placeholder is short ("[ID_NUMBER_12]"): look only that far.
    const NEAR: usize = 24;
    let mut from = start.saturating_sub(NEAR);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = (end + NEAR).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let open = text[from..start].rfind('[').map(|i| from + i);
    let close = text[end..to].find(']').map(|i| end + i);
    match (open, close) {
        (Some(o), Some(c)) => redact::is_placeholder(&text[o..=c]),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
