//! `gatehouse release`: the orchestrator. It resolves the release version and location,
//! prints the plan, and runs the stages, writing their reports into the release's draft
//! folder `{exports}/releases/{version}/`.
//!
//! Each stage is declared once, in the stage table (`stages.rs`): its name and description,
//! when it may run after the stages before it, whether it resumes and on which input digests
//! (`inputs.rs`), what it writes, and its step. One loop (`run.rs`) walks the table in order
//! for a run and for a dry run alike: a dry run takes the same decisions (run, skip, not run)
//! and stops before each step, writing nothing.
//!
//! Stages not built yet would be listed in the plan as unavailable, never faked: a release
//! run by such a version could never be published.

use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::audit::{Action, AuditError, AuditLog, Event};
use crate::build::Prepared;
use crate::build::dedup::Verdicts;
use crate::build::dedup::shuffle::{BandRow, JudgedPartition, ShuffleVerdicts};
use crate::config::Settings;
use crate::coverage::{CoverageError, CoverageReport};
use crate::layout;
use crate::registry::Registry;
use crate::report::Verdict;
use crate::store::{Store, StoreError, StoreObserver};

mod inputs;
mod run;
mod stages;

/// The file whose presence marks a published release (created with a create-only put).
pub const PUBLISHED_MARKER: &str = layout::PUBLISHED_MARKER.name();

/// Pipeline stages in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Coverage,
    Build,
    Gates,
    Qa,
    Consume,
    Publish,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Coverage,
        Stage::Build,
        Stage::Gates,
        Stage::Qa,
        Stage::Consume,
        Stage::Publish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Coverage => "coverage",
            Stage::Build => "build",
            Stage::Gates => "gates",
            Stage::Qa => "qa",
            Stage::Consume => "consume",
            Stage::Publish => "publish",
        }
    }

    /// What the stage does, as the plan says it (declared in the stage table).
    pub fn describe(self) -> &'static str {
        stages::def(self).what
    }

    /// Whether this version of gatehouse can run the stage.
    pub fn available(self) -> bool {
        matches!(
            self,
            Stage::Coverage
                | Stage::Build
                | Stage::Gates
                | Stage::Qa
                | Stage::Consume
                | Stage::Publish
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedStage {
    pub stage: Stage,
    pub what: &'static str,
    /// `run`, `skip`, `run if …` or `not run`.
    pub action: String,
    /// Why (filled in by a dry run).
    pub reason: String,
}

/// What `release` will do.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub version: String,
    /// Key prefix of the release, with trailing slash.
    pub location: String,
    pub store: String,
    pub registry: String,
    pub already_published: bool,
    pub stages: Vec<PlannedStage>,
}

#[derive(Debug, Error)]
pub enum ReleaseError {
    #[error("invalid release version {0:?}")]
    InvalidVersion(String),
    #[error(
        "release {version} is already published at {location}; a published version is never modified"
    )]
    AlreadyPublished { version: String, location: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Coverage(#[from] CoverageError),
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
    #[error(transparent)]
    Gates(#[from] crate::gates::GateError),
    #[error(transparent)]
    Qa(#[from] crate::qa::QaError),
    #[error(transparent)]
    Consume(#[from] crate::consume::ConsumeError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("invalid configuration: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error("cannot serialise the {0} report")]
    Serialise(&'static str, #[source] serde_json::Error),
    /// A broken invariant of the orchestrator (a bug, never bad data).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl ReleaseError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ReleaseError::InvalidVersion(_) => Some(
                "use v followed by letters, digits, `.`, `_` or `-`, e.g. v2026-11-25 or v2026-11-25.1"
                    .into(),
            ),
            ReleaseError::AlreadyPublished { .. } => {
                Some("choose a new version with --release-version".into())
            }
            ReleaseError::Store(e) => e.hint(),
            ReleaseError::Coverage(e) => e.hint(),
            ReleaseError::Build(e) => e.hint(),
            ReleaseError::Gates(e) => e.hint(),
            ReleaseError::Qa(e) => e.hint(),
            ReleaseError::Consume(e) => e.hint(),
            ReleaseError::Audit(e) => e.hint(),
            ReleaseError::InvalidConfig(_) => Some(
                "fix these settings in gatehouse.toml (`gatehouse doctor` shows where each \
                 setting came from); nothing was run"
                    .into(),
            ),
            ReleaseError::Publish(e) => e.hint(),
            ReleaseError::Serialise(..) | ReleaseError::Internal(_) => None,
        }
    }
}

/// How `run` behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Run every stage even after one fails (never publishes a failing release).
    pub no_fail_fast: bool,
    /// Publish on a store that ignores create-only writes, for this recorded reason.
    pub unenforced_store_reason: Option<&'a str>,
    /// Run every stage even when its inputs and outputs are unchanged.
    pub no_resume: bool,
}

/// What a release run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    pub coverage: CoverageReport,
    /// `None` when coverage failed and the run stopped there.
    pub build: Option<crate::build::BuildOutcome>,
    /// `None` when an earlier stage failed and the run stopped there.
    pub gates: Option<crate::gates::GatesOutcome>,
    /// `None` when an earlier stage failed and the run stopped there.
    pub qa: Option<QaStage>,
    /// The training consumption test of the draft, once QA approved it.
    pub consume: Option<crate::consume::ConsumeOutcome>,
    /// The sha256 of `manifest.json`, built or resumed; `None` when the build did not run.
    pub release_digest: Option<String>,
    /// Set when every stage passed and the release was published.
    pub published: Option<crate::publish::Published>,
    /// Each stage that ran: verdict and wall time.
    pub stage_log: Vec<StageLog>,
    /// Keys written, in order.
    pub written: Vec<String>,
    /// Whether every stage that ran passed (warnings allowed).
    pub passed: bool,
}

