//! Measuring redaction on labelled text: how much of what people labelled as identifiers the
//! redaction replaces, and how much of what it replaces was labelled.
//!
//! The input is one `{"text", "spans": [{"start", "end", "type"}]}` document per line, with
//! code-point offsets (the format of the labelled sets gatehouse is developed against). Each
//! document is redacted as a one-message conversation, exactly as the build redacts a
//! message ([`replaced_regions`]). Scoring:
//! - a labelled span is **caught** when at least half of its characters lie inside text the
//!   redaction replaced (by any placeholder type);
//! - a replaced region is a **true positive** when it overlaps any labelled span (of any
//!   type: a redacted clinic name is not a false alarm).
//!
//! Recall is reported per labelled type and for the direct identifiers together (person,
//! street address, phone, email, card, SSN, IBAN, IP, licence and other ID numbers), with
//! 95% Wilson intervals; precision per placeholder type and overall. Nothing here returns
//! or logs text: counts only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Allowlist, Detector, PiiType, replaced_regions};

/// Labelled types that are direct identifiers.
pub const DIRECT_TYPES: &[&str] = &[
    "PERSON",
    "NAME",
    "ADDRESS",
    "STREET_ADDRESS",
    "PHONE",
    "PHONE_NUMBER",
    "EMAIL",
    "EMAIL_ADDRESS",
    "CARD",
    "CREDIT_CARD",
    "SSN",
    "US_SSN",
    "IBAN",
    "IBAN_CODE",
    "IP",
    "IP_ADDRESS",
    "ID",
    "ID_NUMBER",
    "LICENSE",
    "LICENCE",
    "PASSPORT",
    "MRN",
    "ACCOUNT",
];

/// Whether a labelled type is a direct identifier.
pub fn is_direct(label: &str) -> bool {
    DIRECT_TYPES.contains(&label)
}

/// One labelled span, in code points of the document's text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Gold {
    pub start: usize,
    pub end: usize,
    #[serde(rename = "type")]
    pub kind: String,
}

/// One labelled document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Document {
    pub text: String,
    #[serde(default)]
    pub spans: Vec<Gold>,
}

/// Why a line is not a labelled document (never quotes the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentError {
    Json(String),
    Span {
        index: usize,
        start: usize,
        end: usize,
        chars: usize,
    },
}

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocumentError::Json(e) => write!(f, "not a labelled document: {e}"),
            DocumentError::Span {
                index,
                start,
                end,
                chars,
            } => write!(
                f,
                "span {index} ({start}..{end}) does not fit the text ({chars} code points)"
            ),
        }
    }
}

impl std::error::Error for DocumentError {}

impl Document {
    /// Parses one line and checks every span lies inside the text. Types are upper-cased.
    pub fn parse(line: &str) -> Result<Document, DocumentError> {
        let mut d: Document =
            serde_json::from_str(line).map_err(|e| DocumentError::Json(category(&e)))?;
        let chars = d.text.chars().count();
        for (index, s) in d.spans.iter_mut().enumerate() {
            if s.start >= s.end || s.end > chars {
                return Err(DocumentError::Span {
                    index,
                    start: s.start,
                    end: s.end,
                    chars,
                });
            }
            s.kind = s.kind.to_ascii_uppercase();
        }
        Ok(d)
    }
}

/// A serde_json error without the input it quotes.
fn category(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "missing or mistyped field (text, spans)",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{what} at column {}", e.column())
}

/// Found out of all: a recall or a precision, with its 95% Wilson interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rate {
    pub hits: u64,
    pub total: u64,
}

impl Rate {
    /// The share, or `None` when there is nothing to measure.
    pub fn value(&self) -> Option<f64> {
        (self.total > 0).then(|| self.hits as f64 / self.total as f64)
    }

    /// The 95% Wilson score interval.
    pub fn wilson(&self) -> Option<(f64, f64)> {
        wilson(self.hits, self.total)
    }

    fn add(&mut self, hit: bool) {
        self.total += 1;
        self.hits += u64::from(hit);
    }

    fn merge(&mut self, o: Rate) {
        self.hits += o.hits;
        self.total += o.total;
    }
}

/// The 95% Wilson score interval of `hits` out of `n`.
pub fn wilson(hits: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n_f = n as f64;
    let p = hits as f64 / n_f;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = Z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / (1.0 + z2 / n_f);
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// F-beta with beta = 2 (recall weighs four times precision).
pub fn f2(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        return 0.0;
    }
    5.0 * precision * recall / (4.0 * precision + recall)
}

/// The scores of a labelled set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    pub documents: u64,
    pub characters: u64,
    /// Caught out of labelled, per labelled type.
    pub recall_by_type: BTreeMap<String, Rate>,
    /// Caught out of labelled, over the direct identifiers.
    pub recall_direct: Rate,
    /// True positives out of replaced regions, per placeholder type.
    pub precision_by_type: BTreeMap<PiiType, Rate>,
    /// True positives out of every replaced region.
    pub precision: Rate,
    /// Documents whose redaction did not settle (held for review by the build).
    pub unsettled: u64,
}

