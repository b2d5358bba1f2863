//! `gatehouse coverage`.

use anyhow::{Context, Result};
use gatehouse_core::coverage;
use gatehouse_core::report::Verdict;

use super::{load_registry, open_store, settings, with_progress};
use crate::cli::{Cli, CoverageArgs};
use crate::exit::Code;
use crate::print;

pub fn run(cli: &Cli, args: &CoverageArgs) -> Result<Code> {
    let settings = settings(cli)?;
    let registry = load_registry(&settings)?;
    let store = open_store(&settings)?;
    let report = with_progress(cli, |progress| {
        coverage::run(
            &store,
            &registry,
            &settings.coverage,
            &settings.waivers,
            settings.as_of,
            progress,
        )
    })?;
    let markdown = coverage::render_markdown(&report);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let json_path = dir.join(gatehouse_core::layout::COVERAGE_REPORT.name());
        let mut json = serde_json::to_vec_pretty(&report)?;
        json.push(b'\n');
        std::fs::write(&json_path, json)
            .with_context(|| format!("write {}", json_path.display()))?;
        let md_path = dir.join(gatehouse_core::layout::COVERAGE_REPORT_MD.name());
        std::fs::write(&md_path, &markdown)
            .with_context(|| format!("write {}", md_path.display()))?;
        print::note(&format!(
            "wrote {} and {}",
            json_path.display(),
            md_path.display()
        ));
    }
    if cli.global.json {
        print::json(&report)?;
    } else {
        print::out(&markdown);
    }
    Ok(if report.verdict == Verdict::Fail {
        print::note("coverage: a required family is missing and not waived (exit 1)");
        Code::Blocked
    } else {
        Code::Ok
    })
}
