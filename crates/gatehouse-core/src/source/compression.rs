//! Compressed sources: gzip (`.gz`, multi-member as `bgzip` and `cat a.gz b.gz` write it)
//! and zstd (`.zst`, `.zstd`, any number of frames), recognised by their magic bytes or, failing
//! that, the key's extension. The object is decompressed as a stream under the format
//! adapter, so every format reads compressed; the build still hashes the stored (compressed)
//! bytes.
//!
//! A decoder failure (a corrupt or truncated stream) is told apart from a failure to read the
//! stored object: the first is bad data, quarantined as a broken structure naming the key;
//! the second is the store's, an error.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

/// How an object's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression of an object from its first bytes, else its key's extension (so a
    /// `.gz` object whose bytes are not gzip is read as gzip, and quarantined as corrupt).
    pub fn detect(key: &str, head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Self::of_key(key)
        }
    }

    /// The compression a key's extension names.
    pub fn of_key(key: &str) -> Compression {
        let k = key.to_ascii_lowercase();
        if k.ends_with(".gz") {
            Compression::Gzip
        } else if k.ends_with(".zst") || k.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// `key` without its compression extension (`a.jsonl.gz` → `a.jsonl`): the container is
/// judged by what is inside.
pub fn inner_key(key: &str) -> &str {
    let lower = key.to_ascii_lowercase();
    for ext in [".gz", ".zst", ".zstd"] {
        if lower.ends_with(ext) {
            return &key[..key.len() - ext.len()];
        }
    }
    key
}

/// The error a decoder failure is reported as: it carries no source bytes, only where the
/// stream broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub compression: Compression,
    /// Decompressed bytes handed out before the failure.
    pub after_bytes: u64,
    /// The decompressed line the failure came on (1-based).
    pub line: u64,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} stream is corrupt or truncated after {} decompressed bytes (line {})",
            self.compression.name(),
            self.after_bytes,
            self.line
        )
    }
}

impl std::error::Error for Corrupt {}

impl Corrupt {
    /// The decoder failure inside an I/O error, if that is what it is.
    pub fn of(e: &io::Error) -> Option<&Corrupt> {
        e.get_ref()?.downcast_ref::<Corrupt>()
    }
}

/// Notes whether reading the stored object itself failed.
struct Watched<R> {
    inner: R,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|_| self.failed.set(true))
    }
}

/// The decompressed stream of an object.
pub(crate) struct Decompressed<'a> {
    decoder: Box<dyn Read + 'a>,
    source_failed: Rc<Cell<bool>>,
    compression: Compression,
    bytes: u64,
    newlines: u64,
}

impl fmt::Debug for Decompressed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressed")
            .field("compression", &self.compression)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<'a> Decompressed<'a> {
    /// Wraps `raw` (positioned at the object's first byte) in the decoder of `compression`.
    pub fn new(raw: impl BufRead + 'a, compression: Compression) -> io::Result<Self> {
        let source_failed = Rc::new(Cell::new(false));
        let watched = Watched {
            inner: raw,
            failed: Rc::clone(&source_failed),
        };
        let decoder: Box<dyn Read + 'a> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(watched)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(watched)?),
            Compression::None => Box::new(watched),
        };
        Ok(Self {
            decoder,
            source_failed,
            compression,
            bytes: 0,
            newlines: 0,
        })
    }
}

impl Read for Decompressed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.decoder.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                self.newlines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
                Ok(n)
            }
            Err(e) if self.source_failed.get() || e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Corrupt {
                    compression: self.compression,
                    after_bytes: self.bytes,
                    line: self.newlines + 1,
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(bytes: &[u8], c: Compression) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Decompressed::new(bytes, c)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn detection_by_magic_then_extension_and_the_inner_key() {
        assert_eq!(
            Compression::detect("a.jsonl", &gzip(b"x")),
            Compression::Gzip
        );
        let z = zstd::encode_all(&b"x"[..], 3).unwrap();
        assert_eq!(Compression::detect("a", &z), Compression::Zstd);
        assert_eq!(Compression::detect("a.JSONL.GZ", b"{}"), Compression::Gzip);
        assert_eq!(Compression::detect("a.csv.zst", b"a,b"), Compression::Zstd);
        assert_eq!(Compression::detect("a.jsonl", b"{}"), Compression::None);
        assert_eq!(inner_key("d/a.JSON.gz"), "d/a.JSON");
        assert_eq!(inner_key("d/a.csv.zstd"), "d/a.csv");
        assert_eq!(inner_key("d/a.csv"), "d/a.csv");
    }

    #[test]
    fn concatenated_members_and_frames_are_all_read() {
        let mut two = gzip(b"a\n");
        two.extend(gzip(b"b\n"));
        assert_eq!(read_all(&two, Compression::Gzip).unwrap(), b"a\nb\n");
        let mut frames = zstd::encode_all(&b"a\n"[..], 3).unwrap();
        frames.extend(zstd::encode_all(&b"b\n"[..], 3).unwrap());
        assert_eq!(read_all(&frames, Compression::Zstd).unwrap(), b"a\nb\n");
    }

    #[test]
    fn truncated_and_garbled_streams_are_corrupt_not_short() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let gz = gzip(&data);
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for (bytes, c) in [(&gz, Compression::Gzip), (&zs, Compression::Zstd)] {
            let cut = &bytes[..bytes.len() / 2];
            let e = read_all(cut, c).unwrap_err();
            let corrupt = Corrupt::of(&e).expect("a decoder failure");
            assert_eq!(corrupt.compression, c);
            let mut garbled = bytes.clone();
            let mid = garbled.len() / 2;
            garbled[mid..mid + 16].fill(0xAA);
            assert!(Corrupt::of(&read_all(&garbled, c).unwrap_err()).is_some());
        }
        assert!(
            Corrupt::of(&read_all(b"not gzip at all", Compression::Gzip).unwrap_err()).is_some()
        );
    }

    #[test]
    fn a_failing_store_read_stays_an_error_of_the_store() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("connection reset"))
            }
        }
        let mut d = Decompressed::new(io::BufReader::new(Broken), Compression::Gzip).unwrap();
        let e = d.read(&mut [0; 16]).unwrap_err();
        assert!(Corrupt::of(&e).is_none());
    }
}
