//! The page and form handlers of a signed-in reviewer: assignments, a review page, saving a
//! review or a spot-check mark, submitting; and the static stylesheet and script.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::qa::spot_check;
use gatehouse_core::qa::{self, reviewers::Reviewer, signoff};
use gatehouse_core::registry::ReviewType;
use serde::Deserialize;

use crate::app::{App, Sample, Shared, html, see_other};
use crate::auth::{check_csrf, session, signed_in};
use crate::drafts::{
    DraftReview, SpotAction, complete, draft, parse_review, parse_spot_action, save_draft,
    storage_error,
};
use crate::pages;
use crate::session::Session;

pub(crate) async fn home(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if session(&app, &headers).is_some() {
        see_other("/assignments")
    } else {
        html(StatusCode::OK, pages::login(None))
    }
}

#[derive(Deserialize)]
pub(crate) struct SavedQuery {
    saved: Option<String>,
}

pub(crate) async fn assignments(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<SavedQuery>,
) -> Response {
    let (s, reviewer) = match signed_in(&app, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let d = match draft(&app, &reviewer.id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let rows: Vec<pages::Row<'_>> = reviewer
        .assignments
        .iter()
        .filter_map(|id| app.samples.get(id))
        .map(|sample| {
            let r = d.reviews.get(&sample.sample_id);
            pages::Row {
                sample,
                done: complete(&app.config, reviewer.review_type, r),
                started: r.is_some(),
                flagged: r.is_some_and(|r| {
                    r.flag.is_some() || r.identifiers_left.as_ref().is_some_and(|m| !m.is_empty())
                }),
            }
        })
        .collect();
    html(
        StatusCode::OK,
        pages::assignments(
            &pages::Ctx::new(&app, &reviewer, &s),
            &rows,
            &d,
            q.saved.is_some(),
        ),
    )
}

/// The sample, when it is assigned to this reviewer; the same 404 otherwise, so nobody
/// learns which other samples exist.
fn assigned<'a>(
    app: &'a App,
    reviewer: &Reviewer,
    sample_id: &str,
) -> Result<&'a Sample, Response> {
    match app.samples.get(sample_id) {
        Some(s) if reviewer.assignments.iter().any(|a| a == sample_id) => Ok(s),
        _ => {
            tracing::warn!(target: "gatehouse_review", "reviewer {} asked for a sample not assigned to them", reviewer.id);
            Err(not_found_page())
        }
    }
}

