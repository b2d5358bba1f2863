//! Coverage: which dataset families exist in the source store, judged against the registry.
//!
//! It lists the store (never downloading an object), maps every key to at most one dataset,
//! and reports per family whether it is present, partial, missing or waived, with evidence
//! keys, object counts and bytes. Objects no dataset claims are summarised and excluded,
//! never defaulted into a family. Memory is bounded by the number of datasets and the
//! configured caps, not by the number of objects.

mod render;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use thiserror::Error;

use crate::registry::{Family, Registry};
use crate::report::codes::coverage::{
    DATASET_EMPTY, FAMILY_PARTIAL, MISSING_LICENCE, MISSING_PROVENANCE, OPTIONAL_FAMILY_MISSING,
    REQUIRED_FAMILY_MISSING, UNMAPPED_OBJECTS, UNUSABLE_KEYS,
};
use crate::report::{Code, Finding, Severity, generated_by, verdict_of};
use crate::store::{ObjectList, Store, StoreError};
use crate::waiver::{self, Subject, Waiver, WaiverStatus};

pub use crate::contract::coverage::{
    CoverageConfig, CoverageReport, DatasetCoverage, FamilyCoverage, FamilyStatus, PrefixCount,
    Totals, Unmapped,
};
pub use render::render_markdown;

/// Coverage report schema version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum CoverageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key} is claimed by both dataset {first:?} and dataset {second:?}")]
    AmbiguousKey {
        key: String,
        first: String,
        second: String,
    },
    #[error("{store} holds no objects outside {exports}/")]
    EmptyStore { store: String, exports: String },
    #[error("invalid waiver in gatehouse.toml: {0}")]
    InvalidWaiver(String),
    #[error(
        "dataset {dataset:?} includes {pattern:?}, which lies under the exports prefix {exports}/ (gatehouse's own output)"
    )]
    ExportsOverlap {
        dataset: String,
        pattern: String,
        exports: String,
    },
}

impl CoverageError {
    pub fn hint(&self) -> Option<String> {
        match self {
            CoverageError::Store(e) => e.hint(),
            CoverageError::AmbiguousKey { .. } => Some(
                "an object belongs to at most one dataset: narrow one of them with `exclude` in \
                 the registry"
                    .into(),
            ),
            CoverageError::EmptyStore { .. } => Some(
                "check the bucket or local path (`gatehouse doctor` shows what is configured)"
                    .into(),
            ),
            CoverageError::ExportsOverlap { .. } => Some(
                "source data and releases must not share a prefix: move the data, or set a \
                 different DATASET_EXPORTS_PREFIX"
                    .into(),
            ),
            CoverageError::InvalidWaiver(_) => Some(
                "every waiver needs a finding code, a reason, an approver and an expiry".into(),
            ),
        }
    }
}

/// Keeps the `cap` smallest keys seen, so evidence is stable whatever the listing order.
#[derive(Debug, Default)]
struct FirstKeys {
    cap: usize,
    keys: BTreeSet<String>,
}

