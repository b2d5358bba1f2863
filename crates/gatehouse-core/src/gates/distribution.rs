//! The distribution gate: what the export looks like, per family × split, per family and
//! per stage, and whether that is what was expected.
//!
//! During the gates' scan every record's turns (in all and per role), characters and
//! **tokens** (counted afresh with the configured tokenizer), per message and in total, are
//! collected. They are summarised as count, mean, standard deviation, min, p5, p25, p50,
//! p75, p95, p99, max and a histogram on fixed edges (so releases compare bin by bin),
//! with role balance and the share of records over the training `max_seq_length`.
//! Statistics sort their values first, so they do not depend on thread count.
//!
//! Checks:
//! - **expected ranges** per family (`[gates.distribution.ranges.<family>]`: tokens mean and
//!   max, turns mean and max): outside a range fails (DIST001); `warning_margin` (20%)
//!   inside a bound warns (DIST002); a family without ranges is stated (DIST006);
//! - **regression** against the last *published* release (a draft or failed run is never
//!   a baseline): per family × split, the relative change of the token and turn means
//!   (DIST003) and the population stability index of the token histogram (DIST004) over
//!   their thresholds block; the first release has no baseline, which is stated (DIST005).
//!
//! Findings name families and splits, never records or text; all are waivable per family.
//!
//! Over 600 lines: the statistics, range and regression checks share the samples and
//! findings of one gate; they are split when a second gate needs the statistics.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::gate::{Finish, Finished, RecordCheck};
use super::scan::{At, CheckContext, ExportedRecord};
use super::{GateError, GateFindings, GateReport};
use crate::build::Split;
use crate::layout;
use crate::report::codes::distribution::{
    BAD_BASELINE, MEAN_REGRESSION, NEAR_BOUND, NO_BASELINE, NO_RANGES, OUT_OF_RANGE,
    SHAPE_REGRESSION,
};
use crate::report::{Code, Finding, Severity};
use crate::store::Store;
use crate::waiver::{self, Subject, WaiverStatus};

pub use crate::contract::gates::{
    Baseline, DistributionConfig, DistributionDetail, DistributionReport, FamilyRanges, GroupStats,
    Histogram, RangeCheck, RegressionCheck, RegressionConfig, RoleShare, Stats,
};

impl Default for RegressionConfig {
    fn default() -> Self {
        Self {
            max_relative_change: 0.25,
            max_psi: 0.25,
        }
    }
}

impl DistributionConfig {
    /// The ranges in force: the prototype's defaults, with the configured families over
    /// them.
    pub fn effective_ranges(&self) -> BTreeMap<String, FamilyRanges> {
        let mut ranges = default_ranges();
        ranges.extend(self.ranges.clone());
        ranges
    }
}

impl Default for DistributionConfig {
    fn default() -> Self {
        Self {
            max_seq_length: 4096,
            warning_margin: 0.2,
            ranges: BTreeMap::new(),
            regression: RegressionConfig::default(),
        }
    }
}

/// The prototype's expectations (tokens mean / tokens max / turns mean / turns max);
/// priority_datasets had none.
pub fn default_ranges() -> BTreeMap<String, FamilyRanges> {
    {
        let r = |tm: [f64; 2], tx: [f64; 2], um: [f64; 2], ux: [f64; 2]| FamilyRanges {
            tokens_mean: Some(tm),
            tokens_max: Some(tx),
            turns_mean: Some(um),
            turns_max: Some(ux),
        };
        [
            (
                "professional_therapeutic",
                r([50.0, 500.0], [100.0, 2000.0], [2.0, 20.0], [5.0, 50.0]),
            ),
            (
                "cot_reasoning",
                r([100.0, 1000.0], [200.0, 3000.0], [1.0, 10.0], [1.0, 20.0]),
            ),
            (
                "edge_cases",
                r([20.0, 300.0], [50.0, 1000.0], [2.0, 15.0], [3.0, 30.0]),
            ),
            (
                "voice_persona",
                r([100.0, 800.0], [200.0, 2000.0], [1.0, 5.0], [1.0, 15.0]),
            ),
        ]
        .into_iter()
        .map(|(f, r)| (f.to_string(), r))
        .collect()
    }
}

