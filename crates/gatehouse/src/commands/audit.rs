//! `gatehouse audit verify`.

use anyhow::Result;
use gatehouse_core::audit;

use super::Release;
use crate::cli::{AuditArgs, Cli};
use crate::exit::Code;
use crate::print;

pub fn verify(cli: &Cli, args: &AuditArgs) -> Result<Code> {
    let Release { store, version, .. } = Release::open(cli, args.release_version.as_deref())?;
    let v = audit::verify(&store, &version)?;
    if cli.global.json {
        print::json(&v)?;
    } else {
        print::out(&format!(
            "audit log of {version}: {} run(s), {} event(s) under {}",
            v.logs.len(),
            v.events,
            store.locate(&audit::prefix(&store, &version))
        ));
        for l in &v.logs {
            print::out(&format!(
                "  {}  run {}  by {}  {} events ({} reads, {} writes){}",
                l.key.rsplit('/').next().unwrap_or(&l.key),
                l.run,
                l.actor,
                l.events,
                l.reads,
                l.writes,
                if l.completed {
                    ""
                } else {
                    "  (did not finish: interrupted)"
                }
            ));
        }
        if let Some(a) = &v.anchor {
            print::out(&format!(
                "  anchored by the publication marker at seq {} of {}",
                a.seq,
                a.log.rsplit('/').next().unwrap_or(&a.log)
            ));
        }
        for p in &v.problems {
            print::out(&format!("  BROKEN {p}"));
        }
    }
    if v.logs.is_empty() {
        print::note(&format!(
            "no audit log for {version}: `gatehouse release --release-version {version}` writes one per run"
        ));
        return Ok(Code::Blocked);
    }
    if !v.intact() {
        print::note("the audit log was tampered with or damaged (exit 1)");
        return Ok(Code::Blocked);
    }
    print::note("the hash chain is intact");
    Ok(Code::Ok)
}
