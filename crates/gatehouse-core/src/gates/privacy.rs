//! The privacy gate: a fresh PII scan of every message of every exported record. Any
//! detection fails it (unless a waiver covers that record and code), as does a record whose
//! `pii_status` does not say it was scanned. The report holds counts by finding code and
//! locators (`shard:line`, record id, message index, char and byte offsets, rule), never the
//! text. It also draws the spot-check sample: whole exported (already redacted) records for
//! a human to read, chosen by a seeded hash so anyone can redraw the same sample.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::gate::{Finish, Finished, RecordCheck};
use super::scan::{
    At, Capped, CheckContext, CodeTally, ExportManifest, ExportedRecord, Locator, Scanned, label,
};
use super::{GateError, GateFindings, GateReport, GatesConfig};
use crate::report::Code;
use crate::report::codes::privacy::{
    EVALUATION_SET_UNREADABLE, PII_STATUS, PRECISION_BELOW_MINIMUM, RECALL_BELOW_MINIMUM, detected,
};
use gatehouse_text::pii::{Confidence, PiiType, Policy};

pub use crate::contract::gates::{
    EvaluationReport, MeasuredSet, PrivacyDetail, PrivacyMetrics, PrivacyReport, SpotCheck,
};

/// The values of `pii_status` an export may hold.
const SCANNED: [&str; 2] = ["none_detected", "scrubbed"];

/// Where in a record a span was found.
#[derive(Clone, Copy)]
enum Place<'r> {
    Message(usize, &'r super::scan::ExportedMessage),
    Field(&'r str),
}

/// One record drawn for the spot-check.
#[derive(Debug, Clone)]
pub(super) struct SampleItem {
    id: Option<String>,
    at: String,
    /// (shard index, line): export order.
    order: (u32, u64),
    record: Box<serde_json::value::RawValue>,
}

/// Sample order: the sample hash, then export order (ties are practically impossible).
type SampleKey = (u64, u32, u64);

/// The privacy check's share of a scan.
#[derive(Debug, Clone)]
pub(super) struct PrivacyCheck {
    pub findings: CodeTally,
    pub records: u64,
    pub messages: u64,
    pub content_bytes: u64,
    pub records_with_detections: u64,
    pub detections: BTreeMap<PiiType, u64>,
    pub unsure: u64,
    pub pii_status: BTreeMap<String, u64>,
    /// Redactions the build recorded in `metadata.redactions`, by placeholder label.
    pub build_redactions: BTreeMap<String, u64>,
    pub sample: Capped<SampleKey, SampleItem>,
    seed: u64,
}

impl RecordCheck for PrivacyCheck {
    fn new(ctx: &CheckContext<'_>) -> Self {
        Self {
            findings: CodeTally::new(ctx.config.max_locators),
            records: 0,
            messages: 0,
            content_bytes: 0,
            records_with_detections: 0,
            detections: BTreeMap::new(),
            unsure: 0,
            pii_status: BTreeMap::new(),
            build_redactions: BTreeMap::new(),
            sample: Capped::new(ctx.config.spot_check.max),
            seed: ctx.config.spot_check.seed,
        }
    }

    fn observe(&mut self, ctx: &CheckContext<'_>, rec: &ExportedRecord, raw: &[u8], at: At<'_>) {
        self.records += 1;
        let allow = rec
            .dataset()
            .and_then(|d| ctx.datasets.get(d))
            .map_or(&ctx.no_allowlist, |d| &d.allow);
        let mut found = false;
        let mut n: u64 = 0;
        // The whole record at once, as the build's redaction scans it: a name found in one
        // message is looked for in every other.
        // Text carried in `metadata.source_fields` is scanned with them: the build redacted it
        // in the same pass.
        let carried: Vec<(&str, &str)> = rec
            .metadata
            .iter()
            .flat_map(|m| &m.source_fields)
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
            .collect();
        let texts: Vec<&str> = rec
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .chain(carried.iter().map(|(_, v)| *v))
            .collect();
        let spans = ctx.detector.detect_conversation(&texts, allow);
        // Messages, then the carried fields, in the order `texts` holds them.
        let places = rec
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| Place::Message(i, m))
            .chain(carried.iter().map(|(field, _)| Place::Field(field)));
        for (place, spans) in places.zip(spans) {
            if let Place::Message(_, m) = place {
                self.messages += 1;
                self.content_bytes += m.content.len() as u64;
            }
            for s in spans {
                found = true;
                n += 1;
                *self.detections.entry(s.kind).or_default() += 1;
                if s.confidence == Confidence::Unsure {
                    self.unsure += 1;
                }
                let code = detected(s.kind);
                let waiver = ctx.waiver(code.id, rec);
                self.findings
                    .add(code, (at.shard_index, at.line, n), waiver, || {
                        let found = Locator {
                            chars: Some([s.char_start, s.char_end]),
                            bytes: Some([s.start, s.end]),
                            rule: Some(s.rule.into()),
                            ..Locator::of(at, rec)
                        };
                        match place {
                            Place::Message(i, m) => Locator {
                                message: Some(i),
                                role: Some(m.role.clone()),
                                ..found
                            },
                            Place::Field(field) => Locator {
                                detail: Some(format!(
                                    "in metadata.source_fields {}",
                                    super::scan::label(field)
                                )),
                                ..found
                            },
                        }
                    });
            }
        }
        if found {
            self.records_with_detections += 1;
        }
        let status = rec.metadata.as_ref().and_then(|m| m.pii_status.as_deref());
        *self
            .pii_status
            .entry(status.unwrap_or("(missing)").to_string())
            .or_default() += 1;
        if !status.is_some_and(|s| SCANNED.contains(&s)) {
            let waiver = ctx.waiver(PII_STATUS.id, rec);
            self.findings
                .add(&PII_STATUS, (at.shard_index, at.line, 0), waiver, || {
                    Locator {
                        detail: Some(format!(
                            "pii_status is {}",
                            status.map_or("missing".to_string(), label)
                        )),
                        ..Locator::of(at, rec)
                    }
                });
        }
        if let Some(m) = &rec.metadata {
            for (label, n) in &m.redactions {
                *self.build_redactions.entry(label.clone()).or_default() += n;
            }
        }
        let h = sample_hash(self.seed, rec.id.as_deref(), at);
        let key = (h, at.shard_index, at.line);
        if u128::from(h) < ctx.sample_threshold
            && self.sample.wants(&key)
            && let Ok(raw) = serde_json::from_slice::<Box<serde_json::value::RawValue>>(raw)
        {
            self.sample.insert(
                key,
                SampleItem {
                    id: rec.id.clone(),
                    at: format!("{}:{}", at.shard, at.line),
                    order: (at.shard_index, at.line),
                    record: raw,
                },
            );
        }
    }

    fn merge(&mut self, other: PrivacyCheck) {
        self.findings.merge(other.findings);
        self.records += other.records;
        self.messages += other.messages;
        self.content_bytes += other.content_bytes;
        self.records_with_detections += other.records_with_detections;
        for (k, v) in other.detections {
            *self.detections.entry(k).or_default() += v;
        }
        self.unsure += other.unsure;
        for (k, v) in other.pii_status {
            *self.pii_status.entry(k).or_default() += v;
        }
        for (k, v) in other.build_redactions {
            *self.build_redactions.entry(k).or_default() += v;
        }
        self.sample.merge(other.sample);
    }
}

