//! Reviews and the signoff.
//!
//! Reviews reach a release only through an invited reviewer's own file (`gatehouse qa import`,
//! or the web app, which writes the same files): each names the reviewer by their invitation
//! id, their review type and the release digest, and covers only their assignments, and scores sampled records against that type's rubric. Import checks every review
//! against the release's packets and rubric and stores the file unchanged under
//! `qa/reviews/`. The signoff is *computed* from the stored reviews, never asserted: for each
//! review type, every sampled record must have the rubric's number of distinct reviewers,
//! every criterion must reach its minimum and the weighted overall score `pass_overall`;
//! anything below is an exception for escalation, and a flagged record goes to the blocklist.
//! The release is approved only when every review type is complete, nothing is below the
//! rubric and nothing is flagged. The privacy spot-check (`privacy_spot_check`) has no
//! rubric: its reviews list the identifiers left ([`super::spot_check`]), and it approves only
//! when every record the privacy gate drew is reviewed and none has a mark.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::spot_check::{self, IdentifierMark, SpotCheckResult};
use super::{QaConfig, QaError, SCHEMA_VERSION};
use crate::registry::ReviewType;

/// One reviewer's file of reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewFile {
    pub release_digest: String,
    /// The reviewer's invitation id (`rv-…`, from `gatehouse qa invite`).
    pub reviewer: String,
    pub review_type: ReviewType,
    pub reviews: Vec<Review>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    pub sample_id: String,
    /// Criterion → score on the 1–10 scale.
    pub scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub comment: String,
    /// `remove` or `escalate` (disallowed content), with the reason after a colon.
    #[serde(default)]
    pub flag: Option<String>,
    /// `privacy_spot_check` only: every identifier the redaction left, by place (message,
    /// code-point start and end, type); an empty list says none is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifiers_left: Option<Vec<IdentifierMark>>,
}

/// What a release's packets say about one sample, for checking reviews.
#[derive(Debug, Clone)]
pub struct SampleFacts {
    pub record_id: String,
    pub review_types: Vec<ReviewType>,
    /// The length of each message in code points (to check marks against).
    pub message_chars: Vec<usize>,
}

/// Checks a reviewer's file against the release's digest, packets and rubrics; the error
/// names the sample and criterion, never text.
pub fn check(
    file: &ReviewFile,
    digest: &str,
    samples: &BTreeMap<String, SampleFacts>,
    invited: &[super::reviewers::Reviewer],
    config: &QaConfig,
) -> Result<(), QaError> {
    let bad = |m: String| Err(QaError::BadReviews(m));
    if file.release_digest != digest {
        return bad(format!(
            "the reviews are for release {}, this release is {digest}",
            file.release_digest
        ));
    }
    let Some(reviewer) = invited.iter().find(|r| r.id == file.reviewer) else {
        return bad(format!(
            "{:?} is not a reviewer invited to this release: invite them with `gatehouse qa invite` and put their id (rv-…) in `reviewer`",
            file.reviewer
        ));
    };
    if reviewer.review_type != file.review_type {
        return bad(format!(
            "reviewer {} was invited for {} review, not {}",
            reviewer.id,
            reviewer.review_type.as_str(),
            file.review_type.as_str()
        ));
    }
    let spot = file.review_type == ReviewType::PrivacySpotCheck;
    let rubric = config.rubrics.get(&file.review_type);
    if rubric.is_none() && !spot {
        return bad(format!(
            "no rubric for review type {}",
            file.review_type.as_str()
        ));
    }
    let mut seen = BTreeSet::new();
    for r in &file.reviews {
        let Some(s) = samples.get(&r.sample_id) else {
            return bad(format!("{} is not a sample of this release", r.sample_id));
        };
        if !s.review_types.contains(&file.review_type) {
            return bad(format!(
                "{} is not assigned to {} review",
                r.sample_id,
                file.review_type.as_str()
            ));
        }
        if !reviewer.assignments.contains(&r.sample_id) {
            return bad(format!(
                "{} is not assigned to reviewer {}",
                r.sample_id, reviewer.id
            ));
        }
        if !seen.insert(&r.sample_id) {
            return bad(format!("{} is reviewed twice in one file", r.sample_id));
        }
        let Some(rubric) = rubric else {
            check_spot_check(r, s)?;
            continue;
        };
        if r.identifiers_left.is_some() {
            return bad(format!(
                "{}: identifiers_left belongs to privacy_spot_check reviews only",
                r.sample_id
            ));
        }
        for c in &rubric.criteria {
            match r.scores.get(&c.name) {
                Some(v) if (1.0..=10.0).contains(v) => {}
                Some(_) => {
                    return bad(format!(
                        "{}: {} is not on the 1–10 scale",
                        r.sample_id, c.name
                    ));
                }
                None => return bad(format!("{}: {} is not scored", r.sample_id, c.name)),
            }
        }
        if let Some(extra) = r
            .scores
            .keys()
            .find(|k| !rubric.criteria.iter().any(|c| &c.name == *k))
        {
            return bad(format!(
                "{}: {extra} is not a criterion of the rubric",
                r.sample_id
            ));
        }
        if let Some(f) = &r.flag
            && !(f.starts_with("remove") || f.starts_with("escalate"))
        {
            return bad(format!(
                "{}: a flag is `remove: reason` or `escalate: reason`",
                r.sample_id
            ));
        }
    }
    Ok(())
}

