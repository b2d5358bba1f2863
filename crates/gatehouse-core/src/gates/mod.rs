//! `gates`: verify a built release independently of the build that made it.
//!
//! The gates read the release's `manifest.json` and then **every line of every shard** it
//! lists, once: the shards are streamed in batches that worker threads check in parallel,
//! while the reader verifies each shard's sha256 and record count against the manifest. Each
//! record goes through the privacy check (a fresh PII scan of every message, whatever the
//! build recorded) and the provenance check (dataset, source key and line, source sha256,
//! licence and pipeline, compared with the manifest and the registry). Anything that cannot
//! be read fails both gates with its `key:line`; nothing is skipped.
//!
//! Reports are written to `gates/` in the release's draft folder. They hold counts, finding
//! codes and locators (`shard:line`, record id, `source_key:line`, char offsets), never text.
//! The privacy gate also draws a seeded spot-check sample of whole (redacted) records for a
//! human to read: `gates/pii_spot_check_sample.jsonl`. Every record is also sketched for the
//! dedup and leakage gates (`duplicates.rs`).

pub mod distribution;
pub mod duplicates;
mod gate;
pub mod privacy;
pub mod provenance;
mod scan;

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Instant;

use thiserror::Error;

use crate::build::dedup::DedupConfig;
use crate::layout;
use crate::privacy::EvaluationConfig;
use crate::registry::Registry;
use crate::report::{Code, Finding, Severity, Verdict, generated_by, verdict_of};
use crate::source::Limits;
use crate::store::{Store, StoreError};
use crate::waiver::{Waiver, WaiverStatus, WaiverUse};
use gatehouse_text::pii::Detector;

pub use scan::{ExportManifest, Locator, ShardCheck};

use gate::{Finish, GateDef, gate, record_checks};

/// Every gate, in the order they run and are shown: name, report file, finish (`gate.rs`).
/// A new gate is a file with its `finish` and its detail's `Headline`, and a line here
/// (and, if it checks records, a line in [`Checks`]); [`layout::GATE_REPORTS`] lists the
/// same files.
#[rustfmt::skip]
const GATES: [GateDef; 5] = [
    gate("privacy", layout::PII_REPORT, privacy::finish),
    gate("provenance", layout::PROVENANCE_REPORT, provenance::finish),
    gate("dedup", layout::DEDUP_REPORT, duplicates::finish_dedup),
    gate("leakage", layout::LEAKAGE_REPORT, duplicates::finish_leakage),
    gate("distribution", layout::DISTRIBUTION_REPORT, distribution::finish),
];

record_checks! {
    /// Every per-record check of the one scan (`gate::RecordCheck`), one line each.
    #[derive(Debug)]
    Checks {
        privacy: privacy::PrivacyCheck,
        provenance: provenance::ProvenanceCheck,
        distribution: distribution::DistributionCheck,
    }
}

pub use crate::contract::gates::{
    CodeCount, GateReport, GateSummary, GatesConfig, SpotCheckConfig,
};

/// Gate report schema version.
pub const SCHEMA_VERSION: u32 = 1;

