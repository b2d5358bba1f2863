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
mod routing;
pub mod shards;
pub mod split;

use std::collections::BTreeMap;
use std::io::{BufReader, Read};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::digest::{Sha256Digest, sha256};
use crate::record::{self, HASH_VERSION, Message};
use crate::registry::{Dataset, Registry};
use crate::report::{Verdict, generated_by};
use crate::source::{self, Item, Limits};
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
    pub limits: Limits,
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
    pub quarantined: BTreeMap<String, u64>,
    pub removed_by_policy: u64,
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
            Ok(Some(d)) => {
                let i = registry
                    .datasets
                    .iter()
                    .position(|x| std::ptr::eq(x, d))
                    .unwrap_or_default();
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

fn hash_object(store: &Store, key: &str) -> Result<(String, u64), BuildError> {
    let read = |source| BuildError::Read {
        key: key.to_string(),
        source,
    };
    let mut reader = store.open_read(key)?;
    let mut digest = Sha256Digest::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(read)?;
        if n == 0 {
            break;
        }
        digest.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((digest.finish(), bytes))
}

#[derive(Serialize)]
struct ExportRecord<'a> {
    id: &'a str,
    messages: &'a [Message],
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    source_family: &'a str,
    dataset: &'a str,
    stage: &'a str,
    source_key: &'a str,
    source_line: u64,
    content_hash: String,
    /// `not_scanned` until the PII stage exists; the privacy gate refuses it.
    pii_status: &'static str,
    redactions: BTreeMap<&'static str, u32>,
    license_tag: &'a str,
    split: Split,
    group: &'a str,
    provenance: RecordProvenance<'a>,
    turns: usize,
}

#[derive(Serialize)]
struct RecordProvenance<'a> {
    source_sha256: &'a str,
    pipeline: &'a str,
    dedup_status: &'static str,
    steps: Vec<&'static str>,
}

#[derive(Serialize)]
struct QuarantineLine<'a> {
    key: &'a str,
    line: u64,
    dataset: &'a str,
    code: &'static str,
    reason: &'static str,
    detail: &'a str,
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
    let mut per_family: BTreeMap<(Split, String), u64> = BTreeMap::new();
    let mut split_counts: BTreeMap<Split, u64> = Split::ALL.iter().map(|s| (*s, 0)).collect();
    let mut objects = Vec::new();
    let mut input_list = Vec::new();

    for input in &inputs {
        let dataset: &Dataset = &registry.datasets[input.dataset];
        let family = &registry.families[&dataset.family];
        progress(&input.key);
        let (object_sha, bytes) = hash_object(store, &input.key)?;
        let license = dataset.license_tag.as_deref().unwrap_or_default();
        let mut failure: Option<BuildError> = None;
        let mut merged = 0u64;
        let mut blank = 0u64;
        let mut line_buf = Vec::with_capacity(4096);
        let reader = BufReader::with_capacity(1 << 20, store.open_read(&input.key)?);
        let summary = source::adapt(reader, &input.key, dataset, &config.limits, &mut |item| {
            if failure.is_some() {
                return;
            }
            let result = match item {
                Item::Record(r) => {
                    merged += u64::from(r.merged_turns);
                    blank += u64::from(r.blank_turns_dropped);
                    let id = record::record_id(&dataset.name, &input.key, r.line, r.part);
                    let group = match &r.group {
                        Some(g) => format!("{}:{g}", dataset.name),
                        None => format!("{}:{id}", dataset.name),
                    };
                    let split = split::assign(config.seed, &group, family.holdout, &config.ratios);
                    let rec = ExportRecord {
                        id: &id,
                        messages: &r.messages,
                        metadata: Metadata {
                            source_family: &dataset.family,
                            dataset: &dataset.name,
                            stage: &dataset.stage,
                            source_key: &input.key,
                            source_line: r.line,
                            content_hash: record::content_hash(&r.messages),
                            pii_status: "not_scanned",
                            redactions: BTreeMap::new(),
                            license_tag: license,
                            split,
                            group: &group,
                            provenance: RecordProvenance {
                                source_sha256: &object_sha,
                                pipeline: &pipeline,
                                dedup_status: "not_checked",
                                steps: vec!["adapt", "normalise_roles", "split"],
                            },
                            turns: r.messages.len(),
                        },
                    };
                    line_buf.clear();
                    serde_json::to_writer(&mut line_buf, &rec)
                        .map_err(|e| BuildError::Serialise("a record", e))
                        .and_then(|()| {
                            *split_counts.entry(split).or_default() += 1;
                            *per_family
                                .entry((split, dataset.family.clone()))
                                .or_default() += 1;
                            if let Some(c) = &mut compiled {
                                c.write_line(&line_buf)?;
                            }
                            sets.get_mut(&split)
                                .map_or(Ok(()), |set| set.write_line(store, &line_buf))
                                .map_err(BuildError::from)
                        })
                }
                Item::Quarantined(q) => {
                    line_buf.clear();
                    serde_json::to_writer(
                        &mut line_buf,
                        &QuarantineLine {
                            key: &input.key,
                            line: q.line,
                            dataset: &dataset.name,
                            code: q.reason.code(),
                            reason: q.reason.name(),
                            detail: &q.detail,
                        },
                    )
                    .map_err(|e| BuildError::Serialise("a quarantine entry", e))
                    .and_then(|()| {
                        quarantine_file
                            .write_line(&line_buf)
                            .map_err(BuildError::from)
                    })
                }
            };
            if let Err(e) = result {
                failure = Some(e);
            }
        })
        .map_err(|source| BuildError::Read {
            key: input.key.clone(),
            source,
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        let quarantined = summary.quarantined_total();
        let read = summary.records + quarantined;
        let rate = if read == 0 {
            0.0
        } else {
            quarantined as f64 / read as f64
        };
        let verdict = if summary.incomplete || rate > config.max_quarantine_rate {
            Verdict::Fail
        } else if quarantined > 0 {
            Verdict::Warn
        } else {
            Verdict::Pass
        };
        input_list.push(manifest::InputObject {
            key: input.key.clone(),
            dataset: dataset.name.clone(),
            bytes,
            sha256: object_sha.clone(),
        });
        objects.push(ObjectReport {
            key: input.key.clone(),
            dataset: dataset.name.clone(),
            bytes,
            sha256: object_sha,
            read,
            exported: summary.records,
            quarantined: summary.quarantined,
            removed_by_policy: 0,
            merged_turns: merged,
            blank_turns_dropped: blank,
            quarantine_rate: (rate * 1e6).round() / 1e6,
            incomplete: summary.incomplete,
            verdict,
        });
    }

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
        records_read: records_exported + records_quarantined,
        records_exported,
        records_quarantined,
        records_removed_by_policy: 0,
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
