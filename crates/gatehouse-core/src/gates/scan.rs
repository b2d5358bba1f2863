//! The one scan of a built release for the gates: the manifest, then every shard line by line.
//!
//! One reader thread streams the shards in manifest order, hashing and counting each, and
//! hands batches of lines to the rayon pool; each batch is parsed, every record goes through
//! every per-record check (`Checks`, see `gate.rs`) and the sketcher, and the partial
//! results are merged. Every merge is order-free
//! (counts add up; locator lists keep the first ones in export order; the spot-check sample
//! keeps the smallest sample hashes), so the reports do not depend on the thread count.
//!
//! Over 600 lines: the scan, its batches and its order-free merge are one algorithm,
//! kept together so its determinism can be read in one place.

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::sync::mpsc::sync_channel;

use rayon::iter::{ParallelBridge, ParallelIterator};
use serde::Deserialize;

use super::duplicates::{self, Collected, SketchBatch, Sketcher};
use super::gate::RecordCheck;
use super::{Checks, CodeCount, GateError};
use crate::contract::{Manifest, ShardInfo};
use crate::digest::{HashingReader, sha256};
use crate::registry::Registry;
use crate::report::Code;
use crate::report::codes::export::{
    RECORD_UNREADABLE, SHARD_COUNT_MISMATCH, SHARD_DIGEST_MISMATCH, SHARD_MISSING,
};
use crate::source::Limits;
use crate::store::{Line, LineReader, Store, StoreError};
use crate::waiver::{self, Subject, Waiver, WaiverUse};
use gatehouse_text::TokenCounter;
use gatehouse_text::pii::{Allowlist, Detector};

pub use crate::contract::gates::{Locator, ShardCheck};

/// The manifest the gates judge ([`crate::contract::Manifest`]), with where it was read and
/// its digest.
#[derive(Debug, Clone)]
pub struct ExportManifest {
    pub manifest: Manifest,
    /// Key of the manifest.
    pub key: String,
    /// sha256 of the manifest's bytes: the release digest.
    pub digest: String,
}

impl std::ops::Deref for ExportManifest {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

impl ExportManifest {
    /// Shards in manifest order (train, val, test; part order).
    pub fn shards(&self) -> impl Iterator<Item = &ShardInfo> {
        self.contents.iter().flat_map(|c| c.shards.iter())
    }

    pub fn records(&self) -> u64 {
        self.contents.iter().map(|c| c.records).sum()
    }
}

pub(super) fn read_manifest(store: &Store, location: &str) -> Result<ExportManifest, GateError> {
    let key = crate::layout::MANIFEST.at(location);
    let bytes = match store.get_bytes(&key) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return Err(GateError::NotBuilt { key }),
        Err(e) => return Err(e.into()),
    };
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| GateError::BadManifest {
            key: key.clone(),
            detail: format!("{:?} error at line {}", e.classify(), e.line()),
        })?;
    Ok(ExportManifest {
        manifest,
        digest: sha256(&bytes),
        key,
    })
}

/// An exported record as the gates read it: every field optional, so a missing one is a
/// finding rather than an unreadable line.
#[derive(Debug, Deserialize)]
pub(super) struct ExportedRecord {
    #[serde(default)]
    pub id: Option<String>,
    pub messages: Vec<ExportedMessage>,
    #[serde(default)]
    pub metadata: Option<ExportedMetadata>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ExportedMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ExportedMetadata {
    #[serde(default)]
    pub source_family: Option<String>,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default)]
    pub source_key: Option<String>,
    #[serde(default)]
    pub source_line: Option<u64>,
    #[serde(default)]
    pub license_tag: Option<String>,
    #[serde(default)]
    pub pii_status: Option<String>,
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub redactions: BTreeMap<String, u64>,
    #[serde(default)]
    pub provenance: Option<ExportedProvenance>,
    /// Fields carried from the source record; their text is scanned like the messages.
    #[serde(default)]
    pub source_fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ExportedProvenance {
    #[serde(default)]
    pub source_sha256: Option<String>,
    #[serde(default)]
    pub pipeline: Option<String>,
}