impl Evaluation {
    /// Redacts `doc` as the build would and adds its scores.
    pub fn add(&mut self, detector: &Detector, allow: &Allowlist, doc: &Document) {
        let (regions, settled) = replaced_regions(detector, allow, &[doc.text.as_str()]);
        let regions = regions.into_iter().next().unwrap_or_default();
        self.documents += 1;
        self.characters += doc.text.chars().count() as u64;
        self.unsettled += u64::from(!settled);
        let replaced: Vec<(usize, usize)> =
            regions.iter().map(|r| (r.char_start, r.char_end)).collect();
        for g in &doc.spans {
            let inside: usize = replaced
                .iter()
                .map(|&(a, b)| b.min(g.end).saturating_sub(a.max(g.start)))
                .sum();
            let caught = 2 * inside >= g.end - g.start;
            self.recall_by_type
                .entry(g.kind.clone())
                .or_default()
                .add(caught);
            if is_direct(&g.kind) {
                self.recall_direct.add(caught);
            }
        }
        for r in &regions {
            let hit = doc
                .spans
                .iter()
                .any(|g| g.start < r.char_end && r.char_start < g.end);
            self.precision_by_type.entry(r.kind).or_default().add(hit);
            self.precision.add(hit);
        }
    }

    /// Adds another evaluation's scores (order does not matter).
    pub fn merge(&mut self, o: Evaluation) {
        self.documents += o.documents;
        self.characters += o.characters;
        self.unsettled += o.unsettled;
        for (k, v) in o.recall_by_type {
            self.recall_by_type.entry(k).or_default().merge(v);
        }
        self.recall_direct.merge(o.recall_direct);
        for (k, v) in o.precision_by_type {
            self.precision_by_type.entry(k).or_default().merge(v);
        }
        self.precision.merge(o.precision);
    }

    /// F2 over the direct identifiers (their recall, overall precision).
    pub fn f2_direct(&self) -> Option<f64> {
        Some(f2(self.precision.value()?, self.recall_direct.value()?))
    }

    /// A plain-text table: recall per labelled type, precision per placeholder type.
    pub fn table(&self) -> String {
        let pct = |r: &Rate| match (r.value(), r.wilson()) {
            (Some(v), Some((lo, hi))) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
            _ => "-".to_string(),
        };
        let mut s = format!(
            "{} documents, {} characters\n{:<16} {:>7} {:>7}  recall [95% CI]\n",
            self.documents, self.characters, "labelled type", "spans", "caught"
        );
        for (k, r) in &self.recall_by_type {
            let mark = if is_direct(k) { "*" } else { " " };
            s.push_str(&format!(
                "{:<16} {:>7} {:>7}  {}\n",
                format!("{k}{mark}"),
                r.total,
                r.hits,
                pct(r)
            ));
        }
        s.push_str(&format!(
            "{:<16} {:>7} {:>7}  {}\n",
            "direct*",
            self.recall_direct.total,
            self.recall_direct.hits,
            pct(&self.recall_direct)
        ));
        s.push_str(&format!(
            "{:<16} {:>7} {:>7}  precision [95% CI]\n",
            "replaced as", "regions", "true"
        ));
        for (k, r) in &self.precision_by_type {
            s.push_str(&format!(
                "{:<16} {:>7} {:>7}  {}\n",
                k.label(),
                r.total,
                r.hits,
                pct(r)
            ));
        }
        s.push_str(&format!(
            "{:<16} {:>7} {:>7}  {}\n",
            "all",
            self.precision.total,
            self.precision.hits,
            pct(&self.precision)
        ));
        if let Some(f) = self.f2_direct() {
            s.push_str(&format!("F2 (direct recall, all precision): {f:.3}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_textbook() {
        let (lo, hi) = wilson(81, 100).unwrap();
        assert!(
            (lo - 0.7222).abs() < 1e-3 && (hi - 0.8749).abs() < 1e-3,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), None);
        let (lo, hi) = wilson(10, 10).unwrap();
        assert!(lo > 0.69 && hi > 0.999, "{lo} {hi}");
    }

    #[test]
    fn spans_must_fit_the_text() {
        let e = Document::parse(r#"{"text":"héllo","spans":[{"start":2,"end":6,"type":"x"}]}"#);
        assert!(matches!(e, Err(DocumentError::Span { chars: 5, .. })));
        let d = Document::parse(r#"{"text":"héllo","spans":[{"start":1,"end":5,"type":"x"}]}"#)
            .unwrap();
        assert_eq!(d.spans[0].kind, "X");
        let e = Document::parse(r#"{"text":"secret words"#).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn caught_needs_half_the_characters_and_precision_any_overlap() {
        let detector = Detector::new();
        let text = "Call me on 415-555-0132, I'm Dana.";
        let doc = Document {
            text: text.to_string(),
            spans: vec![
                // The phone with a trailing comma: 12 of 13 characters replaced.
                Gold {
                    start: 11,
                    end: 24,
                    kind: "PHONE".into(),
                },
                // A label nothing replaced.
                Gold {
                    start: 0,
                    end: 4,
                    kind: "OTHER".into(),
                },
            ],
        };
        let mut e = Evaluation::default();
        e.add(&detector, &Allowlist::default(), &doc);
        assert_eq!(e.recall_by_type["PHONE"], Rate { hits: 1, total: 1 });
        assert_eq!(e.recall_by_type["OTHER"], Rate { hits: 0, total: 1 });
        assert_eq!(e.recall_direct, Rate { hits: 1, total: 1 });
        // "Dana" was replaced but not labelled: a false positive.
        assert_eq!(e.precision, Rate { hits: 1, total: 2 });
    }
}
