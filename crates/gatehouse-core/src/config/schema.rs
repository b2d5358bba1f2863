//! What can be said: `gatehouse.toml`'s sections, as parsed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::CoverageConfig;
use crate::waiver::Waiver;

/// `gatehouse.toml`. Relative paths in it are relative to the file's own directory.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Registry file.
    pub registry: Option<PathBuf>,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub coverage: CoverageConfig,
    #[serde(default)]
    pub build: crate::build::BuildConfig,
    #[serde(default)]
    pub gates: crate::gates::GatesConfig,
    #[serde(default)]
    pub qa: crate::qa::QaConfig,
    #[serde(default)]
    pub consume: crate::consume::ConsumeConfig,
    /// `[privacy]`: the PII detector's policy and its labelled evaluation sets.
    #[serde(default)]
    pub privacy: crate::privacy::PrivacyConfig,
    /// Explicit, reviewed exceptions to gate rules.
    #[serde(default)]
    pub waivers: Vec<Waiver>,
}

/// `[store]`: everything but secrets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub backend: Option<BackendKind>,
    pub local_path: Option<PathBuf>,
    pub exports_prefix: Option<String>,
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: Option<bool>,
    pub virtual_hosted_style: Option<bool>,
    /// `none`, `s3` (SSE-S3, AES256) or `kms` (needs `sse_kms_key_id`).
    pub sse: Option<SseKind>,
    pub sse_kms_key_id: Option<String>,
    pub connect_timeout_secs: Option<u64>,
    pub read_timeout_secs: Option<u64>,
    pub retry_budget_secs: Option<u64>,
    pub max_retries: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Local,
    S3,
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Self::Local),
            "s3" => Ok(Self::S3),
            other => Err(format!(
                "unknown storage backend {other:?} (expected local or s3)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SseKind {
    None,
    S3,
    Kms,
}
