//! What the store tells whoever watches it: every listing, read, write and delete, as it
//! happens. The store knows nothing of who listens; the audit log ([`crate::audit`]) is the
//! one observer today, attached with [`super::Store::observed_by`].

use serde_json::Value;

/// A kind of access to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    List,
    Read,
    Write,
    /// A create-only write (it fails if the key exists).
    Create,
    Delete,
}

/// The optional parts of an event.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub key: Option<String>,
    pub bytes: Option<u64>,
    pub etag: Option<String>,
    pub sha256: Option<String>,
    /// Small structured facts (verdicts, reasons, counts, digests); never content.
    pub detail: Option<Value>,
}

impl Event {
    pub fn key(key: &str) -> Self {
        Self {
            key: Some(key.to_string()),
            ..Self::default()
        }
    }

    pub fn detail(detail: Value) -> Self {
        Self {
            detail: Some(detail),
            ..Self::default()
        }
    }
}

/// Told of every access, from whichever thread made it.
pub trait StoreObserver: Send + Sync + std::fmt::Debug {
    fn observe(&self, access: Access, event: Event);
}