pub(crate) async fn review_page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(sample_id): Path<String>,
) -> Response {
    let (s, reviewer) = match signed_in(&app, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let sample = match assigned(&app, &reviewer, &sample_id) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let d = match draft(&app, &reviewer.id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let position = reviewer
        .assignments
        .iter()
        .position(|a| *a == sample_id)
        .unwrap_or(0);
    if reviewer.review_type == ReviewType::PrivacySpotCheck {
        return html(
            StatusCode::OK,
            pages::spot_check(
                &pages::Ctx::new(&app, &reviewer, &s),
                sample,
                d.reviews.get(&sample_id),
                (position + 1, reviewer.assignments.len()),
                &[],
            ),
        );
    }
    let Some(rubric) = app.config.rubrics.get(&reviewer.review_type) else {
        return not_found_page();
    };
    html(
        StatusCode::OK,
        pages::review(
            &pages::Ctx::new(&app, &reviewer, &s),
            sample,
            rubric,
            d.reviews.get(&sample_id),
            (position + 1, reviewer.assignments.len()),
            &[],
        ),
    )
}

/// Saves a spot-check action to the reviewer's draft.
async fn save_spot_check(
    app: &Shared,
    s: &Session,
    reviewer: &Reviewer,
    sample: &Sample,
    form: &HashMap<String, String>,
) -> Response {
    let sample_id = sample.sample_id.clone();
    let position = reviewer
        .assignments
        .iter()
        .position(|a| *a == sample_id)
        .unwrap_or(0);
    let writer = app.writer(&reviewer.id);
    let _writing = writer.lock().await;
    let mut d = match draft(app, &reviewer.id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let current = d.reviews.get(&sample_id).cloned().unwrap_or_default();
    let refuse = |errors: &[String], saved: &DraftReview| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::spot_check(
                &pages::Ctx::new(app, reviewer, s),
                sample,
                Some(saved),
                (position + 1, reviewer.assignments.len()),
                errors,
            ),
        )
    };
    let action = match parse_spot_action(sample, form) {
        Ok(a) => a,
        Err(e) => return refuse(&[e], &current),
    };
    let mut review = current.clone();
    let marks = review.identifiers_left.get_or_insert_with(Vec::new);
    let none_left = matches!(action, SpotAction::NoneLeft);
    match action {
        SpotAction::Mark(m) => {
            if !marks.contains(&m) {
                marks.push(m);
                marks.sort();
            }
            let chars: Vec<usize> = sample
                .record
                .messages
                .iter()
                .map(|m| m.content.chars().count())
                .collect();
            if let Err(e) = spot_check::validate_marks(marks, &chars) {
                return refuse(&[format!("{e}.")], &current);
            }
        }
        SpotAction::Unmark(i) => {
            if i >= marks.len() {
                return refuse(&["That mark is no longer there.".into()], &current);
            }
            marks.remove(i);
            // Removing the last mark is not saying that none is left.
            if marks.is_empty() {
                review.identifiers_left = None;
            }
        }
        SpotAction::NoneLeft => {
            if !marks.is_empty() {
                return refuse(
                    &["Remove the marks first, or keep them: a conversation with a mark has an identifier left.".into()],
                    &current,
                );
            }
        }
    }
    d.reviews.insert(sample_id.clone(), review);
    if let Err(r) = save_draft(app, d.clone()).await {
        return r;
    }
    tracing::info!(target: "gatehouse_review", "reviewer {} saved {}", reviewer.id, sample_id);
    if none_left {
        // On to the next record not yet reviewed.
        let n = reviewer.assignments.len();
        let next = (1..n)
            .map(|k| &reviewer.assignments[(position + k) % n])
            .find(|id| !complete(&app.config, reviewer.review_type, d.reviews.get(*id)));
        return match next {
            Some(id) => see_other(&format!("/review/{id}")),
            None => see_other("/assignments?saved=1"),
        };
    }
    see_other(&format!("/review/{sample_id}"))
}

pub(crate) async fn save_review(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(sample_id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (s, reviewer) = match signed_in(&app, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&s, &form) {
        return r;
    }
    let sample = match assigned(&app, &reviewer, &sample_id) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if reviewer.review_type == ReviewType::PrivacySpotCheck {
        return save_spot_check(&app, &s, &reviewer, sample, &form).await;
    }
    let Some(rubric) = app.config.rubrics.get(&reviewer.review_type) else {
        return not_found_page();
    };
    let position = reviewer
        .assignments
        .iter()
        .position(|a| *a == sample_id)
        .unwrap_or(0);
    let (review, errors) = parse_review(rubric, &form);
    if !errors.is_empty() {
        // Shown again with what was entered; nothing is saved.
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::review(
                &pages::Ctx::new(&app, &reviewer, &s),
                sample,
                rubric,
                Some(&review),
                (position + 1, reviewer.assignments.len()),
                &errors,
            ),
        );
    }
    let writer = app.writer(&reviewer.id);
    let _writing = writer.lock().await;
    let mut d = match draft(&app, &reviewer.id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    d.reviews.insert(sample_id.clone(), review);
    if let Err(r) = save_draft(&app, d.clone()).await {
        return r;
    }
    tracing::info!(target: "gatehouse_review", "reviewer {} saved {}", reviewer.id, sample_id);
    if form.contains_key("next") {
        // The next assignment not yet complete, after this one (wrapping around).
        let n = reviewer.assignments.len();
        let next = (1..n)
            .map(|k| &reviewer.assignments[(position + k) % n])
            .find(|id| !complete(&app.config, reviewer.review_type, d.reviews.get(*id)));
        if let Some(id) = next {
            return see_other(&format!("/review/{id}"));
        }
    }
    see_other("/assignments?saved=1")
}

pub(crate) async fn submit(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (s, reviewer) = match signed_in(&app, &headers) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&s, &form) {
        return r;
    }
    let writer = app.writer(&reviewer.id);
    let _writing = writer.lock().await;
    let mut d = match draft(&app, &reviewer.id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let missing = reviewer
        .assignments
        .iter()
        .filter(|id| !complete(&app.config, reviewer.review_type, d.reviews.get(*id)))
        .count();
    if missing > 0 {
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::message(
                "Not ready to submit",
                &format!(
                    "{missing} of your {} assigned conversations still need {}.",
                    reviewer.assignments.len(),
                    if reviewer.review_type == ReviewType::PrivacySpotCheck {
                        "their identifiers marked, or \"no identifier left\""
                    } else {
                        "every criterion scored"
                    }
                ),
            ),
        );
    }
    let reviews: Vec<signoff::Review> = reviewer
        .assignments
        .iter()
        .filter_map(|id| {
            let r = d.reviews.get(id)?;
            Some(signoff::Review {
                sample_id: id.clone(),
                scores: r
                    .scores
                    .iter()
                    .map(|(k, v)| (k.clone(), f64::from(*v)))
                    .collect(),
                comment: r.comment.clone(),
                flag: r.flag.clone(),
                identifiers_left: r.identifiers_left.clone(),
            })
        })
        .collect();
    let a = Arc::clone(&app);
    let who = reviewer.clone();
    let stored = tokio::task::spawn_blocking(move || {
        qa::submit(&a.store, &a.location, &who, reviews, &a.config)
    })
    .await;
    match stored {
        Ok(Ok(key)) => {
            tracing::info!(target: "gatehouse_review", "reviewer {} submitted {} reviews", reviewer.id, reviewer.assignments.len());
            d.submitted = Some(key);
            d.submitted_reviews = Some(d.reviews_digest());
            if let Err(r) = save_draft(&app, d).await {
                return r;
            }
            html(
                StatusCode::OK,
                pages::submitted(&pages::Ctx::new(&app, &reviewer, &s)),
            )
        }
        Ok(Err(qa::QaError::StalePackets { .. } | qa::QaError::NotBuilt { .. })) => html(
            StatusCode::CONFLICT,
            pages::message(
                "This release has changed",
                "The release was rebuilt after these conversations were drawn, so reviews of it can no longer count. The release owner will send new links.",
            ),
        ),
        Ok(Err(e)) => {
            tracing::error!(target: "gatehouse_review", "submission of reviewer {} refused: {e}", reviewer.id);
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::message(
                    "Submission refused",
                    "Your reviews could not be accepted; the release owner can see why in the server log.",
                ),
            )
        }
        Err(_) => storage_error(),
    }
}

pub(crate) async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        pages::STYLE,
    )
        .into_response()
}

pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        pages::SPOT_CHECK_JS,
    )
        .into_response()
}

fn not_found_page() -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::message(
            "Not found",
            "There is nothing for you at this address. Go back to your assignments.",
        ),
    )
}

pub(crate) async fn not_found() -> Response {
    not_found_page()
}
