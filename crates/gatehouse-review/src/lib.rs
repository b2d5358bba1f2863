//! The reviewer web app (`gatehouse qa serve`).
//!
//! Reviewers open the secret link `gatehouse qa invite` gave them; the token is exchanged for
//! a session cookie (HttpOnly, SameSite=Strict) and never appears in a URL again. A reviewer
//! sees only the samples assigned to them, reads each whole redacted conversation (content
//! warning first), scores every criterion of their rubric on 1–10, comments, may flag the
//! record for removal or escalation, and sees their progress. Every save is written to the
//! store at once (`qa/drafts/{reviewer}.json`), so they can stop and come back. Submitting
//! writes their review file (`qa/reviews/{type}-{reviewer}.json`) through the same checks as
//! `gatehouse qa import`; `gatehouse qa signoff` computes the decision from those files.
//!
//! A privacy spot-check reviewer (`privacy_spot_check`) instead marks every identifier the
//! redaction left: they select it in the page (one static script, `/spot_check.js`, fills the
//! form's message and code-point offsets; without script they type them) and choose a type,
//! or record that none is left. The server checks every mark against the record and stores
//! only its place and type ([`spot_check`]).
//!
//! Security: every POST carries the session's CSRF token; sessions expire after an idle time
//! and a maximum age; responses forbid framing, caching and any script but the app's own
//! static one. Logs name the method,
//! route pattern, status and duration, and reviewer and sample ids, never a token, a query
//! string, a request body or any conversation text.

// Handlers' helpers return the response to send instead (`Result<_, Response>`), as axum
// handlers do; the response is built once per request, its size does not matter.
#![allow(clippy::result_large_err)]

mod conn;
mod pages;
mod session;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Form, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use gatehouse_core::qa::spot_check::{self, IdentifierKind, IdentifierMark};
use gatehouse_core::qa::{self, QaConfig, reviewers::Reviewer, signoff};
use gatehouse_core::registry::ReviewType;
use gatehouse_core::store::{Store, StoreError};
use serde::{Deserialize, Serialize};

pub use conn::ConnLimits;
pub use session::SessionPolicy;
use session::{Session, Sessions};

/// A sample as the app shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub sample_id: String,
    pub record_id: String,
    pub family: String,
    pub split: String,
    pub content_warning: Option<String>,
    pub record: Record,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Deserialize)]
struct Packets {
    release_version: String,
    release_digest: String,
    samples: Vec<Sample>,
}

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
    fn reviews_digest(&self) -> String {
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

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Qa(#[from] qa::QaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: not review packets")]
    BadPackets { key: String },
    #[error("nobody is invited to review this release")]
    NoReviewers,
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl ServeError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ServeError::Qa(e) => e.hint(),
            ServeError::Store(e) => e.hint(),
            ServeError::BadPackets { .. } => Some("run `gatehouse qa sample` again".into()),
            ServeError::NoReviewers => {
                Some("invite reviewers first: `gatehouse qa invite --name … --role …`".into())
            }
            ServeError::Listen { .. } => {
                Some("choose another address with --listen (e.g. 127.0.0.1:0)".into())
            }
        }
    }
}

/// Everything the app serves, shared by the handlers.
#[derive(Debug)]
pub struct App {
    store: Store,
    location: String,
    config: QaConfig,
    release_version: String,
    digest: String,
    samples: BTreeMap<String, Sample>,
    reviewers: Mutex<Vec<Reviewer>>,
    drafts: Mutex<HashMap<String, Draft>>,
    /// One writer at a time per reviewer (two tabs saving at once must not lose a review).
    writers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When the invitations were last re-read for an unknown token.
    last_reload: Mutex<Option<Instant>>,
    /// What the store held at the last request: see [`App::refresh`].
    seen: Mutex<Seen>,
    sessions: Sessions,
}

/// The identities (etag, size) of the manifest and the invitations at the last request.
#[derive(Debug, Default)]
struct Seen {
    manifest: Option<(Option<String>, u64)>,
    reviewers: Option<(Option<String>, u64)>,
    /// The manifest no longer has this app's digest: the release was rebuilt.
    changed: bool,
}

