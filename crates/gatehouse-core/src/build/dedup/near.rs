//! The near-duplicate kernels, over records named by their keep rank (`u32`, lower is kept
//! first). None of them depends on where records, sketches or shingle sets are stored.
//!
//! - [`Buckets`]: LSH buckets from band keys (any order in, the same buckets out).
//! - [`judge`]: one candidate pair → [`PairVerdict`] (the signature estimate, then, above its
//!   floor, the exact Jaccard index of the shingle sets). The rayon executor judges on
//!   demand; an executor that shuffles band rows judges each bucket where it lands
//!   ([`super::shuffle`]).
//! - [`clusters`]: kept/removed. In rank order, a record not yet in a cluster becomes a
//!   representative, and each later record sharing a bucket with it, not yet in a cluster,
//!   joins it when the pair's Jaccard index reaches the threshold. Verdicts come from a
//!   [`PairOracle`]: judged on demand (the rayon executor: only the pairs the clustering
//!   asks for are read) or answered from the reports of a shuffle's partitions
//!   ([`super::shuffle::ShuffleOracle`]). The verdict of a pair does not depend on when or
//!   where it is judged, so both give the same clusters and, because the counts are taken
//!   here from the pairs the clustering asked for, the same counts.

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
    /// The shingle sets were compared and their Jaccard index is under the threshold (its
    /// value was not kept: an executor that judged the pair elsewhere reports only the
    /// pairs that reach the threshold).
    Dissimilar,
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

/// Where verdicts come from during the clustering.
pub trait PairOracle {
    /// The verdict of `(representative, other)`; `representative < other`.
    fn verdict(&mut self, representative: u32, other: u32) -> Result<PairVerdict, BuildError>;
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
    /// `(band, key)` of each oversized bucket.
    oversized_at: rustc_hash::FxHashSet<(u32, u64)>,
}

impl Default for Buckets {
    /// No buckets yet (what [`Buckets::of`] starts from).
    fn default() -> Self {
        Self {
            members: Vec::new(),
            starts: vec![0],
            of_rank: FxHashMap::default(),
            largest: 0,
            oversized: (0, 0),
            oversized_at: Default::default(),
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
                let at = (band as u32, run[0].0);
                b.add(at, run.iter().map(|&(_, r)| r), run.len(), max_bucket);
            }
        }
        b
    }

    /// Adds the bucket of band `at.0`, key `at.1`: `len` members, ranks ascending.
    fn add(
        &mut self,
        at: (u32, u64),
        ranks: impl Iterator<Item = u32>,
        len: usize,
        max_bucket: usize,
    ) {
        if len < 2 {
            return;
        }
        self.largest = self.largest.max(len as u64);
        if len > max_bucket {
            self.oversized.0 += 1;
            self.oversized.1 += len as u64;
            self.oversized_at.insert(at);
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

    /// Whether the bucket of `key` in band `band` was left out for being over `max_bucket`.
    pub fn is_oversized(&self, band: u32, key: u64) -> bool {
        self.oversized_at.contains(&(band, key))
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
                    PairVerdict::Dissimilar => out.verified += 1,
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