impl ExportedRecord {
    pub fn dataset(&self) -> Option<&str> {
        self.metadata.as_ref()?.dataset.as_deref()
    }

    pub fn family(&self) -> Option<&str> {
        self.metadata.as_ref()?.source_family.as_deref()
    }

    /// `source_key:line`, when both are there.
    pub fn source(&self) -> Option<String> {
        let m = self.metadata.as_ref()?;
        Some(format!("{}:{}", m.source_key.as_deref()?, m.source_line?))
    }
}

/// What the registry says about one dataset, for the checks.
#[derive(Debug)]
pub(super) struct DatasetFacts {
    pub license_tag: Option<String>,
    pub has_provenance: bool,
    pub allow: Allowlist,
}

/// Everything a worker needs to check a record; shared read-only by all threads.
#[derive(Debug)]
pub(super) struct CheckContext<'a> {
    /// The build's detector (the same `[privacy]` policy).
    pub detector: &'a Detector,
    pub datasets: HashMap<String, DatasetFacts>,
    /// Manifest input key → (dataset, sha256).
    pub inputs: HashMap<&'a str, (&'a str, &'a str)>,
    pub waivers: &'a [Waiver],
    pub as_of: chrono::NaiveDate,
    pub config: &'a super::GatesConfig,
    pub registry: &'a Registry,
    /// Spot-check: a record is drawn when its sample hash is below this.
    pub sample_threshold: u128,
    pub no_allowlist: Allowlist,
    /// Counts tokens for the distribution check.
    pub tokens: TokenCounter,
}

impl<'a> CheckContext<'a> {
    pub fn new(
        registry: &'a Registry,
        manifest: &'a ExportManifest,
        policy: super::Policy<'a>,
        tokens: TokenCounter,
    ) -> Self {
        let datasets = registry
            .datasets
            .iter()
            .map(|d| {
                (
                    d.name.clone(),
                    DatasetFacts {
                        license_tag: d.license_tag.clone(),
                        has_provenance: d.provenance.is_some(),
                        allow: Allowlist::new(&d.pii_allowlist),
                    },
                )
            })
            .collect();
        let inputs = manifest
            .inputs
            .iter()
            .map(|i| (i.key.as_str(), (i.dataset.as_str(), i.sha256.as_str())))
            .collect();
        let rate = policy.config.spot_check.rate;
        Self {
            detector: policy.detector,
            datasets,
            inputs,
            waivers: policy.waivers,
            as_of: policy.as_of,
            config: policy.config,
            registry,
            sample_threshold: (rate * 2f64.powi(64)) as u128,
            no_allowlist: Allowlist::default(),
            tokens,
        }
    }

    /// The waiver for `code` on a record, if any.
    pub fn waiver(&self, code: &str, rec: &ExportedRecord) -> Option<WaiverUse> {
        if self.waivers.is_empty() {
            return None;
        }
        waiver::find(
            self.waivers,
            code,
            Subject {
                family: rec.family(),
                dataset: rec.dataset(),
                record: rec.id.as_deref(),
            },
            self.as_of,
        )
    }
}

/// Where a line is: its shard (by manifest order and key) and line number.
#[derive(Debug, Clone, Copy)]
pub(super) struct At<'a> {
    pub shard_index: u32,
    pub shard: &'a str,
    pub line: u64,
}

impl Locator {
    pub(super) fn at(at: At<'_>) -> Self {
        Self {
            at: format!("{}:{}", at.shard, at.line),
            id: None,
            source: None,
            message: None,
            role: None,
            chars: None,
            bytes: None,
            rule: None,
            detail: None,
            waived: false,
        }
    }

