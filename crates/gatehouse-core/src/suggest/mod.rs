//! `gatehouse registry suggest`: registry entries proposed for objects no dataset claims.
//!
//! It lists the store under a prefix (never the exports prefix), keeps the keys the registry
//! does not claim (the coverage stage's COV004 objects, decided by the same
//! [`Registry::dataset_for`]), reads a bounded sample of each (the first `max_bytes`, at most
//! `records` records; for Parquet the footer and first row group) through the build's
//! decompression and Parquet readers, recognises each sample's shape ([`shape`]), groups
//! objects of one folder, kind and shape, and renders one entry per group ([`entry`]). Each
//! entry is then loaded with the registry it would join and the build's own adapter is run
//! over the sampled records, so the counts it prints ("adapts K of N") and the quarantine
//! reasons are the build's. Nothing is written anywhere; no record text is printed: key
//! names, value types, counts, and speaker values only when they look like labels.

mod check;
pub mod entry;
mod group;
mod list;
mod render;
pub mod sample;
pub mod shape;

use std::collections::BTreeMap;

use serde::Serialize;
use thiserror::Error;

use crate::registry::Registry;
use crate::source::Limits;
use crate::store::{Store, StoreError};
use group::{Proposer, draft_groups};
use list::list;
pub use render::render_text;
use sample::Bounds;
use shape::Proposal;

/// What to look at and how much of it to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// Key prefix to look under ("" for the whole store).
    pub prefix: String,
    pub bounds: Bounds,
    /// Objects sampled per folder (the rest are assumed to share their folder's shape).
    pub max_objects: usize,
    /// The build's adapter limits (record size, merge policy, transcript chunking).
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            bounds: Bounds::default(),
            max_objects: 10,
            limits: Limits::default(),
        }
    }
}

#[derive(Debug, Error)]
pub enum SuggestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: reading it failed ({detail})")]
    Read { key: String, detail: String },
    #[error("{key} is claimed by both dataset {first:?} and dataset {second:?}")]
    AmbiguousKey {
        key: String,
        first: String,
        second: String,
    },
}

impl SuggestError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SuggestError::Store(e) => e.hint(),
            SuggestError::Read { .. } => {
                Some("check the store with `gatehouse doctor`, then run suggest again".into())
            }
            SuggestError::AmbiguousKey { .. } => Some(
                "an object belongs to at most one dataset: narrow one of them with `exclude` in \
                 the registry (`gatehouse coverage` shows the same error)"
                    .into(),
            ),
        }
    }
}

/// The outcome: every unclaimed object, grouped, each group with its proposed entry.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub prefix: String,
    /// Objects listed under the prefix, outside the exports prefix.
    pub objects: u64,
    /// Of those, objects no dataset claims.
    pub unclaimed: u64,
    pub groups: Vec<Group>,
}

/// Objects of one folder, kind and shape, and what is proposed for them.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Folder of the objects (`raw/esconv/`; empty for the store's root).
    pub folder: String,
    pub objects: u64,
    pub bytes: u64,
    pub sampled_objects: usize,
    /// Proposed dataset name and `include` patterns.
    pub name: String,
    pub include: Vec<String>,
    /// The recognised shape, or `None` when not recognised (see `unrecognised`).
    pub proposal: Option<Proposal>,
    /// Per sampled object not recognised: key → why (key names and types only).
    pub unrecognised: BTreeMap<String, String>,
    /// The build's adapter over the sampled records under the proposed entry.
    pub check: Option<Check>,
    /// The entry to paste (TOML with comments), or comments only when nothing was
    /// recognised.
    pub toml: String,
}

/// What the build's adapter made of the sampled records under the proposed entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Check {
    pub sampled_records: u64,
    pub adapted: u64,
    pub quarantined: Vec<QuarantineCount>,
    /// Why the entry does not load with the registry as it is, if it does not (it was then
    /// checked on its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantineCount {
    pub code: &'static str,
    pub name: &'static str,
    /// The build's reason: field names and labels, never record text.
    pub detail: String,
    pub count: u64,
}

