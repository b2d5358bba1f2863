//! The stage table: each stage of a release declared once (name and description, when it
//! runs after the ones before it, what it resumes on, what it writes) with its step.
//!
//! A step runs the stage's module (`coverage`, `build`, `gates`, `qa`, `consume`,
//! `publish`) with the run's settings and what the earlier stages left, and returns its
//! verdict and the keys it wrote. The loop in `run.rs` decides whether a step runs at all.

use serde::Serialize;

use super::inputs;
use super::run::{Ctx, Inputs, Mode, Ran};
use super::{PlannedStage, QaStage, ReleaseError, Stage};
use crate::audit::{Action, AuditLog, Event};
use crate::config::Settings;
use crate::layout::{self, File};
use crate::registry::Registry;
use crate::report::Verdict;
use crate::store::{Store, StoreError};

/// One stage of a release.
pub(super) struct StageDef {
    pub stage: Stage,
    /// What it does, as the plan says it.
    pub what: &'static str,
    /// When it runs, given the stages before it.
    pub after: After,
    /// Whether it is skipped when nothing it depends on changed.
    pub resume: Resume,
    /// The files it writes into the release folder (a folder ends in `/`); a debug build
    /// checks every key a step reports against them.
    pub writes: &'static [File],
    /// Its step.
    pub run: fn(&mut Ctx<'_>, Mode) -> Result<Ran, ReleaseError>,
}

/// When a stage runs, given the stages before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    /// First: always.
    Start,
    /// When the stage before it ran (or resumed) and passed; after a failure, only with
    /// `--no-fail-fast`.
    Previous,
    /// Only when the stage before it passed, `--no-fail-fast` or not: it reads what that
    /// stage approved. A dry run, which cannot know, says the action given.
    PreviousPassed(&'static str),
    /// Only when every stage before it passed; a dry run says the action given.
    AllPassed(&'static str),
}

/// Whether a stage resumes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Resume {
    /// It runs every time, for the reason given. `evaluated`: a dry run performs its step,
    /// which must then write nothing, because what follows depends on it (coverage: its
    /// report is an input of the build).
    Never { why: &'static str, evaluated: bool },
    /// It is skipped when its stamp has these input digests and its outputs are unchanged
    /// (`resume.rs`). `digests` is `None` while what they depend on is unknown (a dry run
    /// before a build that would run), and the plan then says `pending`.
    Inputs {
        digests: fn(&Ctx<'_>) -> Result<Option<Inputs>, StoreError>,
        pending: &'static str,
    },
}

/// The coverage report and its rendering (also artefacts of the build's manifest).
const COVERAGE_WRITES: &[File] = &[layout::COVERAGE_REPORT, layout::COVERAGE_REPORT_MD];

/// The packets and templates the QA stage draws (when this digest has none).
const QA_WRITES: &[File] = &[
    layout::QA_SAMPLES,
    layout::REVIEW_TEMPLATE,
    layout::REVIEW_TEMPLATE_CSV,
];

/// The stages, in the order they run.
pub(super) static TABLE: [StageDef; 6] = [
    StageDef {
        stage: Stage::Coverage,
        what: "list the store and map keys to datasets and families",
        after: After::Start,
        resume: Resume::Never {
            why: "always: the listing is its input",
            evaluated: true,
        },
        writes: COVERAGE_WRITES,
        run: coverage,
    },
    StageDef {
        stage: Stage::Build,
        what: "compile the ChatML export, splits, shards and manifest",
        after: After::Previous,
        resume: Resume::Inputs {
            digests: inputs::build,
            pending: "after coverage",
        },
        writes: &[
            layout::SHARDS,
            layout::COMPILED_EXPORT,
            layout::QUARANTINE,
            layout::DEDUP_REMOVED,
            layout::BUILD_REPORT,
            layout::ROUTING_CONFIG,
            layout::MANIFEST,
        ],
        run: build,
    },
    StageDef {
        stage: Stage::Gates,
        what: "privacy, provenance, dedup, leakage and distribution gates",
        after: After::Previous,
        resume: Resume::Inputs {
            digests: inputs::gates,
            pending: "after the build: they resume only if the rebuilt manifest is \
                      byte-identical and nothing else changed",
        },
        writes: &[
            layout::PII_SPOT_CHECK_SAMPLE,
            layout::PII_REPORT,
            layout::PROVENANCE_REPORT,
            layout::DEDUP_REPORT,
            layout::LEAKAGE_REPORT,
            layout::DISTRIBUTION_REPORT,
            layout::REPORT_HTML,
        ],
        run: gates,
    },
    StageDef {
        stage: Stage::Qa,
        what: "human review packets and signoff bound to the release digest",
        after: After::Previous,
        resume: Resume::Never {
            why: "always: reviewers' files are read afresh",
            evaluated: false,
        },
        writes: QA_WRITES,
        run: qa,
    },
    StageDef {
        stage: Stage::Consume,
        what: "load the release the way training will",
        after: After::PreviousPassed("run if QA approves"),
        resume: Resume::Inputs {
            digests: inputs::consume,
            pending: "after the build and the signoff",
        },
        writes: &[layout::CONSUMPTION_TEST],
        run: consume,
    },
    StageDef {
        stage: Stage::Publish,
        what: "write-once publication with release notes and dataset card",
        after: After::AllPassed("run if every stage passes"),
        resume: Resume::Never {
            why: "write-once, after the evidence",
            evaluated: false,
        },
        writes: &[
            layout::COMBINED_GATE_REPORT,
            layout::RELEASE_NOTES,
            layout::RELEASE_NOTES_MD,
            layout::RELEASE_SUMMARY,
            layout::DATASET_CARD,
            layout::CROISSANT,
            layout::PUBLISHED_MARKER,
        ],
        run: publish,
    },
];

/// The table's entry for `stage`.
pub(super) fn def(stage: Stage) -> &'static StageDef {
    // Every stage has one entry (tested below); the first one is never reached otherwise.
    TABLE.iter().find(|d| d.stage == stage).unwrap_or(&TABLE[0])
}

impl StageDef {
    /// The plan's line for this stage.
    pub fn planned(&self, action: &str, reason: String) -> PlannedStage {
        PlannedStage {
            stage: self.stage,
            what: self.what,
            action: action.to_string(),
            reason,
        }
    }

    /// Whether `key` is one of the files this stage writes into the release at `location`.
    pub fn writes_key(&self, location: &str, key: &str) -> bool {
        self.writes.iter().any(|f| {
            let at = f.at(location);
            if at.ends_with('/') {
                key.starts_with(&at)
            } else {
                key == at
            }
        })
    }
}

fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, ReleaseError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| ReleaseError::Serialise(what, e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Coverage: the report and its Markdown rendering. A dry run computes the report (the
/// build's input) and writes nothing.
fn coverage(ctx: &mut Ctx<'_>, mode: Mode) -> Result<Ran, ReleaseError> {
    let s = ctx.settings;
    let report = crate::coverage::run(
        ctx.store,
        ctx.registry,
        &s.coverage,
        &s.waivers,
        s.as_of,
        ctx.progress,
    )?;
    let json = to_json("coverage", &report)?;
    let mut written = Vec::new();
    if mode == Mode::Run {
        let [json_file, md_file] = [COVERAGE_WRITES[0], COVERAGE_WRITES[1]];
        let json_key = json_file.at(ctx.location);
        ctx.store.put(&json_key, json.clone())?;
        written.push(json_key);
        let md_key = md_file.at(ctx.location);
        let md = crate::coverage::render_markdown(&report).into_bytes();
        ctx.store.put(&md_key, md)?;
        written.push(md_key);
    }
    let verdict = report.verdict;
    ctx.left.coverage = Some(report);
    ctx.left.coverage_json = Some(json);
    Ok(Ran { verdict, written })
}

/// What the build is told of the release it builds.
pub(super) fn build_context<'a>(
    settings: &Settings,
    version: &'a str,
    location: &'a str,
    artefacts: Vec<String>,
    detector: &'a gatehouse_text::pii::Detector,
) -> crate::build::BuildContext<'a> {
    crate::build::BuildContext {
        release_version: version,
        location,
        release_date: super::release_date(settings, version),
        config_digest: settings.digest(),
        artefacts,
        detector,
    }
}

/// Build: the export, shards and manifest; the coverage report is one of its artefacts.
fn build(ctx: &mut Ctx<'_>, _: Mode) -> Result<Ran, ReleaseError> {
    let artefacts = COVERAGE_WRITES.iter().map(|f| f.at(ctx.location)).collect();
    let build_ctx = build_context(
        ctx.settings,
        ctx.version,
        ctx.location,
        artefacts,
        ctx.detector(),
    );
    let outcome = crate::build::run(
        ctx.store,
        ctx.registry,
        &ctx.settings.build,
        &build_ctx,
        &mut |_| {},
    )?;
    let ran = Ran {
        verdict: outcome.report.verdict,
        written: outcome.written.clone(),
    };
    ctx.left.release_digest = Some(outcome.release_digest.clone());
    ctx.left.build = Some(outcome);
    Ok(ran)
}

/// Gates: every report under `gates/` and the HTML page; each waiver used is audited.
fn gates(ctx: &mut Ctx<'_>, _: Mode) -> Result<Ran, ReleaseError> {
    let outcome = crate::gates::run(
        ctx.store,
        ctx.registry,
        ctx.location,
        ctx.settings.gate_policy(ctx.detector()),
    )?;
    if let Some(audit) = ctx.audit {
        audit_waivers(audit, &outcome);
    }
    let verdict = if outcome.passed {
        outcome
            .summaries
            .iter()
            .map(|g| g.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    } else {
        Verdict::Fail
    };
    let ran = Ran {
        verdict,
        written: outcome.written.clone(),
    };
    ctx.left.gates = Some(outcome);
    Ok(ran)
}

/// Records every waiver the gates used in the audit log, gate by gate.
fn audit_waivers(a: &AuditLog, gates: &crate::gates::GatesOutcome) {
    for g in &gates.waivers {
        for w in &g.waivers {
            let Ok(w) = serde_json::to_value(w) else {
                continue;
            };
            a.record(
                Action::Waiver,
                Event::detail(serde_json::json!({ "gate": g.gate, "waiver": w })),
            );
        }
    }
}

/// QA: the packets when this digest has none, then the QA gate; the signoff is audited.
fn qa(ctx: &mut Ctx<'_>, _: Mode) -> Result<Ran, ReleaseError> {
    let stage = qa_stage(ctx.store, ctx.registry, ctx.settings, ctx.location)?;
    let written = if stage.drawn.is_some() {
        QA_WRITES.iter().map(|f| f.at(ctx.location)).collect()
    } else {
        Vec::new()
    };
    if let Some(audit) = ctx.audit {
        audit.record(
            Action::Signoff,
            Event::detail(serde_json::to_value(&stage.gate).unwrap_or_default()),
        );
    }
    let verdict = if stage.passed() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    ctx.left.qa = Some(stage);
    Ok(Ran { verdict, written })
}

/// Draws the review packets unless this digest already has them, then asks the QA gate.
/// Packets are a pure function of the manifest and `[qa.sample]`, so redrawing after an
/// identical rebuild would change nothing; they are drawn only when missing or stale.
fn qa_stage(
    store: &Store,
    registry: &Registry,
    settings: &Settings,
    location: &str,
) -> Result<QaStage, ReleaseError> {
    let max_line = settings.build.limits.max_export_line();
    let drawn = match crate::qa::packets(store, location) {
        Ok(_) => None,
        Err(crate::qa::QaError::NoPackets { .. } | crate::qa::QaError::StalePackets { .. }) => {
            Some(crate::qa::sample(store, registry, location, &settings.qa, max_line)?.samples)
        }
        Err(e) => return Err(e.into()),
    };
    let review_types_without_samples = match &drawn {
        Some(d) => d.review_types_without_samples.clone(),
        None => crate::qa::review_types_without_samples(store, location, &settings.qa)?,
    };
    Ok(QaStage {
        drawn,
        review_types_without_samples,
        gate: crate::qa::gate(store, registry, location, &settings.qa)?,
    })
}

/// Consume: the draft read the way training will, bound by its signoff.
fn consume(ctx: &mut Ctx<'_>, _: Mode) -> Result<Ran, ReleaseError> {
    let out = crate::consume::run(
        ctx.store,
        ctx.location,
        &ctx.settings.consume,
        &ctx.settings.build.tokenizer,
        true,
    )?;
    let ran = Ran {
        verdict: out.report.verdict,
        written: out.written.clone(),
    };
    ctx.left.consume = Some(out);
    Ok(ran)
}

/// Publish: the evidence, then the create-only marker. It runs only when every stage
/// passed ([`After::AllPassed`]).
fn publish(ctx: &mut Ctx<'_>, _: Mode) -> Result<Ran, ReleaseError> {
    let left = &ctx.left;
    let coverage = left
        .coverage
        .as_ref()
        .ok_or(ReleaseError::Internal("publish before coverage"))?;
    let candidate = crate::publish::Candidate {
        location: ctx.location,
        version: ctx.version,
        release_digest: left.release_digest.as_deref(),
        coverage,
        qa: left.qa.as_ref().map(|q| (&q.gate, q.passed())),
        stages: &left.stage_log,
        passed: true,
        audit: ctx.audit.map(|a| &**a),
    };
    let published = crate::publish::publish(
        ctx.store,
        ctx.registry,
        &candidate,
        &ctx.settings.digest(),
        ctx.options.unenforced_store_reason,
    )?;
    let ran = Ran {
        verdict: Verdict::Pass,
        written: published.written.clone(),
    };
    ctx.left.published = Some(published);
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_stage_once_in_order() {
        let order: Vec<Stage> = TABLE.iter().map(|d| d.stage).collect();
        assert_eq!(order, Stage::ALL);
        for stage in Stage::ALL {
            assert_eq!(def(stage).stage, stage);
        }
        assert_eq!(TABLE[0].after, After::Start);
    }

    #[test]
    fn the_gates_stage_writes_every_gate_report() {
        for f in layout::GATE_REPORTS {
            assert!(def(Stage::Gates).writes.contains(&f), "{}", f.name());
        }
    }

    #[test]
    fn a_stage_writes_only_its_declared_files() {
        let loc = "exports/releases/v1/";
        let build = def(Stage::Build);
        assert!(build.writes_key(loc, "exports/releases/v1/shards/train/part-00000.jsonl"));
        assert!(build.writes_key(loc, "exports/releases/v1/manifest.json"));
        assert!(!build.writes_key(loc, "exports/releases/v1/manifest.json.bak"));
        assert!(!def(Stage::Gates).writes_key(loc, "exports/releases/v1/manifest.json"));
        // No two stages write the same file.
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                for f in a.writes {
                    assert!(!b.writes.contains(f), "{}", f.name());
                }
            }
        }
    }
}
