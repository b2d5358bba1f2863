//! `gatehouse release`.

use anyhow::Result;
use gatehouse_core::qa::QaGate;
use gatehouse_core::release::{self, Stage};

use super::{Release, with_progress};
use crate::cli::{Cli, ReleaseArgs};
use crate::exit::Code;
use crate::print;

pub fn run(cli: &Cli, args: &ReleaseArgs) -> Result<Code> {
    let Release {
        settings,
        registry,
        store,
        version,
    } = Release::open(cli, args.release_version.as_deref())?;
    let options = release::RunOptions {
        no_fail_fast: args.no_fail_fast,
        unenforced_store_reason: args.allow_unenforced_store.as_deref(),
        no_resume: args.no_resume,
    };
    let plan = if args.dry_run {
        release::dry_run(&store, &settings, &registry, &version, &options)?
    } else {
        release::plan(&store, &settings, &version)?
    };

    if !cli.global.json {
        print::out(&format!("gatehouse release {}", plan.version));
        print::out(&format!("  store     {}", plan.store));
        print::out(&format!(
            "  registry  {} ({})",
            plan.registry, registry.digest
        ));
        print::out(&format!("  location  {}", store.locate(&plan.location)));
        print::out("\nplan");
        for (i, s) in plan.stages.iter().enumerate() {
            print::out(&format!(
                "  {}. {:<9} {:<8} {}",
                i + 1,
                s.stage.as_str(),
                if s.stage.available() {
                    s.action.split(' ').next().unwrap_or("run")
                } else {
                    "n/a"
                },
                s.what
            ));
            if !s.reason.is_empty() {
                print::out(&format!("               {}: {}", s.action, s.reason));
            }
        }
        let missing: Vec<&str> = Stage::ALL
            .iter()
            .filter(|s| !s.available())
            .map(|s| s.as_str())
            .collect();
        if !missing.is_empty() {
            print::out(&format!(
                "  (n/a: not available in gatehouse {}: {})",
                env!("CARGO_PKG_VERSION"),
                missing.join(", ")
            ));
        }
    }
    if args.dry_run {
        if cli.global.json {
            print::json(&plan)?;
        } else {
            print::out("\ndry run: nothing was written.");
        }
        return Ok(Code::Ok);
    }

    let outcome = with_progress(cli, |progress| {
        release::run(&store, &settings, &registry, &version, &options, progress)
    })?;
    let c = &outcome.coverage;
    if cli.global.json {
        print::json(&serde_json::json!({
            "plan": outcome.plan,
            "stages": [
                {"stage": "coverage", "verdict": c.verdict},
                {"stage": "build", "verdict": outcome.build.as_ref().map(|b| b.report.verdict)},
                {"stage": "gates", "gates": outcome.gates.as_ref().map(|g| &g.summaries)},
                {"stage": "consume", "verdict": outcome.consume.as_ref().map(|c| c.report.verdict)},
                {"stage": "qa", "gate": outcome.qa.as_ref().map(|q| &q.gate),
                 "review_types_without_samples": outcome.qa.as_ref().map(|q| &q.review_types_without_samples)},
            ],
            "release_digest": outcome.release_digest,
            "stage_log": outcome.stage_log,
            "written": outcome.written,
            "published": outcome.published.as_ref().map(|p| &p.marker),
        }))?;
    } else {
        print::out(&format!(
            "\ncoverage  {}: {} objects, {} mapped, {} unmapped; families: {}",
            c.verdict.as_str(),
            c.totals.objects,
            c.totals.mapped_objects,
            c.unmapped.objects,
            c.families
                .iter()
                .map(|f| format!("{} {:?}", f.family, f.status).to_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for f in c
            .findings
            .iter()
            .filter(|f| f.severity >= gatehouse_core::report::Severity::Warning)
        {
            print::out(&format!("          {} {}: {}", f.code, f.name, f.message));
        }
        let skipped = |stage: Stage| {
            outcome
                .stage_log
                .iter()
                .find(|l| l.stage == stage)
                .and_then(|l| l.skipped.as_ref().map(|why| (l.verdict, why)))
        };
        match (&outcome.build, skipped(Stage::Build)) {
            (Some(b), _) => {
                super::build::summary(&b.report);
                print::out(&format!("          release digest {}", b.release_digest));
            }
            (None, Some((verdict, why))) => {
                print::out(&format!("build     {}: skipped, {why}", verdict.as_str()));
                if let Some(d) = &outcome.release_digest {
                    print::out(&format!("          release digest {d}"));
                }
            }
            (None, None) => {
                print::out("build     not run: coverage failed (--no-fail-fast runs it anyway)")
            }
        }
        match (&outcome.gates, skipped(Stage::Gates)) {
            (Some(g), _) => super::gates::summary(g),
            (None, Some((verdict, why))) => {
                print::out(&format!("gates     {}: skipped, {why}", verdict.as_str()))
            }
            (None, None) if outcome.release_digest.is_some() => {
                print::out("gates     not run: build failed (--no-fail-fast runs them anyway)")
            }
            (None, None) => {}
        }
        if let Some(q) = &outcome.qa {
            qa_summary(q);
        }
        match (&outcome.consume, skipped(Stage::Consume)) {
            (Some(c), _) => super::consume::summary(&c.report),
            (None, Some((verdict, why))) => {
                print::out(&format!("consume   {}: skipped, {why}", verdict.as_str()))
            }
            (None, None) => {}
        }
        if let Some(p) = &outcome.published {
            print::out(&format!(
                "publish   pass: {} evidence files, marker {}{}",
                p.marker.evidence.len(),
                store.locate(&p.marker_key),
                match &p.marker.unenforced_store_override {
                    Some(r) => format!(" (store override recorded: {r})"),
                    None => String::new(),
                }
            ));
        }
        print::out(&format!(
            "\n{} artefacts written under {}",
            outcome.written.len(),
            store.locate(&outcome.plan.location)
        ));
    }
    let gates_passed = outcome.qa.is_some()
        && outcome
            .stage_log
            .iter()
            .any(|l| l.stage == Stage::Gates && l.verdict != gatehouse_core::report::Verdict::Fail);
    if !outcome.passed {
        let qa_passed = outcome.qa.as_ref().is_some_and(release::QaStage::passed);
        if gates_passed
            && !qa_passed
            && let Some(q) = &outcome.qa
        {
            print::note(&awaiting(q, &version));
        } else {
            print::note("release blocked: a stage failed (see above); nothing can be published");
        }
        return Ok(Code::Blocked);
    }
    print::note(&format!(
        "release {version} is published ({}): every stage passed; it can never be overwritten",
        outcome.release_digest.as_deref().unwrap_or("")
    ));
    Ok(Code::Ok)
}

fn qa_summary(q: &release::QaStage) {
    if let Some(d) = &q.drawn {
        print::out(&format!(
            "qa        drew {} review sample(s) from {} family × split groups (seed {})",
            d.samples.len(),
            d.groups.len(),
            d.rule.seed
        ));
    }
    match &q.gate {
        QaGate::Awaiting {
            samples,
            reviewers_invited,
            review_files,
            ..
        } => print::out(&format!(
            "qa        awaiting signoff: {samples} sample(s), {reviewers_invited} reviewer(s) invited, {review_files} review file(s) in"
        )),
        QaGate::NotApproved { reasons, .. } => {
            print::out("qa        fail: not approved");
            for r in reasons {
                print::out(&format!("          {r}"));
            }
        }
        QaGate::Approved { reviewers, .. } => print::out(&format!(
            "qa        pass: signed off by {reviewers} reviewer(s) for this exact manifest"
        )),
    }
    if !q.review_types_without_samples.is_empty() {
        print::out(&format!(
            "qa        fail: no sampled record needs {} review (map it to a family in the registry's `review`)",
            q.review_types_without_samples
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// What to do next when the release waits for people.
fn awaiting(q: &release::QaStage, version: &str) -> String {
    match &q.gate {
        QaGate::Awaiting { .. } => format!(
            "release {version} awaits human QA (exit 1). Next:\n  \
             1. gatehouse qa invite --release-version {version} --name \"…\" --role clinician-foundation (and clinician-edge, bias-cultural, privacy-spot-check)\n  \
             2. gatehouse qa serve --release-version {version}   (reviewers open their links; or `gatehouse qa import FILE`)\n  \
             3. gatehouse qa signoff --release-version {version}\n  \
             4. gatehouse release --release-version {version}    (continues once the signoff approves this exact manifest)"
        ),
        _ => format!(
            "release {version} is blocked by human QA (exit 1): see the reasons above; \
             `gatehouse qa signoff --release-version {version}` recomputes the decision after new reviews, \
             and flagged records leave the next build"
        ),
    }
}
