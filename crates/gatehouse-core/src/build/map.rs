//! The per-object map: the build's first kernel.
//!
//! One source object is read once; its adapter emits items in source order, and each item
//! becomes what the build keeps of it: adapt → normalise (the adapters) → redact → sign
//! (content hash, record id, split, dedup sketch) → count. An item is identified by
//! `(source object, ordinal)`; what the map makes of it depends only on the object's bytes,
//! the dataset and the settings — never on the thread, the executor, the other objects or
//! the order in which objects are mapped. The object's digest covers every byte, read once.
//!
//! The map does not decide where its output goes: it hands each [`Mapped`] item to the
//! executor's sink. The rayon executor (`process.rs`) spills lines to local files and keeps
//! the sketches in memory; another executor can put the same values in Arrow columns. The
//! object's counts are a [`ObjectTally`] folded from the items, and [`object_report`] turns
//! them into the build report's entry for the object.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::split::{self, Split};
use super::{BuildConfig, BuildError, ObjectReport, manifest};
use crate::contract::record::{ExportRecordView, MetadataView, ProvenanceView};
use crate::digest::HashingReader;
use crate::record::{self, Role};
use crate::registry::{Dataset, Family};
use crate::report::Verdict;
use crate::source::{self, Adapted, Item, ObjectSummary};
use crate::store::Store;
use gatehouse_text::TokenCounter;
use gatehouse_text::dedup::{MinHasher, Shingler, exact_key};
use gatehouse_text::pii::{Allowlist, Detector, Redaction, redact_conversation};

/// Stands in for the source object's sha256 in an exported line until the whole object has
/// been read; the same length as a real digest so the assembly can patch it in place. `?`
/// is not a hex digit, so it can never be mistaken for a real digest.
pub const PENDING_SHA: &str =
    "sha256:????????????????????????????????????????????????????????????????";

/// Every record is mapped as unique; the assembly patches the representatives.
pub const DEDUP_UNIQUE: &str = "unique";
pub const DEDUP_REPRESENTATIVE: &str = "kept_representative";

/// What describes records for deduplication: shingles, MinHash signature, band keys.
#[derive(Debug)]
pub struct Sketcher {
    pub shingler: Shingler,
    pub minhasher: MinHasher,
    pub shingle_system: bool,
    /// Whether near duplicates are looked for (shingles and signatures are needed).
    pub near: bool,
}

impl Sketcher {
    pub fn new(config: &super::dedup::DedupConfig) -> Self {
        Self {
            shingler: Shingler::with_boilerplate(&config.near_params, &config.boilerplate),
            minhasher: MinHasher::new(&config.near_params),
            shingle_system: config.shingle_system,
            near: config.near,
        }
    }
}

/// Everything the map reads besides the object: the same for every object of a dataset.
#[derive(Debug, Clone, Copy)]
pub struct MapContext<'a> {
    pub dataset: &'a Dataset,
    pub family: &'a Family,
    pub config: &'a BuildConfig,
    /// `generated_by` of this build, written into each record's provenance.
    pub pipeline: &'a str,
    pub tokens: &'a TokenCounter,
    pub detector: &'a Detector,
    pub sketcher: &'a Sketcher,
    /// Record ids reviewers flagged: left out.
    pub blocklist: &'a HashSet<String>,
}

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// Exported into a split; `line` is its export line, `sketch` its dedup description.
    Exported(Split),
    /// Held back for human review by the `pii_unsure = "review"` policy (`id` only).
    Held,
    /// Left out because reviewers flagged it (the blocklist).
    #[default]
    Blocked,
    /// Quarantined; `line` is its quarantine line. `by_build` when the adapter read it but
    /// the build withheld it (its redaction did not settle).
    Quarantined { by_build: Option<source::Reason> },
}

/// A record's description for deduplication.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    /// Normalised exact key of the messages.
    pub exact: u128,
    /// Shingle ids (empty when near duplicates are not looked for).
    pub shingles: Vec<u32>,
    /// LSH band keys, one per band.
    pub bands: Vec<u64>,
    /// The low byte of every min-hash (`bands × rows`), for the cheap similarity estimate.
    pub low: Vec<u8>,
}