    pub(super) fn of(at: At<'_>, rec: &ExportedRecord) -> Self {
        Self {
            id: rec.id.clone(),
            source: rec.source(),
            ..Self::at(at)
        }
    }
}

/// A metadata value from a record, quoted for a report only when it looks like a label
/// (short, no spaces): a tampered record must not carry text into a report this way.
pub(super) fn label(value: &str) -> String {
    let plain = value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'));
    if plain {
        format!("{value:?}")
    } else {
        "(a value that is not a label)".to_string()
    }
}

/// Position of a finding in export order, for keeping the first locators.
pub(super) type Order = (u32, u64, u64);

/// The `cap` items with the smallest keys, whatever order they arrive in.
#[derive(Debug, Clone)]
pub(super) struct Capped<K: Ord, V> {
    cap: usize,
    items: BTreeMap<K, V>,
}

impl<K: Ord + Copy, V> Capped<K, V> {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            items: BTreeMap::new(),
        }
    }

    /// Whether an item at `key` would be kept (so callers build values only when needed).
    pub fn wants(&self, key: &K) -> bool {
        self.items.len() < self.cap || self.items.last_key_value().is_some_and(|(k, _)| key < k)
    }

    pub fn insert(&mut self, key: K, value: V) {
        if !self.wants(&key) {
            return;
        }
        self.items.insert(key, value);
        if self.items.len() > self.cap {
            self.items.pop_last();
        }
    }

    pub fn merge(&mut self, other: Self) {
        for (k, v) in other.items {
            self.insert(k, v);
        }
    }

    pub fn into_values(self) -> Vec<V> {
        self.items.into_values().collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.items.values()
    }
}

/// Occurrences per finding code, the first locators of each, and the waivers applied.
#[derive(Debug, Clone)]
pub(super) struct CodeTally {
    cap: usize,
    pub counts: BTreeMap<&'static Code, CodeCount>,
    pub locators: BTreeMap<&'static Code, Capped<Order, Locator>>,
    pub waivers: Vec<WaiverUse>,
}

impl CodeTally {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            counts: BTreeMap::new(),
            locators: BTreeMap::new(),
            waivers: Vec::new(),
        }
    }

    /// Records one occurrence of `code` at `order`; `locator` is built only if it is kept.
    pub fn add(
        &mut self,
        code: &'static Code,
        order: Order,
        waiver: Option<WaiverUse>,
        locator: impl FnOnce() -> Locator,
    ) {
        let applied = waiver
            .as_ref()
            .is_some_and(|w| w.status == waiver::WaiverStatus::Applied);
        let c = self.counts.entry(code).or_default();
        c.found += 1;
        if applied {
            c.waived += 1;
        }
        if let Some(w) = waiver
            && !self.waivers.contains(&w)
        {
            self.waivers.push(w);
        }
        let cap = self.cap;
        let list = self
            .locators
            .entry(code)
            .or_insert_with(|| Capped::new(cap));
        if list.wants(&order) {
            let mut l = locator();
            l.waived = applied;
            list.insert(order, l);
        }
    }

    pub fn merge(&mut self, other: CodeTally) {
        for (code, c) in other.counts {
            let mine = self.counts.entry(code).or_default();
            mine.found += c.found;
            mine.waived += c.waived;
        }
        for (code, list) in other.locators {
            match self.locators.get_mut(code) {
                Some(mine) => mine.merge(list),
                None => {
                    self.locators.insert(code, list);
                }
            }
        }
        for w in other.waivers {
            if !self.waivers.contains(&w) {
                self.waivers.push(w);
            }
        }
    }
}

/// Everything the scan found.
#[derive(Debug)]
pub(super) struct Scanned {
    pub integrity: CodeTally,
    pub shards: Vec<ShardCheck>,
    pub lines: u64,
    pub bytes: u64,
    /// Every per-record check's merged state.
    pub checks: Checks,
    /// Every record sketched for the duplicate checks.
    pub duplicates: Collected,
}

