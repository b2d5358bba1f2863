//! The near-duplicate kernels, over records named by their keep rank (`u32`, lower is kept
//! first). None of them depends on where records, sketches or shingle sets are stored.
//!
//! - [`Buckets`]: LSH buckets from band keys (any order in, the same buckets out).
//! - [`judge`]: one candidate pair → [`PairVerdict`] (the signature estimate, then, above its
//!   floor, the exact Jaccard index of the shingle sets). [`bucket_pairs`] judges every pair
//!   of one bucket: the kernel an executor that shuffles band rows runs per bucket.
//! - [`clusters`]: kept/removed. In rank order, a record not yet in a cluster becomes a
//!   representative, and each later record sharing a bucket with it, not yet in a cluster,
//!   joins it when the pair's Jaccard index reaches the threshold. Verdicts come from a
//!   [`PairOracle`]: judged on demand (the rayon executor: only the pairs the clustering
//!   asks for are read) or looked up in pairs judged beforehand (an executor that judged
//!   every bucket in parallel). The verdict of a pair does not depend on when it is asked,
//!   so both give the same clusters and, because the counts are taken here from the pairs
//!   the clustering asked for, the same counts.

use rustc_hash::FxHashMap;

use gatehouse_text::dedup::{estimate_jaccard, jaccard};

use super::super::BuildError;

/// What one candidate pair is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PairVerdict {
    /// The signature estimate is under the floor: the shingle sets were not compared.
    BelowEstimate,
    /// The exact Jaccard index of the two shingle sets.
    Verified { jaccard: f64 },
}

/// Judges a pair from the low bytes of both signatures and, when the estimate reaches
/// `floor`, the two shingle sets (read only then).
pub fn judge<'s>(
    low_a: &[u8],
    low_b: &[u8],
    floor: f64,
    sets: impl FnOnce() -> Result<(&'s [u32], &'s [u32]), BuildError>,
) -> Result<PairVerdict, BuildError> {
    if estimate_jaccard(low_a, low_b) < floor {
        return Ok(PairVerdict::BelowEstimate);
    }
    let (a, b) = sets()?;
    Ok(PairVerdict::Verified {
        jaccard: jaccard(a, b),
    })
}

/// Every pair `(a, b)`, `a < b`, of one bucket (members in ascending rank), judged.
pub fn bucket_pairs(
    members: &[u32],
    judge: &mut dyn FnMut(u32, u32) -> Result<PairVerdict, BuildError>,
) -> Result<Vec<(u32, u32, PairVerdict)>, BuildError> {
    let mut out = Vec::with_capacity(members.len() * members.len().saturating_sub(1) / 2);
    for (i, &a) in members.iter().enumerate() {
        for &b in &members[i + 1..] {
            out.push((a, b, judge(a, b)?));
        }
    }
    Ok(out)
}

/// Where verdicts come from during the clustering.
pub trait PairOracle {
    /// The verdict of `(representative, other)`; `representative < other`.
    fn verdict(&mut self, representative: u32, other: u32) -> Result<PairVerdict, BuildError>;
}

/// Verdicts judged beforehand (by [`bucket_pairs`] over every bucket), looked up.
#[derive(Debug, Default)]
pub struct JudgedPairs(FxHashMap<(u32, u32), PairVerdict>);

impl JudgedPairs {
    pub fn insert(&mut self, a: u32, b: u32, verdict: PairVerdict) {
        self.0.insert((a.min(b), a.max(b)), verdict);
    }
}

impl Extend<(u32, u32, PairVerdict)> for JudgedPairs {
    fn extend<I: IntoIterator<Item = (u32, u32, PairVerdict)>>(&mut self, pairs: I) {
        for (a, b, v) in pairs {
            self.insert(a, b, v);
        }
    }
}

impl PairOracle for JudgedPairs {
    fn verdict(&mut self, representative: u32, other: u32) -> Result<PairVerdict, BuildError> {
        self.0
            .get(&(representative, other))
            .copied()
            .ok_or_else(|| {
                BuildError::Internal(format!(
                    "no verdict for the candidate pair ({representative}, {other})"
                ))
            })
    }
}