/// A spot-check review: no scores or flag (a mark is what removes a record), and the
/// identifiers left, each within the record.
fn check_spot_check(r: &Review, facts: &SampleFacts) -> Result<(), QaError> {
    let bad = |m: String| Err(QaError::BadReviews(m));
    if !r.scores.is_empty() || r.flag.is_some() {
        return bad(format!(
            "{}: a privacy_spot_check review has no scores or flag, only identifiers_left",
            r.sample_id
        ));
    }
    let Some(marks) = &r.identifiers_left else {
        return bad(format!(
            "{}: give identifiers_left: the identifiers the redaction left ({{message, start, end, type}}), or [] for none",
            r.sample_id
        ));
    };
    spot_check::validate_marks(marks, &facts.message_chars)
        .map_err(|e| QaError::BadReviews(format!("{}: {e}", r.sample_id)))
}

/// A review below its rubric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exception {
    pub sample_id: String,
    pub record_id: String,
    pub review_type: ReviewType,
    pub reviewer: String,
    pub overall: f64,
    /// Criteria under their minimum.
    pub below_minimum: Vec<String>,
}

/// A record a reviewer flagged: the next build leaves it out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocked {
    pub record_id: String,
    pub sample_id: String,
    pub reviewer: String,
    pub flag: String,
}

/// One review type's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeResult {
    pub review_type: ReviewType,
    pub reviewers_required: u32,
    pub samples: u64,
    /// Samples with the required number of distinct reviewers.
    pub samples_complete: u64,
    pub reviews: u64,
    pub reviews_passing: u64,
    pub mean_overall: f64,
    pub complete: bool,
    /// Where two reviewers scored the same sample: pairs, mean absolute difference of the
    /// overall score, and the share of pairs agreeing on pass/fail.
    pub agreement_pairs: u64,
    pub mean_overall_difference: Option<f64>,
    pub pass_fail_agreement: Option<f64>,
}

/// `qa/signoff_record.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signoff {
    pub schema_version: u32,
    pub release_version: String,
    pub release_digest: String,
    /// `approved` only when every review type is complete, no review is below its rubric
    /// and no record is flagged; otherwise `not_approved` with the reasons.
    pub decision: &'static str,
    pub reasons: Vec<String>,
    pub reviewers: BTreeMap<String, ReviewType>,
    pub review_files: Vec<String>,
    /// Review files for another digest (made before a rebuild) or by a revoked reviewer:
    /// void, not counted.
    pub void_review_files: Vec<String>,
    /// How every valid review file was made: in the review app, signed by the reviewer's
    /// registered key, or attested by the operator who imported it (and whether it counted).
    pub authentication: Vec<ReviewAuth>,
    pub results: Vec<TypeResult>,
    /// The privacy spot-check: records reviewed, misses, marks by type, the residual
    /// identifier rate and its 95% upper bound.
    pub privacy_spot_check: SpotCheckResult,
    pub exceptions: Vec<Exception>,
    pub blocklist: Vec<Blocked>,
}

/// The stored review files a signoff is computed from: those that count (`(key, file)`,
/// checked, at most one per reviewer), the void ones, and who vouches for each valid one.
#[derive(Debug, Clone, Copy)]
pub struct StoredFiles<'a> {
    pub files: &'a [(String, ReviewFile)],
    pub void: &'a [String],
    pub auth: &'a [ReviewAuth],
}