/// One stage of a run, for the release summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLog {
    pub stage: Stage,
    pub verdict: Verdict,
    pub seconds: f64,
    /// Set when the stage was skipped because nothing it depends on changed: why; the
    /// verdict is then the one it reached when it last ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The QA stage: packets drawn (when there were none for this digest) and the gate.
#[derive(Debug, Clone)]
pub struct QaStage {
    /// Set when this run drew the packets.
    pub drawn: Option<crate::qa::QaSamples>,
    /// Review types no sampled record covers (each must cover one).
    pub review_types_without_samples: Vec<crate::registry::ReviewType>,
    pub gate: crate::qa::QaGate,
}

impl QaStage {
    pub fn passed(&self) -> bool {
        self.review_types_without_samples.is_empty() && self.gate.passed()
    }
}

/// Every configuration problem at once, before a stage runs or a dry run says "run".
fn check_config(settings: &Settings, registry: &Registry) -> Result<(), ReleaseError> {
    let problems = settings.problems(registry);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ReleaseError::InvalidConfig(problems))
    }
}

/// Refuses to touch a published version (for commands that write into a release).
pub fn refuse_published(store: &Store, version: &str) -> Result<(), ReleaseError> {
    let location = location(store, version);
    if store.exists(&layout::PUBLISHED_MARKER.at(&location))? {
        return Err(ReleaseError::AlreadyPublished {
            version: version.to_string(),
            location: store.locate(&location),
        });
    }
    Ok(())
}

/// `vYYYY-MM-DD` for today (UTC).
pub fn default_version() -> String {
    format!("v{}", crate::waiver::today().format("%Y-%m-%d"))
}

/// Checks a version is safe to use as one key segment.
pub fn validate_version(version: &str) -> Result<(), ReleaseError> {
    let ok = version.len() <= 64
        && version.strip_prefix('v').is_some_and(|rest| {
            rest.starts_with(|c: char| c.is_ascii_alphanumeric())
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::InvalidVersion(version.to_string()))
    }
}

/// `{exports}/releases/{version}/`.
pub fn location(store: &Store, version: &str) -> String {
    layout::release_location(store.exports_prefix(), version)
}

