//! `gatehouse gates`.

use anyhow::Result;
use gatehouse_core::gates::GatesOutcome;
use gatehouse_core::release;
use gatehouse_core::report::Severity;

use super::Release;
use crate::cli::{Cli, GatesArgs};
use crate::exit::Code;
use crate::print;

pub fn run(cli: &Cli, args: &GatesArgs) -> Result<Code> {
    let Release {
        settings,
        registry,
        store,
        version,
    } = Release::open(cli, args.release_version.as_deref())?;
    let outcome = release::gates_only(&store, &settings, &registry, &version)?;
    if cli.global.json {
        print::json(&serde_json::json!({
            "release_version": version,
            "release_digest": outcome.privacy.release_digest,
            "gates": outcome.summaries,
            "written": outcome.written,
        }))?;
    } else {
        summary(&outcome);
        for key in &outcome.written {
            print::out(&format!("  wrote {}", store.locate(key)));
        }
    }
    Ok(if outcome.passed {
        Code::Ok
    } else {
        print::note("a gate failed: see the findings above and the reports' locators (exit 1)");
        Code::Blocked
    })
}

/// Prints one line per gate and its blocking findings.
pub fn summary(o: &GatesOutcome) {
    let p = &o.privacy.detail.metrics;
    print::out(&format!(
        "privacy   {}: {} records, {} messages scanned ({:.1} MB/s); {} detections; spot-check sample of {} records",
        o.privacy.verdict.as_str(),
        p.records_scanned,
        p.messages_scanned,
        p.scan_mb_per_second,
        p.detections_by_type.values().sum::<u64>(),
        o.privacy.detail.spot_check.size,
    ));
    if let Some(e) = &o.privacy.detail.evaluation {
        for set in &e.sets {
            print::out(&format!(
                "          labelled set {}: {}",
                set.key,
                measured(set)
            ));
        }
    }
    findings(&o.privacy.findings);
    let v = &o.provenance.detail.metrics;
    print::out(&format!(
        "provenance {}: {} records checked across {} datasets",
        o.provenance.verdict.as_str(),
        v.records_checked,
        v.records_by_dataset.len(),
    ));
    findings(&o.provenance.findings);
    let d = &o.dedup.detail;
    let (exact, near): (u64, u64) = d.per_family.values().fold((0, 0), |(e, n), f| {
        (e + f.exact_duplicates, n + f.near_duplicates)
    });
    print::out(&format!(
        "dedup     {}: {} records, {} exact and {} near duplicates left ({} candidate pairs, {} verified)",
        o.dedup.verdict.as_str(),
        d.records,
        exact,
        near,
        d.candidates,
        d.candidates_verified,
    ));
    findings(&o.dedup.findings);
    let c = &o.leakage.detail.certificate;
    print::out(&format!(
        "leakage   {}: {}; certificate {}",
        o.leakage.verdict.as_str(),
        c.pairs
            .iter()
            .map(|p| format!("{} {} exact + {} near", p.splits, p.exact, p.near))
            .collect::<Vec<_>>()
            .join(", "),
        if c.complete { "complete" } else { "INCOMPLETE" },
    ));
    findings(&o.leakage.findings);
    let d = &o.distribution.detail;
    let over: u64 = d
        .groups
        .iter()
        .filter(|g| g.split == "all")
        .map(|g| g.over_max_seq_length)
        .sum();
    print::out(&format!(
        "distribution {}: {} family × split groups, {} range checks, {} over max_seq_length {} ({}); {}",
        o.distribution.verdict.as_str(),
        d.groups.iter().filter(|g| g.split != "all").count(),
        d.range_checks.len(),
        over,
        d.max_seq_length,
        d.tokenizer,
        match &d.baseline {
            Some(b) => format!("compared with published {}", b.release_version),
            None => "first release: no baseline".to_string(),
        }
    ));
    findings(&o.distribution.findings);
}

fn findings(list: &[gatehouse_core::report::Finding]) {
    for f in list.iter().filter(|f| f.severity >= Severity::Warning) {
        print::out(&format!(
            "          {} {} {}: {}{}",
            f.severity.as_str(),
            f.code,
            f.name,
            f.message,
            if f.waiver.is_some() { " (waived)" } else { "" }
        ));
    }
}

/// One measured labelled set, as a line: direct recall and precision with their intervals.
fn measured(set: &gatehouse_core::gates::privacy::MeasuredSet) -> String {
    let Some(s) = &set.scores else {
        return format!(
            "not scored ({})",
            set.error.as_deref().unwrap_or("unreadable")
        );
    };
    let rate = |m: &gatehouse_core::privacy::Measured| match (m.value, m.wilson_95) {
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
