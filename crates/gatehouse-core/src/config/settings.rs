//! The resolved configuration a command runs with: the checks of every section together,
//! and the policy's digest.

use std::path::PathBuf;

use super::{CoverageConfig, SettingOrigin};
use crate::store::StoreConfig;
use crate::waiver::Waiver;

/// The fully resolved configuration a command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_file: Option<PathBuf>,
    pub registry_path: PathBuf,
    pub store: StoreConfig,
    pub coverage: CoverageConfig,
    pub build: crate::build::BuildConfig,
    pub gates: crate::gates::GatesConfig,
    pub qa: crate::qa::QaConfig,
    pub consume: crate::consume::ConsumeConfig,
    pub privacy: crate::privacy::PrivacyConfig,
    pub waivers: Vec<Waiver>,
    pub origins: Vec<SettingOrigin>,
    /// The day waivers are judged on: `SOURCE_DATE_EPOCH` if set, else today (UTC). Never a
    /// date taken from a release version, which the user chooses freely.
    pub as_of: chrono::NaiveDate,
    /// The date from `SOURCE_DATE_EPOCH`, when set: the only clock artefacts may use.
    pub source_date: Option<chrono::NaiveDate>,
    /// Settings given twice with different values (e.g. `OVH_S3_BUCKET` and `AWS_S3_BUCKET`),
    /// where the first in precedence silently wins: shown by `doctor` and logged with `-v`.
    /// Names only, never values.
    pub warnings: Vec<String>,
}

impl Settings {
    /// The gates' settings; `detector` is the run's one detector
    /// ([`crate::privacy::PrivacyConfig::detector`]).
    pub fn gate_policy<'a>(
        &'a self,
        detector: &'a gatehouse_text::pii::Detector,
    ) -> crate::gates::Policy<'a> {
        crate::gates::Policy {
            config: &self.gates,
            waivers: &self.waivers,
            as_of: self.as_of,
            limits: &self.build.limits,
            dedup: &self.build.dedup,
            tokenizer: &self.build.tokenizer,
            detector,
            evaluation: &self.privacy.evaluation,
        }
    }

    /// Every problem of the policy settings, section by section, checked together before
    /// anything runs: by `release` (a `release --dry-run` that exits 0 means the run will not
    /// stop on its configuration) and by `doctor`. Each stage still checks its own settings
    /// when run alone.
    pub fn problems(&self, registry: &crate::registry::Registry) -> Vec<String> {
        let section = |name: &str, problems: Vec<String>| {
            problems
                .into_iter()
                .map(|p| format!("[{name}] {p}"))
                .collect::<Vec<_>>()
        };
        let mut out = section("build", self.build.problems(registry));
        out.extend(self.tokenizer_problem());
        out.extend(section("gates", self.gates.problems()));
        out.extend(self.qa.problem_with(registry).map(|p| format!("[qa] {p}")));
        out.extend(section("consume", self.consume.problems()));
        out.extend(
            self.privacy
                .problem(self.store.exports_prefix.trim_matches('/')),
        );
        for w in &self.waivers {
            out.extend(w.problems().into_iter().map(|p| format!("[[waivers]] {p}")));
        }
        out
    }

    /// A tokenizer file that is missing or that the tokenizers library cannot load.
    fn tokenizer_problem(&self) -> Option<String> {
        let gatehouse_text::TokenizerSpec::File(p) = &self.build.tokenizer else {
            return None;
        };
        if !p.is_file() {
            return Some(format!("[build] tokenizer: {} is not a file", p.display()));
        }
        self.build
            .tokenizer
            .counter()
            .err()
            .map(|e| format!("[build] tokenizer: {e}"))
    }

    /// sha256 of the resolved policy (everything but where the store is and its secrets);
    /// recorded in every manifest.
    pub fn digest(&self) -> String {
        let policy = serde_json::json!({
            "exports_prefix": self.store.exports_prefix,
            "coverage": self.coverage,
            "build": self.build,
            "gates": self.gates,
            "qa": self.qa,
            "privacy": self.privacy,
            "waivers": self.waivers,
        });
        crate::digest::sha256(policy.to_string().as_bytes())
    }
}
