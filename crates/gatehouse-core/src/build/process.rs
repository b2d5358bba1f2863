//! One source object's share of a build, done on a worker thread: hash the object, adapt it,
//! turn every conversation into an export record, and spill the records (tagged with their
//! split) and the quarantine entries to a local file in source order. Spilling keeps memory
//! bounded and lets objects be processed in parallel while the final output stays in key
//! order: the spills are appended one after the other afterwards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};

use serde::Serialize;

use super::dedup::{Entry, ObjectEntries, ShingleSpill};
use super::split::{self, Split};
use super::{BuildConfig, BuildError, ObjectReport, manifest};
use crate::contract::record::{ExportRecordView, MetadataView, ProvenanceView};
use crate::digest::HashingReader;
use crate::record::{self, Role};
use crate::registry::{Dataset, Family};
use crate::report::Verdict;
use crate::source::{self, Item};
use crate::store::Store;
use gatehouse_text::dedup::{MinHasher, Shingler, exact_key};
use gatehouse_text::pii::{Allowlist, Detector, redact_conversation};

/// Spill line tags: a record of a split, or a quarantine entry.
const TAG_TRAIN: u8 = b'T';
const TAG_VAL: u8 = b'V';
const TAG_TEST: u8 = b'E';
const TAG_QUARANTINE: u8 = b'Q';

fn tag(split: Split) -> u8 {
    match split {
        Split::Train => TAG_TRAIN,
        Split::Val => TAG_VAL,
        Split::Test => TAG_TEST,
    }
}

/// Where a spilled line goes.
pub(super) enum Destination {
    Record(Split),
    Quarantine,
}

pub(super) fn destination(t: u8) -> Option<Destination> {
    match t {
        TAG_TRAIN => Some(Destination::Record(Split::Train)),
        TAG_VAL => Some(Destination::Record(Split::Val)),
        TAG_TEST => Some(Destination::Record(Split::Test)),
        TAG_QUARANTINE => Some(Destination::Quarantine),
        _ => None,
    }
}

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

/// The result of one object, ready to be appended in key order.
#[derive(Debug)]
pub(super) struct ObjectOutput {
    pub report: ObjectReport,
    pub input: manifest::InputObject,
    pub family: String,
    pub spill: tempfile::TempPath,
}

/// What the workers need to describe records for deduplication.
#[derive(Debug)]
pub(super) struct DedupTools {
    pub shingler: Shingler,
    pub minhasher: MinHasher,
    pub shingle_system: bool,
    /// Whether near duplicates are looked for (shingles and signatures are needed).
    pub near: bool,
}

/// Every record is spilled as unique; the append step patches the representatives.
pub(super) const DEDUP_UNIQUE: &str = "unique";
pub(super) const DEDUP_REPRESENTATIVE: &str = "kept_representative";

/// Replaces the `dedup_status` value of a record line. The key with its bare quotes can
/// only be our structure: inside a JSON string every quote is escaped.
pub(super) fn patch_dedup_status(line: &mut Vec<u8>, status: &str) -> Result<(), BuildError> {
    const KEY: &[u8] = b"\"dedup_status\":\"";
    let at = memchr::memmem::rfind(line, KEY)
        .ok_or_else(|| BuildError::Internal("a spilled record has no dedup status".into()))?
        + KEY.len();
    let end = at
        + memchr::memchr(b'"', &line[at..]).ok_or_else(|| {
            BuildError::Internal("a spilled record has a broken dedup status".into())
        })?;
    line.splice(at..end, status.bytes());
    Ok(())
}

/// Stands in for the source object's sha256 until the whole object has been read; the same
/// length as a real digest so the append step can patch it in place. `?` is not a hex digit,
/// so it can never be mistaken for a real digest.
pub(super) const PENDING_SHA: &str =
    "sha256:????????????????????????????????????????????????????????????????";

/// Patches the object's digest into a spilled record line. Provenance is serialised after
/// every field that can hold source text, so the last occurrence is always ours.
pub(super) fn patch_sha(line: &[u8], sha: &str, out: &mut Vec<u8>) -> Result<(), BuildError> {
    let at = memchr::memmem::rfind(line, PENDING_SHA.as_bytes()).ok_or_else(|| {
        BuildError::Internal("a spilled record has no provenance placeholder".into())
    })?;
    out.clear();
    out.extend_from_slice(&line[..at]);
    out.extend_from_slice(sha.as_bytes());
    out.extend_from_slice(&line[at + PENDING_SHA.len()..]);
    Ok(())
}

pub(super) struct Job<'a> {
    pub store: &'a Store,
    pub key: &'a str,
    pub dataset: &'a Dataset,
    pub family: &'a Family,
    pub config: &'a BuildConfig,
    pub pipeline: &'a str,
    pub spill_dir: &'a std::path::Path,
    pub tokens: &'a gatehouse_text::TokenCounter,
    pub detector: &'a Detector,
    pub dedup: &'a DedupTools,
    /// Record ids reviewers flagged: left out.
    pub blocklist: &'a std::collections::HashSet<String>,
}

