//! The text output: each group's entry under comment lines saying what was found.

use super::entry::toml_str;
use super::{Group, Report};

/// Distinct quarantine reasons printed per group (all are in the JSON).
const SHOWN_REASONS: usize = 8;

/// The comment lines above an entry: where, how many, what shape, what the adapter made of
/// the sample, and the decisions left.
pub(super) fn header(g: &Group) -> String {
    let mut out = String::new();
    let folder = if g.folder.is_empty() {
        "(store root)"
    } else {
        &g.folder
    };
    let shape = g
        .proposal
        .as_ref()
        .map_or_else(|| "not recognised".to_string(), |p| p.shape.clone());
    out.push_str(&format!(
        "\n# --- {folder}: {} unclaimed object(s), {} sampled: {shape}\n",
        g.objects, g.sampled_objects
    ));
    for (key, why) in &g.unrecognised {
        out.push_str(&format!("# not recognised: {key}: {why}\n"));
    }
    if let Some(c) = &g.check {
        out.push_str(&format!(
            "# adapts {} of {} sampled records\n",
            c.adapted, c.sampled_records
        ));
        for q in c.quarantined.iter().take(SHOWN_REASONS) {
            out.push_str(&format!(
                "# would quarantine {}: {} {}: {}\n",
                q.count, q.code, q.name, q.detail
            ));
        }
        if c.quarantined.len() > SHOWN_REASONS {
            let rest: u64 = c.quarantined[SHOWN_REASONS..].iter().map(|q| q.count).sum();
            out.push_str(&format!(
                "# would quarantine {rest} more, for {} other reason(s) (--json lists them)\n",
                c.quarantined.len() - SHOWN_REASONS
            ));
        }
        if let Some(problem) = &c.load_problem {
            for line in problem.lines() {
                out.push_str(&format!("# does not load with the registry yet: {line}\n"));
            }
        }
    }
    if let Some(p) = &g.proposal {
        for n in &p.notes {
            out.push_str(&format!("# decision needed: {n}\n"));
        }
    }
    if g.objects as usize > g.sampled_objects && g.proposal.is_some() {
        out.push_str(&format!(
            "# {} object(s) of this folder were not sampled (--max-objects); they are assumed \
             to share this shape\n",
            g.objects as usize - g.sampled_objects
        ));
    }
    out
}

/// The whole text output: a preamble, then each group's entry.
pub fn render_text(report: &Report) -> String {
    let mut out = format!(
        "# gatehouse registry suggest: {} of {} object(s) under {} are claimed by no dataset \
         (COV004), in {} group(s).\n# Paste an entry into the registry after the decisions it \
         lists; nothing was written. Counts\n# and reasons come from the build's adapter over \
         the sampled records.\n",
        report.unclaimed,
        report.objects,
        if report.prefix.is_empty() {
            "the store".to_string()
        } else {
            toml_str(&report.prefix)
        },
        report.groups.len()
    );
    for g in &report.groups {
        out.push_str(&g.toml);
    }
    out
}
