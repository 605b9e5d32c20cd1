//! The frame every component tool's `main` runs in: signal cleanup, the result
//! record on stdout, the one-line error on stderr and the exit code.

use crate::record::ResultRecord;
use crate::{cleanup, exit, log};
use std::time::Instant;

/// `-o -` sends the artifact to stdout; without `-o` it goes into the backup
/// tree; anything else is a usage error (files are published only into the tree).
pub fn to_stdout(output: Option<&str>) -> anyhow::Result<bool> {
    match output {
        None => Ok(false),
        Some("-") => Ok(true),
        Some(other) => Err(crate::usage(format!(
            "-o {other}: only `-o -` (stdout) is supported; files go to --backup-dir"
        ))),
    }
}

/// Runs a `backup`. `body` returns the success record, or `None` when the
/// artifact went to stdout (`-o -`), in which case stdout carries no record.
pub fn run_backup(
    component: &'static str,
    to_stdout: bool,
    body: impl FnOnce() -> anyhow::Result<Option<ResultRecord>>,
) -> i32 {
    let started = Instant::now();
    let installed = cleanup::install(move |signal| {
        let message = format!("interrupted by {signal}; nothing was published");
        log::log(component, &message);
        if !to_stdout {
            let mut record = ResultRecord::failed(component, message);
            record.duration_seconds = started.elapsed().as_secs();
            println!("{}", record.to_line());
        }
    });
    if let Err(e) = installed {
        log::log(component, &format!("cannot watch for signals: {e}"));
    }
    match body() {
        Ok(record) => {
            if let Some(mut record) = record {
                record.duration_seconds = started.elapsed().as_secs();
                println!("{}", record.to_line());
            }
            0
        }
        Err(err) => {
            let message = exit::one_line(&err);
            log::log(component, &format!("backup failed: {message}"));
            if !to_stdout {
                let mut record = ResultRecord::failed(component, message);
                record.duration_seconds = started.elapsed().as_secs();
                println!("{}", record.to_line());
            }
            exit::code(&err)
        }
    }
}

/// Runs any other subcommand (restore, list, ...): the same signal cleanup and
/// error mapping, no result record.
pub fn run(component: &'static str, what: &str, body: impl FnOnce() -> anyhow::Result<()>) -> i32 {
    let what = what.to_owned();
    let message = format!("{what} interrupted");
    if let Err(e) =
        cleanup::install(move |signal| log::log(component, &format!("{message} by {signal}")))
    {
        log::log(component, &format!("cannot watch for signals: {e}"));
    }
    match body() {
        Ok(()) => 0,
        Err(err) => {
            log::log(
                component,
                &format!("{what} failed: {}", exit::one_line(&err)),
            );
            exit::code(&err)
        }
    }
}
