//! Redaction of one conversation: every detected span becomes a typed placeholder with a
//! per-conversation index, so the same person stays the same person (`[NAME_1]` … `[NAME_1]`,
//! a different one is `[NAME_2]`) and the dialogue still reads. A first name seen alone
//! after a full name gets the full name's index.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::{Allowlist, Confidence, Detector, PiiType, normalise};

/// What to do with spans the detector is unsure about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsurePolicy {
    /// Redact them like any other span.
    #[default]
    Redact,
    /// Keep the record out of the export and list it for human review.
    Review,
}

/// The outcome for one conversation (counts only, never text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redaction {
    pub counts: BTreeMap<PiiType, u32>,
    /// Spans the detector was unsure about.
    pub unsure: u32,
    /// The policy holds this record for review.
    pub requires_review: bool,
}

impl Redaction {
    pub fn total(&self) -> u32 {
        self.counts.values().sum()
    }
}

/// Whether `s` is exactly a placeholder such as `[NAME]` or `[EMAIL_3]`.
pub fn is_placeholder(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    let label = match inner.rsplit_once('_') {
        Some((l, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => l,
        _ => inner,
    };
    PiiType::from_label(label).is_some()
}

/// Redacts every message of a conversation in place.
pub fn redact_conversation<'a>(
    detector: &Detector,
    allow: &Allowlist,
    policy: UnsurePolicy,
    contents: impl IntoIterator<Item = &'a mut String>,
) -> Redaction {
    let mut outcome = Redaction::default();
    let mut ids: HashMap<(PiiType, String), u32> = HashMap::new();
    let mut next: BTreeMap<PiiType, u32> = BTreeMap::new();
    for content in contents {
        let spans = detector.detect(content, allow);
        if spans.is_empty() {
            continue;
        }
        let mut out = String::with_capacity(content.len());
        let mut at = 0;
        for s in &spans {
            *outcome.counts.entry(s.kind).or_default() += 1;
            if s.confidence == Confidence::Unsure {
                outcome.unsure += 1;
                if policy == UnsurePolicy::Review {
                    outcome.requires_review = true;
                }
            }
            let key = normalise(&content[s.start..s.end]);
            let index = identity(&mut ids, &mut next, s.kind, &key);
            out.push_str(&content[at..s.start]);
            out.push('[');
            out.push_str(s.kind.label());
            out.push('_');
            out.push_str(&index.to_string());
            out.push(']');
            at = s.end;
        }
        out.push_str(&content[at..]);
        *content = out;
    }
    outcome
}

/// The placeholder index of a value within the conversation.
fn identity(
    ids: &mut HashMap<(PiiType, String), u32>,
    next: &mut BTreeMap<PiiType, u32>,
    kind: PiiType,
    key: &str,
) -> u32 {
    if let Some(i) = ids.get(&(kind, key.to_string())) {
        return *i;
    }
    // A name's parts ("sarah" of "sarah jones") refer to the same person.
    if kind == PiiType::Name {
        let parts: Vec<&str> = key.split(' ').collect();
        for p in &parts {
            if let Some(i) = ids.get(&(kind, (*p).to_string())).copied() {
                ids.insert((kind, key.to_string()), i);
                return i;
            }
        }
        let n = next.entry(kind).or_default();
        *n += 1;
        let i = *n;
        ids.insert((kind, key.to_string()), i);
        if parts.len() > 1 {
            for p in parts {
                ids.entry((kind, p.to_string())).or_insert(i);
            }
        }
        return i;
    }
    let n = next.entry(kind).or_default();
    *n += 1;
    ids.insert((kind, key.to_string()), *n);
    *n
}
