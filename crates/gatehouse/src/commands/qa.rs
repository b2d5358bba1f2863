//! `gatehouse qa`.

use anyhow::Result;
use gatehouse_core::qa;
use gatehouse_core::release;

use super::Release;
use crate::cli::{Cli, QaImportArgs, QaSampleArgs};
use crate::exit::Code;
use crate::print;

pub fn sample(cli: &Cli, args: &QaSampleArgs) -> Result<Code> {
    let Release {
        settings,
        registry,
        store,
        version,
    } = Release::open(cli, args.release_version.as_deref())?;
    let location = release::location(&store, &version);
    let max_line = settings
        .build
        .limits
        .max_record_bytes
        .saturating_mul(2)
        .saturating_add(1 << 20);
    let out = qa::sample(&store, &registry, &location, &settings.qa, max_line)?;
    let s = &out.samples;
    if cli.global.json {
        print::json(&serde_json::json!({
            "release_version": s.release_version,
            "release_digest": s.release_digest,
            "groups": s.groups,
            "samples": s.samples.len(),
            "review_types_without_samples": s.review_types_without_samples,
            "written": out.written,
        }))?;
    } else {
        print::out(&format!(
            "qa sample: {} records from {} family × split groups (seed {}, rate {}, {}–{} per group), bound to {}",
            s.samples.len(),
            s.groups.len(),
            s.rule.seed,
            s.rule.rate,
            s.rule.min,
            s.rule.max,
            s.release_digest
        ));
        for g in &s.groups {
            print::out(&format!(
                "          {} {}: {} of {} ({})",
                g.family,
                g.split,
                g.size,
                g.population,
                g.review_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for key in &out.written {
            print::out(&format!("  wrote {}", store.locate(key)));
        }
    }
    if s.review_types_without_samples.is_empty() {
        Ok(Code::Ok)
    } else {
        print::note(&format!(
            "review types without any sampled record: {} (map them to a family in the registry's `review`; exit 1)",
            s.review_types_without_samples
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(Code::Blocked)
    }
}

pub fn import(cli: &Cli, args: &QaImportArgs) -> Result<Code> {
    let Release {
        settings,
        store,
        version,
        ..
    } = Release::open(cli, args.release_version.as_deref())?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let location = release::location(&store, &version);
    let key = qa::import(&store, &location, &bytes, &settings.qa)?;
    if cli.global.json {
        print::json(&serde_json::json!({ "stored": key }))?;
    } else {
        print::out(&format!("qa import: stored {}", store.locate(&key)));
    }
    Ok(Code::Ok)
}

pub fn signoff(cli: &Cli, args: &QaSampleArgs) -> Result<Code> {
    let Release {
        settings,
        store,
        version,
        ..
    } = Release::open(cli, args.release_version.as_deref())?;
    let location = release::location(&store, &version);
    let (record, written) = qa::signoff(&store, &location, &settings.qa)?;
    if cli.global.json {
        print::json(&serde_json::json!({ "signoff": record, "written": written }))?;
    } else {
        print::out(&format!(
            "qa signoff {}: {} reviewer(s), {} exception(s), {} flagged record(s), bound to {}",
            record.decision,
            record.reviewers.len(),
            record.exceptions.len(),
            record.blocklist.len(),
            record.release_digest
        ));
        for r in &record.results {
            print::out(&format!(
                "          {}: {} of {} samples complete ({} reviewer(s) each), {} of {} reviews pass, mean {:.2}",
                r.review_type.as_str(),
                r.samples_complete,
                r.samples,
                r.reviewers_required,
                r.reviews_passing,
                r.reviews,
                r.mean_overall
            ));
        }
        for reason in &record.reasons {
            print::out(&format!("          not approved: {reason}"));
        }
        for key in &written {
            print::out(&format!("  wrote {}", store.locate(key)));
        }
    }
    Ok(if record.decision == "approved" {
        Code::Ok
    } else {
        Code::Blocked
    })
}
