//! Duplicate removal across the whole release, between processing the objects and writing
//! the shards.
//!
//! Every exported record arrives with its exact key, its LSH band keys and its shingle set
//! (spilled to a local file per object). Records are ranked by the keep policy: families in
//! `keep_priority` order (default: holdout families first, so evaluation data keeps its
//! copy and training loses its, then by stage, then by name), then source order (object
//! key, line). Then:
//!
//! 1. **Exact**: among records with equal exact keys, the best-ranked is kept.
//! 2. **Near**: the remaining records are bucketed by band key; in rank order, a record not
//!    yet in a cluster becomes a representative, and every not-yet-clustered record sharing
//!    a bucket with it whose shingle-set Jaccard index *with the representative* reaches
//!    the threshold joins its cluster and is removed. Membership is never transitive: a
//!    record is compared with representatives only, so a chain of pairwise-similar records
//!    cannot sweep up distinct conversations that share a template.
//!
//! The outcome is a status per record, and counts per family.

use std::collections::BTreeMap;

pub mod near;
mod sets;
pub mod shuffle;
use serde::{Deserialize, Serialize};

use gatehouse_text::dedup::{DEDUP_VERSION, NearDupParams};

use super::BuildError;
pub use crate::contract::{DedupSummary, FamilyDedup};
use crate::registry::{Holdout, Registry};
pub use near::{Buckets, NearOutcome, PairOracle, PairVerdict};
pub use sets::SetStore;
pub(super) use sets::{ShingleSpill, SpillFiles};

/// `[build.dedup]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Remove exact duplicates (normalised: Unicode NFKC, case, whitespace).
    pub exact: bool,
    /// Remove near duplicates (MinHash + LSH candidates verified by Jaccard).
    pub near: bool,
    /// Include system prompts in the shingles (by default they are left out: one shared
    /// system prompt must not make conversations look alike).
    pub shingle_system: bool,
    /// Phrases left out of the shingles (e.g. a disclaimer every conversation repeats).
    pub boilerplate: Vec<String>,
    /// Families whose copy is kept first; the others follow (holdout families, then by
    /// stage, then by name).
    pub keep_priority: Vec<String>,
    /// `[build.dedup.near_params]`: shingle size, bands × rows, threshold, seed.
    pub near_params: NearDupParams,
    /// An LSH bucket with more records than this is not used for candidates (a guard
    /// against pathological inputs: comparing a bucket is quadratic, though the signature
    /// estimate makes each comparison cheap). Pairs that collide only there are missed, the
    /// summary counts such buckets, and the leakage gate, which searches every bucket, fails
    /// on any cross-split pair they hid. The default searches every realistic bucket: a
    /// smaller value (2000 before) let a near pair at 100k generated conversations reach
    /// two splits.
    pub max_bucket: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            exact: true,
            near: true,
            shingle_system: false,
            boilerplate: Vec::new(),
            keep_priority: Vec::new(),
            near_params: NearDupParams::default(),
            max_bucket: 100_000,
        }
    }
}

impl DedupConfig {
    pub fn problem(&self, registry: &Registry) -> Option<String> {
        if let Some(p) = self.near_params.problem() {
            return Some(p);
        }
        if self.max_bucket < 2 {
            return Some("dedup max_bucket must be at least 2".into());
        }
        self.keep_priority
            .iter()
            .find(|f| !registry.families.contains_key(*f))
            .map(|f| format!("dedup keep_priority names {f:?}, which is not a registry family"))
    }

    /// The keep rank of every registry family (lower is kept first).
    pub fn family_ranks(&self, registry: &Registry) -> BTreeMap<String, usize> {
        let mut names: Vec<&String> = registry.families.keys().collect();
        names.sort_by_key(|name| {
            let f = &registry.families[*name];
            let listed = self.keep_priority.iter().position(|p| p == *name);
            (
                listed.unwrap_or(usize::MAX),
                f.holdout == Holdout::None,
                f.stage.clone(),
                (*name).clone(),
            )
        });
        names
            .into_iter()
            .enumerate()
            .map(|(rank, name)| (name.clone(), rank))
            .collect()
    }
}

