//! The store-backed executor: the build's phases run by workers that are other processes
//! or machines (issue 21: Ray), through the same kernels as the rayon executor.
//!
//! [`Prepared::map_fragment`] maps one source object and writes its fragment to the store
//! (`{exports}/work/{version}/map/{index}.lines`, `.shingles`, then `.fragment`, named by
//! the object's place in key order): any worker, in any order, and again after a failure.
//! It returns the object's [`Fragment`]: its report entry and sketches, no text; the
//! `.fragment` object holds the same, written last, so a fragment in the store is complete.
//! [`Prepared::map_or_resume`] reuses a fragment already in the store when its fingerprint
//! (the object as listed, the settings, the registry, the blocklist, the version, the
//! code's version and commit) matches and its lines and sets are there at the sizes it
//! recorded, so a driver that died resumes from completed map outputs;
//! [`Prepared::finish_from_store`] finishes from the fragments in the store, with pair
//! verdicts judged on demand, as the rayon executor does. [`Prepared::finish_from_fragments`]
//! takes every object's fragment (in any order) and how verdicts are had (on demand, or
//! every LSH bucket's pairs judged first, [`dedup::Verdicts::Beforehand`], what a shuffle
//! by band key gives), merges the fragments' lines in key order, and removes the
//! fragments. The release is byte-identical to the rayon executor's either way
//! (`tests/executors.rs`).

use std::io::Write;

