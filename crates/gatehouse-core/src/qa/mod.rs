//! Human QA: review packets drawn from a built release, the rubrics reviewers score them
//! with, the reviews and the signoff bound to the release digest, and the QA gate.
//!
//! The modules follow the data flow:
//!
//! - `config`: `[qa]`, the sample rule and the rubrics;
//! - `sample`: the seeded packets drawn from the manifest and every shard, with the review
//!   templates (`qa/qa_samples.json`, `qa/review_template.json`, `qa/review_template.csv`);
//!   when the gates have run on this manifest, the privacy gate's spot-check sample becomes
//!   packets of review type `privacy_spot_check` ([`spot_check`]);
//! - `packets`: the stored packets read back, bound to the current manifest's digest
//!   ([`packets()`], [`packets_and_spot_check`]), and checked for the gate against the draw
//!   the rule gives, without reading the shards;
//! - [`reviewers`]: invitations and assignments;
//! - `import`: reviewers' files in (JSON, CSV, the review app) with a [`proof`] of who made
//!   each, and read back authenticated;
//! - [`mod@signoff`]: the signoff computed from the stored reviews (`qa/signoff_record.json`,
//!   `qa/blocklist.json`);
//! - `gate`: the QA gate, which recomputes the signoff for the current digest from the stored
//!   packets and reviews.

mod config;
mod gate;
mod import;
mod packets;
pub mod proof;
pub mod reviewers;
mod sample;
pub mod signoff;
pub mod spot_check;

pub use config::{Criterion, QaConfig, Rubric, SampleRule};
pub use gate::{QaGate, gate};
pub use import::{check_import, import, reviews_from_csv, submit};
pub use packets::{packets, packets_and_spot_check, review_types_without_samples};
pub use sample::{
    GroupPlan, QaSamples, ReviewSlot, ReviewTemplate, SampleItem, SampleOutcome, SpotCheckSlot,
    sample,
};
pub use signoff::signoff;

use serde::Serialize;
use thiserror::Error;

use crate::store::StoreError;

/// QA file schema version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum QaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: no manifest; this release has not been built")]
    NotBuilt { key: String },
    #[error("{key}: not a gatehouse manifest")]
    BadManifest { key: String },
    #[error("{at}: not an export record")]
    BadRecord { at: String },
    #[error("reading {key} failed")]
    Read {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid [qa] configuration: {0}")]
    Config(String),
    #[error("the reviews cannot be used: {0}")]
    BadReviews(String),
    #[error("{key}: the review packets are for release {packets}, the release now is {current}")]
    StalePackets {
        key: String,
        packets: String,
        current: String,
        /// The release version, for the hint.
        version: String,
    },
    #[error(
        "{key}: no review packets; run `gatehouse qa sample --release-version {version}` first"
    )]
    NoPackets { key: String, version: String },
    #[error("cannot serialise {0}")]
    Serialise(&'static str, #[source] serde_json::Error),
    #[error("{key}: {missing} record(s) of the privacy spot-check sample are not in the export")]
    SpotCheckMismatch { key: String, missing: usize },
}

impl QaError {
    pub fn hint(&self) -> Option<String> {
        match self {
            QaError::Store(e) => e.hint(),
            QaError::NotBuilt { .. } => Some(
                "run `gatehouse build --release-version …` (or `gatehouse release`) first".into(),
            ),
            QaError::Config(_) => Some("fix [qa] in gatehouse.toml (see README.md)".into()),
            QaError::BadReviews(_) => Some(
                "fix the review file (see qa/review_template.json for its shape) and import it again"
                    .into(),
            ),
            QaError::SpotCheckMismatch { .. } => Some(
                "the gates' reports are not of this export: run `gatehouse gates`, then `gatehouse qa sample`"
                    .into(),
            ),
            QaError::StalePackets { version, .. } => Some(format!(
                "the manifest changed since the packets were drawn: run `gatehouse qa sample --release-version {version}` and review again"
            )),
            QaError::NoPackets { version, .. } => Some(format!(
                "draw the review packets with `gatehouse qa sample --release-version {version}` (`gatehouse release` draws them too)"
            )),
            _ => Some("rebuild the release".into()),
        }
    }
}

/// The release version of the draft at `location` (`{exports}/releases/{version}/`, see
/// [`crate::release::location`]), for hints.
fn version_of(location: &str) -> String {
    location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A QA file as written: pretty JSON and a final newline.
pub(crate) fn json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, QaError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| QaError::Serialise(what, e))?;
    b.push(b'\n');
    Ok(b)
}
