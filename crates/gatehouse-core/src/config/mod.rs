//! Configuration: the reviewed `gatehouse.toml`, the environment contract inherited from the
//! Python prototype, and command-line flags, resolved in one place with one precedence:
//! **flag > environment > config file > default**.
//!
//! Every environment variable gatehouse reads is listed in [`env`]. S3 settings follow the
//! prototype's precedence `OVH_S3_*` → `AWS_*` → `DATASET_S3_*`; an access key and its secret
//! always come from the same family of variables. Secrets are accepted only from the
//! environment, never from the (committed) config file.

use std::collections::BTreeMap;

pub mod env;
pub mod parse;
mod resolve;
mod s3;
mod schema;
mod settings;

pub use parse::{ConfigError, SettingOrigin, line_col, parse_toml};
pub use resolve::{Overrides, resolve, resolve_privacy, store_from_env};
pub use schema::{BackendKind, ConfigFile, SseKind, StoreSection};
pub use settings::Settings;

pub use crate::coverage::CoverageConfig;

/// The config file looked for in the working directory when `--config` is not given.
pub const CONFIG_FILE_NAME: &str = "gatehouse.toml";

/// A source of environment variables; the process environment, or a map in tests.
pub trait Env {
    /// The variable's value; unset and blank are the same.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }
}
