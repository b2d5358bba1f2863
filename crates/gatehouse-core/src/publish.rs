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

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use thiserror::Error;

use crate::contract::Manifest;
use crate::coverage::CoverageReport;
use crate::digest::sha256;
use crate::doctor::DoctorReport;
use crate::layout;
use crate::registry::Registry;
use crate::report::{Verdict, generated_by};
use crate::store::{Store, StoreError};

/// Schema version of the publication files.
pub const SCHEMA_VERSION: u32 = 1;

/// `_PUBLISHED`: the completion marker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Marker {
    pub schema_version: u32,
    pub release_version: String,
    pub release_digest: String,
    pub published_at: String,
    pub published_by: String,
    /// Every evidence file with its sha256.
    pub evidence: Vec<Evidence>,
    /// Set when the store does not enforce create-only writes and the operator published
    /// anyway: their reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unenforced_store_override: Option<String>,
    /// The audit log's last line before the marker, so a log cut short is detected
    /// (`gatehouse audit verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<crate::audit::Head>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub key: String,
    pub sha256: String,
}

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

/// The gate reports, in the order the gates run.
fn parse(key: &str, bytes: &[u8]) -> Result<serde_json::Value, PublishError> {
    serde_json::from_slice(bytes).map_err(|_| {
        PublishError::NotPublishable(format!(
            "{key} is not valid JSON; rebuild the release with --no-resume"
        ))
    })
}

