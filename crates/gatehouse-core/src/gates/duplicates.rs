//! The dedup and leakage gates: duplicates left in the export, and duplicates that cross
//! splits.
//!
//! While the shards are scanned, every record is sketched (exact key, LSH band keys, and
//! its shingle set, spilled to a local file) with the same definitions the build uses
//! (`gatehouse_text::dedup`). Then:
//!
//! - **exact pairs** are records with equal exact keys;
//! - **near pairs** are LSH candidates (records sharing a band key) whose shingle sets have
//!   a Jaccard index at or above the threshold. *Every* candidate pair is considered, not
//!   only pairs with a representative: the gates look for any leak, not for clusters to
//!   remove. A pair whose signature estimate is five standard errors under the threshold is
//!   not near (probability of skipping a pair at the threshold < 1e-6); the others are
//!   verified exactly. If the candidates exceed `max_candidates` the gates cannot certify
//!   and fail.
//!
//! The dedup gate fails on exact duplicates and reports near-duplicate clusters per family
//! (a warning). The leakage gate fails on any pair across splits that touches a holdout
//! family (`strict` or `test_only`), and on other cross-split pairs unless
//! `[gates.leakage] non_holdout = "warn"`. Its report is a certificate: method, parameters,
//! candidates verified, the probability that a pair at the threshold became a candidate,
//! and pair counts per split pair.
//!
//! Over 600 lines: the dedup and leakage gates finish from one analysis of the same
//! sketches; splitting them would expose that analysis between files for no reader.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::Receiver;

use gatehouse_text::dedup::{
    DEDUP_VERSION, MinHasher, NearDupParams, Shingler, estimate_jaccard, exact_key, jaccard,
};

use super::gate::{Finish, Finished};
use super::scan::{At, CodeTally, ExportedRecord, Locator};
use super::{GateError, GateFindings, GateReport};
use crate::build::Split;
use crate::build::dedup::DedupConfig;
use crate::registry::Holdout;
use crate::report::codes::dedup::{EXACT_DUPLICATE, NEAR_DUPLICATE};
use crate::report::codes::leakage::{HOLDOUT_LEAK, NO_SPLIT, SPLIT_LEAK, TOO_MANY_CANDIDATES};
use crate::report::{Code, Finding, Severity};

pub use crate::contract::gates::{
    Certificate, DedupDetail, DedupReport, FamilyDuplicates, LeakPolicy, LeakageConfig,
    LeakageDetail, LeakageReport, PairKind, SplitPairCount,
};

impl Default for LeakageConfig {
    fn default() -> Self {
        Self {
            non_holdout: LeakPolicy::Fail,
            max_candidates: 1_000_000_000,
        }
    }
}

/// One record as the duplicate checks see it.
#[derive(Debug, Clone)]
pub(super) struct Sketch {
    pub shard: u32,
    pub line: u64,
    pub id: Option<String>,
    pub source: Option<String>,
    pub split: Option<Split>,
    pub family: Option<String>,
    pub exact: u128,
    pub shingles_at: u64,
    pub shingles_len: u32,
}

/// Sketches of one batch of lines, with their band keys and shingle sets (concatenated).
#[derive(Debug, Default)]
pub(super) struct SketchBatch {
    sketches: Vec<Sketch>,
    bands: Vec<u64>,
    low: Vec<u8>,
    shingles: Vec<u32>,
}

/// Sketches records; shared read-only by the workers.
#[derive(Debug)]
pub(super) struct Sketcher {
    pub params: NearDupParams,
    shingler: Shingler,
    minhasher: MinHasher,
    shingle_system: bool,
}

impl Sketcher {
    pub fn new(config: &DedupConfig) -> Self {
        Self {
            params: config.near_params.clone(),
            shingler: Shingler::with_boilerplate(&config.near_params, &config.boilerplate),
            minhasher: MinHasher::new(&config.near_params),
            shingle_system: config.shingle_system,
        }
    }

