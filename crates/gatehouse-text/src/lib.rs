//! Pure text algorithms shared by the build and the gates, with no I/O: what both sides must
//! compute identically lives here once: token counting, PII detection/redaction, and
//! duplicate keys and near-duplicate signatures.

pub mod dedup;
pub mod pii;
pub mod tokens;

pub use tokens::{TokenCounter, TokenizerName, TokenizerSpec};
