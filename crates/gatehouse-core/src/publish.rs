//! Publication: the release's evidence, then one create-only completion marker.
//!
//! Everything before the marker is a draft: a crash leaves no published release, and a
//! re-run rewrites the evidence. The marker `_PUBLISHED` is written with a create-only put
//! (it names the release digest and the sha256 of every evidence file), so a version is
//! published once and never overwritten. Before relying on that, publication runs `doctor`'s
//! checks: when the store ignores conditional writes, publishing is refused unless the
//! operator gives a reason, which is recorded in the marker and the release notes.
//!
//! Evidence written into the release: `gates/combined_gate_report.json`,
//! `release_notes.json` and `.md` (from the real gate results, exceptions and signoff, with
//! the release decision record), `release_summary.json` (stages, durations, verdicts,
//! versions, config digest), `README.md`, a dataset card with Hugging Face front matter, and
//! `croissant.json`, the same release in Croissant 1.1 metadata ([`crate::croissant`]).

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::build::BuildReport;
use crate::contract::Manifest;
use crate::contract::consume::ConsumeReport;
use crate::contract::gates::{GateReport, PrivacyReport, read_gate_report};
use crate::contract::signoff::Signoff;
use crate::coverage::CoverageReport;
use crate::digest::sha256;
use crate::doctor::DoctorReport;
use crate::layout;
use crate::registry::Registry;
use crate::report::{Verdict, generated_by};
use crate::store::{Store, StoreError};

pub use crate::contract::publish::{
    CombinedGateReport, ConsumptionVerdict, Evidence, GateVerdict, Marker, ReleaseNotes,
    ReleaseSummary,
};

mod card;
mod notes;

/// Schema version of the publication files.
pub const SCHEMA_VERSION: u32 = 1;

/// What publication wrote.
#[derive(Debug, Clone)]
pub struct Published {
    pub marker_key: String,
    pub marker: Marker,
    pub written: Vec<String>,
}

/// Whether publication may rely on the store, from `doctor`'s checks (its create-only
/// probe): `Ok(None)` when the store enforces create-only writes, `Ok(Some(reason))` when it
/// does not and the operator gave a reason, an error otherwise.
fn write_once(report: &DoctorReport, reason: Option<&str>) -> Result<Option<String>, PublishError> {
    if report.store_unusable() {
        return Err(PublishError::NotPublishable(
            "the store failed a check (run `gatehouse doctor` for details)".into(),
        ));
    }
    match (report.publish_safe, reason.map(str::trim)) {
        (true, _) => Ok(None),
        (false, Some(r)) if !r.is_empty() => Ok(Some(r.to_string())),
        (false, _) => Err(PublishError::UnsafeStore),
    }
}

/// A stored report that does not read as its contract type stops publication, naming it.
fn unreadable(key: &str, e: &serde_json::Error) -> PublishError {
    PublishError::NotPublishable(format!(
        "{key} is not a readable report ({e}); rebuild the release with --no-resume"
    ))
}

/// A stored report, read as its contract type.
fn read_typed<T: serde::de::DeserializeOwned>(store: &Store, key: &str) -> Result<T, PublishError> {
    serde_json::from_slice(&store.get_bytes(key)?).map_err(|e| unreadable(key, &e))
}

/// Each gate report with its key, its gate's own part kept as JSON.
type GateReports = Vec<(String, GateReport<serde_json::Value>)>;

/// The gate reports, in the order the gates run, each read with its own type (the gate's
/// own part then kept as JSON); the privacy report also whole.
fn read_gates(
    store: &Store,
    loc: &str,
) -> Result<(GateReports, Option<PrivacyReport>), PublishError> {
    let mut gates = Vec::new();
    let mut privacy = None;
    for file in layout::GATE_REPORTS {
        let key = file.at(loc);
        let bytes = store.get_bytes(&key)?;
        if file == layout::PII_REPORT {
            privacy = Some(serde_json::from_slice(&bytes).map_err(|e| unreadable(&key, &e))?);
        }
        let report = read_gate_report(file.name(), &bytes).map_err(|e| unreadable(&key, &e))?;
        gates.push((key, report));
    }
    Ok((gates, privacy))
}