    pub fn sketch(&self, rec: &ExportedRecord, at: At<'_>, batch: &mut SketchBatch) {
        let meta = rec.metadata.as_ref();
        let mut set = Vec::new();
        self.shingler.shingles(
            rec.messages
                .iter()
                .filter(|m| self.shingle_system || m.role != "system")
                .map(|m| m.content.as_str()),
            &mut set,
        );
        let (mut signature, mut keys) = (Vec::new(), Vec::new());
        self.minhasher.signature(&set, &mut signature);
        self.minhasher.band_keys(&signature, &mut keys);
        batch.bands.extend_from_slice(&keys);
        let mut low = Vec::new();
        MinHasher::low_bytes(&signature, &mut low);
        batch.low.extend_from_slice(&low);
        batch.sketches.push(Sketch {
            shard: at.shard_index,
            line: at.line,
            id: rec.id.clone(),
            source: rec.source(),
            split: meta
                .and_then(|m| m.split.as_deref())
                .and_then(|s| Split::ALL.into_iter().find(|x| x.as_str() == s)),
            family: rec.family().map(str::to_string),
            exact: exact_key(
                rec.messages
                    .iter()
                    .map(|m| (m.role.as_str(), m.content.as_str())),
            ),
            shingles_at: 0,
            shingles_len: set.len() as u32,
        });
        batch.shingles.extend_from_slice(&set);
    }
}

/// Every record's sketch in export order, band keys (`bands` per sketch) and the shingle
/// sets on local disk.
#[derive(Debug)]
pub(super) struct Collected {
    pub sketches: Vec<Sketch>,
    bands: Vec<u64>,
    low: Vec<u8>,
    perms: usize,
    file: tempfile::NamedTempFile,
}

fn spill_err(source: std::io::Error) -> GateError {
    GateError::Read {
        key: "(local shingle spill file)".into(),
        source,
    }
}