/// What phase one records of each exported record.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub exact: u128,
    pub id: String,
    pub line: u64,
    pub tokens: u64,
    /// Where the shingle set starts in the object's shingle file, and its length.
    pub shingles_at: u64,
    pub shingles_len: u32,
}

/// One object's entries, band keys (`bands` per entry, flat) and signature low bytes
/// (`bands × rows` per entry, flat); its shingle sets are in the executor's `SetStore`.
#[derive(Debug)]
pub(super) struct ObjectEntries {
    pub entries: Vec<Entry>,
    pub bands: Vec<u64>,
    pub low: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Exact,
    Near,
}

/// A record's fate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Status {
    Unique,
    /// Kept, with duplicates removed in its favour.
    Representative,
    /// Removed in favour of record `kept` (object, ordinal).
    Removed {
        kind: Kind,
        kept: (u32, u32),
        jaccard: f64,
    },
}

/// Decides every record's status. `objects[i]` belongs to family `families[i]`.
///
/// Four steps, each a function below: records in rank order; exact duplicates (equal keys,
/// the best-ranked kept); LSH buckets over the rest; clusters around representatives in
/// rank order, every candidate pair verified by its exact Jaccard index. Then the summary.
pub(super) fn resolve(
    objects: &[ObjectEntries],
    sets: &mut dyn SetStore,
    verdicts: Verdicts,
    families: &[String],
    config: &DedupConfig,
    ranks: &BTreeMap<String, usize>,
    removed_list: String,
) -> Result<(Vec<Vec<Status>>, DedupSummary), BuildError> {
    let ranked = Ranked::new(objects, families, ranks)?;
    let mut status: Vec<Vec<Status>> = objects
        .iter()
        .map(|o| vec![Status::Unique; o.entries.len()])
        .collect();
    let removed = if config.exact {
        exact_pass(&ranked, &mut status)
    } else {
        vec![false; ranked.len()]
    };
    let mut near = NearOutcome::default();
    if config.near {
        let eligible: Vec<u32> = (0..ranked.len() as u32)
            .filter(|&r| !removed[r as usize] && ranked.entry(r).shingles_len > 0)
            .collect();
        let p = &config.near_params;
        let buckets = Buckets::of(&eligible, p.bands, config.max_bucket, |r, band| {
            ranked.band(r, band, p.bands)
        });
        let perms = p.bands * p.rows;
        let mut oracle = sets::OnDemand::new(&ranked, sets, perms, p.estimate_floor());
        let (joined, counts) = match verdicts {
            Verdicts::OnDemand => near::clusters(&eligible, &buckets, p.threshold, &mut oracle)?,
            Verdicts::Shuffled(judged) => {
                judged.check(band_rows_receipt(objects, p.bands)?)?;
                let view = RankedView::new(&ranked, p.bands, perms);
                let mut shuffled = shuffle::ShuffleOracle {
                    verdicts: &judged,
                    sketches: &view,
                    buckets: &buckets,
                    bands: p.bands,
                    floor: p.estimate_floor(),
                    fallback: &mut oracle,
                    judged_here: 0,
                };
                let out = near::clusters(&eligible, &buckets, p.threshold, &mut shuffled)?;
                tracing::debug!(
                    pairs_judged_on_finish = shuffled.judged_here,
                    "near duplicates from the shuffle"
                );
                out
            }
        };
        for j in joined {
            let kept = ranked.at(j.representative);
            set_status(&mut status, kept, Status::Representative);
            let removed_as = Status::Removed {
                kind: Kind::Near,
                kept,
                jaccard: j.jaccard,
            };
            set_status(&mut status, ranked.at(j.member), removed_as);
        }
        near = counts;
    }
    let summary = summarise(
        &status,
        families,
        config,
        ranks,
        ranked.len(),
        near,
        removed_list,
    );
    Ok((status, summary))
}