fn read_json(store: &Store, key: &str) -> Result<serde_json::Value, PublishError> {
    parse(key, &store.get_bytes(key)?)
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

/// Writes the evidence and the marker of a release whose every stage passed.
pub fn publish<S: Serialize>(
    store: &Store,
    registry: &Registry,
    outcome: &Candidate<'_, S>,
    config_digest: &str,
    override_reason: Option<&str>,
) -> Result<Published, PublishError> {
    let loc = outcome.location;
    let version = &outcome.version.to_string();
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
    let manifest_key = layout::MANIFEST.at(loc);
    let manifest_bytes = store.get_bytes(&manifest_key)?;
    let digest = sha256(&manifest_bytes);
    if digest != release_digest {
        return Err(PublishError::NotPublishable(format!(
            "{manifest_key} changed during the run ({release_digest} → {digest})"
        )));
    }
    let unenforced_store_override =
        write_once(&crate::doctor::run(store, Vec::new()), override_reason)?;

    // Evidence is written from the stored reports, whether this run wrote them or resumed
    // an earlier run's: they are what the release is judged by.
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        PublishError::NotPublishable(format!(
            "{manifest_key} is not a readable manifest ({:?} error at line {})",
            e.classify(),
            e.line()
        ))
    })?;
    let build = read_json(store, &layout::BUILD_REPORT.at(loc))?;
    let gates = layout::GATE_REPORTS
        .iter()
        .map(|file| {
            let key = file.at(loc);
            read_json(store, &key).map(|v| (key, v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let consume = read_json(store, &layout::CONSUMPTION_TEST.at(loc))?;
    let signoff = read_json(store, &layout::SIGNOFF_RECORD.at(loc))?;

    // Included families (records per split) and what was left out.
    let mut families: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for c in &manifest.contents {
        for (f, t) in &c.families {
            families
                .entry(f.clone())
                .or_default()
                .insert(c.split.as_str().to_string(), t.records);
        }
    }
    let mut exclusions: Vec<String> = manifest
        .excluded_datasets
        .iter()
        .map(|e| format!("dataset {}: {}", e.dataset, e.reason))
        .collect();
    for f in &outcome.coverage.families {
        if !families.contains_key(&f.family) {
            exclusions.push(format!(
                "family {}: no records in this release (coverage: {:?})",
                f.family, f.status
            ));
        }
    }
    let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let unsettled = count(&build["privacy"]["records_unsettled"]);
    let malformed = count(&build["records_quarantined"]).saturating_sub(unsettled);
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
    let removed = count(&build["records_removed_by_policy"]);
    if removed > 0 {
        exclusions.push(format!(
            "{removed} record(s) removed by policy: held for PII review or flagged by reviewers ({} by the blocklist)",
            count(&build["blocklist"]["records_removed"])
        ));
    }
    let duplicates = count(&build["records_removed_as_duplicates"]);
    if duplicates > 0 {
        exclusions.push(format!(
            "{duplicates} exact or near duplicate(s) removed (dedup_removed.jsonl)"
        ));
    }

    // The combined gate report.
    let verdict_of = |v: &serde_json::Value| -> Verdict {
        serde_json::from_value(v["verdict"].clone()).unwrap_or(Verdict::Fail)
    };
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    verdicts.insert("coverage".into(), outcome.coverage.verdict);
    verdicts.insert("build".into(), verdict_of(&build));
    for (_, g) in &gates {
        verdicts.insert(g["gate"].as_str().unwrap_or("?").to_string(), verdict_of(g));
    }
    verdicts.insert(
        "human_qa".into(),
        if qa_passed {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
    );
    verdicts.insert("training_consumption".into(), verdict_of(&consume));
    let overall = verdicts.values().copied().max().unwrap_or(Verdict::Pass);
    let warnings: Vec<String> = outcome
        .coverage
        .findings
        .iter()
        .filter(|f| f.severity >= crate::report::Severity::Warning)
        .map(|f| format!("coverage {} {}: {}", f.code, f.name, f.subject))
        .chain(
            gates
                .iter()
                .filter(|(_, g)| verdict_of(g) == Verdict::Warn)
                .map(|(key, g)| {
                    format!(
                        "{} gate: warnings (see {key})",
                        g["gate"].as_str().unwrap_or("?")
                    )
                }),
        )
        .chain(
            consume["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "consume {} {}: {}",
                        f["code"].as_str().unwrap_or("?"),
                        f["name"].as_str().unwrap_or("?"),
                        f["message"].as_str().unwrap_or("?")
                    )
                }),
        )
        .collect();
    let waivers: Vec<serde_json::Value> = gates
        .iter()
        .flat_map(|(_, g)| g["waivers"].as_array().cloned().unwrap_or_default())
        .collect();
    let combined = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "generated_by": generated_by(),
        "release_version": version,
        "release_digest": digest,
        "verdict": overall,
        "verdicts": verdicts,
        "gates": gates.iter().map(|(key, g)| serde_json::json!({
            "gate": g["gate"], "verdict": g["verdict"], "blocking": g["blocking"],
            "report": key, "counts": g["counts"],
        })).collect::<Vec<_>>(),
        "human_qa": qa_gate,
        "training_consumption": {
            "verdict": consume["verdict"],
            "report": layout::CONSUMPTION_TEST.at(loc),
        },
        "waivers": waivers,
        "warnings": warnings,
    });

    let total_records: u64 = manifest.contents.iter().map(|c| c.records).sum();
    let included: Vec<String> = families.keys().cloned().collect();
    let decision = format!(
        "Publish {version} ({digest}) with {} records of the families {}. Known exclusions: {}.",
        total_records,
        included.join(", "),
        if exclusions.is_empty() {
            "none".to_string()
        } else {
            exclusions.join("; ")
        }
    );
    // The PII policy and how well redaction was measured to work, from the privacy report.
    let privacy = gates
        .iter()
        .find(|(_, g)| g["gate"] == "privacy")
        .map(|(_, g)| {
            let mut p = serde_json::json!({ "policy": g["policy"] });
            if g["evaluation"].is_object() {
                p["evaluation"] = serde_json::json!({
                    "minimums": g["evaluation"]["minimums"],
                    "sets": g["evaluation"]["sets"].as_array().into_iter().flatten().map(|s| serde_json::json!({
                        "key": s["key"],
                        "sha256": s["sha256"],
                        "documents": s["scores"]["documents"],
                        "recall_direct": s["scores"]["recall_direct"],
                        "precision": s["scores"]["precision"],
                        "f2_direct": s["scores"]["f2_direct"],
                        "recall_by_type": s["scores"]["recall_by_type"],
                        "passed": s["passed"],
                    })).collect::<Vec<_>>(),
                });
            }
            p
        })
        .unwrap_or_default();
    let notes = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "release_version": version,
        "release_digest": digest,
        "release_date": manifest.release_date,
        "decision": decision,
        "families": families,
        "exclusions": exclusions,
        "verdicts": combined["verdicts"],
        "privacy": privacy,
        "warnings": combined["warnings"],
        "waivers": combined["waivers"],
        "signoff": {
            "decision": signoff["decision"],
            "reviewers": signoff["reviewers"],
            "authentication": signoff["authentication"],
            "results": signoff["results"],
            "privacy_spot_check": signoff["privacy_spot_check"],
            "exceptions": signoff["exceptions"],
            "record_sha256": match qa_gate { crate::qa::QaGate::Approved { signoff_sha256, .. } => signoff_sha256.clone(), _ => String::new() },
        },
        "training_consumption": {
            "verdict": consume["verdict"],
            "records": consume["splits"].as_array().into_iter().flatten().map(|s| count(&s["records"])).sum::<u64>(),
            "batches": consume["batches"]["batches"],
            "over_max_seq_length": consume["splits"].as_array().into_iter().flatten().map(|s| count(&s["over_max_seq_length"])).sum::<u64>(),
        },
        "unenforced_store_override": unenforced_store_override,
    });
    let notes_md = notes_markdown(version, &digest, &decision, &notes, &families, &exclusions);
    let summary = serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "generated_by": generated_by(),
        "release_version": version,
        "release_digest": digest,
        "config_digest": config_digest,
        "registry_digest": registry.digest,
        "tool": manifest.tool,
        "tokenizer": manifest.tokens.tokenizer,
        "stages": outcome.stages,
        "verdict": overall,
    });
    let card = dataset_card(
        version,
        &digest,
        registry,
        &manifest,
        &families,
        &exclusions,
        &combined,
    );

    let croissant = crate::croissant::document(&crate::croissant::Inputs {
        location: loc,
        version,
        digest: &digest,
        registry,
        manifest: &parse(layout::MANIFEST.name(), &manifest_bytes)?,
        privacy: gates
            .iter()
            .find(|(_, g)| g["gate"] == "privacy")
            .map(|(_, g)| g),
        signoff: &signoff,
        exclusions: &exclusions,
    });

    let mut written = Vec::new();
    let mut evidence = Vec::new();
    for (file, bytes) in [
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
    ] {
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
    // The audit log is written out up to the publication, and the marker anchors it.
    let audit_head = match outcome.audit {
        Some(log) => {
            log.record(
                crate::audit::Action::Publish,
                crate::audit::Event::detail(serde_json::json!({
                    "release_digest": digest,
                    "evidence": evidence.len(),
                    "unenforced_store_override": unenforced_store_override,
                })),
            );
            log.flush()?;
            Some(log.head())
        }
        None => None,
    };
    let marker = Marker {
        schema_version: SCHEMA_VERSION,
        release_version: version.clone(),
        release_digest: digest,
        published_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        published_by: generated_by(),
        evidence,
        unenforced_store_override,
        audit_head,
    };
    let marker_key = layout::PUBLISHED_MARKER.at(loc);
    match store.put_create(&marker_key, json("the publication marker", &marker)?) {
        Ok(()) => {}
        Err(StoreError::AlreadyExists { .. }) => {
            return Err(PublishError::AlreadyPublished {
                version: version.clone(),
                location: store.locate(loc),
            });
        }
        Err(e) => return Err(e.into()),
    }
    written.push(marker_key.clone());
    Ok(Published {
        marker_key,
        marker,
        written,
    })
}

