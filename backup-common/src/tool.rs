//! The frame every component tool's `main` runs in: signal cleanup, the result
//! record on stdout, the one-line error on stderr and the exit code.

use crate::publish::{self, PendingArtifact, Published};
use crate::record::ResultRecord;
use crate::{cleanup, exit, log, ExitStatus};
use std::io::Write;
use std::time::Instant;

/// Starts watching for signals under the tool's name before anything else
/// happens; `run_backup` and `run` then say what a signal means for their run.
/// Call it first thing in `main`.
pub fn watch_signals(component: &'static str) {
    // The arguments are not parsed yet; a `backup` that writes to the tree owes
    // a record even now (backup.sh reads it), one to stdout (`-o -`) must not.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let owes_record = args.first().is_some_and(|a| a == "backup")
        && !args
            .windows(2)
            .any(|w| matches!(w[0].as_str(), "-o" | "--output") && w[1] == "-")
        && !args.iter().any(|a| a == "-o-" || a == "--output=-");
    if let Err(e) = cleanup::install(move |signal| {
        let message = format!("interrupted by {signal} before it started; nothing was done");
        log::log(component, &message);
        if owes_record {
            print_record(&ResultRecord::failed(component, message));
        }
        ExitStatus::Failed as i32
    }) {
        log::log(component, &format!("cannot watch for signals: {e}"));
    }
    cleanup::failpoint("tool::started");
}

/// One `backup` run: publishes its artifacts and prints its record — one per
/// series when the tool backs up several (`BackupRun::series`).
pub struct BackupRun {
    component: &'static str,
    started: Instant,
    to_stdout: bool,
    /// How many success records this run printed.
    reported: std::cell::Cell<usize>,
    /// The series being backed up (shared with the signal hook, which names it
    /// in its failed record) and when it began.
    current: std::sync::Arc<std::sync::Mutex<Option<(String, Instant)>>>,
    /// The exit status of the first series that failed.
    series_failed: std::cell::Cell<Option<i32>>,
}

impl BackupRun {
    pub fn component(&self) -> &'static str {
        self.component
    }

    /// Backs up one series (a database, a bucket) of several: its records name
    /// it, a failure is its own failed record and the run goes on with the
    /// next series (the run's exit status is then the first failure's), and a
    /// signal fails this series and stops the run.
    pub fn series(&self, name: &str, body: impl FnOnce(&BackupRun) -> anyhow::Result<()>) {
        self.begin_series(name);
        let reported_before = self.reported.get();
        let result = body(self);
        cleanup::critical(|registry| {
            match result {
                Ok(()) => {}
                // Published and reported: what failed afterwards is a warning.
                Err(err) if self.reported.get() > reported_before => log::log(
                    self.component,
                    &format!(
                        "warning: {name}: after publishing: {}",
                        exit::one_line(&err)
                    ),
                ),
                Err(err) => {
                    let message = exit::one_line(&err);
                    log::log(
                        self.component,
                        &format!("backup failed ({name}): {message}"),
                    );
                    if !self.to_stdout {
                        print_record(&self.failed_record(message));
                    }
                    if self.series_failed.get().is_none() {
                        self.series_failed.set(Some(exit::code(&err)));
                    }
                }
            }
            *lock_current(&self.current) = None;
            let failed = self.series_failed.get();
            let component = self.component;
            // Between series: everything begun is reported.
            registry.on_interrupt(move |signal| {
                log::log(
                    component,
                    &format!(
                        "interrupted by {signal} between series; what was published is complete"
                    ),
                );
                failed.unwrap_or(ExitStatus::Failed as i32)
            });
        });
    }

    fn begin_series(&self, name: &str) {
        *lock_current(&self.current) = Some((name.to_owned(), Instant::now()));
        let (component, to_stdout, current) =
            (self.component, self.to_stdout, self.current.clone());
        let installed = cleanup::install(move |signal| {
            let series = lock_current(&current).clone();
            let what = series
                .as_ref()
                .map(|(s, _)| format!(" for {s}"))
                .unwrap_or_default();
            let message = format!("interrupted by {signal}; nothing was published{what}");
            log::log(component, &message);
            if !to_stdout {
                let mut record = ResultRecord::failed(component, message);
                if let Some((s, started)) = series {
                    record.series = Some(s);
                    record.duration_seconds = started.elapsed().as_secs();
                }
                print_record(&record);
            }
            ExitStatus::Failed as i32
        });
        if let Err(e) = installed {
            log::log(component, &format!("cannot watch for signals: {e}"));
        }
    }

    /// The series being backed up and its start, or the whole run's.
    fn scope(&self) -> (Option<String>, Instant) {
        match lock_current(&self.current).clone() {
            Some((name, started)) => (Some(name), started),
            None => (None, self.started),
        }
    }

    fn failed_record(&self, message: String) -> ResultRecord {
        let (series, started) = self.scope();
        let mut record = ResultRecord::failed(self.component, message);
        record.series = series;
        record.duration_seconds = started.elapsed().as_secs();
        record
    }

    /// Publishes `pending` (every artifact of this run) as one unit with the
    /// success record that `record` makes: once this returns `Ok`, the record is
    /// on stdout and a signal no longer turns the run into a failure.
    pub fn publish(
        &self,
        pending: Vec<PendingArtifact>,
        record: impl FnOnce(&[Published]) -> ResultRecord,
    ) -> anyhow::Result<Vec<Published>> {
        assert!(!self.to_stdout, "-o - publishes nothing");
        let component = self.component;
        let (series, started) = self.scope();
        let failed_before = self.series_failed.get();
        publish::publish_all(pending, |published, registry| {
            let mut record = record(published);
            record.duration_seconds = started.elapsed().as_secs();
            record.series = series;
            print_record(&record);
            self.reported.set(self.reported.get() + 1);
            registry.on_interrupt(move |signal| {
                log::log(
                    component,
                    &format!("interrupted by {signal} after publishing; the backup is complete"),
                );
                failed_before.unwrap_or(ExitStatus::Success as i32)
            });
        })
    }
}

