//! The completion marker (`_PUBLISHED`): the release digest, every evidence file with its
//! sha256, and the audit log's head it anchors.

use serde::{Deserialize, Serialize};

/// `_PUBLISHED`: the completion marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub schema_version: u32,
    pub release_version: String,
    pub release_digest: String,
    pub published_at: String,
    pub published_by: String,
    /// Every evidence file with its sha256.
    pub evidence: Vec<Evidence>,
    /// Set when the store does not enforce create-only writes and the operator published
    /// anyway: their reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unenforced_store_override: Option<String>,
    /// The audit log's last line before the marker, so a log cut short is detected
    /// (`gatehouse audit verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<Head>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub key: String,
    pub sha256: String,
}

/// Where the chain stands: the last line written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub log: String,
    pub seq: u64,
    pub sha256: String,
}
