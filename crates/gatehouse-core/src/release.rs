//! `gatehouse release`: the orchestrator. It resolves the release version and location,
//! prints the plan, and runs the stages that exist in this version of gatehouse, writing
//! their reports into the release's draft folder `{exports}/releases/{version}/`.
//!
//! Stages not built yet are listed in the plan as unavailable, never faked: a release run
//! by this version can never be published.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use thiserror::Error;

use crate::audit::{Action, AuditError, AuditLog, Event};

use crate::config::Settings;
use crate::coverage::{self, CoverageError, CoverageReport};
use crate::digest::sha256;
use crate::layout;
use crate::registry::Registry;
use crate::report::Verdict;
use crate::resume::{self, Decision};
use crate::store::{Store, StoreError, StoreObserver};

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

    pub fn describe(self) -> &'static str {
        match self {
            Stage::Coverage => "list the store and map keys to datasets and families",
            Stage::Build => "compile the ChatML export, splits, shards and manifest",
            Stage::Gates => "privacy, provenance, dedup, leakage and distribution gates",
            Stage::Qa => "human review packets and signoff bound to the release digest",
            Stage::Consume => "load the release the way training will",
            Stage::Publish => "write-once publication with release notes and dataset card",
        }
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
            ReleaseError::Serialise(..) => None,
        }
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