/// Lists the store and proposes entries. `Err` only when the store cannot be read or the
/// registry claims a key twice.
pub fn run(
    store: &Store,
    registry: &Registry,
    registry_text: &str,
    options: &Options,
) -> Result<Report, SuggestError> {
    let listing = list(store, registry, &options.prefix)?;
    let drafts = draft_groups(store, &listing.unclaimed, options)?;
    let mut proposer = Proposer::new(store, registry, registry_text, options, &listing, &drafts);
    let mut groups = Vec::new();
    for (g, d) in drafts.iter().enumerate() {
        groups.extend(proposer.group(g, d)?);
    }
    Ok(Report {
        prefix: options.prefix.clone(),
        objects: listing.objects,
        unclaimed: listing.unclaimed.len() as u64,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    const REGISTRY: &str = r#"
schema_version = 1

[families.professional_therapeutic]
stage = "stage1_foundation"
review = ["clinician_foundation"]

[[datasets]]
name = "claimed"
family = "professional_therapeutic"
include = ["raw/mixed/claimed.jsonl"]
format = "chatml"
"#;

    fn chat(i: usize) -> serde_json::Value {
        json!({"id": i, "messages": [
            {"role": "user", "content": format!("question number {i} is here")},
            {"role": "assistant", "content": format!("answer number {i} is here")}]})
    }

    fn lines(values: impl IntoIterator<Item = serde_json::Value>) -> Vec<u8> {
        values
            .into_iter()
            .flat_map(|v| format!("{v}\n").into_bytes())
            .collect()
    }

    fn pairs() -> Vec<u8> {
        lines((0..4).map(|i| json!({"Context": format!("context {i} text"), "Response": format!("response {i} text")})))
    }

    #[test]
    fn includes_containers_wrappers_and_what_is_not_recognised() {
        let store = Store::memory();
        store
            .put("raw/mixed/claimed.jsonl", lines([chat(0)]))
            .unwrap();
        store.put("raw/mixed/a.jsonl", pairs()).unwrap();
        store.put("raw/mixed/b.jsonl", pairs()).unwrap();
        let wrapped = json!({"data": (0..3).map(chat).collect::<Vec<_>>()});
        store
            .put("raw/wrapped/data.json", wrapped.to_string())
            .unwrap();
        store
            .put("raw/lines/x.json", lines((0..3).map(chat)))
            .unwrap();
        store.put("raw/odd/blob.bin", "0101").unwrap();
        store
            .put("raw/odd/numbers.jsonl", lines([json!({"a": 1})]))
            .unwrap();
        store
            .put("raw/big/one.jsonl", lines([chat(1), chat(2)]))
            .unwrap();
        store
            .put("exports/releases/v1/manifest.json", "{}")
            .unwrap();
        let registry = Registry::parse(Path::new("r.toml"), REGISTRY, String::new()).unwrap();
        let mut options = Options::default();
        let report = run(&store, &registry, REGISTRY, &options).unwrap();
        assert_eq!((report.objects, report.unclaimed), (8, 7));
        let group = |folder: &str, recognised: bool| {
            report
                .groups
                .iter()
                .find(|g| g.folder == folder && g.proposal.is_some() == recognised)
                .unwrap_or_else(|| panic!("{folder}: {:#?}", report.groups))
        };
        // A claimed object beside them: neither the folder nor *.jsonl, but the keys.
        let mixed = group("raw/mixed/", true);
        assert_eq!(mixed.include, ["raw/mixed/a.jsonl", "raw/mixed/b.jsonl"]);
        let wrapped = group("raw/wrapped/", true);
        assert_eq!(
            wrapped.proposal.as_ref().unwrap().fields.records.as_deref(),
            Some("data")
        );
        let lines_json = group("raw/lines/", true);
        assert!(
            lines_json.toml.contains("container = \"jsonl\""),
            "{}",
            lines_json.toml
        );
        for g in [mixed, wrapped, lines_json] {
            let c = g.check.as_ref().unwrap();
            assert!(
                c.sampled_records > 0 && c.adapted == c.sampled_records,
                "{g:#?}"
            );
            assert!(c.load_problem.is_none(), "{g:#?}");
        }
        let odd = group("raw/odd/", false);
        assert!(odd.unrecognised["raw/odd/blob.bin"].contains("no adapter"));
        assert!(odd.unrecognised["raw/odd/numbers.jsonl"].contains("\"a\" (number)"));
        assert!(!odd.toml.contains("[[datasets]]"));

        // Every entry, decided, loads with the registry.
        let text = format!(
            "{REGISTRY}\n{}",
            render_text(&report).replace("# license_tag = \"\"", "license_tag = \"CC0-1.0\"\n#")
        );
        let all = Registry::parse(Path::new("r.toml"), &text, String::new()).unwrap();
        assert_eq!(all.datasets.len(), 5);

        // A first record longer than the bound is named, not guessed at.
        options.prefix = "raw/big/".into();
        options.bounds.max_bytes = 40;
        let report = run(&store, &registry, REGISTRY, &options).unwrap();
        assert!(report.groups[0].unrecognised["raw/big/one.jsonl"].contains("--max-bytes"));
    }
}
