//! The pages, server-rendered with maud (every value is escaped). Plain HTML forms, no
//! script; labels, fieldsets and landmarks for screen readers; visible focus.

use gatehouse_core::qa::Rubric;
use gatehouse_core::qa::reviewers::Reviewer;
use maud::{DOCTYPE, Markup, html};

use super::session::Session;
use super::{App, Draft, DraftReview, Sample};

/// What every signed-in page shows in its header.
pub struct Ctx<'a> {
    pub release_version: &'a str,
    pub digest: &'a str,
    pub reviewer: &'a Reviewer,
    pub csrf: &'a str,
}

impl<'a> Ctx<'a> {
    pub fn new(app: &'a App, reviewer: &'a Reviewer, s: &'a Session) -> Self {
        Self {
            release_version: &app.release_version,
            digest: &app.digest,
            reviewer,
            csrf: &s.csrf,
        }
    }
}

pub struct Row<'a> {
    pub sample: &'a Sample,
    pub done: bool,
    pub started: bool,
    pub flagged: bool,
}

/// `therapeutic_accuracy` → `Therapeutic accuracy`.
pub fn label(name: &str) -> String {
    let s = name.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => s,
    }
}

fn review_type_label(r: &Reviewer) -> &'static str {
    match r.review_type.as_str() {
        "clinician_foundation" => "Clinician review: foundation",
        "clinician_edge" => "Clinician review: crisis and edge cases",
        "bias_cultural" => "Bias and cultural review",
        _ => "Review",
    }
}

fn page(title: &str, ctx: Option<&Ctx<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · gatehouse review" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.brand { "gatehouse review" }
                    @if let Some(c) = ctx {
                        div.who {
                            span { (c.reviewer.name) " · " (review_type_label(c.reviewer)) }
                            span.release { "Release " (c.release_version) }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(c.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" { (body) }
                footer {
                    @if let Some(c) = ctx {
                        p.small { "Your reviews count for release " (c.release_version) " only (" code { (c.digest) } "). Conversations are redacted; do not copy them elsewhere." }
                    }
                }
            }
        }
    }
}

pub fn login(notice: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to review" }
            @if let Some(n) = notice {
                p.notice role="alert" { (n) }
            }
            p { "Open the personal link you were sent, or paste its token below." }
            form method="post" action="/login" {
                label for="token" { "Review token" }
                input id="token" name="token" type="password" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// The page an invitation link opens: who is signing in, and a button that posts the token.
pub fn confirm_sign_in(name: &str, token: &str) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            h1 { "Sign in to review" }
            p { "This is the personal review link of " strong { (name) } ". Continue only if that is you." }
            form method="post" action="/login" {
                input type="hidden" name="token" value=(token);
                button id="continue" type="submit" { "Continue as " (name) }
            }
        },
    )
}

pub fn message(title: &str, text: &str) -> Markup {
    page(
        title,
        None,
        html! {
            h1 { (title) }
            p role="alert" { (text) }
            p { a href="/assignments" { "Back to your assignments" } }
        },
    )
}

pub fn assignments(ctx: &Ctx<'_>, rows: &[Row<'_>], draft: &Draft, saved: bool) -> Markup {
    let done = rows.iter().filter(|r| r.done).count();
    let total = rows.len();
    page(
        "Your assignments",
        Some(ctx),
        html! {
            h1 { "Your assignments" }
            p {
                label for="progress" { (done) " of " (total) " conversations scored" }
                " "
                progress id="progress" max=(total) value=(done) { (done) "/" (total) }
            }
            @if saved {
                p.notice.ok role="status" { "Saved." }
            }
            @if draft.submitted.is_some() && draft.up_to_date() {
                p.notice.ok role="status" { "Your reviews are submitted. You can still change a review and submit again; the latest submission counts." }
            } @else if draft.submitted.is_some() {
                p.notice role="status" { strong { "You changed reviews after submitting. " } "Only what you submitted counts: submit again when you are done." }
            }
            table {
                caption.visually-hidden { "Conversations assigned to you" }
                thead { tr { th scope="col" { "#" } th scope="col" { "Conversation" } th scope="col" { "Source" } th scope="col" { "Status" } } }
                tbody {
                    @for (i, r) in rows.iter().enumerate() {
                        tr {
                            td { (i + 1) }
                            td {
                                a.review-link href={ "/review/" (r.sample.sample_id) } { (r.sample.sample_id) }
                                @if r.sample.content_warning.is_some() { " " span.badge.warn aria-hidden="true" title="Content warning" { "CW" } span.visually-hidden { " (content warning)" } }
                            }
                            td { (r.sample.family) " · " (r.sample.split) }
                            td {
                                @if r.done { span.badge.ok { "Scored" } } @else if r.started { span.badge { "In progress" } } @else { span.badge.todo { "Not started" } }
                                @if r.flagged { " " span.badge.flag { "Flagged" } }
                            }
                        }
                    }
                }
            }
            @if done == total && total > 0 {
                form method="post" action="/submit" {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    button id="submit" type="submit" { @if draft.submitted.is_some() { "Submit my reviews again" } @else { "Submit my reviews" } }
                }
            } @else {
                p.small { "When every conversation is scored you can submit your reviews here. Your work is saved as you go." }
            }
        },
    )
}

