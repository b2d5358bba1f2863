//! Phase 3 of the build, the merge: in key order, every object's mapped lines become the
//! shards of each split (with their Parquet twins), the compiled export, the quarantine list
//! and the list of removed duplicates, with the counts per split and family. The output is
//! the same whatever the thread count or the executor, because the order is the objects'
//! key order and, within an object, its items' source order.

use std::collections::BTreeMap;

use serde::Serialize;

use super::phases::MappedOutput;
use super::process::{self, SpillFn};
use super::shards::{self, HashedObject, ShardSet};
use super::{BuildConfig, BuildError, Split, Tally, dedup, manifest, map, parquet};
use crate::layout;
use crate::store::Store;

/// A line of `dedup_removed.jsonl`: a removed record and the record kept in its place.
#[derive(Serialize)]
struct RemovedLine<'a> {
    id: &'a str,
    dataset: &'a str,
    source_key: &'a str,
    source_line: u64,
    kind: dedup::Kind,
    /// Jaccard index of the shingle sets (1 for exact duplicates).
    jaccard: f64,
    kept_id: &'a str,
    kept_dataset: &'a str,
    kept_source_key: &'a str,
    kept_source_line: u64,
}

/// The build's outputs being written, object by object in key order: the shards of each
/// split, the compiled export, the quarantine list, and the counts per split and family.
pub(super) struct Assembly<'a> {
    store: &'a Store,
    sets: BTreeMap<Split, ShardSet>,
    compiled: Option<HashedObject>,
    quarantine: HashedObject,
    /// `dedup_removed.jsonl`.
    removed: HashedObject,
    per_family: BTreeMap<(Split, String), Tally>,
    split_counts: BTreeMap<Split, u64>,
    /// Reused buffers: a record line with its source sha256 patched in, and a
    /// removed-duplicate line.
    patched: Vec<u8>,
    removed_line: Vec<u8>,
}

/// What the assembly wrote.
pub(super) struct Assembled {
    pub written: Vec<String>,
    pub artefacts: Vec<manifest::Artefact>,
    /// Per split: JSONL shards and their Parquet twins.
    pub contents: Vec<(Split, Vec<shards::ShardInfo>, Vec<shards::ShardInfo>)>,
    pub per_family: BTreeMap<(Split, String), Tally>,
    pub split_counts: BTreeMap<Split, u64>,
}

impl<'a> Assembly<'a> {
    pub(super) fn new(store: &'a Store, loc: &str, config: &BuildConfig) -> Self {
        let sets = Split::ALL
            .iter()
            .map(|s| {
                let prefix = layout::shard_prefix(loc, s.as_str());
                let set = ShardSet::new(prefix, config.shard_max_records, config.shard_max_bytes);
                (*s, set)
            })
            .collect();
        Self {
            store,
            sets,
            compiled: config
                .compiled_export
                .then(|| HashedObject::create(store, layout::COMPILED_EXPORT.at(loc))),
            quarantine: HashedObject::create(store, layout::QUARANTINE.at(loc)),
            removed: HashedObject::create(store, layout::DEDUP_REMOVED.at(loc)),
            per_family: BTreeMap::new(),
            split_counts: Split::ALL.iter().map(|s| (*s, 0)).collect(),
            patched: Vec::with_capacity(8192),
            removed_line: Vec::with_capacity(512),
        }
    }