/// How the clustering gets its pair verdicts.
#[derive(Debug)]
pub enum Verdicts {
    /// Judged when the clustering asks (only those pairs are read): the rayon executor.
    OnDemand,
    /// Judged beforehand in the partitions of a shuffle by band key (see [`shuffle`]),
    /// looked up; the few pairs they left are judged on demand. Same clusters, same counts.
    Shuffled(shuffle::ShuffleVerdicts),
}

/// The receipt of every band row the objects' sketches give: what the partitions of a
/// shuffle must together have judged.
fn band_rows_receipt(
    objects: &[ObjectEntries],
    bands: usize,
) -> Result<shuffle::RowsReceipt, BuildError> {
    let mut receipt = shuffle::RowsReceipt::default();
    let mut rows = Vec::new();
    for (o, entries) in objects.iter().enumerate() {
        rows.clear();
        shuffle::band_rows(o as u32, entries, bands, &mut rows)?;
        rows.iter().for_each(|r| receipt.add(r));
    }
    Ok(receipt)
}

/// [`Ranked`] as the shuffle's oracle reads it: records by rank and by member.
struct RankedView<'a> {
    ranked: &'a Ranked<'a>,
    bands: usize,
    perms: usize,
    /// The rank of each object's first record.
    first: Vec<u32>,
}

impl<'a> RankedView<'a> {
    fn new(ranked: &'a Ranked<'a>, bands: usize, perms: usize) -> Self {
        let mut first = vec![u32::MAX; ranked.objects.len()];
        for (r, &(o, i)) in ranked.order.iter().enumerate() {
            if i == 0 {
                first[o as usize] = r as u32;
            }
        }
        Self {
            ranked,
            bands,
            perms,
            first,
        }
    }
}

impl shuffle::RankedSketches for RankedView<'_> {
    fn member(&self, rank: u32) -> shuffle::Member {
        let (object, ordinal) = self.ranked.at(rank);
        shuffle::Member { object, ordinal }
    }

    fn rank_of(&self, m: shuffle::Member) -> Option<u32> {
        let entries = &self.ranked.objects.get(m.object as usize)?.entries;
        ((m.ordinal as usize) < entries.len()).then(|| self.first[m.object as usize] + m.ordinal)
    }

    fn band(&self, rank: u32, band: usize) -> u64 {
        self.ranked.band(rank, band, self.bands)
    }

    fn low(&self, rank: u32) -> &[u8] {
        self.ranked.low(rank, self.perms)
    }
}

/// Every record, by rank: family rank, then object (key order), then ordinal (source
/// order). A record's rank is its index in `order`.
struct Ranked<'a> {
    objects: &'a [ObjectEntries],
    order: Vec<(u32, u32)>,
}

impl<'a> Ranked<'a> {
    fn new(
        objects: &'a [ObjectEntries],
        families: &[String],
        ranks: &BTreeMap<String, usize>,
    ) -> Result<Self, BuildError> {
        let mut order: Vec<(u32, u32)> = Vec::new();
        let mut by_rank: Vec<usize> = (0..objects.len()).collect();
        by_rank.sort_by_key(|&o| (ranks.get(&families[o]).copied().unwrap_or(usize::MAX), o));
        for &o in &by_rank {
            let n = u32::try_from(objects[o].entries.len())
                .map_err(|_| BuildError::Internal("more than 2^32 records in one object".into()))?;
            order.extend((0..n).map(|i| (o as u32, i)));
        }
        Ok(Self { objects, order })
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    /// (object, ordinal) of the record of rank `r`.
    fn at(&self, r: u32) -> (u32, u32) {
        self.order[r as usize]
    }

    fn entry(&self, r: u32) -> &'a Entry {
        let (o, i) = self.at(r);
        &self.objects[o as usize].entries[i as usize]
    }

