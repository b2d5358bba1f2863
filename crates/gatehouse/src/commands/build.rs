//! `gatehouse build`.

use anyhow::Result;
use gatehouse_core::build::BuildReport;
use gatehouse_core::release;
use gatehouse_core::report::Verdict;

use super::Release;
use crate::cli::{BuildArgs, Cli};
use crate::exit::Code;
use crate::print;

pub fn run(cli: &Cli, args: &BuildArgs) -> Result<Code> {
    let Release {
        settings,
        registry,
        store,
        version,
    } = Release::open(cli, args.release_version.as_deref())?;
    let quiet = cli.global.quiet || cli.global.json;
    let outcome = release::build_only(&store, &settings, &registry, &version, &mut |key| {
        if !quiet {
            tracing::info!(key, "building from");
        }
    })?;
    if cli.global.json {
        print::json(&serde_json::json!({
            "release_version": version,
            "release_digest": outcome.release_digest,
            "report": outcome.report,
            "written": outcome.written,
        }))?;
    } else {
        summary(&outcome.report);
        print::out(&format!("release digest {}", outcome.release_digest));
        for key in &outcome.written {
            print::out(&format!("  wrote {}", store.locate(key)));
        }
    }
    Ok(if outcome.report.verdict == Verdict::Fail {
        print::note("build failed: see the failing sources above and quarantine.jsonl (exit 1)");
        Code::Blocked
    } else {
        Code::Ok
    })
}

/// Prints the build's counts, one line per source object.
pub fn summary(r: &BuildReport) {
    print::out(&format!(
        "build     {}: {} records read, {} exported (train {}, val {}, test {}), {} quarantined, {} duplicates removed ({} exact, {} near); {} tokens ({})",
        r.verdict.as_str(),
        r.records_read,
        r.records_exported,
        r.split_counts.values().next().copied().unwrap_or(0),
        r.split_counts.values().nth(1).copied().unwrap_or(0),
        r.split_counts.values().nth(2).copied().unwrap_or(0),
        r.records_quarantined,
        r.records_removed_as_duplicates,
        r.dedup.exact_removed,
        r.dedup.near_removed,
        r.tokens_exported,
        r.config.tokenizer,
    ));
    for o in &r.objects {
        print::out(&format!(
            "          {:<4} {} ({}): {} exported, {} quarantined, {} duplicates removed{}",
            o.verdict.as_str(),
            o.key,
            o.dataset,
            o.exported,
            o.quarantined.values().sum::<u64>(),
            o.duplicates_removed,
            if o.incomplete {
                ", not read to its end"
            } else {
                ""
            }
        ));
    }
    for e in &r.excluded_datasets {
        print::out(&format!(
            "          excluded dataset {}: {}",
            e.dataset, e.reason
        ));
    }
}
