//! Groups: sampled objects of one folder, kind and shape, each turned into an entry that
//! loads with the registry (or says why it does not) and is checked by the build's adapter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::check::adapter_check;
use super::entry::{self, EntryParts, dataset_name};
use super::list::{Listing, Unclaimed, folder_of, literal, suffix_of};
use super::render::header;
use super::sample::{self, Body, Kind, Sample, kind_of};
use super::shape::{self, Proposal};
use super::{Check, Group, Options, SuggestError};
use crate::digest::sha256;
use crate::registry::{Dataset, Registry, is_glob};
use crate::store::Store;

/// Unclaimed objects of one folder, kind and shape, gathered before they become a [`Group`].
pub(super) struct Draft {
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
pub(super) fn draft_groups(
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
pub(super) struct Proposer<'a> {
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
    pub(super) fn new(
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
    pub(super) fn group(&mut self, g: usize, d: &Draft) -> Result<Option<Group>, SuggestError> {
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