/// What the map made of one item. Reused from item to item: its buffers keep their
/// capacity, and every field is rewritten for each item.
#[derive(Debug, Clone, Default)]
pub struct Mapped {
    /// Position of the item among the object's items (source order, from 0).
    pub ordinal: u64,
    pub outcome: Outcome,
    /// The record id (empty for an item the adapter quarantined).
    pub id: String,
    /// Line where the item starts in the object.
    pub source_line: u64,
    /// The export line (with [`PENDING_SHA`]) or the quarantine line, without newline;
    /// empty for held and blocked records.
    pub line: Vec<u8>,
    /// Tokens of the exported record's messages.
    pub tokens: u64,
    /// Same-role turns merged and blank turns dropped by the adapter.
    pub merged_turns: u64,
    pub blank_turns: u64,
    /// Filled for exported records.
    pub sketch: Sketch,
}

/// The counts of one object, folded from its mapped items.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectTally {
    pub exported: u64,
    pub tokens: u64,
    pub blocked: u64,
    /// Ids held for review, in source order.
    pub held_for_review: Vec<String>,
    pub merged_turns: u64,
    pub blank_turns: u64,
    /// Records the build quarantined, by "code name".
    pub unsettled: BTreeMap<String, u64>,
}

impl ObjectTally {
    pub fn observe(&mut self, m: &Mapped) {
        self.merged_turns += m.merged_turns;
        self.blank_turns += m.blank_turns;
        match m.outcome {
            Outcome::Exported(_) => {
                self.exported += 1;
                self.tokens += m.tokens;
            }
            Outcome::Held => self.held_for_review.push(m.id.clone()),
            Outcome::Blocked => self.blocked += 1,
            Outcome::Quarantined {
                by_build: Some(reason),
            } => {
                *self
                    .unsettled
                    .entry(format!("{} {}", reason.code(), reason.name()))
                    .or_default() += 1;
            }
            Outcome::Quarantined { by_build: None } => {}
        }
    }
}

/// One object mapped: its identity (key, size, digest) and its entry in the build report
/// (before deduplication, which the assembly subtracts).
#[derive(Debug, Clone)]
pub struct MappedObject {
    pub input: manifest::InputObject,
    pub report: ObjectReport,
}

/// Maps every item of object `key`, in source order, handing each to `sink`. The digest
/// is of the version read; a Parquet object is read by ranges pinned to one version.
pub fn map_object(
    ctx: &MapContext<'_>,
    store: &Store,
    key: &str,
    sink: &mut dyn FnMut(&Mapped) -> Result<(), BuildError>,
) -> Result<MappedObject, BuildError> {
    let mut mapper = Mapper::new(ctx, key);
    let mut tally = ObjectTally::default();
    let mut mapped = Mapped::default();
    let mut failure: Option<BuildError> = None;
    let mut on_item = |item: Item| {
        if failure.is_some() {
            return;
        }
        let result = mapper
            .map(item, &mut mapped)
            .and_then(|()| sink(&mapped))
            .map(|()| tally.observe(&mapped));
        if let Err(e) = result {
            failure = Some(e);
        }
    };
    let read_err = |source| BuildError::Read {
        key: key.to_string(),
        source,
    };
    let (dataset, limits) = (ctx.dataset, &ctx.config.limits);
    let (summary, mut source) = if source::Container::of(dataset, key) == source::Container::Parquet
    {
        // Random access by ranges pinned to one version of the object; the digest is of
        // that version, read once more front to back.
        let ranges = store.open_ranges(key)?;
        let summary = source::parquet::adapt(ranges.clone(), key, dataset, limits, &mut on_item)
            .map_err(read_err)?;
        let whole: Box<dyn std::io::Read> = Box::new(source::parquet::Sequential::new(ranges));
        (summary, HashingReader::new(whole))
    } else {
        // One read: the adapter's bytes are hashed on the way through.
        let stream: Box<dyn std::io::Read> = Box::new(store.open_read(key)?);
        let mut source = HashingReader::new(stream);
        let summary =
            source::adapt(&mut source, key, dataset, limits, &mut on_item).map_err(read_err)?;
        (summary, source)
    };
    if let Some(e) = failure {
        return Err(e);
    }
    // An adapter may stop early (a broken document); the digest still covers every byte.
    std::io::copy(&mut source, &mut std::io::sink()).map_err(read_err)?;
    let (sha256, bytes) = source.finish();
    let input = manifest::InputObject {
        key: key.to_string(),
        dataset: dataset.name.clone(),
        bytes,
        sha256,
    };
    let report = object_report(&input, &summary, tally, ctx.config.max_quarantine_rate);
    Ok(MappedObject { input, report })
}