impl FirstKeys {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            keys: BTreeSet::new(),
        }
    }

    fn offer(&mut self, key: &str) {
        if self.cap == 0 {
            return;
        }
        if self.keys.len() < self.cap {
            self.keys.insert(key.to_string());
        } else if self.keys.last().is_some_and(|last| key < last.as_str()) {
            self.keys.pop_last();
            self.keys.insert(key.to_string());
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    objects: u64,
    bytes: u64,
}

/// Distinct unmapped folders tracked before the rest are folded into [`OTHER_FOLDERS`].
const MAX_FOLDERS: usize = 1000;
const OTHER_FOLDERS: &str = "(other folders)";

fn folder_of(key: &str) -> String {
    let segments: Vec<&str> = key.split('/').collect();
    match segments.len() {
        0 | 1 => "(root)".into(),
        2 => format!("{}/", segments[0]),
        _ => format!("{}/{}/", segments[0], segments[1]),
    }
}

/// Lists the store and builds the coverage report. `progress` is called with the number of
/// objects listed so far, every 1000 objects.
pub fn run(
    store: &Store,
    registry: &Registry,
    config: &CoverageConfig,
    waivers: &[Waiver],
    as_of: NaiveDate,
    progress: &mut dyn FnMut(u64),
) -> Result<CoverageReport, CoverageError> {
    check_inputs(store, registry, waivers)?;
    let counts = count(store, registry, config, progress)?;
    let datasets = dataset_coverage(registry, counts.per_dataset);

    let mut findings = Vec::new();
    let families = registry
        .families
        .iter()
        .map(|(name, fam)| family_coverage(name, fam, &datasets, waivers, as_of, &mut findings))
        .collect();
    dataset_findings(&datasets, &mut findings);
    store_findings(&counts.listing, &counts.unmapped.tally, &mut findings);

    Ok(CoverageReport {
        schema_version: SCHEMA_VERSION,
        generated_by: generated_by(),
        store: store.describe(),
        registry_digest: registry.digest.clone(),
        as_of,
        verdict: verdict_of(&findings),
        totals: counts.totals,
        families,
        datasets,
        unmapped: counts.unmapped.into_report(),
        findings,
        config: config.clone(),
    })
}

/// Refuses invalid waivers and a dataset that includes gatehouse's own output.
fn check_inputs(
    store: &Store,
    registry: &Registry,
    waivers: &[Waiver],
) -> Result<(), CoverageError> {
    if let Some(problem) = waivers.iter().flat_map(Waiver::problems).next() {
        return Err(CoverageError::InvalidWaiver(problem));
    }
    let exports = format!("{}/", store.exports_prefix());
    for d in &registry.datasets {
        if let Some(p) = d
            .include
            .iter()
            .find(|p| p.starts_with(&exports) || p.trim_end_matches('/') == store.exports_prefix())
        {
            return Err(CoverageError::ExportsOverlap {
                dataset: d.name.clone(),
                pattern: p.clone(),
                exports: store.exports_prefix().to_string(),
            });
        }
    }
    Ok(())
}

/// What one pass over the listing counted, bounded by the datasets and the caps.
struct Counts {
    totals: Totals,
    /// Per dataset, in registry order: objects and bytes, and the first keys.
    per_dataset: Vec<(Tally, FirstKeys)>,
    unmapped: UnmappedCounts,
    /// The listing, read to its end: the keys it could not use.
    listing: ObjectList,
}

/// Lists the whole store once and counts every object outside the exports prefix against
/// the dataset that claims it, if any.
fn count(
    store: &Store,
    registry: &Registry,
    config: &CoverageConfig,
    progress: &mut dyn FnMut(u64),
) -> Result<Counts, CoverageError> {
    let exports = format!("{}/", store.exports_prefix());
    let mut totals = Totals::default();
    let mut per_dataset: Vec<(Tally, FirstKeys)> = registry
        .datasets
        .iter()
        .map(|_| (Tally::default(), FirstKeys::new(config.evidence_keys)))
        .collect();
    let mut unmapped = UnmappedCounts::new(config.unmapped_examples);

    let mut listed = 0u64;
    // gatehouse's own output under the exports prefix is not input; it is not counted in the
    // report either, so a report does not depend on earlier runs' drafts.
    let mut own_output = 0u64;
    let mut listing = store.list("");
    for object in listing.by_ref() {
        let object = object?;
        listed += 1;
        if listed.is_multiple_of(1000) {
            progress(listed);
        }
        if object.key.starts_with(&exports) {
            own_output += 1;
            continue;
        }
        totals.objects += 1;
        totals.bytes += object.size;
        let claimed = match registry.dataset_for(&object.key) {
            Ok(claimed) => claimed,
            Err((first, second)) => {
                return Err(CoverageError::AmbiguousKey {
                    key: object.key,
                    first,
                    second,
                });
            }
        };
        match claimed {
            Some(i) => {
                let (tally, keys) = &mut per_dataset[i];
                tally.objects += 1;
                tally.bytes += object.size;
                keys.offer(&object.key);
                totals.mapped_objects += 1;
                totals.mapped_bytes += object.size;
            }
            None => unmapped.add(&object.key, object.size),
        }
    }
    progress(listed);
    tracing::debug!(listed, own_output, "listed the store");
    if totals.objects == 0 {
        return Err(CoverageError::EmptyStore {
            store: store.describe().to_string(),
            exports: store.exports_prefix().to_string(),
        });
    }
    Ok(Counts {
        totals,
        per_dataset,
        unmapped,
        listing,
    })
}

/// Objects no dataset claims: counted, the first keys kept, and counted per folder.
struct UnmappedCounts {
    tally: Tally,
    examples: FirstKeys,
    folders: BTreeMap<String, Tally>,
}

impl UnmappedCounts {
    fn new(examples: usize) -> Self {
        Self {
            tally: Tally::default(),
            examples: FirstKeys::new(examples),
            folders: BTreeMap::new(),
        }
    }

    fn add(&mut self, key: &str, size: u64) {
        self.tally.objects += 1;
        self.tally.bytes += size;
        self.examples.offer(key);
        // Bounded: past MAX_FOLDERS distinct folders, the rest are counted together.
        let mut folder_key = folder_of(key);
        if self.folders.len() >= MAX_FOLDERS && !self.folders.contains_key(&folder_key) {
            folder_key = OTHER_FOLDERS.to_string();
        }
        let folder = self.folders.entry(folder_key).or_default();
        folder.objects += 1;
        folder.bytes += size;
    }

    /// The report's section: folders largest first, the first 50.
    fn into_report(self) -> Unmapped {
        let mut by_prefix: Vec<PrefixCount> = self
            .folders
            .into_iter()
            .map(|(prefix, t)| PrefixCount {
                prefix,
                objects: t.objects,
                bytes: t.bytes,
            })
            .collect();
        by_prefix.sort_by(|a, b| b.objects.cmp(&a.objects).then(a.prefix.cmp(&b.prefix)));
        by_prefix.truncate(50);
        Unmapped {
            objects: self.tally.objects,
            bytes: self.tally.bytes,
            by_prefix,
            examples: self.examples.keys.into_iter().collect(),
        }
    }
}

/// Each dataset of the registry, in its order, with what was counted for it.
fn dataset_coverage(
    registry: &Registry,
    per_dataset: Vec<(Tally, FirstKeys)>,
) -> Vec<DatasetCoverage> {
    registry
        .datasets
        .iter()
        .zip(per_dataset)
        .map(|(d, (tally, keys))| DatasetCoverage {
            dataset: d.name.clone(),
            family: d.family.clone(),
            stage: d.stage.clone(),
            format: d.format.to_string(),
            license_tag: d.license_tag.clone(),
            has_provenance: d.provenance.is_some(),
            objects: tally.objects,
            bytes: tally.bytes,
            evidence_keys: keys.keys.into_iter().collect(),
        })
        .collect()
}

/// A family's status from its datasets, with its finding (waived if a waiver applies).
fn family_coverage(
    name: &str,
    fam: &Family,
    datasets: &[DatasetCoverage],
    waivers: &[Waiver],
    as_of: NaiveDate,
    findings: &mut Vec<Finding>,
) -> FamilyCoverage {
    let members: Vec<&DatasetCoverage> = datasets.iter().filter(|d| d.family == name).collect();
    let present = members.iter().filter(|d| d.objects > 0).count();
    let status = if members.is_empty() || present == 0 {
        FamilyStatus::Missing
    } else if present < members.len() {
        FamilyStatus::Partial
    } else {
        FamilyStatus::Present
    };
    let subject = Subject {
        family: Some(name),
        ..Subject::default()
    };
    let code = match status {
        FamilyStatus::Missing if fam.required => Some(&REQUIRED_FAMILY_MISSING),
        FamilyStatus::Missing => Some(&OPTIONAL_FAMILY_MISSING),
        FamilyStatus::Partial => Some(&FAMILY_PARTIAL),
        _ => None,
    };
    let waiver = code.and_then(|c| waiver::find(waivers, c.id, subject, as_of));
    let waived = waiver
        .as_ref()
        .is_some_and(|w| w.status == WaiverStatus::Applied);
    if let Some(code) = code {
        let severity = if waived {
            Severity::Info
        } else {
            family_severity(code, fam.required)
        };
        let message = match status {
            FamilyStatus::Missing if members.is_empty() => {
                format!("family {name} has no datasets in the registry")
            }
            FamilyStatus::Missing => {
                format!(
                    "none of the {} dataset(s) of family {name} has objects",
                    members.len()
                )
            }
            _ => format!(
                "{present} of {} dataset(s) of family {name} have objects",
                members.len()
            ),
        };
        findings.push(Finding {
            waiver: waiver.clone(),
            ..Finding::new(code, severity, name.to_string(), message)
        });
    }
    FamilyCoverage {
        family: name.to_string(),
        stage: fam.stage.clone(),
        required: fam.required,
        holdout: fam.holdout,
        status: if waived { FamilyStatus::Waived } else { status },
        datasets: members.len(),
        datasets_present: present,
        objects: members.iter().map(|d| d.objects).sum(),
        bytes: members.iter().map(|d| d.bytes).sum(),
        waiver,
    }
}

/// The severity of a family's finding when no waiver applies.
fn family_severity(code: &Code, required: bool) -> Severity {
    if *code == REQUIRED_FAMILY_MISSING {
        Severity::Error
    } else if *code == FAMILY_PARTIAL && required {
        Severity::Warning
    } else {
        Severity::Info
    }
}

/// Datasets that match nothing or lack a licence or provenance.
fn dataset_findings(datasets: &[DatasetCoverage], findings: &mut Vec<Finding>) {
    for d in datasets {
        let mut warn = |code: &Code, message: String| {
            findings.push(Finding::new(
                code,
                Severity::Warning,
                d.dataset.clone(),
                message,
            ));
        };
        if d.objects == 0 {
            warn(
                &DATASET_EMPTY,
                format!("dataset {} matches no object", d.dataset),
            );
        }
        if d.license_tag.is_none() {
            warn(
                &MISSING_LICENCE,
                format!(
                    "dataset {} has no license_tag: the build excludes it and the provenance gate fails",
                    d.dataset
                ),
            );
        }
        if !d.has_provenance {
            warn(
                &MISSING_PROVENANCE,
                format!(
                    "dataset {} has no provenance: the build excludes it and the provenance gate fails",
                    d.dataset
                ),
            );
        }
    }
}

/// Keys the listing could not use, and objects no dataset claims.
fn store_findings(listing: &ObjectList, unmapped: &Tally, findings: &mut Vec<Finding>) {
    if listing.unusable_count() > 0 {
        const SHOWN: usize = 20;
        let names = listing.unusable();
        let more = listing.unusable_count() - names.len().min(SHOWN) as u64;
        findings.push(Finding::new(
            &UNUSABLE_KEYS,
            Severity::Warning,
            "(store)".into(),
            format!(
                "{} object(s) have keys gatehouse cannot read back (a control character, or an \
                 empty or `.` segment) and are excluded: {}{}; rename them to include them",
                listing.unusable_count(),
                names
                    .iter()
                    .take(SHOWN)
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        ));
    }
    if unmapped.objects > 0 {
        findings.push(Finding::new(
            &UNMAPPED_OBJECTS,
            Severity::Warning,
            "(store)".into(),
            format!(
                "{} object(s) are claimed by no dataset and are excluded",
                unmapped.objects
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Verdict;
    use std::path::Path;

    const REGISTRY: &str = r#"
schema_version = 1
[families.therapy]
stage = "stage1_foundation"
required = true
review = ["clinician_foundation"]
[families.voice]
stage = "stage4_voice_persona"
required = true
holdout = "strict"
review = ["bias_cultural"]
[families.extra]
stage = "stage2_more"
review = ["clinician_foundation"]

[[datasets]]
name = "sessions"
family = "therapy"
include = ["src/sessions/"]
format = "chatml"
license_tag = "CC0-1.0"
provenance = { origin = "o", method = "m", consent = "c" }

[[datasets]]
name = "qa"
family = "therapy"
include = ["src/qa/*.csv"]
format = "csv_columns"
fields = { user = "q", assistant = "a" }

[[datasets]]
name = "voice"
family = "voice"
include = ["src/voice/"]
format = "text_transcript"
"#;

    fn registry() -> Registry {
        Registry::parse(Path::new("r.toml"), REGISTRY, "sha256:test".into()).unwrap()
    }

    fn day() -> NaiveDate {
        "2026-11-25".parse().unwrap()
    }

    fn run_on(store: &Store, waivers: &[Waiver]) -> CoverageReport {
        run(
            store,
            &registry(),
            &CoverageConfig::default(),
            waivers,
            day(),
            &mut |_| {},
        )
        .unwrap()
    }

    fn store_with(keys: &[&str]) -> Store {
        let store = Store::memory();
        for k in keys {
            store.put(k, "0123456789").unwrap();
        }
        store
    }

    fn family<'a>(r: &'a CoverageReport, name: &str) -> &'a FamilyCoverage {
        r.families.iter().find(|f| f.family == name).unwrap()
    }

    #[test]
    fn present_partial_and_missing_families() {
        let store = store_with(&[
            "src/sessions/a.jsonl",
            "src/sessions/b.jsonl",
            "other/x.bin",
        ]);
        let r = run_on(&store, &[]);
        let therapy = family(&r, "therapy");
        assert_eq!(therapy.status, FamilyStatus::Partial);
        assert_eq!((therapy.objects, therapy.bytes), (2, 20));
        assert_eq!(family(&r, "voice").status, FamilyStatus::Missing);
        assert_eq!(family(&r, "extra").status, FamilyStatus::Missing);
        assert_eq!(r.verdict, Verdict::Fail, "required voice family is missing");
        assert_eq!(r.unmapped.objects, 1);
        assert_eq!(r.unmapped.examples, ["other/x.bin"]);
        let codes: Vec<_> = r.findings.iter().map(|f| f.code).collect();
        for c in [
            "COV001", "COV002", "COV003", "COV004", "COV005", "COV006", "COV007",
        ] {
            assert!(codes.contains(&c), "{c} missing from {codes:?}");
        }
    }

    #[test]
    fn a_waiver_turns_a_missing_required_family_into_waived() {
        let store = store_with(&["src/sessions/a.jsonl", "src/qa/q.csv"]);
        let waiver = Waiver {
            code: "COV001".into(),
            family: Some("voice".into()),
            dataset: None,
            record: None,
            reason: "voice transcripts arrive in December".into(),
            approver: "release-manager".into(),
            expires: "2026-12-31".parse().unwrap(),
        };
        let r = run_on(&store, std::slice::from_ref(&waiver));
        assert_eq!(family(&r, "voice").status, FamilyStatus::Waived);
        assert_ne!(r.verdict, Verdict::Fail);
        let mut lapsed = waiver;
        lapsed.expires = "2026-11-24".parse().unwrap();
        let r = run_on(&store, &[lapsed]);
        assert_eq!(family(&r, "voice").status, FamilyStatus::Missing);
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(
            family(&r, "voice").waiver.as_ref().unwrap().status,
            WaiverStatus::Expired
        );
    }

    #[test]
    fn evidence_keys_are_the_first_in_key_order_whatever_the_listing_order() {
        let keys: Vec<String> = (0..40)
            .rev()
            .map(|i| format!("src/sessions/{i:03}.jsonl"))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let r = run_on(&store_with(&refs), &[]);
        let d = r.datasets.iter().find(|d| d.dataset == "sessions").unwrap();
        assert_eq!(d.objects, 40);
        assert_eq!(d.evidence_keys.len(), 5);
        assert_eq!(d.evidence_keys[0], "src/sessions/000.jsonl");
        assert_eq!(d.evidence_keys[4], "src/sessions/004.jsonl");
    }

    #[test]
    fn unmapped_folders_are_bounded() {
        let store = Store::memory();
        for i in 0..(MAX_FOLDERS + 50) {
            store.put(&format!("loose/{i:05}/x.bin"), "1").unwrap();
        }
        store.put("src/sessions/a.jsonl", "1").unwrap();
        let r = run_on(&store, &[]);
        assert_eq!(r.unmapped.objects, MAX_FOLDERS as u64 + 50);
        let other = r
            .unmapped
            .by_prefix
            .iter()
            .find(|p| p.prefix == OTHER_FOLDERS)
            .unwrap();
        assert_eq!(
            other.objects, 50,
            "folders past the cap are counted together"
        );
    }

    #[test]
    fn a_dataset_under_the_exports_prefix_is_refused() {
        let text = REGISTRY.replace(
            "include = [\"src/sessions/\"]",
            "include = [\"exports/old/\"]",
        );
        let reg = Registry::parse(Path::new("r.toml"), &text, String::new()).unwrap();
        let store = store_with(&["src/qa/q.csv"]);
        let err = run(
            &store,
            &reg,
            &CoverageConfig::default(),
            &[],
            day(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, CoverageError::ExportsOverlap { .. }), "{err}");
    }

    #[test]
    fn exports_are_ignored_and_an_empty_store_is_an_error() {
        let store = store_with(&["exports/releases/v1/manifest.json"]);
        let err = run(
            &store,
            &registry(),
            &CoverageConfig::default(),
            &[],
            day(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, CoverageError::EmptyStore { .. }), "{err}");
    }

    #[test]
    fn a_key_claimed_twice_is_an_error_naming_both_datasets() {
        let text = REGISTRY.replace(
            "include = [\"src/qa/*.csv\"]",
            "include = [\"src/**/*.csv\"]",
        );
        let reg = Registry::parse(Path::new("r.toml"), &text, String::new()).unwrap();
        let store = store_with(&["src/sessions/odd.csv"]);
        let err = run(
            &store,
            &reg,
            &CoverageConfig::default(),
            &[],
            day(),
            &mut |_| {},
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("src/sessions/odd.csv")
                && msg.contains("\"sessions\"")
                && msg.contains("\"qa\""),
            "{msg}"
        );
    }
}
