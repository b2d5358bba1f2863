//! The one loop over the stage table, for a run and for a dry run.
//!
//! For each stage, in order: may it run, given the stages before it ([`After`]), with
//! `--no-fail-fast`? If it resumes, are its input digests and outputs those of its stamp
//! (`resume.rs`)? A run then skips it or runs its step (removing its stamp before, writing
//! it after), timing it and telling the audit log; a dry run records the same decision in
//! the plan and stops before the step, so it writes nothing. A stage a dry run cannot
//! decide yet (it waits on a stage that would run) says when it will run instead.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use gatehouse_text::pii::Detector;

use super::stages::{self, After, Resume, StageDef};
use super::{Plan, PlannedStage, QaStage, ReleaseError, RunOptions, Stage, StageLog};
use crate::audit::{Action, AuditLog, Event};
use crate::config::Settings;
use crate::coverage::CoverageReport;
use crate::registry::Registry;
use crate::report::Verdict;
use crate::resume::{self, Decision};
use crate::store::{Store, StoreError};

/// Whether the loop runs the stages or only says what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Run or skip each stage, writing its outputs and stamps.
    Run,
    /// Decide each stage and stop before its step; write nothing.
    DryRun,
}

/// Input name → digest, as a resume stamp records them.
pub(super) type Inputs = BTreeMap<String, String>;

/// What a stage's step produced.
pub(super) struct Ran {
    pub verdict: Verdict,
    /// Keys written, in order.
    pub written: Vec<String>,
}

/// What the run reads, and what its stages leave for the ones after them.
pub(super) struct Ctx<'a> {
    pub store: &'a Store,
    pub settings: &'a Settings,
    pub registry: &'a Registry,
    pub options: &'a RunOptions<'a>,
    pub version: &'a str,
    /// The release folder.
    pub location: &'a str,
    /// The run's audit log; `None` in a dry run.
    pub audit: Option<&'a Arc<AuditLog>>,
    pub progress: &'a mut dyn FnMut(u64),
    /// One detector for the build and the gates: the gate's scan is the build's fixpoint.
    detector: OnceCell<Detector>,
    /// When the current stage started.
    clock: std::time::Instant,
    pub left: Left,
}

/// What the stages left: their outcomes, the release digest, the keys written.
#[derive(Default)]
pub(super) struct Left {
    pub coverage: Option<CoverageReport>,
    /// The coverage report's bytes (an input of the build).
    pub coverage_json: Option<Vec<u8>>,
    /// Built, or named by the build's stamp when it resumed.
    pub release_digest: Option<String>,
    pub build: Option<crate::build::BuildOutcome>,
    pub gates: Option<crate::gates::GatesOutcome>,
    pub qa: Option<QaStage>,
    pub consume: Option<crate::consume::ConsumeOutcome>,
    pub published: Option<crate::publish::Published>,
    /// Each stage that ran or was skipped, with its time.
    pub stage_log: Vec<StageLog>,
    pub written: Vec<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        store: &'a Store,
        settings: &'a Settings,
        registry: &'a Registry,
        plan: &'a Plan,
        options: &'a RunOptions<'a>,
        audit: Option<&'a Arc<AuditLog>>,
        progress: &'a mut dyn FnMut(u64),
    ) -> Self {
        Self {
            store,
            settings,
            registry,
            options,
            version: &plan.version,
            location: &plan.location,
            audit,
            progress,
            detector: OnceCell::new(),
            clock: std::time::Instant::now(),
            left: Left::default(),
        }
    }

    pub fn detector(&self) -> &Detector {
        self.detector
            .get_or_init(|| self.settings.privacy.detector())
    }

    pub fn into_left(self) -> Left {
        self.left
    }

    /// Starts a stage's lap and tells the audit log (with why it runs, when it resumes).
    fn lap_start(&mut self, stage: Stage, reason: &str) {
        self.clock = std::time::Instant::now();
        if let Some(audit) = self.audit {
            audit.stage_start(stage.as_str(), reason);
        }
    }

    /// Ends a stage's lap: the audit log's `stage_end` (or `stage_skip`, with why), flushed,
    /// and the stage log's line.
    fn lap_end(
        &mut self,
        stage: Stage,
        verdict: Verdict,
        skipped: Option<String>,
    ) -> Result<(), StoreError> {
        let seconds = (self.clock.elapsed().as_secs_f64() * 1e3).round() / 1e3;
        if let Some(audit) = self.audit {
            let action = if skipped.is_some() {
                Action::StageSkip
            } else {
                Action::StageEnd
            };
            audit.record(
                action,
                Event::detail(serde_json::json!({
                    "stage": stage.as_str(), "verdict": verdict, "seconds": seconds, "reason": skipped,
                })),
            );
            audit.flush()?;
        }
        self.left.stage_log.push(StageLog {
            stage,
            verdict,
            seconds,
            skipped,
        });
        Ok(())
    }
}

