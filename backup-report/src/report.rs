//! Report assembly, pure: result records and tree statistics in, the product
//! description's `backup_report.json` (and its metrics and text forms) out.

use crate::inputs::{status, Outcome, Run};
use backup_common::Component;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the backup tree holds, for the `statistics` section and the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TreeStats {
    pub artifacts: BTreeMap<Component, usize>,
    /// The newest artifact's timestamp (from its name) per component.
    pub newest: BTreeMap<Component, DateTime<Utc>>,
    /// The same per series (artifact prefix: a database, a bucket, `globals`).
    pub newest_series: BTreeMap<(Component, String), DateTime<Utc>>,
    pub weekly_snapshots: usize,
    /// The weekly folders' names (`YYYY_WNN`), newest first.
    pub weekly_folders: Vec<String>,
    /// Every artifact's bytes, hard links (weekly copies) counted once.
    pub total_size_bytes: u64,
    /// The daily artifacts of each (component, series), oldest first, with
    /// their sizes: the recent past a new artifact is judged against.
    pub series_files: crate::anomaly::TreeSeries,
}

#[derive(Debug, Clone)]
pub struct RunFacts {
    pub backup_type: String,
    pub duration_seconds: Option<u64>,
    pub retention_days: u32,
    pub retention_weekly: u32,
    pub now: DateTime<Utc>,
}

/// `backup_report.json`, as the product description shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub timestamp: String,
    pub backup_type: String,
    pub status: RunStatus,
    pub duration_seconds: u64,
    pub components: BTreeMap<String, ComponentEntry>,
    pub statistics: Statistics,
    pub errors: Vec<String>,
    /// The last restore drill per component (restore_test.json), when one
    /// has run: a section after the description's fields, which stay as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<serde_json::Value>,
    /// The last off-site copy (offsite.json), when one has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsite: Option<serde_json::Value>,
    /// Backups that succeeded but look wrong (a dump a tenth of its recent
    /// median): absent when there are none, so such a report is what it was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Completed,
    Partial,
    Failed,
    /// backup.sh was stopped by a signal before it verified or drilled all
    /// it made: whatever the records say, the run is not a completed one.
    Interrupted,
}

impl RunStatus {
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Completed,
        RunStatus::Partial,
        RunStatus::Failed,
        RunStatus::Interrupted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// One component's line: a success names its file, a failure its error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentEntry {
    pub status: backup_common::record::Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_seconds: u64,
    /// Whether the published artifact is encrypted (`.age`); absent for a
    /// failed component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// A component backed up as several series (databases, buckets): each
    /// one's entry, by name. The component's own fields then sum them up
    /// (size and duration added, the file of the first series, failed if any
    /// failed). Absent for a single series, so that such a report is what it
    /// always was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<BTreeMap<String, ComponentEntry>>,
}

