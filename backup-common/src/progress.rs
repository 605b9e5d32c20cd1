//! Progress on stderr when it is a terminal — bytes, rate, time left — and
//! nothing at all otherwise: cron lines and logs stay what they were.

use std::io::{IsTerminal, Read, Write};

/// A progress bar, or nothing (stderr is not a terminal). Cheap to clone: the
/// clones draw the same bar.
#[derive(Clone)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Bytes towards `total` (a bar with the time left), or towards an
    /// unknown end (a running count and the rate). `what` leads the line.
    pub fn bytes(what: &str, total: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let (bar, template) = match total {
            Some(total) => (
                indicatif::ProgressBar::new(total),
                "{msg} {bar:24} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            None => (
                indicatif::ProgressBar::new_spinner(),
                "{msg} {spinner} {bytes} {bytes_per_sec} {elapsed}",
            ),
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        Progress { bar: Some(bar) }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn set_message(&self, what: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.into());
        }
    }

    /// Clears the line, so that the tool's own lines (its record, its errors)
    /// are never mixed with it.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Counts what `inner` reads or what is written into it; the bar is
    /// cleared when the wrapper is dropped.
    pub fn counting<T>(&self, inner: T) -> Counted<T> {
        Counted {
            inner,
            progress: self.clone(),
        }
    }
}

/// A file being read, its size the total: what every restore shows.
pub fn reading(what: &str, file: std::fs::File) -> Counted<std::fs::File> {
    let total = file.metadata().ok().map(|m| m.len());
    Progress::bytes(what, total).counting(file)
}

/// A reader or writer whose bytes move the bar.
pub struct Counted<T> {
    inner: T,
    progress: Progress,
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.progress.finish();
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_nothing_is_drawn_and_bytes_pass_through() {
        // cargo test's stderr is captured: not a terminal.
        let p = Progress::bytes("x", Some(10));
        assert!(p.bar.is_none());
        let mut out = Vec::new();
        std::io::copy(&mut p.counting(&b"hello"[..]), &mut p.counting(&mut out)).unwrap();
        assert_eq!(out, b"hello");
    }
}