fn json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, PublishError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| PublishError::Serialise(what, e))?;
    b.push(b'\n');
    Ok(b)
}

/// What the orchestrator hands to publication: the release every stage judged.
#[derive(Debug)]
pub struct Candidate<'a, S: Serialize> {
    /// The release folder (`{exports}/releases/{version}/`).
    pub location: &'a str,
    pub version: &'a str,
    /// The sha256 of the manifest every stage judged; `None` when the build did not run.
    pub release_digest: Option<&'a str>,
    pub coverage: &'a CoverageReport,
    /// The QA stage's gate and whether the stage passed; `None` when it did not run.
    pub qa: Option<(&'a crate::qa::QaGate, bool)>,
    /// Each stage that ran, as the release summary lists them.
    pub stages: &'a S,
    /// Whether every stage that ran passed.
    pub passed: bool,
    /// The run's audit log: the publication is its last event, and the marker anchors it.
    pub audit: Option<&'a crate::audit::AuditLog>,
}

#[derive(Debug, Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error("cannot publish: {0}")]
    NotPublishable(String),
    #[error(
        "the store does not enforce create-only writes, so it cannot guarantee a published version is never overwritten"
    )]
    UnsafeStore,
    #[error(
        "release {version} is already published at {location}; a published version is never modified"
    )]
    AlreadyPublished { version: String, location: String },
    #[error("cannot serialise the {0} report")]
    Serialise(&'static str, #[source] serde_json::Error),
}

impl PublishError {
    pub fn hint(&self) -> Option<String> {
        match self {
            PublishError::Store(e) => e.hint(),
            PublishError::Audit(e) => e.hint(),
            PublishError::NotPublishable(_) => Some("run `gatehouse release` again".into()),
            PublishError::UnsafeStore => Some(
                "use a store that refuses a second create-only write (`gatehouse doctor` checks), or pass --allow-unenforced-store \"REASON\" to publish anyway with the reason recorded".into(),
            ),
            PublishError::AlreadyPublished { .. } => {
                Some("choose a new version with --release-version".into())
            }
            PublishError::Serialise(..) => None,
        }
    }
}

/// Records per split, by family: what the release includes.
type Families = BTreeMap<String, BTreeMap<String, u64>>;

/// What the checks established: every stage ran and passed, the manifest is still the one
/// every stage judged, and whether the store may be relied on.
struct Checked<'a> {
    qa_gate: &'a crate::qa::QaGate,
    qa_passed: bool,
    /// The sha256 of the manifest: the release digest.
    digest: String,
    manifest_bytes: bytes::Bytes,
    unenforced_store_override: Option<String>,
}

/// The release as its stored reports judge it: what every evidence file is written from.
struct Judged<'a> {
    location: &'a str,
    version: &'a str,
    digest: &'a str,
    manifest: Manifest,
    build: BuildReport,
    /// Each gate report with its key, in the order the gates run.
    gates: GateReports,
    /// The privacy gate's report, when it ran.
    privacy: Option<PrivacyReport>,
    consume: ConsumeReport,
    signoff: Signoff,
    families: Families,
    exclusions: Vec<String>,
}

/// The checks before anything is written: every stage ran and passed, the manifest is
/// unchanged, and the store keeps a published version write-once (or the operator said why
/// to publish anyway).
fn check<'a, S: Serialize>(
    store: &Store,
    outcome: &Candidate<'a, S>,
    override_reason: Option<&str>,
) -> Result<Checked<'a>, PublishError> {
    let (Some(release_digest), Some((qa_gate, qa_passed))) = (outcome.release_digest, outcome.qa)
    else {
        return Err(PublishError::NotPublishable("a stage did not run".into()));
    };
    if !outcome.passed {
        return Err(PublishError::NotPublishable(
            "a stage failed; a failing release is never published".into(),
        ));
    }
    // The manifest must still be the one every stage judged.
    let manifest_key = layout::MANIFEST.at(outcome.location);
    let manifest_bytes = store.get_bytes(&manifest_key)?;
    let digest = sha256(&manifest_bytes);
    if digest != release_digest {
        return Err(PublishError::NotPublishable(format!(
            "{manifest_key} changed during the run ({release_digest} → {digest})"
        )));
    }
    let unenforced_store_override =
        write_once(&crate::doctor::run(store, Vec::new()), override_reason)?;
    Ok(Checked {
        qa_gate,
        qa_passed,
        digest,
        manifest_bytes,
        unenforced_store_override,
    })
}

