//! The provenance gate: every exported record must say where it came from and under what
//! licence, and that must agree with the manifest and the registry. Per record: an id; a
//! dataset the registry knows, with a licence and provenance; the source key and line; a
//! source sha256 equal to the manifest's digest of that source object; the registry's licence
//! tag; the pipeline that made it. Per dataset: one without a licence or provenance is
//! excluded from the build and fails this gate unless a waiver (code `PRV006`, the dataset)
//! covers it. The manifest must also have been built from the registry in use.

use std::collections::BTreeMap;
use std::time::Duration;

use super::gate::{Finish, Finished, RecordCheck};
use super::scan::{
    At, CheckContext, CodeTally, ExportManifest, ExportedRecord, Locator, Scanned, label,
};
use super::{GateError, GateFindings, GateReport, GatesConfig};
use crate::report::codes::provenance::{
    DATASET_UNLICENSED, EXCLUDED_DATASET_EXPORTED, FIELD_MISSING, LICENCE_MISMATCH,
    REGISTRY_CHANGED, SOURCE_DIGEST_MISMATCH, SOURCE_NOT_IN_MANIFEST, UNKNOWN_DATASET,
};
use crate::report::{Code, Finding, Severity};
use crate::waiver::{self, Subject, WaiverStatus};

pub use crate::contract::gates::{
    DatasetProvenance, DatasetStatus, ProvenanceDetail, ProvenanceMetrics, ProvenanceReport,
};

/// The provenance check's share of a scan.
#[derive(Debug, Clone)]
pub(super) struct ProvenanceCheck {
    pub findings: CodeTally,
    pub records: u64,
    /// Records per dataset and licence tag, as the records say.
    pub per_dataset: BTreeMap<String, u64>,
    pub per_licence: BTreeMap<String, u64>,
}

impl RecordCheck for ProvenanceCheck {
    fn new(ctx: &CheckContext<'_>) -> Self {
        Self {
            findings: CodeTally::new(ctx.config.max_locators),
            records: 0,
            per_dataset: BTreeMap::new(),
            per_licence: BTreeMap::new(),
        }
    }

    fn observe(&mut self, ctx: &CheckContext<'_>, rec: &ExportedRecord, _: &[u8], at: At<'_>) {
        self.records += 1;
        let mut n = 0u64;
        let mut add = |findings: &mut CodeTally, code: &'static Code, detail: String| {
            n += 1;
            let waiver = ctx.waiver(code.id, rec);
            findings.add(code, (at.shard_index, at.line, n), waiver, || Locator {
                detail: Some(detail),
                ..Locator::of(at, rec)
            });
        };
        let f = &mut self.findings;
        if rec.id.as_deref().is_none_or(str::is_empty) {
            add(f, &FIELD_MISSING, "no id".into());
        }
        let Some(meta) = &rec.metadata else {
            add(f, &FIELD_MISSING, "no metadata".into());
            return;
        };
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        for (field, ok) in [
            ("metadata.dataset", present(&meta.dataset)),
            ("metadata.source_key", present(&meta.source_key)),
            ("metadata.source_line", meta.source_line.is_some()),
            ("metadata.license_tag", present(&meta.license_tag)),
            (
                "metadata.provenance.source_sha256",
                meta.provenance
                    .as_ref()
                    .is_some_and(|p| present(&p.source_sha256)),
            ),
            (
                "metadata.provenance.pipeline",
                meta.provenance
                    .as_ref()
                    .is_some_and(|p| present(&p.pipeline)),
            ),
        ] {
            if !ok {
                add(f, &FIELD_MISSING, format!("{field} is missing or empty"));
            }
        }
        let dataset = meta.dataset.as_deref().unwrap_or_default();
        *self.per_dataset.entry(dataset.to_string()).or_default() += 1;
        let licence = meta.license_tag.as_deref().unwrap_or_default();
        *self.per_licence.entry(licence.to_string()).or_default() += 1;
        match ctx.datasets.get(dataset) {
            None if !dataset.is_empty() => add(
                f,
                &UNKNOWN_DATASET,
                format!("dataset {} is not in the registry", label(dataset)),
            ),
            None => {}
            Some(facts) => {
                if facts.license_tag.is_none() || !facts.has_provenance {
                    add(
                        f,
                        &EXCLUDED_DATASET_EXPORTED,
                        format!("dataset {dataset:?} has no licence or provenance in the registry"),
                    );
                }
                if let Some(tag) = &facts.license_tag
                    && !licence.is_empty()
                    && licence != tag
                {
                    add(
                        f,
                        &LICENCE_MISMATCH,
                        format!("record says {}, the registry says {tag:?}", label(licence)),
                    );
                }
            }
        }
        let Some(key) = meta.source_key.as_deref() else {
            return;
        };
        match ctx.inputs.get(key) {
            None => add(
                f,
                &SOURCE_NOT_IN_MANIFEST,
                "the source key is not among the manifest's inputs".into(),
            ),
            Some((input_dataset, sha)) => {
                if !dataset.is_empty() && dataset != *input_dataset {
                    add(
                        f,
                        &SOURCE_NOT_IN_MANIFEST,
                        format!("the manifest lists the source under dataset {input_dataset:?}"),
                    );
                }
                let recorded = meta
                    .provenance
                    .as_ref()
                    .and_then(|p| p.source_sha256.as_deref());
                if let Some(recorded) = recorded
                    && recorded != *sha
                {
                    add(
                        f,
                        &SOURCE_DIGEST_MISMATCH,
                        "source_sha256 differs from the manifest's digest of the source".into(),
                    );
                }
            }
        }
    }

    fn merge(&mut self, other: ProvenanceCheck) {
        self.findings.merge(other.findings);
        self.records += other.records;
        for (k, v) in other.per_dataset {
            *self.per_dataset.entry(k).or_default() += v;
        }
        for (k, v) in other.per_licence {
            *self.per_licence.entry(k).or_default() += v;
        }
    }
}

