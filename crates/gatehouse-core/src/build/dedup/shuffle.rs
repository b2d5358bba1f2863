//! The near-duplicate stage as a shuffle by band key (issue 21: Ray): the LSH buckets are
//! formed and their pairs judged where a shuffle puts them; the clustering, which walks
//! representatives in rank order, stays on one process and asks the judged pairs.
//!
//! 1. [`band_rows`]: every record with a shingle set gives one row per band: `(band, key,
//!    record)`, the record named by its [`Member`] (object in key order, ordinal). A row's
//!    partition is a function of its band key ([`BandRow::part`]), so a group-by on it puts
//!    every LSH bucket whole in one partition.
//! 2. [`judge_partition`]: the rows of one partition → its buckets, members in keep-rank
//!    order. A pair is judged only in the first band in which the two records collide, so
//!    once across the whole shuffle. For each member its predecessors are judged in rank
//!    order (signature estimate, then, above the floor, the exact Jaccard index), and the
//!    first [`SIMILAR_PER_MEMBER`] that reach the threshold are reported; when that stops the
//!    walk early, the member's *cut* (the last predecessor judged) is reported. A bucket over
//!    `max_bucket` is not judged and is reported as skipped. A [`RowsReceipt`] (row count and
//!    an order-free digest of the rows) says which rows the partition judged.
//! 3. [`ShuffleVerdicts`]: the partitions' reports, checked against the receipt of the rows the
//!    finishing process's own sketches give (every row judged once, no partition twice), and
//!    [`ShuffleOracle`], the clustering's [`PairOracle`]: the estimate from the signatures
//!    (below the floor: `BelowEstimate`), else the reported Jaccard index, else — judged and
//!    under the threshold — `Dissimilar`. A pair the partitions did not judge (its first
//!    bucket skipped as oversized, or past the member's cut) is judged on demand.
//!
//! Why only the first few similar predecessors: the clustering joins a record to the first
//! representative, in rank order, that shares a bucket with it and reaches the threshold. In
//! a bucket of many near-copies every record's first similar predecessor is that
//! representative, so reporting every similar pair would be quadratic in the bucket while a
//! few almost never leave the clustering a pair to judge itself. The verdicts are those of
//! [`super::near::judge`], so the clusters and the counts are the ones judging on demand
//! gives (a property test below, and `tests/executors.rs` on whole builds).

use rustc_hash::{FxHashMap, FxHashSet};

use gatehouse_text::dedup::estimate_jaccard;

use super::near::{Buckets, PairOracle, PairVerdict, judge};
use super::{ObjectEntries, SetStore};
use crate::build::BuildError;

/// Similar predecessors reported per member and bucket before the walk stops (see the
/// module docs).
pub const SIMILAR_PER_MEMBER: usize = 4;

/// Predecessors a member's walk looks at, at most, in one bucket: past them it stops with a
/// cut, and the clustering judges whatever it asks beyond the cut on demand. Without this
/// a bucket of many records that are alike but under the threshold (or that first met in
/// another band) would be judged whole, quadratic, where the clustering asks few pairs.
pub const WALK_LIMIT: usize = 256;

/// Shingle ids a partition judge keeps in its per-bucket cache (4 bytes each): 64 MB.
const CACHE_ELEMENTS: usize = 16 << 20;

/// A record as the shuffle names it: its object's place in key order and its ordinal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    pub object: u32,
    pub ordinal: u32,
}

impl Member {
    /// `object << 32 | ordinal`: one `u64` column.
    pub fn packed(self) -> u64 {
        (u64::from(self.object) << 32) | u64::from(self.ordinal)
    }

    pub fn unpacked(x: u64) -> Self {
        Self {
            object: (x >> 32) as u32,
            ordinal: x as u32,
        }
    }
}

/// One record's band key in one band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandRow {
    pub band: u32,
    pub key: u64,
    pub member: Member,
}

impl BandRow {
    /// The row's partition of `parts`: a function of the band key alone, so a bucket is
    /// never split between partitions.
    pub fn part(&self, parts: u32) -> u32 {
        (mix(self.key ^ u64::from(self.band)) % u64::from(parts.max(1))) as u32
    }

    fn hash(&self) -> u64 {
        mix(mix(self.key ^ mix(u64::from(self.band))) ^ self.member.packed())
    }
}

