//! The dataset registry: which datasets exist in the source store, which family and
//! curriculum stage each belongs to, how to read it, and under which licence and provenance
//! it may be used. It is one TOML file reviewed in git (format in `docs/registry.md`).
//!
//! Loading validates everything that can be checked without the store and reports every
//! problem at once as `file:line: field: message`. Missing licence or provenance is *not* a
//! load error: such a dataset is reported and excluded later (deny by default), which is
//! what an imported prototype registry looks like until a human fills the gaps. The checks
//! are in `validate.rs`.

mod container;
pub mod import;
mod mapping;
mod matcher;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::parse::{ConfigError, parse_toml};
use crate::digest::sha256;

pub use crate::contract::signoff::ReviewType;
pub use crate::contract::split::Holdout;
pub use container::Container;
pub use mapping::{PairMapping, TurnMapping, path_segments};
pub use matcher::{KeyMatcher, is_glob};

/// The registry schema this version of gatehouse reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A loaded, validated registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pub path: PathBuf,
    /// `sha256:` of the file's bytes; reports and manifests record it.
    pub digest: String,
    pub families: BTreeMap<String, Family>,
    /// In file order.
    pub datasets: Vec<Dataset>,
}

/// A dataset family: the unit of coverage, routing and review.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    /// Curriculum stage, `stage<N>_<name>`; N orders the curriculum.
    pub stage: String,
    /// Whether a release needs this family present (coverage fails otherwise, unless waived).
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub holdout: Holdout,
    /// Human review types that cover this family.
    pub review: Vec<ReviewType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ReviewType {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewType::ClinicianFoundation => "clinician_foundation",
            ReviewType::ClinicianEdge => "clinician_edge",
            ReviewType::BiasCultural => "bias_cultural",
            ReviewType::PrivacySpotCheck => "privacy_spot_check",
        }
    }
}

/// How a source is laid out; the build's adapters read these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// `{"messages": [{"role", "content"}]}` per record.
    Chatml,
    /// `{"conversations": [{"from", "value"}]}` with human/gpt/system.
    Sharegpt,
    /// `{"prompt", "response"}`.
    PromptResponse,
    /// `{"input", "output"}`.
    InputOutput,
    /// `{"question", "answer"}`.
    QuestionAnswer,
    /// `{"instruction", "input", "output"}`.
    Alpaca,
    /// A list of turns under any key, with any role and content keys: all three named in
    /// `fields` (`messages`, `role`, `content`), e.g. ESConv's `dialog[{speaker, text}]`.
    Messages,
    /// One exchange per record under any keys: `fields.user`, `fields.assistant`, optional
    /// `fields.system`, e.g. `{"Context", "Response"}`.
    Pair,
    /// CSV, one exchange per row, with named user/assistant columns.
    CsvColumns,
    /// CSV, one utterance per row, grouped by a conversation column, ordered by an index.
    UtteranceCsv,
    /// Plain-text transcripts with `Speaker: text` lines.
    TextTranscript,
}

