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
use std::fs::File;
use std::io::{BufWriter, Write};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use gatehouse_text::dedup::{DEDUP_VERSION, NearDupParams, estimate_jaccard, jaccard};

use super::BuildError;
pub use crate::contract::{DedupSummary, FamilyDedup};
use crate::registry::{Holdout, Registry};

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

/// One object's entries, band keys (`bands` per entry, flat), signature low bytes
/// (`bands × rows` per entry, flat) and shingle file.
#[derive(Debug)]
pub(super) struct ObjectEntries {
    pub entries: Vec<Entry>,
    pub bands: Vec<u64>,
    pub low: Vec<u8>,
    pub shingles: tempfile::TempPath,
}

/// Writes an object's shingle sets.
pub(super) struct ShingleSpill {
    out: BufWriter<File>,
    at: u64,
}

impl ShingleSpill {
    pub fn new(file: File) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 20, file),
            at: 0,
        }
    }

    /// Appends a set; returns where it starts.
    pub fn push(&mut self, set: &[u32]) -> std::io::Result<u64> {
        let at = self.at;
        for x in set {
            self.out.write_all(&x.to_le_bytes())?;
        }
        self.at += 4 * set.len() as u64;
        Ok(at)
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
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
        let buckets = Buckets::of(&ranked, &eligible, config);
        near = near_clusters(&ranked, &eligible, &buckets, config, &mut status)?;
        near.largest_bucket = buckets.largest;
        near.oversized = buckets.oversized;
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
    let mut keys: Vec<(u128, u32)> = (0..ranked.len() as u32)
        .map(|r| (ranked.entry(r).exact, r))
        .collect();
    keys.sort_unstable();
    for group in keys.chunk_by(|a, b| a.0 == b.0) {
        let kept = ranked.at(group[0].1);
        if group.len() > 1 {
            set_status(status, kept, Status::Representative);
        }
        for &(_, r) in &group[1..] {
            removed[r as usize] = true;
            let removed_as = Status::Removed {
                kind: Kind::Exact,
                kept,
                jaccard: 1.0,
            };
            set_status(status, ranked.at(r), removed_as);
        }
    }
    removed
}

/// LSH buckets with two or more members (and at most `max_bucket`), as lists of ranks in
/// ascending order, and the buckets each rank is in.
struct Buckets {
    members: Vec<u32>,
    /// Bucket `b` is `members[starts[b]..starts[b + 1]]`.
    starts: Vec<usize>,
    of_rank: FxHashMap<u32, Vec<u32>>,
    largest: u64,
    /// Buckets over `max_bucket` (not used for candidates) and the records in them.
    oversized: (u64, u64),
}

impl Buckets {
    fn of(ranked: &Ranked<'_>, eligible: &[u32], config: &DedupConfig) -> Self {
        let bands = config.near_params.bands;
        let mut b = Buckets {
            members: Vec::new(),
            starts: Vec::new(),
            of_rank: FxHashMap::default(),
            largest: 0,
            oversized: (0, 0),
        };
        let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(eligible.len());
        for band in 0..bands {
            keyed.clear();
            keyed.extend(eligible.iter().map(|&r| (ranked.band(r, band, bands), r)));
            keyed.sort_unstable();
            for run in keyed.chunk_by(|a, b| a.0 == b.0) {
                if run.len() < 2 {
                    continue;
                }
                b.largest = b.largest.max(run.len() as u64);
                if run.len() > config.max_bucket {
                    b.oversized.0 += 1;
                    b.oversized.1 += run.len() as u64;
                    continue;
                }
                let id = b.starts.len() as u32;
                b.starts.push(b.members.len());
                for &(_, r) in run {
                    b.members.push(r);
                    b.of_rank.entry(r).or_default().push(id);
                }
            }
        }
        b.starts.push(b.members.len());
        b
    }

    fn members(&self, bucket: u32) -> &[u32] {
        let b = bucket as usize;
        &self.members[self.starts[b]..self.starts[b + 1]]
    }
}

/// What the near-duplicate pass counted.
#[derive(Debug, Default)]
struct NearOutcome {
    /// Candidate pairs (a representative and a record sharing a bucket) considered.
    candidates: u64,
    below_estimate: u64,
    verified: u64,
    largest_bucket: u64,
    oversized: (u64, u64),
}

