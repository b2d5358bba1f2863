//! `build`: turns the mapped source objects into the compiled ChatML export of a release.
//!
//! For every dataset with a licence and provenance (others are excluded and recorded), every
//! object is read in key order: first hashed (its sha256 is the record's provenance; local-disk
//! ETags are not content hashes), then streamed through its format adapter. Each conversation
//! becomes one export record assigned to a split by its group, and is written to the split's
//! shards (and to `compiled_export.jsonl`). Quarantined records are listed by `key:line` and
//! reason. The manifest lists inputs, shards and artefacts with their sha256; its own sha256
//! is the release digest. Same inputs, registry, config and version ⇒ byte-identical output.

pub mod blocklist;
pub mod dedup;
mod manifest;
pub mod parquet;
mod process;
mod routing;
pub mod shards;
pub mod split;

use std::collections::BTreeMap;

use rayon::prelude::*;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use gatehouse_text::TokenizerSpec;
use gatehouse_text::dedup::{MinHasher, Shingler};
use gatehouse_text::pii::{Detector, UnsurePolicy};

use crate::digest::sha256;
use crate::layout;
use crate::record::HASH_VERSION;
use crate::registry::Registry;
use crate::report::{Verdict, generated_by};
use crate::source::Limits;
use crate::store::{Store, StoreError};

pub use crate::contract::{BuildPrivacy, Exclusion, ObjectReport, Tally};

/// `build_report.json` (declared in the contract; its `config` is `[build]`).
pub type BuildReport = crate::contract::BuildReport<BuildConfig>;
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

/// A line of `dedup_removed.jsonl`: a removed record and the record kept in its place.
#[derive(Serialize)]
struct RemovedLine<'a> {
    id: &'a str,
    dataset: &'a str,
    source_key: &'a str,
    source_line: u64,
    kind: dedup::Kind,
    /// Jaccard index of the shingle sets (1 for exact duplicates).
    jaccard: f64,
    kept_id: &'a str,
    kept_dataset: &'a str,
    kept_source_key: &'a str,
    kept_source_line: u64,
}

fn objects_dataset<'a>(inputs: &[Input], registry: &'a Registry, object: usize) -> &'a str {
    &registry.datasets[inputs[object].dataset].name
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

/// The build's outputs being written, object by object in key order: the shards of each
/// split, the compiled export, the quarantine list, and the counts per split and family.
struct Assembly<'a> {
    store: &'a Store,
    sets: BTreeMap<Split, ShardSet>,
    compiled: Option<HashedObject>,
    quarantine: HashedObject,
    per_family: BTreeMap<(Split, String), Tally>,
    split_counts: BTreeMap<Split, u64>,
    /// Reused buffers: a record line with its source sha256 patched in, and a
    /// removed-duplicate line.
    patched: Vec<u8>,
    removed_line: Vec<u8>,
}

/// What the assembly wrote.
struct Assembled {
    written: Vec<String>,
    artefacts: Vec<manifest::Artefact>,
    /// Per split: JSONL shards and their Parquet twins.
    contents: Vec<(Split, Vec<shards::ShardInfo>, Vec<shards::ShardInfo>)>,
    per_family: BTreeMap<(Split, String), Tally>,
    split_counts: BTreeMap<Split, u64>,
}

impl<'a> Assembly<'a> {
    fn new(store: &'a Store, loc: &str, config: &BuildConfig) -> Self {
        let sets = Split::ALL
            .iter()
            .map(|s| {
                let prefix = layout::shard_prefix(loc, s.as_str());
                let set = ShardSet::new(prefix, config.shard_max_records, config.shard_max_bytes);
                (*s, set)
            })
            .collect();
        Self {
            store,
            sets,
            compiled: config
                .compiled_export
                .then(|| HashedObject::create(store, layout::COMPILED_EXPORT.at(loc))),
            quarantine: HashedObject::create(store, layout::QUARANTINE.at(loc)),
            per_family: BTreeMap::new(),
            split_counts: Split::ALL.iter().map(|s| (*s, 0)).collect(),
            patched: Vec::with_capacity(8192),
            removed_line: Vec::with_capacity(512),
        }
    }

