//! The packets as stored: `qa/qa_samples.json` read back, bound to the current manifest's
//! digest. Imports, web submissions, invitations, the signoff and the QA gate all work from
//! this file, never from a fresh draw. The gate also checks that it is the draw of
//! `[qa.sample]` over this manifest ([`is_the_draw`]), without reading the shards.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::sample::{self, Plans};
use super::signoff::SampleFacts;
use super::spot_check::{self, SpotCheckDraw};
use super::{QaConfig, QaError};
use crate::digest::sha256;
use crate::registry::{Registry, ReviewType};
use crate::store::{Store, StoreError};

/// The facts of each sample, by sample id.
pub(super) type Facts = BTreeMap<String, SampleFacts>;

/// Version, digest and the facts of each sample.
type PacketFacts = (String, String, Facts);

/// `qa/qa_samples.json` as read back: what reviews are checked against, and what the gate
/// checks against the draw.
pub(super) struct StoredPackets {
    pub(super) release_version: String,
    pub(super) release_digest: String,
    /// The privacy gate's spot-check the packets include (`None`: the gates had not run).
    pub(super) privacy_spot_check: Option<SpotCheckDraw>,
    pub(super) samples: Vec<StoredSample>,
}

/// One sample as stored.
pub(super) struct StoredSample {
    sample_id: String,
    /// The group the packets say the record was drawn in (empty for the spot-check).
    family: String,
    split: String,
    facts: SampleFacts,
}

impl StoredPackets {
    /// The facts of each sample, by sample id.
    pub(super) fn facts(&self) -> Facts {
        self.samples
            .iter()
            .map(|s| (s.sample_id.clone(), s.facts.clone()))
            .collect()
    }
}

/// The packets of the release at `location`: version, digest and the facts of each sample.
/// Fails when the packets were drawn from another manifest (a rebuild voids them).
pub fn packets(store: &Store, location: &str) -> Result<PacketFacts, QaError> {
    packets_and_spot_check(store, location).map(|(p, _)| p)
}

/// [`packets`], and the privacy spot-check they include (`None`: the gates had not run).
pub fn packets_and_spot_check(
    store: &Store,
    location: &str,
) -> Result<(PacketFacts, Option<SpotCheckDraw>), QaError> {
    let p = read(store, location)?;
    let facts = p
        .samples
        .into_iter()
        .map(|s| (s.sample_id, s.facts))
        .collect();
    Ok((
        (p.release_version, p.release_digest, facts),
        p.privacy_spot_check,
    ))
}

/// Review types of `[qa.rubrics]` that no sampled record of the current packets needs.
pub fn review_types_without_samples(
    store: &Store,
    location: &str,
    config: &QaConfig,
) -> Result<Vec<ReviewType>, QaError> {
    let (_, _, samples) = packets(store, location)?;
    Ok(config
        .rubrics
        .keys()
        .filter(|t| !samples.values().any(|s| s.review_types.contains(t)))
        .copied()
        .collect())
}