impl DistributionConfig {
    pub fn problem(&self) -> Option<String> {
        if !(0.0..0.5).contains(&self.warning_margin) {
            return Some("distribution.warning_margin must be in [0, 0.5)".into());
        }
        for (family, r) in &self.effective_ranges() {
            for (name, range) in [
                ("tokens_mean", r.tokens_mean),
                ("tokens_max", r.tokens_max),
                ("turns_mean", r.turns_mean),
                ("turns_max", r.turns_max),
            ] {
                if let Some([lo, hi]) = range
                    && !(lo.is_finite() && hi.is_finite() && lo <= hi)
                {
                    return Some(format!(
                        "distribution.ranges.{family}.{name} must be [low, high] with low <= high"
                    ));
                }
            }
        }
        None
    }
}

/// Histogram edges: a value `v` falls in bin `i` when `edges[i] <= v < edges[i + 1]`; the
/// last bin is open.
pub const TOKEN_EDGES: [u64; 13] = [
    0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768,
];
pub const TURN_EDGES: [u64; 13] = [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64];
pub const CHAR_EDGES: [u64; 13] = [
    0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072,
];

/// The values collected for one family × split.
#[derive(Debug, Clone, Default)]
pub(super) struct Samples {
    tokens: Vec<u32>,
    turns: Vec<u32>,
    chars: Vec<u32>,
    message_tokens: Vec<u32>,
    message_chars: Vec<u32>,
    roles: BTreeMap<String, u64>,
    over_max: u64,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.tokens.extend(other.tokens);
        self.turns.extend(other.turns);
        self.chars.extend(other.chars);
        self.message_tokens.extend(other.message_tokens);
        self.message_chars.extend(other.message_chars);
        for (r, n) in other.roles {
            *self.roles.entry(r).or_default() += n;
        }
        self.over_max += other.over_max;
    }
}

/// The distribution check's share of a scan.
#[derive(Debug, Clone, Default)]
pub(super) struct DistributionCheck {
    pub groups: BTreeMap<(String, Option<Split>), Samples>,
}

impl RecordCheck for DistributionCheck {
    fn new(_: &CheckContext<'_>) -> Self {
        Self::default()
    }

    fn observe(&mut self, ctx: &CheckContext<'_>, rec: &ExportedRecord, _: &[u8], _: At<'_>) {
        let (counter, max_seq_length) = (&ctx.tokens, ctx.config.distribution.max_seq_length);
        let meta = rec.metadata.as_ref();
        let family = rec.family().unwrap_or("(no family)").to_string();
        let split = meta
            .and_then(|m| m.split.as_deref())
            .and_then(|s| Split::ALL.into_iter().find(|x| x.as_str() == s));
        let g = self.groups.entry((family, split)).or_default();
        let (mut tokens, mut chars) = (0u64, 0u64);
        for m in &rec.messages {
            let t = counter.count(&m.content);
            let c = m.content.chars().count() as u64;
            tokens += t;
            chars += c;
            g.message_tokens.push(clamp(t));
            g.message_chars.push(clamp(c));
            *g.roles.entry(m.role.clone()).or_default() += 1;
        }
        g.tokens.push(clamp(tokens));
        g.turns.push(clamp(rec.messages.len() as u64));
        g.chars.push(clamp(chars));
        if tokens > max_seq_length {
            g.over_max += 1;
        }
    }