impl ComponentEntry {
    fn of(outcome: &Outcome) -> ComponentEntry {
        use backup_common::record::Status;
        match outcome {
            Outcome::Success(r) => ComponentEntry {
                status: Status::Success,
                file: r.file.clone(),
                size_bytes: r.size_bytes,
                error: None,
                duration_seconds: r.duration_seconds,
                encrypted: r.file.as_deref().map(backup_common::crypt::is_encrypted),
                series: None,
            },
            Outcome::Failed {
                error,
                duration_seconds,
            } => ComponentEntry {
                status: Status::Failed,
                file: None,
                size_bytes: None,
                error: Some(error.clone()),
                duration_seconds: *duration_seconds,
                encrypted: None,
                series: None,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub total_size_bytes: u64,
    pub postgres_backups: usize,
    pub minio_backups: usize,
    pub qdrant_backups: usize,
    pub n8n_backups: usize,
    pub weekly_snapshots: usize,
    pub retention_days: u32,
    pub retention_weekly: u32,
}

pub fn assemble(run: &Run, stats: &TreeStats, facts: &RunFacts) -> Report {
    let mut components = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, outcome) in &run.components {
        let mut entry = ComponentEntry::of(outcome);
        let several = run.series.get(name).filter(|s| s.len() > 1);
        match (outcome, several) {
            (Outcome::Failed { error, .. }, None) => errors.push(format!("{name}: {error}")),
            (_, Some(series)) => {
                for (s, o) in series {
                    if let Outcome::Failed { error, .. } = o {
                        errors.push(format!("{name} ({s}): {error}"));
                    }
                }
                // A failure about the whole component (not any one series').
                if let Outcome::Failed { error, .. } = outcome {
                    if !series.values().any(|o| !o.is_success()) {
                        errors.push(format!("{name}: {error}"));
                    }
                }
                entry.series = Some(
                    series
                        .iter()
                        .map(|(s, o)| (s.clone(), ComponentEntry::of(o)))
                        .collect(),
                );
            }
            (Outcome::Success(_), None) => {}
        }
        components.insert(name.clone(), entry);
    }
    errors.extend(run.problems.iter().cloned());
    if run.components.is_empty() {
        errors.push("no component ran: no result records were given".into());
    }
    let duration_seconds = facts
        .duration_seconds
        .unwrap_or_else(|| run.components.values().map(Outcome::duration_seconds).sum());
    let count = |c: Component| stats.artifacts.get(&c).copied().unwrap_or(0);
    Report {
        timestamp: timestamp(facts.now),
        backup_type: facts.backup_type.clone(),
        status: status(run),
        duration_seconds,
        components,
        statistics: Statistics {
            total_size_bytes: stats.total_size_bytes,
            postgres_backups: count(Component::Postgres),
            minio_backups: count(Component::Minio),
            qdrant_backups: count(Component::Qdrant),
            n8n_backups: count(Component::N8n),
            weekly_snapshots: stats.weekly_snapshots,
            retention_days: facts.retention_days,
            retention_weekly: facts.retention_weekly,
        },
        errors,
        restore_test: None,
        offsite: None,
        warnings: Vec::new(),
    }
}

/// The report's timestamp: UTC with milliseconds, as the product description shows.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The same facts as node_exporter textfile metrics; `series` (the run's, by
/// component) adds per-series samples with a `series` label.
/// `notify_failures_total` is the count of notifications that could not be
/// delivered, ever (notify.json carries it from run to run).
pub fn prometheus(
    report: &Report,
    stats: &TreeStats,
    series: &BTreeMap<String, BTreeMap<String, Outcome>>,
    notify_failures_total: u64,
) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, samples: Vec<(String, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    let label = |c: &str| format!("{{component=\"{c}\"}}");
    let per = |f: &dyn Fn(&ComponentEntry) -> Option<String>| -> Vec<(String, String)> {
        report
            .components
            .iter()
            .filter_map(|(c, v)| f(v).map(|x| (label(c), x)))
            .collect()
    };
    metric(
        "backup_component_success",
        "1 if the component's backup in the last run succeeded, 0 if it failed.",
        per(&|v| {
            let ok = v.status == backup_common::record::Status::Success;
            Some(if ok { "1" } else { "0" }.into())
        }),
    );
    metric(
        "backup_component_encrypted",
        "1 if the artifact the component's last run published is encrypted (age), 0 if not.",
        per(&|v| v.encrypted.map(|e| if e { "1" } else { "0" }.into())),
    );
    metric(
        "backup_component_duration_seconds",
        "Duration of the component's backup in the last run.",
        per(&|v| Some(v.duration_seconds.to_string())),
    );
    metric(
        "backup_component_size_bytes",
        "Size of the artifact the component's last successful backup published.",
        per(&|v| v.size_bytes.map(|d| d.to_string())),
    );
    metric(
        "backup_component_last_success_timestamp_seconds",
        "Unix time of the component's newest artifact in the backup tree.",
        stats
            .newest
            .iter()
            .map(|(c, t)| (label(c.name()), t.timestamp().to_string()))
            .collect(),
    );
    let both = |c: &str, s: &str| {
        format!(
            "{{component=\"{c}\",series=\"{}\"}}",
            s.replace('\\', "\\\\").replace('"', "\\\"")
        )
    };
    let per_series = |f: &dyn Fn(&Outcome) -> Option<String>| -> Vec<(String, String)> {
        series
            .iter()
            .flat_map(|(c, all)| all.iter().map(move |(s, o)| (c, s, o)))
            .filter_map(|(c, s, o)| f(o).map(|x| (both(c, s), x)))
            .collect()
    };
    metric(
        "backup_series_success",
        "1 if the series' (database's, bucket's) backup in the last run succeeded, 0 if it failed.",
        per_series(&|o| Some(if o.is_success() { "1" } else { "0" }.into())),
    );
    metric(
        "backup_series_duration_seconds",
        "Duration of the series' backup in the last run.",
        per_series(&|o| Some(o.duration_seconds().to_string())),
    );
    metric(
        "backup_series_size_bytes",
        "Size of the artifact the series' last successful backup published.",
        per_series(&|o| match o {
            Outcome::Success(r) => r.size_bytes.map(|b| b.to_string()),
            Outcome::Failed { .. } => None,
        }),
    );
    metric(
        "backup_series_last_success_timestamp_seconds",
        "Unix time of the series' newest artifact in the backup tree.",
        stats
            .newest_series
            .iter()
            .map(|((c, s), t)| (both(c.name(), s), t.timestamp().to_string()))
            .collect(),
    );
    let drills: Vec<(&String, &serde_json::Value)> = report
        .restore_test
        .as_ref()
        .and_then(|d| d.as_object())
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    let per_drill = |f: &dyn Fn(&serde_json::Value) -> Option<String>| -> Vec<(String, String)> {
        drills
            .iter()
            .filter_map(|(c, v)| f(v).map(|x| (label(c), x)))
            .collect()
    };
    let seconds_of = |t: &serde_json::Value| {
        t.as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp().to_string())
    };
    metric(
        "backup_restore_test_success",
        "1 if the component's last restore drill passed, 0 if it failed.",
        per_drill(&|v| Some(if v["status"] == "success" { "1" } else { "0" }.into())),
    );
    metric(
        "backup_restore_test_timestamp_seconds",
        "Unix time of the component's newest successful restore drill.",
        per_drill(&|v| seconds_of(&v["last_success"])),
    );
    metric(
        "backup_restore_test_duration_seconds",
        "Duration of the component's last restore drill.",
        per_drill(&|v| v["duration_seconds"].as_f64().map(|d| d.to_string())),
    );
    if let Some(o) = &report.offsite {
        let one = |v: Option<String>| v.map(|x| vec![(String::new(), x)]).unwrap_or_default();
        metric(
            "backup_offsite_success",
            "1 if the last off-site copy (upload and check) succeeded, 0 if it failed.",
            one(Some(
                if o["status"] == "success" { "1" } else { "0" }.into(),
            )),
        );
        metric(
            "backup_offsite_last_success_timestamp_seconds",
            "Unix time of the last successful off-site copy.",
            one(seconds_of(&o["last_success"])),
        );
        metric(
            "backup_offsite_bytes",
            "Bytes the last off-site copy sent.",
            one(o["bytes"].as_u64().map(|b| b.to_string())),
        );
        metric(
            "backup_offsite_duration_seconds",
            "Duration of the last off-site copy.",
            one(o["duration_seconds"].as_u64().map(|d| d.to_string())),
        );
    }
    metric(
        "backup_artifacts",
        "Artifacts of the component in the backup tree.",
        Component::ALL
            .iter()
            .map(|c| {
                (
                    label(c.name()),
                    stats.artifacts.get(c).copied().unwrap_or(0).to_string(),
                )
            })
            .collect(),
    );
    metric(
        "backup_weekly_snapshots",
        "Weekly snapshot folders in the backup tree.",
        vec![(String::new(), stats.weekly_snapshots.to_string())],
    );
    metric(
        "backup_total_size_bytes",
        "Bytes of all artifacts in the backup tree (hard links once).",
        vec![(String::new(), stats.total_size_bytes.to_string())],
    );
    metric(
        "backup_run_status",
        "1 for the last run's status (completed, partial, failed), 0 for the others.",
        RunStatus::ALL
            .iter()
            .map(|s| {
                (
                    format!("{{status=\"{}\"}}", s.name()),
                    u8::from(*s == report.status).to_string(),
                )
            })
            .collect(),
    );
    metric(
        "backup_component_anomaly",
        "1 if the component's new backup looks wrong against its recent past (see the report's warnings).",
        report
            .components
            .keys()
            .map(|c| {
                let prefix = format!("{c}: ");
                let flagged = report.warnings.iter().any(|w| w.starts_with(&prefix));
                (label(c), u8::from(flagged).to_string())
            })
            .collect(),
    );
    metric(
        "backup_run_duration_seconds",
        "Duration of the last run.",
        vec![(String::new(), report.duration_seconds.to_string())],
    );
    let ts = DateTime::parse_from_rfc3339(&report.timestamp)
        .ok()
        .map(|t| t.timestamp())
        .unwrap_or(0);
    metric(
        "backup_run_timestamp_seconds",
        "Unix time the last run's report was written.",
        vec![(String::new(), ts.to_string())],
    );
    out.push_str(&format!(
        "# HELP backup_notify_failures_total Notifications that could not be delivered.\n\
         # TYPE backup_notify_failures_total counter\n\
         backup_notify_failures_total {notify_failures_total}\n"
    ));
    out
}

/// A short human summary.
pub fn text(report: &Report) -> String {
    let mut out = format!(
        "backup {}  type {}  status {}  {} s\n",
        report.timestamp,
        report.backup_type,
        report.status.name(),
        report.duration_seconds
    );
    out.push_str(&format!(
        "{:<10} {:<8} {:<40} {:>12} {:>8}\n",
        "component", "status", "file", "size", "seconds"
    ));
    for (name, c) in &report.components {
        let file = c.file.as_deref().or(c.error.as_deref()).unwrap_or("");
        let size = c.size_bytes.map(human).unwrap_or_default();
        let status = status_name(c.status);
        out.push_str(&format!(
            "{:<10} {:<8} {:<40} {:>12} {:>8}\n",
            name, status, file, size, c.duration_seconds
        ));
        for (series, e) in c.series.iter().flatten() {
            let file = e.file.as_deref().or(e.error.as_deref()).unwrap_or("");
            let size = e.size_bytes.map(human).unwrap_or_default();
            out.push_str(&format!(
                "  {:<8} {:<8} {:<40} {:>12} {:>8}\n",
                series,
                status_name(e.status),
                file,
                size,
                e.duration_seconds
            ));
        }
    }
    let s = &report.statistics;
    out.push_str(&format!(
        "tree: {} in all; weekly snapshots: {}; retention {} days, {} weeks\n",
        human(s.total_size_bytes),
        s.weekly_snapshots,
        s.retention_days,
        s.retention_weekly
    ));
    for e in &report.errors {
        out.push_str(&format!("error: {e}\n"));
    }
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

fn status_name(status: backup_common::record::Status) -> &'static str {
    match status {
        backup_common::record::Status::Success => "success",
        backup_common::record::Status::Failed => "failed",
    }
}

pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The run these records tell (no component selected beyond them).
    fn run(lines: &[&str]) -> Run {
        let lines: Vec<(String, Vec<u8>)> = lines
            .iter()
            .map(|l| ("test".to_owned(), l.as_bytes().to_vec()))
            .collect();
        crate::inputs::read(&lines, &[])
    }

