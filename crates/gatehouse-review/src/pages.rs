//! The pages, server-rendered with maud (every value is escaped). Plain HTML forms; labels,
//! fieldsets and landmarks for screen readers; visible focus. One static script, on the
//! privacy spot-check page only, turns a text selection into the mark form's fields (the
//! form works without it).

use gatehouse_core::qa::Rubric;
use gatehouse_core::qa::reviewers::Reviewer;
use gatehouse_core::qa::spot_check::{IdentifierKind, IdentifierMark};
use maud::{DOCTYPE, Markup, PreEscaped, html};

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
        "privacy_spot_check" => "Privacy spot-check",
        _ => "Review",
    }
}

fn page(title: &str, ctx: Option<&Ctx<'_>>, body: Markup) -> Markup {
    page_with(title, ctx, body, false)
}

fn page_with(title: &str, ctx: Option<&Ctx<'_>>, body: Markup, script: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · gatehouse review" }
                link rel="stylesheet" href="/style.css";
                @if script {
                    script src="/spot_check.js" defer {}
                }
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
    let spot = ctx.reviewer.review_type.as_str() == "privacy_spot_check";
    let (done_word, done_badge, flag_badge) = if spot {
        ("checked for identifiers left", "Checked", "Identifier left")
    } else {
        ("scored", "Scored", "Flagged")
    };
    let done = rows.iter().filter(|r| r.done).count();
    let total = rows.len();
    page(
        "Your assignments",
        Some(ctx),
        html! {
            h1 { "Your assignments" }
            p {
                label for="progress" { (done) " of " (total) " conversations " (done_word) }
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
                                @if r.done { span.badge.ok { (done_badge) } } @else if r.started { span.badge { "In progress" } } @else { span.badge.todo { "Not started" } }
                                @if r.flagged { " " span.badge.flag { (flag_badge) } }
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
                p.small { "When every conversation is " (done_word) " you can submit your reviews here. Your work is saved as you go." }
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

/// The privacy spot-check of one record: the conversation with the marks made so far
/// highlighted, the form to mark an identifier (filled by selecting text when script runs),
/// the list of marks, and "no identifier left".
pub fn spot_check(
    ctx: &Ctx<'_>,
    sample: &Sample,
    saved: Option<&DraftReview>,
    (n, of): (usize, usize),
    errors: &[String],
) -> Markup {
    let marks: &[IdentifierMark] = saved
        .and_then(|r| r.identifiers_left.as_deref())
        .unwrap_or(&[]);
    let none_left = saved.is_some_and(|r| r.identifiers_left.as_ref().is_some_and(Vec::is_empty));
    let action = format!("/review/{}", sample.sample_id);
    let body = html! {
        nav aria-label="Assignments" { a href="/assignments" { "← All assignments" } }
        h1 { "Conversation " (n) " of " (of) }
        p.small { (sample.sample_id) " · " (sample.family) " · " (sample.split) }
        p {
            "This conversation was redacted: identifiers should show as placeholders such as "
            code { "[NAME_1]" } ". Read every message. Mark anything that still identifies a person "
            "(a name, address, phone number, e-mail, ID number, date, or anything else) by "
            "selecting it and pressing " strong { "Mark the selection" } ". Never copy it anywhere."
        }
        @if let Some(w) = &sample.content_warning {
            p.warning role="note" { strong { "Content warning. " } (w) }
        }
        @if !errors.is_empty() {
            div.errors id="errors" role="alert" tabindex="-1" autofocus {
                p { "Please correct:" }
                ul { @for e in errors { li { (e) } } }
            }
        }
        section aria-labelledby="conversation-heading" {
            h2 id="conversation-heading" { "The conversation" }
            @if sample.content_warning.is_some() {
                details open[!marks.is_empty()] {
                    summary { "Show the conversation" }
                    (marked_conversation(sample, marks))
                }
            } @else {
                (marked_conversation(sample, marks))
            }
        }
        section aria-labelledby="mark-heading" {
            h2 id="mark-heading" { "Mark an identifier left" }
            form id="mark-form" method="post" action=(action) {
                input type="hidden" name="csrf" value=(ctx.csrf);
                p id="selection-status" role="status" aria-live="polite" {
                    "Select the identifier in the conversation; its place is filled in below."
                }
                fieldset.place {
                    legend { "Where (filled in by your selection)" }
                    p.small { "Without a mouse: the message number, then the position of the identifier's first character counted from 0 (start) and of the character after it (end)." }
                    div.inline {
                        div { label for="message_number" { "Message" } input id="message_number" name="message_number" type="number" min="1" max=(sample.record.messages.len()) required; }
                        div { label for="start" { "Start" } input id="start" name="start" type="number" min="0" required; }
                        div { label for="end" { "End" } input id="end" name="end" type="number" min="1" required; }
                    }
                }
                label for="type" { "What kind of identifier (optional)" }
                select id="type" name="type" {
                    @for k in IdentifierKind::ALL {
                        option value=(k.as_str()) selected[k == IdentifierKind::Other] { (kind_label(k)) }
                    }
                }
                button id="add-mark" type="submit" name="action" value="mark" { "Mark the selection" }
            }
        }
        section aria-labelledby="marks-heading" {
            h2 id="marks-heading" { "Identifiers you marked" }
            @if marks.is_empty() {
                p id="no-marks" { @if none_left { strong { "You recorded: no identifier left." } } @else { "None yet." } }
            } @else {
                table id="marks" {
                    caption.visually-hidden { "Identifiers marked in this conversation" }
                    thead { tr { th scope="col" { "Message" } th scope="col" { "Characters" } th scope="col" { "Kind" } th scope="col" { span.visually-hidden { "Remove" } } } }
                    tbody {
                        @for (i, m) in marks.iter().enumerate() {
                            tr {
                                td { (m.message + 1) }
                                td { (m.start) "–" (m.end) }
                                td { (kind_label(m.kind)) }
                                td {
                                    form method="post" action=(action) {
                                        input type="hidden" name="csrf" value=(ctx.csrf);
                                        input type="hidden" name="mark" value=(i);
                                        button.secondary.small type="submit" name="action" value="unmark" { "Remove mark " (i + 1) }
                                    }
                                }
                            }
                        }
                    }
                }
                p.small { "A conversation with a mark leaves the release (it goes to the blocklist when the release manager signs off)." }
            }
        }
        @if marks.is_empty() {
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(ctx.csrf);
                button id="none-left" type="submit" name="action" value="none" { "No identifier left: next conversation" }
            }
        } @else {
            p { a href="/assignments" { "Back to your assignments" } }
        }
    };
    page_with(&format!("Conversation {n} of {of}"), Some(ctx), body, true)
}

pub fn kind_label(k: IdentifierKind) -> &'static str {
    match k {
        IdentifierKind::Name => "Name",
        IdentifierKind::Address => "Address",
        IdentifierKind::Phone => "Phone number",
        IdentifierKind::Email => "E-mail address",
        IdentifierKind::Id => "ID number",
        IdentifierKind::Date => "Date",
        IdentifierKind::Other => "Other",
    }
}

/// The conversation with each message's text in a `data-message` box (what the script
/// measures selections in) and the marks highlighted.
fn marked_conversation(sample: &Sample, marks: &[IdentifierMark]) -> Markup {
    html! {
        ol.conversation {
            @for (i, m) in sample.record.messages.iter().enumerate() {
                li class={ "msg role-" (m.role) } {
                    p.speaker { "Message " (i + 1) " · " (speaker(&m.role)) }
                    div.text data-message=(i) { (segments(&m.content, marks.iter().filter(|k| k.message == i))) }
                }
            }
        }
    }
}

/// A message's text with its marks as `<mark>`, by code point. A carriage return is written
/// as a character reference: the HTML parser would turn a literal one into a line feed (or
/// drop it), and the offsets the script measures would drift.
fn segments<'a>(text: &str, marks: impl Iterator<Item = &'a IdentifierMark>) -> Markup {
    let chars: Vec<char> = text.chars().collect();
    let mut ranges: Vec<(usize, usize)> = marks
        .map(|m| (m.start.min(chars.len()), m.end.min(chars.len())))
        .collect();
    ranges.sort_unstable();
    let piece = |from: usize, to: usize| -> Markup {
        let s: String = chars[from..to].iter().collect();
        html! {
            @for (k, part) in s.split('\r').enumerate() {
                @if k > 0 { (PreEscaped("&#13;")) }
                (part)
            }
        }
    };
    // (marked, from, to), in order; an overlapping mark (never stored) is skipped.
    let mut parts = Vec::new();
    let mut at = 0;
    for (start, end) in ranges {
        if start >= at && end > start {
            parts.push((false, at, start));
            parts.push((true, start, end));
            at = end;
        }
    }
    parts.push((false, at, chars.len()));
    html! {
        @for (marked, from, to) in parts {
            @if marked { mark.ident { (piece(from, to)) } } @else { (piece(from, to)) }
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
mark.ident { background:#ffd54a; color:inherit; outline:1px solid #8a6d00; }
.inline { display:flex; gap:1rem; flex-wrap:wrap; } .inline input { width:7rem; font:inherit; padding:.35rem; }
select { font:inherit; padding:.35rem; }
button.small { padding:.2rem .6rem; margin:0; font-size:.9rem; }
"#;

/// The spot-check page's script: a selection inside one message fills the mark form with
/// the message number and the code-point offsets of the selection (the text itself is never
/// read into the form, nor sent).
pub const SPOT_CHECK_JS: &str = r#"'use strict';
(function () {
  var form = document.getElementById('mark-form');
  if (!form) { return; }
  var status = document.getElementById('selection-status');
  function codePoints(s) { return Array.from(s).length; }
  function box(node) {
    var el = node.nodeType === 1 ? node : node.parentElement;
    return el ? el.closest('[data-message]') : null;
  }
  function offset(container, node, off) {
    var r = document.createRange();
    r.selectNodeContents(container);
    r.setEnd(node, off);
    return codePoints(r.toString());
  }
  function update() {
    var sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) { return; }
    var range = sel.getRangeAt(0);
    var a = box(range.startContainer), b = box(range.endContainer);
    if (!a && !b) { return; }
    if (a !== b) {
      status.textContent = 'Select text within one message.';
      return;
    }
    var start = offset(a, range.startContainer, range.startOffset);
    var end = offset(a, range.endContainer, range.endOffset);
    if (end <= start) { return; }
    var n = Number(a.getAttribute('data-message')) + 1;
    form.elements.message_number.value = n;
    form.elements.start.value = start;
    form.elements.end.value = end;
    status.textContent = 'Selected ' + (end - start) + ' character(s) in message ' + n +
      '. Choose the kind and press "Mark the selection".';
  }
  document.addEventListener('selectionchange', update);
})();
"#;
