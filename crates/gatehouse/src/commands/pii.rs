//! `gatehouse pii eval`: PII redaction measured on a labelled file.

use std::io::BufReader;

use anyhow::{Context, Result, bail};
use gatehouse_core::config::{self, ProcessEnv};
use gatehouse_core::privacy::{self, Minimums, SetScores};

use crate::cli::{Cli, PiiEvalArgs};
use crate::exit::Code;
use crate::print;

pub fn eval(cli: &Cli, args: &PiiEvalArgs) -> Result<Code> {
    // Only [privacy] is needed: no store, so this works anywhere.
    let settings = config::resolve_privacy(&cli.global.overrides(), &ProcessEnv)?;
    for (flag, v) in [
        ("--min-recall-direct", args.min_recall_direct),
        ("--min-precision", args.min_precision),
    ] {
        if let Some(v) = v
            && !(0.0..=1.0).contains(&v)
        {
            bail!("{flag} {v} is not between 0 and 1 (a share: 0.95 means 95%)");
        }
    }
    let path = args.file.display().to_string();
    let file = std::fs::File::open(&args.file).with_context(|| {
        format!("cannot read {path}: give the path of a labelled JSON Lines file")
    })?;
    let detector = settings.detector();
    let evaluation = privacy::evaluate(BufReader::with_capacity(1 << 20, file), &detector)
        .with_context(|| format!("{path}: not a labelled set"))?;
    let minimums = Minimums {
        min_recall_direct: args
            .min_recall_direct
            .or(settings.evaluation.min_recall_direct),
        min_precision: args.min_precision.or(settings.evaluation.min_precision),
    };
    let shortfalls = minimums.shortfalls(&evaluation);
    if cli.global.json {
        print::json(&serde_json::json!({
            "file": path,
            "policy": detector.policy(),
            "scores": SetScores::from(&evaluation),
            "minimums": minimums,
            "shortfalls": shortfalls
                .iter()
                .map(|(what, message)| serde_json::json!({"minimum": what, "message": message}))
                .collect::<Vec<_>>(),
            "passed": shortfalls.is_empty(),
        }))?;
    } else {
        let policy = detector.policy();
        print::out(&format!(
            "{path}: policy dates = {}, disabled = [{}]",
            serde_json::to_value(policy.dates)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            policy
                .disabled
                .iter()
                .map(|t| t.label())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        print::out(evaluation.table().trim_end());
        if evaluation.unsettled > 0 {
            print::out(&format!(
                "{} document(s) did not settle: the build would quarantine them (Q014)",
                evaluation.unsettled
            ));
        }
        print::out(
            "* direct identifier; recall: labels at least half replaced; precision: replaced regions overlapping a label",
        );
    }
    if shortfalls.is_empty() {
        Ok(Code::Ok)
    } else {
        for (_, message) in &shortfalls {
            print::note(&format!("below the minimum: {message}"));
        }
        print::note("exit 1: improve the detector or the [privacy] policy, or review the minimum");
        Ok(Code::Blocked)
    }
}
