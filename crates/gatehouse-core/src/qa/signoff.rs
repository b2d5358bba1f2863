//! Reviews and the signoff.
//!
//! Reviews reach a release only through an invited reviewer's own file (`gatehouse qa import`,
//! or the web app, which writes the same files): each names the reviewer by their invitation
//! id, their review type and the release digest, and covers only their assignments, and scores sampled records against that type's rubric. Import checks every review
//! against the release's packets and rubric ([`check`], in `import.rs`) and stores the file
//! unchanged under `qa/reviews/`. [`signoff`] reads the stored files back and writes the
//! record; the signoff is *computed* from them ([`compute`]), never asserted: for each
//! review type, every sampled record must have the rubric's number of distinct reviewers,
//! every criterion must reach its minimum and the weighted overall score `pass_overall`;
//! anything below is an exception for escalation, and a flagged record goes to the blocklist.
//! The release is approved only when every review type is complete, nothing is below the
//! rubric and nothing is flagged. The privacy spot-check (`privacy_spot_check`) has no
//! rubric: its reviews list the identifiers left ([`super::spot_check`]), and it approves only
//! when every record the privacy gate drew is reviewed and none has a mark.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::import::{Stored, stored_reviews};
use super::packets::packets_and_spot_check;
use super::reviewers::{self, Reviewer};
use super::spot_check::{self, IdentifierMark, SpotCheckResult};
use super::{QaConfig, QaError, Rubric, SCHEMA_VERSION, json};
use crate::registry::ReviewType;
use crate::store::Store;

pub use crate::contract::signoff::{Blocked, Exception, ReviewAuth, Signoff, TypeResult};

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

// The check of a reviewer's file, done on import and again whenever the stored files are
// read back, lives with the import; re-exported here, where it was.
pub use super::import::check;

/// The stored review files a signoff is computed from: those that count (`(key, file)`,
/// checked, at most one per reviewer), the void ones, and who vouches for each valid one.
#[derive(Debug, Clone, Copy)]
pub struct StoredFiles<'a> {
    pub files: &'a [(String, ReviewFile)],
    pub void: &'a [String],
    pub auth: &'a [ReviewAuth],
}

/// Computes the signoff from every stored review file and writes
/// `qa/signoff_record.json` and `qa/blocklist.json`.
///
/// `qa signoff`'s entry point (re-exported as `qa::signoff`); the decision itself is
/// [`compute`]'s.
pub fn signoff(
    store: &Store,
    location: &str,
    config: &QaConfig,
) -> Result<(Signoff, Vec<String>), QaError> {
    let ((version, digest, samples), spot) = packets_and_spot_check(store, location)?;
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    let Stored { files, void, auth } =
        stored_reviews(store, location, &digest, &samples, &invited, config)?;
    let record = compute(
        &version,
        &digest,
        &samples,
        StoredFiles {
            files: &files,
            void: &void,
            auth: &auth,
        },
        &names(&invited),
        config,
        spot.is_some(),
    );
    let mut written = Vec::new();
    let key = crate::layout::SIGNOFF_RECORD.at(location);
    store.put(&key, json("the signoff record", &record)?)?;
    written.push(key);
    let blocklist = crate::build::blocklist::BlocklistFile {
        release_version: record.release_version.clone(),
        release_digest: record.release_digest.clone(),
        records: record
            .blocklist
            .iter()
            .map(|b| crate::build::blocklist::BlockedRecord {
                record_id: b.record_id.clone(),
                sample_id: b.sample_id.clone(),
                reviewer: b.reviewer.clone(),
                flag: b.flag.clone(),
            })
            .collect(),
    };
    let bytes = json("the blocklist", &blocklist)?;
    let key = crate::layout::QA_BLOCKLIST.at(location);
    store.put(&key, bytes.clone())?;
    written.push(key);
    // Where every later build looks; one file per signed-off digest, and only when
    // something is flagged (an empty one would change the next manifest for nothing).
    if !blocklist.records.is_empty() {
        let key = format!(
            "{}{}-{}.json",
            crate::build::blocklist::prefix(store),
            record.release_version,
            &record.release_digest["sha256:".len().."sha256:".len() + 12]
        );
        store.put(&key, bytes)?;
        written.push(key);
    }
    Ok((record, written))
}
/// Invitation id → name, for the record.
pub(super) fn names(invited: &[Reviewer]) -> BTreeMap<String, String> {
    invited
        .iter()
        .map(|r| (r.id.clone(), r.name.clone()))
        .collect()
}

