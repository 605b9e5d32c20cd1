//! A client program (pg_dump, psql) run as a child: its stderr is collected for
//! the error message, and it is registered so a signal kills it with us.

use anyhow::{Context, Result};
use backup_common::cleanup;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

/// Enough stderr to explain a failure; a chatty child cannot fill our memory.
const STDERR_LIMIT: u64 = 64 * 1024;

pub struct Child {
    pub process: std::process::Child,
    stderr: Option<JoinHandle<String>>,
    reaped: bool,
}

impl Child {
    /// Spawns `cmd` with stderr captured; stdin and stdout are as `cmd` sets them.
    pub fn spawn(cmd: &mut Command, program: &Path, flag: &str) -> Result<Self> {
        let mut process = cleanup::spawn(cmd.stderr(Stdio::piped()))
            .map_err(|e| crate::conn::spawn_error(program, &e, flag))?;
        let mut pipe = process.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = (&mut pipe).take(STDERR_LIMIT).read_to_end(&mut text);
            // Drain the rest so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            String::from_utf8_lossy(&text).into_owned()
        });
        Ok(Child {
            process,
            stderr: Some(stderr),
            reaped: false,
        })
    }

    /// Waits for the child; returns its status and what it printed on stderr.
    pub fn wait(mut self) -> Result<(ExitStatus, String)> {
        let status = self
            .process
            .wait()
            .context("cannot wait for child process")?;
        self.reaped = true;
        cleanup::forget_child(self.process.id());
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ok((status, stderr))
    }

    /// Kills the child at once (SIGKILL) so it cannot finish or commit anything.
    pub fn kill(mut self) -> Result<(ExitStatus, String)> {
        let _ = self.process.kill();
        self.wait()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.process.kill();
            let _ = self.process.wait();
            cleanup::forget_child(self.process.id());
        }
    }
}
