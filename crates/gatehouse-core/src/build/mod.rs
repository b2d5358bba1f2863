//! `build`: turns the mapped source objects into the compiled ChatML export of a release.
//!
//! For every dataset with a licence and provenance (others are excluded and recorded), every
//! object is read in key order: first hashed (its sha256 is the record's provenance; local-disk
//! ETags are not content hashes), then streamed through its format adapter. Each conversation
//! becomes one export record assigned to a split by its group, and is written to the split's
//! shards (and to `compiled_export.jsonl`). Quarantined records are listed by `key:line` and
//! reason. The manifest lists inputs, shards and artefacts with their sha256; its own sha256
//! is the release digest. Same inputs, registry, config and version ⇒ byte-identical output.

mod assembly;
pub mod blocklist;
pub mod dedup;
pub mod fragments;
mod manifest;
pub mod map;
pub mod parquet;
mod phases;
mod process;
mod routing;
pub mod shards;
pub mod split;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use gatehouse_text::TokenizerSpec;
use gatehouse_text::pii::{Detector, UnsurePolicy};

use crate::layout;
use crate::registry::Registry;
use crate::report::Verdict;
use crate::source::Limits;
use crate::store::{Store, StoreError};

pub use crate::contract::{BuildPrivacy, Exclusion, ObjectReport, Tally};

/// `build_report.json` (declared in the contract; its `config` is `[build]`).
pub type BuildReport = crate::contract::BuildReport<BuildConfig>;
pub use fragments::JudgeState;
pub use manifest::{Manifest, RELEASE_DIGEST_NOTE};
pub use phases::Prepared;
pub use routing::RoutingConfig;
pub use split::{Ratios, Split};

/// `[build]` in gatehouse.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// Seed of the split assignment.
    pub seed: u64,
    pub ratios: Ratios,
    pub shard_max_records: u64,
    pub shard_max_bytes: u64,
    /// Also write the single `compiled_export.jsonl` the prototype's users expect.
    pub compiled_export: bool,
    /// Also write every shard as Parquet (`part-NNNNN.parquet` beside the JSONL).
    pub parquet: bool,
    /// A source object whose quarantined share exceeds this fails the build.
    pub max_quarantine_rate: f64,
    /// Recommended epochs per family in the routing config (default 1).
    pub epochs: BTreeMap<String, f64>,
    /// Tokenizer of the per-record and per-family token counts.
    pub tokenizer: TokenizerSpec,
    /// PII spans the detector is unsure about: `redact` them, or hold the record for `review`.
    pub pii_unsure: UnsurePolicy,
    pub limits: Limits,
    /// `[build.dedup]`: exact and near-duplicate removal.
    pub dedup: dedup::DedupConfig,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            ratios: Ratios::default(),
            shard_max_records: 100_000,
            shard_max_bytes: 256 << 20,
            compiled_export: true,
            parquet: true,
            max_quarantine_rate: 0.05,
            epochs: BTreeMap::new(),
            tokenizer: TokenizerSpec::default(),
            pii_unsure: UnsurePolicy::default(),
            limits: Limits::default(),
            dedup: dedup::DedupConfig::default(),
        }
    }
}

/// The per-object `quarantined` key of records whose redaction did not settle.
const UNSETTLED_KEY: &str = "Q014 pii-redaction-unsettled";

/// Build report schema version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} is claimed by both dataset {first:?} and dataset {second:?}")]
    AmbiguousKey {
        key: String,
        first: String,
        second: String,
    },
    #[error("invalid [build] configuration: {0}")]
    Config(String),
    #[error("reading {key} failed")]
    Read {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise {0}")]
    Serialise(&'static str, #[source] serde_json::Error),
    #[error("no dataset with a licence and provenance has any object: nothing to build")]
    Empty,
    #[error("{key}: not a blocklist")]
    BadBlocklist { key: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl BuildError {
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::Store(e) => e.hint(),
            BuildError::AmbiguousKey { .. } => {
                Some("narrow one of the datasets with `exclude` in the registry".into())
            }
            BuildError::Config(_) => Some("fix [build] in gatehouse.toml (see README.md)".into()),
            BuildError::Empty => Some(
                "run `gatehouse coverage`: datasets need objects, a license_tag and provenance"
                    .into(),
            ),
            BuildError::BadBlocklist { .. } => Some(
                "restore the file from `gatehouse qa signoff` (it must not be skipped: it lists records reviewers removed)".into(),
            ),
            _ => None,
        }
    }
}

fn objects_dataset<'a>(inputs: &[Input], registry: &'a Registry, object: usize) -> &'a str {
    &registry.datasets[inputs[object].dataset].name
}