/// LSH buckets with two or more members (and at most `max_bucket`), as lists of ranks in
/// ascending order, and the buckets each rank is in.
#[derive(Debug)]
pub struct Buckets {
    members: Vec<u32>,
    /// Bucket `b` is `members[starts[b]..starts[b + 1]]`.
    starts: Vec<usize>,
    of_rank: FxHashMap<u32, Vec<u32>>,
    /// Members of the largest bucket (oversized ones included).
    pub largest: u64,
    /// Buckets over `max_bucket` (not used for candidates) and the records in them.
    pub oversized: (u64, u64),
}

impl Default for Buckets {
    /// No buckets yet; [`Buckets::add`] adds them.
    fn default() -> Self {
        Self {
            members: Vec::new(),
            starts: vec![0],
            of_rank: FxHashMap::default(),
            largest: 0,
            oversized: (0, 0),
        }
    }
}

impl Buckets {
    /// The buckets of `bands` bands over the `eligible` ranks; `key(rank, band)` is a
    /// record's band key.
    pub fn of(
        eligible: &[u32],
        bands: usize,
        max_bucket: usize,
        key: impl Fn(u32, usize) -> u64,
    ) -> Self {
        let mut b = Buckets::default();
        let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(eligible.len());
        for band in 0..bands {
            keyed.clear();
            keyed.extend(eligible.iter().map(|&r| (key(r, band), r)));
            keyed.sort_unstable();
            for run in keyed.chunk_by(|a, b| a.0 == b.0) {
                b.add(run.iter().map(|&(_, r)| r), run.len(), max_bucket);
            }
        }
        b
    }

    /// Adds one bucket (ranks ascending) of `len` members.
    pub fn add(&mut self, ranks: impl Iterator<Item = u32>, len: usize, max_bucket: usize) {
        if len < 2 {
            return;
        }
        self.largest = self.largest.max(len as u64);
        if len > max_bucket {
            self.oversized.0 += 1;
            self.oversized.1 += len as u64;
            return;
        }
        let id = (self.starts.len() - 1) as u32;
        for r in ranks {
            self.members.push(r);
            self.of_rank.entry(r).or_default().push(id);
        }
        self.starts.push(self.members.len());
    }

    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members of bucket `bucket`, ranks ascending.
    pub fn members(&self, bucket: u32) -> &[u32] {
        let b = bucket as usize;
        &self.members[self.starts[b]..self.starts[b + 1]]
    }
}

/// What the near-duplicate pass counted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NearOutcome {
    /// Candidate pairs (a representative and a record sharing a bucket) considered.
    pub candidates: u64,
    pub below_estimate: u64,
    pub verified: u64,
    pub largest_bucket: u64,
    pub oversized: (u64, u64),
}

/// A record that joined a representative's cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Joined {
    pub member: u32,
    pub representative: u32,
    pub jaccard: f64,
}

