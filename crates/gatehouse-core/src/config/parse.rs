//! The parsing half of configuration, below everything that is configured: TOML files read
//! into typed sections with `path:line:column` errors, and the record of where each setting
//! came from. The registry parses its file with the same functions.

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

/// Where one resolved setting came from, for `gatehouse doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingOrigin {
    pub setting: &'static str,
    /// The value, or `(set)` for secrets.
    pub value: String,
    /// `--flag`, an environment variable's name, `gatehouse.toml` or `default`.
    pub from: String,
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },
}

impl ConfigError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Invalid { hint, .. } => hint.clone(),
            ConfigError::Parse { .. } => {
                Some("see the configuration reference in README.md for the accepted keys".into())
            }
            ConfigError::Read { .. } => {
                Some("pass --config PATH or set GATEHOUSE_CONFIG to an existing file".into())
            }
        }
    }

    pub(crate) fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Self {
        ConfigError::Invalid {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// 1-based line and column of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses TOML into `T`, turning errors into `path:line:column: message`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}