const METHOD: &str = "every record of every shard is read; its id, dataset, source key and \
     line, source sha256, licence tag and pipeline must be present; the dataset must be in the \
     registry with a licence and provenance, the licence tag must equal the registry's, and the \
     source key and sha256 must equal the manifest's input; every registry dataset without a \
     licence or provenance fails the gate unless waived (PRV006)";

/// The provenance gate.
pub(super) fn finish(f: &mut Finish<'_, '_>) -> Result<Finished, GateError> {
    Ok(Finished::report(report(
        f.manifest,
        f.ctx,
        &f.scanned,
        f.ctx.config,
        f.elapsed,
    )))
}

pub(super) fn report(
    manifest: &ExportManifest,
    ctx: &CheckContext<'_>,
    scanned: &Scanned,
    config: &GatesConfig,
    elapsed: Duration,
) -> ProvenanceReport {
    let p = &scanned.checks.provenance;
    let mut release = Vec::new();
    if ctx.registry.digest != manifest.registry_digest {
        release.push(Finding::new(
            &REGISTRY_CHANGED,
            Severity::Error,
            ctx.registry.path.display().to_string(),
            format!(
                "the release was built with registry {}, the registry now is {}",
                manifest.registry_digest, ctx.registry.digest
            ),
        ));
    }
    let mut datasets = Vec::new();
    for d in &ctx.registry.datasets {
        let records = p.per_dataset.get(&d.name).copied().unwrap_or(0);
        let missing = match (&d.license_tag, &d.provenance) {
            (Some(_), Some(_)) => None,
            (None, None) => Some("no license_tag and no provenance"),
            (None, Some(_)) => Some("no license_tag"),
            (Some(_), None) => Some("no provenance"),
        };
        let status = match missing {
            None if records > 0 => DatasetStatus::Included,
            None => DatasetStatus::NoRecords,
            Some(missing) => {
                let waiver = waiver::find(
                    ctx.waivers,
                    DATASET_UNLICENSED.id,
                    Subject {
                        family: Some(&d.family),
                        dataset: Some(&d.name),
                        record: None,
                    },
                    ctx.as_of,
                );
                let applied = waiver
                    .as_ref()
                    .is_some_and(|w| w.status == WaiverStatus::Applied);
                release.push(Finding {
                    waiver,
                    ..Finding::new(
                        &DATASET_UNLICENSED,
                        if applied {
                            Severity::Warning
                        } else {
                            Severity::Error
                        },
                        d.name.clone(),
                        format!(
                            "dataset {} ({}) has {missing}; it is excluded from the export",
                            d.name, d.family
                        ),
                    )
                });
                if applied {
                    DatasetStatus::ExcludedWaived
                } else {
                    DatasetStatus::Excluded
                }
            }
        };
        datasets.push(DatasetProvenance {
            dataset: d.name.clone(),
            family: d.family.clone(),
            license_tag: d.license_tag.clone(),
            has_provenance: d.provenance.is_some(),
            records,
            status,
        });
    }
    let detail = ProvenanceDetail {
        registry_digest: ctx.registry.digest.clone(),
        manifest_registry_digest: manifest.registry_digest.clone(),
        datasets,
        metrics: ProvenanceMetrics {
            records_checked: p.records,
            records_by_dataset: p.per_dataset.clone(),
            records_by_licence: p.per_licence.clone(),
            lines_read: scanned.lines,
            bytes_read: scanned.bytes,
        },
        scan_seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
    };
    GateReport::new(
        manifest,
        scanned,
        config,
        GateFindings {
            gate: "provenance",
            method: METHOD,
            records: &p.findings,
            release,
            warnings: &[],
        },
        detail,
    )
}
/// `provenance pass: N records checked across M datasets`.
impl super::gate::Headline for ProvenanceDetail {
    fn headline(&self, verdict: crate::report::Verdict) -> Vec<String> {
        let v = &self.metrics;
        vec![format!(
            "provenance {}: {} records checked across {} datasets",
            verdict.as_str(),
            v.records_checked,
            v.records_by_dataset.len(),
        )]
    }
}
