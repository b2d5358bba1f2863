//! Who is asking: sign-in from an invitation link (the token is exchanged for a session
//! cookie on a same-origin POST), sign-out, the signed-in reviewer of a request, and the CSRF
//! check of every form.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use gatehouse_core::qa::{self, reviewers::Reviewer};
use serde::Deserialize;

use crate::app::{App, Shared, html, lock, see_other};
use crate::pages;
use crate::session::{self, Session};

/// The session of the request, when it has a live one.
pub(crate) fn session(app: &App, headers: &HeaderMap) -> Option<Session> {
    let id = session::cookie(headers)?;
    app.sessions.get(&id)
}

/// A signed-in reviewer: their session and record; or the response to send instead.
pub(crate) fn signed_in(app: &App, headers: &HeaderMap) -> Result<(Session, Reviewer), Response> {
    let Some(s) = session(app, headers) else {
        let expired = session::cookie(headers).is_some();
        return Err(html(
            StatusCode::UNAUTHORIZED,
            pages::login(if expired {
                Some(
                    "Your session has ended. Open your review link again to continue; your saved work is kept.",
                )
            } else {
                Some("Please open your personal review link to sign in.")
            }),
        ));
    };
    match app.reviewer(&s.reviewer_id) {
        Some(r) if !r.expired(chrono::Utc::now()) => Ok((s, r)),
        // Revoked (no longer invited) or expired: the session ends here.
        _ => {
            app.sessions.remove(&s.id);
            Err(html(
                StatusCode::UNAUTHORIZED,
                pages::login(Some(
                    "Your invitation to this review has ended. Ask the release manager if you \
                     think this is a mistake; work you saved is kept.",
                )),
            ))
        }
    }
}

pub(crate) fn check_csrf(s: &Session, form: &HashMap<String, String>) -> Result<(), Response> {
    let sent = form.get("csrf").map_or("", String::as_str);
    if qa::reviewers::constant_time_eq(sent.as_bytes(), s.csrf.as_bytes()) {
        Ok(())
    } else {
        tracing::warn!(target: "gatehouse_review", "rejected a POST without a valid CSRF token (reviewer {})", s.reviewer_id);
        Err(html(
            StatusCode::FORBIDDEN,
            pages::message(
                "Request refused",
                "This form was not sent from your review session. Reload the page and try again.",
            ),
        ))
    }
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// The invitation link: shows who is signing in, with a button that posts the token. The
/// session starts only on that same-origin POST, so a link cannot sign a browser into
/// someone else's account, and the SameSite=Strict cookie is set by a first-party request
/// (a cookie set during a navigation from a mail or chat site would not be sent back).
pub(crate) async fn login_link(State(app): State<Shared>, Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match reviewer_by_token(&app, token.trim()).await {
        Some(r) => html(
            StatusCode::OK,
            pages::confirm_sign_in(&r.name, token.trim()),
        ),
        None => refused_sign_in(),
    }
}

fn refused_sign_in() -> Response {
    tracing::warn!(target: "gatehouse_review", "refused a sign-in with an unknown token");
    html(
        StatusCode::UNAUTHORIZED,
        pages::login(Some(
            "That link or token is not valid for this release. Check you used the whole link, or ask the release owner for a new one.",
        )),
    )
}

/// The reviewer holding `token`; reloads the invitations (at most every few seconds) when
/// nobody does, since someone may have been invited after the app started.
async fn reviewer_by_token(app: &Shared, token: &str) -> Option<Reviewer> {
    if token.is_empty() {
        return None;
    }
    let hash = qa::reviewers::token_hash(token);
    let find = |app: &App| {
        lock(&app.reviewers)
            .iter()
            .find(|r| qa::reviewers::constant_time_eq(r.token_sha256.as_bytes(), hash.as_bytes()))
            .cloned()
    };
    if let Some(r) = find(app) {
        return (!r.expired(chrono::Utc::now())).then_some(r);
    }
    {
        let mut last = lock(&app.last_reload);
        if last.is_some_and(|t| t.elapsed() < RELOAD_EVERY) {
            return None;
        }
        *last = Some(Instant::now());
    }
    let a = Arc::clone(app);
    let fresh =
        tokio::task::spawn_blocking(move || qa::reviewers::load(&a.store, &a.location, &a.digest))
            .await;
    if let Ok(Ok(fresh)) = fresh {
        *lock(&app.reviewers) = fresh.reviewers;
    }
    find(app).filter(|r| !r.expired(chrono::Utc::now()))
}

/// Unknown tokens reload the invitations at most this often.
const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a POST comes from this app's own pages. Browsers send fetch metadata
/// (`Sec-Fetch-Site`), which decides; older ones send `Origin` (which is `null` under our
/// no-referrer policy in current browsers, hence fetch metadata first). A client that is not a
/// browser sends neither and cannot carry a victim's cookies anyway.
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    match (get(header::ORIGIN), get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        }
        (Some(_), None) => false,
    }
}

pub(crate) async fn login_form(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !same_origin(&headers) {
        tracing::warn!(target: "gatehouse_review", "refused a sign-in posted from another site");
        return html(
            StatusCode::FORBIDDEN,
            pages::message(
                "Request refused",
                "Sign in from your review link or this site's sign-in page.",
            ),
        );
    }
    let token = form.get("token").map_or("", |t| t.trim());
    let Some(reviewer) = reviewer_by_token(&app, token).await else {
        return refused_sign_in();
    };
    // A new session every time (never one the browser brought along).
    if let Some(old) = session::cookie(&headers) {
        app.sessions.remove(&old);
    }
    let Ok(id) = app.sessions.create(&reviewer.id) else {
        return html(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::message(
                "Cannot sign in",
                "The server could not start a session. Try again.",
            ),
        );
    };
    tracing::info!(target: "gatehouse_review", "reviewer {} signed in", reviewer.id);
    let mut res = see_other("/assignments");
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, app.sessions.policy())) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

pub(crate) async fn logout(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(s) = session(&app, &headers) {
        if let Err(r) = check_csrf(&s, &form) {
            return r;
        }
        app.sessions.remove(&s.id);
    }
    let mut res = html(
        StatusCode::OK,
        pages::login(Some("You are signed out. Your saved work is kept.")),
    );
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(session::CLEAR_COOKIE),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("a header value"));
        }
        h
    }

    #[test]
    fn posts_from_other_sites_are_not_same_origin() {
        assert!(same_origin(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[])));
    }
}
