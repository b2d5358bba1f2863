//! The privacy spot-check as a review type (`privacy_spot_check`).
//!
//! The privacy gate draws a seeded sample of whole exported (redacted) records for a human
//! to read (`gates/pii_spot_check_sample.jsonl`; the ids are in `gates/pii_detection_report.json`).
//! `qa sample` turns that sample into review packets of this type: the ids come from the
//! privacy report of the current manifest, the records themselves from the shards (never
//! from the sample file, which is a convenience copy). A reviewer marks every identifier the
//! redaction left by its place, never its text: message index, code-point start and end, and
//! a type ([`IdentifierMark`]); or records that none is left (an empty list).
//!
//! The signoff ([`tally`]) records how many records were reviewed, how many had a miss, the
//! marks by type, the residual-identifier rate (records with a miss / records reviewed) and
//! its one-sided 95% upper bound by the exact Clopper–Pearson method ([`upper_bound_95`]:
//! with no miss in n records it is 1 − 0.05^(1/n), about 3/n, the "rule of three"). It
//! approves only when every record of the sample is reviewed and none has a miss; a record
//! with a mark goes to the blocklist, so the next build leaves it out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::QaError;
use crate::store::{Store, StoreError};

pub use crate::contract::signoff::{IdentifierKind, IdentifierMark, Miss, SpotCheckResult};

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 7] = [
        IdentifierKind::Name,
        IdentifierKind::Address,
        IdentifierKind::Phone,
        IdentifierKind::Email,
        IdentifierKind::Id,
        IdentifierKind::Date,
        IdentifierKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Name => "name",
            IdentifierKind::Address => "address",
            IdentifierKind::Phone => "phone",
            IdentifierKind::Email => "email",
            IdentifierKind::Id => "id",
            IdentifierKind::Date => "date",
            IdentifierKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

impl IdentifierMark {
    /// Checks the mark against the record's messages (their lengths in code points); the
    /// error names the message and offsets, never text.
    pub fn validate(&self, message_chars: &[usize]) -> Result<(), String> {
        let Some(len) = message_chars.get(self.message) else {
            return Err(format!(
                "message {} does not exist (the record has {} message(s), numbered from 0)",
                self.message,
                message_chars.len()
            ));
        };
        if self.start >= self.end {
            return Err(format!(
                "message {}: a mark must cover at least one character (start {} is not before end {})",
                self.message, self.start, self.end
            ));
        }
        if self.end > *len {
            return Err(format!(
                "message {}: the mark ends at {}, past the end of the message ({} characters)",
                self.message, self.end, len
            ));
        }
        Ok(())
    }
}

/// Checks a reviewer's marks of one record: each valid, none overlapping another.
pub fn validate_marks(marks: &[IdentifierMark], message_chars: &[usize]) -> Result<(), String> {
    for m in marks {
        m.validate(message_chars)?;
    }
    let mut sorted: Vec<&IdentifierMark> = marks.iter().collect();
    sorted.sort();
    for w in sorted.windows(2) {
        if w[0].message == w[1].message && w[1].start < w[0].end {
            return Err(format!(
                "message {}: marks {}–{} and {}–{} overlap; keep one",
                w[0].message, w[0].start, w[0].end, w[1].start, w[1].end
            ));
        }
    }
    Ok(())
}

/// Marks as a CSV cell: `none` for no identifier left, else `message:start-end:type`
/// separated by `;` (e.g. `0:12-17:name;2:4-16:phone`).
pub fn marks_to_cell(marks: &[IdentifierMark]) -> String {
    if marks.is_empty() {
        return "none".into();
    }
    marks
        .iter()
        .map(|m| format!("{}:{}-{}:{}", m.message, m.start, m.end, m.kind.as_str()))
        .collect::<Vec<_>>()
        .join(";")
}

/// Reads a CSV cell written like [`marks_to_cell`]; blank is `None` (not reviewed yet).
pub fn marks_from_cell(cell: &str) -> Result<Option<Vec<IdentifierMark>>, String> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(None);
    }
    if cell.eq_ignore_ascii_case("none") {
        return Ok(Some(Vec::new()));
    }
    let bad = || {
        "identifiers_left is `none` or marks `message:start-end:type` separated by `;` \
         (types: name, address, phone, email, id, date, other)"
            .to_string()
    };
    cell.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let mut parts = p.trim().splitn(3, ':');
            let (Some(message), Some(range), Some(kind)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let (start, end) = range.split_once('-').ok_or_else(bad)?;
            Ok(IdentifierMark {
                message: message.trim().parse().map_err(|_| bad())?,
                start: start.trim().parse().map_err(|_| bad())?,
                end: end.trim().parse().map_err(|_| bad())?,
                kind: IdentifierKind::parse(kind).ok_or_else(bad)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The sample id of a spot-check record: `sc-` and the first 8 bytes of
/// sha256(`gatehouse-qa-spot-check-v1\0` record id), in hex.
pub fn sample_id(record_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse-qa-spot-check-v1\0");
    h.update(record_id.as_bytes());
    let d = h.finalize();
    format!("sc-{}", hex::encode(&d[..8]))
}

/// `privacy_spot_check` in `qa/qa_samples.json`: which privacy gate run the spot-check
/// packets come from, and how it drew them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotCheckDraw {
    /// `gates/pii_detection_report.json` of this manifest.
    pub gate_report: String,
    /// The gate's copy of the records (`gates/pii_spot_check_sample.jsonl`); the packets take
    /// the records from the shards.
    pub sample_file: String,
    pub method: String,
    pub seed: u64,
    pub rate: f64,
    pub max: u64,
    /// Records the gate drew from.
    pub population: u64,
    /// Records drawn: every one is to be reviewed.
    pub size: u64,
}

/// What the privacy report says about the spot-check, for this manifest.
#[derive(Debug, Clone)]
pub struct GateSample {
    pub draw: SpotCheckDraw,
    /// Ids of the records drawn, in export order.
    pub ids: Vec<String>,
}

/// The privacy gate's spot-check sample for the manifest `digest`: `None` when the gates
/// have not run on this manifest (no report, or one for another digest).
pub fn gate_sample(
    store: &Store,
    location: &str,
    digest: &str,
) -> Result<Option<GateSample>, QaError> {
    #[derive(Deserialize)]
    struct Report {
        release_digest: String,
        spot_check: Drawn,
    }
    #[derive(Deserialize)]
    struct Drawn {
        method: String,
        seed: u64,
        rate: f64,
        max: u64,
        population: u64,
        size: u64,
        key: String,
        ids: Vec<String>,
    }
    let key = crate::layout::PII_REPORT.at(location);
    let bytes = match store.get_bytes(&key) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let report: Report =
        serde_json::from_slice(&bytes).map_err(|_| QaError::BadManifest { key: key.clone() })?;
    if report.release_digest != digest {
        return Ok(None);
    }
    let s = report.spot_check;
    if s.ids.len() as u64 != s.size {
        return Err(QaError::BadManifest { key });
    }
    Ok(Some(GateSample {
        draw: SpotCheckDraw {
            gate_report: key,
            sample_file: s.key,
            method: s.method,
            seed: s.seed,
            rate: s.rate,
            max: s.max,
            population: s.population,
            size: s.size,
        },
        ids: s.ids,
    }))
}

/// The one-sided 95% upper confidence bound on a proportion after `misses` in `n` trials,
/// by the exact (Clopper–Pearson) method: the p at which P(X ≤ misses | n, p) = 0.05. With no
/// miss it is 1 − 0.05^(1/n) (≈ 3/n); with every trial a miss, 1. `None` when n is 0.
pub fn upper_bound_95(misses: u64, n: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    if misses >= n {
        return Some(1.0);
    }
    // P(X ≤ x) decreases in p: bisect for the p where it falls to 0.05.
    let (mut lo, mut hi) = (misses as f64 / n as f64, 1.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if binomial_cdf(misses, n, mid) > 0.05 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((lo + hi) / 2.0)
}

/// P(X ≤ x) for X ~ Binomial(n, p), summed in log space.
fn binomial_cdf(x: u64, n: u64, p: f64) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return if x >= n { 1.0 } else { 0.0 };
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // log C(n, k), built up term by term.
    let mut log_choose = 0.0f64;
    let mut total = 0.0f64;
    for k in 0..=x {
        if k > 0 {
            log_choose += ((n - k + 1) as f64).ln() - (k as f64).ln();
        }
        total += (log_choose + k as f64 * lp + (n - k) as f64 * lq).exp();
    }
    total.min(1.0)
}

pub const BOUND_METHOD: &str = "residual-identifier rate = records with at least one mark / \
     records reviewed; upper bound: one-sided 95% exact binomial (Clopper–Pearson), the rate p \
     at which P(X ≤ misses | n, p) = 0.05 (with no miss, 1 − 0.05^(1/n), about 3/n)";

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Computes the spot-check's figures from the counted review files. `samples` maps the
/// spot-check's sample ids to record ids; `files` are (reviewer shown, reviews) of type
/// `privacy_spot_check`, already checked.
pub fn tally(
    drawn: bool,
    samples: &BTreeMap<&str, &str>,
    files: &[(String, &[super::signoff::Review])],
) -> SpotCheckResult {
    let mut reviewed: BTreeSet<&str> = BTreeSet::new();
    let mut missed: BTreeSet<&str> = BTreeSet::new();
    let mut distinct: BTreeSet<(&str, IdentifierMark)> = BTreeSet::new();
    let mut misses = Vec::new();
    for (reviewer, reviews) in files {
        for r in reviews.iter() {
            let Some(record_id) = samples.get(r.sample_id.as_str()) else {
                continue;
            };
            let Some(marks) = &r.identifiers_left else {
                continue;
            };
            reviewed.insert(r.sample_id.as_str());
            if marks.is_empty() {
                continue;
            }
            missed.insert(r.sample_id.as_str());
            let mut sorted = marks.clone();
            sorted.sort();
            for m in &sorted {
                distinct.insert((record_id, *m));
            }
            misses.push(Miss {
                record_id: (*record_id).to_string(),
                sample_id: r.sample_id.clone(),
                reviewer: reviewer.clone(),
                marks: sorted,
            });
        }
    }
    let mut marks_by_type = BTreeMap::new();
    for (_, m) in &distinct {
        *marks_by_type.entry(m.kind).or_insert(0u64) += 1;
    }
    let n = reviewed.len() as u64;
    let x = missed.len() as u64;
    SpotCheckResult {
        drawn,
        records: samples.len() as u64,
        records_reviewed: n,
        records_with_miss: x,
        marks_by_type,
        residual_identifier_rate: (n > 0).then(|| round6(x as f64 / n as f64)),
        residual_identifier_rate_upper_95: upper_bound_95(x, n).map(round6),
        bound_method: BOUND_METHOD.into(),
        complete: drawn && n == samples.len() as u64,
        misses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_bound_is_the_exact_one_sided_clopper_pearson_bound() {
        // No miss: 1 − 0.05^(1/n), the rule of three's exact form.
        for n in [1u64, 10, 30, 100, 500] {
            let b = upper_bound_95(0, n).unwrap();
            assert!(
                (b - (1.0 - 0.05f64.powf(1.0 / n as f64))).abs() < 1e-9,
                "{n}: {b}"
            );
        }
        assert!((upper_bound_95(0, 100).unwrap() - 0.0295).abs() < 1e-4);
        // n − 1 misses: P(X ≤ n−1) = 1 − p^n = 0.05, so p = 0.95^(1/n).
        let b = upper_bound_95(9, 10).unwrap();
        assert!((b - 0.95f64.powf(0.1)).abs() < 1e-9, "{b}");
        // A tabulated value: 1 of 10 → 0.3942.
        assert!((upper_bound_95(1, 10).unwrap() - 0.3942).abs() < 1e-4);
        assert_eq!(upper_bound_95(10, 10), Some(1.0));
        assert_eq!(upper_bound_95(0, 0), None);
        // More misses, a higher bound; more records, a lower one; always above the rate.
        assert!(upper_bound_95(2, 50).unwrap() > upper_bound_95(1, 50).unwrap());
        assert!(upper_bound_95(1, 100).unwrap() < upper_bound_95(1, 50).unwrap());
        assert!(upper_bound_95(3, 40).unwrap() > 3.0 / 40.0);
    }

    #[test]
    fn marks_are_checked_against_the_record() {
        let chars = [10usize, 3];
        let m = |message, start, end| IdentifierMark {
            message,
            start,
            end,
            kind: IdentifierKind::Name,
        };
        assert!(m(0, 0, 10).validate(&chars).is_ok());
        assert!(m(1, 2, 3).validate(&chars).is_ok());
        assert!(
            m(2, 0, 1)
                .validate(&chars)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(
            m(0, 4, 4)
                .validate(&chars)
                .unwrap_err()
                .contains("at least one")
        );
        assert!(m(0, 5, 4).validate(&chars).is_err());
        assert!(
            m(1, 0, 4)
                .validate(&chars)
                .unwrap_err()
                .contains("past the end")
        );
        assert!(validate_marks(&[m(0, 0, 3), m(0, 3, 5)], &chars).is_ok());
        assert!(
            validate_marks(&[m(0, 2, 6), m(0, 0, 3)], &chars)
                .unwrap_err()
                .contains("overlap")
        );
        assert!(validate_marks(&[m(0, 0, 3), m(1, 0, 3)], &chars).is_ok());
    }

    #[test]
    fn marks_round_trip_through_a_csv_cell() {
        let marks = vec![
            IdentifierMark {
                message: 0,
                start: 12,
                end: 17,
                kind: IdentifierKind::Name,
            },
            IdentifierMark {
                message: 2,
                start: 4,
                end: 16,
                kind: IdentifierKind::Phone,
            },
        ];
        let cell = marks_to_cell(&marks);
        assert_eq!(cell, "0:12-17:name;2:4-16:phone");
        assert_eq!(marks_from_cell(&cell).unwrap(), Some(marks));
        assert_eq!(marks_from_cell(" none ").unwrap(), Some(Vec::new()));
        assert_eq!(marks_from_cell("").unwrap(), None);
        assert!(marks_from_cell("0:1-2:person").is_err());
        assert!(marks_from_cell("0:12:name").is_err());
    }

    #[test]
    fn the_tally_counts_records_misses_and_marks() {
        use super::super::signoff::Review;
        let review = |id: &str, marks: Option<Vec<IdentifierMark>>| Review {
            sample_id: id.into(),
            scores: BTreeMap::new(),
            comment: String::new(),
            flag: None,
            identifiers_left: marks,
        };
        let mark = |start, kind| IdentifierMark {
            message: 0,
            start,
            end: start + 2,
            kind,
        };
        let samples: BTreeMap<&str, &str> = [
            ("sc-1", "r1"),
            ("sc-2", "r2"),
            ("sc-3", "r3"),
            ("sc-4", "r4"),
        ]
        .into();
        let a = vec![
            review("sc-1", Some(vec![])),
            review(
                "sc-2",
                Some(vec![
                    mark(0, IdentifierKind::Name),
                    mark(5, IdentifierKind::Phone),
                ]),
            ),
            review("sc-3", Some(vec![])),
        ];
        // A second reviewer marks the same name again: counted once.
        let b = vec![review("sc-2", Some(vec![mark(0, IdentifierKind::Name)]))];
        let t = tally(
            true,
            &samples,
            &[("A".into(), a.as_slice()), ("B".into(), b.as_slice())],
        );
        assert_eq!(t.records, 4);
        assert_eq!(t.records_reviewed, 3);
        assert_eq!(t.records_with_miss, 1);
        assert!(!t.complete);
        assert_eq!(t.marks_by_type[&IdentifierKind::Name], 1);
        assert_eq!(t.marks_by_type[&IdentifierKind::Phone], 1);
        assert_eq!(t.residual_identifier_rate, Some(0.333333));
        assert_eq!(t.misses.len(), 2);
        assert_eq!(t.misses[0].record_id, "r2");
        assert!(t.residual_identifier_rate_upper_95.unwrap() > 0.333333);
    }
}