    fn merge(&mut self, other: DistributionCheck) {
        for (k, s) in other.groups {
            self.groups.entry(k).or_default().merge(s);
        }
    }
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Statistics of `values` (sorted here: the result does not depend on their order).
pub fn stats(values: &mut [u32], edges: &[u64]) -> Stats {
    values.sort_unstable();
    let n = values.len();
    let mut counts = vec![0u64; edges.len()];
    for &v in values.iter() {
        let bin = edges
            .partition_point(|&e| e <= u64::from(v))
            .saturating_sub(1);
        counts[bin] += 1;
    }
    let histogram = Histogram {
        edges: edges.to_vec(),
        counts,
    };
    if n == 0 {
        return Stats {
            count: 0,
            mean: 0.0,
            stdev: 0.0,
            min: 0,
            p5: 0,
            p25: 0,
            p50: 0,
            p75: 0,
            p95: 0,
            p99: 0,
            max: 0,
            histogram,
        };
    }
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let mean = sum / n as f64;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    // Nearest rank: the smallest value with at least p% of values at or below it.
    let pct = |p: f64| u64::from(values[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1]);
    Stats {
        count: n as u64,
        mean: round(mean),
        stdev: round(var.sqrt()),
        min: u64::from(values[0]),
        p5: pct(5.0),
        p25: pct(25.0),
        p50: pct(50.0),
        p75: pct(75.0),
        p95: pct(95.0),
        p99: pct(99.0),
        max: u64::from(values[n - 1]),
        histogram,
    }
}

fn group(family: &str, split: &str, stage: &str, s: &mut Samples) -> GroupStats {
    let records = s.tokens.len() as u64;
    let total_turns: u64 = s.roles.values().sum();
    GroupStats {
        family: family.to_string(),
        split: split.to_string(),
        stage: stage.to_string(),
        records,
        tokens: stats(&mut s.tokens, &TOKEN_EDGES),
        turns: stats(&mut s.turns, &TURN_EDGES),
        chars: stats(&mut s.chars, &CHAR_EDGES),
        message_tokens: stats(&mut s.message_tokens, &TOKEN_EDGES),
        message_chars: stats(&mut s.message_chars, &CHAR_EDGES),
        roles: s
            .roles
            .iter()
            .map(|(r, n)| {
                (
                    r.clone(),
                    RoleShare {
                        turns: *n,
                        share: round(*n as f64 / total_turns.max(1) as f64),
                    },
                )
            })
            .collect(),
        over_max_seq_length: s.over_max,
        over_max_seq_length_share: round(s.over_max as f64 / records.max(1) as f64),
    }
}

/// The last published release other than `current`.
fn last_published(store: &Store, current: &str) -> Result<Option<String>, GateError> {
    let exports = store.exports_prefix();
    let mut published = Vec::new();
    for info in store.list(&layout::releases_prefix(exports)) {
        let info = info?;
        if let Some(version) = layout::published_version(exports, &info.key)
            && version != current
        {
            published.push(version.to_string());
        }
    }
    published.sort();
    Ok(published.pop())
}

/// What the regression check reads of a baseline's report: only what it compares, so a
/// report with more (or newer) fields still serves.
#[derive(Debug, Deserialize)]
struct BaselineReport {
    release_digest: Option<String>,
    groups: Vec<BaselineGroup>,
}

#[derive(Debug, Deserialize)]
struct BaselineGroup {
    family: String,
    split: String,
    tokens: BaselineStats,
    turns: BaselineStats,
}

#[derive(Debug, Deserialize)]
struct BaselineStats {
    mean: f64,
    histogram: Histogram,
}

/// Population stability index between two histograms on the same edges (a small floor
/// keeps empty bins finite).
pub fn psi(baseline: &[u64], current: &[u64]) -> f64 {
    let (tb, tc) = (
        baseline.iter().sum::<u64>().max(1) as f64,
        current.iter().sum::<u64>().max(1) as f64,
    );
    baseline
        .iter()
        .zip(current)
        .map(|(&b, &c)| {
            let (pb, pc) = ((b as f64 / tb).max(1e-4), (c as f64 / tc).max(1e-4));
            (pc - pb) * (pc / pb).ln()
        })
        .sum()
}

/// The distribution gate.
pub(super) fn finish(f: &mut Finish<'_, '_>) -> Result<Finished, GateError> {
    report(f.store, f.manifest, &mut f.scanned, f.ctx).map(Finished::report)
}

/// Builds the report from the collected samples.
pub(super) fn report(
    store: &Store,
    manifest: &super::ExportManifest,
    scanned: &mut super::scan::Scanned,
    ctx: &CheckContext<'_>,
) -> Result<DistributionReport, GateError> {
    let (registry, config) = (ctx.registry, ctx.config);
    let dc = &config.distribution;
    let stage_of = |family: &str| {
        registry
            .families
            .get(family)
            .map_or_else(|| "(unknown)".to_string(), |f| f.stage.clone())
    };
    let collected = std::mem::take(&mut scanned.checks.distribution.groups);
    let mut groups = Vec::new();
    let mut per_family: BTreeMap<String, Samples> = BTreeMap::new();
    let mut per_stage: BTreeMap<String, Samples> = BTreeMap::new();
    for ((family, split), mut s) in collected {
        per_family
            .entry(family.clone())
            .or_default()
            .merge(s.clone());
        per_stage
            .entry(stage_of(&family))
            .or_default()
            .merge(s.clone());
        let split = split.map_or("(none)", Split::as_str);
        groups.push(group(&family, split, &stage_of(&family), &mut s));
    }
    for (family, mut s) in per_family {
        groups.push(group(&family, "all", &stage_of(&family), &mut s));
    }
    let stages: Vec<GroupStats> = per_stage
        .into_iter()
        .map(|(stage, mut s)| group("(all)", "all", &stage, &mut s))
        .collect();

    let mut out = Findings {
        ctx,
        release: Vec::new(),
    };
    let (range_checks, ranges) = check_ranges(&groups, dc, &mut out);
    let (baseline, regression_checks) = check_regression(store, manifest, &groups, dc, &mut out)?;
    let release = out.release;

    let empty = super::scan::CodeTally::new(config.max_locators);
    Ok(GateReport::new(
        manifest,
        scanned,
        config,
        GateFindings {
            gate: "distribution",
            method: "turns, characters and tokens (counted afresh) of every record, per family × split, family and stage; expected ranges per family; regression against the last published release (relative change of means, PSI of the token histogram)",
            records: &empty,
            release,
            warnings: &[],
        },
        DistributionDetail {
            tokenizer: ctx.tokens.label(),
            tokens_definition: gatehouse_text::tokens::DEFINITION.into(),
            max_seq_length: dc.max_seq_length,
            groups,
            stages,
            range_checks,
            baseline,
            regression_checks,
            ranges,
        },
    ))
}

/// The distribution gate's findings, each judged against the waivers of its family.
struct Findings<'x, 'c> {
    ctx: &'x CheckContext<'c>,
    release: Vec<Finding>,
}

impl Findings<'_, '_> {
    fn push(&mut self, code: &Code, severity: Severity, family: &str, message: String) {
        let waiver = if severity >= Severity::Warning {
            waiver::find(
                self.ctx.waivers,
                code.id,
                Subject {
                    family: Some(family),
                    dataset: None,
                    record: None,
                },
                self.ctx.as_of,
            )
        } else {
            None
        };
        let applied = waiver
            .as_ref()
            .is_some_and(|w| w.status == WaiverStatus::Applied);
        let severity = if applied && severity == Severity::Error {
            Severity::Warning
        } else {
            severity
        };
        self.release.push(Finding {
            waiver,
            ..Finding::new(code, severity, family.to_string(), message)
        });
    }
}

/// Expected ranges, per family over all splits; returns the checks and the ranges in force.
fn check_ranges(
    groups: &[GroupStats],
    dc: &DistributionConfig,
    out: &mut Findings<'_, '_>,
) -> (Vec<RangeCheck>, BTreeMap<String, FamilyRanges>) {
    let mut range_checks = Vec::new();
    let ranges = dc.effective_ranges();
    for g in groups.iter().filter(|g| g.split == "all") {
        let Some(r) = ranges
            .get(&g.family)
            .filter(|r| **r != FamilyRanges::default())
        else {
            out.push(
                &NO_RANGES,
                Severity::Info,
                &g.family,
                format!("family {} has no expected ranges configured", g.family),
            );
            continue;
        };
        for (metric, value, range) in [
            ("tokens_mean", g.tokens.mean, r.tokens_mean),
            ("tokens_max", g.tokens.max as f64, r.tokens_max),
            ("turns_mean", g.turns.mean, r.turns_mean),
            ("turns_max", g.turns.max as f64, r.turns_max),
        ] {
            let Some([lo, hi]) = range else { continue };
            let m = dc.warning_margin;
            let status = if value < lo || value > hi {
                "out_of_range"
            } else if value < lo * (1.0 + m) || value > hi * (1.0 - m) {
                "near_bound"
            } else {
                "ok"
            };
            match status {
                "out_of_range" => out.push(
                    &OUT_OF_RANGE,
                    Severity::Error,
                    &g.family,
                    format!(
                        "{} {metric} is {value}, outside the expected [{lo}, {hi}]",
                        g.family
                    ),
                ),
                "near_bound" => out.push(
                    &NEAR_BOUND,
                    Severity::Warning,
                    &g.family,
                    format!(
                        "{} {metric} is {value}, less than {:.0}% inside a bound of [{lo}, {hi}]",
                        g.family,
                        dc.warning_margin * 100.0
                    ),
                ),
                _ => {}
            }
            range_checks.push(RangeCheck {
                family: g.family.clone(),
                metric: metric.into(),
                value,
                range: [lo, hi],
                status: status.into(),
            });
        }
    }
    (range_checks, ranges)
}

/// Regression against the last published release: the baseline (if any) and the checks.
fn check_regression(
    store: &Store,
    manifest: &super::ExportManifest,
    groups: &[GroupStats],
    dc: &DistributionConfig,
    out: &mut Findings<'_, '_>,
) -> Result<(Option<Baseline>, Vec<RegressionCheck>), GateError> {
    let mut baseline = None;
    let mut regression_checks = Vec::new();
    match last_published(store, &manifest.release_version)? {
        None => out.push(
            &NO_BASELINE,
            Severity::Info,
            "release",
            "no earlier release is published: this is the first release, with no baseline to compare against".into(),
        ),
        Some(version) => {
            let key = layout::DISTRIBUTION_REPORT
                .at(&layout::release_location(store.exports_prefix(), &version));
            let parsed = store
                .get_bytes(&key)
                .ok()
                .and_then(|b| serde_json::from_slice::<BaselineReport>(&b).ok());
            match parsed {
                None => out.push(
                    &BAD_BASELINE,
                    Severity::Error,
                    "release",
                    format!("published release {version} has no readable {key}: regression cannot be judged"),
                ),
                Some(b) => {
                    let rc = &dc.regression;
                    for g in groups.iter().filter(|g| g.split != "all") {
                        let Some(old) = b
                            .groups
                            .iter()
                            .find(|o| o.family == g.family && o.split == g.split)
                        else {
                            continue;
                        };
                        for (metric, was, now) in [
                            ("tokens_mean", old.tokens.mean, g.tokens.mean),
                            ("turns_mean", old.turns.mean, g.turns.mean),
                        ] {
                            let change = if was == 0.0 { 0.0 } else { (now - was).abs() / was };
                            let regressed = change > rc.max_relative_change;
                            if regressed {
                                out.push(
                                    &MEAN_REGRESSION,
                                    Severity::Error,
                                    &g.family,
                                    format!(
                                        "{} {} {metric} moved from {was} to {now} ({:+.1}%), over {:.0}%",
                                        g.family,
                                        g.split,
                                        (now - was) / was * 100.0,
                                        rc.max_relative_change * 100.0
                                    ),
                                );
                            }
                            regression_checks.push(RegressionCheck {
                                family: g.family.clone(),
                                split: g.split.clone(),
                                metric: metric.into(),
                                baseline: was,
                                current: now,
                                value: round(change),
                                threshold: rc.max_relative_change,
                                regressed,
                            });
                        }
                        if old.tokens.histogram.edges == g.tokens.histogram.edges {
                            let v = psi(&old.tokens.histogram.counts, &g.tokens.histogram.counts);
                            let regressed = v > rc.max_psi;
                            if regressed {
                                out.push(
                                    &SHAPE_REGRESSION,
                                    Severity::Error,
                                    &g.family,
                                    format!(
                                        "{} {} token distribution shifted: PSI {v:.3} over {}",
                                        g.family, g.split, rc.max_psi
                                    ),
                                );
                            }
                            regression_checks.push(RegressionCheck {
                                family: g.family.clone(),
                                split: g.split.clone(),
                                metric: "tokens_psi".into(),
                                baseline: 0.0,
                                current: round(v),
                                value: round(v),
                                threshold: rc.max_psi,
                                regressed,
                            });
                        }
                    }
                    baseline = Some(Baseline {
                        release_version: version,
                        release_digest: b.release_digest,
                        report: key,
                    });
                }
            }
        }
    }
    Ok((baseline, regression_checks))
}

/// `distribution pass: N family × split groups, … range checks, … over max_seq_length …`.
impl super::gate::Headline for DistributionDetail {
    fn headline(&self, verdict: crate::report::Verdict) -> Vec<String> {
        let over: u64 = self
            .groups
            .iter()
            .filter(|g| g.split == "all")
            .map(|g| g.over_max_seq_length)
            .sum();
        vec![format!(
            "distribution {}: {} family × split groups, {} range checks, {} over max_seq_length {} ({}); {}",
            verdict.as_str(),
            self.groups.iter().filter(|g| g.split != "all").count(),
            self.range_checks.len(),
            over,
            self.max_seq_length,
            self.tokenizer,
            match &self.baseline {
                Some(b) => format!("compared with published {}", b.release_version),
                None => "first release: no baseline".to_string(),
            }
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_use_nearest_rank_and_fixed_bins() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        let s = stats(&mut v, &TOKEN_EDGES);
        assert_eq!((s.count, s.min, s.max), (100, 1, 100));
        assert_eq!(
            (s.p5, s.p25, s.p50, s.p75, s.p95, s.p99),
            (5, 25, 50, 75, 95, 99)
        );
        assert_eq!(s.mean, 50.5);
        assert_eq!(s.histogram.counts[..4], [15, 16, 32, 37]);
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 100);
        let empty = stats(&mut [], &TURN_EDGES);
        assert_eq!((empty.count, empty.mean), (0, 0.0));
    }

    #[test]
    fn psi_is_zero_for_the_same_shape_and_grows_with_a_shift() {
        let a = [10, 20, 30, 40];
        assert!(psi(&a, &[20, 40, 60, 80]).abs() < 1e-12);
        assert!(psi(&a, &[40, 30, 20, 10]) > 0.25);
    }

    #[test]
    fn default_ranges_are_the_prototypes_and_validate() {
        let mut c = DistributionConfig::default();
        assert!(c.problem().is_none());
        let r = c.effective_ranges();
        assert!(!r.contains_key("priority_datasets"));
        assert_eq!(r["edge_cases"].tokens_mean, Some([20.0, 300.0]));
        c.ranges.insert(
            "edge_cases".into(),
            FamilyRanges {
                turns_mean: Some([1.0, 3.0]),
                ..FamilyRanges::default()
            },
        );
        let r = c.effective_ranges();
        assert_eq!(r["edge_cases"].tokens_mean, None);
        assert_eq!(r["voice_persona"].turns_mean, Some([1.0, 5.0]));
        c.ranges.insert(
            "cot_reasoning".into(),
            FamilyRanges {
                turns_mean: Some([3.0, 1.0]),
                ..FamilyRanges::default()
            },
        );
        assert!(c.problem().is_some());
    }
}