/// The date written into artefacts: `SOURCE_DATE_EPOCH`, else the date a `vYYYY-MM-DD…`
/// version names, else none. Never the wall clock.
pub fn release_date(settings: &Settings, version: &str) -> Option<String> {
    settings
        .source_date
        .or_else(|| {
            version
                .get(1..11)
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        })
        .map(|d| d.to_string())
}

/// Builds the plan. Reads one listing page (to prove the store exists) and the published
/// marker; writes nothing.
pub fn plan(store: &Store, settings: &Settings, version: &str) -> Result<Plan, ReleaseError> {
    validate_version(version)?;
    store.probe()?;
    let location = location(store, version);
    let already_published = store.exists(&layout::PUBLISHED_MARKER.at(&location))?;
    let stages = stages::TABLE
        .iter()
        .map(|def| {
            let action = if def.stage.available() {
                "run"
            } else {
                "not available in this version of gatehouse"
            };
            def.planned(action, String::new())
        })
        .collect();
    Ok(Plan {
        version: version.to_string(),
        location,
        store: store.describe().to_string(),
        registry: settings.registry_path.display().to_string(),
        already_published,
        stages,
    })
}

/// The plan with what each stage would do and why: which stages resume and which input or
/// output changed for the others. The stages are walked by the loop that runs them, which
/// stops before each step (coverage alone is evaluated: its report is the build's input).
/// Reads the store (a listing, stamps, HEADs); writes nothing.
pub fn dry_run(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    version: &str,
    options: &RunOptions<'_>,
) -> Result<Plan, ReleaseError> {
    check_config(settings, registry)?;
    let mut plan = plan(store, settings, version)?;
    if plan.already_published {
        let why = "the version is published; a published version is never modified";
        for p in &mut plan.stages {
            p.action = "not run".into();
            p.reason = why.into();
        }
        return Ok(plan);
    }
    let mut quiet = |_| {};
    let mut ctx = run::Ctx::new(store, settings, registry, &plan, options, None, &mut quiet);
    let walk = run::walk(&mut ctx, run::Mode::DryRun)?;
    plan.stages = walk.planned;
    Ok(plan)
}

/// The plan of a run that will write into the draft folder: refused for a published version.
fn draft_plan(store: &Store, settings: &Settings, version: &str) -> Result<Plan, ReleaseError> {
    let plan = plan(store, settings, version)?;
    if plan.already_published {
        return Err(ReleaseError::AlreadyPublished {
            version: version.to_string(),
            location: store.locate(&plan.location),
        });
    }
    Ok(plan)
}

