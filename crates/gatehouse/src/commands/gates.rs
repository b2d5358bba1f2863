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

/// Prints every gate's headline and its findings, in the order the gates run.
pub fn summary(o: &GatesOutcome) {
    for gate in &o.lines {
        for line in &gate.headline {
            print::out(line);
        }
        findings(&gate.findings);
    }
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