/// Who vouches for one review file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewAuth {
    pub reviewer: String,
    pub review_type: ReviewType,
    pub file: String,
    pub method: super::proof::Authentication,
    /// For attested files: who imported them (`GATEHOUSE_ACTOR` or the login name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Attested files count only with `[qa] count_attested = true`.
    pub counted: bool,
}

/// One sample's reviews of one type: reviewer → (weighted overall, passes).
type Scores<'a> = BTreeMap<&'a str, (f64, bool)>;

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Computes the signoff from stored review files (`(key, file)`, already checked, at most one
/// per reviewer); `names` maps invitation ids to names for the record.
pub fn compute(
    release_version: &str,
    digest: &str,
    samples: &BTreeMap<String, SampleFacts>,
    stored: StoredFiles<'_>,
    names: &BTreeMap<String, String>,
    config: &QaConfig,
    spot_check_drawn: bool,
) -> Signoff {
    let StoredFiles { files, void, auth } = stored;
    let shown = |id: &str| match names.get(id) {
        Some(n) => format!("{n} ({id})"),
        None => id.to_string(),
    };
    let mut reviewers = BTreeMap::new();
    // (review type, sample) → reviewer → (overall, passes).
    let mut scored: BTreeMap<(ReviewType, &str), Scores<'_>> = BTreeMap::new();
    let (mut exceptions, mut blocklist) = (Vec::new(), Vec::new());
    for (_, f) in files {
        reviewers.insert(shown(&f.reviewer), f.review_type);
        let Some(rubric) = config.rubrics.get(&f.review_type) else {
            continue;
        };
        for r in &f.reviews {
            let overall: f64 = rubric
                .criteria
                .iter()
                .map(|c| c.weight * r.scores.get(&c.name).copied().unwrap_or(0.0))
                .sum();
            let below: Vec<String> = rubric
                .criteria
                .iter()
                .filter(|c| r.scores.get(&c.name).copied().unwrap_or(0.0) < c.minimum)
                .map(|c| c.name.clone())
                .collect();
            let passes = below.is_empty() && overall >= rubric.pass_overall;
            let record_id = samples
                .get(&r.sample_id)
                .map_or_else(String::new, |s| s.record_id.clone());
            if !passes {
                exceptions.push(Exception {
                    sample_id: r.sample_id.clone(),
                    record_id: record_id.clone(),
                    review_type: f.review_type,
                    reviewer: shown(&f.reviewer),
                    overall: round(overall),
                    below_minimum: below,
                });
            }
            if let Some(flag) = &r.flag {
                blocklist.push(Blocked {
                    record_id,
                    sample_id: r.sample_id.clone(),
                    reviewer: shown(&f.reviewer),
                    flag: flag.clone(),
                });
            }
            scored
                .entry((f.review_type, r.sample_id.as_str()))
                .or_default()
                .insert(f.reviewer.as_str(), (overall, passes));
        }
    }

    let mut results = Vec::new();
    let mut reasons = Vec::new();
    for (t, rubric) in &config.rubrics {
        let assigned: Vec<&String> = samples
            .iter()
            .filter(|(_, s)| s.review_types.contains(t))
            .map(|(id, _)| id)
            .collect();
        if assigned.is_empty() {
            continue;
        }
        let mut complete = 0u64;
        let (mut reviews, mut passing, mut sum) = (0u64, 0u64, 0.0);
        let (mut pairs, mut diff, mut agree) = (0u64, 0.0, 0u64);
        for id in &assigned {
            let by = scored.get(&(*t, id.as_str()));
            let n = by.map_or(0, BTreeMap::len);
            if n >= rubric.reviewers as usize {
                complete += 1;
            }
            if let Some(by) = by {
                let v: Vec<&(f64, bool)> = by.values().collect();
                for (overall, passes) in &v {
                    reviews += 1;
                    passing += u64::from(*passes);
                    sum += overall;
                }
                for (i, a) in v.iter().enumerate() {
                    for b in &v[i + 1..] {
                        pairs += 1;
                        diff += (a.0 - b.0).abs();
                        agree += u64::from(a.1 == b.1);
                    }
                }
            }
        }
        let is_complete = complete == assigned.len() as u64;
        if !is_complete {
            reasons.push(format!(
                "{} review is incomplete: {complete} of {} samples have {} reviewer(s)",
                t.as_str(),
                assigned.len(),
                rubric.reviewers
            ));
        }
        results.push(TypeResult {
            review_type: *t,
            reviewers_required: rubric.reviewers,
            samples: assigned.len() as u64,
            samples_complete: complete,
            reviews,
            reviews_passing: passing,
            mean_overall: if reviews == 0 {
                0.0
            } else {
                round(sum / reviews as f64)
            },
            complete: is_complete,
            agreement_pairs: pairs,
            mean_overall_difference: (pairs > 0).then(|| round(diff / pairs as f64)),
            pass_fail_agreement: (pairs > 0).then(|| round(agree as f64 / pairs as f64)),
        });
    }
    let spot = spot_check_result(samples, files, &shown, spot_check_drawn);
    if !spot_check_drawn {
        reasons.push(
            "privacy_spot_check cannot be reviewed: the privacy gate has not run on this manifest \
             (no spot-check sample); run `gatehouse gates` (or `gatehouse release`), then \
             `gatehouse qa sample`, and have the spot-check reviewed"
                .into(),
        );
    } else if !spot.complete {
        reasons.push(format!(
            "privacy_spot_check review is incomplete: {} of {} spot-check records reviewed; \
             invite a reviewer with `gatehouse qa invite --role privacy-spot-check` and have every \
             record reviewed in the app (`gatehouse qa serve`), then run `gatehouse qa signoff` again",
            spot.records_reviewed, spot.records
        ));
    }
    if spot.records_with_miss > 0 {
        reasons.push(format!(
            "privacy_spot_check: {} record(s) with an identifier the redaction left: they go to the \
             blocklist; rebuild without them (`gatehouse release`) and review the new sample",
            spot.records_with_miss
        ));
        for m in &spot.misses {
            let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
            for k in &m.marks {
                *kinds.entry(k.kind.as_str()).or_default() += 1;
            }
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            blocklist.push(Blocked {
                record_id: m.record_id.clone(),
                sample_id: m.sample_id.clone(),
                reviewer: m.reviewer.clone(),
                flag: format!(
                    "remove: privacy spot-check: identifier(s) left after redaction ({})",
                    kinds.join(", ")
                ),
            });
        }
    }
    // Approval needs reviewers' work: never from an empty sample or no reviews at all.
    if results.is_empty() || files.is_empty() {
        reasons.push("nothing was reviewed: no sampled record or no review file".into());
    }
    if !exceptions.is_empty() {
        reasons.push(format!(
            "{} review(s) below the rubric: escalate to the clinical lead",
            exceptions.len()
        ));
    }
    if !blocklist.is_empty() {
        reasons.push(format!(
            "{} record(s) flagged: rebuild without them (qa/blocklist.json)",
            blocklist.len()
        ));
    }
    Signoff {
        schema_version: SCHEMA_VERSION,
        release_version: release_version.to_string(),
        release_digest: digest.to_string(),
        decision: if reasons.is_empty() {
            "approved"
        } else {
            "not_approved"
        },
        reasons,
        reviewers,
        review_files: files.iter().map(|(k, _)| k.clone()).collect(),
        void_review_files: void.to_vec(),
        authentication: auth
            .iter()
            .map(|a| ReviewAuth {
                reviewer: shown(&a.reviewer),
                ..a.clone()
            })
            .collect(),
        results,
        privacy_spot_check: spot,
        exceptions,
        blocklist,
    }
}

/// The spot-check's figures from the counted files of its type.
fn spot_check_result(
    samples: &BTreeMap<String, SampleFacts>,
    files: &[(String, ReviewFile)],
    shown: &dyn Fn(&str) -> String,
    drawn: bool,
) -> SpotCheckResult {
    let spot_samples: BTreeMap<&str, &str> = samples
        .iter()
        .filter(|(_, s)| s.review_types.contains(&ReviewType::PrivacySpotCheck))
        .map(|(id, s)| (id.as_str(), s.record_id.as_str()))
        .collect();
    let spot_files: Vec<(String, &[Review])> = files
        .iter()
        .filter(|(_, f)| f.review_type == ReviewType::PrivacySpotCheck)
        .map(|(_, f)| (shown(&f.reviewer), f.reviews.as_slice()))
        .collect();
    spot_check::tally(drawn, &spot_samples, &spot_files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_approved_without_reviews() {
        let config = QaConfig::default();
        let none = compute(
            "v1",
            "sha256:00",
            &BTreeMap::new(),
            StoredFiles {
                files: &[],
                void: &[],
                auth: &[],
            },
            &BTreeMap::new(),
            &config,
            true,
        );
        assert_eq!(none.decision, "not_approved");
        assert!(none.reasons[0].contains("nothing was reviewed"));
    }
}