/// Whether the release the app serves is still the one in the store.
enum Freshness {
    Current,
    Changed,
}

type Shared = Arc<App>;

impl App {
    /// Loads the release's packets and reviewers. Fails when the packets are stale (the
    /// release was rebuilt) or nobody is invited.
    pub fn load(
        store: Store,
        location: &str,
        config: QaConfig,
        policy: SessionPolicy,
    ) -> Result<Self, ServeError> {
        // Checks the packets against the current manifest first.
        let (_, digest, _) = qa::packets(&store, location)?;
        let key = format!("{location}qa/qa_samples.json");
        let bytes = store.get_bytes(&key)?;
        let p: Packets =
            serde_json::from_slice(&bytes).map_err(|_| ServeError::BadPackets { key })?;
        debug_assert_eq!(p.release_digest, digest);
        let reviewers = qa::reviewers::load(&store, location, &digest)?.reviewers;
        if reviewers.is_empty() {
            return Err(ServeError::NoReviewers);
        }
        Ok(Self {
            store,
            location: location.to_string(),
            config,
            release_version: p.release_version,
            digest,
            samples: p
                .samples
                .into_iter()
                .map(|s| (s.sample_id.clone(), s))
                .collect(),
            reviewers: Mutex::new(reviewers),
            drafts: Mutex::new(HashMap::new()),
            writers: Mutex::new(HashMap::new()),
            last_reload: Mutex::new(None),
            seen: Mutex::new(Seen::default()),
            sessions: Sessions::new(policy),
        })
    }

    pub fn release_digest(&self) -> &str {
        &self.digest
    }

    fn reviewer(&self, id: &str) -> Option<Reviewer> {
        lock(&self.reviewers).iter().find(|r| r.id == id).cloned()
    }

    /// Looks at the store before every request (two HEADs; a re-read only when one
    /// changed): a rebuilt manifest means the packets are stale, and changed invitations
    /// (a `qa revoke`, a new invite) are re-read, so a revocation takes effect at the
    /// revoked reviewer's next request. Blocking: call it on a blocking thread.
    fn refresh(&self) -> Result<Freshness, ServeError> {
        let manifest_key = format!("{}manifest.json", self.location);
        let head = match self.store.head(&manifest_key) {
            Ok(h) => Some((h.etag, h.size)),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        {
            let seen = lock(&self.seen);
            if seen.changed {
                return Ok(Freshness::Changed);
            }
            if head.is_none() || seen.manifest != head {
                drop(seen);
                let current = match self.store.get_bytes(&manifest_key) {
                    Ok(b) => Some(gatehouse_core::digest::sha256(&b)),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                };
                let mut seen = lock(&self.seen);
                if current.as_deref() != Some(self.digest.as_str()) {
                    seen.changed = true;
                    return Ok(Freshness::Changed);
                }
                seen.manifest = head;
            }
        }
        let key = qa::reviewers::reviewers_key(&self.location);
        let head = match self.store.head(&key) {
            Ok(h) => Some((h.etag, h.size)),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if lock(&self.seen).reviewers != head {
            let fresh = qa::reviewers::load(&self.store, &self.location, &self.digest)?;
            *lock(&self.reviewers) = fresh.reviewers;
            lock(&self.seen).reviewers = head;
        }
        Ok(Freshness::Current)
    }

    fn writer(&self, reviewer_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            lock(&self.writers)
                .entry(reviewer_id.to_string())
                .or_default(),
        )
    }

    fn draft_key(&self, reviewer_id: &str) -> String {
        format!("{}qa/drafts/{reviewer_id}.json", self.location)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in another request must not take the whole app down with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The app's routes, with its security headers and request log.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_link).post(login_form))
        .route("/logout", post(logout))
        .route("/assignments", get(assignments))
        .route("/review/{sample_id}", get(review_page).post(save_review))
        .route("/submit", post(submit))
        .route("/style.css", get(style))
        .route("/spot_check.js", get(script))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), fresh))
        .layer(middleware::from_fn(log_and_harden))
        .with_state(app)
}