/// One sample's reviews of one type: reviewer → (weighted overall, passes).
type Scores<'a> = BTreeMap<&'a str, (f64, bool)>;

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Computes the signoff from stored review files (`(key, file)`, already checked, at most one
/// per reviewer); `names` maps invitation ids to names for the record.
///
/// In steps: every review scored against its rubric (`score`), each review type's figures
/// (`type_result`), the privacy spot-check's (`spot_check_result`, `spot_check_reasons`),
/// then the reasons against approval, in that order.
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
    let Scored {
        reviewers,
        by_sample,
        exceptions,
        mut blocklist,
    } = score(files, samples, config, &shown);

    let mut results = Vec::new();
    let mut reasons = Vec::new();
    for (t, rubric) in &config.rubrics {
        let Some(result) = type_result(*t, rubric, samples, &by_sample) else {
            continue;
        };
        if !result.complete {
            reasons.push(format!(
                "{} review is incomplete: {} of {} samples have {} reviewer(s)",
                t.as_str(),
                result.samples_complete,
                result.samples,
                rubric.reviewers
            ));
        }
        results.push(result);
    }
    let spot = spot_check_result(samples, files, &shown, spot_check_drawn);
    spot_check_reasons(&spot, spot_check_drawn, &mut reasons, &mut blocklist);
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
        }
        .into(),
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

/// Every counted review scored against its type's rubric.
struct Scored<'a> {
    /// Shown reviewer → their review type.
    reviewers: BTreeMap<String, ReviewType>,
    /// (review type, sample) → reviewer → (overall, passes).
    by_sample: BTreeMap<(ReviewType, &'a str), Scores<'a>>,
    /// Reviews below their rubric.
    exceptions: Vec<Exception>,
    /// Records a reviewer flagged.
    blocklist: Vec<Blocked>,
}

/// Scores every review of the counted `files` (the privacy spot-check's, which have no
/// rubric, only name their reviewer here).
fn score<'a>(
    files: &'a [(String, ReviewFile)],
    samples: &BTreeMap<String, SampleFacts>,
    config: &QaConfig,
    shown: &dyn Fn(&str) -> String,
) -> Scored<'a> {
    let mut reviewers = BTreeMap::new();
    let mut by_sample: BTreeMap<(ReviewType, &str), Scores<'_>> = BTreeMap::new();
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
            by_sample
                .entry((f.review_type, r.sample_id.as_str()))
                .or_default()
                .insert(f.reviewer.as_str(), (overall, passes));
        }
    }
    Scored {
        reviewers,
        by_sample,
        exceptions,
        blocklist,
    }
}

/// Review type `t`'s figures over the samples assigned to it: completeness, scores and
/// agreement between reviewers of the same sample. `None` when no sample needs `t`.
fn type_result(
    t: ReviewType,
    rubric: &Rubric,
    samples: &BTreeMap<String, SampleFacts>,
    by_sample: &BTreeMap<(ReviewType, &str), Scores<'_>>,
) -> Option<TypeResult> {
    let assigned: Vec<&String> = samples
        .iter()
        .filter(|(_, s)| s.review_types.contains(&t))
        .map(|(id, _)| id)
        .collect();
    if assigned.is_empty() {
        return None;
    }
    let mut complete = 0u64;
    let (mut reviews, mut passing, mut sum) = (0u64, 0u64, 0.0);
    let (mut pairs, mut diff, mut agree) = (0u64, 0.0, 0u64);
    for id in &assigned {
        let by = by_sample.get(&(t, id.as_str()));
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
    Some(TypeResult {
        review_type: t,
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
        complete: complete == assigned.len() as u64,
        agreement_pairs: pairs,
        mean_overall_difference: (pairs > 0).then(|| round(diff / pairs as f64)),
        pass_fail_agreement: (pairs > 0).then(|| round(agree as f64 / pairs as f64)),
    })
}

/// The privacy spot-check's reasons against approval (not drawn, incomplete, identifiers
/// left), and each record with an identifier left as a blocklist entry.
fn spot_check_reasons(
    spot: &SpotCheckResult,
    drawn: bool,
    reasons: &mut Vec<String>,
    blocklist: &mut Vec<Blocked>,
) {
    if !drawn {
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
