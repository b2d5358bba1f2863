//! Validation of a parsed registry file: every check that needs no store, each problem
//! located as `line: field: message` and all of them reported at once, sorted by line.
//! Families first (datasets name them), then each dataset entry, then overlaps between
//! datasets that are certain from their patterns alone.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Container, Dataset, Family, Fields, KeyMatcher, Problem, Provenance, ReviewType,
    SCHEMA_VERSION, SourceFormat, mapping, stage_number, valid_identifier,
};
use crate::config::parse::line_col;

/// The registry file as TOML gives it, with spans for messages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistryFile {
    schema_version: Spanned<u32>,
    families: Spanned<BTreeMap<Spanned<String>, Spanned<Family>>>,
    #[serde(default)]
    datasets: Vec<Spanned<DatasetEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetEntry {
    name: Spanned<String>,
    family: Spanned<String>,
    #[serde(default)]
    stage: Option<Spanned<String>>,
    include: Spanned<Vec<String>>,
    #[serde(default)]
    exclude: Vec<String>,
    format: SourceFormat,
    #[serde(default)]
    container: Option<Container>,
    #[serde(default)]
    fields: Fields,
    #[serde(default)]
    speaker_roles: BTreeMap<String, String>,
    #[serde(default)]
    source_fields: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    license_tag: Option<Spanned<String>>,
    #[serde(default)]
    provenance: Option<Spanned<Provenance>>,
    #[serde(default)]
    group_by: Option<String>,
    #[serde(default)]
    pii_allowlist: Vec<String>,
}

/// The families and datasets of a valid file, or every problem found, sorted by line.
pub(super) type Validated = Result<(BTreeMap<String, Family>, Vec<Dataset>), Vec<Problem>>;

/// Validates `file`, parsed from `text` (which turns spans into lines).
pub(super) fn validate(text: &str, file: RegistryFile) -> Validated {
    let mut checker = Checker {
        text,
        problems: Vec::new(),
    };
    checker.schema_version(&file.schema_version);
    let families = checker.families(file.families);
    let datasets = checker.datasets(file.datasets, &families);
    checker.overlaps(&datasets);

    let mut problems = checker.problems;
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }
    Ok((families, datasets))
}

fn valid_dataset_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

const ROLES: &[&str] = &["system", "user", "assistant"];

