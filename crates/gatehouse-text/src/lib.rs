//! Pure text algorithms shared by the build and the gates, with no I/O: what both sides must
//! compute identically lives here once. Today: token counting. PII detection and redaction,
//! normalisation and near-duplicate signatures join it as they are built.

pub mod pii;
pub mod tokens;

pub use tokens::{TokenCounter, TokenizerName};