/// What the loop knows of a stage it has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    /// Not run, and why (an earlier stage failed).
    NotRun(String),
    /// Ran, or resumed, with whether it passed (warnings allowed).
    Done { passed: bool },
    /// A dry run: it would run, and what it would find is not known.
    Pending,
}

/// Whether a stage goes ahead, given the ones before it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Go {
    Yes,
    /// Only if a stage a dry run cannot evaluate passes; the plan's action says so.
    If(&'static str),
    No(String),
}

/// What the loop did.
pub(super) struct Walk {
    /// Each stage's action and reason, as a dry run prints them (in a run, only a stage
    /// that did not run has a reason).
    pub planned: Vec<PlannedStage>,
    /// Whether every stage ran (or resumed) and passed.
    pub passed: bool,
}

/// Walks the stage table in order: see the module docs.
pub(super) fn walk(ctx: &mut Ctx<'_>, mode: Mode) -> Result<Walk, ReleaseError> {
    let mut known: Vec<(Stage, Known)> = Vec::new();
    let mut planned = Vec::new();
    for def in &stages::TABLE {
        let go = condition(def.after, &known, ctx.options.no_fail_fast);
        let (k, action, reason) = match (go, mode) {
            (Go::No(why), _) => (Known::NotRun(why.clone()), "not run", why),
            (go, Mode::DryRun) => decide_dry(ctx, def, &go)?,
            (_, Mode::Run) => (run_stage(ctx, def)?, "run", String::new()),
        };
        planned.push(def.planned(action, reason));
        known.push((def.stage, k));
    }
    Ok(Walk {
        planned,
        passed: known
            .iter()
            .all(|(_, k)| *k == Known::Done { passed: true }),
    })
}

/// Why a stage after `stage` does not run, when `stage` stops the run.
fn stopped_by((stage, k): &(Stage, Known)) -> Option<String> {
    match k {
        Known::NotRun(why) => Some(why.clone()),
        Known::Done { passed: false } => Some(format!("{} fails", stage.as_str())),
        _ => None,
    }
}

/// Whether a stage that runs `after` goes ahead, given what is known of the stages before.
fn condition(after: After, known: &[(Stage, Known)], no_fail_fast: bool) -> Go {
    let previous = known.last();
    match after {
        After::Start => Go::Yes,
        After::Previous => match previous {
            Some((_, Known::NotRun(why))) => Go::No(why.clone()),
            Some(p @ (_, Known::Done { passed: false })) if !no_fail_fast => {
                Go::No(stopped_by(p).unwrap_or_default())
            }
            _ => Go::Yes,
        },
        After::PreviousPassed(action) => match previous {
            Some(p) => match stopped_by(p) {
                Some(why) => Go::No(why),
                None if p.1 == Known::Pending => Go::If(action),
                None => Go::Yes,
            },
            None => Go::Yes,
        },
        After::AllPassed(action) => {
            if let Some(why) = known.iter().find_map(stopped_by) {
                Go::No(why)
            } else if known.iter().any(|(_, k)| *k == Known::Pending) {
                Go::If(action)
            } else {
                Go::Yes
            }
        }
    }
}

/// `--no-resume`, else the stamp's decision.
fn decide(ctx: &Ctx<'_>, stage: Stage, inputs: &Inputs) -> Result<Decision, StoreError> {
    if ctx.options.no_resume {
        return Ok(Decision::Run {
            reason: "--no-resume".into(),
        });
    }
    resume::decide(ctx.store, ctx.version, stage.as_str(), inputs)
}

/// A dry run's decision for a stage that may go ahead: what is then known of the stage, the
/// plan's action and why. Writes nothing: the step runs only for a stage the table marks
/// `evaluated` (coverage), and in [`Mode::DryRun`].
fn decide_dry(
    ctx: &mut Ctx<'_>,
    def: &StageDef,
    go: &Go,
) -> Result<(Known, &'static str, String), ReleaseError> {
    let action = match go {
        Go::If(action) => action,
        _ => "run",
    };
    match def.resume {
        Resume::Never {
            why,
            evaluated: true,
        } => {
            let ran = (def.run)(ctx, Mode::DryRun)?;
            let passed = ran.verdict != Verdict::Fail;
            let reason = format!("{why} (it would be {})", ran.verdict.as_str());
            Ok((Known::Done { passed }, action, reason))
        }
        Resume::Never { why, .. } => Ok((Known::Pending, action, why.to_string())),
        Resume::Inputs { digests, pending } => {
            let Some(inputs) = digests(ctx)? else {
                return Ok((Known::Pending, action, pending.to_string()));
            };
            match decide(ctx, def.stage, &inputs)? {
                Decision::Skip { stamp } => {
                    let reason = stamp.skip_reason();
                    ctx.left.release_digest.get_or_insert(stamp.release_digest);
                    Ok((
                        Known::Done {
                            passed: stamp.passed,
                        },
                        "skip",
                        reason,
                    ))
                }
                Decision::Run { reason } => Ok((Known::Pending, action, reason)),
            }
        }
    }
}

