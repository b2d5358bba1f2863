//! The rayon executor's share of phase 1: one source object mapped (`map.rs`) on a worker
//! thread, its lines spilled (tagged with their split, or as quarantine entries) to a local
//! file in source order, its shingle sets to a second file, and its exact keys, band keys
//! and signature bytes kept in memory for deduplication. Spilling keeps memory bounded and
//! lets objects be processed in parallel while the final output stays in key order: the
//! spills are read back one after the other by the assembly.

use std::io::{BufRead, BufReader, BufWriter, Write};

use super::BuildError;
use super::dedup::{Entry, ObjectEntries, ShingleSpill};
use super::map::{self, MapContext, Mapped, Outcome, PENDING_SHA};
use super::phases::MappedOutput;
use super::split::Split;
use crate::store::Store;

/// Spill line tags: a record of a split, or a quarantine entry.
const TAG_TRAIN: u8 = b'T';
const TAG_VAL: u8 = b'V';
const TAG_TEST: u8 = b'E';
const TAG_QUARANTINE: u8 = b'Q';

fn tag(split: Split) -> u8 {
    match split {
        Split::Train => TAG_TRAIN,
        Split::Val => TAG_VAL,
        Split::Test => TAG_TEST,
    }
}

/// Where a spilled line goes.
pub(super) enum Destination {
    Record(Split),
    Quarantine,
}

pub(super) fn destination(t: u8) -> Option<Destination> {
    match t {
        TAG_TRAIN => Some(Destination::Record(Split::Train)),
        TAG_VAL => Some(Destination::Record(Split::Val)),
        TAG_TEST => Some(Destination::Record(Split::Test)),
        TAG_QUARANTINE => Some(Destination::Quarantine),
        _ => None,
    }
}

/// The result of one object, ready to be appended in key order.
#[derive(Debug)]
pub(super) struct ObjectOutput {
    pub mapped: MappedOutput,
    pub spill: tempfile::TempPath,
    /// The object's shingle sets, at the offsets its entries give.
    pub shingles: tempfile::TempPath,
}

/// Replaces the `dedup_status` value of a record line. The key with its bare quotes can
/// only be our structure: inside a JSON string every quote is escaped.
pub(super) fn patch_dedup_status(line: &mut Vec<u8>, status: &str) -> Result<(), BuildError> {
    const KEY: &[u8] = b"\"dedup_status\":\"";
    let at = memchr::memmem::rfind(line, KEY)
        .ok_or_else(|| BuildError::Internal("a spilled record has no dedup status".into()))?
        + KEY.len();
    let end = at
        + memchr::memchr(b'"', &line[at..]).ok_or_else(|| {
            BuildError::Internal("a spilled record has a broken dedup status".into())
        })?;
    line.splice(at..end, status.bytes());
    Ok(())
}

/// Patches the object's digest into a spilled record line. Provenance is serialised after
/// every field that can hold source text, so the last occurrence is always ours.
pub(super) fn patch_sha(line: &[u8], sha: &str, out: &mut Vec<u8>) -> Result<(), BuildError> {
    let at = memchr::memmem::rfind(line, PENDING_SHA.as_bytes()).ok_or_else(|| {
        BuildError::Internal("a spilled record has no provenance placeholder".into())
    })?;
    out.clear();
    out.extend_from_slice(&line[..at]);
    out.extend_from_slice(sha.as_bytes());
    out.extend_from_slice(&line[at + PENDING_SHA.len()..]);
    Ok(())
}

/// One object for a worker: the map's context, the object, and where to spill.
pub(super) struct Job<'a> {
    pub store: &'a Store,
    pub key: &'a str,
    pub map: MapContext<'a>,
    pub spill_dir: &'a std::path::Path,
}

