//! A list too long to hold in memory (a bucket's keys, an archive's objects),
//! kept in a temp file instead: one JSON value per line, so it is read back
//! one item at a time. The file is unnamed (`O_TMPFILE`, private to this
//! process): it is never visible in the folder and no exit path — error,
//! signal, `kill -9` — can leave it behind.
//!
//! Items after the first start with a comma, so the file is also the inside
//! of a JSON array as it is (`a⏎,b⏎,c⏎`): the manifest is written around it
//! without reading it into memory.

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub struct Spool<T> {
    file: File,
    out: BufWriter<File>,
    count: u64,
    bytes: u64,
    item: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Spool<T> {
    /// An empty spool in `dir` (next to what it belongs to, where there is
    /// room for it), or in TMPDIR if `dir` takes no file (read-only).
    pub fn new(dir: &Path) -> Result<Spool<T>> {
        let file = tempfile::tempfile_in(dir)
            .or_else(|_| tempfile::tempfile())
            .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
        Ok(Spool {
            out: BufWriter::with_capacity(64 << 10, file.try_clone()?),
            file,
            count: 0,
            bytes: 0,
            item: PhantomData,
        })
    }

    pub fn push(&mut self, item: &T) -> Result<()> {
        let mut line = if self.count == 0 {
            Vec::with_capacity(256)
        } else {
            b",".to_vec()
        };
        serde_json::to_writer(&mut line, item)?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .context("cannot write a temp file (disk full?)")?;
        self.count += 1;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// How many items it holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every item, in the order pushed, read one at a time.
    pub fn iter(&mut self) -> Result<Items<'_, T>> {
        Ok(Items {
            lines: BufReader::with_capacity(64 << 10, self.raw()?),
            line: Vec::new(),
            item: PhantomData,
        })
    }

    /// The items as the inside of a JSON array, and its length in bytes.
    pub fn raw(&mut self) -> Result<At<'_>> {
        self.out
            .flush()
            .context("cannot write a temp file (disk full?)")?;
        Ok(At {
            file: &self.file,
            at: 0,
            end: self.bytes,
        })
    }

    /// The length of [`Spool::raw`].
    pub fn raw_len(&self) -> u64 {
        self.bytes
    }
}

/// Reads a spool's file from its start, independently of where it is
/// written (positional reads).
pub struct At<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = (self.end - self.at).min(buf.len() as u64) as usize;
        if room == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..room], self.at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
}

pub struct Items<'a, T> {
    lines: BufReader<At<'a>>,
    line: Vec<u8>,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for Items<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        self.line.clear();
        match self.lines.read_until(b'\n', &mut self.line) {
            Ok(0) => None,
            Ok(_) => {
                let json = self.line.strip_prefix(b",").unwrap_or(&self.line);
                Some(serde_json::from_slice(json).context("a temp file reads back wrong"))
            }
            Err(e) => Some(Err(e).context("cannot read a temp file")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_in_order_and_the_raw_form_is_a_json_array() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool: Spool<String> = Spool::new(dir.path()).unwrap();
        assert!(spool.iter().unwrap().next().is_none());
        for s in ["a", "line\nbreak", "ü"] {
            spool.push(&s.to_owned()).unwrap();
        }
        let back: Vec<String> = spool.iter().unwrap().map(Result::unwrap).collect();
        assert_eq!(back, ["a", "line\nbreak", "ü"]);
        let mut raw = String::new();
        spool.raw().unwrap().read_to_string(&mut raw).unwrap();
        assert_eq!(raw.len() as u64, spool.raw_len());
        let array: Vec<String> = serde_json::from_str(&format!("[{raw}]")).unwrap();
        assert_eq!(array, back);
        // Nothing shows in the folder, during or after.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