/// The problems found so far, and the text their lines are counted in.
struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// 1-based line of a span's start.
    fn line(&self, span: Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    fn problem(&mut self, line: usize, field: String, message: String) {
        self.problems.push(Problem {
            line,
            field,
            message,
        });
    }

    fn schema_version(&mut self, version: &Spanned<u32>) {
        if *version.get_ref() != SCHEMA_VERSION {
            self.problem(
                self.line(version.span()),
                "schema_version".into(),
                format!(
                    "this gatehouse reads registry schema {SCHEMA_VERSION}, the file says {}",
                    version.get_ref()
                ),
            );
        }
    }

    fn families(
        &mut self,
        file: Spanned<BTreeMap<Spanned<String>, Spanned<Family>>>,
    ) -> BTreeMap<String, Family> {
        let families_line = self.line(file.span());
        let mut families = BTreeMap::new();
        for (name, fam) in file.into_inner() {
            self.family(&name, &fam);
            families.insert(name.into_inner(), fam.into_inner());
        }
        if families.is_empty() {
            self.problem(
                families_line,
                "families".into(),
                "the registry defines no families".into(),
            );
        }
        families
    }

    fn family(&mut self, name: &Spanned<String>, fam: &Spanned<Family>) {
        let at = self.line(fam.span());
        let fam = fam.get_ref();
        let field = format!("families.{}", name.get_ref());
        if !valid_identifier(name.get_ref()) {
            self.problem(
                self.line(name.span()),
                field.clone(),
                "family names are lowercase letters, digits and `_`, starting with a letter".into(),
            );
        }
        if stage_number(&fam.stage).is_none() {
            self.problem(
                at,
                format!("{field}.stage"),
                format!("stage {:?} is not of the form stage<N>_<name>", fam.stage),
            );
        }
        if fam.review.contains(&ReviewType::PrivacySpotCheck) {
            self.problem(
                at,
                format!("{field}.review"),
                "privacy_spot_check is not a family's review: its records are the privacy \
                 gate's spot-check sample, drawn from every family"
                    .into(),
            );
        }
        if fam.review.is_empty() {
            self.problem(
                at,
                format!("{field}.review"),
                "name at least one review type (clinician_foundation, clinician_edge, \
                 bias_cultural)"
                    .into(),
            );
        }
    }

    /// The entries that hold together, in file order; the others are left out (their
    /// problems are recorded).
    fn datasets(
        &mut self,
        entries: Vec<Spanned<DatasetEntry>>,
        families: &BTreeMap<String, Family>,
    ) -> Vec<Dataset> {
        let mut names = BTreeSet::new();
        let mut datasets = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let field = format!("datasets[{i}]");
            datasets.extend(self.dataset(&field, entry, families, &mut names));
        }
        datasets
    }

    /// One entry's checks, in the order its problems are reported; `None` when its patterns
    /// do not make a matcher.
    fn dataset(
        &mut self,
        field: &str,
        entry: Spanned<DatasetEntry>,
        families: &BTreeMap<String, Family>,
        names: &mut BTreeSet<String>,
    ) -> Option<Dataset> {
        let at = self.line(entry.span());
        let e = entry.into_inner();
        self.dataset_name(field, &e.name, names);
        let stage = self.dataset_stage(field, &e, families);
        let include_line = self.line(e.include.span());
        self.patterns(field, include_line, &e);
        self.format_fields(field, at, &e);
        self.licence_and_provenance(field, &e);
        let matcher = match KeyMatcher::new(e.include.get_ref(), &e.exclude) {
            Ok(m) => m,
            Err(msg) => {
                self.problem(include_line, format!("{field}.include"), msg);
                return None;
            }
        };
        Some(Dataset {
            name: e.name.into_inner(),
            family: e.family.into_inner(),
            stage,
            include: e.include.into_inner(),
            exclude: e.exclude,
            format: e.format,
            container: e.container,
            fields: e.fields,
            speaker_roles: e.speaker_roles,
            source_fields: e.source_fields.map(Spanned::into_inner).unwrap_or_default(),
            license_tag: e.license_tag.map(Spanned::into_inner),
            provenance: e.provenance.map(Spanned::into_inner),
            group_by: e.group_by,
            pii_allowlist: e.pii_allowlist,
            matcher,
            line: at,
        })
    }

    fn dataset_name(&mut self, field: &str, name: &Spanned<String>, names: &mut BTreeSet<String>) {
        let at = self.line(name.span());
        let name = name.get_ref();
        if !valid_dataset_name(name) {
            self.problem(
                at,
                format!("{field}.name"),
                format!("dataset name {name:?} may use letters, digits, `_`, `-` and `.`"),
            );
        }
        if !names.insert(name.clone()) {
            self.problem(
                at,
                format!("{field}.name"),
                format!("dataset {name:?} is defined twice"),
            );
        }
    }

    /// The entry's stage: its own if it names one, else its family's (empty for an unknown
    /// family, which is a problem).
    fn dataset_stage(
        &mut self,
        field: &str,
        e: &DatasetEntry,
        families: &BTreeMap<String, Family>,
    ) -> String {
        let family = e.family.get_ref();
        let family_stage = match families.get(family) {
            Some(f) => f.stage.clone(),
            None => {
                self.problem(
                    self.line(e.family.span()),
                    format!("{field}.family"),
                    format!(
                        "unknown family {family:?} (known: {})",
                        families.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                String::new()
            }
        };
        match &e.stage {
            Some(s) => {
                if stage_number(s.get_ref()).is_none() {
                    self.problem(
                        self.line(s.span()),
                        format!("{field}.stage"),
                        format!("stage {:?} is not of the form stage<N>_<name>", s.get_ref()),
                    );
                }
                s.get_ref().clone()
            }
            None => family_stage,
        }
    }

    /// `include` and `exclude`: at least one pattern, each relative to the store root.
    fn patterns(&mut self, field: &str, include_line: usize, e: &DatasetEntry) {
        let include = e.include.get_ref();
        if include.is_empty() {
            self.problem(
                include_line,
                format!("{field}.include"),
                "name at least one key, folder or glob".into(),
            );
        }
        for p in include.iter().chain(&e.exclude) {
            if p.trim().is_empty() || p.starts_with('/') || p.contains("://") {
                self.problem(
                    include_line,
                    format!("{field}.include"),
                    format!("{p:?} must be a key, folder or glob relative to the store root"),
                );
            }
        }
    }

    /// What the format needs to read a record: its fields, speaker roles, container and
    /// field mapping.
    fn format_fields(&mut self, field: &str, at: usize, e: &DatasetEntry) {
        for required in e.format.required_fields() {
            if !has_field(&e.fields, required) {
                self.problem(
                    at,
                    format!("{field}.fields.{required}"),
                    format!("format {} needs fields.{required}", e.format),
                );
            }
        }
        for (speaker, role) in &e.speaker_roles {
            if !ROLES.contains(&role.as_str()) {
                self.problem(
                    at,
                    format!("{field}.speaker_roles.{speaker}"),
                    format!("role {role:?} is not one of system, user, assistant"),
                );
            }
        }
        if e.container == Some(Container::Parquet) && !e.format.is_json_family() {
            self.problem(
                at,
                format!("{field}.container"),
                format!(
                    "Parquet rows are read with the JSON-family formats (pair for two \
                     columns, messages for a list of turns), not {}",
                    e.format
                ),
            );
        }
        let source_fields_line = e.source_fields.as_ref().map_or(at, |s| self.line(s.span()));
        let source_fields = e.source_fields.as_ref().map_or(&[][..], |s| s.get_ref());
        for (key, message) in mapping::check(e.format, &e.fields, source_fields) {
            let at = if key == "source_fields" {
                source_fields_line
            } else {
                at
            };
            self.problem(at, format!("{field}.{key}"), message);
        }
    }

    /// A licence tag or provenance, when given, is not blank (absent ones are not load errors).
    fn licence_and_provenance(&mut self, field: &str, e: &DatasetEntry) {
        if let Some(l) = &e.license_tag
            && l.get_ref().trim().is_empty()
        {
            self.problem(
                self.line(l.span()),
                format!("{field}.license_tag"),
                "empty licence tag; leave it out if the licence is unknown".into(),
            );
        }
        if let Some(p) = &e.provenance {
            let pv = p.get_ref();
            for (k, v) in [
                ("origin", &pv.origin),
                ("method", &pv.method),
                ("consent", &pv.consent),
            ] {
                if v.trim().is_empty() {
                    self.problem(
                        self.line(p.span()),
                        format!("{field}.provenance.{k}"),
                        "empty; leave provenance out if it is unknown".into(),
                    );
                }
            }
        }
    }

    /// Overlaps that are certain from the patterns alone; the listing catches the rest.
    fn overlaps(&mut self, datasets: &[Dataset]) {
        for (i, a) in datasets.iter().enumerate() {
            for b in &datasets[i + 1..] {
                let overlap = a
                    .matcher
                    .literal_probes()
                    .into_iter()
                    .chain(b.matcher.literal_probes())
                    .find(|k| a.claims(k) && b.claims(k));
                if let Some(key) = overlap {
                    let shown = key.replace("/~probe~", "/…");
                    self.problem(
                        b.line,
                        "include".into(),
                        format!(
                            "datasets {:?} (line {}) and {:?} both claim {shown:?}; an object \
                             belongs to at most one dataset (narrow one with `exclude`)",
                            a.name, a.line, b.name
                        ),
                    );
                }
            }
        }
    }
}

/// Whether `fields` names the `required` key of a format.
fn has_field(fields: &Fields, required: &str) -> bool {
    match required {
        "user" => fields.user.is_some(),
        "assistant" => fields.assistant.is_some(),
        "conversation" => fields.conversation.is_some(),
        "order" => fields.order.is_some(),
        "speaker" => fields.speaker.is_some(),
        "text" => fields.text.is_some(),
        "messages" => fields.messages.is_some(),
        "role" => fields.role.is_some(),
        "content" => fields.content.is_some(),
        _ => true,
    }
}
