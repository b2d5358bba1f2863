//! Shingle sets: where an executor keeps them (`SetStore`; the rayon executor writes one
//! local file per object during the map, `ShingleSpill`, and reads it back by offset,
//! `SpillFiles`), a bounded cache over them (`SetReader`), and the pair oracle that judges
//! candidate pairs on demand from them (`OnDemand`).

use std::fs::File;
use std::io::{BufWriter, Write};

use rustc_hash::FxHashMap;

use super::near::{PairOracle, PairVerdict, judge};
use super::{ObjectEntries, Ranked};
use crate::build::BuildError;

/// Writes an object's shingle sets.
pub(in crate::build) struct ShingleSpill<W: Write> {
    out: BufWriter<W>,
    at: u64,
}

impl<W: Write> ShingleSpill<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 20, out),
            at: 0,
        }
    }

    /// Appends a set; returns where it starts.
    pub fn push(&mut self, set: &[u32]) -> std::io::Result<u64> {
        let at = self.at;
        for x in set {
            self.out.write_all(&x.to_le_bytes())?;
        }
        self.at += 4 * set.len() as u64;
        Ok(at)
    }

    /// Flushes the sets; returns the writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Where an executor keeps the shingle sets: `read_at` reads the set of `len` ids that
/// starts at `at` in object `object`'s set storage.
pub trait SetStore {
    fn read_at(
        &mut self,
        object: u32,
        at: u64,
        len: u32,
        out: &mut Vec<u32>,
    ) -> Result<(), BuildError>;
}

/// Decodes a set stored as little-endian `u32`s.
fn decode_set(bytes: &[u8], out: &mut Vec<u32>) {
    out.clear();
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
}

/// The rayon executor's set storage: one local spill file per object, a few kept open.
#[derive(Debug)]
pub(in crate::build) struct SpillFiles {
    paths: Vec<std::path::PathBuf>,
    open: FxHashMap<u32, File>,
    bytes: Vec<u8>,
}

impl SpillFiles {
    pub fn new(paths: Vec<std::path::PathBuf>) -> Self {
        Self {
            paths,
            open: FxHashMap::default(),
            bytes: Vec::new(),
        }
    }

    /// Where object `object`'s sets are.
    pub fn path(&self, object: usize) -> &std::path::Path {
        &self.paths[object]
    }
}

impl SetStore for SpillFiles {
    fn read_at(
        &mut self,
        object: u32,
        at: u64,
        len: u32,
        out: &mut Vec<u32>,
    ) -> Result<(), BuildError> {
        use std::io::{Read, Seek, SeekFrom};
        let err = |source| BuildError::Read {
            key: "(local shingle spill file)".into(),
            source,
        };
        if self.open.len() >= 64 && !self.open.contains_key(&object) {
            self.open.clear();
        }
        let file = match self.open.entry(object) {
            std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(File::open(&self.paths[object as usize]).map_err(err)?)
            }
        };
        self.bytes.resize(4 * len as usize, 0);
        file.seek(SeekFrom::Start(at)).map_err(err)?;
        file.read_exact(&mut self.bytes).map_err(err)?;
        decode_set(&self.bytes, out);
        Ok(())
    }
}

/// Reads records' shingle sets from an executor's set storage, with a bounded cache.
struct SetReader<'a> {
    objects: &'a [ObjectEntries],
    store: &'a mut dyn SetStore,
    /// Recently read sets (a record is often compared with several representatives),
    /// bounded in total elements.
    cache: FxHashMap<(u32, u32), Vec<u32>>,
    cached: usize,
}

/// Shingle ids kept in the set cache (4 bytes each): 64 MB.
const CACHE_ELEMENTS: usize = 16 << 20;

impl<'a> SetReader<'a> {
    fn new(objects: &'a [ObjectEntries], store: &'a mut dyn SetStore) -> Self {
        Self {
            objects,
            store,
            cache: FxHashMap::default(),
            cached: 0,
        }
    }

    fn read(&mut self, (o, i): (u32, u32), out: &mut Vec<u32>) -> Result<(), BuildError> {
        if let Some(set) = self.cache.get(&(o, i)) {
            out.clear();
            out.extend_from_slice(set);
            return Ok(());
        }
        let e = &self.objects[o as usize].entries[i as usize];
        self.store.read_at(o, e.shingles_at, e.shingles_len, out)?;
        if self.cached + out.len() > CACHE_ELEMENTS {
            self.cache.clear();
            self.cached = 0;
        }
        self.cached += out.len();
        self.cache.insert((o, i), out.clone());
        Ok(())
    }
}

/// Judges the pairs the clustering asks for, when it asks: signature estimates from memory,
/// shingle sets from the spill files (the representative's read once per representative).
pub(super) struct OnDemand<'a> {
    ranked: &'a Ranked<'a>,
    sets: SetReader<'a>,
    perms: usize,
    floor: f64,
    rep: Option<u32>,
    rep_set: Vec<u32>,
    other: Vec<u32>,
}

impl<'a> OnDemand<'a> {
    pub fn new(
        ranked: &'a Ranked<'a>,
        sets: &'a mut dyn SetStore,
        perms: usize,
        floor: f64,
    ) -> Self {
        Self {
            ranked,
            sets: SetReader::new(ranked.objects, sets),
            perms,
            floor,
            rep: None,
            rep_set: Vec::new(),
            other: Vec::new(),
        }
    }
}

impl PairOracle for OnDemand<'_> {
    fn verdict(&mut self, representative: u32, other: u32) -> Result<PairVerdict, BuildError> {
        let (r, m) = (representative, other);
        let Self {
            ranked,
            sets,
            rep,
            rep_set,
            other,
            ..
        } = self;
        judge(
            ranked.low(r, self.perms),
            ranked.low(m, self.perms),
            self.floor,
            || {
                if *rep != Some(r) {
                    sets.read(ranked.at(r), rep_set)?;
                    *rep = Some(r);
                }
                sets.read(ranked.at(m), other)?;
                Ok((rep_set.as_slice(), other.as_slice()))
            },
        )
    }
}
