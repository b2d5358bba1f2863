//! Reviews coming in, and read back: a reviewer's file imported as JSON or CSV
//! (`gatehouse qa import`, [`reviews_from_csv`]) or submitted through the review app
//! ([`submit`]), checked against the release's packets, invitations and rubrics ([`check`])
//! and stored unchanged under `qa/reviews/`, with a proof of who made it under
//! `qa/review_proofs/` (an app session, the reviewer's signature verified against their
//! registered key, or the operator's attestation). The signoff and the QA gate read the files
//! back ([`stored_reviews`]), checked and authenticated again.

use std::collections::{BTreeMap, BTreeSet};

use super::packets::{Facts, packets};
use super::signoff::{Review, ReviewFile, SampleFacts};
use super::{QaConfig, QaError, json, proof, reviewers, signoff, spot_check};
use crate::registry::ReviewType;
use crate::store::{Store, StoreError};

/// Reads reviews in CSV: one row per review, columns `release_digest, reviewer,
/// review_type, sample_id`, one column per criterion (blank where the row's rubric has no
/// such criterion), `comment` and `flag`. Rows become one review file per reviewer and type.
pub fn reviews_from_csv(bytes: &[u8]) -> Result<Vec<ReviewFile>, QaError> {
    let bad = |m: String| QaError::BadReviews(m);
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| bad(format!("the CSV has no header row ({e})")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(c_digest), Some(c_reviewer), Some(c_type), Some(c_sample)) = (
        col("release_digest"),
        col("reviewer"),
        col("review_type"),
        col("sample_id"),
    ) else {
        return Err(bad(
            "the CSV needs the columns release_digest, reviewer, review_type and sample_id (see qa/review_template.csv)".into(),
        ));
    };
    let (c_comment, c_flag, c_marks) = (col("comment"), col("flag"), col("identifiers_left"));
    let fixed = [
        Some(c_digest),
        Some(c_reviewer),
        Some(c_type),
        Some(c_sample),
        c_comment,
        c_flag,
        c_marks,
    ];
    let mut files: BTreeMap<(String, String, String), ReviewFile> = BTreeMap::new();
    for (i, row) in reader.records().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| bad(format!("CSV line {line}: {e}")))?;
        let get = |c: usize| row.get(c).unwrap_or("").trim();
        let review_type: ReviewType =
            serde_json::from_value(serde_json::Value::String(get(c_type).to_string()))
                .map_err(|_| bad(format!("CSV line {line}: unknown review_type")))?;
        let mut scores = BTreeMap::new();
        for (c, name) in headers.iter().enumerate() {
            if fixed.contains(&Some(c)) || get(c).is_empty() {
                continue;
            }
            let v: f64 = get(c)
                .parse()
                .map_err(|_| bad(format!("CSV line {line}: {} is not a number", name.trim())))?;
            scores.insert(name.trim().to_string(), v);
        }
        let flag = c_flag
            .map(get)
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        let identifiers_left = match c_marks {
            Some(c) => spot_check::marks_from_cell(get(c))
                .map_err(|e| bad(format!("CSV line {line}: {e}")))?,
            None => None,
        };
        let review = Review {
            sample_id: get(c_sample).to_string(),
            scores,
            comment: c_comment.map(get).unwrap_or_default().to_string(),
            flag,
            identifiers_left,
        };
        let (digest, reviewer) = (get(c_digest).to_string(), get(c_reviewer).to_string());
        files
            .entry((
                digest.clone(),
                reviewer.clone(),
                review_type.as_str().to_string(),
            ))
            .or_insert_with(|| ReviewFile {
                release_digest: digest,
                reviewer,
                review_type,
                reviews: Vec::new(),
            })
            .reviews
            .push(review);
    }
    if files.is_empty() {
        return Err(bad("the CSV has no reviews".into()));
    }
    Ok(files.into_values().collect())
}