fn notes_markdown(
    version: &str,
    digest: &str,
    decision: &str,
    notes: &serde_json::Value,
    families: &BTreeMap<String, BTreeMap<String, u64>>,
    exclusions: &[String],
) -> String {
    let mut md = format!("# Release notes: {version}\n\nRelease digest `{digest}`.\n\n");
    md.push_str(&format!("## Decision\n\n{decision}\n\n## Families\n\n| family | train | val | test |\n|---|---|---|---|\n"));
    for (f, splits) in families {
        let n = |s: &str| splits.get(s).copied().unwrap_or(0);
        md.push_str(&format!(
            "| {f} | {} | {} | {} |\n",
            n("train"),
            n("val"),
            n("test")
        ));
    }
    md.push_str("\n## Gates\n\n| stage | verdict |\n|---|---|\n");
    if let Some(v) = notes["verdicts"].as_object() {
        for (k, v) in v {
            md.push_str(&format!("| {k} | {} |\n", v.as_str().unwrap_or("?")));
        }
    }
    md.push_str(&privacy_markdown(&notes["privacy"]));
    md.push_str("\n## Known exclusions\n\n");
    if exclusions.is_empty() {
        md.push_str("None.\n");
    }
    for e in exclusions {
        md.push_str(&format!("- {e}\n"));
    }
    md.push_str("\n## Warnings and waivers\n\n");
    let warnings = notes["warnings"].as_array().cloned().unwrap_or_default();
    let waivers = notes["waivers"].as_array().cloned().unwrap_or_default();
    if warnings.is_empty() && waivers.is_empty() {
        md.push_str("None.\n");
    }
    for w in warnings {
        md.push_str(&format!("- {}\n", w.as_str().unwrap_or_default()));
    }
    for w in waivers {
        md.push_str(&format!("- waiver: {w}\n"));
    }
    md.push_str("\n## Human review\n\n");
    let s = &notes["signoff"];
    md.push_str(&format!(
        "Signoff: **{}** (record sha256 `{}`).\n\n",
        s["decision"].as_str().unwrap_or("?"),
        s["record_sha256"].as_str().unwrap_or("?")
    ));
    if let Some(r) = s["reviewers"].as_object() {
        for (who, t) in r {
            md.push_str(&format!("- {who}: {}\n", t.as_str().unwrap_or("?")));
        }
    }
    if let Some(auth) = s["authentication"].as_array() {
        md.push_str("\nWho vouches for each review file:\n\n");
        for a in auth {
            let how = match a["method"].as_str() {
                Some("app-session") => "authenticated: submitted in the review app".to_string(),
                Some("signature") => {
                    "authenticated: signed with the reviewer's registered key".to_string()
                }
                _ => format!(
                    "operator-attested by {}",
                    a["by"].as_str().unwrap_or("unknown")
                ),
            };
            let counted = if a["counted"].as_bool() == Some(false) {
                " (not counted)"
            } else {
                ""
            };
            md.push_str(&format!(
                "- {} ({}): {how}{counted}\n",
                a["reviewer"].as_str().unwrap_or("?"),
                a["review_type"].as_str().unwrap_or("?")
            ));
        }
    }
    if let Some(results) = s["results"].as_array() {
        md.push_str("\n| review | samples | reviews passing | mean overall | pass/fail agreement |\n|---|---|---|---|---|\n");
        for r in results {
            md.push_str(&format!(
                "| {} | {} | {} of {} | {} | {} |\n",
                r["review_type"].as_str().unwrap_or("?"),
                r["samples"],
                r["reviews_passing"],
                r["reviews"],
                r["mean_overall"],
                r["pass_fail_agreement"]
                    .as_f64()
                    .map_or_else(|| "n/a (one reviewer)".to_string(), |a| a.to_string())
            ));
        }
    }
    let p = &s["privacy_spot_check"];
    if p["drawn"].as_bool() == Some(true) {
        let by_type: Vec<String> = p["marks_by_type"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        md.push_str(&format!(
            "\nPrivacy spot-check (the privacy gate's sample, read by people): {} of {} records reviewed, {} with an identifier left{}; residual-identifier rate {} (one-sided 95% upper bound {}, exact Clopper–Pearson).\n",
            p["records_reviewed"],
            p["records"],
            p["records_with_miss"],
            if by_type.is_empty() { String::new() } else { format!(" (marks: {})", by_type.join(", ")) },
            p["residual_identifier_rate"],
            p["residual_identifier_rate_upper_95"],
        ));
    }
    let t = &notes["training_consumption"];
    md.push_str(&format!(
        "\n## Training consumption\n\n{} records loaded and verified, {} curriculum batches, {} over max_seq_length.\n",
        t["records"], t["batches"], t["over_max_seq_length"]
    ));
    if let Some(r) = notes["unenforced_store_override"].as_str() {
        md.push_str(&format!(
            "\n## Store override\n\nThe store does not enforce create-only writes; published anyway because: {r}\n"
        ));
    }
    md
}

/// The release notes' privacy section: the PII policy, and the measured recall and
/// precision on each labelled set with their 95% intervals.
fn privacy_markdown(p: &serde_json::Value) -> String {
    let policy = &p["policy"];
    let disabled: Vec<&str> = policy["disabled"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    let mut md = format!(
        "\n## Privacy\n\nPII policy: dates `{}`; types not detected: {}.\n",
        policy["dates"].as_str().unwrap_or("?"),
        if disabled.is_empty() {
            "none".to_string()
        } else {
            disabled.join(", ")
        }
    );
    let rate = |m: &serde_json::Value| match (m["value"].as_f64(), m["wilson_95"].as_array()) {
        (Some(v), Some(ci)) if ci.len() == 2 => format!(
            "{v:.3} [{:.3}, {:.3}]",
            ci[0].as_f64().unwrap_or(0.0),
            ci[1].as_f64().unwrap_or(0.0)
        ),
        _ => "n/a".to_string(),
    };
    if let Some(sets) = p["evaluation"]["sets"].as_array() {
        md.push_str("\nRedaction measured this release by the privacy gate on labelled sets (recall over direct identifiers, precision; 95% Wilson intervals):\n\n| set | documents | direct recall | precision | F2 | minimums met |\n|---|---|---|---|---|---|\n");
        for s in sets {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                s["key"].as_str().unwrap_or("?"),
                s["documents"],
                rate(&s["recall_direct"]),
                rate(&s["precision"]),
                s["f2_direct"]
                    .as_f64()
                    .map_or_else(|| "n/a".to_string(), |f| format!("{f:.3}")),
                if s["passed"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                }
            ));
        }
    }
    md
}