/// The first 8 bytes of sha256(`gatehouse-spot-check-v1 \0 seed \0 id`), big-endian. A record
/// without an id is identified by where it is.
fn sample_hash(seed: u64, id: Option<&str>, at: At<'_>) -> u64 {
    let mut h = Sha256::new();
    h.update(b"gatehouse-spot-check-v1\0");
    h.update(seed.to_string().as_bytes());
    h.update(b"\0");
    match id {
        Some(id) => h.update(id.as_bytes()),
        None => h.update(format!("{}:{}", at.shard, at.line).as_bytes()),
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("sha256 has 32 bytes"))
}

const SPOT_CHECK_METHOD: &str = "a record is drawn when the first 8 bytes of \
     sha256(\"gatehouse-spot-check-v1\\0\" seed \"\\0\" id), read as a big-endian integer, \
     fall below rate × 2^64; if more than max are drawn, the max with the smallest hash are \
     kept";

const SPOT_CHECK_INSTRUCTIONS: &str = "every record of the sample is reviewed by a person \
     as QA review type privacy_spot_check (`gatehouse qa invite --role privacy-spot-check`, \
     then the review app): any personal identifier left in the text is marked by its place \
     (record, message, code points, type; never the identifier itself), blocks the signoff \
     and sends the record to the blocklist";

const METHOD: &str = "every line of every shard in the manifest is read (shard sha256 and \
     record count verified); every record is scanned again, all its messages together (a name \
     found in one message is looked for in all), by the PII detector with the build's policy \
     and the dataset's allowlist; any detection, and any record whose pii_status \
     is not none_detected or scrubbed, fails the gate unless a waiver covers it";

