//! Vocabulary shared by every report: verdicts and findings with stable codes.
//!
//! Reports are versioned wire types (`schema_version`) serialised as JSON; Markdown and HTML
//! are renderings of that JSON, never a second source of truth. Findings carry locators
//! (names, keys, `key:line`), never record content. Every code a finding can carry is
//! declared, with its documentation, in [`codes`].

pub mod codes;

use serde::{Deserialize, Serialize};

pub use codes::Code;

use crate::waiver::WaiverUse;

/// The outcome of a stage or gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Skipped => "skipped",
        }
    }
}

/// How bad a finding is once waivers are taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    /// Blocks the release unless waived.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding: a stable code, what it is about, and a content-free message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `COV001`: a [`Code`]'s id. Read back only if the registry declares it.
    #[serde(deserialize_with = "registered_id")]
    pub code: Registered,
    /// Stable short name, e.g. `required-family-missing`: the [`Code`]'s name.
    #[serde(deserialize_with = "registered_name")]
    pub name: Registered,
    pub severity: Severity,
    /// What it is about: a family, dataset, key or `key:line`.
    pub subject: String,
    pub message: String,
    /// The waiver that downgraded it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<WaiverUse>,
}

impl Finding {
    /// A finding of `code` (no waiver).
    pub fn new(code: &Code, severity: Severity, subject: String, message: String) -> Self {
        Finding {
            code: code.id,
            name: code.name,
            severity,
            subject,
            message,
            waiver: None,
        }
    }
}

/// A code's id or name: the registry's own string, also when read back. (An alias, so that
/// serde does not take the field for a string borrowed from the input.)
pub type Registered = &'static str;

/// A finding code read back: the registry's own `&'static str`, or an error naming it.
pub(crate) fn registered_id<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<&'static str, D::Error> {
    let id = String::deserialize(d)?;
    codes::all()
        .find(|c| c.id == id)
        .map(|c| c.id)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown finding code {id:?}")))
}

/// A finding name read back: the registry's own `&'static str`, or an error naming it.
pub(crate) fn registered_name<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<&'static str, D::Error> {
    let name = String::deserialize(d)?;
    codes::all()
        .find(|c| c.name == name)
        .map(|c| c.name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown finding name {name:?}")))
}

/// The verdict implied by a set of findings.
pub fn verdict_of(findings: &[Finding]) -> Verdict {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Error) => Verdict::Fail,
        Some(Severity::Warning) => Verdict::Warn,
        _ => Verdict::Pass,
    }
}

/// `gatehouse <version>`, as written into every report.
pub fn generated_by() -> String {
    format!("gatehouse {}", env!("CARGO_PKG_VERSION"))
}

/// Bytes as a short human figure (`1.2 MB`), for renderings.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