/// The build report's entry for an object, from the adapter's summary and the map's tally.
pub fn object_report(
    input: &manifest::InputObject,
    summary: &ObjectSummary,
    tally: ObjectTally,
    max_quarantine_rate: f64,
) -> ObjectReport {
    // Records the build quarantined were counted as records by the adapter.
    let build_quarantined: u64 = tally.unsettled.values().sum();
    let mut quarantined_by_reason = summary.quarantined.clone();
    for (k, v) in &tally.unsettled {
        *quarantined_by_reason.entry(k.clone()).or_default() += v;
    }
    let read = summary.records + summary.quarantined_total();
    let quarantined = summary.quarantined_total() + build_quarantined;
    let removed = tally.held_for_review.len() as u64 + tally.blocked;
    let rate = if read == 0 {
        0.0
    } else {
        quarantined as f64 / read as f64
    };
    let verdict = if summary.incomplete || rate > max_quarantine_rate {
        Verdict::Fail
    } else if quarantined > 0 {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    ObjectReport {
        key: input.key.clone(),
        dataset: input.dataset.clone(),
        bytes: input.bytes,
        sha256: input.sha256.clone(),
        read,
        exported: tally.exported,
        tokens: tally.tokens,
        quarantined: quarantined_by_reason,
        removed_by_policy: removed,
        blocked_by_reviewers: tally.blocked,
        duplicates_removed: 0,
        held_for_review: tally.held_for_review,
        merged_turns: tally.merged_turns,
        blank_turns_dropped: tally.blank_turns,
        quarantine_rate: (rate * 1e6).round() / 1e6,
        incomplete: summary.incomplete,
        verdict,
    }
}

/// The map of one object's items, with its scratch buffers.
struct Mapper<'a> {
    ctx: &'a MapContext<'a>,
    key: &'a str,
    allow: Allowlist,
    ordinal: u64,
    signature: Vec<u32>,
}

impl<'a> Mapper<'a> {
    fn new(ctx: &'a MapContext<'a>, key: &'a str) -> Self {
        Self {
            ctx,
            key,
            allow: Allowlist::new(&ctx.dataset.pii_allowlist),
            ordinal: 0,
            signature: Vec::new(),
        }
    }

    /// Maps the next item into `out`.
    fn map(&mut self, item: Item, out: &mut Mapped) -> Result<(), BuildError> {
        out.ordinal = self.ordinal;
        self.ordinal += 1;
        out.id.clear();
        out.line.clear();
        out.tokens = 0;
        out.merged_turns = 0;
        out.blank_turns = 0;
        match item {
            Item::Record(r) => self.record(r, out),
            Item::Quarantined(q) => {
                out.outcome = Outcome::Quarantined { by_build: None };
                out.source_line = q.line;
                self.quarantine_line(q.line, q.part, q.reason, &q.detail, out)
            }
        }
    }

    /// An adapted record: blocked, held, quarantined (its redaction did not settle) or
    /// exported.
    fn record(&mut self, mut r: Adapted, out: &mut Mapped) -> Result<(), BuildError> {
        let (ctx, dataset) = (self.ctx, self.ctx.dataset);
        out.merged_turns = u64::from(r.merged_turns);
        out.blank_turns = u64::from(r.blank_turns_dropped);
        out.source_line = r.line;
        out.id = record::record_id(&dataset.name, self.key, r.line, r.part);
        if ctx.blocklist.contains(&out.id) {
            out.outcome = Outcome::Blocked;
            return Ok(());
        }
        let redaction = redact(ctx, &self.allow, &mut r);
        match disposition(&redaction) {
            Disposition::Export => {}
            Disposition::Hold => {
                out.outcome = Outcome::Held;
                return Ok(());
            }
            Disposition::Quarantine(reason) => {
                out.outcome = Outcome::Quarantined {
                    by_build: Some(reason),
                };
                return self.quarantine_line(r.line, r.part, reason, UNSETTLED_DETAIL, out);
            }
        }
        let group = match &r.group {
            Some(g) => format!("{}:{g}", dataset.name),
            None => format!("{}:{}", dataset.name, out.id),
        };
        let split = split::assign(
            ctx.config.seed,
            &group,
            ctx.family.holdout,
            &ctx.config.ratios,
        );
        out.outcome = Outcome::Exported(split);
        out.tokens = r
            .messages
            .iter()
            .map(|m| ctx.tokens.count(&m.content))
            .sum();
        self.sketch(&r, &mut out.sketch);
        serde_json::to_writer(
            &mut out.line,
            &ExportRecordView {
                id: &out.id,
                messages: &r.messages,
                metadata: MetadataView {
                    source_family: &dataset.family,
                    dataset: &dataset.name,
                    stage: &dataset.stage,
                    source_key: self.key,
                    source_line: r.line,
                    content_hash: record::content_hash(&r.messages),
                    pii_status: if redaction.total() == 0 {
                        "none_detected"
                    } else {
                        "scrubbed"
                    },
                    redactions: redaction
                        .counts
                        .iter()
                        .map(|(k, v)| (k.label(), *v))
                        .collect(),
                    license_tag: dataset.license_tag.as_deref().unwrap_or_default(),
                    split,
                    group: &group,
                    source_fields: &r.source_fields,
                    provenance: ProvenanceView {
                        source_sha256: PENDING_SHA,
                        pipeline: ctx.pipeline,
                        dedup_status: DEDUP_UNIQUE,
                        steps: ["adapt", "normalise_roles", "redact_pii", "split", "dedup"],
                    },
                    turns: r.messages.len(),
                    tokens: out.tokens,
                },
            },
        )
        .map_err(|e| BuildError::Serialise("a record", e))
    }

