//! The notification's words, pure: a report in, a title and a few lines out,
//! short enough for a phone's lock screen and complete enough to act on.

use crate::report::{human, Report, RunStatus};
use backup_common::record::Status;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub title: String,
    pub body: String,
    /// The run was not `completed`: services that know urgency raise it.
    pub urgent: bool,
}

/// A drill or off-site copy belongs to this run when it is not older than the
/// run's start (the report's time less its duration), less this much.
const SLACK: i64 = 60;

pub fn compose(report: &Report, host: &str) -> Message {
    let status = report.status.name();
    let title = match report.warnings.len() {
        0 => format!("backup {status} on {host}"),
        1 => format!("backup {status} with a warning on {host}"),
        n => format!("backup {status} with {n} warnings on {host}"),
    };
    let mut lines = vec![format!(
        "{status}: {} run at {}, {} s",
        report.backup_type, report.timestamp, report.duration_seconds
    )];
    for e in &report.errors {
        lines.push(format!("failed: {e}"));
    }
    for w in &report.warnings {
        lines.push(format!("warning: {w}"));
    }
    let ok: Vec<String> = report
        .components
        .iter()
        .filter(|(_, c)| c.status == Status::Success)
        .map(|(name, c)| match c.size_bytes {
            Some(size) => format!("{name} {}", human(size)),
            None => name.clone(),
        })
        .collect();
    if !ok.is_empty() {
        lines.push(format!("ok: {}", ok.join(", ")));
    }
    let since = run_start(report);
    if let Some(line) = drill_line(report.restore_test.as_ref(), since) {
        lines.push(line);
    }
    if let Some(line) = offsite_line(report.offsite.as_ref(), since) {
        lines.push(line);
    }
    lines.push(format!(
        "tree: {} in all, {} weekly snapshot(s)",
        human(report.statistics.total_size_bytes),
        report.statistics.weekly_snapshots
    ));
    Message {
        title,
        body: lines.join("\n"),
        urgent: report.status != RunStatus::Completed || !report.warnings.is_empty(),
    }
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn run_start(report: &Report) -> Option<DateTime<Utc>> {
    let end = parse_time(&Value::from(report.timestamp.as_str()))?;
    Some(end - Duration::seconds(report.duration_seconds as i64 + SLACK))
}

fn this_run(v: &Value, since: Option<DateTime<Utc>>) -> bool {
    match (parse_time(&v["timestamp"]), since) {
        (Some(t), Some(since)) => t >= since,
        _ => false,
    }
}

/// `drill: postgres passed, minio failed (documents: 3 objects, the archive holds 4)`
fn drill_line(drills: Option<&Value>, since: Option<DateTime<Utc>>) -> Option<String> {
    let parts: Vec<String> = drills?
        .as_object()?
        .iter()
        .filter(|(_, v)| this_run(v, since))
        .map(|(c, v)| match v["error"].as_str() {
            _ if v["status"] == "success" => format!("{c} passed"),
            Some(e) => format!("{c} failed ({e})"),
            None => format!("{c} failed"),
        })
        .collect();
    (!parts.is_empty()).then(|| format!("drill: {}", parts.join(", ")))
}

/// `off-site: 12 file(s), 1.2 GiB sent and checked in 40 s` or its failure.
fn offsite_line(offsite: Option<&Value>, since: Option<DateTime<Utc>>) -> Option<String> {
    let o = offsite.filter(|o| this_run(o, since))?;
    Some(if o["status"] == "success" {
        format!(
            "off-site: {} file(s), {} sent and checked in {} s",
            o["files"].as_u64().unwrap_or(0),
            human(o["bytes"].as_u64().unwrap_or(0)),
            o["duration_seconds"].as_u64().unwrap_or(0)
        )
    } else {
        format!(
            "off-site: failed ({})",
            o["error"].as_str().unwrap_or("see backup.log")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(v: Value) -> Report {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> Value {
        json!({
            "timestamp": "2026-11-29T02:10:00.000Z",
            "backup_type": "full",
            "status": "partial",
            "duration_seconds": 300,
            "components": {
                "postgres": {"status": "success", "file": "postgres/a.sql.gz",
                             "size_bytes": 15_938_355, "duration_seconds": 40},
                "minio": {"status": "failed", "error": "cannot reach http://minio:9000; check MINIO_ENDPOINT",
                          "duration_seconds": 30},
                "n8n": {"status": "success", "file": "n8n/w.json", "size_bytes": 900,
                        "duration_seconds": 2}
            },
            "statistics": {"total_size_bytes": 2_469_606_195u64, "postgres_backups": 3,
                "minio_backups": 3, "qdrant_backups": 0, "n8n_backups": 3,
                "weekly_snapshots": 4, "retention_days": 30, "retention_weekly": 12},
            "errors": ["minio: cannot reach http://minio:9000; check MINIO_ENDPOINT"]
        })
    }

    #[test]
    fn a_failed_run_names_what_failed_and_what_is_safe() {
        let m = compose(&report(base()), "db1");
        assert_eq!(m.title, "backup partial on db1");
        assert!(m.urgent);
        assert_eq!(
            m.body,
            "partial: full run at 2026-11-29T02:10:00.000Z, 300 s\n\
             failed: minio: cannot reach http://minio:9000; check MINIO_ENDPOINT\n\
             ok: n8n 900 B, postgres 15.2 MiB\n\
             tree: 2.3 GiB in all, 4 weekly snapshot(s)"
        );
    }

    #[test]
    fn drill_and_off_site_lines_appear_only_for_what_ran_in_this_run() {
        let mut v = base();
        v["status"] = "completed".into();
        v["errors"] = json!([]);
        v["restore_test"] = json!({
            "postgres": {"status": "success", "timestamp": "2026-11-29T02:08:00.000Z"},
            "minio": {"status": "failed", "timestamp": "2026-11-29T02:09:00.000Z",
                      "error": "documents: 3 objects, the archive holds 4"},
            "qdrant": {"status": "success", "timestamp": "2026-11-22T02:09:00.000Z"}
        });
        v["offsite"] = json!({"status": "success", "timestamp": "2026-11-29T02:09:30Z",
                              "files": 12, "bytes": 1_288_490_189u64, "duration_seconds": 40});
        let m = compose(&report(v.clone()), "db1");
        assert!(!m.urgent);
        let lines: Vec<&str> = m.body.lines().collect();
        assert_eq!(
            lines[2..4],
            [
                "drill: postgres passed, minio failed (documents: 3 objects, the archive holds 4)",
                "off-site: 12 file(s), 1.2 GiB sent and checked in 40 s"
            ],
            "{}",
            m.body
        );
        // Both from an earlier run (a week ago): not this run's news.
        v["restore_test"] = json!({"postgres": {"status": "failed",
                                               "timestamp": "2026-11-22T02:08:00.000Z"}});
        v["offsite"] = json!({"status": "failed", "timestamp": "2026-11-28T02:09:30Z",
                              "error": "rclone status 1"});
        let m = compose(&report(v), "db1");
        assert!(
            !m.body.contains("drill") && !m.body.contains("off-site"),
            "{}",
            m.body
        );
    }
}