/// splitmix64's finaliser: a fixed, well-mixed hash of a `u64`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A set of band rows, counted and digested without regard to order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowsReceipt {
    pub rows: u64,
    pub digest: u64,
}

impl RowsReceipt {
    pub fn add(&mut self, row: &BandRow) {
        self.rows += 1;
        self.digest = self.digest.wrapping_add(row.hash());
    }

    pub fn merge(&mut self, other: RowsReceipt) {
        self.rows += other.rows;
        self.digest = self.digest.wrapping_add(other.digest);
    }
}

/// Appends object `object`'s band rows: `bands` rows for each record with a shingle set.
pub(in crate::build) fn band_rows(
    object: u32,
    entries: &ObjectEntries,
    bands: usize,
    out: &mut Vec<BandRow>,
) -> Result<(), BuildError> {
    for (i, e) in entries.entries.iter().enumerate() {
        if e.shingles_len == 0 {
            continue;
        }
        let keys = entries
            .bands
            .get(i * bands..(i + 1) * bands)
            .ok_or_else(|| {
                BuildError::Internal(format!("object {object}: record {i} has no band keys"))
            })?;
        out.extend(keys.iter().enumerate().map(|(band, &key)| BandRow {
            band: band as u32,
            key,
            member: Member {
                object,
                ordinal: i as u32,
            },
        }));
    }
    Ok(())
}

/// A keep rank: family rank, object, ordinal (lower is kept first).
pub type Rank = (u32, u32, u32);

/// What a partition judge reads of a record besides its shingle set.
pub trait SketchIndex {
    /// The record's keep rank.
    fn rank(&self, m: Member) -> Rank;
    /// The record's band keys, one per band.
    fn bands(&self, m: Member) -> &[u64];
    /// The low bytes of the record's min-hashes.
    fn low(&self, m: Member) -> &[u8];
    /// Where the record's shingle set is in its object's set storage: offset and length.
    fn set_at(&self, m: Member) -> (u64, u32);
}

/// What the judge needs of the settings.
#[derive(Debug, Clone, Copy)]
pub struct JudgeParams {
    pub threshold: f64,
    pub floor: f64,
    pub max_bucket: usize,
    pub similar_per_member: usize,
    pub walk_limit: usize,
}

/// What judging one partition gives back: small, and no text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgedPartition {
    pub part: u32,
    pub receipt: RowsReceipt,
    /// `(band, member, predecessor, jaccard)`: a pair judged in this band (the first the two
    /// share) whose Jaccard index reaches the threshold.
    pub similar: Vec<(u32, Member, Member, f64)>,
    /// `(band, member, last judged)`: the member's later predecessors in that band's bucket
    /// were not judged.
    pub cut: Vec<(u32, Member, Member)>,
    /// `(band, key)` of buckets over `max_bucket`: not judged.
    pub skipped: Vec<(u32, u64)>,
}

/// The first band in which `a` and `b` have the same key.
fn first_shared_band(a: &[u64], b: &[u64]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x == y)
}