/// Maps one object into its spill files: its output, and its exported records described
/// for deduplication (in spill order).
pub(super) fn process(job: &Job<'_>) -> Result<(ObjectOutput, ObjectEntries), BuildError> {
    let key = job.key;
    let spill_err = |source| BuildError::Read {
        key: format!("(local spill file for {key})"),
        source,
    };
    let spill = tempfile::NamedTempFile::new_in(job.spill_dir).map_err(spill_err)?;
    let mut out = BufWriter::with_capacity(1 << 20, spill.reopen().map_err(spill_err)?);
    let shingle_file = tempfile::NamedTempFile::new_in(job.spill_dir).map_err(spill_err)?;
    let mut shingles = ShingleSpill::new(shingle_file.reopen().map_err(spill_err)?);
    let (mapped, entries) = map_into(
        &job.map,
        job.store,
        key,
        &mut out,
        &mut shingles,
        &spill_err,
    )?;
    out.flush().map_err(spill_err)?;
    drop(out);
    shingles.finish().map_err(spill_err)?;
    let output = ObjectOutput {
        mapped,
        // Close the files but keep them: thousands of objects must not hold thousands of fds.
        spill: spill.into_temp_path(),
        shingles: shingle_file.into_temp_path(),
    };
    Ok((output, entries))
}

/// Maps object `key`, writing its lines (tagged, in source order) to `lines` and its
/// shingle sets to `shingles`; returns its output and its entries (sketches, with each
/// set's offset in `shingles`). Every executor that spills lines uses this layout.
pub(super) fn map_into<W: Write, S: Write>(
    ctx: &MapContext<'_>,
    store: &Store,
    key: &str,
    lines: &mut W,
    shingles: &mut ShingleSpill<S>,
    io_err: &dyn Fn(std::io::Error) -> BuildError,
) -> Result<(MappedOutput, ObjectEntries), BuildError> {
    let (mut entries, mut bands, mut low) = (Vec::new(), Vec::new(), Vec::new());
    let mut write = |m: &Mapped| -> Result<(), BuildError> {
        let t = match m.outcome {
            Outcome::Exported(split) => {
                let shingles_at = shingles.push(&m.sketch.shingles).map_err(io_err)?;
                entries.push(Entry {
                    exact: m.sketch.exact,
                    id: m.id.clone(),
                    line: m.source_line,
                    tokens: m.tokens,
                    shingles_at,
                    shingles_len: m.sketch.shingles.len() as u32,
                });
                bands.extend_from_slice(&m.sketch.bands);
                low.extend_from_slice(&m.sketch.low);
                tag(split)
            }
            Outcome::Quarantined { .. } => TAG_QUARANTINE,
            Outcome::Held | Outcome::Blocked => return Ok(()),
        };
        lines
            .write_all(&[t])
            .and_then(|()| lines.write_all(&m.line))
            .and_then(|()| lines.write_all(b"\n"))
            .map_err(io_err)
    };
    let mapped = map::map_object(ctx, store, key, &mut write)?;
    let output = MappedOutput {
        input: mapped.input,
        report: mapped.report,
        family: ctx.dataset.family.clone(),
    };
    Ok((
        output,
        ObjectEntries {
            entries,
            bands,
            low,
        },
    ))
}

/// Receives a spilled line's tag and the line (without tag and newline).
pub(super) type SpillFn<'a> = dyn FnMut(u8, &[u8]) -> Result<(), BuildError> + 'a;

/// Reads a spill back line by line.
pub(super) fn for_each_spilled(
    spill: &std::path::Path,
    f: &mut SpillFn<'_>,
) -> Result<(), BuildError> {
    let err = |source| BuildError::Read {
        key: "(local spill file)".into(),
        source,
    };
    let file = std::fs::File::open(spill).map_err(err)?;
    for_each_line(file, &err, f)
}

/// Reads spilled lines back from `reader`, one by one.
pub(super) fn for_each_line(
    reader: impl std::io::Read,
    err: &dyn Fn(std::io::Error) -> BuildError,
    f: &mut SpillFn<'_>,
) -> Result<(), BuildError> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(err)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if let Some((&t, rest)) = buf.split_first() {
            f(t, rest)?;
        }
    }
}