/// Before every request but the stylesheet: is the release still the one the app serves,
/// and who is still invited ([`App::refresh`])?
async fn fresh(State(app): State<Shared>, req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/style.css" | "/spot_check.js") {
        return next.run(req).await;
    }
    let a = Arc::clone(&app);
    match tokio::task::spawn_blocking(move || a.refresh()).await {
        Ok(Ok(Freshness::Current)) => next.run(req).await,
        Ok(Ok(Freshness::Changed)) => html(
            StatusCode::CONFLICT,
            pages::message(
                "This release has changed",
                "The release was rebuilt after these samples were drawn, so they can no longer \
                 be reviewed or saved here. Your earlier saves are kept. The release manager \
                 will draw new samples and send you a new link.",
            ),
        ),
        Ok(Err(e)) => {
            tracing::warn!(target: "gatehouse_review", "cannot check the release: {e}");
            unavailable()
        }
        Err(_) => unavailable(),
    }
}

fn unavailable() -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            "Temporarily unavailable",
            "The review store cannot be reached just now. Try again in a moment; your saved \
             work is kept.",
        ),
    )
}

/// Serves until Ctrl-C (or `shutdown` resolves), each connection under `limits`. `ready`
/// receives the bound address.
pub async fn serve(
    app: Arc<App>,
    addr: &str,
    limits: ConnLimits,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listen_err = |source| ServeError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(listen_err)?;
    let local = listener.local_addr().map_err(listen_err)?;
    ready(local);
    conn::serve(listener, router(app), limits, shutdown)
        .await
        .map_err(listen_err)
}

/// Logs one line per request (no query, no body, no text) and sets the security headers.
async fn log_and_harden(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", |m| m.as_str())
        .to_string();
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    tracing::info!(
        target: "gatehouse_review",
        "{method} {route} {} {:.1} ms",
        res.status().as_u16(),
        started.elapsed().as_secs_f64() * 1e3
    );
    res
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The session of the request, when it has a live one.
fn session(app: &App, headers: &HeaderMap) -> Option<Session> {
    let id = session::cookie(headers)?;
    app.sessions.get(&id)
}

/// A signed-in reviewer: their session and record; or the response to send instead.
fn signed_in(app: &App, headers: &HeaderMap) -> Result<(Session, Reviewer), Response> {
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

fn check_csrf(s: &Session, form: &HashMap<String, String>) -> Result<(), Response> {
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

async fn home(State(app): State<Shared>, headers: HeaderMap) -> Response {
    if session(&app, &headers).is_some() {
        see_other("/assignments")
    } else {
        html(StatusCode::OK, pages::login(None))
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The invitation link: shows who is signing in, with a button that posts the token. The
/// session starts only on that same-origin POST, so a link cannot sign a browser into
/// someone else's account, and the SameSite=Strict cookie is set by a first-party request
/// (a cookie set during a navigation from a mail or chat site would not be sent back).
async fn login_link(State(app): State<Shared>, Query(q): Query<TokenQuery>) -> Response {
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

async fn login_form(
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

async fn logout(
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

/// The reviewer's draft, read from the store the first time. A draft made for another
/// release digest starts afresh; an unreadable one is an error (saving over it would lose
/// the reviewer's work).
async fn draft(app: &Shared, reviewer_id: &str) -> Result<Draft, Response> {
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

fn storage_error() -> Response {
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
async fn save_draft(app: &Shared, d: Draft) -> Result<(), Response> {
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
fn complete(config: &QaConfig, t: ReviewType, r: Option<&DraftReview>) -> bool {
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

#[derive(Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

async fn assignments(
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

async fn review_page(
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

/// Parses the review form: scores `score.{criterion}` (1–10; blank = not yet), `comment`,
/// `flag` (`none`, `remove`, `escalate`) with `flag_reason`.
fn parse_review(rubric: &qa::Rubric, form: &HashMap<String, String>) -> (DraftReview, Vec<String>) {
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
enum SpotAction {
    Mark(IdentifierMark),
    Unmark(usize),
    NoneLeft,
}

/// Parses a spot-check form against the record; the errors name fields, never text.
fn parse_spot_action(
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

async fn save_review(
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

async fn submit(
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

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        pages::STYLE,
    )
        .into_response()
}

async fn script() -> Response {
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

async fn not_found() -> Response {
    not_found_page()
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
