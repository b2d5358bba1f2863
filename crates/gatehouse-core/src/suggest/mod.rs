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

pub mod entry;
pub mod sample;
pub mod shape;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
use thiserror::Error;

use crate::digest::sha256;
use crate::registry::{Dataset, Registry, is_glob};
use crate::source::{self, Item, Limits};
use crate::store::{Store, StoreError};
use entry::{EntryParts, dataset_name, toml_str};
use sample::{Body, Bounds, Kind, Sample, kind_of};
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

/// An unclaimed object.
struct Unclaimed {
    key: String,
    size: u64,
}

fn folder_of(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..=i])
}

/// Everything from the file name's first dot (`.jsonl.gz`), lowercased.
fn suffix_of(key: &str) -> String {
    let file = &key[folder_of(key).len()..];
    file.find('.')
        .map_or(String::new(), |i| file[i..].to_ascii_lowercase())
}

/// A key as an exact `include` pattern (glob characters escaped).
fn literal(key: &str) -> String {
    if is_glob(key) {
        key.chars()
            .flat_map(|c| {
                matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\')
                    .then_some('\\')
                    .into_iter()
                    .chain([c])
            })
            .collect()
    } else {
        key.to_string()
    }
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

/// What the listing found outside the exports prefix.
struct Listing {
    objects: u64,
    /// Sorted by key.
    unclaimed: Vec<Unclaimed>,
    /// Folders holding a claimed object at any depth, and (folder, suffix) of claimed
    /// objects directly in a folder: an include may not reach them.
    claimed_dirs: BTreeSet<String>,
    claimed_direct: BTreeSet<(String, String)>,
}

/// Lists the store under `prefix` and sorts its objects into claimed and unclaimed.
fn list(store: &Store, registry: &Registry, prefix: &str) -> Result<Listing, SuggestError> {
    let exports = format!("{}/", store.exports_prefix());
    let mut listing = Listing {
        objects: 0,
        unclaimed: Vec::new(),
        claimed_dirs: BTreeSet::new(),
        claimed_direct: BTreeSet::new(),
    };
    for object in store.list(prefix) {
        let object = object?;
        if object.key.starts_with(&exports) {
            continue;
        }
        listing.objects += 1;
        match registry.dataset_for(&object.key) {
            Err((first, second)) => {
                return Err(SuggestError::AmbiguousKey {
                    key: object.key,
                    first,
                    second,
                });
            }
            Ok(Some(_)) => {
                let mut dir = folder_of(&object.key);
                listing
                    .claimed_direct
                    .insert((dir.to_string(), suffix_of(&object.key)));
                while !dir.is_empty() {
                    listing.claimed_dirs.insert(dir.to_string());
                    dir = folder_of(&dir[..dir.len() - 1]);
                }
            }
            Ok(None) => listing.unclaimed.push(Unclaimed {
                size: object.size,
                key: object.key,
            }),
        }
    }
    listing.unclaimed.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(listing)
}

/// Unclaimed objects of one folder, kind and shape, gathered before they become a [`Group`].
struct Draft {
    folder: String,
    kind: Option<Kind>,
    samples: Vec<Sample>,
    proposals: Vec<Proposal>,
    /// Indices into the unclaimed objects.
    keys: Vec<usize>,
}

impl Draft {
    fn new(folder: String, kind: Option<Kind>, keys: Vec<usize>) -> Self {
        Draft {
            folder,
            kind,
            samples: Vec::new(),
            proposals: Vec::new(),
            keys,
        }
    }
}

/// Samples the first objects of each folder and groups them by folder, kind and shape;
/// objects past the sampling cap join the largest group of their folder and kind.
fn draft_groups(
    store: &Store,
    unclaimed: &[Unclaimed],
    options: &Options,
) -> Result<Vec<Draft>, SuggestError> {
    let mut drafts: Vec<Draft> = Vec::new();
    let mut index: BTreeMap<(String, Option<Kind>, String), usize> = BTreeMap::new();
    let mut sampled_in: BTreeMap<String, usize> = BTreeMap::new();
    let mut unsampled: Vec<usize> = Vec::new();
    for (i, u) in unclaimed.iter().enumerate() {
        let folder = folder_of(&u.key).to_string();
        let n = sampled_in.entry(folder.clone()).or_insert(0);
        if *n >= options.max_objects {
            unsampled.push(i);
            continue;
        }
        *n += 1;
        let s = sample::sample(store, &u.key, &options.bounds)?;
        let (kind, signature, recognised) = classify(&u.key, &s);
        let at = *index
            .entry((folder.clone(), kind, signature))
            .or_insert_with(|| {
                drafts.push(Draft::new(folder.clone(), kind, Vec::new()));
                drafts.len() - 1
            });
        let d = &mut drafts[at];
        d.keys.push(i);
        if let Ok(p) = recognised {
            d.proposals.push(p);
        }
        d.samples.push(s);
    }
    for i in unsampled {
        let key = &unclaimed[i].key;
        let (folder, kind) = (folder_of(key), kind_of(key));
        if let Some(d) = drafts
            .iter_mut()
            .filter(|d| d.folder == folder && d.kind == kind)
            .max_by_key(|d| d.samples.len())
        {
            d.keys.push(i);
        } else {
            drafts.push(Draft::new(folder.to_string(), kind, vec![i]));
        }
    }
    Ok(drafts)
}

/// A sampled object's kind, the signature of its shape (what groups it) and the shape
/// recognised, or why none was.
fn classify(key: &str, s: &Sample) -> (Option<Kind>, String, Result<Proposal, String>) {
    let kind = kind_of(key).or(match &s.body {
        Ok(Body::Json { .. }) => Some(Kind::Json),
        _ => None,
    });
    let recognised = match &s.body {
        Ok(body) => shape::recognise(body, &s.adapter_key),
        Err(why) => Err(why.clone()),
    };
    // What is not recognised is reported together per folder, whatever its kind.
    let (signature, kind) = match &recognised {
        Ok(p) => (
            serde_json::json!([p.format, p.container, p.fields]).to_string(),
            kind,
        ),
        Err(_) => ("unrecognised".to_string(), None),
    };
    (kind, signature, recognised)
}

/// Turns drafts into groups with their entries: what every group shares (the listing, the
/// registry's families) and the dataset names taken so far.
struct Proposer<'a> {
    store: &'a Store,
    registry_text: &'a str,
    options: &'a Options,
    listing: &'a Listing,
    families: Vec<String>,
    /// The family an entry is proposed in (the registry's first).
    family: String,
    names: BTreeSet<String>,
    /// Unclaimed object → its draft.
    group_of: BTreeMap<usize, usize>,
}