/// Runs a stage that may go ahead, or skips it when it resumes: its lap, its stamp, its
/// outputs added to the run's.
fn run_stage(ctx: &mut Ctx<'_>, def: &StageDef) -> Result<Known, ReleaseError> {
    let Resume::Inputs { digests, .. } = def.resume else {
        ctx.lap_start(def.stage, "");
        let ran = step(ctx, def)?;
        ctx.lap_end(def.stage, ran.verdict, None)?;
        return Ok(Known::Done {
            passed: ran.verdict != Verdict::Fail,
        });
    };
    // Read before the stage starts: its start in the audit log says why it runs.
    let inputs = digests(ctx)?.ok_or(ReleaseError::Internal(
        "a resumable stage ran before the stage it depends on",
    ))?;
    match decide(ctx, def.stage, &inputs)? {
        Decision::Skip { stamp } => {
            ctx.lap_start(def.stage, "");
            ctx.lap_end(def.stage, stamp.verdict, Some(stamp.skip_reason()))?;
            ctx.left.release_digest.get_or_insert(stamp.release_digest);
            Ok(Known::Done {
                passed: stamp.passed,
            })
        }
        Decision::Run { reason } => {
            ctx.lap_start(def.stage, &reason);
            resume::invalidate(ctx.store, ctx.version, def.stage.as_str())?;
            let ran = step(ctx, def)?;
            let digest = ctx
                .left
                .release_digest
                .as_deref()
                .ok_or(ReleaseError::Internal(
                    "a resumable stage ran without a release digest",
                ))?;
            let stamp = resume::record(
                ctx.store,
                ctx.version,
                def.stage.as_str(),
                inputs,
                &ran.written,
                ran.verdict,
                digest,
            )?;
            ctx.lap_end(def.stage, ran.verdict, None)?;
            Ok(Known::Done {
                passed: stamp.passed,
            })
        }
    }
}

/// Runs the stage's step and adds what it wrote to the run's outputs, which must be files
/// the table says it writes.
fn step(ctx: &mut Ctx<'_>, def: &StageDef) -> Result<Ran, ReleaseError> {
    let ran = (def.run)(ctx, Mode::Run)?;
    debug_assert!(
        ran.written
            .iter()
            .all(|key| def.writes_key(ctx.location, key)),
        "the {} stage wrote outside the files the stage table declares: {:?}",
        def.stage.as_str(),
        ran.written
    );
    ctx.left.written.extend(ran.written.iter().cloned());
    Ok(ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(stage: Stage, passed: bool) -> (Stage, Known) {
        (stage, Known::Done { passed })
    }

    #[test]
    fn a_failure_stops_what_follows_unless_no_fail_fast() {
        let known = [done(Stage::Coverage, false)];
        assert_eq!(
            condition(After::Previous, &known, false),
            Go::No("coverage fails".into())
        );
        assert_eq!(condition(After::Previous, &known, true), Go::Yes);
        // What needs an approval never runs without it, --no-fail-fast or not.
        let known = [done(Stage::Coverage, true), done(Stage::Qa, false)];
        assert_eq!(
            condition(After::PreviousPassed("run if"), &known, true),
            Go::No("qa fails".into())
        );
        let known = [
            done(Stage::Coverage, false),
            (Stage::Build, Known::NotRun("coverage fails".into())),
        ];
        assert_eq!(
            condition(After::Previous, &known, false),
            Go::No("coverage fails".into())
        );
        assert_eq!(
            condition(After::AllPassed("run if"), &known, true),
            Go::No("coverage fails".into())
        );
    }

    #[test]
    fn a_dry_run_says_when_a_stage_waits_on_one_it_cannot_evaluate() {
        let known = [done(Stage::Coverage, true), (Stage::Build, Known::Pending)];
        assert_eq!(condition(After::Previous, &known, false), Go::Yes);
        assert_eq!(
            condition(After::PreviousPassed("run if QA approves"), &known, false),
            Go::If("run if QA approves")
        );
        assert_eq!(
            condition(After::AllPassed("run if every stage passes"), &known, false),
            Go::If("run if every stage passes")
        );
        let all = [done(Stage::Coverage, true), done(Stage::Build, true)];
        assert_eq!(condition(After::AllPassed("x"), &all, false), Go::Yes);
    }
}