pub fn review(
    ctx: &Ctx<'_>,
    sample: &Sample,
    rubric: &Rubric,
    saved: Option<&DraftReview>,
    (n, of): (usize, usize),
    errors: &[String],
) -> Markup {
    let flag_kind = saved
        .and_then(|r| r.flag.as_deref())
        .map_or("none", |f| f.split(':').next().unwrap_or("none"));
    let flag_reason = saved
        .and_then(|r| r.flag.as_deref())
        .and_then(|f| f.split_once(':'))
        .map_or("", |(_, r)| r.trim());
    page(
        &format!("Conversation {n} of {of}"),
        Some(ctx),
        html! {
            nav aria-label="Assignments" { a href="/assignments" { "← All assignments" } }
            h1 { "Conversation " (n) " of " (of) }
            p.small { (sample.sample_id) " · " (sample.family) " · " (sample.split) }
            @if let Some(w) = &sample.content_warning {
                p.warning role="note" { strong { "Content warning. " } (w) }
            }
            section aria-labelledby="conversation-heading" {
                h2 id="conversation-heading" { "The conversation" }
                @if sample.content_warning.is_some() {
                    // Behind the warning: the reviewer opens it when ready.
                    details {
                        summary { "Show the conversation" }
                        (conversation(sample))
                    }
                } @else {
                    (conversation(sample))
                }
            }
            section aria-labelledby="score-heading" {
                h2 id="score-heading" { "Your review" }
                @if !errors.is_empty() {
                    div.errors id="errors" role="alert" tabindex="-1" autofocus {
                        p { "Please correct:" }
                        ul { @for e in errors { li { (e) } } }
                    }
                }
                form method="post" action={ "/review/" (sample.sample_id) } {
                    input type="hidden" name="csrf" value=(ctx.csrf);
                    p.small { "Score each criterion from 1 (poor) to 10 (excellent). The number after each criterion is its minimum for the release to pass." }
                    @for c in &rubric.criteria {
                        @let chosen = saved.and_then(|r| r.scores.get(&c.name)).copied();
                        fieldset.score {
                            legend { (label(&c.name)) span.min { " (minimum " (c.minimum) ")" } }
                            div.scale {
                                @for v in 1u8..=10 {
                                    @let id = format!("score-{}-{v}", c.name);
                                    input type="radio" id=(id) name={ "score." (c.name) } value=(v) checked[chosen == Some(v)];
                                    label for=(id) { (v) }
                                }
                            }
                        }
                    }
                    label for="comment" { "Comment (optional)" }
                    textarea id="comment" name="comment" rows="3" maxlength="5000" { (saved.map_or("", |r| r.comment.as_str())) }
                    fieldset.flag {
                        legend { "Should this record stay in the release?" }
                        @for (value, text) in [("none", "Yes, keep it"), ("remove", "Remove it from the release"), ("escalate", "Escalate: disallowed or harmful content")] {
                            div {
                                input type="radio" id={ "flag-" (value) } name="flag" value=(value) checked[flag_kind == value];
                                label for={ "flag-" (value) } { (text) }
                            }
                        }
                        label for="flag_reason" { "Reason (needed when you flag)" }
                        input id="flag_reason" name="flag_reason" type="text" maxlength="500" value=(flag_reason);
                    }
                    div.actions {
                        button id="save-next" type="submit" name="next" value="1" { "Save and go to the next" }
                        button.secondary id="save" type="submit" { "Save" }
                    }
                }
            }
        },
    )
}

fn conversation(sample: &Sample) -> Markup {
    html! {
        ol.conversation {
            @for m in &sample.record.messages {
                li class={ "msg role-" (m.role) } {
                    p.speaker { (speaker(&m.role)) }
                    div.text { (m.content) }
                }
            }
        }
    }
}

fn speaker(role: &str) -> &'static str {
    match role {
        "system" => "System prompt",
        "user" => "Client (user)",
        "assistant" => "Counsellor (assistant)",
        _ => "Other",
    }
}

