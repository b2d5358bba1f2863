//! Content digests in the one format gatehouse writes everywhere: `sha256:<64 lowercase hex>`.
//!
//! Reports, manifests and signoffs compare digests as strings, so there is exactly one
//! way to produce them.

use sha2::{Digest, Sha256};

/// Streaming sha256 that renders as `sha256:<hex>`.
#[derive(Debug, Default, Clone)]
pub struct Sha256Digest(Sha256);

impl Sha256Digest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// `sha256:` followed by 64 lowercase hex digits.
    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.0.finalize()))
    }
}

/// Digest of one byte slice, as `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    let mut d = Sha256Digest::new();
    d.update(bytes);
    d.finish()
}

/// A reader that hashes and counts every byte read through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    digest: Sha256Digest,
    bytes: u64,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            digest: Sha256Digest::new(),
            bytes: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest and byte count of everything read.
    pub fn finish(self) -> (String, u64) {
        (self.digest.finish(), self.bytes)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_empty_input_is_the_well_known_value() {
        assert_eq!(
            sha256(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut d = Sha256Digest::new();
        d.update(b"ab");
        d.update(b"c");
        assert_eq!(d.finish(), sha256(b"abc"));
    }
}