    const PG_OK: &str = r#"{"component":"postgres","status":"success","file":"arasul_db_20240124_020015.sql.gz","size_bytes":15728640,"duration_seconds":15,"sha256":"ab","database":"arasul_db","sql_bytes":99}"#;
    const QD_OK: &str = r#"{"component":"qdrant","status":"success","file":"qdrant_20240124_020045.tar.gz","size_bytes":52428800,"duration_seconds":20,"sha256":"cd","kind":"collections","collections":["documents"]}"#;
    const MINIO_FAILED: &str = r#"{"component":"minio","status":"failed","duration_seconds":3,"error":"ListObjectsV2 documents: 403 Forbidden — check MINIO_ROOT_USER and MINIO_ROOT_PASSWORD"}"#;

    fn facts() -> RunFacts {
        RunFacts {
            backup_type: "full".into(),
            duration_seconds: None,
            retention_days: 30,
            retention_weekly: 12,
            now: DateTime::parse_from_rfc3339("2024-01-24T02:01:30Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn status_logic() {
        assert_eq!(status(&run(&[])), RunStatus::Failed);
        assert_eq!(status(&run(&[PG_OK, QD_OK])), RunStatus::Completed);
        assert_eq!(status(&run(&[PG_OK, MINIO_FAILED])), RunStatus::Partial);
        assert_eq!(status(&run(&[MINIO_FAILED])), RunStatus::Failed);
    }

    #[test]
    fn report_has_exactly_the_product_schema() {
        let stats = TreeStats {
            artifacts: [(Component::Postgres, 30), (Component::Qdrant, 29)].into(),
            newest: BTreeMap::new(),
            newest_series: BTreeMap::new(),
            weekly_snapshots: 4,
            total_size_bytes: 173015040,
            series_files: BTreeMap::new(),
            weekly_folders: Vec::new(),
        };
        let r = serde_json::to_value(assemble(
            &run(&[PG_OK, QD_OK, MINIO_FAILED]),
            &stats,
            &facts(),
        ))
        .unwrap();
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "backup_type",
                "status",
                "duration_seconds",
                "components",
                "statistics",
                "errors"
            ]
        );
        assert_eq!(r["timestamp"], "2024-01-24T02:01:30.000Z");
        assert_eq!(r["status"], "partial");
        assert_eq!(r["duration_seconds"], 38);
        assert_eq!(
            r["components"]["postgres"],
            json!({"status": "success", "file": "arasul_db_20240124_020015.sql.gz", "size_bytes": 15728640, "duration_seconds": 15, "encrypted": false})
        );
        assert_eq!(r["components"]["minio"]["status"], "failed");
        assert_eq!(
            r["statistics"],
            json!({"total_size_bytes": 173015040, "postgres_backups": 30, "minio_backups": 0, "qdrant_backups": 29,
                   "n8n_backups": 0, "weekly_snapshots": 4, "retention_days": 30, "retention_weekly": 12})
        );
        assert_eq!(
            r["errors"],
            json!(["minio: ListObjectsV2 documents: 403 Forbidden — check MINIO_ROOT_USER and MINIO_ROOT_PASSWORD"])
        );
    }

