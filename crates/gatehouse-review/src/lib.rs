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
//! only its place and type ([`spot_check`](gatehouse_core::qa::spot_check)).
//!
//! Security: every POST carries the session's CSRF token; sessions expire after an idle time
//! and a maximum age; responses forbid framing, caching and any script but the app's own
//! static one. Logs name the method,
//! route pattern, status and duration, and reviewer and sample ids, never a token, a query
//! string, a request body or any conversation text.
//!
//! Modules: `app` (state, routes, middleware, serve), `auth` (sign-in, sessions, CSRF),
//! `drafts` (drafts in the store, form parsing), `handlers` (pages and forms), `pages` (the
//! markup), `session` (the session table), `conn` (connections and their limits).

// Handlers' helpers return the response to send instead (`Result<_, Response>`), as axum
// handlers do; the response is built once per request, its size does not matter.
#![allow(clippy::result_large_err)]

mod app;
mod auth;
mod conn;
mod drafts;
mod handlers;
mod pages;
mod session;

pub use app::{App, Message, Record, Sample, ServeError, router, serve};
pub use conn::ConnLimits;
pub use drafts::{Draft, DraftReview};
pub use session::SessionPolicy;
