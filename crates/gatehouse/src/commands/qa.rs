//! `gatehouse qa`.

use anyhow::Result;
use gatehouse_core::qa;
use gatehouse_core::release;

use super::Release;
use crate::cli::{Cli, QaSampleArgs};
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
