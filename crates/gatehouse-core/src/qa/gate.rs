//! The QA gate: where human QA stands for the current manifest. It reads the stored packets
//! (`qa/qa_samples.json`, never a fresh draw over the shards), the stored reviews and the
//! stored signoff, recomputes the signoff and approves only when the stored record is that
//! computation, for this digest, and approves.

use serde::{Deserialize, Serialize};

use super::import::{Stored, stored_reviews};
use super::packets::{self, StoredPackets};
use super::signoff::{self, names};
use super::{QaConfig, QaError, json, reviewers};
use crate::digest::sha256;
use crate::registry::Registry;
use crate::store::{Store, StoreError};

/// Where the human QA gate stands for the release at `location`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum QaGate {
    /// No signoff for this digest yet.
    Awaiting {
        release_digest: String,
        samples: usize,
        reviewers_invited: usize,
        review_files: usize,
    },
    /// A signoff exists for this digest but does not approve (or no longer matches).
    NotApproved {
        release_digest: String,
        reasons: Vec<String>,
    },
    /// A signoff for this exact digest, recomputed from the stored reviews, approves.
    Approved {
        release_digest: String,
        signoff_sha256: String,
        reviewers: usize,
    },
}

impl QaGate {
    pub fn passed(&self) -> bool {
        matches!(self, QaGate::Approved { .. })
    }
}

/// The QA gate: approved only when `qa/signoff_record.json` is for the current manifest's
/// digest, approves, and equals the signoff recomputed now from the stored reviews (so an
/// edited record or a review changed since counts for nothing). Fails closed on anything
/// unreadable.
///
/// Works from the stored packets: none for this release ([`QaError::NoPackets`]), or packets
/// bound to another manifest digest ([`QaError::StalePackets`]), is an error naming
/// `qa/qa_samples.json` and `gatehouse qa sample`; the caller draws packets first when it
/// should. The packets are checked against the draw `[qa.sample]` gives over this manifest
/// without reading the shards (see `packets::is_the_draw` for the one edit that leaves
/// unseen).
pub fn gate(
    store: &Store,
    registry: &Registry,
    location: &str,
    config: &QaConfig,
) -> Result<QaGate, QaError> {
    let packets = packets::read(store, location)?;
    let digest = packets.release_digest.clone();
    let samples = packets.facts();
    let invited = reviewers::load(store, location, &digest)?.reviewers;
    let key = crate::layout::SIGNOFF_RECORD.at(location);
    let stored = match store.get_bytes(&key) {
        Ok(b) => Some(b),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let Stored { files, void, auth } =
        stored_reviews(store, location, &digest, &samples, &invited, config)?;
    let Some(stored) = stored else {
        return Ok(QaGate::Awaiting {
            reviewers_invited: invited.len(),
            release_digest: digest,
            samples: samples.len(),
            review_files: files.len(),
        });
    };
    if let Some(reasons) =
        not_of_this_manifest(store, registry, location, config, &key, &stored, &packets)?
    {
        return Ok(QaGate::NotApproved {
            reasons,
            release_digest: digest,
        });
    }
    let record = signoff::compute(
        &packets.release_version,
        &digest,
        &samples,
        signoff::StoredFiles {
            files: &files,
            void: &void,
            auth: &auth,
        },
        &names(&invited),
        config,
        packets.privacy_spot_check.is_some(),
    );
    if json("the signoff record", &record)? != stored.as_ref() {
        return Ok(QaGate::NotApproved {
            reasons: vec![format!(
                "{key} does not match the stored reviews (reviews changed since, or the record was edited): run `gatehouse qa signoff` again"
            )],
            release_digest: digest,
        });
    }
    Ok(if record.decision == "approved" {
        QaGate::Approved {
            signoff_sha256: sha256(&stored),
            reviewers: record.reviewers.len(),
            release_digest: digest,
        }
    } else {
        QaGate::NotApproved {
            reasons: record.reasons,
            release_digest: digest,
        }
    })
}

/// Why the stored signoff (`signoff`, the bytes of `key`) and packets cannot be judged for
/// this manifest: a signoff for another digest, or packets that are not the draw of
/// `[qa.sample]` over it (a `qa_samples.json` edited to fewer samples would otherwise shrink
/// what has to be reviewed). `None` when both hold.
fn not_of_this_manifest(
    store: &Store,
    registry: &Registry,
    location: &str,
    config: &QaConfig,
    key: &str,
    signoff: &[u8],
    packets: &StoredPackets,
) -> Result<Option<Vec<String>>, QaError> {
    #[derive(Deserialize)]
    struct Bound {
        release_digest: String,
    }
    let digest = &packets.release_digest;
    let bound: Bound = serde_json::from_slice(signoff).map_err(|_| QaError::BadManifest {
        key: key.to_string(),
    })?;
    if bound.release_digest != *digest {
        return Ok(Some(vec![format!(
            "the signoff is for release {}, not this manifest ({digest}): a changed manifest voids it",
            bound.release_digest
        )]));
    }
    if !packets::is_the_draw(store, registry, location, config, packets)? {
        return Ok(Some(vec![format!(
            "{location}qa/qa_samples.json is not the draw of [qa.sample] over this manifest (edited, or the rule changed): run `gatehouse qa sample` and review again"
        )]));
    }
    Ok(None)
}