/// Runs only the build stage into the draft folder of `version`.
pub fn build_only(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    version: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<crate::build::BuildOutcome, ReleaseError> {
    let plan = draft_plan(store, settings, version)?;
    let detector = settings.privacy.detector();
    let ctx = stages::build_context(settings, version, &plan.location, Vec::new(), &detector);
    Ok(crate::build::run(
        store,
        registry,
        &settings.build,
        &ctx,
        progress,
    )?)
}

/// `gatehouse build` of one version cut into the steps a distributed executor runs in
/// different processes, over the store-backed executor ([`crate::build::fragments`]): the
/// driver [`prepare`](Self::prepare)s, workers [`map`](Self::map) objects into fragments in
/// the store; for near duplicates, workers turn fragments into [`band_rows`](Self::band_rows)
/// and, after a shuffle by band key, [`judge`](Self::judge) each partition's LSH buckets;
/// the driver [`finish`](Self::finish)es from the fragments and the judged partitions. The same inputs, settings and
/// context as [`build_only`], so the same draft, byte for byte. Each process builds one of
/// these and keeps it: the detector is built once, here.
pub struct BuildSteps {
    store: Store,
    settings: Settings,
    registry: Registry,
    detector: gatehouse_text::pii::Detector,
    version: String,
    /// The sources as a worker first listed them: one listing per process, not one per
    /// batch (the store is listed whole, fragments included).
    listed: std::sync::OnceLock<crate::build::Sources>,
    /// What [`BuildSteps::judge`] has read, kept for the next partition.
    judge_state: std::sync::Mutex<Option<crate::build::JudgeState>>,
}

impl std::fmt::Debug for BuildSteps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildSteps")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl BuildSteps {
    /// Fails on a version that is not a valid release version, before anything runs.
    pub fn new(
        store: Store,
        settings: Settings,
        registry: Registry,
        version: &str,
    ) -> Result<Self, ReleaseError> {
        validate_version(version)?;
        let detector = settings.privacy.detector();
        Ok(Self {
            store,
            settings,
            registry,
            detector,
            version: version.to_string(),
            listed: std::sync::OnceLock::new(),
            judge_state: std::sync::Mutex::new(None),
        })
    }

    /// The driver's first step: plans the build, clears the draft, and returns how many
    /// source objects there are (object `i` is the `i`-th in key order).
    pub fn prepare(&self) -> Result<usize, ReleaseError> {
        let plan = draft_plan(&self.store, &self.settings, &self.version)?;
        let ctx = self.context(&plan);
        let prepared = Prepared::new(&self.store, &self.registry, &self.settings.build, &ctx)?;
        Ok(prepared.keys().len())
    }

    /// A worker's step: maps the objects `indices` into their fragments in the store,
    /// reusing fragments already made for this build. Returns `(mapped, reused)`. The build
    /// is planned again here, from the store as this process first listed it: a worker
    /// needs nothing from the driver but the version, and the finish refuses a fragment
    /// whose object changed since (its fingerprint holds the object's size and etag).
    pub fn map(&self, indices: &[usize]) -> Result<(usize, usize), ReleaseError> {
        self.on_worker(|prepared| {
            let (mut mapped, mut reused) = (0, 0);
            for &i in indices {
                if prepared.map_or_resume(i)?.1 {
                    reused += 1;
                } else {
                    mapped += 1;
                }
            }
            Ok((mapped, reused))
        })
    }

    /// A worker's step after the map: the band rows of the objects `indices`, read from
    /// their fragments, each with its partition of `parts` (a function of the band key).
    /// None when near duplicates are not looked for.
    pub fn band_rows(
        &self,
        indices: &[usize],
        parts: u32,
    ) -> Result<Vec<(u32, BandRow)>, ReleaseError> {
        self.on_worker(|prepared| prepared.band_rows(indices, parts))
    }

    /// A worker's step after the shuffle: judges the LSH buckets in the rows of partition
    /// `part` of `parts` (all of that partition's rows, in any order). The sketches and
    /// shingle sets this reads from the fragments are kept for the process's next partition.
    pub fn judge(
        &self,
        (part, parts): (u32, u32),
        rows: &[BandRow],
    ) -> Result<JudgedPartition, ReleaseError> {
        let mut state = self
            .judge_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.on_worker(|prepared| {
            if state.is_none() {
                *state = Some(prepared.judge_state()?);
            }
            let state = state.as_mut().expect("set above");
            prepared.judge(state, (part, parts), rows)
        })
    }

    /// The driver's last step: finishes the build from the fragments in the store
    /// (duplicates, the merge in key order, reports, manifest), and removes them. `judged`:
    /// every partition of the band rows as [`BuildSteps::judge`] judged it, or `None` to
    /// judge candidate pairs here, on demand.
    pub fn finish(
        &self,
        judged: Option<Vec<JudgedPartition>>,
    ) -> Result<crate::build::BuildOutcome, ReleaseError> {
        let verdicts = match judged {
            Some(parts) => Verdicts::Shuffled(ShuffleVerdicts::new(parts)?),
            None => Verdicts::OnDemand,
        };
        let plan = draft_plan(&self.store, &self.settings, &self.version)?;
        let ctx = self.context(&plan);
        let prepared = Prepared::open(&self.store, &self.registry, &self.settings.build, &ctx)?;
        Ok(prepared.finish_from_store(verdicts)?)
    }

    /// Runs `step` on the build planned again in this process, from the store as this
    /// process first listed it: a worker needs nothing from the driver but the version, and
    /// the finish refuses a fragment whose object changed since (its fingerprint holds the
    /// object's size and etag).
    fn on_worker<T>(
        &self,
        step: impl FnOnce(&Prepared<'_>) -> Result<T, crate::build::BuildError>,
    ) -> Result<T, ReleaseError> {
        let plan = draft_plan(&self.store, &self.settings, &self.version)?;
        let ctx = self.context(&plan);
        let sources = match self.listed.get() {
            Some(s) => s.clone(),
            None => {
                let s = crate::build::Sources::list(&self.store, &self.registry)?;
                self.listed.get_or_init(|| s).clone()
            }
        };
        let prepared = Prepared::open_listed(
            &self.store,
            &self.registry,
            &self.settings.build,
            &ctx,
            sources,
        )?;
        Ok(step(&prepared)?)
    }

    fn context<'s>(&'s self, plan: &'s Plan) -> crate::build::BuildContext<'s> {
        stages::build_context(
            &self.settings,
            &self.version,
            &plan.location,
            Vec::new(),
            &self.detector,
        )
    }
}

/// Runs the gates over the built draft of `version`.
pub fn gates_only(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    version: &str,
) -> Result<crate::gates::GatesOutcome, ReleaseError> {
    let plan = draft_plan(store, settings, version)?;
    let detector = settings.privacy.detector();
    Ok(crate::gates::run(
        store,
        registry,
        &plan.location,
        settings.gate_policy(&detector),
    )?)
}

/// Runs the stages and writes their reports into the draft folder, recording everything in
/// the run's audit log (see [`crate::audit`]).
pub fn run(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    version: &str,
    options: &RunOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, ReleaseError> {
    check_config(settings, registry)?;
    let plan = draft_plan(store, settings, version)?;
    let audit = Arc::new(AuditLog::start(store, version, "release")?);
    let store = &store.observed_by(Arc::clone(&audit) as Arc<dyn StoreObserver>);
    let result = run_stages(store, &audit, settings, registry, plan, options, progress);
    let end = match &result {
        Ok(o) => serde_json::json!({
            "passed": o.passed,
            "published": o.published.is_some(),
            "release_digest": o.release_digest,
        }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    audit.record(Action::RunEnd, Event::detail(end));
    match (audit.flush(), result) {
        (Ok(()), result) => result,
        (Err(e), Ok(_)) => Err(e.into()),
        // The run's own error says more than the audit log's.
        (Err(_), Err(e)) => Err(e),
    }
}

/// Walks the stage table for a run, then gathers what the stages left into the outcome.
fn run_stages(
    store: &Store,
    audit: &Arc<AuditLog>,
    settings: &Settings,
    registry: &Registry,
    plan: Plan,
    options: &RunOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, ReleaseError> {
    let mut ctx = run::Ctx::new(
        store,
        settings,
        registry,
        &plan,
        options,
        Some(audit),
        progress,
    );
    let walk = run::walk(&mut ctx, run::Mode::Run)?;
    let left = ctx.into_left();
    let Some(coverage) = left.coverage else {
        return Err(ReleaseError::Internal("coverage did not run"));
    };
    Ok(Outcome {
        plan,
        coverage,
        build: left.build,
        gates: left.gates,
        qa: left.qa,
        consume: left.consume,
        release_digest: left.release_digest,
        published: left.published,
        stage_log: left.stage_log,
        written: left.written,
        passed: walk.passed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_one_safe_key_segment() {
        for ok in ["v2026-11-25", "v2026-11-25.1", "v1", "vrc_2"] {
            assert!(validate_version(ok).is_ok(), "{ok}");
        }
        for bad in ["2026-11-25", "v", "v../x", "v2026/11", "v-1", ""] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
    }
}