    /// Object `o`'s spill, in source order: each record goes to its split's shard (and the
    /// compiled export) unless deduplication removed it, then it is listed in `removed`
    /// with the record kept in its place; quarantined lines go to the quarantine list.
    /// Returns the records and tokens removed as duplicates.
    fn object(
        &mut self,
        o: usize,
        out: &process::ObjectOutput,
        entries: &[dedup::ObjectEntries],
        statuses: &[dedup::Status],
        kept_in: &dyn Fn(u32) -> (&'a str, &'a str),
        removed: &mut HashedObject,
    ) -> Result<(u64, u64), BuildError> {
        let object_entries = &entries[o].entries;
        let mut ordinal = 0usize;
        let mut removed_here = (0u64, 0u64);
        process::for_each_spilled(
            &out.spill,
            &mut |tag, line| match process::destination(tag) {
                Some(process::Destination::Record(split)) => {
                    let e = object_entries.get(ordinal).ok_or_else(|| {
                        BuildError::Internal("a spill holds more records than its object".into())
                    })?;
                    let status = statuses[ordinal];
                    ordinal += 1;
                    if let dedup::Status::Removed {
                        kind,
                        kept,
                        jaccard,
                    } = status
                    {
                        removed_here.0 += 1;
                        removed_here.1 += e.tokens;
                        let k = &entries[kept.0 as usize].entries[kept.1 as usize];
                        let (kept_dataset, kept_source_key) = kept_in(kept.0);
                        self.removed_line.clear();
                        serde_json::to_writer(
                            &mut self.removed_line,
                            &RemovedLine {
                                id: &e.id,
                                dataset: &out.report.dataset,
                                source_key: &out.report.key,
                                source_line: e.line,
                                kind,
                                jaccard: (jaccard * 1e6).round() / 1e6,
                                kept_id: &k.id,
                                kept_dataset,
                                kept_source_key,
                                kept_source_line: k.line,
                            },
                        )
                        .map_err(|e| BuildError::Serialise("a removed-duplicate line", e))?;
                        return Ok(removed.write_line(&self.removed_line)?);
                    }
                    self.record(split, line, out, e.tokens, status)
                }
                Some(process::Destination::Quarantine) => Ok(self.quarantine.write_line(line)?),
                None => Err(BuildError::Internal("corrupt local spill file".into())),
            },
        )?;
        if ordinal != object_entries.len() {
            return Err(BuildError::Internal(
                "a spill holds fewer records than its object".into(),
            ));
        }
        Ok(removed_here)
    }

    /// One exported record: its source sha256 (and, for a representative, its dedup
    /// status) patched in, counted, and written to its shard and the compiled export.
    fn record(
        &mut self,
        split: Split,
        line: &[u8],
        out: &process::ObjectOutput,
        tokens: u64,
        status: dedup::Status,
    ) -> Result<(), BuildError> {
        process::patch_sha(line, &out.input.sha256, &mut self.patched)?;
        if status == dedup::Status::Representative {
            process::patch_dedup_status(&mut self.patched, process::DEDUP_REPRESENTATIVE)?;
        }
        *self.split_counts.entry(split).or_default() += 1;
        *self
            .per_family
            .entry((split, out.family.clone()))
            .or_default() += Tally { records: 1, tokens };
        if let Some(c) = &mut self.compiled {
            c.write_line(&self.patched)?;
        }
        if let Some(set) = self.sets.get_mut(&split) {
            set.write_line(self.store, &self.patched)?;
        }
        Ok(())
    }