use super::dedup::shuffle::{self, BandRow, JudgeParams, JudgedPartition, Member};
use super::dedup::{self, ObjectEntries, SetStore, ShingleSpill};
use super::phases::{MappedOutput, Prepared};
use super::process;
use super::{BuildError, BuildOutcome};
use crate::layout;
use crate::store::StoreError;

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
        let work = self.work_location();
        let (lines_key, sets_key) = layout::map_fragment(&work, index);
        // First: an earlier record of this object no longer commits anything, so a run that
        // dies while rewriting the lines and sets below never leaves them under an old
        // record that a later run would trust.
        let record_key = fragment_key(&work, index);
        match store.delete(&record_key) {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
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
        let fragment = Fragment {
            index,
            mapped,
            entries,
        };
        // Last: the fragment's own record commits its lines and sets, by their sizes.
        let sizes = [store.head(&lines_key)?.size, store.head(&sets_key)?.size];
        let bytes = codec::encode(&self.fingerprint(index), sizes, &fragment)?;
        store.put(&record_key, bytes)?;
        Ok(fragment)
    }

    /// Object `index`'s fragment from the store, when one is there, was made for this build
    /// (same fingerprint) and its lines and sets are there at the sizes it recorded; `None`
    /// otherwise (also for a record of another format version). A record that cannot be
    /// decoded is an error naming its key.
    pub fn load_fragment(&self, index: usize) -> Result<Option<Fragment>, BuildError> {
        let store = self.store();
        let work = self.work_location();
        let key = fragment_key(&work, index);
        let bytes = match store.get_bytes(&key) {
            Ok(b) => b,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if codec::other_version(&bytes) {
            return Ok(None);
        }
        let (fingerprint, sizes, fragment) = codec::decode(&bytes)
            .map_err(|e| BuildError::Internal(format!("{key}: a broken map fragment: {e}")))?;
        if fingerprint != self.fingerprint(index) || fragment.index != index {
            return Ok(None);
        }
        let (lines_key, sets_key) = layout::map_fragment(&work, index);
        for (data, size) in [lines_key, sets_key].iter().zip(sizes) {
            match store.head(data) {
                Ok(info) if info.size == size => {}
                Ok(_) | Err(StoreError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(fragment))
    }

    /// Object `index`'s fragment: the one in the store if it was made for this build,
    /// else mapped now.
    pub fn map_or_resume(&self, index: usize) -> Result<(Fragment, bool), BuildError> {
        match self.load_fragment(index)? {
            Some(f) => Ok((f, true)),
            None => Ok((self.map_fragment(index)?, false)),
        }
    }

    /// Phases 2 and 3 from the fragments in the store: every object must have one made for
    /// this build. `verdicts`: judged on demand here, or judged in the partitions of a
    /// shuffle by band key.
    pub fn finish_from_store(self, verdicts: dedup::Verdicts) -> Result<BuildOutcome, BuildError> {
        let fragments = (0..self.keys().len())
            .map(|i| self.required_fragment(i))
            .collect::<Result<Vec<_>, _>>()?;
        self.finish_from_fragments(fragments, verdicts)
    }

    /// Phases 2 and 3 from every object's fragment; `fragments` in any order, one per
    /// object. The fragments are removed from the store once the manifest is written.
    pub fn finish_from_fragments(
        self,
        mut fragments: Vec<Fragment>,
        verdicts: dedup::Verdicts,
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
        let mut sets = FragmentSets::new(store, keys.clone())?;
        let outcome = self.finish(mapped, &entries, &mut sets, verdicts, &mut |o, f| {
            let key = &keys[o].0;
            let err = |source| BuildError::Read {
                key: key.clone(),
                source,
            };
            process::for_each_line(store.open_read(key)?, &err, f)
        })?;
        // The record first: a run that dies here leaves data no record commits (mapped
        // again), never a record whose data is gone.
        for (i, (lines, sets)) in keys.iter().enumerate() {
            for key in [&fragment_key(&work, i), lines, sets] {
                match store.delete(key) {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(outcome)
    }
}

impl Prepared<'_> {
    /// Object `index`'s fragment, which must be in the store and made for this build.
    fn required_fragment(&self, index: usize) -> Result<Fragment, BuildError> {
        self.load_fragment(index)?.ok_or_else(|| {
            let key = self.keys().nth(index).unwrap_or("(no such object)");
            BuildError::Internal(format!(
                "{key} has no map fragment made for this build: map it first"
            ))
        })
    }

    /// The band rows of the objects `indices` (from their fragments), each with its
    /// partition of `parts`: what a shuffle by band key groups (see [`dedup::shuffle`]).
    pub fn band_rows(
        &self,
        indices: &[usize],
        parts: u32,
    ) -> Result<Vec<(u32, BandRow)>, BuildError> {
        let bands = self.config().dedup.near_params.bands;
        let mut rows = Vec::new();
        if self.config().dedup.near {
            for &i in indices {
                let object = u32::try_from(i)
                    .map_err(|_| BuildError::Internal("more than 2^32 source objects".into()))?;
                shuffle::band_rows(
                    object,
                    &self.required_fragment(i)?.entries,
                    bands,
                    &mut rows,
                )?;
            }
        }
        Ok(rows.into_iter().map(|r| (r.part(parts), r)).collect())
    }

    /// A partition judge's state for this build: nothing read yet.
    pub fn judge_state(&self) -> Result<JudgeState, BuildError> {
        let work = self.work_location();
        let keys = (0..self.keys().len())
            .map(|i| layout::map_fragment(&work, i))
            .collect();
        Ok(JudgeState {
            objects: (0..self.keys().len()).map(|_| None).collect(),
            family_rank: vec![u32::MAX; self.keys().len()],
            sets: FragmentSets::new(self.store(), keys)?,
        })
    }

    /// Judges the rows of partition `part` of `parts` (see [`dedup::shuffle::judge_partition`]),
    /// reading the sketches and shingle sets of their objects from the fragments (once per
    /// `state`).
    pub fn judge(
        &self,
        state: &mut JudgeState,
        (part, parts): (u32, u32),
        rows: &[BandRow],
    ) -> Result<JudgedPartition, BuildError> {
        let ranks = self.family_ranks();
        for row in rows {
            let o = row.member.object as usize;
            if o >= state.objects.len() {
                return Err(BuildError::Internal(format!(
                    "a band row names object {o} of {}",
                    state.objects.len()
                )));
            }
            if state.objects[o].is_none() {
                let f = self.required_fragment(o)?;
                state.family_rank[o] = ranks
                    .get(&f.mapped.family)
                    .map_or(u32::MAX, |&r| u32::try_from(r).unwrap_or(u32::MAX));
                state.objects[o] = Some(f.entries);
            }
        }
        let p = &self.config().dedup.near_params;
        let index = StateIndex {
            objects: &state.objects,
            family_rank: &state.family_rank,
            bands: p.bands,
            perms: p.bands * p.rows,
        };
        let params = JudgeParams {
            threshold: p.threshold,
            floor: p.estimate_floor(),
            max_bucket: self.config().dedup.max_bucket,
            similar_per_member: shuffle::SIMILAR_PER_MEMBER,
            walk_limit: shuffle::WALK_LIMIT,
        };
        shuffle::judge_partition((part, parts), rows, &index, &mut state.sets, &params)
    }
}

/// What one worker process keeps between partitions: the fragments' sketches and the
/// downloaded shingle sets of the objects its partitions named.
#[derive(Debug)]
pub struct JudgeState {
    objects: Vec<Option<ObjectEntries>>,
    family_rank: Vec<u32>,
    sets: FragmentSets,
}

/// [`JudgeState`]'s sketches as the partition judge reads them.
struct StateIndex<'a> {
    objects: &'a [Option<ObjectEntries>],
    family_rank: &'a [u32],
    bands: usize,
    perms: usize,
}

impl StateIndex<'_> {
    fn entries(&self, m: Member) -> &ObjectEntries {
        // `judge` loaded every object its rows name.
        self.objects[m.object as usize]
            .as_ref()
            .expect("the object's sketches are loaded")
    }
}

impl shuffle::SketchIndex for StateIndex<'_> {
    fn rank(&self, m: Member) -> shuffle::Rank {
        (self.family_rank[m.object as usize], m.object, m.ordinal)
    }

    fn bands(&self, m: Member) -> &[u64] {
        let i = m.ordinal as usize;
        &self.entries(m).bands[i * self.bands..(i + 1) * self.bands]
    }

    fn low(&self, m: Member) -> &[u8] {
        let i = m.ordinal as usize;
        &self.entries(m).low[i * self.perms..(i + 1) * self.perms]
    }

    fn set_at(&self, m: Member) -> (u64, u32) {
        let e = &self.entries(m).entries[m.ordinal as usize];
        (e.shingles_at, e.shingles_len)
    }
}

/// `{work}map/{index}.fragment`: the fragment's record, written last.
fn fragment_key(work: &str, index: usize) -> String {
    let (lines, _) = layout::map_fragment(work, index);
    match lines.strip_suffix(".lines") {
        Some(stem) => format!("{stem}.fragment"),
        None => format!("{lines}.fragment"),
    }
}

/// Shingle sets from the fragments' `.shingles` objects. An object is downloaded once, the
/// first time one of its sets is needed, into a local temporary file (one GET per object,
/// not one ranged GET per set: verifying a candidate pair reads two sets), then read like
/// the rayon executor's spill files.
pub struct FragmentSets {
    store: crate::store::Store,
    keys: Vec<(String, String)>,
    /// Holds the downloaded files; removed with them when the finish is done.
    _dir: tempfile::TempDir,
    downloaded: Vec<bool>,
    files: dedup::SpillFiles,
}

impl std::fmt::Debug for FragmentSets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragmentSets")
            .field("objects", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl FragmentSets {
    fn new(store: &crate::store::Store, keys: Vec<(String, String)>) -> Result<Self, BuildError> {
        let dir = tempfile::tempdir().map_err(|source| BuildError::Read {
            key: "(local directory for shingle sets)".into(),
            source,
        })?;
        let paths = (0..keys.len())
            .map(|i| dir.path().join(format!("{i:08}.shingles")))
            .collect();
        Ok(Self {
            store: store.clone(),
            downloaded: vec![false; keys.len()],
            keys,
            _dir: dir,
            files: dedup::SpillFiles::new(paths),
        })
    }

    fn download(&mut self, object: usize) -> Result<(), BuildError> {
        let key = &self.keys[object].1;
        let err = |source| BuildError::Read {
            key: key.clone(),
            source,
        };
        let mut reader = self.store.open_read(key)?;
        let mut file = std::fs::File::create(self.files.path(object)).map_err(err)?;
        std::io::copy(&mut reader, &mut file).map_err(err)?;
        self.downloaded[object] = true;
        Ok(())
    }
}

impl SetStore for FragmentSets {
    fn read_at(
        &mut self,
        object: u32,
        at: u64,
        len: u32,
        out: &mut Vec<u32>,
    ) -> Result<(), BuildError> {
        if !self.downloaded[object as usize] {
            self.download(object as usize)?;
        }
        self.files.read_at(object, at, len, out)
    }
}

/// The `.fragment` record: a magic line, the JSON header (fingerprint, index, the object's
/// output) and the sketches in little-endian binary (exact key, line, tokens, set offset
/// and length, id; then the band keys and the signature bytes).
mod codec {
    use super::super::dedup::{Entry, ObjectEntries};
    use super::super::phases::MappedOutput;
    use super::{BuildError, Fragment};

    const FORMAT: &[u8] = b"gatehouse map fragment ";
    const MAGIC: &[u8] = b"gatehouse map fragment v2\n";

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Header {
        fingerprint: String,
        index: usize,
        /// Sizes of the `.lines` and `.shingles` objects this record commits.
        data_sizes: [u64; 2],
        mapped: MappedOutput,
    }

    /// A fragment record of another format version (not reusable, not broken).
    pub(super) fn other_version(bytes: &[u8]) -> bool {
        bytes.starts_with(FORMAT) && !bytes.starts_with(MAGIC)
    }

    pub(super) fn encode(
        fingerprint: &str,
        data_sizes: [u64; 2],
        f: &Fragment,
    ) -> Result<Vec<u8>, BuildError> {
        let header = serde_json::to_vec(&Header {
            fingerprint: fingerprint.to_string(),
            index: f.index,
            data_sizes,
            mapped: f.mapped.clone(),
        })
        .map_err(|e| BuildError::Serialise("a map fragment", e))?;
        let e = &f.entries;
        let mut out = Vec::with_capacity(header.len() + 64 * e.entries.len() + 8 * e.bands.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&(e.entries.len() as u64).to_le_bytes());
        for x in &e.entries {
            out.extend_from_slice(&x.exact.to_le_bytes());
            out.extend_from_slice(&x.line.to_le_bytes());
            out.extend_from_slice(&x.tokens.to_le_bytes());
            out.extend_from_slice(&x.shingles_at.to_le_bytes());
            out.extend_from_slice(&x.shingles_len.to_le_bytes());
            out.extend_from_slice(&(x.id.len() as u32).to_le_bytes());
            out.extend_from_slice(x.id.as_bytes());
        }
        out.extend_from_slice(&(e.bands.len() as u64).to_le_bytes());
        for b in &e.bands {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out.extend_from_slice(&(e.low.len() as u64).to_le_bytes());
        out.extend_from_slice(&e.low);
        Ok(out)
    }

    struct Cursor<'a>(&'a [u8]);

    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if self.0.len() < n {
                return Err("cut short".into());
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Ok(a)
        }
        fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
            let mut a = [0u8; N];
            a.copy_from_slice(self.take(N)?);
            Ok(a)
        }
        fn u64(&mut self) -> Result<u64, String> {
            Ok(u64::from_le_bytes(self.array()?))
        }
        fn len(&mut self) -> Result<usize, String> {
            usize::try_from(self.u64()?).map_err(|_| "a length out of range".to_string())
        }
    }

    /// The fingerprint, the data sizes and the fragment, or what is wrong with the bytes.
    pub(super) fn decode(bytes: &[u8]) -> Result<(String, [u64; 2], Fragment), String> {
        let mut c = Cursor(bytes);
        if c.take(MAGIC.len())? != MAGIC {
            return Err("not a map fragment of this format".into());
        }
        let n = c.len()?;
        let header: Header = serde_json::from_slice(c.take(n)?).map_err(|e| e.to_string())?;
        let n = c.len()?;
        let mut entries = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let exact = u128::from_le_bytes(c.array()?);
            let line = c.u64()?;
            let tokens = c.u64()?;
            let shingles_at = c.u64()?;
            let shingles_len = u32::from_le_bytes(c.array()?);
            let id_len = u32::from_le_bytes(c.array()?) as usize;
            let id = String::from_utf8(c.take(id_len)?.to_vec()).map_err(|e| e.to_string())?;
            entries.push(Entry {
                exact,
                id,
                line,
                tokens,
                shingles_at,
                shingles_len,
            });
        }
        let n = c.len()?;
        let mut bands = Vec::with_capacity(n.min(1 << 24));
        for _ in 0..n {
            bands.push(c.u64()?);
        }
        let n = c.len()?;
        let low = c.take(n)?.to_vec();
        if !c.0.is_empty() {
            return Err("bytes after the end".into());
        }
        Ok((
            header.fingerprint,
            header.data_sizes,
            Fragment {
                index: header.index,
                mapped: header.mapped,
                entries: ObjectEntries {
                    entries,
                    bands,
                    low,
                },
            },
        ))
    }
}