/// Judges one partition's rows (see the module docs): every row must be of partition `part`
/// of `parts`. `sets` reads shingle sets by object.
pub fn judge_partition(
    (part, parts): (u32, u32),
    rows: &[BandRow],
    index: &dyn SketchIndex,
    sets: &mut dyn SetStore,
    p: &JudgeParams,
) -> Result<JudgedPartition, BuildError> {
    let mut out = JudgedPartition {
        part,
        ..JudgedPartition::default()
    };
    let mut keyed: Vec<(u32, u64, Rank, Member)> = Vec::with_capacity(rows.len());
    for row in rows {
        if row.part(parts) != part {
            return Err(BuildError::Internal(format!(
                "a band row of partition {} of {parts} was given to partition {part}",
                row.part(parts)
            )));
        }
        out.receipt.add(row);
        keyed.push((row.band, row.key, index.rank(row.member), row.member));
    }
    keyed.sort_unstable();
    // Shingle sets read, kept across buckets (a record is in one bucket per band), bounded.
    let mut cache = SetCache::default();
    for bucket in keyed.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (band, key) = (bucket[0].0, bucket[0].1);
        if bucket.len() < 2 {
            continue;
        }
        if bucket.len() > p.max_bucket {
            out.skipped.push((band, key));
            continue;
        }
        for (j, &(.., m)) in bucket.iter().enumerate().skip(1) {
            let mut hits = 0;
            for (i, &(.., r)) in bucket[..j].iter().enumerate() {
                if i == p.walk_limit {
                    // Looked at enough: the rest is judged on demand, if it is asked.
                    out.cut.push((band, m, bucket[i - 1].3));
                    break;
                }
                if first_shared_band(index.bands(r), index.bands(m)) != Some(band as usize) {
                    continue;
                }
                let verdict = {
                    let (cache, sets) = (&mut cache, &mut *sets);
                    judge(index.low(r), index.low(m), p.floor, move || {
                        cache.load(index, sets, &[r, m])?;
                        Ok((cache.sets[&r].as_slice(), cache.sets[&m].as_slice()))
                    })?
                };
                let PairVerdict::Verified { jaccard } = verdict else {
                    continue;
                };
                if jaccard < p.threshold {
                    continue;
                }
                out.similar.push((band, m, r, jaccard));
                hits += 1;
                if hits == p.similar_per_member {
                    if i + 1 < j {
                        out.cut.push((band, m, r));
                    }
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// A partition judge's shingle sets, by member, bounded in total elements.
#[derive(Default)]
struct SetCache {
    sets: FxHashMap<Member, Vec<u32>>,
    elements: usize,
}

impl SetCache {
    /// Reads the sets of `members` that are not here; when the cache is full it is emptied
    /// first (the sets asked for are always in it afterwards).
    fn load(
        &mut self,
        index: &dyn SketchIndex,
        sets: &mut dyn SetStore,
        members: &[Member],
    ) -> Result<(), BuildError> {
        let missing: u64 = members
            .iter()
            .filter(|m| !self.sets.contains_key(m))
            .map(|&m| u64::from(index.set_at(m).1))
            .sum();
        if self.elements + missing as usize > CACHE_ELEMENTS {
            self.clear();
        }
        for &m in members {
            if let std::collections::hash_map::Entry::Vacant(v) = self.sets.entry(m) {
                let (at, len) = index.set_at(m);
                let mut set = Vec::with_capacity(len as usize);
                sets.read_at(m.object, at, len, &mut set)?;
                self.elements += set.len();
                v.insert(set);
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.sets.clear();
        self.elements = 0;
    }
}

/// What the finishing process reads of a record, by keep rank.
pub trait RankedSketches {
    fn member(&self, rank: u32) -> Member;
    fn rank_of(&self, m: Member) -> Option<u32>;
    fn band(&self, rank: u32, band: usize) -> u64;
    fn low(&self, rank: u32) -> &[u8];
}

/// Every partition's report, indexed for the clustering.
#[derive(Debug, Default)]
pub struct ShuffleVerdicts {
    receipt: RowsReceipt,
    parts: FxHashSet<u32>,
    similar: FxHashMap<(Member, Member), f64>,
    cut: FxHashMap<(u32, Member), Member>,
    skipped: FxHashSet<(u32, u64)>,
}

impl ShuffleVerdicts {
    /// Gathers the partitions' reports; a partition reported twice is an error.
    pub fn new(partitions: Vec<JudgedPartition>) -> Result<Self, BuildError> {
        let mut v = Self::default();
        for p in partitions {
            if !v.parts.insert(p.part) {
                return Err(BuildError::Internal(format!(
                    "partition {} of the band rows was judged twice",
                    p.part
                )));
            }
            v.receipt.merge(p.receipt);
            // A pair is judged in one band only: the band is not part of its key.
            for (_, m, r, j) in p.similar {
                v.similar.insert((m, r), j);
            }
            for (band, m, last) in p.cut {
                v.cut.insert((band, m), last);
            }
            v.skipped.extend(p.skipped);
        }
        Ok(v)
    }

    /// Fails unless the partitions judged exactly the rows `expected` describes.
    pub fn check(&self, expected: RowsReceipt) -> Result<(), BuildError> {
        if self.receipt != expected {
            return Err(BuildError::Internal(format!(
                "the near-duplicate partitions judged {} band rows (digest {:016x}), the map's \
                 fragments have {} (digest {:016x}): a partition is missing or was judged \
                 from other fragments; build again",
                self.receipt.rows, self.receipt.digest, expected.rows, expected.digest
            )));
        }
        Ok(())
    }
}

/// The clustering's oracle over [`ShuffleVerdicts`], judging on demand (`fallback`) the
/// pairs the partitions did not judge.
pub struct ShuffleOracle<'a> {
    pub verdicts: &'a ShuffleVerdicts,
    pub sketches: &'a dyn RankedSketches,
    pub buckets: &'a Buckets,
    pub bands: usize,
    pub floor: f64,
    pub fallback: &'a mut dyn PairOracle,
    /// Pairs judged here because the partitions did not.
    pub judged_here: u64,
}

impl std::fmt::Debug for ShuffleOracle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShuffleOracle")
            .field("judged_here", &self.judged_here)
            .finish_non_exhaustive()
    }
}

impl PairOracle for ShuffleOracle<'_> {
    fn verdict(&mut self, representative: u32, other: u32) -> Result<PairVerdict, BuildError> {
        let s = self.sketches;
        if estimate_jaccard(s.low(representative), s.low(other)) < self.floor {
            return Ok(PairVerdict::BelowEstimate);
        }
        let (r, m) = (s.member(representative), s.member(other));
        let band = (0..self.bands)
            .find(|&b| s.band(representative, b) == s.band(other, b))
            .ok_or_else(|| {
                BuildError::Internal(format!(
                    "records ({}, {}) and ({}, {}) were asked as a pair but share no band",
                    r.object, r.ordinal, m.object, m.ordinal
                ))
            })?;
        let key = s.band(other, band);
        let band = band as u32;
        let unjudged = self.buckets.is_oversized(band, key)
            || self.verdicts.skipped.contains(&(band, key))
            || self
                .verdicts
                .cut
                .get(&(band, m))
                .is_some_and(|last| s.rank_of(*last).is_none_or(|last| last < representative));
        if unjudged {
            self.judged_here += 1;
            return self.fallback.verdict(representative, other);
        }
        Ok(match self.verdicts.similar.get(&(m, r)) {
            Some(&jaccard) => PairVerdict::Verified { jaccard },
            None => PairVerdict::Dissimilar,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::near::{self, Buckets};
    use super::*;
    use gatehouse_text::dedup::{MinHasher, NearDupParams};
    use proptest::prelude::*;

    /// Records in a few objects: shingle sets from a small universe, variants of one
    /// template (buckets are large and every pair passes the threshold), and windows over
    /// one range (a window is similar to its near neighbours, not to those further off: the
    /// chains that make representatives and members interleave); and a family rank per
    /// object.
    #[derive(Debug)]
    struct Corpus {
        objects: Vec<Vec<Vec<u32>>>,
        family_rank: Vec<u32>,
        params: NearDupParams,
        sigs: FxHashMap<Member, (Vec<u64>, Vec<u8>)>,
        order: Vec<Member>,
    }

    fn corpus() -> impl Strategy<Value = Corpus> {
        let template: Vec<u32> = (0..40).collect();
        let record = prop_oneof![
            prop::collection::btree_set(0u32..120, 5..40)
                .prop_map(|s| s.into_iter().collect::<Vec<u32>>()),
            prop::collection::btree_set(0u32..40, 0..6).prop_map(move |drop| {
                template
                    .iter()
                    .copied()
                    .filter(|x| !drop.contains(x))
                    .collect::<Vec<u32>>()
            }),
            (0u32..30).prop_map(|start| (1000 + start..1040 + start).collect::<Vec<u32>>()),
        ];
        (
            prop::collection::vec(prop::collection::vec(record, 1..20), 1..5),
            prop::collection::vec(0u32..3, 5),
        )
            .prop_map(|(objects, ranks)| {
                let family_rank = ranks[..objects.len()].to_vec();
                Corpus::new(objects, family_rank)
            })
    }

    impl Corpus {
        fn new(objects: Vec<Vec<Vec<u32>>>, family_rank: Vec<u32>) -> Self {
            let params = NearDupParams {
                bands: 8,
                rows: 2,
                threshold: 0.7,
                ..NearDupParams::default()
            };
            let h = MinHasher::new(&params);
            let mut sigs = FxHashMap::default();
            for (o, recs) in objects.iter().enumerate() {
                for (i, set) in recs.iter().enumerate() {
                    let (mut sig, mut b, mut l) = (Vec::new(), Vec::new(), Vec::new());
                    h.signature(set, &mut sig);
                    h.band_keys(&sig, &mut b);
                    MinHasher::low_bytes(&sig, &mut l);
                    let m = Member {
                        object: o as u32,
                        ordinal: i as u32,
                    };
                    sigs.insert(m, (b, l));
                }
            }
            let mut order: Vec<Member> = sigs.keys().copied().collect();
            order.sort_by_key(|m| (family_rank[m.object as usize], m.object, m.ordinal));
            Corpus {
                objects,
                family_rank,
                params,
                sigs,
                order,
            }
        }
    }

    impl SketchIndex for Corpus {
        fn rank(&self, m: Member) -> Rank {
            (self.family_rank[m.object as usize], m.object, m.ordinal)
        }
        fn bands(&self, m: Member) -> &[u64] {
            &self.sigs[&m].0
        }
        fn low(&self, m: Member) -> &[u8] {
            &self.sigs[&m].1
        }
        fn set_at(&self, m: Member) -> (u64, u32) {
            (u64::from(m.ordinal), 0)
        }
    }

    impl RankedSketches for Corpus {
        fn member(&self, rank: u32) -> Member {
            self.order[rank as usize]
        }
        fn rank_of(&self, m: Member) -> Option<u32> {
            self.order.iter().position(|&x| x == m).map(|r| r as u32)
        }
        fn band(&self, rank: u32, band: usize) -> u64 {
            self.sigs[&self.member(rank)].0[band]
        }
        fn low(&self, rank: u32) -> &[u8] {
            &self.sigs[&self.member(rank)].1
        }
    }

    /// Sets by (object, ordinal): `set_at` puts the ordinal in `at`.
    struct Sets<'a>(&'a Corpus);

    impl SetStore for Sets<'_> {
        fn read_at(
            &mut self,
            o: u32,
            at: u64,
            _: u32,
            out: &mut Vec<u32>,
        ) -> Result<(), BuildError> {
            out.clear();
            out.extend_from_slice(&self.0.objects[o as usize][at as usize]);
            Ok(())
        }
    }

    /// Judging on demand, as the rayon executor does.
    struct OnDemand<'a>(&'a Corpus);

    impl PairOracle for OnDemand<'_> {
        fn verdict(&mut self, r: u32, m: u32) -> Result<PairVerdict, BuildError> {
            let c = self.0;
            let (a, b) = (c.member(r), c.member(m));
            judge(
                RankedSketches::low(c, r),
                RankedSketches::low(c, m),
                c.params.estimate_floor(),
                || {
                    Ok((
                        c.objects[a.object as usize][a.ordinal as usize].as_slice(),
                        c.objects[b.object as usize][b.ordinal as usize].as_slice(),
                    ))
                },
            )
        }
    }

    /// Every record's band rows (the excluded ones too, as workers keep exact duplicates),
    /// judged in `parts` partitions, clustered over `eligible` through the shuffle's oracle.
    fn shuffled(
        c: &Corpus,
        parts: u32,
        (max_bucket, similar_per_member, walk_limit): (usize, usize, usize),
        buckets: &Buckets,
        eligible: &[u32],
    ) -> (Vec<near::Joined>, near::NearOutcome) {
        let mut rows = Vec::new();
        let mut expected = RowsReceipt::default();
        for &m in &c.order {
            for (band, &key) in c.sigs[&m].0.iter().enumerate() {
                let row = BandRow {
                    band: band as u32,
                    key,
                    member: m,
                };
                expected.add(&row);
                rows.push(row);
            }
        }
        let p = JudgeParams {
            threshold: c.params.threshold,
            floor: c.params.estimate_floor(),
            max_bucket,
            similar_per_member,
            walk_limit,
        };
        let mut judged = Vec::new();
        for part in (0..parts).rev() {
            let mine: Vec<BandRow> = rows
                .iter()
                .filter(|r| r.part(parts) == part)
                .copied()
                .collect();
            judged.push(judge_partition((part, parts), &mine, c, &mut Sets(c), &p).expect("judge"));
        }
        let verdicts = ShuffleVerdicts::new(judged).expect("verdicts");
        verdicts.check(expected).expect("every row judged");
        let mut fallback = OnDemand(c);
        let mut oracle = ShuffleOracle {
            verdicts: &verdicts,
            sketches: c,
            buckets,
            bands: c.params.bands,
            floor: c.params.estimate_floor(),
            fallback: &mut fallback,
            judged_here: 0,
        };
        near::clusters(eligible, buckets, c.params.threshold, &mut oracle).expect("clusters")
    }

    proptest! {
        /// Buckets judged where a shuffle by band key put them, in any number of
        /// partitions, with few similar pairs reported per member, short walks, small
        /// buckets left out, and records the clustering leaves out (exact duplicates) still
        /// in the partitions' buckets: the same clusters and the same counts as judging on
        /// demand.
        #[test]
        fn a_shuffle_by_band_key_gives_the_clusters_and_counts_of_judging_on_demand(
            c in corpus(),
            parts in 1u32..6,
            max_bucket in prop_oneof![Just(1000usize), 2usize..8],
            similar_per_member in 1usize..4,
            walk_limit in prop_oneof![Just(WALK_LIMIT), 1usize..4],
            excluded in prop::collection::btree_set(0u32..80, 0..6),
        ) {
            let eligible: Vec<u32> = (0..c.order.len() as u32)
                .filter(|r| !excluded.contains(r))
                .collect();
            let bands = c.params.bands;
            let buckets = Buckets::of(&eligible, bands, max_bucket, |r, b| {
                RankedSketches::band(&c, r, b)
            });
            let on_demand =
                near::clusters(&eligible, &buckets, c.params.threshold, &mut OnDemand(&c))
                    .expect("on demand");
            let limits = (max_bucket, similar_per_member, walk_limit);
            let shuffled = shuffled(&c, parts, limits, &buckets, &eligible);
            prop_assert_eq!(on_demand.1, shuffled.1);
            prop_assert_eq!(on_demand.0.len(), shuffled.0.len());
            for (a, b) in on_demand.0.iter().zip(&shuffled.0) {
                prop_assert_eq!((a.member, a.representative), (b.member, b.representative));
                prop_assert_eq!(a.jaccard, b.jaccard);
            }
        }
    }

    /// Two near copies whose first shared band puts them in a bucket too large to judge
    /// (with two unrelated records), and whose second puts them in a bucket of their own:
    /// the partitions skip the first, so the finishing process judges the pair itself.
    #[test]
    fn a_pair_first_met_in_an_oversized_bucket_is_judged_on_the_finish() {
        let near: Vec<u32> = (0..40).collect();
        let mut c = Corpus::new(
            vec![vec![
                near.clone(),
                near[1..].to_vec(),
                (100..140).collect(),
                (200..240).collect(),
            ]],
            vec![0],
        );
        for (i, m) in c.order.clone().into_iter().enumerate() {
            let keys = &mut c.sigs.get_mut(&m).expect("record").0;
            keys.iter_mut().for_each(|k| *k = 1000 + i as u64);
            keys[0] = 1;
            keys[1] = if i < 2 { 10 } else { 11 + i as u64 };
        }
        let eligible: Vec<u32> = (0..4).collect();
        let buckets = Buckets::of(&eligible, c.params.bands, 3, |r, b| {
            RankedSketches::band(&c, r, b)
        });
        let on_demand = near::clusters(&eligible, &buckets, c.params.threshold, &mut OnDemand(&c))
            .expect("on demand");
        assert_eq!(on_demand.0.len(), 1, "the near copies are one cluster");
        let limits = (3, SIMILAR_PER_MEMBER, WALK_LIMIT);
        let shuffled = shuffled(&c, 2, limits, &buckets, &eligible);
        assert_eq!(on_demand.1, shuffled.1);
        assert_eq!(on_demand.0, shuffled.0);
    }

    #[test]
    fn a_missing_or_repeated_partition_fails_closed() {
        let row = BandRow {
            band: 0,
            key: 7,
            member: Member::unpacked(3),
        };
        let mut expected = RowsReceipt::default();
        expected.add(&row);
        let none = ShuffleVerdicts::new(Vec::new()).expect("no partitions");
        let err = none.check(expected).expect_err("a row not judged");
        assert!(err.to_string().contains("judged 0 band rows"), "{err}");
        let twice = vec![
            JudgedPartition {
                part: 1,
                ..JudgedPartition::default()
            };
            2
        ];
        let err = ShuffleVerdicts::new(twice).expect_err("twice");
        assert!(err.to_string().contains("judged twice"), "{err}");
    }
}