/// Clusters around representatives in rank order (see the module docs): the records that
/// joined a cluster, by rank, and the counts. Each pair is asked once.
/// `eligible` ascends, and every bucket member is one of them.
pub fn clusters(
    eligible: &[u32],
    buckets: &Buckets,
    threshold: f64,
    oracle: &mut dyn PairOracle,
) -> Result<(Vec<Joined>, NearOutcome), BuildError> {
    let mut out = NearOutcome {
        largest_bucket: buckets.largest,
        oversized: buckets.oversized,
        ..NearOutcome::default()
    };
    let mut joined = Vec::new();
    // Ranks are dense and `eligible` ascends: plain vectors, indexed by rank.
    let n = eligible.last().map_or(0, |&r| r as usize + 1);
    let mut clustered = vec![false; n];
    // The representative that last considered each record: each pair once.
    let mut considered_by = vec![u32::MAX; n];
    for &r in eligible {
        if std::mem::replace(&mut clustered[r as usize], true) {
            continue;
        }
        let Some(of_rep) = buckets.of_rank.get(&r) else {
            continue;
        };
        for &b in of_rep {
            for &m in buckets.members(b) {
                let mi = m as usize;
                if m <= r || clustered[mi] || considered_by[mi] == r {
                    continue;
                }
                considered_by[mi] = r;
                out.candidates += 1;
                match oracle.verdict(r, m)? {
                    PairVerdict::BelowEstimate => out.below_estimate += 1,
                    PairVerdict::Verified { jaccard } => {
                        out.verified += 1;
                        if jaccard >= threshold {
                            clustered[mi] = true;
                            joined.push(Joined {
                                member: m,
                                representative: r,
                                jaccard,
                            });
                        }
                    }
                }
            }
        }
    }
    joined.sort_unstable_by_key(|j| j.member);
    Ok((joined, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_text::dedup::{MinHasher, NearDupParams};
    use proptest::prelude::*;

    /// Records as shingle sets drawn from a small universe, so that many pairs collide and
    /// some pass the threshold; a few are variants of a shared template.
    fn records() -> impl Strategy<Value = Vec<Vec<u32>>> {
        let template: Vec<u32> = (0..40).collect();
        prop::collection::vec(
            prop_oneof![
                prop::collection::btree_set(0u32..120, 5..40)
                    .prop_map(|s| s.into_iter().collect::<Vec<u32>>()),
                prop::collection::btree_set(0u32..40, 0..6).prop_map(move |drop| {
                    template
                        .iter()
                        .copied()
                        .filter(|x| !drop.contains(x))
                        .collect::<Vec<u32>>()
                }),
            ],
            2..60,
        )
    }

    struct Sketches {
        sets: Vec<Vec<u32>>,
        bands: Vec<Vec<u64>>,
        low: Vec<Vec<u8>>,
        params: NearDupParams,
    }

    fn sketch(sets: Vec<Vec<u32>>) -> Sketches {
        let params = NearDupParams {
            bands: 8,
            rows: 2,
            threshold: 0.7,
            ..NearDupParams::default()
        };
        let h = MinHasher::new(&params);
        let (mut bands, mut low) = (Vec::new(), Vec::new());
        for s in &sets {
            let (mut sig, mut b, mut l) = (Vec::new(), Vec::new(), Vec::new());
            h.signature(s, &mut sig);
            h.band_keys(&sig, &mut b);
            MinHasher::low_bytes(&sig, &mut l);
            bands.push(b);
            low.push(l);
        }
        Sketches {
            sets,
            bands,
            low,
            params,
        }
    }

    fn judge_pair(s: &Sketches, a: u32, b: u32) -> Result<PairVerdict, BuildError> {
        let (a, b) = (a as usize, b as usize);
        judge(&s.low[a], &s.low[b], s.params.estimate_floor(), || {
            Ok((s.sets[a].as_slice(), s.sets[b].as_slice()))
        })
    }

    struct OnDemand<'a>(&'a Sketches);

    impl PairOracle for OnDemand<'_> {
        fn verdict(&mut self, r: u32, m: u32) -> Result<PairVerdict, BuildError> {
            judge_pair(self.0, r, m)
        }
    }

    proptest! {
        /// A second executor's way, every bucket judged beforehand (in any order) and the
        /// verdicts looked up, gives the same clusters and the same counts as judging on
        /// demand.
        #[test]
        fn judged_beforehand_or_on_demand_the_clusters_and_counts_are_the_same(
            sets in records(),
            rotate in 0usize..7,
        ) {
            let s = sketch(sets);
            let eligible: Vec<u32> = (0..s.sets.len() as u32).collect();
            let bands = s.params.bands;
            let buckets = Buckets::of(&eligible, bands, 1000, |r, b| s.bands[r as usize][b]);
            let on_demand = clusters(&eligible, &buckets, s.params.threshold, &mut OnDemand(&s))
                .expect("on demand");

            // The same buckets, added in another order, judged pair by pair.
            let mut order: Vec<u32> = (0..buckets.len() as u32).collect();
            let k = rotate.min(order.len());
            order.rotate_left(k);
            order.reverse();
            let mut shuffled = Buckets::default();
            let mut judged = JudgedPairs::default();
            for &b in &order {
                let m = buckets.members(b);
                shuffled.add(m.iter().copied(), m.len(), 1000);
                let pairs = bucket_pairs(m, &mut |a, b| judge_pair(&s, a, b)).expect("pairs");
                judged.extend(pairs);
            }
            shuffled.largest = buckets.largest;
            let beforehand = clusters(&eligible, &shuffled, s.params.threshold, &mut judged)
                .expect("beforehand");
            prop_assert_eq!(on_demand, beforehand);
        }
    }

    #[test]
    fn a_missing_verdict_fails_closed() {
        let mut b = Buckets::default();
        b.add([0, 1].into_iter(), 2, 10);
        let err = clusters(&[0, 1], &b, 0.7, &mut JudgedPairs::default()).expect_err("no verdict");
        assert!(err.to_string().contains("(0, 1)"), "{err}");
    }
}