/// One object to build from.
#[derive(Debug, Clone)]
struct Input {
    key: String,
    dataset: usize,
    /// Size and etag as listed: what a map fragment of the object is checked against.
    size: u64,
    etag: Option<String>,
}

/// The sources of a build as listed: every object of an eligible dataset in key order, and
/// the datasets left out. A process that plans the same build many times (a Ray actor
/// mapping batch after batch) lists the store once and passes this to
/// [`Prepared::open_listed`].
#[derive(Debug, Clone)]
pub struct Sources {
    /// Shared, so a plan made again from the same listing copies nothing.
    inputs: std::sync::Arc<[Input]>,
    excluded: std::sync::Arc<[Exclusion]>,
}

impl Sources {
    pub fn list(store: &Store, registry: &Registry) -> Result<Self, BuildError> {
        let (inputs, excluded) = inputs(store, registry)?;
        Ok(Self {
            inputs: inputs.into(),
            excluded: excluded.into(),
        })
    }
}

/// The sources of a build: every object of an eligible dataset, in key order.
fn inputs(store: &Store, registry: &Registry) -> Result<(Vec<Input>, Vec<Exclusion>), BuildError> {
    let exports = format!("{}/", store.exports_prefix());
    let mut excluded = Vec::new();
    let eligible: Vec<bool> = registry
        .datasets
        .iter()
        .map(|d| {
            let reason = match (&d.license_tag, &d.provenance) {
                (Some(_), Some(_)) => return true,
                (None, None) => "no license_tag and no provenance",
                (None, Some(_)) => "no license_tag",
                (Some(_), None) => "no provenance",
            };
            excluded.push(Exclusion {
                dataset: d.name.clone(),
                reason: reason.into(),
            });
            false
        })
        .collect();
    let mut out = Vec::new();
    for object in store.list("") {
        let object = object?;
        if object.key.starts_with(&exports) {
            continue;
        }
        match registry.dataset_for(&object.key) {
            Err((first, second)) => {
                return Err(BuildError::AmbiguousKey {
                    key: object.key,
                    first,
                    second,
                });
            }
            Ok(Some(i)) => {
                if eligible[i] {
                    out.push(Input {
                        key: object.key,
                        dataset: i,
                        size: object.size,
                        etag: object.etag,
                    });
                }
            }
            Ok(None) => {}
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((out, excluded))
}

/// Files a build writes (besides its shards); a rebuild into the same draft removes them
/// first, so the draft never holds output that the new manifest does not list.
const OUTPUTS: [layout::File; 5] = [
    layout::COMPILED_EXPORT,
    layout::QUARANTINE,
    layout::BUILD_REPORT,
    layout::ROUTING_CONFIG,
    layout::MANIFEST,
];

/// What `build_report.json` sums up.
struct BuildTotals<'a> {
    release_version: &'a str,
    pipeline: &'a str,
    objects: Vec<ObjectReport>,
    excluded: &'a [Exclusion],
    split_counts: &'a BTreeMap<Split, u64>,
    per_family: &'a BTreeMap<(Split, String), Tally>,
    dedup: &'a dedup::DedupSummary,
    blocklist: &'a blocklist::BlocklistSummary,
    detector: &'a Detector,
    config: &'a BuildConfig,
}

/// `build_report.json`: the objects' reports and their totals; the verdict is the worst
/// object's, and at least a warning when a dataset was excluded.
fn build_report(t: BuildTotals<'_>) -> BuildReport {
    let objects = t.objects;
    let records_exported: u64 = objects.iter().map(|o| o.exported).sum();
    let records_quarantined: u64 = objects
        .iter()
        .map(|o| o.quarantined.values().sum::<u64>())
        .sum();
    let verdict = objects
        .iter()
        .map(|o| o.verdict)
        .max()
        .unwrap_or(Verdict::Pass)
        .max(if t.excluded.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn
        });
    let records_unsettled = objects
        .iter()
        .filter_map(|o| o.quarantined.get(UNSETTLED_KEY))
        .sum();
    BuildReport {
        schema_version: SCHEMA_VERSION,
        generated_by: t.pipeline.to_string(),
        release_version: t.release_version.to_string(),
        verdict,
        records_read: objects.iter().map(|o| o.read).sum(),
        records_exported,
        records_quarantined,
        records_removed_by_policy: objects.iter().map(|o| o.removed_by_policy).sum(),
        records_removed_as_duplicates: objects.iter().map(|o| o.duplicates_removed).sum(),
        tokens_exported: t.per_family.values().map(|t| t.tokens).sum(),
        split_counts: t.split_counts.clone(),
        objects,
        excluded_datasets: t.excluded.to_vec(),
        dedup: t.dedup.clone(),
        blocklist: t.blocklist.clone(),
        privacy: BuildPrivacy {
            policy: t.detector.policy().clone(),
            records_unsettled,
        },
        config: t.config.clone(),
    }
}