/// Processes one object: its output, and its exported records described for deduplication
/// (in spill order).
///
/// Still one long function (about 290 lines): adapt → normalise → redact → sign → count for
/// every record of the object, with the quarantine and policy branches in line. It is the
/// per-object kernel a second executor (issue 21) must call, so its recut into pure steps
/// keyed by (object, ordinal) is that work's first step, not a rename here.
pub(super) fn process(job: &Job<'_>) -> Result<(ObjectOutput, ObjectEntries), BuildError> {
    let (store, key, dataset) = (job.store, job.key, job.dataset);
    let spill_err = |source| BuildError::Read {
        key: format!("(local spill file for {key})"),
        source,
    };
    let spill = tempfile::NamedTempFile::new_in(job.spill_dir).map_err(spill_err)?;
    let mut out = BufWriter::with_capacity(1 << 20, spill.reopen().map_err(spill_err)?);
    let shingle_file = tempfile::NamedTempFile::new_in(job.spill_dir).map_err(spill_err)?;
    let mut shingle_spill = ShingleSpill::new(shingle_file.reopen().map_err(spill_err)?);
    let mut entries: Vec<Entry> = Vec::new();
    let mut bands: Vec<u64> = Vec::new();
    let mut low: Vec<u8> = Vec::new();
    let mut low_one: Vec<u8> = Vec::new();
    let (mut shingles, mut signature, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let mut exported_tokens = 0u64;
    let license = dataset.license_tag.as_deref().unwrap_or_default();
    let (mut merged, mut blank) = (0u64, 0u64);
    let allow = Allowlist::new(&dataset.pii_allowlist);
    let mut held_for_review: Vec<String> = Vec::new();
    // Quarantined by the build itself (redaction did not settle), by "code name".
    let mut unsettled: BTreeMap<String, u64> = BTreeMap::new();
    let mut exported = 0u64;
    let mut blocked = 0u64;
    let mut failure: Option<BuildError> = None;
    let mut line = Vec::with_capacity(4096);
    let mut on_item = |item: Item| {
        if failure.is_some() {
            return;
        }
        line.clear();
        let serialised = match item {
            Item::Record(mut r) => {
                merged += u64::from(r.merged_turns);
                blank += u64::from(r.blank_turns_dropped);
                let id = record::record_id(&dataset.name, key, r.line, r.part);
                if job.blocklist.contains(&id) {
                    blocked += 1;
                    return;
                }
                let redaction = redact_conversation(
                    job.detector,
                    &allow,
                    job.config.pii_unsure,
                    r.messages.iter_mut().map(|m| &mut m.content).chain(
                        r.source_fields.values_mut().filter_map(|v| match v {
                            serde_json::Value::String(s) => Some(s),
                            _ => None,
                        }),
                    ),
                );
                match disposition(&redaction) {
                    Disposition::Export => {}
                    Disposition::Hold => {
                        held_for_review.push(id);
                        return;
                    }
                    Disposition::Quarantine(reason) => {
                        *unsettled
                            .entry(format!("{} {}", reason.code(), reason.name()))
                            .or_default() += 1;
                        line.push(TAG_QUARANTINE);
                        let written = serde_json::to_writer(
                            &mut line,
                            &QuarantineLine {
                                key,
                                line: r.line,
                                part: r.part,
                                dataset: &dataset.name,
                                code: reason.code(),
                                reason: reason.name(),
                                detail: UNSETTLED_DETAIL,
                            },
                        )
                        .map_err(|e| BuildError::Serialise("a quarantine line", e))
                        .and_then(|()| {
                            line.push(b'\n');
                            out.write_all(&line).map_err(spill_err)
                        });
                        if let Err(e) = written {
                            failure = Some(e);
                        }
                        return;
                    }
                }
                exported += 1;
                let group = match &r.group {
                    Some(g) => format!("{}:{g}", dataset.name),
                    None => format!("{}:{id}", dataset.name),
                };
                let split = split::assign(
                    job.config.seed,
                    &group,
                    job.family.holdout,
                    &job.config.ratios,
                );
                let tokens: u64 = r
                    .messages
                    .iter()
                    .map(|m| job.tokens.count(&m.content))
                    .sum();
                exported_tokens += tokens;
                let tools = job.dedup;
                let exact = exact_key(
                    r.messages
                        .iter()
                        .map(|m| (m.role.as_str(), m.content.as_str())),
                );
                if tools.near {
                    tools.shingler.shingles(
                        r.messages
                            .iter()
                            .filter(|m| tools.shingle_system || m.role != Role::System)
                            .map(|m| m.content.as_str()),
                        &mut shingles,
                    );
                    tools.minhasher.signature(&shingles, &mut signature);
                    tools.minhasher.band_keys(&signature, &mut keys);
                    bands.extend_from_slice(&keys);
                    MinHasher::low_bytes(&signature, &mut low_one);
                    low.extend_from_slice(&low_one);
                }
                let shingles_at = match shingle_spill.push(&shingles) {
                    Ok(at) => at,
                    Err(e) => {
                        failure = Some(spill_err(e));
                        return;
                    }
                };
                entries.push(Entry {
                    exact,
                    id: id.clone(),
                    line: r.line,
                    tokens,
                    shingles_at,
                    shingles_len: shingles.len() as u32,
                });
                line.push(tag(split));
                serde_json::to_writer(
                    &mut line,
                    &ExportRecordView {
                        id: &id,
                        messages: &r.messages,
                        metadata: MetadataView {
                            source_family: &dataset.family,
                            dataset: &dataset.name,
                            stage: &dataset.stage,
                            source_key: key,
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
                            license_tag: license,
                            split,
                            group: &group,
                            source_fields: &r.source_fields,
                            provenance: ProvenanceView {
                                source_sha256: PENDING_SHA,
                                pipeline: job.pipeline,
                                dedup_status: DEDUP_UNIQUE,
                                steps: ["adapt", "normalise_roles", "redact_pii", "split", "dedup"],
                            },
                            turns: r.messages.len(),
                            tokens,
                        },
                    },
                )
            }
            Item::Quarantined(q) => {
                line.push(TAG_QUARANTINE);
                serde_json::to_writer(
                    &mut line,
                    &QuarantineLine {
                        key,
                        line: q.line,
                        part: q.part,
                        dataset: &dataset.name,
                        code: q.reason.code(),
                        reason: q.reason.name(),
                        detail: &q.detail,
                    },
                )
            }
        };
        line.push(b'\n');
        let result = serialised
            .map_err(|e| BuildError::Serialise("a record", e))
            .and_then(|()| out.write_all(&line).map_err(spill_err));
        if let Err(e) = result {
            failure = Some(e);
        }
    };
    let read_err = |source| BuildError::Read {
        key: key.to_string(),
        source,
    };
    let limits = &job.config.limits;
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
    let (object_sha, bytes) = source.finish();
    out.flush().map_err(spill_err)?;
    drop(out);
    shingle_spill.finish().map_err(spill_err)?;

    // Records the build quarantined were counted as records by the adapter.
    let build_quarantined: u64 = unsettled.values().sum();
    let mut quarantined_by_reason = summary.quarantined.clone();
    for (k, v) in &unsettled {
        *quarantined_by_reason.entry(k.clone()).or_default() += v;
    }
    let read = summary.records + summary.quarantined_total();
    let quarantined = summary.quarantined_total() + build_quarantined;
    let removed = held_for_review.len() as u64 + blocked;
    let rate = if read == 0 {
        0.0
    } else {
        quarantined as f64 / read as f64
    };
    let verdict = if summary.incomplete || rate > job.config.max_quarantine_rate {
        Verdict::Fail
    } else if quarantined > 0 {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let entries = ObjectEntries {
        entries,
        bands,
        low,
        shingles: shingle_file.into_temp_path(),
    };
    let output = ObjectOutput {
        input: manifest::InputObject {
            key: key.to_string(),
            dataset: dataset.name.clone(),
            bytes,
            sha256: object_sha.clone(),
        },
        report: ObjectReport {
            key: key.to_string(),
            dataset: dataset.name.clone(),
            bytes,
            sha256: object_sha,
            read,
            exported,
            tokens: exported_tokens,
            quarantined: quarantined_by_reason,
            removed_by_policy: removed,
            blocked_by_reviewers: blocked,
            duplicates_removed: 0,
            held_for_review,
            merged_turns: merged,
            blank_turns_dropped: blank,
            quarantine_rate: (rate * 1e6).round() / 1e6,
            incomplete: summary.incomplete,
            verdict,
        },
        family: dataset.family.clone(),
        // Close the file but keep it: thousands of objects must not hold thousands of fds.
        spill: spill.into_temp_path(),
    };
    Ok((output, entries))
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
pub(super) fn disposition(r: &gatehouse_text::pii::Redaction) -> Disposition {
    if r.unsettled {
        Disposition::Quarantine(source::Reason::PiiRedactionUnsettled)
    } else if r.requires_review {
        Disposition::Hold
    } else {
        Disposition::Export
    }
}

/// Receives a spilled line's tag and the line (without tag and newline).
pub(super) type SpillFn<'a> = dyn FnMut(u8, &[u8]) -> Result<(), BuildError> + 'a;

/// Reads a spill back line by line.
pub(super) fn for_each_spilled(
    spill: &std::path::Path,
    f: &mut SpillFn<'_>,
) -> Result<(), BuildError> {
    let err = |source| BuildError::Read {
        key: "(local spill file)".into(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(spill).map_err(err)?);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(err)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if let Some((&t, rest)) = buf.split_first() {
            f(t, rest)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_text::pii::Redaction;

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
