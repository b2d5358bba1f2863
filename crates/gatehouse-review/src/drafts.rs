//! A reviewer's saved, unsubmitted work: the draft type, its loading from and saving to the
//! store (`qa/drafts/{reviewer}.json`, cached in memory), when a review is complete, and the
//! parsing of the review and spot-check forms into reviews and identifier marks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_core::qa::spot_check::{IdentifierKind, IdentifierMark};
use gatehouse_core::qa::{self, QaConfig};
use gatehouse_core::registry::ReviewType;
use gatehouse_core::store::StoreError;
use serde::{Deserialize, Serialize};

use crate::app::{Sample, Shared, html, lock};
use crate::pages;

/// A reviewer's saved, unsubmitted work: `qa/drafts/{reviewer}.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub release_digest: String,
    pub reviewer_id: String,
    pub reviews: BTreeMap<String, DraftReview>,
    /// The review file of the last submission, when there was one.
    pub submitted: Option<String>,
    /// sha256 of `reviews` as submitted: a later change shows as not yet submitted.
    #[serde(default)]
    pub submitted_reviews: Option<String>,
}

impl Draft {
    pub(crate) fn reviews_digest(&self) -> String {
        gatehouse_core::digest::sha256(&serde_json::to_vec(&self.reviews).unwrap_or_default())
    }

