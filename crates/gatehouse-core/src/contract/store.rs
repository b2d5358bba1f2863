//! How a report names the store it read: a printable, secret-free description.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A printable, secret-free description of a store, used in reports and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum StoreDescription {
    Local {
        root: String,
    },
    S3 {
        bucket: String,
        endpoint: String,
        region: String,
        addressing: String,
        server_side_encryption: ServerSideEncryption,
    },
    Memory,
}

/// Server-side encryption requested on every write.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ServerSideEncryption {
    #[default]
    None,
    /// SSE-S3 (`AES256`).
    S3,
    /// SSE-KMS with the given key id.
    Kms { key_id: String },
}

impl fmt::Display for StoreDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreDescription::Local { root } => write!(f, "local directory {root}"),
            StoreDescription::S3 {
                bucket, endpoint, ..
            } => write!(f, "s3://{bucket} at {endpoint}"),
            StoreDescription::Memory => f.write_str("in-memory store"),
        }
    }
}
