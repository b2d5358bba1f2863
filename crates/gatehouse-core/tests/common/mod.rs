//! Helpers shared by the integration tests: the bundled sample store, the example registry,
//! a build into a fixed draft folder, and readers for what it wrote.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test uses some of them

use std::path::{Path, PathBuf};

use gatehouse_core::build::{self, BuildConfig, BuildContext, BuildOutcome};
use gatehouse_core::registry::Registry;
use gatehouse_core::store::Store;
use serde_json::Value;

pub const LOC: &str = "exports/releases/v2026-11-25/";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn sample_into(store: &Store) {
    gatehouse_test::for_each_file(
        &repo_root().join("examples/sample-store"),
        &mut |key, bytes| {
            if !key.starts_with("exports/") {
                store.put(key, bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            Ok(())
        },
    )
    .unwrap();
}

pub fn registry_text() -> String {
    std::fs::read_to_string(repo_root().join("examples/registry.toml")).unwrap()
}

pub fn registry(text: &str) -> Registry {
    Registry::parse(
        Path::new("registry.toml"),
        text,
        gatehouse_core::digest::sha256(text.as_bytes()),
    )
    .unwrap()
}

/// The default-policy detector, built once per test binary.
pub fn detector() -> &'static gatehouse_text::pii::Detector {
    static DETECTOR: std::sync::OnceLock<gatehouse_text::pii::Detector> =
        std::sync::OnceLock::new();
    DETECTOR.get_or_init(gatehouse_text::pii::Detector::new)
}

pub fn build_with(store: &Store, reg: &Registry, config: &BuildConfig) -> BuildOutcome {
    build_with_detector(store, reg, config, detector())
}

pub fn build_with_detector(
    store: &Store,
    reg: &Registry,
    config: &BuildConfig,
    detector: &gatehouse_text::pii::Detector,
) -> BuildOutcome {
    let ctx = BuildContext {
        release_version: "v2026-11-25",
        location: LOC,
        release_date: Some("2026-11-25".into()),
        config_digest: "sha256:test".into(),
        artefacts: Vec::new(),
        detector,
    };
    build::run(store, reg, config, &ctx, &mut |_| {}).unwrap()
}

/// The gates' settings for the sample store: its synthetic voice and reasoning records fall
/// outside the prototype's expected ranges (as in the repository's gatehouse.toml).
pub fn sample_gates_config() -> gatehouse_core::gates::GatesConfig {
    use gatehouse_core::gates::distribution::FamilyRanges;
    let mut config = gatehouse_core::gates::GatesConfig::default();
    let wide = FamilyRanges {
        tokens_mean: Some([20.0, 1000.0]),
        tokens_max: Some([50.0, 3000.0]),
        turns_mean: Some([1.0, 10.0]),
        turns_max: Some([1.0, 20.0]),
    };
    config
        .distribution
        .ranges
        .insert("voice_persona".into(), wide.clone());
    config
        .distribution
        .ranges
        .insert("cot_reasoning".into(), wide);
    config
}

/// Runs every gate over the draft at [`LOC`], as of 2026-11-25, with default limits and
/// tokenizer.
pub fn gates_with(
    store: &Store,
    reg: &Registry,
    config: &gatehouse_core::gates::GatesConfig,
    waivers: &[gatehouse_core::waiver::Waiver],
    dedup: &gatehouse_core::build::dedup::DedupConfig,
) -> Result<gatehouse_core::gates::GatesOutcome, gatehouse_core::gates::GateError> {
    gates_with_privacy(
        store,
        reg,
        config,
        waivers,
        dedup,
        detector(),
        &Default::default(),
    )
}

/// [`gates_with`] with a detector and `[privacy.evaluation]` of the test's choosing.
pub fn gates_with_privacy(
    store: &Store,
    reg: &Registry,
    config: &gatehouse_core::gates::GatesConfig,
    waivers: &[gatehouse_core::waiver::Waiver],
    dedup: &gatehouse_core::build::dedup::DedupConfig,
    detector: &gatehouse_text::pii::Detector,
    evaluation: &gatehouse_core::privacy::EvaluationConfig,
) -> Result<gatehouse_core::gates::GatesOutcome, gatehouse_core::gates::GateError> {
    gatehouse_core::gates::run(
        store,
        reg,
        LOC,
        gatehouse_core::gates::Policy {
            config,
            waivers,
            as_of: "2026-11-25".parse().unwrap(),
            limits: &gatehouse_core::source::Limits::default(),
            dedup,
            tokenizer: &gatehouse_text::TokenizerSpec::default(),
            detector,
            evaluation,
        },
    )
}

pub fn text(store: &Store, key: &str) -> String {
    String::from_utf8(store.get_bytes(key).unwrap().to_vec()).unwrap()
}

pub fn records(store: &Store, key: &str) -> Vec<Value> {
    let bytes = store.get_bytes(key).unwrap();
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}
