//! `[privacy]`: the release's privacy policy (what the PII detector looks for) and its
//! measured performance on labelled sets.
//!
//! One [`Detector`] is built from the policy ([`PrivacyConfig::detector`]) and used by both
//! the build (redaction) and the privacy gate (the re-scan), so the gate's scan is exactly
//! the scan the build's redaction settled against. The policy is recorded in
//! `build_report.json` and `gates/pii_detection_report.json`, and is an input of both
//! stages' resume stamps.
//!
//! `[privacy.evaluation]` names labelled sets in the store (one `{"text", "spans": [{"start",
//! "end", "type"}]}` per line, code-point offsets). The privacy gate scores each with the
//! gate's detector on every run ([`evaluate`]) and fails when the measured direct recall or
//! precision is below the configured minimum. `gatehouse pii eval FILE` scores a local file
//! the same way. Nothing here returns or logs document text: counts, keys and line numbers.

use std::collections::BTreeSet;
use std::io::BufRead;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use gatehouse_text::pii::eval::{Document, Evaluation, Rate};
use gatehouse_text::pii::{Allowlist, DatePolicy, Detector, PiiType, Policy};

use crate::store::{Line, LineReader};

pub use crate::contract::gates::{Measured, Minimums, SetScores};

/// `[privacy]` in gatehouse.toml. The PII settings that predate it (`[build] pii_unsure`, the
/// registry's per-dataset `pii_allowlist`) stay where they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// `birth` (dates of birth only, the default) or `all` (HIPAA Safe Harbor: every date
    /// element but the year, and ages over 89).
    pub dates: DatePolicy,
    /// Identifier types never detected, by placeholder label (`HANDLE`, `URL`, …).
    pub disabled: BTreeSet<PiiType>,
    /// `[privacy.evaluation]`: labelled sets the privacy gate scores on every run.
    pub evaluation: EvaluationConfig,
}

/// `[privacy.evaluation]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Keys of labelled JSONL sets in the store, relative to the store root.
    pub sets: Vec<String>,
    /// The privacy gate fails (and `pii eval` exits 1) when a set's recall over direct
    /// identifiers is below this.
    pub min_recall_direct: Option<f64>,
    /// … or when its precision (replaced regions that overlap a label) is below this.
    pub min_precision: Option<f64>,
}

impl PrivacyConfig {
    /// The detector's policy.
    pub fn policy(&self) -> Policy {
        Policy {
            dates: self.dates,
            disabled: self.disabled.clone(),
        }
    }

    /// The one detector of a run: the build redacts with it and the privacy gate scans with it.
    pub fn detector(&self) -> Detector {
        Detector::with_policy(self.policy())
    }