    /// Completes every file: shards (with their Parquet twins), the compiled export, the
    /// quarantine list and the removed-duplicates list.
    fn finish(self, config: &BuildConfig, removed: HashedObject) -> Result<Assembled, BuildError> {
        let mut written = Vec::new();
        let mut artefacts = Vec::new();
        let mut contents = Vec::new();
        for (split, set) in self.sets {
            let parts = set.finish()?;
            written.extend(parts.iter().map(|p| p.key.clone()));
            let parquet = if config.parquet {
                parquet_twins(self.store, &parts, config.limits.max_export_line())?
            } else {
                Vec::new()
            };
            written.extend(parquet.iter().map(|p| p.key.clone()));
            contents.push((split, parts, parquet));
        }
        if let Some(c) = self.compiled {
            let info = c.finish()?;
            written.push(info.key.clone());
            artefacts.push(manifest::Artefact::from(&info));
        }
        for file in [self.quarantine, removed] {
            let info = file.finish()?;
            written.push(info.key.clone());
            artefacts.push(manifest::Artefact::from(&info));
        }
        Ok(Assembled {
            written,
            artefacts,
            contents,
            per_family: self.per_family,
            split_counts: self.split_counts,
        })
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

/// Writes the Parquet twin of every shard, in parallel, streaming: each shard is read line
/// by line and written one row group at a time, so memory is bounded by
/// [`parquet::ROW_GROUP_ROWS`], not by the shard's size.
fn parquet_twins(
    store: &Store,
    parts: &[shards::ShardInfo],
    max_line: usize,
) -> Result<Vec<shards::ShardInfo>, BuildError> {
    use rayon::prelude::*;
    parts
        .par_iter()
        .map(|p| {
            let key = match p.key.strip_suffix(".jsonl") {
                Some(stem) => format!("{stem}.parquet"),
                None => format!("{}.parquet", p.key),
            };
            let reader = std::io::BufReader::with_capacity(1 << 20, store.open_read(&p.key)?);
            let mut out = shards::HashingWriter::create(store, &key);
            let rows = parquet::convert(&p.key, reader, max_line, &mut out)?;
            if rows != p.records {
                return Err(BuildError::Internal(format!(
                    "{}: {rows} rows converted of {} records",
                    p.key, p.records
                )));
            }
            let (bytes, sha256) = out.finish()?;
            Ok(shards::ShardInfo {
                key,
                bytes,
                records: p.records,
                sha256,
            })
        })
        .collect()
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

type Processed = (process::ObjectOutput, dedup::ObjectEntries);

/// Processes every object on the rayon pool (reporting each finished key to `progress` on
/// this thread) and returns the outputs in key order, or the first error in key order.
/// After an error, objects not yet started are skipped.
fn process_all<'a>(
    inputs: &'a [Input],
    registry: &'a Registry,
    job: &(dyn Fn(&'a Input, &'a crate::registry::Dataset) -> process::Job<'a> + Sync),
    progress: &mut dyn FnMut(&str),
) -> Result<(Vec<process::ObjectOutput>, Vec<dedup::ObjectEntries>), BuildError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let cancelled = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let results: Vec<Option<Result<Processed, BuildError>>> = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            inputs
                .par_iter()
                .map_with(tx, |tx, input| {
                    if cancelled.load(Ordering::Relaxed) {
                        return None;
                    }
                    let result = process::process(&job(input, &registry.datasets[input.dataset]));
                    match &result {
                        Ok((out, _)) => {
                            let _ = tx.send(out.report.key.clone());
                        }
                        Err(_) => cancelled.store(true, Ordering::Relaxed),
                    }
                    Some(result)
                })
                .collect()
        });
        for key in rx {
            progress(&key);
        }
        worker.join()
    })
    .map_err(|_| BuildError::Internal("a build worker panicked".into()))?;
    let mut outputs = (
        Vec::with_capacity(results.len()),
        Vec::with_capacity(results.len()),
    );
    for r in results {
        match r {
            Some(Ok((o, e))) => {
                outputs.0.push(o);
                outputs.1.push(e);
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    if outputs.0.len() != inputs.len() {
        return Err(BuildError::Internal(
            "a build worker stopped without a result".into(),
        ));
    }
    Ok(outputs)
}

/// Runs the build; see the module docs.
///
/// One sequence on purpose (about 160 lines): inputs, phase 1 (objects in parallel), phase 2
/// (duplicates across the release), phase 3 (the assembly, in key order), then the build
/// report, the routing config and, last, the manifest that commits them. Each phase is one
/// call; what stays here is the order of the writes, which resume and crash safety rely on.
pub fn run(
    store: &Store,
    registry: &Registry,
    config: &BuildConfig,
    ctx: &BuildContext<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildOutcome, BuildError> {
    check(config, registry)?;
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
    let mut assembly = Assembly::new(store, loc, config);
    let tokens = config.tokenizer.counter().map_err(BuildError::Config)?;
    let mut blocklist = blocklist::load(store)?;
    let detector = ctx.detector;
    let tools = process::DedupTools {
        shingler: Shingler::with_boilerplate(&config.dedup.near_params, &config.dedup.boilerplate),
        minhasher: MinHasher::new(&config.dedup.near_params),
        shingle_system: config.dedup.shingle_system,
        near: config.dedup.near,
    };

    // Phase 1: objects are processed in parallel, each spilling its records in source
    // order and describing them for deduplication.
    let (outputs, entries) = process_all(
        &inputs,
        registry,
        &|input, dataset| process::Job {
            store,
            key: &input.key,
            dataset,
            family: &registry.families[&dataset.family],
            config,
            pipeline: &pipeline,
            spill_dir: spill_dir.path(),
            tokens: &tokens,
            detector,
            dedup: &tools,
            blocklist: &blocklist.ids,
        },
        progress,
    )?;

    // Phase 2: duplicates across the whole release.
    let removed_key = layout::DEDUP_REMOVED.at(loc);
    let families: Vec<String> = outputs.iter().map(|o| o.family.clone()).collect();
    let ranks = config.dedup.family_ranks(registry);
    let (statuses, dedup_summary) = dedup::resolve(
        &entries,
        &families,
        &config.dedup,
        &ranks,
        removed_key.clone(),
    )?;

    // Phase 3: in key order, the spills become the shards, the compiled export, the
    // quarantine list and the list of removed duplicates.
    let mut removed_file = HashedObject::create(store, removed_key);
    let mut objects = Vec::with_capacity(outputs.len());
    let mut input_list = Vec::with_capacity(outputs.len());
    for (o, mut out) in outputs.into_iter().enumerate() {
        let kept_in = |object: u32| {
            let i = object as usize;
            (
                objects_dataset(&inputs, registry, i),
                inputs[i].key.as_str(),
            )
        };
        let removed_here =
            assembly.object(o, &out, &entries, &statuses[o], &kept_in, &mut removed_file)?;
        out.report.duplicates_removed = removed_here.0;
        out.report.exported -= removed_here.0;
        out.report.tokens -= removed_here.1;
        objects.push(out.report);
        input_list.push(out.input);
    }
    let Assembled {
        mut written,
        mut artefacts,
        contents,
        per_family,
        split_counts,
    } = assembly.finish(config, removed_file)?;

    blocklist.summary.records_removed = objects.iter().map(|o| o.blocked_by_reviewers).sum();
    let report = build_report(BuildTotals {
        release_version: ctx.release_version,
        pipeline: &pipeline,
        objects,
        excluded: &excluded,
        split_counts: &split_counts,
        per_family: &per_family,
        dedup: &dedup_summary,
        blocklist: &blocklist.summary,
        detector,
        config,
    });
    let verdict = report.verdict;
    let report_key = layout::BUILD_REPORT.at(loc);
    let report_bytes = json_bytes("the build report", &report)?;
    store.put(&report_key, report_bytes.clone())?;
    written.push(report_key.clone());
    artefacts.push(manifest::Artefact::of(&report_key, &report_bytes));

    let routing = routing::build(
        registry,
        &per_family,
        config,
        ctx.release_version,
        &tokens.label(),
    );
    let routing_key = layout::ROUTING_CONFIG.at(loc);
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
        dedup: dedup_summary,
        blocklist: blocklist.summary,
        tokenizer: tokens.label(),
    });
    let manifest_key = layout::MANIFEST.at(loc);
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