    /// The record's exact key and, when near duplicates are looked for, its shingles,
    /// signature low bytes and band keys.
    fn sketch(&mut self, r: &Adapted, sketch: &mut Sketch) {
        let tools = self.ctx.sketcher;
        sketch.exact = exact_key(
            r.messages
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_str())),
        );
        sketch.shingles.clear();
        sketch.bands.clear();
        sketch.low.clear();
        if tools.near {
            tools.shingler.shingles(
                r.messages
                    .iter()
                    .filter(|m| tools.shingle_system || m.role != Role::System)
                    .map(|m| m.content.as_str()),
                &mut sketch.shingles,
            );
            tools
                .minhasher
                .signature(&sketch.shingles, &mut self.signature);
            tools
                .minhasher
                .band_keys(&self.signature, &mut sketch.bands);
            MinHasher::low_bytes(&self.signature, &mut sketch.low);
        }
    }

    fn quarantine_line(
        &self,
        line: u64,
        part: u32,
        reason: source::Reason,
        detail: &str,
        out: &mut Mapped,
    ) -> Result<(), BuildError> {
        serde_json::to_writer(
            &mut out.line,
            &QuarantineLine {
                key: self.key,
                line,
                part,
                dataset: &self.ctx.dataset.name,
                code: reason.code(),
                reason: reason.name(),
                detail,
            },
        )
        .map_err(|e| BuildError::Serialise("a quarantine line", e))
    }
}

/// Redacts the record's messages and its carried string fields in place.
fn redact(ctx: &MapContext<'_>, allow: &Allowlist, r: &mut Adapted) -> Redaction {
    redact_conversation(
        ctx.detector,
        allow,
        ctx.config.pii_unsure,
        r.messages.iter_mut().map(|m| &mut m.content).chain(
            r.source_fields.values_mut().filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            }),
        ),
    )
}

/// A line of `quarantine.jsonl`.
#[derive(Serialize)]
struct QuarantineLine<'a> {
    key: &'a str,
    line: u64,
    part: u32,
    dataset: &'a str,
    code: &'static str,
    reason: &'static str,
    detail: &'a str,
}

/// `detail` of a record quarantined because its redaction did not settle.
const UNSETTLED_DETAIL: &str = "a PII scan of the redacted text still found identifiers after the \
     redaction's last round; the record is withheld (never exported half-redacted)";

/// What the build does with a redacted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    Export,
    /// Held back for human review by the `pii_unsure = "review"` policy.
    Hold,
    /// Withheld and listed in `quarantine.jsonl` with this reason.
    Quarantine(source::Reason),
}

/// A record whose redaction did not settle is quarantined (whatever the review policy says:
/// the gate's scan would find what is left); one the policy holds is held; the rest export.
pub(super) fn disposition(r: &Redaction) -> Disposition {
    if r.unsettled {
        Disposition::Quarantine(source::Reason::PiiRedactionUnsettled)
    } else if r.requires_review {
        Disposition::Hold
    } else {
        Disposition::Export
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsettled_redaction_is_quarantined_even_when_the_policy_would_hold_it() {
        let unsettled = Redaction {
            unsettled: true,
            requires_review: true,
            ..Redaction::default()
        };
        assert_eq!(
            disposition(&unsettled),
            Disposition::Quarantine(source::Reason::PiiRedactionUnsettled)
        );
        let reason = source::Reason::PiiRedactionUnsettled;
        assert_eq!(
            format!("{} {}", reason.code(), reason.name()),
            super::super::UNSETTLED_KEY
        );
        let held = Redaction {
            requires_review: true,
            ..Redaction::default()
        };
        assert_eq!(disposition(&held), Disposition::Hold);
        assert_eq!(disposition(&Redaction::default()), Disposition::Export);
    }
}