fn lock_current(
    current: &std::sync::Mutex<Option<(String, Instant)>>,
) -> std::sync::MutexGuard<'_, Option<(String, Instant)>> {
    current.lock().unwrap_or_else(|e| e.into_inner())
}

fn print_record(record: &ResultRecord) {
    let mut out = std::io::stdout().lock();
    // A closed stdout loses the record, which backup.sh turns into a failure.
    let _ = writeln!(out, "{}", record.to_line()).and_then(|()| out.flush());
}

/// Runs a `backup`. `body` publishes through `BackupRun::publish` (which prints
/// the success record), or streams to stdout (`-o -`), in which case stdout
/// carries no record.
pub fn run_backup(
    component: &'static str,
    to_stdout: bool,
    body: impl FnOnce(&BackupRun) -> anyhow::Result<()>,
) -> i32 {
    let run = BackupRun {
        component,
        started: Instant::now(),
        to_stdout,
        reported: std::cell::Cell::new(0),
        current: Default::default(),
        series_failed: std::cell::Cell::new(None),
    };
    let started = run.started;
    let installed = cleanup::install(move |signal| {
        let message = format!("interrupted by {signal}; nothing was published");
        log::log(component, &message);
        if !to_stdout {
            let mut record = ResultRecord::failed(component, message);
            record.duration_seconds = started.elapsed().as_secs();
            print_record(&record);
        }
        ExitStatus::Failed as i32
    });
    if let Err(e) = installed {
        log::log(component, &format!("cannot watch for signals: {e}"));
    }
    let result = body(&run);
    // Deciding and saying the outcome is one unit too: a signal now must not
    // print a second record.
    cleanup::critical(|registry| {
        let code = match result {
            // Each failed series printed its record already.
            Ok(()) if run.series_failed.get().is_some() => {
                run.series_failed.get().expect("checked")
            }
            Ok(()) if run.reported.get() > 0 || to_stdout => 0,
            Ok(()) => {
                let message = "the backup ended without publishing anything".to_owned();
                log::log(component, &format!("backup failed: {message}"));
                print_record(&run.failed_record(message));
                ExitStatus::Failed as i32
            }
            Err(err) if run.reported.get() > 0 => {
                // The artifact is published and its record printed: what failed
                // afterwards (tidying up on a server) is worth a warning only.
                log::log(
                    component,
                    &format!("warning: after publishing: {}", exit::one_line(&err)),
                );
                0
            }
            Err(err) => {
                let message = exit::one_line(&err);
                log::log(component, &format!("backup failed: {message}"));
                if !to_stdout {
                    print_record(&run.failed_record(message));
                }
                exit::code(&err)
            }
        };
        registry.on_interrupt(move |_| code);
        code
    })
}

/// Runs any other subcommand (restore, list, ...): the same signal cleanup and
/// error mapping, no result record.
pub fn run(component: &'static str, what: &str, body: impl FnOnce() -> anyhow::Result<()>) -> i32 {
    let what = what.to_owned();
    let message = format!("{what} interrupted");
    if let Err(e) = cleanup::install(move |signal| {
        log::log(component, &format!("{message} by {signal}"));
        ExitStatus::Failed as i32
    }) {
        log::log(component, &format!("cannot watch for signals: {e}"));
    }
    finish(component, &what, body())
}

/// How a subcommand ends: 0, or its error said in one line and mapped to its
/// exit status.
pub fn finish(component: &str, what: &str, result: anyhow::Result<()>) -> i32 {
    match result {
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
