//! A writer that hashes and counts what passes through it, so an artifact is
//! hashed while it is written instead of being read a second time.

use sha2::{Digest, Sha256};
use std::io::{self, Write};

pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The inner writer, the lowercase hex sha256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Hash only what the inner writer accepted, so a short write cannot make
        // the hash describe bytes that are not in the file.
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts what passes through it. A read error is
/// also kept, so a caller can tell that it was the source (a download, say)
/// that failed and not whatever it was being copied into.
pub struct HashingReader<R> {
    pub inner: R,
    hasher: Sha256,
    pub bytes: u64,
    pub error: Option<io::Error>,
}

impl<R: io::Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            error: None,
        }
    }

    /// The lowercase hex sha256 of everything read.
    pub fn sha256(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                let kept = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(kept)
            }
        }
    }
}

/// Copies `from` into `to` while hashing; returns the sha256. A failure says
/// which side it was: `Err(Ok(e))` reading, `Err(Err(e))` writing.
pub fn copy_hashed(
    from: impl io::Read,
    to: &mut impl io::Write,
) -> Result<String, Result<io::Error, io::Error>> {
    let mut reader = HashingReader::new(from);
    match io::copy(&mut reader, to) {
        Ok(_) => Ok(reader.sha256()),
        Err(e) => Err(match reader.error.take() {
            Some(read) => Ok(read),
            None => Err(e),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_hashes_and_counts_what_it_passes_on() {
        let mut r = HashingReader::new(&b"abc"[..]);
        let mut out = Vec::new();
        io::copy(&mut r, &mut out).unwrap();
        assert_eq!((out.as_slice(), r.bytes), (&b"abc"[..], 3));
        assert_eq!(
            r.sha256(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hashes_like_sha256sum() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, sha, n) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