/// The entry chosen for a group: its include, its TOML, the dataset it loads as with the
/// registry (if it does) and why it does not (if it does not).
struct Choice {
    include: Vec<String>,
    toml: String,
    dataset: Option<Dataset>,
    problem: Option<String>,
}

impl<'a> Proposer<'a> {
    fn new(
        store: &'a Store,
        registry: &Registry,
        registry_text: &'a str,
        options: &'a Options,
        listing: &'a Listing,
        drafts: &[Draft],
    ) -> Self {
        let families: Vec<String> = registry.families.keys().cloned().collect();
        let family = families
            .first()
            .cloned()
            .unwrap_or_else(|| "professional_therapeutic".into());
        Proposer {
            store,
            registry_text,
            options,
            listing,
            families,
            family,
            names: registry.datasets.iter().map(|d| d.name.clone()).collect(),
            group_of: drafts
                .iter()
                .enumerate()
                .flat_map(|(g, d)| d.keys.iter().map(move |&k| (k, g)))
                .collect(),
        }
    }

    /// Draft `g` as a group with its entry, checked by the build's adapter; `None` when no
    /// include was tried.
    fn group(&mut self, g: usize, d: &Draft) -> Result<Option<Group>, SuggestError> {
        let unclaimed = &self.listing.unclaimed;
        let keys: Vec<&str> = d.keys.iter().map(|&i| unclaimed[i].key.as_str()).collect();
        let bytes = d.keys.iter().map(|&i| unclaimed[i].size).sum();
        let include = include_candidates(&d.folder, &keys, self.listing, &self.group_of, g);
        let name = self.fresh_name(&d.folder, &keys);
        let mut group = Group {
            folder: d.folder.clone(),
            objects: keys.len() as u64,
            bytes,
            sampled_objects: d.samples.len(),
            name: name.clone(),
            include: include[0].clone(),
            proposal: merge(&d.proposals),
            unrecognised: unrecognised(&d.samples),
            check: None,
            toml: String::new(),
        };
        if let Some(p) = &group.proposal {
            let Some(choice) = self.choose(&name, &include, p) else {
                return Ok(None);
            };
            let dataset = choice.dataset.or_else(|| alone(&self.family, &choice.toml));
            let mut check = match &dataset {
                Some(ds) => adapter_check(self.store, ds, &d.samples, self.options)?,
                None => Check::default(),
            };
            check.load_problem = choice.problem;
            group.include = choice.include;
            group.toml = choice.toml;
            group.check = Some(check);
        }
        group.toml = header(&group) + &group.toml;
        Ok(Some(group))
    }