pub(super) fn report(
    manifest: &ExportManifest,
    scanned: &Scanned,
    config: &GatesConfig,
    policy: &Policy,
    evaluation: (Option<EvaluationReport>, Vec<crate::report::Finding>),
    elapsed: Duration,
) -> PrivacyReport {
    let p = &scanned.checks.privacy;
    let seconds = elapsed.as_secs_f64();
    let mut sample = p.sample.clone().into_values();
    sample.sort_by_key(|s| s.order);
    let detail = PrivacyDetail {
        policy: policy.clone(),
        metrics: PrivacyMetrics {
            records_scanned: p.records,
            messages_scanned: p.messages,
            content_bytes_scanned: p.content_bytes,
            records_with_detections: p.records_with_detections,
            detections_by_type: p
                .detections
                .iter()
                .map(|(k, v)| (k.label().into(), *v))
                .collect(),
            unsure_detections: p.unsure,
            pii_status: p.pii_status.clone(),
            build_redactions: p.build_redactions.clone(),
            lines_read: scanned.lines,
            bytes_read: scanned.bytes,
            scan_seconds: (seconds * 1000.0).round() / 1000.0,
            scan_mb_per_second: if seconds > 0.0 {
                ((scanned.bytes as f64 / 1e6 / seconds) * 10.0).round() / 10.0
            } else {
                0.0
            },
        },
        spot_check: SpotCheck {
            method: SPOT_CHECK_METHOD.into(),
            seed: config.spot_check.seed,
            rate: config.spot_check.rate,
            max: config.spot_check.max,
            population: p.records,
            size: sample.len(),
            key: crate::layout::PII_SPOT_CHECK_SAMPLE.at(manifest
                .key
                .trim_end_matches(crate::layout::MANIFEST.name())),
            ids: sample
                .iter()
                .map(|s| s.id.clone().unwrap_or_else(|| s.at.clone()))
                .collect(),
            instructions: SPOT_CHECK_INSTRUCTIONS.into(),
        },
        evaluation: evaluation.0,
    };
    GateReport::new(
        manifest,
        scanned,
        config,
        GateFindings {
            gate: "privacy",
            method: METHOD,
            records: &p.findings,
            release: evaluation.1,
            warnings: &[],
        },
        detail,
    )
}

/// The privacy gate: the labelled sets measured, the report, and the spot-check sample
/// beside it.
pub(super) fn finish(f: &mut Finish<'_, '_>) -> Result<Finished, GateError> {
    // The gate's detector measured on the configured labelled sets.
    let evaluation = evaluate_sets(f.store, f.ctx, f.policy.evaluation)?;
    let report = report(
        f.manifest,
        &f.scanned,
        f.ctx.config,
        f.policy.detector.policy(),
        evaluation,
        f.elapsed,
    );
    let sample = sample_jsonl(&f.scanned.checks.privacy.sample);
    Ok(Finished {
        also: vec![(crate::layout::PII_SPOT_CHECK_SAMPLE, sample)],
        ..Finished::report(report)
    })
}