    /// What is wrong with the section, if anything (checked before any stage runs).
    pub fn problem(&self, exports_prefix: &str) -> Option<String> {
        let e = &self.evaluation;
        for (name, v) in [
            ("min_recall_direct", e.min_recall_direct),
            ("min_precision", e.min_precision),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                return Some(format!(
                    "[privacy.evaluation] {name} = {v} is not between 0 and 1"
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for key in &e.sets {
            let bad = key.trim().is_empty()
                || key.starts_with('/')
                || key.ends_with('/')
                || key
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..");
            if bad {
                return Some(format!(
                    "[privacy.evaluation] sets: {key:?} is not a key in the store (write it relative to the store root, e.g. \"labelled/pii_dev.jsonl\")"
                ));
            }
            if key.starts_with(&format!("{exports_prefix}/")) {
                return Some(format!(
                    "[privacy.evaluation] sets: {key:?} is under the exports prefix {exports_prefix:?}, which gatehouse writes; keep labelled sets elsewhere in the store"
                ));
            }
            if !seen.insert(key) {
                return Some(format!(
                    "[privacy.evaluation] sets: {key:?} is listed twice"
                ));
            }
        }
        None
    }

    /// sha256 of the policy, for resume stamps.
    pub fn policy_digest(&self) -> String {
        crate::digest::sha256(
            serde_json::to_string(&self.policy())
                .unwrap_or_default()
                .as_bytes(),
        )
    }
}

/// The digest of the configured labelled sets as they are in the store now (each key with
/// the sha256 of its bytes, or `missing`): a resume input of the gates, so a changed set is
/// measured again. `none` when no set is configured.
pub fn sets_digest(
    store: &crate::store::Store,
    evaluation: &EvaluationConfig,
) -> Result<String, crate::store::StoreError> {
    if evaluation.sets.is_empty() {
        return Ok("none".into());
    }
    let mut listing = String::new();
    for key in &evaluation.sets {
        let digest = match store.open_read(key) {
            Ok(r) => {
                let mut h = crate::digest::HashingReader::new(r);
                match std::io::copy(&mut h, &mut std::io::sink()) {
                    Ok(_) => h.finish().0,
                    // The gates will run and report it; never skip on a guess.
                    Err(e) => format!("unreadable ({})", e.kind()),
                }
            }
            Err(crate::store::StoreError::NotFound { .. }) => "missing".into(),
            Err(e) => return Err(e),
        };
        listing.push_str(&format!("{key}\t{digest}\n"));
    }
    Ok(crate::digest::sha256(listing.as_bytes()))
}

/// Why a labelled set could not be scored. Names the line, never quotes it.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("line {line}: {detail}")]
    Line { line: u64, detail: String },
    #[error("line {line}: longer than {max} bytes")]
    Oversized { line: u64, max: usize },
    #[error("reading failed")]
    Read(#[source] std::io::Error),
    #[error("no labelled document in it")]
    Empty,
}

impl EvalError {
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            EvalError::Read(_) => "check the file or object can be read in full".into(),
            EvalError::Empty => "a labelled set holds one {\"text\", \"spans\"} document per line".into(),
            _ => "each line must be {\"text\": \"…\", \"spans\": [{\"start\": 0, \"end\": 4, \"type\": \"PERSON\"}]} with code-point offsets inside the text; fix or remove that line".into(),
        })
    }
}

/// Longest line of a labelled set.
pub const MAX_LINE: usize = 16 << 20;

/// Documents scored in parallel at a time (bounds memory).
const CHUNK: usize = 2048;

/// Scores every labelled document of `reader` (one per line; blank lines are skipped) with
/// `detector`, redacting each as a one-message conversation exactly as the build does.
pub fn evaluate(reader: impl BufRead, detector: &Detector) -> Result<Evaluation, EvalError> {
    let allow = Allowlist::default();
    let mut lines = LineReader::new(reader, MAX_LINE);
    let mut total = Evaluation::default();
    let mut chunk: Vec<Document> = Vec::with_capacity(CHUNK);
    let score = |chunk: &mut Vec<Document>, total: &mut Evaluation| {
        let e = chunk
            .par_iter()
            .fold(Evaluation::default, |mut e, d| {
                e.add(detector, &allow, d);
                e
            })
            .reduce(Evaluation::default, |mut a, b| {
                a.merge(b);
                a
            });
        total.merge(e);
        chunk.clear();
    };
    while let Some(line) = lines.next_line().map_err(EvalError::Read)? {
        match line {
            Line::Oversized { number, .. } => {
                return Err(EvalError::Oversized {
                    line: number,
                    max: MAX_LINE,
                });
            }
            Line::Text { number, bytes } => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let text = std::str::from_utf8(bytes).map_err(|_| EvalError::Line {
                    line: number,
                    detail: "not UTF-8".into(),
                })?;
                let doc = Document::parse(text).map_err(|e| EvalError::Line {
                    line: number,
                    detail: e.to_string(),
                })?;
                chunk.push(doc);
                if chunk.len() >= CHUNK {
                    score(&mut chunk, &mut total);
                }
            }
        }
    }
    score(&mut chunk, &mut total);
    if total.documents == 0 {
        return Err(EvalError::Empty);
    }
    Ok(total)
}

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

impl From<Rate> for Measured {
    fn from(r: Rate) -> Self {
        Self {
            hits: r.hits,
            total: r.total,
            value: r.value().map(round),
            wilson_95: r.wilson().map(|(lo, hi)| [round(lo), round(hi)]),
        }
    }
}

