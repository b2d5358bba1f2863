//! The release notes: `release_notes.json` with the release decision record, and its
//! Markdown rendering `release_notes.md`; and the Markdown tables the dataset card shares.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::contract::publish::{CombinedGateReport, NotesConsumption, NotesSignoff, ReleaseNotes};
use crate::report::Verdict;

use super::{Checked, Families, Judged, SCHEMA_VERSION};

/// The release decision record: what is published, and what was left out.
pub(super) fn decision(r: &Judged<'_>) -> String {
    let total_records: u64 = r.manifest.contents.iter().map(|c| c.records).sum();
    let included: Vec<String> = r.families.keys().cloned().collect();
    format!(
        "Publish {} ({}) with {} records of the families {}. Known exclusions: {}.",
        r.version,
        r.digest,
        total_records,
        included.join(", "),
        if r.exclusions.is_empty() {
            "none".to_string()
        } else {
            r.exclusions.join("; ")
        }
    )
}

/// The PII policy and how well redaction was measured to work, from the privacy report.
fn privacy(r: &Judged<'_>) -> Value {
    r.privacy
        .as_ref()
        .map(|g| {
            let mut p = serde_json::json!({ "policy": g.detail.policy });
            if let Some(e) = &g.detail.evaluation {
                p["evaluation"] = serde_json::json!({
                    "minimums": e.minimums,
                    "sets": e.sets.iter().map(|s| {
                        let scores = s.scores.as_ref();
                        serde_json::json!({
                            "key": s.key,
                            "sha256": s.sha256,
                            "documents": scores.map(|x| x.documents),
                            "recall_direct": scores.map(|x| &x.recall_direct),
                            "precision": scores.map(|x| &x.precision),
                            "f2_direct": scores.and_then(|x| x.f2_direct),
                            "recall_by_type": scores.map(|x| &x.recall_by_type),
                            "passed": s.passed,
                        })
                    }).collect::<Vec<_>>(),
                });
            }
            p
        })
        .unwrap_or_default()
}

/// `release_notes.json`: from the real gate results, exceptions and signoff.
pub(super) fn release_notes(
    r: &Judged<'_>,
    checked: &Checked<'_>,
    decision: &str,
    combined: &CombinedGateReport,
) -> ReleaseNotes {
    let (signoff, consume) = (&r.signoff, &r.consume);
    ReleaseNotes {
        decision: decision.to_string(),
        exclusions: r.exclusions.clone(),
        families: r.families.clone(),
        privacy: privacy(r),
        release_date: r.manifest.release_date.clone(),
        release_digest: r.digest.to_string(),
        release_version: r.version.to_string(),
        schema_version: SCHEMA_VERSION,
        signoff: NotesSignoff {
            authentication: signoff.authentication.clone(),
            decision: signoff.decision.clone(),
            exceptions: signoff.exceptions.clone(),
            privacy_spot_check: signoff.privacy_spot_check.clone(),
            record_sha256: match checked.qa_gate {
                crate::qa::QaGate::Approved { signoff_sha256, .. } => signoff_sha256.clone(),
                _ => String::new(),
            },
            results: signoff.results.clone(),
            reviewers: signoff.reviewers.clone(),
        },
        training_consumption: NotesConsumption {
            batches: consume.batches.batches,
            over_max_seq_length: consume.splits.iter().map(|s| s.over_max_seq_length).sum(),
            records: consume.splits.iter().map(|s| s.records).sum(),
            verdict: consume.verdict,
        },
        unenforced_store_override: checked.unenforced_store_override.clone(),
        verdicts: combined.verdicts.clone(),
        waivers: combined.waivers.clone(),
        warnings: combined.warnings.clone(),
    }
}

