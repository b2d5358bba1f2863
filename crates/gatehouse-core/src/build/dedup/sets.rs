//! The rayon executor's shingle sets: written to one local file per object during the map
//! (`ShingleSpill`), read back by offset during the clustering (`SetReader`, with a bounded
//! cache), and the pair oracle that judges candidate pairs on demand from them.

use std::fs::File;
use std::io::{BufWriter, Write};

use rustc_hash::FxHashMap;

use super::near::{PairOracle, PairVerdict, judge};
use super::{ObjectEntries, Ranked};
use crate::build::BuildError;

/// Writes an object's shingle sets.
pub(in crate::build) struct ShingleSpill {
    out: BufWriter<File>,
    at: u64,
}

impl ShingleSpill {
    pub fn new(file: File) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 20, file),
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

    pub fn finish(mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Reads shingle sets back from the objects' shingle files, keeping a few files open.
struct SetReader<'a> {
    objects: &'a [ObjectEntries],
    open: FxHashMap<u32, File>,
    bytes: Vec<u8>,
    /// Recently read sets (a record is often compared with several representatives),
    /// bounded in total elements.
    cache: FxHashMap<(u32, u32), Vec<u32>>,
    cached: usize,
}

/// Shingle ids kept in the set cache (4 bytes each): 64 MB.
const CACHE_ELEMENTS: usize = 16 << 20;

impl<'a> SetReader<'a> {
    fn new(objects: &'a [ObjectEntries]) -> Self {
        Self {
            objects,
            open: FxHashMap::default(),
            bytes: Vec::new(),
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
        self.read_file((o, i), out)?;
        if self.cached + out.len() > CACHE_ELEMENTS {
            self.cache.clear();
            self.cached = 0;
        }
        self.cached += out.len();
        self.cache.insert((o, i), out.clone());
        Ok(())
    }

    fn read_file(&mut self, (o, i): (u32, u32), out: &mut Vec<u32>) -> Result<(), BuildError> {
        use std::io::{Read, Seek, SeekFrom};
        let err = |source| BuildError::Read {
            key: "(local shingle spill file)".into(),
            source,
        };
        let object = &self.objects[o as usize];
        let e = &object.entries[i as usize];
        if self.open.len() >= 64 && !self.open.contains_key(&o) {
            self.open.clear();
        }
        let file = match self.open.entry(o) {
            std::collections::hash_map::Entry::Occupied(f) => f.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(File::open(&object.shingles).map_err(err)?)
            }
        };
        self.bytes.resize(4 * e.shingles_len as usize, 0);
        file.seek(SeekFrom::Start(e.shingles_at)).map_err(err)?;
        file.read_exact(&mut self.bytes).map_err(err)?;
        out.clear();
        out.extend(
            self.bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
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
    pub fn new(ranked: &'a Ranked<'a>, perms: usize, floor: f64) -> Self {
        Self {
            ranked,
            sets: SetReader::new(ranked.objects),
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