/// Lines of one shard handed to a worker.
struct Batch {
    shard_index: u32,
    buf: Vec<u8>,
    /// (line number, end offset in `buf`).
    lines: Vec<(u64, usize)>,
}

const BATCH_BYTES: usize = 2 << 20;
const BATCH_LINES: usize = 2048;

/// Partial results of some batches: unreadable lines, and every check's state.
struct Partial {
    integrity: CodeTally,
    checks: Checks,
}

impl Partial {
    fn new(ctx: &CheckContext<'_>) -> Self {
        Self {
            integrity: CodeTally::new(ctx.config.max_locators),
            checks: Checks::new(ctx),
        }
    }

    fn merge(mut self, other: Partial) -> Partial {
        self.integrity.merge(other.integrity);
        self.checks.merge(other.checks);
        self
    }
}

/// Reads and checks every line of every shard; see the module docs.
pub(super) fn scan(
    store: &Store,
    manifest: &ExportManifest,
    ctx: &CheckContext<'_>,
    limits: &Limits,
    sketcher: &Sketcher,
) -> Result<Scanned, GateError> {
    let shards: Vec<&ShardInfo> = manifest.shards().collect();
    let max_line = limits.max_export_line();
    let threads = rayon::current_num_threads().max(1);
    let (tx, rx) = sync_channel::<Batch>(threads * 2);
    let (sketch_tx, sketch_rx) = std::sync::mpsc::channel::<SketchBatch>();
    let bands = sketcher.params.bands;
    let perms = sketcher.params.bands * sketcher.params.rows;

    std::thread::scope(|scope| {
        let reader = scope.spawn(|| read_shards(store, &shards, max_line, ctx, tx));
        let collector = scope.spawn(move || duplicates::collect(sketch_rx, bands, perms));
        let partial = rx
            .into_iter()
            .par_bridge()
            .map_with(sketch_tx, |sketch_tx, batch| {
                let mut p = Partial::new(ctx);
                let mut sketches = SketchBatch::default();
                check_batch(ctx, &shards, &batch, &mut p, sketcher, &mut sketches);
                if !sketches.is_empty() {
                    let _ = sketch_tx.send(sketches);
                }
                p
            })
            .reduce(|| Partial::new(ctx), Partial::merge);
        let read = reader
            .join()
            .map_err(|_| GateError::Internal("the shard reader stopped unexpectedly".into()))??;
        let duplicates = collector.join().map_err(|_| {
            GateError::Internal("the sketch collector stopped unexpectedly".into())
        })??;
        let mut integrity = read.integrity;
        integrity.merge(partial.integrity);
        Ok(Scanned {
            integrity,
            shards: read.shards,
            lines: read.lines,
            bytes: read.bytes,
            checks: partial.checks,
            duplicates,
        })
    })
}

struct ReadOutcome {
    integrity: CodeTally,
    shards: Vec<ShardCheck>,
    lines: u64,
    bytes: u64,
}