impl SourceFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Chatml => "chatml",
            SourceFormat::Sharegpt => "sharegpt",
            SourceFormat::PromptResponse => "prompt_response",
            SourceFormat::InputOutput => "input_output",
            SourceFormat::QuestionAnswer => "question_answer",
            SourceFormat::Alpaca => "alpaca",
            SourceFormat::Messages => "messages",
            SourceFormat::Pair => "pair",
            SourceFormat::CsvColumns => "csv_columns",
            SourceFormat::UtteranceCsv => "utterance_csv",
            SourceFormat::TextTranscript => "text_transcript",
        }
    }

    /// `fields` keys this format cannot do without.
    fn required_fields(self) -> &'static [&'static str] {
        match self {
            SourceFormat::CsvColumns | SourceFormat::Pair => &["user", "assistant"],
            SourceFormat::Messages => &["messages", "role", "content"],
            SourceFormat::UtteranceCsv => &["conversation", "order", "speaker", "text"],
            _ => &[],
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Field and column names for formats that need them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    /// Column or field holding the user turn (`csv_columns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Column or field holding the assistant turn (`csv_columns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant: Option<String>,
    /// Optional column or field holding a system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Column grouping utterances into one conversation (`utterance_csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    /// Column ordering utterances within a conversation (`utterance_csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Column naming the speaker (`utterance_csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// Column holding the utterance (`utterance_csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Key of the list inside a JSON object that wraps records (e.g. `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// Dotted path of a record's list of turns (`chatml`, `sharegpt`, `messages`), e.g.
    /// `dialog` or `conversation.turns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<String>,
    /// Key of the speaker or role inside a turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Key of the text inside a turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Where a dataset came from and on what basis it may be used.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Who produced or supplied it.
    pub origin: String,
    /// How it was collected or generated.
    pub method: String,
    /// Consent or other usage basis.
    pub consent: String,
}

/// One dataset: a set of source objects with one format, family and licence.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub family: String,
    /// The family's stage unless the entry overrides it.
    pub stage: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub format: SourceFormat,
    /// How the bytes are laid out; `None` means from the format and file extension.
    pub container: Option<Container>,
    pub fields: Fields,
    /// Speaker label → `system|user|assistant`, for sources that name speakers.
    pub speaker_roles: BTreeMap<String, String>,
    /// Dotted paths of record fields copied into `metadata.source_fields` (JSON and Parquet
    /// formats); nothing else of a record is carried.
    pub source_fields: Vec<String>,
    pub license_tag: Option<String>,
    pub provenance: Option<Provenance>,
    pub group_by: Option<String>,
    pub pii_allowlist: Vec<String>,
    pub matcher: KeyMatcher,
    /// 1-based line of the entry in the registry file, for messages.
    pub line: usize,
}

impl Dataset {
    pub fn claims(&self, key: &str) -> bool {
        self.matcher.is_match(key)
    }
}

/// One validation problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("cannot read registry {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(ConfigError),
    #[error("{} has {} problem(s):\n{}", path.display(), problems.len(), render_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl RegistryError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Read { .. } => Some(
                "pass --registry PATH, set GATEHOUSE_REGISTRY, or set `registry` in gatehouse.toml; \
                 `gatehouse registry import` converts the prototype's dataset_registry.json"
                    .into(),
            ),
            RegistryError::Parse(_) | RegistryError::Invalid { .. } => {
                Some("the registry format is described in docs/registry.md".into())
            }
        }
    }
}