/// Writes the evidence and the marker of a release whose every stage passed.
pub fn publish<S: Serialize>(
    store: &Store,
    registry: &Registry,
    outcome: &Candidate<'_, S>,
    config_digest: &str,
    override_reason: Option<&str>,
) -> Result<Published, PublishError> {
    let loc = outcome.location;
    let checked = check(store, outcome, override_reason)?;

    // Evidence is written from the stored reports, whether this run wrote them or resumed
    // an earlier run's: they are what the release is judged by.
    let manifest_key = layout::MANIFEST.at(loc);
    let manifest: Manifest = serde_json::from_slice(&checked.manifest_bytes).map_err(|e| {
        PublishError::NotPublishable(format!(
            "{manifest_key} is not a readable manifest ({:?} error at line {})",
            e.classify(),
            e.line()
        ))
    })?;
    let build: BuildReport = read_typed(store, &layout::BUILD_REPORT.at(loc))?;
    let (gates, privacy) = read_gates(store, loc)?;
    let consume: ConsumeReport = read_typed(store, &layout::CONSUMPTION_TEST.at(loc))?;
    let signoff: Signoff = read_typed(store, &layout::SIGNOFF_RECORD.at(loc))?;
    let families = families(&manifest);
    let exclusions = exclusions(&manifest, &families, outcome.coverage, &build);
    let judged = Judged {
        location: loc,
        version: outcome.version,
        digest: &checked.digest,
        manifest,
        build,
        gates,
        privacy,
        consume,
        signoff,
        families,
        exclusions,
    };
    let files = judged.evidence_files(registry, outcome, &checked, config_digest)?;
    let (evidence, mut written) = write_evidence(store, loc, files)?;
    let audit_head = record_publication(outcome.audit, &checked, evidence.len())?;
    let marker = Marker {
        schema_version: SCHEMA_VERSION,
        release_version: outcome.version.to_string(),
        release_digest: checked.digest,
        published_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        published_by: generated_by(),
        evidence,
        unenforced_store_override: checked.unenforced_store_override,
        audit_head,
    };
    let marker_key = write_marker(store, loc, &marker)?;
    written.push(marker_key.clone());
    Ok(Published {
        marker_key,
        marker,
        written,
    })
}

/// The included families: records per split.
fn families(manifest: &Manifest) -> Families {
    let mut families = Families::new();
    for c in &manifest.contents {
        for (f, t) in &c.families {
            families
                .entry(f.clone())
                .or_default()
                .insert(c.split.as_str().to_string(), t.records);
        }
    }
    families
}

/// What the release leaves out: excluded datasets, families without records, and the
/// records the build quarantined, withheld or removed.
fn exclusions(
    manifest: &Manifest,
    families: &Families,
    coverage: &CoverageReport,
    build: &BuildReport,
) -> Vec<String> {
    let mut exclusions: Vec<String> = manifest
        .excluded_datasets
        .iter()
        .map(|e| format!("dataset {}: {}", e.dataset, e.reason))
        .collect();
    for f in &coverage.families {
        if !families.contains_key(&f.family) {
            exclusions.push(format!(
                "family {}: no records in this release (coverage: {:?})",
                f.family, f.status
            ));
        }
    }
    let unsettled = build.privacy.records_unsettled;
    let malformed = build.records_quarantined.saturating_sub(unsettled);
    if malformed > 0 {
        exclusions.push(format!(
            "{malformed} record(s) quarantined as malformed (quarantine.jsonl)"
        ));
    }
    if unsettled > 0 {
        exclusions.push(format!(
            "{unsettled} record(s) withheld because their PII redaction did not settle (Q014, quarantine.jsonl)"
        ));
    }
    let removed = build.records_removed_by_policy;
    if removed > 0 {
        exclusions.push(format!(
            "{removed} record(s) removed by policy: held for PII review or flagged by reviewers ({} by the blocklist)",
            build.blocklist.records_removed
        ));
    }
    let duplicates = build.records_removed_as_duplicates;
    if duplicates > 0 {
        exclusions.push(format!(
            "{duplicates} exact or near duplicate(s) removed (dedup_removed.jsonl)"
        ));
    }
    exclusions
}