/// Clusters around representatives in rank order: each eligible record not yet in a
/// cluster becomes a representative, and every later record sharing a bucket with it, not
/// yet in a cluster, joins it when their shingle sets' Jaccard index reaches the threshold
/// (pairs whose signature estimate is under the floor are not read). Each pair is
/// considered once.
fn near_clusters(
    ranked: &Ranked<'_>,
    eligible: &[u32],
    buckets: &Buckets,
    config: &DedupConfig,
    status: &mut [Vec<Status>],
) -> Result<NearOutcome, BuildError> {
    let perms = config.near_params.bands * config.near_params.rows;
    let floor = config.near_params.estimate_floor();
    let mut out = NearOutcome::default();
    let mut sets = SetReader::new(ranked.objects);
    let mut rep_of: Vec<Option<u32>> = vec![None; ranked.len()];
    // The representative that last considered each record: each pair once.
    let mut considered_by: Vec<u32> = vec![u32::MAX; ranked.len()];
    let (mut rep_set, mut other) = (Vec::new(), Vec::new());
    for &r in eligible {
        if rep_of[r as usize].is_some() {
            continue;
        }
        rep_of[r as usize] = Some(r);
        let Some(of_rep) = buckets.of_rank.get(&r) else {
            continue;
        };
        let mut rep_read = false;
        for &b in of_rep {
            for &m in buckets.members(b) {
                if m <= r || rep_of[m as usize].is_some() || considered_by[m as usize] == r {
                    continue;
                }
                considered_by[m as usize] = r;
                out.candidates += 1;
                if estimate_jaccard(ranked.low(r, perms), ranked.low(m, perms)) < floor {
                    out.below_estimate += 1;
                    continue;
                }
                if !rep_read {
                    sets.read(ranked.at(r), &mut rep_set)?;
                    rep_read = true;
                }
                sets.read(ranked.at(m), &mut other)?;
                out.verified += 1;
                let j = jaccard(&rep_set, &other);
                if j >= config.near_params.threshold {
                    rep_of[m as usize] = Some(r);
                    set_status(status, ranked.at(r), Status::Representative);
                    let removed_as = Status::Removed {
                        kind: Kind::Near,
                        kept: ranked.at(r),
                        jaccard: j,
                    };
                    set_status(status, ranked.at(m), removed_as);
                }
            }
        }
    }
    Ok(out)
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

/// Reads shingle sets back from the objects' shingle files, keeping a few files open.
struct SetReader<'a> {
    objects: &'a [ObjectEntries],
    open: FxHashMap<u32, File>,
    bytes: Vec<u8>,
    /// Recently read sets (a record is often compared with several representatives),
    /// bounded in total elements.
    cache: FxHashMap<(u32, u32), Vec<u32>>,
    cached: usize,
}

/// Shingle ids kept in the set cache (4 bytes each): 64 MB.
const CACHE_ELEMENTS: usize = 16 << 20;

impl<'a> SetReader<'a> {
    fn new(objects: &'a [ObjectEntries]) -> Self {
        Self {
            objects,
            open: FxHashMap::default(),
            bytes: Vec::new(),
            cache: FxHashMap::default(),
            cached: 0,
        }
    }

    fn read(&mut self, (o, i): (u32, u32), out: &mut Vec<u32>) -> Result<(), BuildError> {
        if let Some(set) = self.cache.get(&(o, i)) {
            out.clear();
            out.extend_from_slice(set);
            return Ok(());
        }
        self.read_file((o, i), out)?;
        if self.cached + out.len() > CACHE_ELEMENTS {
            self.cache.clear();
            self.cached = 0;
        }
        self.cached += out.len();
        self.cache.insert((o, i), out.clone());
        Ok(())
    }

    fn read_file(&mut self, (o, i): (u32, u32), out: &mut Vec<u32>) -> Result<(), BuildError> {
        use std::io::{Read, Seek, SeekFrom};
        let err = |source| BuildError::Read {
            key: "(local shingle spill file)".into(),
            source,
        };
        let object = &self.objects[o as usize];
        let e = &object.entries[i as usize];
        if self.open.len() >= 64 && !self.open.contains_key(&o) {
            self.open.clear();
        }
        let file = match self.open.entry(o) {
            std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(File::open(&object.shingles).map_err(err)?)
            }
        };
        self.bytes.resize(4 * e.shingles_len as usize, 0);
        file.seek(SeekFrom::Start(e.shingles_at)).map_err(err)?;
        file.read_exact(&mut self.bytes).map_err(err)?;
        out.clear();
        out.extend(
            self.bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        Ok(())
    }
}