fn render_problems(path: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            format!(
                "  {}:{}: {}: {}",
                path.display(),
                p.line,
                p.field,
                p.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn valid_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `stage<N>_<name>`, e.g. `stage1_foundation`.
pub fn stage_number(stage: &str) -> Option<u32> {
    let rest = stage.strip_prefix("stage")?;
    let (n, name) = rest.split_once('_')?;
    (!name.is_empty() && valid_identifier(name)).then_some(())?;
    n.parse().ok()
}

impl Registry {
    /// Reads and validates a registry file.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let bytes = std::fs::read(path).map_err(|source| RegistryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| RegistryError::Invalid {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line: 1,
                field: "(file)".into(),
                message: "the file is not valid UTF-8".into(),
            }],
        })?;
        Self::parse(path, &text, sha256(&bytes))
    }

    /// Parses and validates registry text (`path` is used in messages only).
    pub fn parse(path: &Path, text: &str, digest: String) -> Result<Self, RegistryError> {
        let file = parse_toml(path, text).map_err(RegistryError::Parse)?;
        let (families, datasets) =
            validate::validate(text, file).map_err(|problems| RegistryError::Invalid {
                path: path.to_path_buf(),
                problems,
            })?;
        Ok(Registry {
            path: path.to_path_buf(),
            digest,
            families,
            datasets,
        })
    }

    /// Index (in `datasets`) of the dataset that claims `key`; an error names both datasets
    /// if two claim it. The one place that decides which dataset an object belongs to.
    pub fn dataset_for(&self, key: &str) -> Result<Option<usize>, (String, String)> {
        let mut found: Option<usize> = None;
        for (i, d) in self.datasets.iter().enumerate() {
            if d.claims(key) {
                if let Some(first) = found {
                    return Err((self.datasets[first].name.clone(), d.name.clone()));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILIES: &str = r#"
schema_version = 1

[families.professional_therapeutic]
stage = "stage1_foundation"
required = true
review = ["clinician_foundation"]

[families.edge_cases]
stage = "stage3_edge_stress_test"
required = true
holdout = "strict"
review = ["clinician_edge"]
"#;

    fn parse(datasets: &str) -> Result<Registry, RegistryError> {
        let text = format!("{FAMILIES}{datasets}");
        Registry::parse(Path::new("registry.toml"), &text, sha256(text.as_bytes()))
    }

    fn problems(datasets: &str) -> String {
        parse(datasets).unwrap_err().to_string()
    }

    #[test]
    fn a_complete_entry_loads() {
        let r = parse(
            r#"
[[datasets]]
name = "sessions"
family = "professional_therapeutic"
include = ["sources/sessions/"]
format = "chatml"
license_tag = "CC0-1.0"
group_by = "session_id"
provenance = { origin = "gatehouse-synth", method = "synthetic", consent = "no real persons" }
"#,
        )
        .unwrap();
        let d = &r.datasets[0];
        assert_eq!(d.stage, "stage1_foundation");
        assert!(d.claims("sources/sessions/part-0.jsonl"));
        assert_eq!(r.families["edge_cases"].holdout, Holdout::Strict);
        assert!(r.digest.starts_with("sha256:"));
    }

    #[test]
    fn unknown_family_names_file_line_and_field() {
        let msg = problems(
            r#"
[[datasets]]
name = "x"
family = "voice"
include = ["a/"]
format = "chatml"
"#,
        );
        assert!(
            msg.contains("registry.toml:17: datasets[0].family: unknown family \"voice\""),
            "{msg}"
        );
        assert!(
            msg.contains("known: edge_cases, professional_therapeutic"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_field_is_located() {
        let msg = problems(
            r#"
[[datasets]]
name = "x"
family = "edge_cases"
include = ["a/"]
format = "chatml"
licence = "MIT"
"#,
        );
        assert!(msg.contains("registry.toml:20:"), "{msg}");
        assert!(msg.contains("licence"), "{msg}");
    }

    #[test]
    fn unknown_format_lists_the_known_ones() {
        let msg = problems(
            r#"
[[datasets]]
name = "x"
family = "edge_cases"
include = ["a/"]
format = "parquet"
"#,
        );
        assert!(msg.contains("parquet") && msg.contains("sharegpt"), "{msg}");
    }

    #[test]
    fn overlapping_prefixes_are_refused_unless_excluded() {
        let two = |exclude: &str| {
            format!(
                r#"
[[datasets]]
name = "all_raw"
family = "professional_therapeutic"
include = ["raw/"]
exclude = [{exclude}]
format = "chatml"

[[datasets]]
name = "crisis"
family = "edge_cases"
include = ["raw/crisis"]
format = "sharegpt"
"#
            )
        };
        let msg = problems(&two(""));
        assert!(
            msg.contains("\"all_raw\"") && msg.contains("\"crisis\""),
            "{msg}"
        );
        assert!(msg.contains("both claim"), "{msg}");
        let ok = parse(&two("\"raw/crisis/\", \"raw/crisis\"")).unwrap();
        assert_eq!(
            ok.datasets[ok.dataset_for("raw/crisis/a.json").unwrap().unwrap()].name,
            "crisis"
        );
        assert_eq!(
            ok.datasets[ok.dataset_for("raw/b.json").unwrap().unwrap()].name,
            "all_raw"
        );
    }

    #[test]
    fn format_specific_fields_are_required() {
        let msg = problems(
            r#"
[[datasets]]
name = "mi"
family = "professional_therapeutic"
include = ["mi.csv"]
format = "utterance_csv"
fields = { conversation = "transcript_id", text = "utterance_text" }
speaker_roles = { therapist = "assistant", client = "patient" }
"#,
        );
        assert!(msg.contains("fields.order"), "{msg}");
        assert!(msg.contains("fields.speaker"), "{msg}");
        assert!(msg.contains("speaker_roles.client"), "{msg}");
    }

    #[test]
    fn missing_licence_and_provenance_load_but_are_recorded_as_absent() {
        let r = parse(
            r#"
[[datasets]]
name = "imported"
family = "edge_cases"
include = ["x/"]
format = "chatml"
"#,
        )
        .unwrap();
        assert!(r.datasets[0].license_tag.is_none() && r.datasets[0].provenance.is_none());
    }

    #[test]
    fn stage_names_are_checked() {
        assert_eq!(stage_number("stage2_therapeutic_expertise"), Some(2));
        assert_eq!(stage_number("stage_x"), None);
        assert_eq!(stage_number("stage3"), None);
        assert_eq!(stage_number("foundation"), None);
    }
}
