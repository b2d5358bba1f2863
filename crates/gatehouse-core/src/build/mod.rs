//! `build`: turns the mapped source objects into the compiled ChatML export of a release.
//!
//! For every dataset with a licence and provenance (others are excluded and recorded), every
//! object is read in key order: first hashed (its sha256 is the record's provenance; local-disk
//! ETags are not content hashes), then streamed through its format adapter. Each conversation
//! becomes one export record assigned to a split by its group, and is written to the split's
//! shards (and to `compiled_export.jsonl`). Quarantined records are listed by `key:line` and
//! reason. The manifest lists inputs, shards and artefacts with their sha256; its own sha256
//! is the release digest. Same inputs, registry, config and version ⇒ byte-identical output.

mod manifest;
mod process;
mod routing;
pub mod shards;
pub mod split;

use std::collections::BTreeMap;

use rayon::prelude::*;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use gatehouse_text::pii::{Detector, UnsurePolicy};
use gatehouse_text::{TokenCounter, TokenizerName};

use crate::digest::sha256;
use crate::record::HASH_VERSION;
use crate::registry::Registry;
use crate::report::{Verdict, generated_by};
use crate::source::Limits;
use crate::store::{Store, StoreError};

pub use manifest::{Manifest, RELEASE_DIGEST_NOTE};
pub use routing::RoutingConfig;
use shards::{HashedObject, ShardSet};
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
    /// A source object whose quarantined share exceeds this fails the build.
    pub max_quarantine_rate: f64,
    /// Recommended epochs per family in the routing config (default 1).
    pub epochs: BTreeMap<String, f64>,
    /// Tokenizer of the per-record and per-family token counts.
    pub tokenizer: TokenizerName,
    /// PII spans the detector is unsure about: `redact` them, or hold the record for `review`.
    pub pii_unsure: UnsurePolicy,
    pub limits: Limits,
}

/// Records and their tokens, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub records: u64,
    pub tokens: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.records += other.records;
        self.tokens += other.tokens;
    }
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            ratios: Ratios::default(),
            shard_max_records: 100_000,
            shard_max_bytes: 256 << 20,
            compiled_export: true,
            max_quarantine_rate: 0.05,
            epochs: BTreeMap::new(),
            tokenizer: TokenizerName::default(),
            pii_unsure: UnsurePolicy::default(),
            limits: Limits::default(),
        }
    }
}

/// Build report schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// Where one source object stands after the build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectReport {
    pub key: String,
    pub dataset: String,
    pub bytes: u64,
    pub sha256: String,
    /// Records read: exported + quarantined (+ removed by policy, none yet).
    pub read: u64,
    pub exported: u64,
    /// Tokens of the exported records (tokenizer in the report's config).
    pub tokens: u64,
    pub quarantined: BTreeMap<String, u64>,
    pub removed_by_policy: u64,
    /// Records the PII policy held back for human review (ids; their text is not exported).
    pub held_for_review: Vec<String>,
    pub merged_turns: u64,
    pub blank_turns_dropped: u64,
    pub quarantine_rate: f64,
    /// The object could not be read to its end.
    pub incomplete: bool,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    pub dataset: String,
    pub reason: String,
}

/// `build_report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildReport {
    pub schema_version: u32,
    pub generated_by: String,
    pub release_version: String,
    pub verdict: Verdict,
    pub records_read: u64,
    pub records_exported: u64,
    pub records_quarantined: u64,
    pub records_removed_by_policy: u64,
    pub tokens_exported: u64,
    pub split_counts: BTreeMap<Split, u64>,
    pub objects: Vec<ObjectReport>,
    pub excluded_datasets: Vec<Exclusion>,
    pub config: BuildConfig,
}

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
            _ => None,
        }
    }
}