/// Builds the plan. Reads one listing page (to prove the store exists) and the published
/// marker; writes nothing.
pub fn plan(store: &Store, settings: &Settings, version: &str) -> Result<Plan, ReleaseError> {
    validate_version(version)?;
    store.probe()?;
    let location = location(store, version);
    let already_published = store.exists(&layout::PUBLISHED_MARKER.at(&location))?;
    let stages = Stage::ALL
        .iter()
        .map(|&stage| PlannedStage {
            stage,
            what: stage.describe(),
            action: if stage.available() {
                "run"
            } else {
                "not available in this version of gatehouse"
            }
            .to_string(),
            reason: String::new(),
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
/// output changed for the others. Reads the store (a listing, stamps, HEADs); writes nothing.
pub fn dry_run(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    version: &str,
    options: &RunOptions<'_>,
) -> Result<Plan, ReleaseError> {
    check_config(settings, registry)?;
    let mut plan = plan(store, settings, version)?;
    let mut set = |stage: Stage, action: &str, reason: String| {
        if let Some(p) = plan.stages.iter_mut().find(|p| p.stage == stage) {
            p.action = action.to_string();
            p.reason = reason;
        }
    };
    if plan.already_published {
        for stage in Stage::ALL {
            set(
                stage,
                "not run",
                "the version is published; a published version is never modified".into(),
            );
        }
        return Ok(plan);
    }
    let report = coverage::run(
        store,
        registry,
        &settings.coverage,
        &settings.waivers,
        settings.as_of,
        &mut |_| {},
    )?;
    set(
        Stage::Coverage,
        "run",
        format!(
            "always: the listing is its input (it would be {})",
            report.verdict.as_str()
        ),
    );
    set(
        Stage::Qa,
        "run",
        "always: reviewers' files are read afresh".into(),
    );
    set(
        Stage::Publish,
        "run if every stage passes",
        "write-once, after the evidence".into(),
    );
    if report.verdict == Verdict::Fail && !options.no_fail_fast {
        for stage in [Stage::Build, Stage::Gates, Stage::Qa, Stage::Consume] {
            set(stage, "not run", "coverage fails".into());
        }
        set(Stage::Publish, "not run", "coverage fails".into());
        return Ok(plan);
    }
    let inputs = build_inputs(
        store,
        settings,
        registry,
        version,
        &to_json("coverage", &report)?,
    )?;
    let digest = match decide(store, options, version, Stage::Build, &inputs)? {
        Decision::Skip { stamp } => {
            let digest = stamp.release_digest.clone();
            set(Stage::Build, "skip", stamp.skip_reason());
            Some(digest)
        }
        Decision::Run { reason } => {
            set(Stage::Build, "run", reason);
            None
        }
    };
    let Some(digest) = digest else {
        set(
            Stage::Gates,
            "run",
            "after the build: they resume only if the rebuilt manifest is byte-identical and nothing else changed".into(),
        );
        set(
            Stage::Consume,
            "run if QA approves",
            "after the build and the signoff".into(),
        );
        return Ok(plan);
    };
    let inputs = gates_inputs(store, settings, registry, &digest)?;
    match decide(store, options, version, Stage::Gates, &inputs)? {
        Decision::Skip { stamp } => set(Stage::Gates, "skip", stamp.skip_reason()),
        Decision::Run { reason } => set(Stage::Gates, "run", reason),
    }
    let inputs = consume_inputs(store, settings, &location(store, version), &digest)?;
    match decide(store, options, version, Stage::Consume, &inputs)? {
        Decision::Skip { stamp } => set(Stage::Consume, "skip", stamp.skip_reason()),
        Decision::Run { reason } => set(Stage::Consume, "run if QA approves", reason),
    }
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
    let ctx = crate::build::BuildContext {
        release_version: version,
        location: &plan.location,
        release_date: release_date(settings, version),
        config_digest: settings.digest(),
        artefacts: Vec::new(),
        detector: &detector,
    };
    Ok(crate::build::run(
        store,
        registry,
        &settings.build,
        &ctx,
        progress,
    )?)
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

fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, ReleaseError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| ReleaseError::Serialise(what, e))?;
    bytes.push(b'\n');
    Ok(bytes)
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

/// Stage wall times, and the audit log's stage boundaries.
struct Laps {
    clock: std::time::Instant,
    log: Vec<StageLog>,
    audit: Arc<AuditLog>,
}

impl Laps {
    fn start(&mut self, stage: Stage, reason: &str) {
        self.clock = std::time::Instant::now();
        self.audit.stage_start(stage.as_str(), reason);
    }

    fn end(
        &mut self,
        stage: Stage,
        verdict: Verdict,
        resumed: Option<String>,
    ) -> Result<(), StoreError> {
        let seconds = (self.clock.elapsed().as_secs_f64() * 1e3).round() / 1e3;
        let action = if resumed.is_some() {
            Action::StageSkip
        } else {
            Action::StageEnd
        };
        self.audit.record(
            action,
            Event::detail(serde_json::json!({
                "stage": stage.as_str(), "verdict": verdict, "seconds": seconds, "reason": resumed,
            })),
        );
        self.audit.flush()?;
        self.log.push(StageLog {
            stage,
            verdict,
            seconds,
            skipped: resumed,
        });
        Ok(())
    }
}

/// "gatehouse {version} {git commit}": a stage's results depend on the code that made them.
fn tool() -> String {
    format!(
        "gatehouse {} {}",
        env!("CARGO_PKG_VERSION"),
        option_env!("GATEHOUSE_GIT_COMMIT").unwrap_or("unknown")
    )
}

fn inputs<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// What the build depends on: the code, the policy, the registry, the version and date, every
/// source object (key, size, etag), reviewers' blocklists and the coverage report.
fn build_inputs(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    version: &str,
    coverage_json: &[u8],
) -> Result<BTreeMap<String, String>, StoreError> {
    let exports = format!("{}/", store.exports_prefix());
    Ok(inputs([
        ("tool", tool()),
        ("config", settings.digest()),
        ("privacy_policy", settings.privacy.policy_digest()),
        ("registry", registry.digest.clone()),
        ("release_version", version.to_string()),
        (
            "release_date",
            release_date(settings, version).unwrap_or_default(),
        ),
        (
            "sources",
            // Labelled evaluation sets are the gates' input, not the build's.
            resume::listing_digest(store, "", Some(&exports), |k| {
                !settings.privacy.evaluation.sets.iter().any(|s| s == k)
            })?,
        ),
        (
            "blocklists",
            resume::listing_digest(
                store,
                &layout::blocklists_prefix(store.exports_prefix()),
                None,
                |_| true,
            )?,
        ),
        ("coverage_report", sha256(coverage_json)),
    ]))
}

/// What the gates depend on: the code, the policy (and the labelled sets the privacy gate
/// measures, by sha256), the registry, the manifest, the day waivers are judged on and the
/// published releases (the regression baseline).
fn gates_inputs(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    release_digest: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    Ok(inputs([
        ("tool", tool()),
        ("config", settings.digest()),
        ("privacy_policy", settings.privacy.policy_digest()),
        (
            "privacy_evaluation_sets",
            crate::privacy::sets_digest(store, &settings.privacy.evaluation)?,
        ),
        ("registry", registry.digest.clone()),
        ("release_digest", release_digest.to_string()),
        ("as_of", settings.as_of.to_string()),
        (
            "published_releases",
            resume::listing_digest(
                store,
                &layout::releases_prefix(store.exports_prefix()),
                None,
                |k| layout::published_version(store.exports_prefix(), k).is_some(),
            )?,
        ),
    ]))
}

/// What the consumption test depends on: the code, its settings and the tokenizer, the
/// manifest and the signoff that binds it.
fn consume_inputs(
    store: &Store,
    settings: &Settings,
    location: &str,
    release_digest: &str,
) -> Result<BTreeMap<String, String>, StoreError> {
    let signoff = match store.get_bytes(&layout::SIGNOFF_RECORD.at(location)) {
        Ok(b) => sha256(&b),
        Err(StoreError::NotFound { .. }) => "none".into(),
        Err(e) => return Err(e),
    };
    let consume = serde_json::json!({
        "consume": settings.consume,
        "tokenizer": settings.build.tokenizer,
    });
    Ok(inputs([
        ("tool", tool()),
        ("consume_config", sha256(consume.to_string().as_bytes())),
        ("release_digest", release_digest.to_string()),
        ("signoff", signoff),
    ]))
}

fn decide(
    store: &Store,
    options: &RunOptions<'_>,
    version: &str,
    stage: Stage,
    inputs: &BTreeMap<String, String>,
) -> Result<Decision, StoreError> {
    if options.no_resume {
        return Ok(Decision::Run {
            reason: "--no-resume".into(),
        });
    }
    resume::decide(store, version, stage.as_str(), inputs)
}

/// What a resumable stage's run produced.
struct Completed<T> {
    outcome: T,
    verdict: Verdict,
    written: Vec<String>,
    release_digest: String,
}

/// A resumable stage after `resumable`: its outcome when it ran, `None` when skipped.
struct Resumed<T> {
    passed: bool,
    release_digest: String,
    outcome: Option<T>,
}

/// Skips `stage` when its stamp matches `inputs` and its outputs; otherwise removes the
/// stamp, runs it and stamps it again. Records the stage's lap either way.
fn resumable<T>(
    store: &Store,
    options: &RunOptions<'_>,
    laps: &mut Laps,
    version: &str,
    stage: Stage,
    inputs: BTreeMap<String, String>,
    run: impl FnOnce() -> Result<Completed<T>, ReleaseError>,
) -> Result<Resumed<T>, ReleaseError> {
    match decide(store, options, version, stage, &inputs)? {
        Decision::Skip { stamp } => {
            laps.start(stage, "");
            laps.end(stage, stamp.verdict, Some(stamp.skip_reason()))?;
            Ok(Resumed {
                passed: stamp.passed,
                release_digest: stamp.release_digest,
                outcome: None,
            })
        }
        Decision::Run { reason } => {
            laps.start(stage, &reason);
            resume::invalidate(store, version, stage.as_str())?;
            let done = run()?;
            let stamp = resume::record(
                store,
                version,
                stage.as_str(),
                inputs,
                &done.written,
                done.verdict,
                &done.release_digest,
            )?;
            laps.end(stage, done.verdict, None)?;
            Ok(Resumed {
                passed: stamp.passed,
                release_digest: done.release_digest,
                outcome: Some(done.outcome),
            })
        }
    }
}

fn run_stages(
    store: &Store,
    audit: &Arc<AuditLog>,
    settings: &Settings,
    registry: &Registry,
    plan: Plan,
    options: &RunOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, ReleaseError> {
    let no_fail_fast = options.no_fail_fast;
    let version = plan.version.as_str();
    let mut laps = Laps {
        clock: std::time::Instant::now(),
        log: Vec::new(),
        audit: Arc::clone(audit),
    };
    laps.start(Stage::Coverage, "");
    let report = coverage::run(
        store,
        registry,
        &settings.coverage,
        &settings.waivers,
        settings.as_of,
        progress,
    )?;
    let mut written = Vec::new();
    let json_key = layout::COVERAGE_REPORT.at(&plan.location);
    let coverage_json = to_json("coverage", &report)?;
    store.put(&json_key, coverage_json.clone())?;
    written.push(json_key.clone());
    let md_key = layout::COVERAGE_REPORT_MD.at(&plan.location);
    store.put(&md_key, coverage::render_markdown(&report).into_bytes())?;
    written.push(md_key.clone());
    laps.end(Stage::Coverage, report.verdict, None)?;
    let coverage_passed = report.verdict != Verdict::Fail;

    // One detector for the build and the gates: the gate's scan is the build's fixpoint.
    let detector = settings.privacy.detector();

    // Build: skipped when its inputs and outputs are unchanged.
    let mut build = None;
    let mut release_digest = None;
    let mut build_passed = false;
    if coverage_passed || no_fail_fast {
        let inputs = build_inputs(store, settings, registry, version, &coverage_json)?;
        let r = resumable(
            store,
            options,
            &mut laps,
            version,
            Stage::Build,
            inputs,
            || {
                let ctx = crate::build::BuildContext {
                    release_version: version,
                    location: &plan.location,
                    release_date: release_date(settings, version),
                    config_digest: settings.digest(),
                    artefacts: vec![json_key, md_key],
                    detector: &detector,
                };
                let outcome =
                    crate::build::run(store, registry, &settings.build, &ctx, &mut |_| {})?;
                Ok(Completed {
                    verdict: outcome.report.verdict,
                    written: outcome.written.clone(),
                    release_digest: outcome.release_digest.clone(),
                    outcome,
                })
            },
        )?;
        build_passed = r.passed;
        release_digest = Some(r.release_digest);
        if let Some(b) = &r.outcome {
            written.extend(b.written.iter().cloned());
        }
        build = r.outcome;
    }

    // Gates: skipped when the manifest, policy, date and baseline are unchanged.
    let mut gates = None;
    let mut gates_done = false;
    let mut gates_passed = false;
    if let Some(digest) = release_digest.as_deref()
        && (build_passed || no_fail_fast)
    {
        let inputs = gates_inputs(store, settings, registry, digest)?;
        let r = resumable(
            store,
            options,
            &mut laps,
            version,
            Stage::Gates,
            inputs,
            || {
                let outcome = crate::gates::run(
                    store,
                    registry,
                    &plan.location,
                    settings.gate_policy(&detector),
                )?;
                audit_waivers(audit, &outcome);
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
                Ok(Completed {
                    verdict,
                    written: outcome.written.clone(),
                    release_digest: digest.to_string(),
                    outcome,
                })
            },
        )?;
        gates_passed = r.passed;
        if let Some(g) = &r.outcome {
            written.extend(g.written.iter().cloned());
        }
        gates = r.outcome;
        gates_done = true;
    }

    // QA: always asked afresh, since reviews arrive at any time.
    let qa = if gates_done && (gates_passed || no_fail_fast) {
        laps.start(Stage::Qa, "");
        let stage = qa_stage(store, registry, settings, &plan.location)?;
        if stage.drawn.is_some() {
            for file in [
                layout::QA_SAMPLES,
                layout::REVIEW_TEMPLATE,
                layout::REVIEW_TEMPLATE_CSV,
            ] {
                written.push(file.at(&plan.location));
            }
        }
        audit.record(
            Action::Signoff,
            Event::detail(serde_json::to_value(&stage.gate).unwrap_or_default()),
        );
        let verdict = if stage.passed() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        laps.end(Stage::Qa, verdict, None)?;
        Some(stage)
    } else {
        None
    };
    let qa_passed = qa.as_ref().is_some_and(QaStage::passed);

    // Training consumption: the draft as training will read it, bound by its signoff.
    let mut consume = None;
    let mut consume_passed = false;
    if qa_passed && let Some(digest) = release_digest.as_deref() {
        let inputs = consume_inputs(store, settings, &plan.location, digest)?;
        let r = resumable(
            store,
            options,
            &mut laps,
            version,
            Stage::Consume,
            inputs,
            || {
                let out = crate::consume::run(
                    store,
                    &plan.location,
                    &settings.consume,
                    &settings.build.tokenizer,
                    true,
                )?;
                Ok(Completed {
                    verdict: out.report.verdict,
                    written: out.written.clone(),
                    release_digest: digest.to_string(),
                    outcome: out,
                })
            },
        )?;
        consume_passed = r.passed;
        if let Some(c) = &r.outcome {
            written.extend(c.written.iter().cloned());
        }
        consume = r.outcome;
    }
    let mut outcome = Outcome {
        passed: coverage_passed && build_passed && gates_passed && qa_passed && consume_passed,
        plan,
        coverage: report,
        build,
        gates,
        qa,
        consume,
        release_digest,
        published: None,
        stage_log: std::mem::take(&mut laps.log),
        written,
    };
    // Every stage passed: publish (evidence, then the create-only marker).
    if outcome.passed {
        laps.log = std::mem::take(&mut outcome.stage_log);
        laps.start(Stage::Publish, "");
        outcome.stage_log = laps.log.clone();
        let candidate = crate::publish::Candidate {
            location: &outcome.plan.location,
            version: &outcome.plan.version,
            release_digest: outcome.release_digest.as_deref(),
            coverage: &outcome.coverage,
            qa: outcome.qa.as_ref().map(|q| (&q.gate, q.passed())),
            stages: &outcome.stage_log,
            passed: outcome.passed,
            audit: Some(audit),
        };
        let published = crate::publish::publish(
            store,
            registry,
            &candidate,
            &settings.digest(),
            options.unenforced_store_reason,
        )?;
        outcome.written.extend(published.written.iter().cloned());
        outcome.published = Some(published);
        laps.end(Stage::Publish, Verdict::Pass, None)?;
        outcome.stage_log = laps.log;
    }
    Ok(outcome)
}

/// Records every waiver the gates used in the audit log.
fn audit_waivers(a: &AuditLog, gates: &crate::gates::GatesOutcome) {
    for (gate, waivers) in [
        ("privacy", serde_json::to_value(&gates.privacy.waivers)),
        (
            "provenance",
            serde_json::to_value(&gates.provenance.waivers),
        ),
        ("dedup", serde_json::to_value(&gates.dedup.waivers)),
        ("leakage", serde_json::to_value(&gates.leakage.waivers)),
        (
            "distribution",
            serde_json::to_value(&gates.distribution.waivers),
        ),
    ] {
        for w in waivers
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
        {
            a.record(
                Action::Waiver,
                Event::detail(serde_json::json!({ "gate": gate, "waiver": w })),
            );
        }
    }
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