/// `release_notes.md`: the notes for people.
pub(super) fn markdown(r: &Judged<'_>, decision: &str, notes: &ReleaseNotes) -> String {
    let mut md = format!(
        "# Release notes: {}\n\nRelease digest `{}`.\n\n",
        r.version, r.digest
    );
    md.push_str(&format!("## Decision\n\n{decision}\n\n## Families\n\n"));
    md.push_str(&families_table(&r.families));
    md.push_str("\n## Gates\n\n");
    md.push_str(&verdicts_table(&notes.verdicts));
    md.push_str(&privacy_markdown(&notes.privacy));
    md.push_str("\n## Known exclusions\n\n");
    md.push_str(&list(&r.exclusions));
    md.push_str("\n## Warnings and waivers\n\n");
    if notes.warnings.is_empty() && notes.waivers.is_empty() {
        md.push_str("None.\n");
    }
    for w in &notes.warnings {
        md.push_str(&format!("- {w}\n"));
    }
    for w in &notes.waivers {
        // As JSON, keys sorted, as the notes' JSON holds it.
        let w = serde_json::to_value(w).unwrap_or_default();
        md.push_str(&format!("- waiver: {w}\n"));
    }
    md.push_str("\n## Human review\n\n");
    md.push_str(&signoff_markdown(
        &serde_json::to_value(&notes.signoff).unwrap_or_default(),
    ));
    let t = &notes.training_consumption;
    md.push_str(&format!(
        "\n## Training consumption\n\n{} records loaded and verified, {} curriculum batches, {} over max_seq_length.\n",
        t.records, t.batches, t.over_max_seq_length
    ));
    if let Some(r) = &notes.unenforced_store_override {
        md.push_str(&format!(
            "\n## Store override\n\nThe store does not enforce create-only writes; published anyway because: {r}\n"
        ));
    }
    md
}

/// The human review: the signoff, its reviewers, who vouches for each review file, the
/// results per review and the privacy spot-check.
fn signoff_markdown(s: &Value) -> String {
    let mut md = format!(
        "Signoff: **{}** (record sha256 `{}`).\n\n",
        s["decision"].as_str().unwrap_or("?"),
        s["record_sha256"].as_str().unwrap_or("?")
    );
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
    md.push_str(&spot_check_markdown(&s["privacy_spot_check"]));
    md
}

/// The privacy spot-check, when one was drawn.
fn spot_check_markdown(p: &Value) -> String {
    if p["drawn"].as_bool() != Some(true) {
        return String::new();
    }
    let by_type: Vec<String> = p["marks_by_type"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    format!(
        "\nPrivacy spot-check (the privacy gate's sample, read by people): {} of {} records reviewed, {} with an identifier left{}; residual-identifier rate {} (one-sided 95% upper bound {}, exact Clopper–Pearson).\n",
        p["records_reviewed"],
        p["records"],
        p["records_with_miss"],
        if by_type.is_empty() {
            String::new()
        } else {
            format!(" (marks: {})", by_type.join(", "))
        },
        p["residual_identifier_rate"],
        p["residual_identifier_rate_upper_95"],
    )
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

/// Records per split, by family, as a Markdown table.
pub(super) fn families_table(families: &Families) -> String {
    let mut md = String::from("| family | train | val | test |\n|---|---|---|---|\n");
    for (f, splits) in families {
        let n = |s: &str| splits.get(s).copied().unwrap_or(0);
        md.push_str(&format!(
            "| {f} | {} | {} | {} |\n",
            n("train"),
            n("val"),
            n("test")
        ));
    }
    md
}

/// Each stage's verdict (the combined report's `verdicts`), as a Markdown table.
pub(super) fn verdicts_table(verdicts: &BTreeMap<String, Verdict>) -> String {
    let mut md = String::from("| stage | verdict |\n|---|---|\n");
    for (k, v) in verdicts {
        md.push_str(&format!("| {k} | {} |\n", v.as_str()));
    }
    md
}

/// A Markdown list, or `None.` when there is nothing to list.
pub(super) fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "None.\n".into();
    }
    items.iter().map(|e| format!("- {e}\n")).collect()
}