    #[test]
    fn an_empty_run_is_failed_and_says_why() {
        let r = serde_json::to_value(assemble(&run(&[]), &TreeStats::default(), &facts())).unwrap();
        assert_eq!(r["status"], "failed");
        assert_eq!(r["components"], json!({}));
        assert_eq!(
            r["errors"][0],
            "no component ran: no result records were given"
        );
    }

    #[test]
    fn metrics_are_in_textfile_format() {
        let stats = TreeStats {
            newest: [(Component::Postgres, facts().now)].into(),
            ..Default::default()
        };
        let r = assemble(&run(&[PG_OK, MINIO_FAILED]), &stats, &facts());
        let m = prometheus(&r, &stats, &BTreeMap::new(), 0);
        assert!(m.contains("backup_component_success{component=\"postgres\"} 1\n"));
        assert!(m.contains("backup_component_success{component=\"minio\"} 0\n"));
        assert!(m.contains("backup_component_encrypted{component=\"postgres\"} 0\n"));
        assert!(!m.contains("backup_component_encrypted{component=\"minio\"}"));
        let sealed = PG_OK.replace(".sql.gz\"", ".sql.gz.age\"");
        let r = assemble(&run(&[&sealed]), &stats, &facts());
        assert_eq!(r.components["postgres"].encrypted, Some(true));
        assert!(prometheus(&r, &stats, &BTreeMap::new(), 0)
            .contains("backup_component_encrypted{component=\"postgres\"} 1\n"));
        assert!(m.contains(
            "backup_component_last_success_timestamp_seconds{component=\"postgres\"} 1706061690\n"
        ));
        assert!(m.contains("backup_run_status{status=\"partial\"} 1\n"));
        assert!(m.contains("backup_run_status{status=\"completed\"} 0\n"));
        for line in m.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn text_summary_lists_components_and_errors() {
        let r = assemble(
            &run(&[PG_OK, MINIO_FAILED]),
            &TreeStats::default(),
            &facts(),
        );
        let t = text(&r);
        assert!(t.contains("status partial"));
        assert!(t.contains("15.0 MiB"));
        assert!(t.contains("error: minio: ListObjectsV2"));
    }

    fn pg(db: &str, size: u64, extra: &str) -> String {
        format!(
            r#"{{"component":"postgres","status":"success","file":"{db}_20240124_020015.sql.gz","size_bytes":{size},"duration_seconds":2,"sha256":"ab","series":"{db}"{extra}}}"#
        )
    }

    #[test]
    fn one_series_reports_exactly_as_before() {
        let tagged = pg("arasul_db", 15728640, "");
        let plain = r#"{"component":"postgres","status":"success","file":"arasul_db_20240124_020015.sql.gz","size_bytes":15728640,"duration_seconds":2,"sha256":"ab"}"#;
        let a = serde_json::to_string(&assemble(&run(&[&tagged]), &TreeStats::default(), &facts()));
        let b = serde_json::to_string(&assemble(&run(&[plain]), &TreeStats::default(), &facts()));
        assert_eq!(a.unwrap(), b.unwrap());
        // backup.sh's later word about the whole component still decides.
        let verify_failed = r#"{"component":"postgres","status":"failed","duration_seconds":0,"error":"published its backup but backup-verify failed: x"}"#;
        let r = assemble(
            &run(&[&tagged, verify_failed]),
            &TreeStats::default(),
            &facts(),
        );
        let pg = &r.components["postgres"];
        assert_eq!(pg.status, backup_common::record::Status::Failed);
        assert!(pg.series.is_none());
        assert_eq!(
            r.errors,
            ["postgres: published its backup but backup-verify failed: x"]
        );
    }

    #[test]
    fn several_series_are_listed_under_their_component_which_needs_them_all() {
        let failed = r#"{"component":"postgres","status":"failed","duration_seconds":1,"error":"database \"gone\" does not exist","series":"gone"}"#;
        let records = [pg("shop", 100, ""), pg("crm", 20, ""), failed.to_owned()];
        let lines: Vec<&str> = records.iter().map(String::as_str).collect();
        let all = run(&lines);
        let r = serde_json::to_value(assemble(&all, &TreeStats::default(), &facts())).unwrap();
        let pg = &r["components"]["postgres"];
        assert_eq!(pg["status"], "failed");
        assert_eq!(pg["duration_seconds"], 5);
        assert_eq!(
            pg["series"]["shop"],
            json!({"status": "success", "file": "shop_20240124_020015.sql.gz", "size_bytes": 100, "duration_seconds": 2, "encrypted": false})
        );
        assert_eq!(pg["series"]["gone"]["status"], "failed");
        let keys: Vec<&String> = pg["series"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["crm", "gone", "shop"]);
        assert_eq!(
            r["errors"],
            json!(["postgres (gone): database \"gone\" does not exist"])
        );
        assert_eq!(r["status"], "failed");

        // All of them good: a success summing them up.
        let run2 = run(&lines[..2]);
        let r = serde_json::to_value(assemble(&run2, &TreeStats::default(), &facts())).unwrap();
        let pg = &r["components"]["postgres"];
        assert_eq!(pg["status"], "success");
        assert_eq!(pg["size_bytes"], 120);
        assert_eq!(pg["file"], "crm_20240124_020015.sql.gz");
        assert_eq!(r["status"], "completed");

        let stats = TreeStats {
            newest_series: [((Component::Postgres, "shop".to_owned()), facts().now)].into(),
            ..Default::default()
        };
        let report = assemble(&all, &stats, &facts());
        let m = prometheus(&report, &stats, &all.series, 0);
        assert!(m.contains("backup_series_success{component=\"postgres\",series=\"shop\"} 1\n"));
        assert!(m.contains("backup_series_success{component=\"postgres\",series=\"gone\"} 0\n"));
        assert!(m.contains("backup_series_size_bytes{component=\"postgres\",series=\"crm\"} 20\n"));
        assert!(!m.contains("backup_series_size_bytes{component=\"postgres\",series=\"gone\"}"));
        assert!(m.contains(
            "backup_series_last_success_timestamp_seconds{component=\"postgres\",series=\"shop\"} 1706061690\n"
        ));
        assert!(m.contains("backup_component_success{component=\"postgres\"} 0\n"));
        let t = text(&report);
        assert!(
            t.contains("\n  gone     failed   database \"gone\" does not exist"),
            "{t}"
        );
    }

    #[test]
    fn the_last_drill_is_a_section_of_its_own_and_three_metrics() {
        let mut r = assemble(&run(&[PG_OK]), &TreeStats::default(), &facts());
        let plain = serde_json::to_value(&r).unwrap();
        assert!(plain.get("restore_test").is_none(), "no drill, no section");
        r.restore_test = Some(json!({
            "postgres": {"status": "success", "timestamp": "2024-01-24T02:05:00.000Z",
                         "last_success": "2024-01-24T02:05:00.000Z", "duration_seconds": 4.5},
            "minio": {"status": "failed", "timestamp": "2024-01-24T02:05:00.000Z",
                      "last_success": null, "duration_seconds": 1.0, "error": "documents: x"}}));
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.last().unwrap().as_str(), "restore_test");
        let m = prometheus(&r, &TreeStats::default(), &BTreeMap::new(), 0);
        assert!(m.contains("backup_restore_test_success{component=\"postgres\"} 1\n"));
        assert!(m.contains("backup_restore_test_success{component=\"minio\"} 0\n"));
        assert!(m.contains(
            "backup_restore_test_timestamp_seconds{component=\"postgres\"} 1706061900\n"
        ));
        assert!(!m.contains("backup_restore_test_timestamp_seconds{component=\"minio\"}"));
        assert!(m.contains("backup_restore_test_duration_seconds{component=\"postgres\"} 4.5\n"));
    }

    #[test]
    fn the_last_off_site_copy_is_a_section_and_four_metrics() {
        let mut r = assemble(&run(&[PG_OK]), &TreeStats::default(), &facts());
        let m = prometheus(&r, &TreeStats::default(), &BTreeMap::new(), 0);
        assert!(!m.contains("backup_offsite_"), "none ran: no metrics");
        r.offsite = Some(
            json!({"status": "failed", "timestamp": "2024-01-24T02:06:00Z",
            "last_success": "2024-01-23T02:06:00Z", "bytes": 1234, "duration_seconds": 7,
            "error": "checking what was sent failed (rclone status 1): postgres/x: md5 differ"}),
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["offsite"]["status"], "failed");
        let m = prometheus(&r, &TreeStats::default(), &BTreeMap::new(), 0);
        assert!(m.contains("backup_offsite_success 0\n"));
        assert!(m.contains("backup_offsite_last_success_timestamp_seconds 1705975560\n"));
        assert!(m.contains("backup_offsite_bytes 1234\n"));
        assert!(m.contains("backup_offsite_duration_seconds 7\n"));
    }
}