/// Reads `qa/qa_samples.json` of the release at `location`: [`QaError::NoPackets`] when
/// there is none, [`QaError::StalePackets`] when it is bound to another manifest digest.
pub(super) fn read(store: &Store, location: &str) -> Result<StoredPackets, QaError> {
    #[derive(Deserialize)]
    struct Packets {
        release_version: String,
        release_digest: String,
        #[serde(default)]
        privacy_spot_check: Option<SpotCheckDraw>,
        samples: Vec<PacketSample>,
    }
    #[derive(Deserialize)]
    struct PacketSample {
        sample_id: String,
        record_id: String,
        #[serde(default)]
        family: String,
        #[serde(default)]
        split: String,
        review_types: Vec<ReviewType>,
        record: PacketRecord,
    }
    #[derive(Deserialize)]
    struct PacketRecord {
        #[serde(default)]
        messages: Vec<PacketMessage>,
    }
    #[derive(Deserialize)]
    struct PacketMessage {
        #[serde(default)]
        content: String,
    }
    let manifest_key = crate::layout::MANIFEST.at(location);
    let current = match store.get_bytes(&manifest_key) {
        Ok(b) => sha256(&b),
        Err(StoreError::NotFound { .. }) => return Err(QaError::NotBuilt { key: manifest_key }),
        Err(e) => return Err(e.into()),
    };
    let key = crate::layout::QA_SAMPLES.at(location);
    let bytes = match store.get_bytes(&key) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => {
            return Err(QaError::NoPackets {
                key,
                version: super::version_of(location),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let p: Packets =
        serde_json::from_slice(&bytes).map_err(|_| QaError::BadManifest { key: key.clone() })?;
    if p.release_digest != current {
        return Err(QaError::StalePackets {
            key,
            packets: p.release_digest,
            current,
            version: super::version_of(location),
        });
    }
    Ok(StoredPackets {
        release_version: p.release_version,
        release_digest: p.release_digest,
        privacy_spot_check: p.privacy_spot_check,
        samples: p
            .samples
            .into_iter()
            .map(|s| StoredSample {
                sample_id: s.sample_id,
                family: s.family,
                split: s.split,
                facts: SampleFacts {
                    record_id: s.record_id,
                    review_types: s.review_types,
                    message_chars: s
                        .record
                        .messages
                        .iter()
                        .map(|m| m.content.chars().count())
                        .collect(),
                },
            })
            .collect(),
    })
}

/// The review type of every spot-check sample.
const SPOT_CHECK: &[ReviewType] = &[ReviewType::PrivacySpotCheck];

/// Whether the stored packets are the draw `[qa.sample]` gives over this manifest, so that a
/// `qa_samples.json` edited to fewer samples (or a rule changed since) cannot shrink what has
/// to be reviewed. Read from the manifest, the registry, the rule and the privacy report, not
/// the shards: every family × split group holds exactly the number of records its plan gives,
/// each under the sample id the seed gives its record id and with its family's review types,
/// and the spot-check samples are exactly the records of the privacy report of this manifest,
/// drawn as that report says. Configuration errors are the draw's (an invalid rule, a review
/// type without a rubric).
///
/// Not re-drawing leaves one edit unseen: a sampled record swapped for another record (its
/// sample id recomputed from the new record id, its group's count kept). Seeing it needs
/// every record id of the group, that is reading every shard of the export, which the gate
/// must not do (issue 20). Such an edit changes which records are reviewed, not how many, of
/// which groups and types, nor by whom; and the draw stays reproducible: anyone can redraw
/// it from the manifest and the rule (the method is in `qa_samples.json`) and compare.
pub(super) fn is_the_draw(
    store: &Store,
    registry: &Registry,
    location: &str,
    config: &QaConfig,
    packets: &StoredPackets,
) -> Result<bool, QaError> {
    if let Some(p) = config.problem() {
        return Err(QaError::Config(p));
    }
    let (manifest, digest) = sample::read_manifest(store, location)?;
    if digest != packets.release_digest {
        // Rebuilt since the packets were read.
        return Err(QaError::StalePackets {
            key: crate::layout::QA_SAMPLES.at(location),
            packets: packets.release_digest.clone(),
            current: digest,
            version: super::version_of(location),
        });
    }
    let plans = sample::plan_groups(&manifest, registry, config)?;
    let gate_sample = spot_check::gate_sample(store, location, &digest)?;
    if packets.privacy_spot_check != gate_sample.as_ref().map(|g| g.draw.clone()) {
        return Ok(false);
    }
    let spot_ids = gate_sample.as_ref().map_or(&[][..], |g| g.ids.as_slice());
    let Some(expected) = expected_samples(packets, &plans, config.sample.seed, spot_ids) else {
        return Ok(false);
    };
    let stored: BTreeMap<String, (&str, &[ReviewType])> = packets
        .samples
        .iter()
        .map(|s| {
            (
                s.sample_id.clone(),
                (s.facts.record_id.as_str(), s.facts.review_types.as_slice()),
            )
        })
        .collect();
    // A sample listed twice would count once in the map.
    Ok(stored.len() == packets.samples.len() && stored == expected)
}

/// What the draw gives for the records the packets name: sample id → (record id, review
/// types), for the group samples (each group holding the number its plan gives) and for the
/// spot-check's records. `None` when a sample's group or a group's count is not the plan's.
fn expected_samples<'a>(
    packets: &'a StoredPackets,
    plans: &'a Plans,
    seed: u64,
    spot_ids: &'a [String],
) -> Option<BTreeMap<String, (&'a str, &'a [ReviewType])>> {
    let mut expected = BTreeMap::new();
    let mut per_group: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for s in &packets.samples {
        if s.facts.review_types == SPOT_CHECK {
            continue;
        }
        let plan = plans.get(&(s.family.clone(), s.split.clone()))?;
        *per_group
            .entry((plan.family.as_str(), plan.split.as_str()))
            .or_default() += 1;
        expected.insert(
            sample::expected_sample_id(seed, &s.facts.record_id),
            (s.facts.record_id.as_str(), plan.review_types.as_slice()),
        );
    }
    if plans.values().any(|p| {
        per_group
            .get(&(p.family.as_str(), p.split.as_str()))
            .copied()
            .unwrap_or(0)
            != p.size
    }) {
        return None;
    }
    for id in spot_ids {
        expected.insert(spot_check::sample_id(id), (id.as_str(), SPOT_CHECK));
    }
    Some(expected)
}
