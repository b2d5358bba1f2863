//! A proposal as a registry entry to paste: TOML with comments for every decision left to a
//! human. Licence and provenance are always left commented out: only a human can state them.

use std::fmt::Write as _;

use super::shape::Proposal;
use crate::registry::{Fields, SourceFormat};

/// TOML basic-string syntax (serde_json's string syntax is valid TOML for these values).
pub fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A dataset name from a folder or key: letters, digits, `_ - .`.
pub fn dataset_name(folder: &str) -> String {
    let last = folder
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let last = last.split('.').next().unwrap_or(last);
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_matches('_').to_string();
    if name.is_empty() {
        "suggested".into()
    } else {
        name
    }
}

fn fields_table(f: &Fields) -> Option<String> {
    let pairs: Vec<String> = [
        ("records", &f.records),
        ("messages", &f.messages),
        ("role", &f.role),
        ("content", &f.content),
        ("user", &f.user),
        ("assistant", &f.assistant),
        ("system", &f.system),
        ("conversation", &f.conversation),
        ("order", &f.order),
        ("speaker", &f.speaker),
        ("text", &f.text),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {}", toml_str(v))))
    .collect();
    (!pairs.is_empty()).then(|| format!("{{ {} }}", pairs.join(", ")))
}

/// What goes into one entry.
#[derive(Debug)]
pub struct EntryParts<'a> {
    pub name: &'a str,
    pub family: &'a str,
    pub families: &'a [String],
    pub include: &'a [String],
    pub proposal: &'a Proposal,
}

/// The `[[datasets]]` entry, with decision comments.
pub fn render(parts: &EntryParts<'_>) -> String {
    let p = parts.proposal;
    let mut out = String::new();
    let _ = writeln!(out, "[[datasets]]");
    let _ = writeln!(out, "name = {}", toml_str(parts.name));
    let _ = writeln!(
        out,
        "family = {}   # decision needed: the family ({})",
        toml_str(parts.family),
        parts.families.join(", ")
    );
    let include: Vec<String> = parts.include.iter().map(|i| toml_str(i)).collect();
    let _ = writeln!(out, "include = [{}]", include.join(", "));
    let _ = writeln!(out, "format = {}", toml_str(p.format.as_str()));
    if let Some(c) = p.container {
        let c = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(out, "container = {}", toml_str(&c));
    }
    if let Some(f) = fields_table(&p.fields) {
        let _ = writeln!(out, "fields = {f}");
    }
    if p.emit_roles && !p.speaker_roles.is_empty() {
        let roles: Vec<String> = p
            .speaker_roles
            .iter()
            .map(|(k, v)| format!("{} = {}", toml_str(k), toml_str(v)))
            .collect();
        let _ = writeln!(out, "speaker_roles = {{ {} }}", roles.join(", "));
    }
    let until = if p.format == SourceFormat::TextTranscript {
        "until then its lines are read as part of the turn before"
    } else {
        "until then its records are quarantined"
    };
    for u in &p.undecided_roles {
        let _ = writeln!(
            out,
            "# decision needed: speaker value {u} has no known role; add it to speaker_roles \
             as \"user\", \"assistant\" or \"system\" ({until})"
        );
    }
    if !p.scalar_fields.is_empty() {
        let names: Vec<String> = p.scalar_fields.keys().map(|k| toml_str(k)).collect();
        let types: Vec<String> = p
            .scalar_fields
            .iter()
            .map(|(k, t)| format!("{k}: {t}"))
            .collect();
        let _ = writeln!(
            out,
            "# source_fields = [{}]   # opt in: keep only labels you want carried, never \
             identifiers ({})",
            names.join(", "),
            types.join("; ")
        );
    }
    let _ = writeln!(
        out,
        "# license_tag = \"\"   # decision needed: the licence (an SPDX id); without it the \
         dataset is excluded"
    );
    let _ = writeln!(
        out,
        "# provenance = {{ origin = \"\", method = \"\", consent = \"\" }}   # decision needed"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_folder_or_file() {
        assert_eq!(dataset_name("raw/ESConv/"), "esconv");
        assert_eq!(dataset_name("raw/mental health/train.jsonl.gz"), "train");
        assert_eq!(dataset_name(""), "suggested");
    }
}