    /// Object `o`'s mapped lines, in source order (`lines` hands each to the function it is
    /// given): each record goes to its split's shard (and the compiled export) unless
    /// deduplication removed it, then it is listed in `removed` with the record kept in its
    /// place; quarantined lines go to the quarantine list. Returns the records and tokens
    /// removed as duplicates.
    pub(super) fn object(
        &mut self,
        o: usize,
        out: &MappedOutput,
        lines: &mut dyn FnMut(&mut SpillFn<'_>) -> Result<(), BuildError>,
        entries: &[dedup::ObjectEntries],
        statuses: &[dedup::Status],
        kept_in: &dyn Fn(u32) -> (&'a str, &'a str),
    ) -> Result<(u64, u64), BuildError> {
        let object_entries = &entries[o].entries;
        let mut ordinal = 0usize;
        let mut removed_here = (0u64, 0u64);
        lines(&mut |tag, line| match process::destination(tag) {
            Some(process::Destination::Record(split)) => {
                let e = object_entries.get(ordinal).ok_or_else(|| {
                    BuildError::Internal("a spill holds more records than its object".into())
                })?;
                let status = statuses[ordinal];
                ordinal += 1;
                if let dedup::Status::Removed {
                    kind,
                    kept,
                    jaccard,
                } = status
                {
                    removed_here.0 += 1;
                    removed_here.1 += e.tokens;
                    let k = &entries[kept.0 as usize].entries[kept.1 as usize];
                    let (kept_dataset, kept_source_key) = kept_in(kept.0);
                    self.removed_line.clear();
                    serde_json::to_writer(
                        &mut self.removed_line,
                        &RemovedLine {
                            id: &e.id,
                            dataset: &out.report.dataset,
                            source_key: &out.report.key,
                            source_line: e.line,
                            kind,
                            jaccard: (jaccard * 1e6).round() / 1e6,
                            kept_id: &k.id,
                            kept_dataset,
                            kept_source_key,
                            kept_source_line: k.line,
                        },
                    )
                    .map_err(|e| BuildError::Serialise("a removed-duplicate line", e))?;
                    return Ok(self.removed.write_line(&self.removed_line)?);
                }
                self.record(split, line, out, e.tokens, status)
            }
            Some(process::Destination::Quarantine) => Ok(self.quarantine.write_line(line)?),
            None => Err(BuildError::Internal("corrupt local spill file".into())),
        })?;
        if ordinal != object_entries.len() {
            return Err(BuildError::Internal(
                "a spill holds fewer records than its object".into(),
            ));
        }
        Ok(removed_here)
    }

    /// One exported record: its source sha256 (and, for a representative, its dedup
    /// status) patched in, counted, and written to its shard and the compiled export.
    fn record(
        &mut self,
        split: Split,
        line: &[u8],
        out: &MappedOutput,
        tokens: u64,
        status: dedup::Status,
    ) -> Result<(), BuildError> {
        process::patch_sha(line, &out.input.sha256, &mut self.patched)?;
        if status == dedup::Status::Representative {
            process::patch_dedup_status(&mut self.patched, map::DEDUP_REPRESENTATIVE)?;
        }
        *self.split_counts.entry(split).or_default() += 1;
        *self
            .per_family
            .entry((split, out.family.clone()))
            .or_default() += Tally { records: 1, tokens };
        if let Some(c) = &mut self.compiled {
            c.write_line(&self.patched)?;
        }
        if let Some(set) = self.sets.get_mut(&split) {
            set.write_line(self.store, &self.patched)?;
        }
        Ok(())
    }

    /// Completes every file: shards (with their Parquet twins), the compiled export, the
    /// quarantine list and the removed-duplicates list.
    pub(super) fn finish(self, config: &BuildConfig) -> Result<Assembled, BuildError> {
        let mut written = Vec::new();
        let mut artefacts = Vec::new();
        let mut contents = Vec::new();
        for (split, set) in self.sets {
            let parts = set.finish()?;
            written.extend(parts.iter().map(|p| p.key.clone()));
            let parquet = if config.parquet {
                parquet_twins(self.store, &parts, config.limits.max_export_line())?
            } else {
                Vec::new()
            };
            written.extend(parquet.iter().map(|p| p.key.clone()));
            contents.push((split, parts, parquet));
        }
        if let Some(c) = self.compiled {
            let info = c.finish()?;
            written.push(info.key.clone());
            artefacts.push(manifest::Artefact::from(&info));
        }
        for file in [self.quarantine, self.removed] {
            let info = file.finish()?;
            written.push(info.key.clone());
            artefacts.push(manifest::Artefact::from(&info));
        }
        Ok(Assembled {
            written,
            artefacts,
            contents,
            per_family: self.per_family,
            split_counts: self.split_counts,
        })
    }
}

/// Writes the Parquet twin of every shard, in parallel, streaming: each shard is read line
/// by line and written one row group at a time, so memory is bounded by
/// [`parquet::ROW_GROUP_ROWS`], not by the shard's size.
fn parquet_twins(
    store: &Store,
    parts: &[shards::ShardInfo],
    max_line: usize,
) -> Result<Vec<shards::ShardInfo>, BuildError> {
    use rayon::prelude::*;
    parts
        .par_iter()
        .map(|p| {
            let key = match p.key.strip_suffix(".jsonl") {
                Some(stem) => format!("{stem}.parquet"),
                None => format!("{}.parquet", p.key),
            };
            let reader = std::io::BufReader::with_capacity(1 << 20, store.open_read(&p.key)?);
            let mut out = shards::HashingWriter::create(store, &key);
            let rows = parquet::convert(&p.key, reader, max_line, &mut out)?;
            if rows != p.records {
                return Err(BuildError::Internal(format!(
                    "{}: {rows} rows converted of {} records",
                    p.key, p.records
                )));
            }
            let (bytes, sha256) = out.finish()?;
            Ok(shards::ShardInfo {
                key,
                bytes,
                records: p.records,
                sha256,
            })
        })
        .collect()
}