fn read_shards(
    store: &Store,
    shards: &[&ShardInfo],
    max_line: usize,
    ctx: &CheckContext<'_>,
    tx: std::sync::mpsc::SyncSender<Batch>,
) -> Result<ReadOutcome, GateError> {
    let mut out = ReadOutcome {
        integrity: CodeTally::new(ctx.config.max_locators),
        shards: Vec::with_capacity(shards.len()),
        lines: 0,
        bytes: 0,
    };
    for (si, shard) in shards.iter().enumerate() {
        let si = si as u32;
        let at = |line| At {
            shard_index: si,
            shard: &shard.key,
            line,
        };
        let reader = match store.open_read(&shard.key) {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => {
                out.integrity
                    .add(&SHARD_MISSING, (si, 0, 0), None, || Locator::at(at(0)));
                out.shards.push(ShardCheck {
                    key: shard.key.clone(),
                    records_expected: shard.records,
                    records_read: 0,
                    sha256_expected: shard.sha256.clone(),
                    sha256_read: None,
                    ok: false,
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut lines = LineReader::new(
            BufReader::with_capacity(1 << 20, HashingReader::new(reader)),
            max_line,
        );
        let read_err = |source| GateError::Read {
            key: shard.key.clone(),
            source,
        };
        let mut count = 0u64;
        let mut batch = Batch {
            shard_index: si,
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            lines: Vec::with_capacity(BATCH_LINES),
        };
        while let Some(line) = lines.next_line().map_err(read_err)? {
            count += 1;
            match line {
                Line::Text { number, bytes } => {
                    batch.buf.extend_from_slice(bytes);
                    batch.lines.push((number, batch.buf.len()));
                }
                Line::Oversized { number, .. } => {
                    out.integrity
                        .add(&RECORD_UNREADABLE, (si, number, 0), None, || Locator {
                            detail: Some(format!("line longer than {max_line} bytes")),
                            ..Locator::at(at(number))
                        });
                }
            }
            if batch.buf.len() >= BATCH_BYTES || batch.lines.len() >= BATCH_LINES {
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        shard_index: si,
                        buf: Vec::with_capacity(BATCH_BYTES + 4096),
                        lines: Vec::with_capacity(BATCH_LINES),
                    },
                );
                if tx.send(full).is_err() {
                    break;
                }
            }
        }
        if !batch.lines.is_empty() {
            let _ = tx.send(batch);
        }
        let (sha, bytes) = lines.into_inner().into_inner().finish();
        out.lines += count;
        out.bytes += bytes;
        let sha_ok = sha == shard.sha256;
        let count_ok = count == shard.records;
        if !sha_ok {
            out.integrity
                .add(&SHARD_DIGEST_MISMATCH, (si, 0, 1), None, || Locator {
                    detail: Some(format!("manifest {}, read {sha}", shard.sha256)),
                    ..Locator::at(at(0))
                });
        }
        if !count_ok {
            out.integrity
                .add(&SHARD_COUNT_MISMATCH, (si, 0, 2), None, || Locator {
                    detail: Some(format!(
                        "manifest {} records, read {count} lines",
                        shard.records
                    )),
                    ..Locator::at(at(0))
                });
        }
        out.shards.push(ShardCheck {
            key: shard.key.clone(),
            records_expected: shard.records,
            records_read: count,
            sha256_expected: shard.sha256.clone(),
            sha256_read: Some(sha),
            ok: sha_ok && count_ok,
        });
    }
    Ok(out)
}

fn check_batch(
    ctx: &CheckContext<'_>,
    shards: &[&ShardInfo],
    batch: &Batch,
    p: &mut Partial,
    sketcher: &Sketcher,
    sketches: &mut SketchBatch,
) {
    let si = batch.shard_index;
    let shard = &shards[si as usize].key;
    let mut start = 0;
    for &(number, end) in &batch.lines {
        let raw = &batch.buf[start..end];
        start = end;
        let at = At {
            shard_index: si,
            shard,
            line: number,
        };
        match serde_json::from_slice::<ExportedRecord>(raw) {
            Ok(rec) => {
                p.checks.observe(ctx, &rec, raw, at);
                sketcher.sketch(&rec, at, sketches);
            }
            Err(e) => {
                // The category and column only: serde's message can quote the input.
                p.integrity
                    .add(&RECORD_UNREADABLE, (si, number, 0), None, || Locator {
                        detail: Some(format!(
                            "not an export record ({:?} error at column {})",
                            e.classify(),
                            e.column()
                        )),
                        ..Locator::at(at)
                    });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn only_label_like_metadata_is_quoted_in_reports() {
        assert_eq!(label("CC-BY-4.0"), "\"CC-BY-4.0\"");
        assert_eq!(label("not_scanned"), "\"not_scanned\"");
        assert_eq!(
            label("I told my therapist everything"),
            "(a value that is not a label)"
        );
    }
}
