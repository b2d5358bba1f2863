//! Pure text algorithms shared by the build and the gates, with no I/O: what both sides must
//! compute identically lives here once: token counting and PII detection/redaction.
//! Normalisation and near-duplicate signatures join it as they are built.

pub mod pii;
pub mod tokens;

pub use tokens::{TokenCounter, TokenizerName};
