//! Markdown rendering of a [`CoverageReport`] — a view of the JSON, nothing more.

use std::fmt::Write as _;

use super::{CoverageReport, FamilyStatus};
use crate::report::human_bytes;

fn status(s: FamilyStatus) -> &'static str {
    match s {
        FamilyStatus::Present => "present",
        FamilyStatus::Partial => "partial",
        FamilyStatus::Missing => "**missing**",
        FamilyStatus::Waived => "waived",
    }
}

/// Escapes `|` so keys cannot break a table row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The report as Markdown: a summary line, then families, datasets, unmapped objects and
/// findings, one section each.
pub fn render_markdown(r: &CoverageReport) -> String {
    let mut out = String::new();
    summary(&mut out, r);
    families(&mut out, r);
    datasets(&mut out, r);
    unmapped(&mut out, r);
    findings(&mut out, r);
    out
}

fn summary(out: &mut String, r: &CoverageReport) {
    let _ = writeln!(out, "# Coverage: {}\n", r.store);
    let _ = writeln!(
        out,
        "Verdict: **{}** · {} objects ({}) listed, {} mapped to datasets, {} unmapped · \
         registry `{}` · as of {} · {}\n",
        r.verdict.as_str(),
        r.totals.objects,
        human_bytes(r.totals.bytes),
        r.totals.mapped_objects,
        r.unmapped.objects,
        r.registry_digest,
        r.as_of,
        r.generated_by,
    );
}

/// The families table, then the waivers that apply to them.
fn families(out: &mut String, r: &CoverageReport) {
    let _ = writeln!(out, "## Families\n");
    let _ = writeln!(
        out,
        "| family | stage | required | holdout | status | datasets present | objects | bytes |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---:|---:|");
    for f in &r.families {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {}/{} | {} | {} |",
            f.family,
            f.stage,
            if f.required { "yes" } else { "no" },
            f.holdout.as_str(),
            status(f.status),
            f.datasets_present,
            f.datasets,
            f.objects,
            human_bytes(f.bytes),
        );
    }
    let waived: Vec<_> = r
        .families
        .iter()
        .filter_map(|f| f.waiver.as_ref().map(|w| (f, w)))
        .collect();
    if !waived.is_empty() {
        let _ = writeln!(out, "\n### Waivers\n");
        for (f, w) in waived {
            let _ = writeln!(
                out,
                "- {} `{}` ({:?}): {} — approved by {}, expires {}",
                f.family,
                w.waiver.code,
                w.status,
                w.waiver.reason,
                w.waiver.approver,
                w.waiver.expires
            );
        }
    }
}

/// The datasets table, with each dataset's first keys as evidence.
fn datasets(out: &mut String, r: &CoverageReport) {
    let _ = writeln!(out, "\n## Datasets\n");
    let _ = writeln!(
        out,
        "| dataset | family | format | licence | provenance | objects | bytes | evidence (first keys) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---:|---:|---|");
    for d in &r.datasets {
        let mut evidence = d
            .evidence_keys
            .iter()
            .map(|k| format!("`{}`", cell(k)))
            .collect::<Vec<_>>()
            .join("<br>");
        let more = d.objects.saturating_sub(d.evidence_keys.len() as u64);
        if more > 0 {
            let _ = write!(evidence, "<br>… {more} more");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            d.dataset,
            d.family,
            d.format,
            d.license_tag.as_deref().unwrap_or("**missing**"),
            if d.has_provenance {
                "yes"
            } else {
                "**missing**"
            },
            d.objects,
            human_bytes(d.bytes),
            evidence,
        );
    }
}

/// Objects no dataset claims: per folder, then the first keys.
fn unmapped(out: &mut String, r: &CoverageReport) {
    let _ = writeln!(out, "\n## Unmapped objects\n");
    if r.unmapped.objects == 0 {
        let _ = writeln!(out, "Every listed object belongs to a dataset.");
    } else {
        let _ = writeln!(
            out,
            "{} object(s), {}, belong to no dataset and are excluded from the release.\n",
            r.unmapped.objects,
            human_bytes(r.unmapped.bytes)
        );
        let _ = writeln!(out, "| folder | objects | bytes |\n|---|---:|---:|");
        for p in &r.unmapped.by_prefix {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} |",
                cell(&p.prefix),
                p.objects,
                human_bytes(p.bytes)
            );
        }
        let _ = writeln!(out, "\nFirst keys:\n");
        for k in &r.unmapped.examples {
            let _ = writeln!(out, "- `{k}`");
        }
    }
}

fn findings(out: &mut String, r: &CoverageReport) {
    let _ = writeln!(out, "\n## Findings\n");
    if r.findings.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for f in &r.findings {
        let _ = writeln!(
            out,
            "- {} `{}` {}: {}",
            f.severity.as_str(),
            f.code,
            f.name,
            f.message
        );
    }
}