impl From<&Evaluation> for SetScores {
    fn from(e: &Evaluation) -> Self {
        Self {
            documents: e.documents,
            characters: e.characters,
            recall_by_type: e
                .recall_by_type
                .iter()
                .map(|(k, r)| (k.clone(), (*r).into()))
                .collect(),
            recall_direct: e.recall_direct.into(),
            precision_by_type: e
                .precision_by_type
                .iter()
                .map(|(k, r)| (k.label().to_string(), (*r).into()))
                .collect(),
            precision: e.precision.into(),
            f2_direct: e.f2_direct().map(round),
            unsettled: e.unsettled,
        }
    }
}

/// Which minimum a measurement fell short of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shortfall {
    RecallDirect,
    Precision,
}

impl Minimums {
    /// Each minimum the evaluation falls short of, with a content-free message. The point
    /// estimate is compared (its interval is reported beside it). A set with no direct
    /// identifier labelled cannot show a direct recall: that falls short too (fail closed).
    /// A set where nothing was replaced has no false alarm: precision is not short.
    pub fn shortfalls(&self, e: &Evaluation) -> Vec<(Shortfall, String)> {
        let mut out = Vec::new();
        if let Some(min) = self.min_recall_direct {
            match e.recall_direct.value() {
                Some(v) if v >= min => {}
                Some(v) => out.push((
                    Shortfall::RecallDirect,
                    format!(
                        "direct-identifier recall {v:.4} ({} of {}) is below the minimum {min}",
                        e.recall_direct.hits, e.recall_direct.total
                    ),
                )),
                None => out.push((
                    Shortfall::RecallDirect,
                    format!(
                        "no direct identifier is labelled, so recall cannot be shown to reach the minimum {min}"
                    ),
                )),
            }
        }
        if let Some(min) = self.min_precision
            && let Some(v) = e.precision.value()
            && v < min
        {
            out.push((
                Shortfall::Precision,
                format!(
                    "precision {v:.4} ({} of {} replaced regions labelled) is below the minimum {min}",
                    e.precision.hits, e.precision.total
                ),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_set_keys_and_minimums_are_refused() {
        let with = |sets: &[&str], min: Option<f64>| PrivacyConfig {
            evaluation: EvaluationConfig {
                sets: sets.iter().map(|s| s.to_string()).collect(),
                min_recall_direct: min,
                min_precision: None,
            },
            ..PrivacyConfig::default()
        };
        assert_eq!(
            with(&["labelled/a.jsonl"], Some(0.9)).problem("exports"),
            None
        );
        for bad in ["/abs.jsonl", "a/../b.jsonl", "", "dir/", "exports/x.jsonl"] {
            assert!(with(&[bad], None).problem("exports").is_some(), "{bad}");
        }
        assert!(
            with(&["a.jsonl", "a.jsonl"], None)
                .problem("exports")
                .is_some()
        );
        assert!(with(&["a.jsonl"], Some(1.5)).problem("exports").is_some());
    }

    #[test]
    fn a_malformed_line_is_named_by_number_without_its_text() {
        let input = "{\"text\":\"Call me on 415-555-0132.\",\"spans\":[{\"start\":11,\"end\":23,\"type\":\"PHONE\"}]}\n\n{\"text\":\"secret words\",\"spans\":[{\"start\":0,\"end\":99,\"type\":\"NAME\"}]}\n";
        let e = evaluate(input.as_bytes(), &Detector::new()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("line 3:"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        assert!(matches!(
            evaluate(&b"\n \n"[..], &Detector::new()),
            Err(EvalError::Empty)
        ));
    }

    #[test]
    fn minimums_compare_the_point_estimate_and_fail_closed_on_no_labels() {
        let detector = Detector::new();
        let input = "{\"text\":\"Call me on 415-555-0132.\",\"spans\":[{\"start\":11,\"end\":23,\"type\":\"PHONE\"}]}\n";
        let e = evaluate(input.as_bytes(), &detector).unwrap();
        assert_eq!(e.recall_direct.hits, 1);
        let strict = Minimums {
            min_recall_direct: Some(1.0),
            min_precision: Some(1.0),
        };
        assert!(strict.shortfalls(&e).is_empty());
        let none = evaluate(
            &b"{\"text\":\"A quiet afternoon.\",\"spans\":[]}"[..],
            &detector,
        )
        .unwrap();
        let s = strict.shortfalls(&none);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, Shortfall::RecallDirect);
    }
}