impl GatesConfig {
    /// Every problem with `[gates]`: the gates refuse to start on the first, and
    /// [`crate::config::Settings::problems`] lists them all before any stage runs.
    pub fn problems(&self) -> Vec<String> {
        [
            (!(0.0..=1.0).contains(&self.spot_check.rate))
                .then(|| "spot_check.rate must be between 0 and 1".to_string()),
            self.distribution.problem(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl Default for GatesConfig {
    fn default() -> Self {
        Self {
            max_locators: 100,
            spot_check: SpotCheckConfig::default(),
            leakage: duplicates::LeakageConfig::default(),
            distribution: distribution::DistributionConfig::default(),
        }
    }
}

impl Default for SpotCheckConfig {
    fn default() -> Self {
        Self {
            rate: 0.10,
            max: 500,
            seed: 1,
        }
    }
}

#[derive(Debug, Error)]
pub enum GateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: no manifest; this release has not been built")]
    NotBuilt { key: String },
    #[error("{key}: not a gatehouse manifest ({detail})")]
    BadManifest { key: String, detail: String },
    #[error("reading {key} failed")]
    Read {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid [gates] configuration: {0}")]
    Config(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("cannot serialise the {0} report")]
    Serialise(&'static str, #[source] serde_json::Error),
}

impl GateError {
    pub fn hint(&self) -> Option<String> {
        match self {
            GateError::Store(e) => e.hint(),
            GateError::NotBuilt { .. } => Some(
                "run `gatehouse build --release-version …` (or `gatehouse release`) first".into(),
            ),
            GateError::BadManifest { .. } => {
                Some("rebuild the release; a manifest is never edited by hand".into())
            }
            GateError::Config(_) => Some("fix [gates] in gatehouse.toml (see README.md)".into()),
            _ => None,
        }
    }
}

impl CodeCount {
    pub fn blocking(&self) -> u64 {
        self.found - self.waived
    }
}

/// What one gate found, ready to become its report.
struct GateFindings<'a> {
    gate: &'static str,
    method: &'static str,
    /// The gate's per-record findings (the export's integrity findings are added to them).
    records: &'a scan::CodeTally,
    /// Findings about the release as a whole, one occurrence each.
    release: Vec<Finding>,
    /// Per-record codes that warn instead of blocking.
    warnings: &'a [&'static Code],
}

impl<D> GateReport<D> {
    fn new(
        manifest: &ExportManifest,
        scanned: &scan::Scanned,
        config: &GatesConfig,
        found: GateFindings<'_>,
        detail: D,
    ) -> Self {
        let mut all = scanned.integrity.clone();
        all.merge(found.records.clone());
        let mut counts: BTreeMap<String, CodeCount> = all
            .counts
            .iter()
            .map(|(k, v)| (k.id.to_string(), *v))
            .collect();
        let mut findings: Vec<Finding> = all
            .counts
            .iter()
            .map(|(code, c)| {
                Finding::new(
                    code,
                    if c.blocking() == 0 {
                        Severity::Info
                    } else if found.warnings.contains(code) {
                        Severity::Warning
                    } else {
                        Severity::Error
                    },
                    "export".into(),
                    if c.waived == 0 {
                        format!("{} occurrences in the export", c.found)
                    } else {
                        format!(
                            "{} occurrences in the export, {} of them waived",
                            c.found, c.waived
                        )
                    },
                )
            })
            .collect();
        let mut waivers = all.waivers;
        for f in found.release {
            let c = counts.entry(f.code.to_string()).or_default();
            c.found += 1;
            if let Some(w) = &f.waiver {
                if w.status == WaiverStatus::Applied {
                    c.waived += 1;
                }
                if !waivers.contains(w) {
                    waivers.push(w.clone());
                }
            }
            findings.push(f);
        }
        GateReport {
            schema_version: SCHEMA_VERSION,
            gate: found.gate.into(),
            generated_by: generated_by(),
            release_version: manifest.release_version.clone(),
            release_digest: manifest.digest.clone(),
            verdict: verdict_of(&findings),
            blocking: true,
            method: found.method.into(),
            counts,
            findings,
            locators: all
                .locators
                .into_iter()
                .map(|(k, v)| (k.id.to_string(), v.into_values()))
                .collect(),
            shards: scanned.shards.clone(),
            detail,
            waivers,
            config: config.clone(),
        }
    }
}

/// The waivers one gate used, as its report lists them.
#[derive(Debug, Clone)]
pub struct GateWaivers {
    pub gate: &'static str,
    pub waivers: Vec<WaiverUse>,
}

/// What a gates run produced.
#[derive(Debug, Clone)]
pub struct GatesOutcome {
    // The typed reports, for callers that read a gate's detail (the CLI's summary, tests);
    // a new gate needs a field here only if one does.
    pub privacy: privacy::PrivacyReport,
    pub provenance: provenance::ProvenanceReport,
    pub dedup: duplicates::DedupReport,
    pub leakage: duplicates::LeakageReport,
    pub distribution: distribution::DistributionReport,
    /// One per gate, in the order they run.
    pub summaries: Vec<GateSummary>,
    /// What each gate says for people, in the order they run: its headline and findings.
    pub lines: Vec<GateLines>,
    /// The waivers each gate applied (or found expired), one entry per gate in the same order.
    pub waivers: Vec<GateWaivers>,
    pub written: Vec<String>,
    /// Every blocking gate passed (warnings allowed).
    pub passed: bool,
}

/// A gate's headline (its name, verdict and what it measured) and its findings, for
/// people; the CLI prints them for every gate alike.
#[derive(Debug, Clone)]
pub struct GateLines {
    pub gate: &'static str,
    pub headline: Vec<String>,
    pub findings: Vec<crate::report::Finding>,
}

/// The settings the gates judge by.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub config: &'a GatesConfig,
    pub waivers: &'a [Waiver],
    /// The day waivers are judged on.
    pub as_of: chrono::NaiveDate,
    /// The build's limits (the longest record line a shard may hold follows from them).
    pub limits: &'a Limits,
    /// The build's duplicate definitions, which the dedup and leakage gates apply.
    pub dedup: &'a DedupConfig,
    /// The tokenizer the distribution gate counts with (the build's).
    pub tokenizer: &'a gatehouse_text::TokenizerSpec,
    /// The PII detector, built from `[privacy]`: the same one the build redacted with.
    pub detector: &'a Detector,
    /// `[privacy.evaluation]`: labelled sets the privacy gate scores on every run.
    pub evaluation: &'a EvaluationConfig,
}

/// Runs every gate of `GATES` over the release at `location` (its draft folder): the one
/// scan, each gate's `finish`, then every report written in table order, and report.html.
pub fn run(
    store: &Store,
    registry: &Registry,
    location: &str,
    policy: Policy<'_>,
) -> Result<GatesOutcome, GateError> {
    let config = policy.config;
    if let Some(p) = config.problems().into_iter().next() {
        return Err(GateError::Config(p));
    }
    let started = Instant::now();
    let manifest = scan::read_manifest(store, location)?;
    let tokens = policy.tokenizer.counter().map_err(GateError::Config)?;
    let ctx = scan::CheckContext::new(registry, &manifest, policy, tokens);
    if let Some(p) = policy.dedup.near_params.problem() {
        return Err(GateError::Config(p));
    }
    let sketcher = duplicates::Sketcher::new(policy.dedup);
    let scanned = scan::scan(store, &manifest, &ctx, policy.limits, &sketcher)?;
    let elapsed = started.elapsed();
    let analysis = duplicates::analyse(
        &scanned.duplicates,
        &policy.dedup.near_params,
        config.leakage.max_candidates,
    )?;
    let mut finish = Finish {
        store,
        manifest: &manifest,
        ctx: &ctx,
        policy,
        scanned,
        analysis,
        elapsed,
    };
    // Every gate finishes before the first report is written.
    let finished = GATES
        .iter()
        .map(|g| (g.finish)(&mut finish).map(|f| (g, f)))
        .collect::<Result<Vec<_>, _>>()?;

    let mut written = Vec::new();
    let mut summaries = Vec::new();
    let mut lines = Vec::new();
    let mut waivers = Vec::new();
    let mut reports: BTreeMap<&'static str, Box<dyn Any>> = BTreeMap::new();
    for (g, f) in finished {
        for (file, bytes) in f.also {
            let key = file.at(location);
            store.put(&key, bytes)?;
            written.push(key);
        }
        let key = g.file.at(location);
        let json = f
            .report
            .json()
            .map_err(|e| GateError::Serialise(g.name, e))?;
        store.put(&key, json)?;
        written.push(key.clone());
        summaries.push(GateSummary {
            gate: g.name.into(),
            verdict: f.report.verdict(),
            blocking: true,
            report: key,
            blocking_counts: blocking_counts(f.report.counts()),
        });
        lines.push(GateLines {
            gate: g.name,
            headline: f.report.headline(),
            findings: f.report.findings().to_vec(),
        });
        waivers.push(GateWaivers {
            gate: g.name,
            waivers: f.report.waivers().to_vec(),
        });
        reports.insert(g.name, f.report.into_any());
    }
    // The page renders the reports just written (and the coverage and build reports).
    written.push(crate::html::write(store, location).map_err(|e| match e {
        crate::html::HtmlError::Store(e) => GateError::Store(e),
        other => GateError::Internal(other.to_string()),
    })?);

    let passed = summaries.iter().all(|s| s.verdict != Verdict::Fail);
    Ok(GatesOutcome {
        privacy: take(&mut reports, "privacy")?,
        provenance: take(&mut reports, "provenance")?,
        dedup: take(&mut reports, "dedup")?,
        leakage: take(&mut reports, "leakage")?,
        distribution: take(&mut reports, "distribution")?,
        summaries,
        lines,
        waivers,
        written,
        passed,
    })
}

/// The typed report of the gate `name`, for [`GatesOutcome`]'s fields.
fn take<R: 'static>(
    reports: &mut BTreeMap<&'static str, Box<dyn Any>>,
    name: &str,
) -> Result<R, GateError> {
    reports
        .remove(name)
        .and_then(|r| r.downcast::<R>().ok())
        .map(|r| *r)
        .ok_or_else(|| GateError::Internal(format!("no {name} report of the expected type")))
}

fn blocking_counts(counts: &BTreeMap<String, CodeCount>) -> BTreeMap<String, u64> {
    counts
        .iter()
        .filter(|(_, c)| c.blocking() > 0)
        .map(|(k, c)| (k.clone(), c.blocking()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_table_names_the_report_files_in_layout_order() {
        let files: Vec<layout::File> = GATES.iter().map(|g| g.file).collect();
        assert_eq!(files, layout::GATE_REPORTS);
        let mut names: Vec<&str> = GATES.iter().map(|g| g.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), GATES.len(), "gate names are unique");
    }
}
