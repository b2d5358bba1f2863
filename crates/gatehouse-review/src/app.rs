//! The app's state (the release's samples, the invitations, drafts and sessions, and what the
//! store held at the last request), its routes and middleware (the freshness check, security
//! headers and request log), and the serve entry.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use gatehouse_core::qa::{self, QaConfig, reviewers::Reviewer};
use gatehouse_core::store::{Store, StoreError};
use serde::Deserialize;

use crate::auth::{login_form, login_link, logout};
use crate::conn::{self, ConnLimits};
use crate::drafts::Draft;
use crate::handlers::{
    assignments, home, not_found, review_page, save_review, script, style, submit,
};
use crate::pages;
use crate::session::{SessionPolicy, Sessions};

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

/// A sampled record as the packets hold it: the export record of the contract, read the
/// way training reads it.
pub use gatehouse_core::consume::{Message, Record};

#[derive(Debug, Deserialize)]
struct Packets {
    release_version: String,
    release_digest: String,
    samples: Vec<Sample>,
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
    pub(crate) store: Store,
    pub(crate) location: String,
    pub(crate) config: QaConfig,
    pub(crate) release_version: String,
    pub(crate) digest: String,
    pub(crate) samples: BTreeMap<String, Sample>,
    pub(crate) reviewers: Mutex<Vec<Reviewer>>,
    pub(crate) drafts: Mutex<HashMap<String, Draft>>,
    /// One writer at a time per reviewer (two tabs saving at once must not lose a review).
    writers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When the invitations were last re-read for an unknown token.
    pub(crate) last_reload: Mutex<Option<Instant>>,
    /// What the store held at the last request: see [`App::refresh`].
    seen: Mutex<Seen>,
    pub(crate) sessions: Sessions,
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

pub(crate) type Shared = Arc<App>;

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

    pub(crate) fn reviewer(&self, id: &str) -> Option<Reviewer> {
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

    pub(crate) fn writer(&self, reviewer_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            lock(&self.writers)
                .entry(reviewer_id.to_string())
                .or_default(),
        )
    }

    pub(crate) fn draft_key(&self, reviewer_id: &str) -> String {
        format!("{}qa/drafts/{reviewer_id}.json", self.location)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

pub(crate) fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