    /// Submitted, and nothing changed since.
    pub fn up_to_date(&self) -> bool {
        self.submitted_reviews.as_deref() == Some(self.reviews_digest().as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DraftReview {
    pub scores: BTreeMap<String, u8>,
    pub comment: String,
    /// `remove: reason` or `escalate: reason`.
    pub flag: Option<String>,
    /// Privacy spot-check only: the identifiers left; `Some([])` once the reviewer said none
    /// is left, `None` while they have said nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifiers_left: Option<Vec<IdentifierMark>>,
}

/// The reviewer's draft, read from the store the first time. A draft made for another
/// release digest starts afresh; an unreadable one is an error (saving over it would lose
/// the reviewer's work).
pub(crate) async fn draft(app: &Shared, reviewer_id: &str) -> Result<Draft, Response> {
    if let Some(d) = lock(&app.drafts).get(reviewer_id) {
        return Ok(d.clone());
    }
    let a = Arc::clone(app);
    let rid = reviewer_id.to_string();
    let loaded = tokio::task::spawn_blocking(move || {
        let fresh = Draft {
            release_digest: a.digest.clone(),
            reviewer_id: rid.clone(),
            ..Draft::default()
        };
        let key = a.draft_key(&rid);
        match a.store.get_bytes(&key) {
            Ok(b) => match serde_json::from_slice::<Draft>(&b) {
                Ok(d) if d.release_digest == a.digest && d.reviewer_id == rid => Some(d),
                Ok(_) => Some(fresh),
                Err(_) => {
                    tracing::error!(target: "gatehouse_review", "{key} is not a readable draft; it is left as it is");
                    None
                }
            },
            Err(StoreError::NotFound { .. }) => Some(fresh),
            Err(_) => None,
        }
    })
    .await;
    match loaded {
        // Another request may have loaded (and changed) it meanwhile: that copy wins.
        Ok(Some(d)) => Ok(lock(&app.drafts)
            .entry(reviewer_id.to_string())
            .or_insert(d)
            .clone()),
        _ => Err(storage_error()),
    }
}

pub(crate) fn storage_error() -> Response {
    tracing::error!(target: "gatehouse_review", "the store could not be read or written");
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            "Saving is not possible right now",
            "The review store cannot be reached. Nothing was lost from earlier saves; try again in a moment.",
        ),
    )
}

/// Writes the draft to the store, then to the cache.
pub(crate) async fn save_draft(app: &Shared, d: Draft) -> Result<(), Response> {
    let a = Arc::clone(app);
    let bytes = match serde_json::to_vec_pretty(&d) {
        Ok(b) => b,
        Err(_) => return Err(storage_error()),
    };
    let key = app.draft_key(&d.reviewer_id);
    let put = tokio::task::spawn_blocking(move || a.store.put(&key, bytes)).await;
    match put {
        Ok(Ok(())) => {
            lock(&app.drafts).insert(d.reviewer_id.clone(), d);
            Ok(())
        }
        _ => Err(storage_error()),
    }
}

/// Whether a draft review scores every criterion of the rubric (for the spot-check: says
/// which identifiers are left, if any).
pub(crate) fn complete(config: &QaConfig, t: ReviewType, r: Option<&DraftReview>) -> bool {
    if t == ReviewType::PrivacySpotCheck {
        return r.is_some_and(|r| r.identifiers_left.is_some());
    }
    let (Some(rubric), Some(r)) = (config.rubrics.get(&t), r) else {
        return false;
    };
    rubric
        .criteria
        .iter()
        .all(|c| r.scores.contains_key(&c.name))
}

/// Parses the review form: scores `score.{criterion}` (1–10; blank = not yet), `comment`,
/// `flag` (`none`, `remove`, `escalate`) with `flag_reason`.
pub(crate) fn parse_review(
    rubric: &qa::Rubric,
    form: &HashMap<String, String>,
) -> (DraftReview, Vec<String>) {
    let mut errors = Vec::new();
    let mut scores = BTreeMap::new();
    for c in &rubric.criteria {
        match form.get(&format!("score.{}", c.name)).map(|v| v.trim()) {
            None | Some("") => {}
            Some(v) => match v.parse::<u8>() {
                Ok(n) if (1..=10).contains(&n) => {
                    scores.insert(c.name.clone(), n);
                }
                _ => errors.push(format!(
                    "{}: choose a score from 1 to 10.",
                    pages::label(&c.name)
                )),
            },
        }
    }
    let comment: String = form
        .get("comment")
        .map_or("", String::as_str)
        .chars()
        .take(5000)
        .collect();
    let reason: String = form
        .get("flag_reason")
        .map_or("", |r| r.trim())
        .chars()
        .filter(|c| !c.is_control())
        .take(500)
        .collect();
    let flag = match form.get("flag").map_or("none", String::as_str) {
        "none" | "" => None,
        kind @ ("remove" | "escalate") => {
            if reason.is_empty() {
                errors.push("Give a reason for the flag.".into());
            }
            Some(format!("{kind}: {reason}"))
        }
        _ => {
            errors.push("Choose whether to flag the record.".into());
            None
        }
    };
    (
        DraftReview {
            scores,
            comment,
            flag,
            identifiers_left: None,
        },
        errors,
    )
}

/// What a spot-check form asks: `action` is `mark` (with `message_number`, 1-based as the page
/// shows it, `start`, `end` in code points, and `type`), `unmark` (with `mark`, the index in
/// the list) or `none` (no identifier left).
pub(crate) enum SpotAction {
    Mark(IdentifierMark),
    Unmark(usize),
    NoneLeft,
}

/// Parses a spot-check form against the record; the errors name fields, never text.
pub(crate) fn parse_spot_action(
    sample: &Sample,
    form: &HashMap<String, String>,
) -> Result<SpotAction, String> {
    let number = |k: &str| form.get(k).and_then(|v| v.trim().parse::<usize>().ok());
    match form.get("action").map_or("", String::as_str) {
        "mark" => {
            let (Some(n), Some(start), Some(end)) =
                (number("message_number"), number("start"), number("end"))
            else {
                return Err(
                    "Select the identifier in the conversation (or give the message number, start and end)."
                        .into(),
                );
            };
            let kind = match form.get("type").map_or("other", |t| t.trim()) {
                "" => IdentifierKind::Other,
                t => IdentifierKind::parse(t).ok_or("Choose a type from the list.")?,
            };
            let mark = IdentifierMark {
                message: n.checked_sub(1).ok_or("Messages are numbered from 1.")?,
                start,
                end,
                kind,
            };
            let chars: Vec<usize> = sample
                .record
                .messages
                .iter()
                .map(|m| m.content.chars().count())
                .collect();
            mark.validate(&chars).map_err(|e| {
                format!("That mark does not fit the conversation: {e}. Select the text again.")
            })?;
            Ok(SpotAction::Mark(mark))
        }
        "unmark" => number("mark")
            .map(SpotAction::Unmark)
            .ok_or_else(|| "Choose a mark to remove.".into()),
        "none" => Ok(SpotAction::NoneLeft),
        _ => Err("Choose what to record.".into()),
    }
}