/// The spot-check sample file: one JSON object per line, in export order, each with the
/// record's id, where it is, and the record as exported.
pub(super) fn sample_jsonl(sample: &Capped<SampleKey, SampleItem>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Line<'a> {
        id: Option<&'a str>,
        at: &'a str,
        content_warning: &'static str,
        record: &'a serde_json::value::RawValue,
    }
    let mut items: Vec<&SampleItem> = sample.values().collect();
    items.sort_by_key(|s| s.order);
    let mut out = Vec::new();
    for s in items {
        let line = Line {
            id: s.id.as_deref(),
            at: &s.at,
            content_warning: "therapy conversations; may describe self-harm, abuse or crisis",
            record: &s.record,
        };
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

const EVALUATION_METHOD: &str = "each labelled set (one {text, spans:[{start, end, type}]} \
     document per line, code-point offsets) is read from the store and every document is \
     redacted by the gate's detector (the build's policy) exactly as the build redacts a \
     message; a label is caught when at least half of its characters were replaced; a replaced \
     region is a true positive when it overlaps any label; recall over direct identifiers \
     (person, address, phone, email, card, SSN, IBAN, IP, ID numbers) and precision are \
     compared, as point estimates, with the configured minimums; intervals are 95% Wilson";

/// Scores every configured labelled set with `ctx`'s detector. Store errors other than a
/// missing key are errors (the gate cannot do its job); a missing, unreadable or malformed
/// set, or a score below a minimum, is a finding that fails the gate.
///
/// About 120 lines on purpose: read, score and compare each set in one loop, so every way a
/// set can fail is a finding at the place it is found.
pub(super) fn evaluate_sets(
    store: &crate::store::Store,
    ctx: &CheckContext<'_>,
    evaluation: &crate::privacy::EvaluationConfig,
) -> Result<(Option<EvaluationReport>, Vec<crate::report::Finding>), super::GateError> {
    use crate::privacy::{Minimums, Shortfall, evaluate};
    use crate::report::{Finding, Severity};
    use crate::store::StoreError;

    if evaluation.sets.is_empty() {
        return Ok((None, Vec::new()));
    }
    let minimums = Minimums {
        min_recall_direct: evaluation.min_recall_direct,
        min_precision: evaluation.min_precision,
    };
    let finding = |code: &Code, subject: String, message: String| {
        let waiver = crate::waiver::find(
            ctx.waivers,
            code.id,
            crate::waiver::Subject::default(),
            ctx.as_of,
        );
        let applied = waiver
            .as_ref()
            .is_some_and(|w| w.status == crate::waiver::WaiverStatus::Applied);
        let severity = if applied {
            Severity::Warning
        } else {
            Severity::Error
        };
        Finding {
            waiver,
            ..Finding::new(code, severity, subject, message)
        }
    };
    let mut findings = Vec::new();
    let mut sets = Vec::new();
    for key in &evaluation.sets {
        let reader = match store.open_read(key) {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => {
                findings.push(finding(
                    &EVALUATION_SET_UNREADABLE,
                    key.clone(),
                    "the labelled set is not in the store; upload it or remove it from [privacy.evaluation] sets".into(),
                ));
                sets.push(MeasuredSet {
                    key: key.clone(),
                    sha256: None,
                    scores: None,
                    error: Some("not in the store".into()),
                    passed: false,
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut reader =
            std::io::BufReader::with_capacity(1 << 20, crate::digest::HashingReader::new(reader));
        let scored = evaluate(&mut reader, ctx.detector);
        // The digest covers the whole object, even when scoring stopped at a bad line.
        let drained = std::io::copy(&mut reader, &mut std::io::sink());
        let (sha256, _) = reader.into_inner().finish();
        let scored = match (scored, drained) {
            (Ok(e), Ok(_)) => Ok(e),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(crate::privacy::EvalError::Read(e)),
        };
        match scored {
            Ok(e) => {
                let shortfalls = minimums.shortfalls(&e);
                for (what, message) in &shortfalls {
                    let code = match what {
                        Shortfall::RecallDirect => &RECALL_BELOW_MINIMUM,
                        Shortfall::Precision => &PRECISION_BELOW_MINIMUM,
                    };
                    findings.push(finding(code, key.clone(), message.clone()));
                }
                sets.push(MeasuredSet {
                    key: key.clone(),
                    sha256: Some(sha256),
                    scores: Some((&e).into()),
                    error: None,
                    passed: shortfalls.is_empty(),
                });
            }
            Err(e) => {
                let subject = match &e {
                    crate::privacy::EvalError::Line { line, .. }
                    | crate::privacy::EvalError::Oversized { line, .. } => format!("{key}:{line}"),
                    _ => key.clone(),
                };
                let detail = match &e {
                    crate::privacy::EvalError::Read(io) => {
                        format!("reading failed ({})", io.kind())
                    }
                    other => other.to_string(),
                };
                findings.push(finding(
                    &EVALUATION_SET_UNREADABLE,
                    subject,
                    format!("{detail}; fix the set (`gatehouse pii eval` checks a local copy)"),
                ));
                sets.push(MeasuredSet {
                    key: key.clone(),
                    sha256: Some(sha256),
                    scores: None,
                    error: Some(detail),
                    passed: false,
                });
            }
        }
    }
    Ok((
        Some(EvaluationReport {
            method: EVALUATION_METHOD.into(),
            minimums,
            sets,
        }),
        findings,
    ))
}
/// `privacy   pass: N records, …`, and a line per labelled set.
impl super::gate::Headline for PrivacyDetail {
    fn headline(&self, verdict: crate::report::Verdict) -> Vec<String> {
        let p = &self.metrics;
        let mut lines = vec![format!(
            "privacy   {}: {} records, {} messages scanned ({:.1} MB/s); {} detections; spot-check sample of {} records",
            verdict.as_str(),
            p.records_scanned,
            p.messages_scanned,
            p.scan_mb_per_second,
            p.detections_by_type.values().sum::<u64>(),
            self.spot_check.size,
        )];
        if let Some(e) = &self.evaluation {
            for set in &e.sets {
                lines.push(format!(
                    "          labelled set {}: {}",
                    set.key,
                    measured(set)
                ));
            }
        }
        lines
    }
}

/// One measured labelled set, as a line: direct recall and precision with their intervals.
fn measured(set: &MeasuredSet) -> String {
    let Some(s) = &set.scores else {
        return format!(
            "not scored ({})",
            set.error.as_deref().unwrap_or("unreadable")
        );
    };
    let rate = |m: &crate::privacy::Measured| match (m.value, m.wilson_95) {
        (Some(v), Some([lo, hi])) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
        _ => "n/a".to_string(),
    };
    format!(
        "{} documents; direct recall {}, precision {}, F2 {}",
        s.documents,
        rate(&s.recall_direct),
        rate(&s.precision),
        s.f2_direct
            .map_or_else(|| "n/a".into(), |f| format!("{f:.3}"))
    )
}
