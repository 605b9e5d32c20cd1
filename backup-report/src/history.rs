//! `history.jsonl`: what each run's records said about each series, kept in the
//! tree for as long as the retention window, so that a later report can judge
//! a new artifact against its recent past (counts the tree's files cannot
//! tell: SQL bytes, objects, points, workflows) and draw it.

use crate::inputs::{Outcome, Run};
use anyhow::Result;
use backup_common::record::Status;
use backup_common::{publish, ArtifactName};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const FILE: &str = "history.jsonl";

/// The record fields worth comparing from run to run.
pub const COUNTS: [&str; 6] = [
    "sql_bytes",
    "objects",
    "object_bytes",
    "points",
    "workflows",
    "credentials",
];

/// One series' outcome in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The report's timestamp: entries of one run share it.
    pub run: String,
    pub component: String,
    /// The artifact's prefix (a database, a bucket, `qdrant`, `workflows`).
    pub series: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    pub duration_seconds: u64,
    /// The record's `kind` (full or incremental, for MinIO): only artifacts of
    /// one kind are compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
}

impl Entry {
    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.run)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// This run's entries, from its records: one per series (a component with one
/// series: one, named after its artifact's prefix).
pub fn entries_of(run: &Run, when: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (component, outcome) in &run.components {
        match run.series.get(component).filter(|s| !s.is_empty()) {
            Some(series) => {
                for (name, o) in series {
                    out.push(entry(when, component, Some(name), o));
                }
            }
            None => out.push(entry(when, component, None, outcome)),
        }
    }
    out
}

fn entry(when: &str, component: &str, series: Option<&str>, outcome: &Outcome) -> Entry {
    match outcome {
        Outcome::Success(r) => {
            let prefix = r
                .file
                .as_deref()
                .and_then(ArtifactName::parse)
                .map(|n| n.prefix);
            Entry {
                run: when.to_owned(),
                component: component.to_owned(),
                series: series.map(str::to_owned).or(prefix).unwrap_or_default(),
                status: Status::Success,
                file: r.file.clone(),
                size_bytes: r.size_bytes,
                duration_seconds: r.duration_seconds,
                kind: r
                    .extra
                    .get("kind")
                    .and_then(|k| k.as_str())
                    .map(str::to_owned),
                counts: COUNTS
                    .iter()
                    .filter_map(|k| {
                        r.extra
                            .get(*k)
                            .and_then(|v| v.as_u64())
                            .map(|v| (k.to_string(), v))
                    })
                    .collect(),
            }
        }
        Outcome::Failed {
            duration_seconds, ..
        } => Entry {
            run: when.to_owned(),
            component: component.to_owned(),
            series: series.unwrap_or_default().to_owned(),
            status: Status::Failed,
            file: None,
            size_bytes: None,
            duration_seconds: *duration_seconds,
            kind: None,
            counts: BTreeMap::new(),
        },
    }
}

/// The kept entries; a line that is not one (a torn write, an edit) is
/// skipped: the history informs warnings, it never decides a status.
pub fn read(root: &Path) -> Vec<Entry> {
    std::fs::read(root.join(FILE))
        .map(|bytes| {
            bytes
                .split(|b| *b == b'\n')
                .filter_map(|line| serde_json::from_slice(line).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// What stays: entries of the retention window (daily days + weekly weeks),
/// at most `MAX_ENTRIES` of the newest.
pub fn keep(mut entries: Vec<Entry>, now: DateTime<Utc>, window: Duration) -> Vec<Entry> {
    entries.retain(|e| e.time().is_some_and(|t| t >= now - window));
    // An artifact once: a report from kept records (--keep-records) names
    // the same artifact again.
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| match &e.file {
        Some(f) => seen.insert((e.component.clone(), f.clone())),
        None => true,
    });
    let excess = entries.len().saturating_sub(MAX_ENTRIES);
    entries.drain(..excess);
    entries
}

/// Ten series backed up four times a day for a year and a quarter: a few MiB.
const MAX_ENTRIES: usize = 20_000;

pub fn write(root: &Path, entries: &[Entry]) -> Result<()> {
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    publish::write_atomically(root, FILE, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_common::ResultRecord;

    fn published(file: &str, size: u64) -> backup_common::Published {
        backup_common::Published {
            path: file.into(),
            file_name: file.into(),
            size_bytes: size,
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn a_run_becomes_one_entry_per_series_with_its_counts() {
        let mut run = Run::default();
        let pg = ResultRecord::success("postgres", &published("shop_20261129_020000.sql.gz", 900))
            .with("sql_bytes", 5000)
            .with("database", "shop");
        run.components
            .insert("postgres".into(), Outcome::Success(pg));
        let minio =
            ResultRecord::success("minio", &published("docs_20261129_020000.incr.tar.gz", 70))
                .with("kind", "incremental")
                .with("objects", 3);
        run.components
            .insert("minio".into(), Outcome::Success(minio.clone()));
        run.series.insert(
            "minio".into(),
            BTreeMap::from([
                ("docs".to_owned(), Outcome::Success(minio)),
                (
                    "gone".to_owned(),
                    Outcome::Failed {
                        error: "no such bucket".into(),
                        duration_seconds: 1,
                    },
                ),
            ]),
        );
        let e = entries_of(&run, "2026-11-29T02:00:00.000Z");
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].component.as_str(), e[0].series.as_str()),
            ("minio", "docs")
        );
        assert_eq!(e[0].kind.as_deref(), Some("incremental"));
        assert_eq!(e[0].counts, BTreeMap::from([("objects".to_owned(), 3)]));
        assert_eq!(
            (e[1].series.as_str(), e[1].status),
            ("gone", Status::Failed)
        );
        assert_eq!(e[2].series, "shop", "one series: the artifact's prefix");
        assert_eq!(e[2].counts["sql_bytes"], 5000);
        assert!(!e[2].counts.contains_key("database"), "not a count");
    }

    #[test]
    fn keep_drops_what_left_the_window() {
        let at = |run: &str| Entry {
            run: run.into(),
            component: "n8n".into(),
            series: "workflows".into(),
            status: Status::Success,
            file: None,
            size_bytes: Some(1),
            duration_seconds: 1,
            kind: None,
            counts: BTreeMap::new(),
        };
        let now = DateTime::parse_from_rfc3339("2026-11-29T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let kept = keep(
            vec![
                at("2026-10-01T02:00:00.000Z"),
                at("not a time"),
                at("2026-11-28T02:00:00.000Z"),
            ],
            now,
            Duration::days(30),
        );
        assert_eq!(kept, [at("2026-11-28T02:00:00.000Z")]);
        let with_file = |run: &str| Entry {
            file: Some("workflows_20261128_020000.json".into()),
            ..at(run)
        };
        let kept = keep(
            vec![
                with_file("2026-11-28T02:00:00.000Z"),
                with_file("2026-11-28T03:00:00.000Z"),
            ],
            now,
            Duration::days(30),
        );
        assert_eq!(
            kept,
            [with_file("2026-11-28T02:00:00.000Z")],
            "an artifact once"
        );
    }
}
