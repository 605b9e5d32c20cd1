//! Requests in flight, oldest first, bounded in number and in bytes: a
//! restore's background uploads and a drill's read-back. With small objects
//! the cost is a request each, and a server answers many at once faster than
//! one after the other; the bounds keep memory flat whatever the bucket.

use anyhow::Result;
use std::collections::VecDeque;

/// Objects up to this size are held whole, several at once; larger ones are
/// streamed, one at a time.
pub const WHOLE_MAX: u64 = 4 << 20;
/// At most this many requests in flight …
const IN_FLIGHT: usize = 64;
/// … holding at most this many bytes.
const BUDGET: u64 = 16 << 20;

pub struct Window<T> {
    in_flight: VecDeque<(T, u64)>,
    bytes: u64,
}

impl<T> Default for Window<T> {
    fn default() -> Self {
        Window {
            in_flight: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<T> Window<T> {
    /// Adds `item`, holding `bytes`; hands the oldest ones to `done` (which
    /// waits for them) while over the bounds.
    pub fn push(
        &mut self,
        item: T,
        bytes: u64,
        mut done: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        self.in_flight.push_back((item, bytes));
        self.bytes += bytes;
        while self.in_flight.len() > IN_FLIGHT || self.bytes > BUDGET {
            self.finish_one(&mut done)?;
        }
        Ok(())
    }

    /// Hands every item left to `done`, oldest first.
    pub fn finish(&mut self, mut done: impl FnMut(T) -> Result<()>) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.finish_one(&mut done)?;
        }
        Ok(())
    }

    fn finish_one(&mut self, done: &mut impl FnMut(T) -> Result<()>) -> Result<()> {
        if let Some((item, bytes)) = self.in_flight.pop_front() {
            self.bytes -= bytes;
            done(item)?;
        }
        Ok(())
    }
}
