//! The store-backed executor: the build's phases run by workers that are other processes
//! or machines (issue 21: Ray), through the same kernels as the rayon executor.
//!
//! [`Prepared::map_fragment`] maps one source object and writes its fragment to the store
//! (`{exports}/work/{version}/map/{index}.lines` and `.shingles`, named by the object's
//! place in key order): any worker, in any order, and again after a failure. It returns the
//! object's [`Fragment`]: its report entry and sketches, no text. [`Prepared::finish_from_fragments`]
//! takes every object's fragment (in key order), judges every LSH bucket's pairs first and
//! clusters from those verdicts ([`dedup::Verdicts::Beforehand`], what a shuffle by band
//! key gives), merges the fragments' lines in key order, and removes the fragments. The
//! release is byte-identical to the rayon executor's (`tests/executors.rs`).

use std::io::Write;

use super::dedup::{self, ObjectEntries, SetStore, ShingleSpill, decode_set};
use super::phases::{MappedOutput, Prepared};
use super::process;
use super::{BuildError, BuildOutcome};
use crate::layout;
use crate::store::{RangeReader, StoreError};

/// What mapping one object gives its driver: the object's output and its records'
/// sketches (ids, keys, signatures; never text). The lines and shingle sets are in the
/// store.
#[derive(Debug)]
pub struct Fragment {
    index: usize,
    mapped: MappedOutput,
    entries: ObjectEntries,
}

impl Fragment {
    /// The object's place in key order.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Prepared<'_> {
    /// `{exports}/work/{version}/`.
    pub fn work_location(&self) -> String {
        layout::work_location(self.store().exports_prefix(), self.release_version())
    }

    /// Maps object `index` (key order) into its fragment in the store.
    pub fn map_fragment(&self, index: usize) -> Result<Fragment, BuildError> {
        let store = self.store();
        let key = self
            .keys()
            .nth(index)
            .ok_or_else(|| BuildError::Internal(format!("no source object at index {index}")))?;
        let (lines_key, sets_key) = layout::map_fragment(&self.work_location(), index);
        let io_err = |source| BuildError::Read {
            key: format!("(map fragment of {key})"),
            source,
        };
        let mut lines = std::io::BufWriter::with_capacity(
            1 << 20,
            store.writer(&lines_key, crate::store::DEFAULT_WRITE_BUFFER),
        );
        let mut sets =
            ShingleSpill::new(store.writer(&sets_key, crate::store::DEFAULT_WRITE_BUFFER));
        let (mapped, entries) = process::map_into(
            &self.map_context(index),
            store,
            key,
            &mut lines,
            &mut sets,
            &io_err,
        )?;
        lines.flush().map_err(io_err)?;
        let lines = lines.into_inner().map_err(|e| io_err(e.into_error()))?;
        lines.finish()?;
        sets.finish().map_err(io_err)?.finish()?;
        Ok(Fragment {
            index,
            mapped,
            entries,
        })
    }

    /// Phases 2 and 3 from every object's fragment; `fragments` in any order, one per
    /// object. The fragments are removed from the store once the manifest is written.
    pub fn finish_from_fragments(
        self,
        mut fragments: Vec<Fragment>,
    ) -> Result<BuildOutcome, BuildError> {
        fragments.sort_by_key(|f| f.index);
        let n = self.keys().len();
        if fragments.len() != n || fragments.iter().enumerate().any(|(i, f)| f.index != i) {
            return Err(BuildError::Internal(format!(
                "{} fragments for {n} source objects: each object must be mapped once",
                fragments.len()
            )));
        }
        let store = self.store();
        let work = self.work_location();
        let keys: Vec<(String, String)> = (0..n).map(|i| layout::map_fragment(&work, i)).collect();
        let (mapped, entries): (Vec<_>, Vec<_>) =
            fragments.into_iter().map(|f| (f.mapped, f.entries)).unzip();
        let mut sets = FragmentSets {
            store,
            keys: &keys,
            open: None,
        };
        let outcome = self.finish(
            mapped,
            &entries,
            &mut sets,
            dedup::Verdicts::Beforehand,
            &mut |o, f| {
                let key = &keys[o].0;
                let err = |source| BuildError::Read {
                    key: key.clone(),
                    source,
                };
                process::for_each_line(store.open_read(key)?, &err, f)
            },
        )?;
        for (lines, sets) in &keys {
            for key in [lines, sets] {
                match store.delete(key) {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(outcome)
    }
}

/// Shingle sets read by ranges from the fragments' `.shingles` objects.
struct FragmentSets<'a> {
    store: &'a crate::store::Store,
    keys: &'a [(String, String)],
    /// The object last read from, and its reader.
    open: Option<(u32, RangeReader)>,
}

impl SetStore for FragmentSets<'_> {
    fn read_at(
        &mut self,
        object: u32,
        at: u64,
        len: u32,
        out: &mut Vec<u32>,
    ) -> Result<(), BuildError> {
        if self.open.as_ref().map(|(o, _)| *o) != Some(object) {
            let reader = self.store.open_ranges(&self.keys[object as usize].1)?;
            self.open = Some((object, reader));
        }
        let Some((_, reader)) = &self.open else {
            return Err(BuildError::Internal("no open fragment".into()));
        };
        let bytes = reader.read(at..at + 4 * u64::from(len))?;
        decode_set(&bytes, out);
        Ok(())
    }
}
