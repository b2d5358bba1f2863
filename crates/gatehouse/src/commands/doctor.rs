//! `gatehouse doctor`.

use anyhow::Result;
use gatehouse_core::doctor::{self, CheckStatus, CreateOnly};
use gatehouse_core::registry::Registry;

use super::{open_store, settings};
use crate::cli::Cli;
use crate::exit::Code;
use crate::print;

pub fn run(cli: &Cli) -> Result<Code> {
    let settings = settings(cli)?;
    let store = open_store(&settings)?;
    let mut report = doctor::run(&store, settings.origins.clone());
    report.warnings.clone_from(&settings.warnings);
    let registry = Registry::load(&settings.registry_path);
    // The same check `release` makes before its first stage (the registry is part of it).
    match &registry {
        Ok(r) => report.config_problems = settings.problems(r),
        // A release refuses to start on it too: a problem, not a note.
        Err(e) => report.config_problems.push(format!("registry: {e}")),
    }

    if cli.global.json {
        print::json(&report)?;
    } else {
        let config = settings
            .config_file
            .as_ref()
            .map_or("(none)".to_string(), |p| p.display().to_string());
        print::out(&format!("{:<15} {config}", "config file"));
        for o in &report.settings {
            print::out(&format!(
                "{:<15} {:<44} from {}",
                o.setting, o.value, o.from
            ));
        }
        for w in &report.warnings {
            print::out(&format!("{:<15} {w}", "WARNING"));
        }
        print::out(&format!("\n{:<15} {}", "store", report.store));
        match &registry {
            Ok(r) => print::out(&format!(
                "{:<15} valid: {} dataset(s) in {} families, {}",
                "registry check",
                r.datasets.len(),
                r.families.len(),
                r.digest
            )),
            Err(e) => print::out(&format!("{:<15} NOT VALID: {e}", "registry check")),
        }
        match (&registry, report.config_problems.as_slice()) {
            (Err(_), _) => print::out(&format!(
                "{:<15} not checked: it needs a valid registry",
                "config check"
            )),
            (Ok(_), []) => print::out(&format!(
                "{:<15} valid: every section checked",
                "config check"
            )),
            (Ok(_), problems) => {
                print::out(&format!(
                    "{:<15} NOT VALID: a release would refuse to start",
                    "config check"
                ));
                for p in problems {
                    print::out(&format!("{:<15} {p}", ""));
                }
            }
        }
        print::out("\nchecks");
        for c in &report.checks {
            let status = match c.status {
                CheckStatus::Ok => "ok  ",
                CheckStatus::Warn => "WARN",
                CheckStatus::Fail => "FAIL",
            };
            print::out(&format!("  {status}  {:<12} {}", c.name, c.detail));
        }
        let verdict = match report.create_only {
            CreateOnly::Enforced => {
                "the store enforces create-only writes: write-once publication is safe"
            }
            CreateOnly::Ignored => {
                "the store IGNORES conditional writes: gatehouse cannot guarantee that a published \
                 release is never overwritten; publishing on it will be refused"
            }
            CreateOnly::Unsupported => {
                "the store does not support conditional writes: publishing on it will be \
                 refused"
            }
            CreateOnly::NotTested => "the store could not be used; fix the failed check above",
        };
        print::out(&format!("\nresult: {verdict}"));
    }
    Ok(
        if report.store_unusable() || !report.config_problems.is_empty() {
            Code::Error
        } else if !report.publish_safe {
            Code::Blocked
        } else {
            Code::Ok
        },
    )
}