fn size_category(n: u64) -> &'static str {
    match n {
        0..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        1_000_000..10_000_000 => "1M<n<10M",
        _ => "10M<n<100M",
    }
}

fn dataset_card(
    version: &str,
    digest: &str,
    registry: &Registry,
    manifest: &Manifest,
    families: &BTreeMap<String, BTreeMap<String, u64>>,
    exclusions: &[String],
    combined: &serde_json::Value,
) -> String {
    let datasets: BTreeSet<&str> = manifest.inputs.iter().map(|i| i.dataset.as_str()).collect();
    let licences: BTreeSet<String> = registry
        .datasets
        .iter()
        .filter(|d| datasets.contains(d.name.as_str()))
        .filter_map(|d| d.license_tag.as_deref())
        .map(str::to_ascii_lowercase)
        .collect();
    let total: u64 = manifest.contents.iter().map(|c| c.records).sum();
    let mut y = String::from("---\n");
    y.push_str("license:\n");
    for l in &licences {
        y.push_str(&format!("- {l}\n"));
    }
    y.push_str(&format!(
        "language:\n- en\ntask_categories:\n- text-generation\nsize_categories:\n- {}\npretty_name: gatehouse release {version}\ntags:\n- mental-health\n- counselling\n- chatml\n",
        size_category(total)
    ));
    y.push_str("configs:\n- config_name: default\n  data_files:\n");
    for s in ["train", "val", "test"] {
        if families
            .values()
            .any(|f| f.get(s).copied().unwrap_or(0) > 0)
        {
            y.push_str(&format!("  - split: {s}\n    path: shards/{s}/*.parquet\n"));
        }
    }
    y.push_str("---\n\n");
    y.push_str(&format!(
        "# gatehouse release {version}\n\nTraining conversations for a therapy-assistant model, compiled to ChatML, redacted, deduplicated, split by group, gated and reviewed by clinicians. Release digest `{digest}` (the sha256 of `manifest.json`; every file is listed there with its sha256).\n\n"
    ));
    y.push_str("## Contents\n\n| family | train | val | test |\n|---|---|---|---|\n");
    for (f, splits) in families {
        let n = |s: &str| splits.get(s).copied().unwrap_or(0);
        y.push_str(&format!(
            "| {f} | {} | {} | {} |\n",
            n("train"),
            n("val"),
            n("test")
        ));
    }
    y.push_str("\nEach record: `id`, `messages` (a list of `{role, content}`, roles system/user/assistant) and `metadata` (family, dataset, stage, split, source key and line, licence, tokens, redactions, provenance). JSONL and Parquet shards hold the same records; `routing_config.json` gives the curriculum stages and family weights; `croissant.json` describes the release in Croissant 1.1 metadata (record set, fields, shards with sha256, responsible-AI properties).\n\n");
    y.push_str("## Intended use\n\nSupervised fine-tuning and evaluation of a therapy-assistant model under clinical oversight. The test split and holdout families are for evaluation only.\n\n");
    y.push_str("## Limitations\n\n- Personal data was redacted automatically (typed placeholders such as `[NAME_1]`) and checked by a full re-scan and a human spot-check; detection is not perfect.\n- Crisis resources (e.g. 988, 741741) are kept on purpose. Conversations may discuss suicide, self-harm and abuse.\n- Synthetic and third-party sources carry their own licences (front matter) and biases; the bias and cultural review sampled, not exhausted, the data.\n- Not a substitute for clinical judgement; not for diagnosis.\n\n");
    y.push_str("## Known exclusions\n\n");
    if exclusions.is_empty() {
        y.push_str("None.\n");
    }
    for e in exclusions {
        y.push_str(&format!("- {e}\n"));
    }
    y.push_str("\n## Gate results\n\n| stage | verdict |\n|---|---|\n");
    if let Some(v) = combined["verdicts"].as_object() {
        for (k, v) in v {
            y.push_str(&format!("| {k} | {} |\n", v.as_str().unwrap_or("?")));
        }
    }
    y.push_str("\n## Review\n\nClinician (foundation and crisis) and bias/cultural reviewers scored seeded, stratified samples against their rubrics; the signoff (`qa/signoff_record.json`) is bound to this release digest. See `release_notes.md`.\n");
    y
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