/// One object to build from.
#[derive(Debug, Clone)]
struct Input {
    key: String,
    dataset: usize,
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
const OUTPUTS: [&str; 5] = [
    "compiled_export.jsonl",
    "quarantine.jsonl",
    "build_report.json",
    "routing_config.json",
    "manifest.json",
];

/// Deletes an earlier build's output from the draft folder `loc` (never published: the
/// release plan refuses published versions before a build starts).
fn clear_previous(store: &Store, loc: &str) -> Result<(), BuildError> {
    let mut old: Vec<String> = store
        .list(&format!("{loc}shards/"))
        .map(|o| o.map(|o| o.key))
        .collect::<Result<_, _>>()?;
    old.extend(OUTPUTS.iter().map(|f| format!("{loc}{f}")));
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
}

/// Runs the build; see the module docs.
pub fn run(
    store: &Store,
    registry: &Registry,
    config: &BuildConfig,
    ctx: &BuildContext<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildOutcome, BuildError> {
    if let Some(p) = config.ratios.problem() {
        return Err(BuildError::Config(p));
    }
    if !(0.0..=1.0).contains(&config.max_quarantine_rate) {
        return Err(BuildError::Config(
            "max_quarantine_rate must be between 0 and 1".into(),
        ));
    }
    let (inputs, excluded) = inputs(store, registry)?;
    if inputs.is_empty() {
        return Err(BuildError::Empty);
    }
    let pipeline = generated_by();
    let loc = ctx.location;
    clear_previous(store, loc)?;
    let spill_dir = tempfile::tempdir().map_err(|source| BuildError::Read {
        key: "(local temporary directory for spill files)".into(),
        source,
    })?;

    // Then, in key order, the spills become the shards, the compiled export and the
    // quarantine list: the output is the same whatever the thread count.
    let mut sets: BTreeMap<Split, ShardSet> = Split::ALL
        .iter()
        .map(|s| {
            let prefix = format!("{loc}shards/{}/", s.as_str());
            (
                *s,
                ShardSet::new(prefix, config.shard_max_records, config.shard_max_bytes),
            )
        })
        .collect();
    let mut compiled = config
        .compiled_export
        .then(|| HashedObject::create(store, format!("{loc}compiled_export.jsonl")));
    let mut quarantine_file = HashedObject::create(store, format!("{loc}quarantine.jsonl"));
    let mut per_family: BTreeMap<(Split, String), Tally> = BTreeMap::new();
    let tokens = TokenCounter::new(config.tokenizer);
    let detector = Detector::new();
    let mut split_counts: BTreeMap<Split, u64> = Split::ALL.iter().map(|s| (*s, 0)).collect();
    let mut objects = Vec::with_capacity(inputs.len());
    let mut input_list = Vec::with_capacity(inputs.len());
    // Objects are processed in parallel, each spilling its records in source order; this
    // thread appends every spill as soon as it is the next in key order, so the output is
    // the same whatever the thread count and appending overlaps processing.
    let cancelled = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<process::ObjectOutput, BuildError>)>();
    let appended: Result<(), BuildError> = std::thread::scope(|scope| {
        let (inputs, cancelled, pipeline, spill_dir, detector) =
            (&inputs, &cancelled, &pipeline, spill_dir.path(), &detector);
        scope.spawn(move || {
            inputs
                .par_iter()
                .enumerate()
                .for_each_with(tx, |tx, (i, input)| {
                    if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let dataset = &registry.datasets[input.dataset];
                    let result = process::process(&process::Job {
                        store,
                        key: &input.key,
                        dataset,
                        family: &registry.families[&dataset.family],
                        config,
                        pipeline,
                        spill_dir,
                        tokens,
                        detector,
                    });
                    let _ = tx.send((i, result));
                });
        });
        let mut pending: BTreeMap<usize, Result<process::ObjectOutput, BuildError>> =
            BTreeMap::new();
        let mut next = 0;
        let mut patched: Vec<u8> = Vec::with_capacity(8192);
        let mut append = |out: process::ObjectOutput| -> Result<(), BuildError> {
            progress(&out.report.key);
            process::for_each_spilled(
                &out.spill,
                &mut |tag, line| match process::destination(tag) {
                    Some(process::Destination::Record(split)) => {
                        process::patch_sha(line, &out.input.sha256, &mut patched)?;
                        if let Some(c) = &mut compiled {
                            c.write_line(&patched)?;
                        }
                        if let Some(set) = sets.get_mut(&split) {
                            set.write_line(store, &patched)?;
                        }
                        Ok(())
                    }
                    Some(process::Destination::Quarantine) => Ok(quarantine_file.write_line(line)?),
                    None => Err(BuildError::Internal("corrupt local spill file".into())),
                },
            )?;
            for (split, t) in &out.per_family {
                *split_counts.entry(*split).or_default() += t.records;
                *per_family.entry((*split, out.family.clone())).or_default() += *t;
            }
            objects.push(out.report);
            input_list.push(out.input);
            Ok(())
        };
        for (i, result) in rx {
            pending.insert(i, result);
            while let Some(result) = pending.remove(&next) {
                let outcome = result.and_then(&mut append);
                if let Err(e) = outcome {
                    cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
                next += 1;
            }
        }
        if next == inputs.len() {
            Ok(())
        } else {
            Err(BuildError::Config(
                "a build worker stopped without a result".into(),
            ))
        }
    });
    appended?;

    let mut written = Vec::new();
    let mut artefacts = Vec::new();
    let mut contents = Vec::new();
    for (split, set) in sets {
        let parts = set.finish()?;
        written.extend(parts.iter().map(|p| p.key.clone()));
        contents.push((split, parts));
    }
    if let Some(c) = compiled {
        let info = c.finish()?;
        written.push(info.key.clone());
        artefacts.push(manifest::Artefact::from(&info));
    }
    let q = quarantine_file.finish()?;
    written.push(q.key.clone());
    artefacts.push(manifest::Artefact::from(&q));

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
        .max(if excluded.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Warn
        });
    let report = BuildReport {
        schema_version: SCHEMA_VERSION,
        generated_by: pipeline.clone(),
        release_version: ctx.release_version.to_string(),
        verdict,
        records_read: objects.iter().map(|o| o.read).sum(),
        records_exported,
        records_quarantined,
        records_removed_by_policy: objects.iter().map(|o| o.removed_by_policy).sum(),
        tokens_exported: per_family.values().map(|t| t.tokens).sum(),
        split_counts: split_counts.clone(),
        objects,
        excluded_datasets: excluded.clone(),
        config: config.clone(),
    };
    let report_key = format!("{loc}build_report.json");
    let report_bytes = json_bytes("the build report", &report)?;
    store.put(&report_key, report_bytes.clone())?;
    written.push(report_key.clone());
    artefacts.push(manifest::Artefact::of(&report_key, &report_bytes));

    let routing = routing::build(registry, &per_family, config, ctx.release_version);
    let routing_key = format!("{loc}routing_config.json");
    let routing_bytes = json_bytes("the routing config", &routing)?;
    store.put(&routing_key, routing_bytes.clone())?;
    written.push(routing_key.clone());
    artefacts.push(manifest::Artefact::of(&routing_key, &routing_bytes));

    for key in &ctx.artefacts {
        let bytes = store.get_bytes(key)?;
        artefacts.push(manifest::Artefact::of(key, &bytes));
    }
    artefacts.sort_by(|a, b| a.key.cmp(&b.key));

    let manifest = manifest::Manifest::new(manifest::Parts {
        release_version: ctx.release_version,
        release_date: ctx.release_date.clone(),
        config_digest: &ctx.config_digest,
        registry_digest: &registry.digest,
        hash_version: HASH_VERSION,
        config,
        split_counts: &split_counts,
        inputs: input_list,
        excluded,
        contents: &contents,
        per_family: &per_family,
        artefacts,
        build_verdict: verdict,
    });
    let manifest_key = format!("{loc}manifest.json");
    let manifest_bytes = json_bytes("the manifest", &manifest)?;
    store.put(&manifest_key, manifest_bytes.clone())?;
    written.push(manifest_key);
    Ok(BuildOutcome {
        report,
        manifest,
        release_digest: sha256(&manifest_bytes),
        written,
    })
}