impl BuildConfig {
    /// Every problem with `[build]`; the build refuses to start on the first, and
    /// [`crate::config::Settings::problems`] lists them all before any stage runs.
    pub fn problems(&self, registry: &Registry) -> Vec<String> {
        [
            self.ratios.problem(),
            (!(0.0..=1.0).contains(&self.max_quarantine_rate))
                .then(|| "max_quarantine_rate must be between 0 and 1".to_string()),
            self.dedup.problem(registry),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// The build's own settings, checked before anything is read.
fn check(config: &BuildConfig, registry: &Registry) -> Result<(), BuildError> {
    match config.problems(registry).into_iter().next() {
        Some(p) => Err(BuildError::Config(p)),
        None => Ok(()),
    }
}

/// Deletes an earlier build's output from the draft folder `loc` (never published: the
/// release plan refuses published versions before a build starts).
fn clear_previous(store: &Store, loc: &str) -> Result<(), BuildError> {
    let mut old: Vec<String> = store
        .list(&layout::SHARDS.at(loc))
        .map(|o| o.map(|o| o.key))
        .collect::<Result<_, _>>()?;
    old.extend(OUTPUTS.iter().map(|f| f.at(loc)));
    for key in old {
        match store.delete(&key) {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    pub report: BuildReport,
    pub manifest: Manifest,
    /// sha256 of `manifest.json`: the release digest.
    pub release_digest: String,
    pub written: Vec<String>,
}

fn json_bytes<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, BuildError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| BuildError::Serialise(what, e))?;
    b.push(b'\n');
    Ok(b)
}

/// Inputs of a build that are not in the store.
#[derive(Debug, Clone)]
pub struct BuildContext<'a> {
    pub release_version: &'a str,
    /// `{exports}/releases/{version}/`.
    pub location: &'a str,
    /// Release date written into the manifest (from the version or SOURCE_DATE_EPOCH).
    pub release_date: Option<String>,
    pub config_digest: String,
    /// Extra artefacts already written into the release (e.g. the coverage report).
    pub artefacts: Vec<String>,
    /// The PII detector (from `[privacy]`); the privacy gate must scan with the same one.
    pub detector: &'a Detector,
}

/// Runs the build; see the module docs. The rayon executor: the build prepared (inputs in
/// key order, the draft cleared, the map's tools), every object mapped in parallel into local
/// spill files, then duplicates across the release and the merge in key order.
pub fn run(
    store: &Store,
    registry: &Registry,
    config: &BuildConfig,
    ctx: &BuildContext<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildOutcome, BuildError> {
    let prepared = Prepared::new(store, registry, config, ctx)?;
    let spill_dir = tempfile::tempdir().map_err(|source| BuildError::Read {
        key: "(local temporary directory for spill files)".into(),
        source,
    })?;
    // Phase 1: objects are mapped in parallel, each spilling its records in source order
    // and describing them for deduplication.
    let (outputs, entries) = phases::process_all(&prepared, spill_dir.path(), progress)?;
    let (mapped, files): (Vec<_>, Vec<_>) = outputs
        .into_iter()
        .map(|o| (o.mapped, (o.spill, o.shingles)))
        .unzip();
    // Phases 2 and 3: duplicates across the release (shingle sets read back from the
    // spills), then the spills merged in key order.
    prepared.finish(
        mapped,
        &entries,
        &mut dedup::SpillFiles::new(
            files
                .iter()
                .map(|(_, shingles)| shingles.to_path_buf())
                .collect(),
        ),
        dedup::Verdicts::OnDemand,
        &mut |o, f| process::for_each_spilled(&files[o].0, f),
    )
}