    /// The record's band key of `band` (of `bands`).
    fn band(&self, r: u32, band: usize, bands: usize) -> u64 {
        let (o, i) = self.at(r);
        self.objects[o as usize].bands[i as usize * bands + band]
    }

    /// The low bytes of the record's min-hashes (`perms` of them).
    fn low(&self, r: u32, perms: usize) -> &'a [u8] {
        let (o, i) = self.at(r);
        &self.objects[o as usize].low[i as usize * perms..(i as usize + 1) * perms]
    }
}

fn set_status(status: &mut [Vec<Status>], (o, i): (u32, u32), s: Status) {
    status[o as usize][i as usize] = s;
}

/// Exact duplicates: of equal keys the best-ranked is kept. Returns which ranks were removed.
fn exact_pass(ranked: &Ranked<'_>, status: &mut [Vec<Status>]) -> Vec<bool> {
    let mut removed = vec![false; ranked.len()];
    let keys = (0..ranked.len() as u32).map(|r| (ranked.entry(r).exact, r));
    for (r, kept) in exact_duplicates(keys.collect()) {
        removed[r as usize] = true;
        let kept = ranked.at(kept);
        set_status(status, kept, Status::Representative);
        let removed_as = Status::Removed {
            kind: Kind::Exact,
            kept,
            jaccard: 1.0,
        };
        set_status(status, ranked.at(r), removed_as);
    }
    removed
}

/// The exact-duplicate kernel: `(exact key, rank)` of every record, in any order → each
/// removed record with the record kept in its place (the best-ranked of its key), as
/// `(removed, kept)` in key order.
pub fn exact_duplicates(mut keys: Vec<(u128, u32)>) -> Vec<(u32, u32)> {
    keys.sort_unstable();
    let mut out = Vec::new();
    for group in keys.chunk_by(|a, b| a.0 == b.0) {
        out.extend(group[1..].iter().map(|&(_, r)| (r, group[0].1)));
    }
    out
}

/// The dedup section of the manifest and build report, from every record's status.
fn summarise(
    status: &[Vec<Status>],
    families: &[String],
    config: &DedupConfig,
    ranks: &BTreeMap<String, usize>,
    records: usize,
    near: NearOutcome,
    removed_list: String,
) -> DedupSummary {
    let mut per_family: BTreeMap<String, FamilyDedup> = BTreeMap::new();
    for (o, statuses) in status.iter().enumerate() {
        let f = per_family.entry(families[o].clone()).or_default();
        for s in statuses {
            f.records += 1;
            match s {
                Status::Unique => {}
                Status::Representative => f.representatives += 1,
                Status::Removed {
                    kind: Kind::Exact, ..
                } => f.exact_removed += 1,
                Status::Removed {
                    kind: Kind::Near, ..
                } => f.near_removed += 1,
            }
        }
    }
    let mut keep_order: Vec<(&String, &usize)> = ranks.iter().collect();
    keep_order.sort_by_key(|(_, r)| **r);
    DedupSummary {
        version: DEDUP_VERSION.to_string(),
        exact: config.exact,
        near: config.near,
        near_params: config.near_params.clone(),
        shingle_system: config.shingle_system,
        boilerplate_phrases: config.boilerplate.len(),
        keep_order: keep_order.into_iter().map(|(f, _)| f.clone()).collect(),
        records: records as u64,
        exact_removed: per_family.values().map(|f| f.exact_removed).sum(),
        near_removed: per_family.values().map(|f| f.near_removed).sum(),
        candidates: near.candidates,
        candidates_below_estimate: near.below_estimate,
        candidates_verified: near.verified,
        largest_bucket: near.largest_bucket,
        oversized_buckets: near.oversized.0,
        oversized_bucket_records: near.oversized.1,
        per_family,
        removed_list,
    }
}
