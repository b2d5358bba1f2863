//! What a store is, once every flag, environment variable and config-file setting has been
//! resolved (see [`crate::config`] for the resolution). Secrets live in [`Secret`], which never
//! prints its value.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::contract::store::{ServerSideEncryption, StoreDescription};

/// A string that must never be printed: its `Debug` and `Display` show only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for handing to the S3 client and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A directory on local disk; keys are paths below it.
    Local { root: PathBuf },
    /// An S3-compatible bucket (AWS, OVH, moto, …).
    S3(Box<S3Config>),
    /// Process memory; for tests.
    Memory,
}

/// S3 connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `None` means AWS itself (`s3.<region>.amazonaws.com`).
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Credentials,
    /// Plain HTTP is allowed only for loopback endpoints or when explicitly configured.
    pub allow_http: bool,
    /// Path-style (`endpoint/bucket/key`) is the default: S3-compatible stores need it.
    pub virtual_hosted_style: bool,
    pub sse: ServerSideEncryption,
    pub timeouts: Timeouts,
}

/// Access key pair and where it came from (an environment prefix such as `OVH_S3_`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// Which variables supplied them, e.g. `OVH_S3_ACCESS_KEY/OVH_S3_SECRET_KEY`.
    pub source: String,
}

/// Network timeouts. There is deliberately no whole-request timeout: a GET of a
/// several-GB object legitimately takes minutes. A stalled connection is caught by
/// `read_idle` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read_idle: Duration,
    /// Total time object_store may spend retrying one request.
    pub retry_budget: Duration,
    pub max_retries: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            read_idle: Duration::from_secs(60),
            retry_budget: Duration::from_secs(30),
            max_retries: 3,
        }
    }
}

/// A resolved store: where it is and where releases go inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub backend: Backend,
    /// Key prefix under which releases are written (`{exports}/releases/{version}/`).
    pub exports_prefix: String,
}

impl StoreConfig {
    pub fn describe(&self) -> StoreDescription {
        match &self.backend {
            Backend::Local { root } => StoreDescription::Local {
                root: root.display().to_string(),
            },
            Backend::S3(s3) => StoreDescription::S3 {
                bucket: s3.bucket.clone(),
                endpoint: s3
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s3.region)),
                region: s3.region.clone(),
                addressing: if s3.virtual_hosted_style {
                    "virtual-hosted"
                } else {
                    "path-style"
                }
                .into(),
                server_side_encryption: s3.sse.clone(),
            },
            Backend::Memory => StoreDescription::Memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2-very-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        let creds = Credentials {
            access_key_id: Secret::new("AKIAEXAMPLE"),
            secret_access_key: Secret::new("hunter2-very-secret"),
            session_token: None,
            source: "OVH_S3_*".into(),
        };
        let dbg = format!("{creds:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("AKIAEXAMPLE"),
            "{dbg}"
        );
    }
}
