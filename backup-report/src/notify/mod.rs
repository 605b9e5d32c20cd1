//! Notifications: after the report is written, a short message to each of
//! `BACKUP_NOTIFY_URLS` when `BACKUP_NOTIFY_LEVEL` says the run deserves one.
//!
//! Never part of the backup's result: a target that cannot be reached is a
//! warning and a count in `notify.json` (and in the metrics), nothing more.

pub mod message;
pub mod send;
pub mod target;

use crate::report::{Report, RunStatus};
use serde::{Deserialize, Serialize};
use target::Target;

/// Which runs are worth a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Runs that were not `completed` (the default: silence means safe).
    Error,
    Always,
    Never,
}

impl Level {
    pub fn parse(text: &str) -> Result<Level, String> {
        match text {
            "error" => Ok(Level::Error),
            "always" => Ok(Level::Always),
            "never" => Ok(Level::Never),
            other => Err(format!(
                "BACKUP_NOTIFY_LEVEL={other} is not error, always or never"
            )),
        }
    }
}

/// Whether a target hears about a run with this status (and warnings, the
/// backups that succeeded but look wrong), and why not.
pub fn decide(
    level: Level,
    status: RunStatus,
    warnings: bool,
    target: &Target,
) -> Result<(), &'static str> {
    if target.always {
        return Ok(());
    }
    match (level, status, warnings) {
        (Level::Never, _, _) => Err("BACKUP_NOTIFY_LEVEL is never"),
        (Level::Error, RunStatus::Completed, false) => {
            Err("the run completed and BACKUP_NOTIFY_LEVEL is error")
        }
        _ => Ok(()),
    }
}

/// The targets the environment names: `BACKUP_NOTIFY_URLS` (or its `_FILE`),
/// and the older `BACKUP_NOTIFY_URL`, which receives every report as before.
/// Returns the targets that parse and a problem for each one that does not
/// (`Err` only when a variable or its file cannot be read at all).
pub fn targets_from_env() -> Result<(Vec<Target>, Vec<String>), String> {
    let read = |name| {
        backup_common::secret::from_env(name)
            .map_err(|e| backup_common::exit::one_line(&e))
            .map(|v| v.map(|s| s.expose().to_owned()).unwrap_or_default())
    };
    // A variable (or its file) that cannot be read is a problem of its own:
    // the other variable's targets still get messages.
    let mut problems = Vec::new();
    let mut take = |name| {
        read(name).unwrap_or_else(|e| {
            problems.push(e);
            String::new()
        })
    };
    let urls = take("BACKUP_NOTIFY_URLS");
    let legacy = take("BACKUP_NOTIFY_URL");
    let (mut targets, more) = target::parse_list(&urls, "BACKUP_NOTIFY_URLS");
    problems.extend(more);
    if !legacy.trim().is_empty() {
        match target::parse(legacy.trim()) {
            Ok(service) => targets.push(Target {
                service,
                source: "BACKUP_NOTIFY_URL",
                always: true,
            }),
            Err(e) => problems.push(format!("BACKUP_NOTIFY_URL: {e}")),
        }
    }
    Ok((targets, problems))
}

/// `notify.json`: the last round of notifications, and every failure so far
/// (a Prometheus counter, hence carried from round to round).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub timestamp: String,
    pub sent: Vec<String>,
    pub failed: Vec<Failure>,
    pub failures_total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub target: String,
    pub error: String,
}

/// One round: each target the level lets through, in order. Returns what
/// happened; the caller logs it and keeps it.
pub fn deliver(
    targets: &[Target],
    level: Level,
    report: &Report,
    delivery: &send::Delivery,
    sender: &send::Sender,
    previous_failures: u64,
) -> (State, Vec<String>) {
    let mut state = State {
        timestamp: report.timestamp.clone(),
        failures_total: previous_failures,
        ..State::default()
    };
    let mut log = Vec::new();
    for t in targets {
        if let Err(why) = decide(level, report.status, !report.warnings.is_empty(), t) {
            log.push(format!("no notification to {}: {why}", t.label()));
            continue;
        }
        match sender.send(t, delivery) {
            Ok(()) => {
                log.push(format!("notified {}", t.label()));
                state.sent.push(t.label());
            }
            Err(e) => {
                log.push(format!(
                    "warning: notifying {} failed: {e}; check {} and the service",
                    t.label(),
                    t.source
                ));
                state.failed.push(Failure {
                    target: t.label(),
                    error: e,
                });
                state.failures_total += 1;
            }
        }
    }
    (state, log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(always: bool) -> Target {
        Target {
            service: target::parse("ntfy://host/topic").unwrap(),
            source: "BACKUP_NOTIFY_URLS",
            always,
        }
    }

    #[test]
    fn the_level_decides_which_runs_are_sent() {
        use RunStatus::*;
        let t = target(false);
        for (level, status, warnings, sent) in [
            (Level::Error, Completed, false, false),
            (Level::Error, Completed, true, true),
            (Level::Error, Partial, false, true),
            (Level::Error, Failed, false, true),
            (Level::Always, Completed, false, true),
            (Level::Always, Failed, false, true),
            (Level::Never, Failed, true, false),
        ] {
            assert_eq!(
                decide(level, status, warnings, &t).is_ok(),
                sent,
                "{level:?} {status:?} {warnings}"
            );
        }
        assert_eq!(
            decide(Level::Error, Completed, false, &t),
            Err("the run completed and BACKUP_NOTIFY_LEVEL is error")
        );
        // The older BACKUP_NOTIFY_URL keeps receiving every report.
        assert!(decide(Level::Never, Completed, false, &target(true)).is_ok());
        assert_eq!(Level::parse("always"), Ok(Level::Always));
        assert!(Level::parse("errors")
            .unwrap_err()
            .contains("error, always or never"));
    }
}