/// Checks a reviewer's file against the release's digest, packets and rubrics; the error
/// names the sample and criterion, never text.
pub fn check(
    file: &ReviewFile,
    digest: &str,
    samples: &Facts,
    invited: &[reviewers::Reviewer],
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

/// Checks a reviewer's file like [`import`] without storing it.
pub fn check_import(
    store: &Store,
    location: &str,
    bytes: &[u8],
    config: &QaConfig,
    signature: Option<&str>,
) -> Result<(), QaError> {
    let file = parse_review_file(bytes)?;
    let (_, digest, samples) = packets(store, location)?;
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    check(&file, &digest, &samples, &invited, config)?;
    import_proof(&file, bytes, &invited, signature, "check").map(|_| ())
}

fn parse_review_file(bytes: &[u8]) -> Result<ReviewFile, QaError> {
    serde_json::from_slice(bytes).map_err(|e| {
        QaError::BadReviews(format!(
            "not a review file ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Checks a reviewer's file (JSON, see [`ReviewFile`]) against the release's
/// packets and rubrics, and stores it unchanged under `qa/reviews/`; returns its key.
///
/// `signature` (`ed25519:<hex>`, from `gatehouse qa sign`) must verify against the key the
/// reviewer registered at invitation; without one the reviews are recorded as attested by
/// `actor` (who ran the import), and count only when `[qa] count_attested` is true.
pub fn import(
    store: &Store,
    location: &str,
    bytes: &[u8],
    config: &QaConfig,
    signature: Option<&str>,
    actor: &str,
) -> Result<String, QaError> {
    let file = parse_review_file(bytes)?;
    let (_, digest, samples) = packets(store, location)?;
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    check(&file, &digest, &samples, &invited, config)?;
    let proof = import_proof(&file, bytes, &invited, signature, actor)?;
    // One file per reviewer: a corrected import (or a web resubmission) replaces the last.
    // The id was checked against the invitations, so it is a safe key segment.
    let key = review_key(location, file.review_type, &file.reviewer);
    store.put(&key, bytes.to_vec())?;
    store.put(
        &proof_key(location, file.review_type, &file.reviewer),
        json("the review proof", &proof)?,
    )?;
    Ok(key)
}

/// Stores a web reviewer's reviews as their review file `qa/reviews/{type}-{id}.json`
/// (replacing an earlier submission of theirs), after the same checks as an import, and
/// only for samples assigned to them.
pub fn submit(
    store: &Store,
    location: &str,
    reviewer: &reviewers::Reviewer,
    reviews: Vec<Review>,
    config: &QaConfig,
) -> Result<String, QaError> {
    let (_, digest, samples) = packets(store, location)?;
    if let Some(r) = reviews
        .iter()
        .find(|r| !reviewer.assignments.contains(&r.sample_id))
    {
        return Err(QaError::BadReviews(format!(
            "{} is not assigned to reviewer {}",
            r.sample_id, reviewer.id
        )));
    }
    let file = ReviewFile {
        release_digest: digest.clone(),
        reviewer: reviewer.id.clone(),
        review_type: reviewer.review_type,
        reviews,
    };
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    check(&file, &digest, &samples, &invited, config)?;
    let key = review_key(location, reviewer.review_type, &reviewer.id);
    store.put(&key, json("the reviews", &file)?)?;
    // The reviewer signed in with their secret link: the app vouches for them.
    store.put(
        &proof_key(location, reviewer.review_type, &reviewer.id),
        json(
            "the review proof",
            &proof::Proof::AppSession { at: now_rfc3339() },
        )?,
    )?;
    Ok(key)
}

/// Where a reviewer's file is kept: one per reviewer.
fn review_key(location: &str, review_type: ReviewType, reviewer_id: &str) -> String {
    format!(
        "{}{}-{reviewer_id}.json",
        crate::layout::REVIEWS.at(location),
        review_type.as_str()
    )
}

/// Where the proof of who made a review file is kept ([`proof::Proof`]).
fn proof_key(location: &str, review_type: ReviewType, reviewer_id: &str) -> String {
    format!(
        "{}{}-{reviewer_id}.json",
        crate::layout::REVIEW_PROOFS.at(location),
        review_type.as_str()
    )
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The proof an import of `bytes` gets: a signature verified against the reviewer's
/// registered key, or the operator's attestation when the reviewer registered none. A
/// reviewer with a key can only be imported signed; a signature without a key is refused.
fn import_proof(
    file: &ReviewFile,
    bytes: &[u8],
    invited: &[reviewers::Reviewer],
    signature: Option<&str>,
    actor: &str,
) -> Result<proof::Proof, QaError> {
    let key = invited
        .iter()
        .find(|r| r.id == file.reviewer)
        .and_then(|r| r.public_key.as_deref());
    match (signature, key) {
        (Some(sig), Some(key)) if proof::verify(key, bytes, sig) => Ok(proof::Proof::Signature {
            signature: sig.trim().to_string(),
            at: now_rfc3339(),
        }),
        (Some(_), Some(_)) => Err(QaError::BadReviews(format!(
            "the signature does not verify with the key registered for reviewer {}: the file was \
             changed after it was signed, or signed with another key",
            file.reviewer
        ))),
        (Some(_), None) => Err(QaError::BadReviews(format!(
            "reviewer {} registered no key at invitation (qa invite --public-key), so a signature \
             proves nothing; import without it to record the reviews as operator-attested",
            file.reviewer
        ))),
        (None, Some(_)) => Err(QaError::BadReviews(format!(
            "reviewer {} registered a key at invitation: files in their name must carry their \
             signature (`gatehouse qa sign FILE --key KEY` writes FILE.sig)",
            file.reviewer
        ))),
        (None, None) => Ok(proof::Proof::OperatorAttested {
            by: actor.to_string(),
            at: now_rfc3339(),
        }),
    }
}

/// How the signoff judges a stored review file: a signature is verified again, from the
/// stored bytes and the key in the invitations (a proof file cannot vouch for itself).
fn authenticate(
    store: &Store,
    location: &str,
    file: &ReviewFile,
    bytes: &[u8],
    invited: &[reviewers::Reviewer],
) -> Result<(proof::Authentication, Option<String>), QaError> {
    let key = proof_key(location, file.review_type, &file.reviewer);
    let stored: Option<proof::Proof> = match store.get_bytes(&key) {
        Ok(b) => serde_json::from_slice(&b).ok(),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let registered = invited
        .iter()
        .find(|r| r.id == file.reviewer)
        .and_then(|r| r.public_key.as_deref());
    Ok(match stored {
        Some(proof::Proof::AppSession { .. }) => (proof::Authentication::AppSession, None),
        Some(proof::Proof::Signature { signature, .. })
            if registered.is_some_and(|k| proof::verify(k, bytes, &signature)) =>
        {
            (proof::Authentication::Signature, None)
        }
        Some(proof::Proof::Signature { .. }) => (
            proof::Authentication::OperatorAttested,
            Some("nobody: its signature does not verify".into()),
        ),
        Some(proof::Proof::OperatorAttested { by, .. }) => {
            (proof::Authentication::OperatorAttested, Some(by))
        }
        None => (
            proof::Authentication::OperatorAttested,
            Some("unknown: no proof recorded".into()),
        ),
    })
}

/// Stored review files with their keys.
type ReviewFiles = Vec<(String, ReviewFile)>;

/// The reviews stored for the release, each re-checked against the current packets. Files
/// for another digest (made before a rebuild) are void: returned apart, never counted. A
/// file for this digest that fails its checks (edited since) fails the whole signoff.
pub(super) fn stored_reviews(
    store: &Store,
    location: &str,
    digest: &str,
    samples: &Facts,
    invited: &[reviewers::Reviewer],
    config: &QaConfig,
) -> Result<Stored, QaError> {
    let prefix = crate::layout::REVIEWS.at(location);
    let mut keys = Vec::new();
    for info in store.list(&prefix) {
        let info = info?;
        if info.key.ends_with(".json") {
            keys.push(info.key);
        }
    }
    keys.sort();
    let revoked: Vec<String> = reviewers::load(store, location, digest)?
        .revoked
        .into_iter()
        .map(|r| r.id)
        .collect();
    let (mut files, mut void, mut auth) = (Vec::new(), Vec::new(), Vec::new());
    for key in keys {
        let bytes = store.get_bytes(&key)?;
        let file: ReviewFile = serde_json::from_slice(&bytes)
            .map_err(|_| QaError::BadReviews(format!("{key} is not a review file")))?;
        // Made before a rebuild, or by a reviewer since revoked: void, never counted.
        if file.release_digest != digest || revoked.contains(&file.reviewer) {
            void.push(key);
            continue;
        }
        // Re-checked: a file edited since it was stored must not count.
        check(&file, digest, samples, invited, config)
            .map_err(|e| QaError::BadReviews(format!("{key}: {e}")))?;
        let (method, by) = authenticate(store, location, &file, &bytes, invited)?;
        let counted = method != proof::Authentication::OperatorAttested
            || config.count_attested.unwrap_or(false);
        auth.push(signoff::ReviewAuth {
            reviewer: file.reviewer.clone(),
            review_type: file.review_type,
            file: key.clone(),
            method,
            by,
            counted,
        });
        if !counted {
            continue;
        }
        if let Some((other, _)) = files
            .iter()
            .find(|(_, f): &&(String, ReviewFile)| f.reviewer == file.reviewer)
        {
            return Err(QaError::BadReviews(format!(
                "{key} and {other} are both by reviewer {}: keep one",
                file.reviewer
            )));
        }
        files.push((key, file));
    }
    Ok(Stored { files, void, auth })
}

/// The stored review files: counted, void, and how each valid one was authenticated.
pub(super) struct Stored {
    pub(super) files: ReviewFiles,
    pub(super) void: Vec<String>,
    pub(super) auth: Vec<signoff::ReviewAuth>,
}
