//! The record contract: roles, messages, and the two identities of a record.
//!
//! - **`content_hash` v1** (`HASH_VERSION`): sha256 over the messages after normalisation:
//!   each content is NFC-normalised, `\r\n` and `\r` become `\n`, and leading/trailing
//!   whitespace is trimmed; the serialisation is, for every message in order, the role name,
//!   a `0x1F` unit separator, the content, and a `0x1E` record separator. Rendered
//!   `sha256:<64 hex>`. Metadata never enters the hash, so the same conversation from two
//!   sources hashes the same.
//! - **id**: where the record came from, not what it says: the first 16 hex digits of
//!   sha256(`gatehouse-id-v1 \0 dataset \0 key \0 line \0 part`). Stable across runs and
//!   versions as long as the source object does not change.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// Version of the `content_hash` definition, recorded in the manifest.
pub const HASH_VERSION: u32 = 1;

/// A normalised chat role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// Maps the role and speaker labels seen in real sources (case-insensitive).
    pub fn from_label(label: &str) -> Option<Role> {
        match label.trim().to_ascii_lowercase().as_str() {
            "system" | "sys" | "instruction" => Some(Role::System),
            "user" | "human" | "client" | "patient" | "seeker" | "customer" | "person"
            | "question" | "prompt" => Some(Role::User),
            "assistant" | "gpt" | "bot" | "ai" | "model" | "therapist" | "counselor"
            | "counsellor" | "chatgpt" | "answer" | "response" => Some(Role::Assistant),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// What to do with consecutive messages of the same role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergePolicy {
    /// Join them with a blank line (default).
    #[default]
    Merge,
    /// Leave them as separate messages.
    Keep,
}

/// Normalises a conversation in place: drops messages whose content is blank, applies the
/// merge policy. Returns (blank messages dropped, merges performed).
pub fn normalise(messages: &mut Vec<Message>, policy: MergePolicy) -> (u32, u32) {
    let before = messages.len();
    messages.retain(|m| !m.content.trim().is_empty());
    let dropped = (before - messages.len()) as u32;
    let mut merges = 0;
    if policy == MergePolicy::Merge && messages.len() > 1 {
        let mut out: Vec<Message> = Vec::with_capacity(messages.len());
        for m in messages.drain(..) {
            match out.last_mut() {
                Some(last) if last.role == m.role => {
                    last.content.push_str("\n\n");
                    last.content.push_str(&m.content);
                    merges += 1;
                }
                _ => out.push(m),
            }
        }
        *messages = out;
    }
    (dropped, merges)
}

/// Content as it enters the hash: NFC, `\n` line ends, trimmed.
pub fn normalise_content(content: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    use unicode_normalization::{IsNormalized, is_nfc_quick};
    let unified: Cow<'_, str> = if content.contains('\r') {
        Cow::Owned(content.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(content)
    };
    // Nearly all text is already NFC; checking is much cheaper than rebuilding it.
    let needs_nfc = is_nfc_quick(unified.trim().chars()) != IsNormalized::Yes;
    match (unified, needs_nfc) {
        (Cow::Borrowed(s), false) => Cow::Borrowed(s.trim()),
        (Cow::Owned(s), false) => Cow::Owned(s.trim().to_string()),
        (u, true) => Cow::Owned(u.trim().nfc().collect()),
    }
}

/// `content_hash` v1 of a conversation; see the module docs.
pub fn content_hash(messages: &[Message]) -> String {
    let mut h = Sha256::new();
    for m in messages {
        h.update(m.role.as_str().as_bytes());
        h.update([0x1F]);
        h.update(normalise_content(&m.content).as_bytes());
        h.update([0x1E]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Stable record id from its origin; see the module docs.
pub fn record_id(dataset: &str, key: &str, line: u64, part: u32) -> String {
    let mut h = Sha256::new();
    for piece in [
        "gatehouse-id-v1",
        dataset,
        key,
        &line.to_string(),
        &part.to_string(),
    ] {
        h.update(piece.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(pairs: &[(Role, &str)]) -> Vec<Message> {
        pairs.iter().map(|(r, c)| Message::new(*r, *c)).collect()
    }

    #[test]
    fn role_labels_from_real_sources_map() {
        assert_eq!(Role::from_label("human"), Some(Role::User));
        assert_eq!(Role::from_label("GPT"), Some(Role::Assistant));
        assert_eq!(Role::from_label(" therapist "), Some(Role::Assistant));
        assert_eq!(Role::from_label("client"), Some(Role::User));
        assert_eq!(Role::from_label("narrator"), None);
    }

    #[test]
    fn consecutive_same_role_turns_merge_and_blank_ones_drop() {
        let mut m = msgs(&[
            (Role::User, "a"),
            (Role::User, "b"),
            (Role::Assistant, "  "),
            (Role::Assistant, "c"),
            (Role::Assistant, "d"),
        ]);
        assert_eq!(normalise(&mut m, MergePolicy::Merge), (1, 2));
        assert_eq!(
            m,
            msgs(&[(Role::User, "a\n\nb"), (Role::Assistant, "c\n\nd")])
        );
        let mut k = msgs(&[(Role::User, "a"), (Role::User, "b")]);
        assert_eq!(normalise(&mut k, MergePolicy::Keep), (0, 0));
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn content_hash_ignores_line_endings_edges_and_unicode_composition() {
        let a = content_hash(&msgs(&[
            (Role::User, "caf\u{e9}\r\nok "),
            (Role::Assistant, "x"),
        ]));
        let b = content_hash(&msgs(&[
            (Role::User, " cafe\u{301}\nok"),
            (Role::Assistant, "x"),
        ]));
        assert_eq!(a, b);
        let c = content_hash(&msgs(&[
            (Role::Assistant, "cafe\u{301}\nok"),
            (Role::Assistant, "x"),
        ]));
        assert_ne!(a, c, "roles are hashed");
        assert!(a.starts_with("sha256:") && a.len() == 71);
    }

    #[test]
    fn content_hash_v1_is_pinned() {
        // A literal: changing the definition must bump HASH_VERSION. Input exercises NFC
        // (decomposed é), CRLF and padding.
        let h = content_hash(&msgs(&[
            (Role::User, "  cafe\u{301}\r\nok "),
            (Role::Assistant, "hi"),
        ]));
        assert_eq!(
            h,
            "sha256:67d4f8bf02b37f12c5bbb3f47f6eca61723a578ecaba87bc9cd42ee313b48031"
        );
        assert_eq!(
            record_id("ds", "k.jsonl", 3, 0),
            record_id("ds", "k.jsonl", 3, 0)
        );
    }

    #[test]
    fn ids_depend_on_origin_only() {
        let a = record_id("ds", "k.jsonl", 3, 0);
        assert_eq!(a, record_id("ds", "k.jsonl", 3, 0));
        assert_ne!(a, record_id("ds", "k.jsonl", 4, 0));
        assert_ne!(a, record_id("ds", "k.jsonl", 3, 1));
        assert_eq!(a.len(), 16);
    }
}
