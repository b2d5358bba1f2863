//! `gatehouse release`: the orchestrator. It resolves the release version and location,
//! prints the plan, and runs the stages that exist in this version of gatehouse, writing
//! their reports into the release's draft folder `{exports}/releases/{version}/`.
//!
//! Stages not built yet are listed in the plan as unavailable, never faked: a release run
//! by this version can never be published.

use serde::Serialize;
use thiserror::Error;

use crate::config::Settings;
use crate::coverage::{self, CoverageError, CoverageReport};
use crate::registry::Registry;
use crate::report::Verdict;
use crate::store::{Store, StoreError};

/// The file whose presence marks a published release (created with a create-only put).
pub const PUBLISHED_MARKER: &str = "_PUBLISHED";

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
    pub action: &'static str,
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
    #[error("cannot publish: {0}")]
    NotPublishable(String),
    #[error(
        "the store does not enforce create-only writes, so it cannot guarantee a published version is never overwritten"
    )]
    UnsafeStore,
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
            ReleaseError::NotPublishable(_) => Some("run `gatehouse release` again".into()),
            ReleaseError::UnsafeStore => Some(
                "use a store that refuses a second create-only write (`gatehouse doctor` checks), or pass --allow-unenforced-store \"REASON\" to publish anyway with the reason recorded".into(),
            ),
            ReleaseError::Serialise(..) => None,
        }
    }
}

/// Refuses to touch a published version (for commands that write into a release).
pub fn refuse_published(store: &Store, version: &str) -> Result<(), ReleaseError> {
    let location = location(store, version);
    if store.exists(&format!("{location}{PUBLISHED_MARKER}"))? {
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
    format!("{}/releases/{version}/", store.exports_prefix())
}

/// Builds the plan. Reads one listing page (to prove the store exists) and the published
/// marker; writes nothing.
pub fn plan(store: &Store, settings: &Settings, version: &str) -> Result<Plan, ReleaseError> {
    validate_version(version)?;
    store.probe()?;
    let location = location(store, version);
    let already_published = store.exists(&format!("{location}{PUBLISHED_MARKER}"))?;
    let stages = Stage::ALL
        .iter()
        .map(|&stage| PlannedStage {
            stage,
            what: stage.describe(),
            action: if stage.available() {
                "run"
            } else {
                "not available in this version of gatehouse"
            },
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
}

/// One stage of a run, for the release summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageLog {
    pub stage: Stage,
    pub verdict: Verdict,
    pub seconds: f64,
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
    let ctx = crate::build::BuildContext {
        release_version: version,
        location: &plan.location,
        release_date: release_date(settings, version),
        config_digest: settings.digest(),
        artefacts: Vec::new(),
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
    Ok(crate::gates::run(
        store,
        registry,
        &plan.location,
        crate::gates::Policy::of(settings),
    )?)
}

fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, ReleaseError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| ReleaseError::Serialise(what, e))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Runs the available stages and writes their reports into the draft folder.
pub fn run(
    store: &Store,
    settings: &Settings,
    registry: &Registry,
    version: &str,
    options: &RunOptions<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, ReleaseError> {
    let no_fail_fast = options.no_fail_fast;
    let plan = draft_plan(store, settings, version)?;
    let mut log = Vec::new();
    let mut clock = std::time::Instant::now();
    let mut lap = |stage: Stage, verdict: Verdict, log: &mut Vec<StageLog>| {
        log.push(StageLog {
            stage,
            verdict,
            seconds: (clock.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        });
        clock = std::time::Instant::now();
    };
    let report = coverage::run(
        store,
        registry,
        &settings.coverage,
        &settings.waivers,
        settings.as_of,
        progress,
    )?;
    let mut written = Vec::new();
    let json_key = format!("{}coverage_report.json", plan.location);
    store.put(&json_key, to_json("coverage", &report)?)?;
    written.push(json_key.clone());
    let md_key = format!("{}coverage_report.md", plan.location);
    store.put(&md_key, coverage::render_markdown(&report).into_bytes())?;
    written.push(md_key.clone());
    lap(Stage::Coverage, report.verdict, &mut log);
    let coverage_passed = report.verdict != Verdict::Fail;
    let build = if coverage_passed || no_fail_fast {
        let ctx = crate::build::BuildContext {
            release_version: version,
            location: &plan.location,
            release_date: release_date(settings, version),
            config_digest: settings.digest(),
            artefacts: vec![json_key, md_key],
        };
        let outcome = crate::build::run(store, registry, &settings.build, &ctx, &mut |_| {})?;
        written.extend(outcome.written.iter().cloned());
        lap(Stage::Build, outcome.report.verdict, &mut log);
        Some(outcome)
    } else {
        None
    };
    let build_passed = build
        .as_ref()
        .is_some_and(|b| b.report.verdict != Verdict::Fail);
    let gates = if build.is_some() && (build_passed || no_fail_fast) {
        let outcome = crate::gates::run(
            store,
            registry,
            &plan.location,
            crate::gates::Policy::of(settings),
        )?;
        written.extend(outcome.written.iter().cloned());
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
        lap(Stage::Gates, verdict, &mut log);
        Some(outcome)
    } else {
        None
    };
    let gates_passed = gates.as_ref().is_some_and(|g| g.passed);
    let qa = if gates.is_some() && (gates_passed || no_fail_fast) {
        let stage = qa_stage(store, registry, settings, &plan.location)?;
        if stage.drawn.is_some() {
            for name in [
                "qa_samples.json",
                "review_template.json",
                "review_template.csv",
            ] {
                written.push(format!("{}qa/{name}", plan.location));
            }
        }
        let verdict = if stage.passed() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        lap(Stage::Qa, verdict, &mut log);
        Some(stage)
    } else {
        None
    };
    let qa_passed = qa.as_ref().is_some_and(QaStage::passed);
    // Training consumption: the draft as training will read it, bound by its signoff.
    let consume = if qa_passed {
        let out = crate::consume::run(
            store,
            &plan.location,
            &settings.consume,
            &settings.build.tokenizer,
            true,
        )?;
        written.extend(out.written.iter().cloned());
        lap(Stage::Consume, out.report.verdict, &mut log);
        Some(out)
    } else {
        None
    };
    let consume_passed = consume
        .as_ref()
        .is_some_and(|c| c.report.verdict != Verdict::Fail);
    let mut outcome = Outcome {
        passed: coverage_passed && build_passed && gates_passed && qa_passed && consume_passed,
        plan,
        coverage: report,
        build,
        gates,
        qa,
        consume,
        published: None,
        stage_log: log,
        written,
    };
    // Every stage passed: publish (evidence, then the create-only marker).
    if outcome.passed {
        let published = crate::publish::publish(
            store,
            registry,
            &outcome,
            &settings.digest(),
            options.unenforced_store_reason,
        )?;
        outcome.written.extend(published.written.iter().cloned());
        outcome.published = Some(published);
    }
    Ok(outcome)
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
        gate: crate::qa::gate(store, registry, location, &settings.qa, max_line)?,
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