/// Receives the workers' batches (in any order), spills the shingle sets and sorts the
/// sketches into export order.
pub(super) fn collect(
    rx: Receiver<SketchBatch>,
    bands: usize,
    perms: usize,
) -> Result<Collected, GateError> {
    let file = tempfile::NamedTempFile::new().map_err(spill_err)?;
    let mut out = BufWriter::with_capacity(1 << 20, file.reopen().map_err(spill_err)?);
    let mut at = 0u64;
    let (mut sketches, mut all_bands, mut all_low) = (Vec::new(), Vec::new(), Vec::new());
    for batch in rx {
        let mut offset = 0usize;
        for mut s in batch.sketches {
            s.shingles_at = at;
            let n = s.shingles_len as usize;
            for x in &batch.shingles[offset..offset + n] {
                out.write_all(&x.to_le_bytes()).map_err(spill_err)?;
            }
            offset += n;
            at += 4 * n as u64;
            sketches.push(s);
        }
        all_bands.extend_from_slice(&batch.bands);
        all_low.extend_from_slice(&batch.low);
    }
    out.flush().map_err(spill_err)?;
    // Export order, whatever order the batches arrived in.
    let mut order: Vec<usize> = (0..sketches.len()).collect();
    order.sort_by_key(|&i| (sketches[i].shard, sketches[i].line));
    let bands_sorted: Vec<u64> = order
        .iter()
        .flat_map(|&i| all_bands[i * bands..(i + 1) * bands].iter().copied())
        .collect();
    let low_sorted: Vec<u8> = order
        .iter()
        .flat_map(|&i| all_low[i * perms..(i + 1) * perms].iter().copied())
        .collect();
    let mut slots: Vec<Option<Sketch>> = sketches.into_iter().map(Some).collect();
    let sketches = order
        .iter()
        .map(|&i| {
            slots[i]
                .take()
                .ok_or_else(|| GateError::Internal("sketch order".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Collected {
        sketches,
        bands: bands_sorted,
        low: low_sorted,
        perms,
        file,
    })
}

impl SketchBatch {
    pub fn is_empty(&self) -> bool {
        self.sketches.is_empty()
    }
}

/// Two records (indices in export order, `a < b`) that are duplicates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Pair {
    pub a: u32,
    pub b: u32,
    pub kind: PairKind,
    pub jaccard: f64,
}

/// What the duplicate checks found.
#[derive(Debug)]
pub(super) struct Analysis {
    /// Records equal to an earlier record (index, the first such record).
    pub exact_extra: Vec<(u32, u32)>,
    /// Every duplicate pair: exact pairs, and verified near pairs that are not exact.
    pub pairs: Vec<Pair>,
    /// Candidate pairs considered, those under the estimate floor, those verified.
    pub candidates: u64,
    pub below_estimate: u64,
    pub verified: u64,
    pub largest_bucket: u64,
    /// The candidates exceeded the limit: nothing near was verified.
    pub over_limit: bool,
}

/// Finds every exact and near pair among the collected records.
///
/// About 120 lines on purpose: exact keys, then band buckets, then each candidate verified,
/// in one pass over the collected sketches whose counts the report states.
pub(super) fn analyse(
    c: &Collected,
    params: &NearDupParams,
    max_candidates: u64,
) -> Result<Analysis, GateError> {
    let n = c.sketches.len();
    // Exact: groups of equal keys.
    let mut keyed: Vec<(u128, u32)> = (0..n).map(|i| (c.sketches[i].exact, i as u32)).collect();
    keyed.sort_unstable();
    let (mut exact_extra, mut pairs) = (Vec::new(), Vec::new());
    for group in keyed.chunk_by(|a, b| a.0 == b.0) {
        for (k, &(_, b)) in group.iter().enumerate().skip(1) {
            exact_extra.push((b, group[0].1));
            for &(_, a) in &group[..k] {
                pairs.push(Pair {
                    a,
                    b,
                    kind: PairKind::Exact,
                    jaccard: 1.0,
                });
            }
        }
    }
    exact_extra.sort_unstable();

    // Near: every pair sharing a band key.
    let bands = params.bands;
    // Buckets with their band: a pair is considered in the first band it shares.
    let mut buckets: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut total = 0u64;
    let mut largest = 0u64;
    let mut band_keys: Vec<(u64, u32)> = Vec::with_capacity(n);
    for band in 0..bands {
        band_keys.clear();
        band_keys.extend(
            (0..n)
                .filter(|&i| c.sketches[i].shingles_len > 0)
                .map(|i| (c.bands[i * bands + band], i as u32)),
        );
        band_keys.sort_unstable();
        for run in band_keys.chunk_by(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                let m = run.len() as u64;
                largest = largest.max(m);
                total = total.saturating_add(m * (m - 1) / 2);
                buckets.push((band, run.iter().map(|&(_, i)| i).collect()));
            }
        }
    }
    if total > max_candidates {
        return Ok(Analysis {
            exact_extra,
            pairs,
            candidates: total,
            below_estimate: 0,
            verified: 0,
            largest_bucket: largest,
            over_limit: true,
        });
    }
    let mut reader = File::open(c.file.path()).map_err(spill_err)?;
    let mut read = |i: u32, out: &mut Vec<u32>| -> Result<(), GateError> {
        let s = &c.sketches[i as usize];
        let mut bytes = vec![0u8; 4 * s.shingles_len as usize];
        reader
            .seek(SeekFrom::Start(s.shingles_at))
            .map_err(spill_err)?;
        reader.read_exact(&mut bytes).map_err(spill_err)?;
        out.clear();
        out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        Ok(())
    };
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let (mut candidates, mut below_estimate, mut verified) = (0u64, 0u64, 0u64);
    let floor = params.estimate_floor();
    let low = |i: u32| &c.low[i as usize * c.perms..(i as usize + 1) * c.perms];
    let band_keys = |i: u32| &c.bands[i as usize * bands..(i as usize + 1) * bands];
    for (band, bucket) in &buckets {
        for (k, &a) in bucket.iter().enumerate() {
            for &b in &bucket[k + 1..] {
                let earlier = band_keys(a)[..*band]
                    .iter()
                    .zip(&band_keys(b)[..*band])
                    .any(|(x, y)| x == y);
                if earlier || c.sketches[a as usize].exact == c.sketches[b as usize].exact {
                    continue;
                }
                candidates += 1;
                if estimate_jaccard(low(a), low(b)) < floor {
                    below_estimate += 1;
                    continue;
                }
                verified += 1;
                read(a, &mut sa)?;
                read(b, &mut sb)?;
                let j = jaccard(&sa, &sb);
                if j >= params.threshold {
                    pairs.push(Pair {
                        a,
                        b,
                        kind: PairKind::Near,
                        jaccard: j,
                    });
                }
            }
        }
    }
    pairs.sort_by_key(|p| (p.a, p.b));
    Ok(Analysis {
        exact_extra,
        pairs,
        candidates,
        below_estimate,
        verified,
        largest_bucket: largest,
        over_limit: false,
    })
}

fn locator_of(c: &Collected, shards: &[String], i: u32) -> Locator {
    let s = &c.sketches[i as usize];
    Locator {
        id: s.id.clone(),
        source: s.source.clone(),
        ..Locator::at(At {
            shard_index: s.shard,
            shard: &shards[s.shard as usize],
            line: s.line,
        })
    }
}

fn at_of(c: &Collected, shards: &[String], i: u32) -> String {
    let s = &c.sketches[i as usize];
    format!("{}:{}", shards[s.shard as usize], s.line)
}

/// The dedup gate, from the scan's sketches and their analysis.
pub(super) fn finish_dedup(f: &mut Finish<'_, '_>) -> Result<Finished, GateError> {
    let params = &f.policy.dedup.near_params;
    Ok(Finished::report(dedup_report(
        f.manifest,
        &f.scanned,
        &f.analysis,
        f.ctx,
        params,
    )))
}

/// The leakage gate, from the scan's sketches and their analysis.
pub(super) fn finish_leakage(f: &mut Finish<'_, '_>) -> Result<Finished, GateError> {
    let params = &f.policy.dedup.near_params;
    Ok(Finished::report(leakage_report(
        f.manifest,
        &f.scanned,
        &f.analysis,
        f.ctx,
        params,
    )))
}

fn dedup_report(
    manifest: &super::ExportManifest,
    scanned: &super::scan::Scanned,
    analysis: &Analysis,
    ctx: &super::scan::CheckContext<'_>,
    params: &NearDupParams,
) -> DedupReport {
    let (collected, config) = (&scanned.duplicates, ctx.config);
    let shards: Vec<String> = manifest.shards().map(|s| s.key.clone()).collect();
    let cap = config.max_locators;
    let order = |i: u32| {
        let s = &collected.sketches[i as usize];
        (s.shard, s.line, 0u64)
    };

    // Dedup: exact duplicates, and near clusters around representatives in export order.
    let mut dedup = CodeTally::new(cap);
    let mut per_family: BTreeMap<String, FamilyDuplicates> = BTreeMap::new();
    let family = |i: u32| {
        collected.sketches[i as usize]
            .family
            .clone()
            .unwrap_or_else(|| "(no family)".into())
    };
    for i in 0..collected.sketches.len() as u32 {
        per_family.entry(family(i)).or_default().records += 1;
    }
    for &(b, a) in &analysis.exact_extra {
        per_family.entry(family(b)).or_default().exact_duplicates += 1;
        dedup.add(&EXACT_DUPLICATE, order(b), None, || Locator {
            detail: Some(format!(
                "same content as {} ({})",
                collected.sketches[a as usize]
                    .id
                    .as_deref()
                    .unwrap_or("a record without id"),
                at_of(collected, &shards, a)
            )),
            ..locator_of(collected, &shards, b)
        });
    }
    let mut rep_of: Vec<Option<u32>> = vec![None; collected.sketches.len()];
    for p in analysis.pairs.iter().filter(|p| p.kind == PairKind::Near) {
        if rep_of[p.b as usize].is_some() {
            continue;
        }
        let rep = *rep_of[p.a as usize].get_or_insert(p.a);
        if rep != p.a {
            continue;
        }
        rep_of[p.b as usize] = Some(p.a);
        let f = per_family.entry(family(p.b)).or_default();
        f.near_duplicates += 1;
        dedup.add(&NEAR_DUPLICATE, order(p.b), None, || Locator {
            detail: Some(format!(
                "Jaccard {:.3} with {} ({})",
                p.jaccard,
                collected.sketches[p.a as usize]
                    .id
                    .as_deref()
                    .unwrap_or("a record without id"),
                at_of(collected, &shards, p.a)
            )),
            ..locator_of(collected, &shards, p.b)
        });
    }
    for (i, rep) in rep_of.iter().enumerate() {
        if *rep == Some(i as u32) {
            per_family
                .entry(family(i as u32))
                .or_default()
                .near_clusters += 1;
        }
    }
    for f in per_family.values_mut() {
        f.near_duplicate_rate = if f.records == 0 {
            0.0
        } else {
            (f.near_duplicates as f64 / f.records as f64 * 1e6).round() / 1e6
        };
    }
    GateReport::new(
        manifest,
        scanned,
        config,
        GateFindings {
            gate: "dedup",
            method: "exact keys (xxh3-128 of NFKC, case- and whitespace-folded roles and contents); near pairs: MinHash/LSH candidates verified by the Jaccard index of word-shingle sets",
            records: &dedup,
            release: Vec::new(),
            warnings: &[&NEAR_DUPLICATE],
        },
        DedupDetail {
            dedup_version: DEDUP_VERSION.into(),
            near_params: params.clone(),
            records: collected.sketches.len() as u64,
            candidates: analysis.candidates,
            candidates_below_estimate: analysis.below_estimate,
            candidates_verified: analysis.verified,
            largest_bucket: analysis.largest_bucket,
            per_family,
        },
    )
}

/// The leakage report: every cross-split pair with its evidence, and the certificate.
///
/// About 120 lines on purpose: the findings, the certificate and the counts are read off the
/// same pairs, and splitting them would pass the pairs around three times.
fn leakage_report(
    manifest: &super::ExportManifest,
    scanned: &super::scan::Scanned,
    analysis: &Analysis,
    ctx: &super::scan::CheckContext<'_>,
    params: &NearDupParams,
) -> LeakageReport {
    let (collected, registry, config) = (&scanned.duplicates, ctx.registry, ctx.config);
    let shards: Vec<String> = manifest.shards().map(|s| s.key.clone()).collect();
    let cap = config.max_locators;
    let order = |i: u32| {
        let s = &collected.sketches[i as usize];
        (s.shard, s.line, 0u64)
    };

    // Leakage: every pair across splits.
    let holdout: Vec<String> = registry
        .families
        .iter()
        .filter(|(_, f)| f.holdout != Holdout::None)
        .map(|(n, _)| n.clone())
        .collect();
    let is_holdout = |i: u32| {
        collected.sketches[i as usize]
            .family
            .as_ref()
            .is_some_and(|f| holdout.contains(f))
    };
    let mut leaks = CodeTally::new(cap);
    let mut counts: BTreeMap<(Split, Split), SplitPairCount> = BTreeMap::new();
    for (k, a) in Split::ALL.iter().enumerate() {
        for b in &Split::ALL[k + 1..] {
            counts.insert(
                (*a, *b),
                SplitPairCount {
                    splits: format!("{}-{}", a.as_str(), b.as_str()),
                    ..SplitPairCount::default()
                },
            );
        }
    }
    for p in &analysis.pairs {
        let (sa, sb) = (
            collected.sketches[p.a as usize].split,
            collected.sketches[p.b as usize].split,
        );
        let (Some(sa), Some(sb)) = (sa, sb) else {
            continue;
        };
        if sa == sb {
            continue;
        }
        let key = (sa.min(sb), sa.max(sb));
        if let Some(c) = counts.get_mut(&key) {
            match p.kind {
                PairKind::Exact => c.exact += 1,
                PairKind::Near => c.near += 1,
            }
        }
        let code = if is_holdout(p.a) || is_holdout(p.b) {
            &HOLDOUT_LEAK
        } else {
            &SPLIT_LEAK
        };
        leaks.add(code, order(p.b), None, || Locator {
            detail: Some(format!(
                "{} pair ({}, Jaccard {:.3}) with {} ({}, {})",
                match p.kind {
                    PairKind::Exact => "exact",
                    PairKind::Near => "near",
                },
                sb.as_str(),
                p.jaccard,
                collected.sketches[p.a as usize]
                    .id
                    .as_deref()
                    .unwrap_or("a record without id"),
                at_of(collected, &shards, p.a),
                sa.as_str()
            )),
            ..locator_of(collected, &shards, p.b)
        });
    }
    let (release, without_split) = leakage_release_findings(collected, analysis, config);
    let warnings: &[&Code] = match config.leakage.non_holdout {
        LeakPolicy::Fail => &[],
        LeakPolicy::Warn => &[&SPLIT_LEAK],
    };
    GateReport::new(
        manifest,
        scanned,
        config,
        GateFindings {
            gate: "leakage",
            method: "every exact pair and every LSH candidate pair verified by Jaccard, across train/val/test",
            records: &leaks,
            release,
            warnings,
        },
        LeakageDetail {
            certificate: Certificate {
                method: "exact keys + MinHash/LSH candidates; every candidate pair whose signature estimate reaches estimate_floor is verified by the exact Jaccard index of word-shingle sets (32-bit shingle ids)".into(),
                dedup_version: DEDUP_VERSION.into(),
                near_params: params.clone(),
                candidate_probability_at_threshold: (params
                    .candidate_probability(params.threshold)
                    * 1e6)
                    .round()
                    / 1e6,
                records: collected.sketches.len() as u64,
                records_without_split: without_split as u64,
                candidates: analysis.candidates,
                estimate_floor: (params.estimate_floor() * 1e6).round() / 1e6,
                candidates_below_estimate: analysis.below_estimate,
                candidates_verified: analysis.verified,
                complete: !analysis.over_limit,
                pairs: counts.into_values().collect(),
                holdout_families: holdout,
                non_holdout_policy: config.leakage.non_holdout,
            },
        },
    )
}

/// The leakage gate's findings about the export as a whole, and how many records have no
/// split.
fn leakage_release_findings(
    collected: &Collected,
    analysis: &Analysis,
    config: &super::GatesConfig,
) -> (Vec<Finding>, usize) {
    let mut release = Vec::new();
    if analysis.over_limit {
        release.push(Finding::new(
            &TOO_MANY_CANDIDATES,
            Severity::Error,
            "export".into(),
            format!(
                "{} candidate pairs (largest bucket {}) exceed [gates.leakage] max_candidates {}: near pairs were not verified, so the release cannot be certified",
                analysis.candidates,
                analysis.largest_bucket,
                config.leakage.max_candidates
            ),
        ));
    }
    let without_split = collected
        .sketches
        .iter()
        .filter(|s| s.split.is_none())
        .count();
    if without_split > 0 {
        release.push(Finding::new(
            &NO_SPLIT,
            Severity::Error,
            "export".into(),
            format!(
                "{without_split} records have no valid metadata.split: their leakage cannot be judged"
            ),
        ));
    }
    (release, without_split)
}
/// `dedup     pass: N records, … duplicates left (… candidate pairs, … verified)`.
impl super::gate::Headline for DedupDetail {
    fn headline(&self, verdict: crate::report::Verdict) -> Vec<String> {
        let (exact, near): (u64, u64) = self.per_family.values().fold((0, 0), |(e, n), f| {
            (e + f.exact_duplicates, n + f.near_duplicates)
        });
        vec![format!(
            "dedup     {}: {} records, {} exact and {} near duplicates left ({} candidate pairs, {} verified)",
            verdict.as_str(),
            self.records,
            exact,
            near,
            self.candidates,
            self.candidates_verified,
        )]
    }
}

/// `leakage   pass: <pairs per split pair>; certificate complete`.
impl super::gate::Headline for LeakageDetail {
    fn headline(&self, verdict: crate::report::Verdict) -> Vec<String> {
        let c = &self.certificate;
        vec![format!(
            "leakage   {}: {}; certificate {}",
            verdict.as_str(),
            c.pairs
                .iter()
                .map(|p| format!("{} {} exact + {} near", p.splits, p.exact, p.near))
                .collect::<Vec<_>>()
                .join(", "),
            if c.complete { "complete" } else { "INCOMPLETE" },
        )]
    }
}
