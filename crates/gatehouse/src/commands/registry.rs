//! `gatehouse registry check|import|suggest`.

use anyhow::{Context, Result, bail};
use gatehouse_core::registry::import::{groups_of, import_prototype};

use gatehouse_core::suggest::{self, Options, sample::Bounds};

use super::{load_registry, open_store, settings};
use crate::cli::{Cli, ImportArgs, SuggestArgs};
use crate::exit::Code;
use crate::print;

pub fn check(cli: &Cli) -> Result<Code> {
    let settings = settings(cli)?;
    let registry = load_registry(&settings)?;
    if cli.global.json {
        let datasets: Vec<_> = registry
            .datasets
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.name, "family": d.family, "stage": d.stage, "format": d.format,
                    "include": d.include, "exclude": d.exclude,
                    "license_tag": d.license_tag, "has_provenance": d.provenance.is_some(),
                })
            })
            .collect();
        print::json(&serde_json::json!({
            "path": registry.path, "digest": registry.digest,
            "families": registry.families, "datasets": datasets,
        }))?;
        return Ok(Code::Ok);
    }
    print::out(&format!(
        "{}: valid, {} families, {} datasets, {}",
        registry.path.display(),
        registry.families.len(),
        registry.datasets.len(),
        registry.digest
    ));
    for (name, f) in &registry.families {
        let members: Vec<&str> = registry
            .datasets
            .iter()
            .filter(|d| &d.family == name)
            .map(|d| d.name.as_str())
            .collect();
        print::out(&format!(
            "  {name} ({}, {}, holdout {}): {}",
            f.stage,
            if f.required { "required" } else { "optional" },
            f.holdout.as_str(),
            if members.is_empty() {
                "no datasets".to_string()
            } else {
                members.join(", ")
            }
        ));
    }
    for d in &registry.datasets {
        if d.license_tag.is_none() || d.provenance.is_none() {
            print::out(&format!(
                "  note: dataset {} lacks {}; it will be excluded",
                d.name,
                match (d.license_tag.is_none(), d.provenance.is_none()) {
                    (true, true) => "a licence and provenance",
                    (true, false) => "a licence",
                    _ => "provenance",
                }
            ));
        }
    }
    Ok(Code::Ok)
}

pub fn import(cli: &Cli, args: &ImportArgs) -> Result<Code> {
    if cli.global.json && args.output.is_none() {
        bail!("--json prints the import summary on stdout; give --output for the registry itself");
    }
    let json = std::fs::read_to_string(&args.source)
        .with_context(|| format!("cannot read {}", args.source.display()))?;
    let name = args.source.display().to_string();
    let outcome = import_prototype(&json, &name).map_err(anyhow::Error::msg)?;
    match &args.output {
        Some(path) => {
            if path.exists() && !args.force {
                bail!("{} exists; pass --force to overwrite it", path.display());
            }
            std::fs::write(path, &outcome.toml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            print::note(&format!("wrote {}", path.display()));
        }
        None => print::out(&outcome.toml),
    }
    if cli.global.json {
        print::json(&serde_json::json!({
            "imported": outcome.imported,
            "commented_out": outcome.commented_out,
            "decisions": outcome.decisions,
        }))?;
        return Ok(Code::Ok);
    }
    let groups = groups_of(&json)
        .into_iter()
        .map(|(g, n)| format!("{g} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    print::note(&format!(
        "imported {} dataset(s), {} written as comments (entries per group: {groups})",
        outcome.imported, outcome.commented_out
    ));
    print::note(&format!(
        "{} decision(s) need a human:",
        outcome.decisions.len()
    ));
    for d in &outcome.decisions {
        print::note(&format!("  - {d}"));
    }
    Ok(Code::Ok)
}

pub fn suggest(cli: &Cli, args: &SuggestArgs) -> Result<Code> {
    if args.records == 0 || args.max_bytes == 0 || args.max_objects == 0 {
        bail!("--records, --max-bytes and --max-objects must be at least 1");
    }
    let settings = settings(cli)?;
    let registry = load_registry(&settings)?;
    let registry_text = std::fs::read_to_string(&registry.path)
        .with_context(|| format!("cannot read {}", registry.path.display()))?;
    let store = open_store(&settings)?;
    let prefix = args.prefix.clone().unwrap_or_default();
    let exports = store.exports_prefix().to_string();
    if prefix == exports || prefix.starts_with(&format!("{exports}/")) {
        bail!(
            "{prefix:?} lies under the exports prefix {exports}/, gatehouse's own output; give a \
             prefix of source data"
        );
    }
    let options = Options {
        prefix,
        bounds: Bounds {
            max_bytes: args.max_bytes,
            records: args.records,
            max_parquet_bytes: args.max_parquet_bytes,
        },
        max_objects: args.max_objects,
        limits: settings.build.limits,
    };
    let report = suggest::run(&store, &registry, &registry_text, &options)?;
    if cli.global.json {
        print::json(&report)?;
        return Ok(Code::Ok);
    }
    if report.groups.is_empty() {
        let scope = if options.prefix.is_empty() {
            "in the store".to_string()
        } else {
            format!("under {:?}", options.prefix)
        };
        print::note(&if report.objects == 0 {
            format!(
                "no objects {scope} outside {exports}/; nothing to suggest (check the prefix, \
                 or `gatehouse doctor` for the store)"
            )
        } else {
            format!(
                "every one of the {} object(s) {scope} is claimed by a dataset; nothing to \
                 suggest",
                report.objects
            )
        });
        return Ok(Code::Ok);
    }
    print::out(&suggest::render_text(&report));
    Ok(Code::Ok)
}