    /// A dataset name from the folder (or the first key at the root) not taken yet, taken.
    fn fresh_name(&mut self, folder: &str, keys: &[&str]) -> String {
        let base = if folder.is_empty() {
            dataset_name(keys[0])
        } else {
            dataset_name(folder)
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// The first include whose entry loads with the registry as it is; else the last (exact
    /// keys), with the problem, to be checked on its own and reported.
    fn choose(&self, name: &str, include: &[Vec<String>], proposal: &Proposal) -> Option<Choice> {
        let mut chosen = None;
        for inc in include {
            let toml = entry::render(&EntryParts {
                name,
                family: &self.family,
                families: &self.families,
                include: inc,
                proposal,
            });
            let text = format!("{}\n{toml}", self.registry_text);
            match Registry::parse(
                Path::new("registry + suggestion"),
                &text,
                sha256(text.as_bytes()),
            ) {
                Ok(r) => {
                    return Some(Choice {
                        include: inc.clone(),
                        toml,
                        dataset: r.datasets.last().cloned(),
                        problem: None,
                    });
                }
                Err(e) => {
                    chosen = Some(Choice {
                        include: inc.clone(),
                        toml,
                        dataset: None,
                        problem: Some(e.to_string()),
                    });
                }
            }
        }
        chosen
    }
}

/// Per sampled object not recognised: key → why.
fn unrecognised(samples: &[Sample]) -> BTreeMap<String, String> {
    samples
        .iter()
        .filter_map(|s| {
            let why = match &s.body {
                Err(why) => why.clone(),
                Ok(body) => shape::recognise(body, &s.adapter_key).err()?,
            };
            Some((s.key.clone(), why))
        })
        .collect()
}

/// `include` choices, best first: the folder, a glob on the folder's suffix, the keys. A
/// choice is offered only when it reaches exactly the group's objects among those listed.
fn include_candidates(
    folder: &str,
    keys: &[&str],
    listing: &Listing,
    group_of: &BTreeMap<usize, usize>,
    group: usize,
) -> Vec<Vec<String>> {
    let others = |reaches: &dyn Fn(&str) -> bool| {
        listing
            .unclaimed
            .iter()
            .enumerate()
            .any(|(i, u)| group_of.get(&i) != Some(&group) && reaches(&u.key))
    };
    let mut out = Vec::new();
    if !folder.is_empty()
        && !listing.claimed_dirs.contains(folder)
        && !others(&|k: &str| k.starts_with(folder))
    {
        out.push(vec![literal(folder)]);
    }
    let suffixes: BTreeSet<String> = keys.iter().map(|k| suffix_of(k)).collect();
    if let [suffix] = suffixes.into_iter().collect::<Vec<_>>().as_slice()
        && !suffix.is_empty()
        && keys.len() > 1
        && !listing
            .claimed_direct
            .contains(&(folder.to_string(), suffix.clone()))
        && !is_glob(folder)
        && !is_glob(suffix)
        && !others(&|k: &str| folder_of(k) == folder && suffix_of(k) == *suffix)
    {
        out.push(vec![format!("{folder}*{suffix}")]);
    }
    out.push(keys.iter().map(|k| literal(k)).collect());
    out
}

/// The entry loaded on its own (with a stand-in family), when it does not load with the
/// registry: the adapter check still runs.
fn alone(family: &str, toml: &str) -> Option<Dataset> {
    let text = format!(
        "schema_version = 1\n[families.{family}]\nstage = \"stage1_foundation\"\nreview = [\"clinician_foundation\"]\n{toml}"
    );
    Registry::parse(Path::new("suggestion"), &text, String::new())
        .ok()
        .and_then(|r| r.datasets.into_iter().next())
}

/// Several objects' proposals of one shape as one: speaker values, undecided values,
/// scalar fields and notes merged.
fn merge(proposals: &[Proposal]) -> Option<Proposal> {
    let (first, rest) = proposals.split_first()?;
    let mut p = first.clone();
    for o in rest {
        p.emit_roles |= o.emit_roles;
        p.speaker_roles.extend(o.speaker_roles.clone());
        for u in &o.undecided_roles {
            if !p.undecided_roles.contains(u) {
                p.undecided_roles.push(u.clone());
            }
        }
        for (k, t) in &o.scalar_fields {
            p.scalar_fields
                .entry(k.clone())
                .or_insert_with(|| t.clone());
        }
        for n in &o.notes {
            if !p.notes.contains(n) {
                p.notes.push(n.clone());
            }
        }
    }
    p.undecided_roles.sort();
    Some(p)
}

/// Runs the build's adapter over each sampled object's records.
fn adapter_check(
    store: &Store,
    dataset: &Dataset,
    samples: &[Sample],
    options: &Options,
) -> Result<Check, SuggestError> {
    let mut check = Check::default();
    let mut counts: BTreeMap<(&'static str, &'static str, String), u64> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.body.is_ok()) {
        let mut seen = 0usize;
        let mut on_item = |item: Item| {
            if seen >= options.bounds.records {
                return;
            }
            seen += 1;
            check.sampled_records += 1;
            match item {
                Item::Record(_) => check.adapted += 1,
                Item::Quarantined(q) => {
                    *counts
                        .entry((q.reason.code(), q.reason.name(), q.detail))
                        .or_insert(0) += 1;
                }
            }
        };
        let result = match &s.adapter_bytes {
            Some(bytes) => source::adapt(
                &bytes[..],
                &s.adapter_key,
                dataset,
                &options.limits,
                &mut on_item,
            )
            .map(|_| ()),
            None => {
                let ranges = store.open_ranges(&s.key)?;
                let budgeted = sample::Budgeted::new(ranges, options.bounds.max_parquet_bytes);
                source::parquet::adapt_first_row_group(
                    budgeted,
                    &s.key,
                    dataset,
                    &options.limits,
                    &mut on_item,
                )
                .map(|_| ())
            }
        };
        result.map_err(|e| SuggestError::Read {
            key: s.key.clone(),
            detail: e.to_string(),
        })?;
    }
    check.quarantined = counts
        .into_iter()
        .map(|((code, name, detail), count)| QuarantineCount {
            code,
            name,
            detail,
            count,
        })
        .collect();
    Ok(check)
}

/// Distinct quarantine reasons printed per group (all are in the JSON).
const SHOWN_REASONS: usize = 8;

/// The comment lines above an entry: where, how many, what shape, what the adapter made of
/// the sample, and the decisions left.
fn header(g: &Group) -> String {
    let mut out = String::new();
    let folder = if g.folder.is_empty() {
        "(store root)"
    } else {
        &g.folder
    };
    let shape = g
        .proposal
        .as_ref()
        .map_or_else(|| "not recognised".to_string(), |p| p.shape.clone());
    out.push_str(&format!(
        "\n# --- {folder}: {} unclaimed object(s), {} sampled: {shape}\n",
        g.objects, g.sampled_objects
    ));
    for (key, why) in &g.unrecognised {
        out.push_str(&format!("# not recognised: {key}: {why}\n"));
    }
    if let Some(c) = &g.check {
        out.push_str(&format!(
            "# adapts {} of {} sampled records\n",
            c.adapted, c.sampled_records
        ));
        for q in c.quarantined.iter().take(SHOWN_REASONS) {
            out.push_str(&format!(
                "# would quarantine {}: {} {}: {}\n",
                q.count, q.code, q.name, q.detail
            ));
        }
        if c.quarantined.len() > SHOWN_REASONS {
            let rest: u64 = c.quarantined[SHOWN_REASONS..].iter().map(|q| q.count).sum();
            out.push_str(&format!(
                "# would quarantine {rest} more, for {} other reason(s) (--json lists them)\n",
                c.quarantined.len() - SHOWN_REASONS
            ));
        }
        if let Some(problem) = &c.load_problem {
            for line in problem.lines() {
                out.push_str(&format!("# does not load with the registry yet: {line}\n"));
            }
        }
    }
    if let Some(p) = &g.proposal {
        for n in &p.notes {
            out.push_str(&format!("# decision needed: {n}\n"));
        }
    }
    if g.objects as usize > g.sampled_objects && g.proposal.is_some() {
        out.push_str(&format!(
            "# {} object(s) of this folder were not sampled (--max-objects); they are assumed \
             to share this shape\n",
            g.objects as usize - g.sampled_objects
        ));
    }
    out
}

/// The whole text output: a preamble, then each group's entry.
pub fn render_text(report: &Report) -> String {
    let mut out = format!(
        "# gatehouse registry suggest: {} of {} object(s) under {} are claimed by no dataset \
         (COV004), in {} group(s).\n# Paste an entry into the registry after the decisions it \
         lists; nothing was written. Counts\n# and reasons come from the build's adapter over \
         the sampled records.\n",
        report.unclaimed,
        report.objects,
        if report.prefix.is_empty() {
            "the store".to_string()
        } else {
            toml_str(&report.prefix)
        },
        report.groups.len()
    );
    for g in &report.groups {
        out.push_str(&g.toml);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn keys_with_glob_characters_are_escaped() {
        assert_eq!(literal("raw/a[1].jsonl"), "raw/a\\[1\\].jsonl");
        assert_eq!(literal("raw/a.jsonl"), "raw/a.jsonl");
        assert_eq!(suffix_of("raw/x/train.JSONL.gz"), ".jsonl.gz");
        assert_eq!(folder_of("a.jsonl"), "");
    }
}