pub fn submitted(ctx: &Ctx<'_>) -> Markup {
    page(
        "Submitted",
        Some(ctx),
        html! {
            h1 { "Thank you: your reviews are submitted" }
            p role="status" { "They count towards the signoff of release " (ctx.release_version) ". You can still change a review and submit again." }
            p { a href="/assignments" { "Back to your assignments" } }
        },
    )
}

pub const STYLE: &str = r#"
:root { --ink:#1b1f24; --muted:#4a5561; --line:#c9d1d9; --bg:#f7f8fa; --card:#fff; --accent:#0b5cad; --ok:#1a6e35; --warn:#8a4b00; --bad:#a1192b; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
a { color:var(--accent); }
:focus-visible { outline:3px solid #b35900; outline-offset:2px; }
.skip { position:absolute; left:-999px; } .skip:focus { left:1rem; top:1rem; background:#fff; padding:.5rem; z-index:2; }
.visually-hidden { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
header.top { display:flex; flex-wrap:wrap; justify-content:space-between; align-items:center; gap:.5rem; padding:.75rem 1.25rem; background:#12324f; color:#fff; }
header.top .brand { font-weight:700; letter-spacing:.02em; }
header.top .who { display:flex; gap:1rem; align-items:center; flex-wrap:wrap; }
header.top .release { opacity:.85; }
header.top form { margin:0; }
header.top button.link { margin:0; }
button.link { background:none; border:0; color:#fff; text-decoration:underline; padding:0; font:inherit; cursor:pointer; }
main { max-width:52rem; margin:1.5rem auto; padding:0 1.25rem; }
footer { max-width:52rem; margin:2rem auto; padding:0 1.25rem; color:var(--muted); }
.small { font-size:.9rem; color:var(--muted); }
.notice { padding:.75rem 1rem; border-left:4px solid var(--accent); background:#eaf2fb; }
.notice.ok { border-color:var(--ok); background:#e8f5ec; }
.warning { padding:.75rem 1rem; border-left:4px solid var(--warn); background:#fff4e5; }
.errors { padding:.75rem 1rem; border-left:4px solid var(--bad); background:#fdecee; }
table { width:100%; border-collapse:collapse; background:var(--card); }
th, td { text-align:left; padding:.5rem .6rem; border-bottom:1px solid var(--line); }
.badge { display:inline-block; padding:.05rem .5rem; border-radius:1rem; font-size:.85rem; background:#e6ebf0; }
.badge.ok { background:#d6efdd; color:var(--ok); } .badge.todo { background:#eef0f3; color:var(--muted); }
.badge.warn { background:#ffe8c7; color:var(--warn); } .badge.flag { background:#fbd9de; color:var(--bad); }
ol.conversation { list-style:none; padding:0; }
.msg { background:var(--card); border:1px solid var(--line); border-radius:.5rem; padding:.6rem .9rem; margin:.6rem 0; }
.msg.role-user { margin-right:3rem; } .msg.role-assistant { margin-left:3rem; background:#f1f6fc; }
.msg.role-system { background:#f4f4f4; font-size:.92rem; }
.speaker { margin:0 0 .25rem; font-weight:600; font-size:.85rem; color:var(--muted); }
.text { white-space:pre-wrap; overflow-wrap:anywhere; }
fieldset { border:1px solid var(--line); border-radius:.5rem; margin:1rem 0; padding:.6rem .9rem; background:var(--card); }
legend { font-weight:600; padding:0 .3rem; } .min { font-weight:400; color:var(--muted); }
.scale { display:flex; flex-wrap:wrap; gap:.3rem; }
.scale input { position:absolute; opacity:0; width:1px; height:1px; }
.scale label { display:inline-block; min-width:2.4rem; text-align:center; padding:.35rem .2rem; border:1px solid var(--line); border-radius:.35rem; cursor:pointer; background:#fff; }
.scale input:checked + label { background:var(--accent); color:#fff; border-color:var(--accent); }
.scale input:focus-visible + label { outline:3px solid #b35900; outline-offset:2px; }
details > summary { cursor:pointer; font-weight:600; padding:.4rem 0; }
label { display:block; margin:.5rem 0 .2rem; } .flag label, .scale label { margin:0; }
.flag div { display:flex; gap:.5rem; align-items:center; margin:.25rem 0; }
textarea, input[type=text], input[type=password] { width:100%; font:inherit; padding:.45rem; border:1px solid #8a96a3; border-radius:.35rem; }
button { font:inherit; padding:.55rem 1.1rem; border-radius:.4rem; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; margin-top:.75rem; }
button.secondary { background:#fff; color:var(--accent); }
.actions { display:flex; gap:.75rem; flex-wrap:wrap; }
progress { width:12rem; vertical-align:middle; }
code { font-size:.85em; overflow-wrap:anywhere; }
"#;