impl<'a> Judged<'a> {
    /// Each stage's verdict, by stage.
    fn verdicts(&self, coverage: &CoverageReport, qa_passed: bool) -> BTreeMap<String, Verdict> {
        let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
        verdicts.insert("coverage".into(), coverage.verdict);
        verdicts.insert("build".into(), self.build.verdict);
        for (_, g) in &self.gates {
            verdicts.insert(g.gate.to_string(), g.verdict);
        }
        verdicts.insert(
            "human_qa".into(),
            if qa_passed {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
        );
        verdicts.insert("training_consumption".into(), self.consume.verdict);
        verdicts
    }

    /// The warnings of coverage, the gates and the consumption test.
    fn warnings(&self, coverage: &CoverageReport) -> Vec<String> {
        coverage
            .findings
            .iter()
            .filter(|f| f.severity >= crate::report::Severity::Warning)
            .map(|f| format!("coverage {} {}: {}", f.code, f.name, f.subject))
            .chain(
                self.gates
                    .iter()
                    .filter(|(_, g)| g.verdict == Verdict::Warn)
                    .map(|(key, g)| format!("{} gate: warnings (see {key})", g.gate)),
            )
            .chain(
                self.consume
                    .findings
                    .iter()
                    .map(|f| format!("consume {} {}: {}", f.code, f.name, f.message)),
            )
            .collect()
    }

    /// `gates/combined_gate_report.json`, and the overall verdict.
    fn combined_report(
        &self,
        coverage: &CoverageReport,
        checked: &Checked<'_>,
    ) -> Result<(CombinedGateReport, Verdict), PublishError> {
        let verdicts = self.verdicts(coverage, checked.qa_passed);
        let overall = verdicts.values().copied().max().unwrap_or(Verdict::Pass);
        let waivers = self
            .gates
            .iter()
            .flat_map(|(_, g)| g.waivers.iter().cloned())
            .collect();
        let combined = CombinedGateReport {
            gates: self
                .gates
                .iter()
                .map(|(key, g)| GateVerdict {
                    blocking: g.blocking,
                    counts: g.counts.clone(),
                    gate: g.gate.clone(),
                    report: key.clone(),
                    verdict: g.verdict,
                })
                .collect(),
            generated_by: generated_by(),
            human_qa: serde_json::to_value(checked.qa_gate)
                .map_err(|e| PublishError::Serialise("the QA gate's decision", e))?,
            release_digest: self.digest.to_string(),
            release_version: self.version.to_string(),
            schema_version: SCHEMA_VERSION,
            training_consumption: ConsumptionVerdict {
                report: layout::CONSUMPTION_TEST.at(self.location),
                verdict: self.consume.verdict,
            },
            verdict: overall,
            verdicts,
            waivers,
            warnings: self.warnings(coverage),
        };
        Ok((combined, overall))
    }

    /// `release_summary.json`: stages, verdict, versions and digests.
    fn summary<S: Serialize>(
        &self,
        registry: &Registry,
        stages: &S,
        config_digest: &str,
        overall: Verdict,
    ) -> Result<ReleaseSummary, PublishError> {
        Ok(ReleaseSummary {
            config_digest: config_digest.to_string(),
            generated_by: generated_by(),
            registry_digest: registry.digest.clone(),
            release_digest: self.digest.to_string(),
            release_version: self.version.to_string(),
            schema_version: SCHEMA_VERSION,
            stages: serde_json::to_value(stages)
                .map_err(|e| PublishError::Serialise("the stage records", e))?,
            tokenizer: self.manifest.tokens.tokenizer.clone(),
            tool: self.manifest.tool.clone(),
            verdict: overall,
        })
    }

    /// The evidence files, in the order they are written.
    fn evidence_files<S: Serialize>(
        &self,
        registry: &Registry,
        outcome: &Candidate<'_, S>,
        checked: &Checked<'_>,
        config_digest: &str,
    ) -> Result<[(layout::File, Vec<u8>); 6], PublishError> {
        let (combined, overall) = self.combined_report(outcome.coverage, checked)?;
        let decision = notes::decision(self);
        let notes = notes::release_notes(self, checked, &decision, &combined);
        let notes_md = notes::markdown(self, &decision, &notes);
        let summary = self.summary(registry, outcome.stages, config_digest, overall)?;
        let card = card::dataset_card(self, registry, &combined);
        let croissant = crate::croissant::document(&crate::croissant::Inputs {
            location: self.location,
            version: self.version,
            digest: self.digest,
            registry,
            manifest: &self.manifest,
            privacy: self.privacy.as_ref(),
            signoff: &self.signoff,
            exclusions: &self.exclusions,
        });
        Ok([
            (
                layout::COMBINED_GATE_REPORT,
                json("the combined gate report", &combined)?,
            ),
            (layout::RELEASE_NOTES, json("the release notes", &notes)?),
            (layout::RELEASE_NOTES_MD, notes_md.into_bytes()),
            (
                layout::RELEASE_SUMMARY,
                json("the release summary", &summary)?,
            ),
            (layout::DATASET_CARD, card.into_bytes()),
            (
                layout::CROISSANT,
                json("the Croissant metadata", &croissant)?,
            ),
        ])
    }
}

/// Writes the evidence files, then lists them with the stored files the release is judged
/// by, each with its sha256, sorted by key: (evidence, keys written).
fn write_evidence(
    store: &Store,
    loc: &str,
    files: [(layout::File, Vec<u8>); 6],
) -> Result<(Vec<Evidence>, Vec<String>), PublishError> {
    let mut written = Vec::new();
    let mut evidence = Vec::new();
    for (file, bytes) in files {
        let key = file.at(loc);
        evidence.push(Evidence {
            key: key.clone(),
            sha256: sha256(&bytes),
        });
        store.put(&key, bytes)?;
        written.push(key);
    }
    for file in [
        layout::MANIFEST,
        layout::REPORT_HTML,
        layout::SIGNOFF_RECORD,
        layout::CONSUMPTION_TEST,
    ] {
        let key = file.at(loc);
        evidence.push(Evidence {
            sha256: sha256(&store.get_bytes(&key)?),
            key,
        });
    }
    evidence.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((evidence, written))
}

/// The audit log is written out up to the publication, and the marker anchors it.
fn record_publication(
    audit: Option<&crate::audit::AuditLog>,
    checked: &Checked<'_>,
    evidence: usize,
) -> Result<Option<crate::audit::Head>, PublishError> {
    let Some(log) = audit else {
        return Ok(None);
    };
    log.record(
        crate::audit::Action::Publish,
        crate::audit::Event::detail(serde_json::json!({
            "release_digest": checked.digest,
            "evidence": evidence,
            "unenforced_store_override": checked.unenforced_store_override,
        })),
    );
    log.flush()?;
    Ok(Some(log.head()))
}

/// Writes the marker with a create-only put, so a version is published once; returns its key.
fn write_marker(store: &Store, loc: &str, marker: &Marker) -> Result<String, PublishError> {
    let marker_key = layout::PUBLISHED_MARKER.at(loc);
    match store.put_create(&marker_key, json("the publication marker", marker)?) {
        Ok(()) => Ok(marker_key),
        Err(StoreError::AlreadyExists { .. }) => Err(PublishError::AlreadyPublished {
            version: marker.release_version.clone(),
            location: store.locate(loc),
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{self, CreateOnly};

    #[test]
    fn an_unenforcing_store_publishes_only_with_a_recorded_reason() {
        let safe = doctor::run(&Store::memory(), Vec::new());
        assert!(safe.publish_safe);
        assert_eq!(write_once(&safe, None).unwrap(), None);
        let mut unsafe_store = safe.clone();
        unsafe_store.create_only = CreateOnly::Ignored;
        unsafe_store.publish_safe = false;
        assert!(matches!(
            write_once(&unsafe_store, None),
            Err(PublishError::UnsafeStore)
        ));
        assert!(matches!(
            write_once(&unsafe_store, Some("  ")),
            Err(PublishError::UnsafeStore)
        ));
        assert_eq!(
            write_once(&unsafe_store, Some(" vendor confirmed WORM bucket ")).unwrap(),
            Some("vendor confirmed WORM bucket".to_string())
        );
    }
}
