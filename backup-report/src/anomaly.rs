//! The silent failure: a backup that succeeds but is wrong. A new artifact
//! far smaller than its series' recent past (a wiped table, a wrong database,
//! a bucket emptied by ransomware), or far larger, is a warning with the
//! figures. Pure: this run's entries and the recent past in, warnings out.

use crate::history::Entry;
use crate::report::human;
use backup_common::record::Status;
use std::collections::BTreeMap;

/// How many earlier artifacts make "the recent past", and how few are too few
/// to judge by.
pub const WINDOW: usize = 7;
pub const MIN_HISTORY: usize = 3;
/// A jump above this many times the median is a warning too.
pub const JUMP: f64 = 10.0;

/// `BACKUP_SHRINK_WARN`: `50` or `50%` (of the median).
pub fn parse_shrink(text: &str) -> Result<u32, String> {
    text.trim()
        .trim_end_matches('%')
        .parse::<u32>()
        .ok()
        .filter(|p| (1..=100).contains(p))
        .ok_or_else(|| format!("BACKUP_SHRINK_WARN={text} is not a percentage from 1 to 100"))
}

/// One warning, about one component.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub component: String,
    pub text: String,
}

/// The earlier artifacts of a series, as the tree holds them (file name and
/// size, oldest first).
pub type TreeSeries = BTreeMap<(String, String), Vec<(String, u64)>>;

/// Judges every successful entry of this run: its artifact's size against
/// the same series' earlier artifacts of the same kind in the tree, and its
/// counts against the history's earlier successes of the same kind.
pub fn judge(now: &[Entry], history: &[Entry], tree: &TreeSeries, shrink_pct: u32) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for e in now.iter().filter(|e| e.status == Status::Success) {
        let Some(file) = e.file.as_deref() else {
            continue;
        };
        let mut figures: Vec<(String, u64, Vec<u64>, Unit)> = Vec::new();
        if let Some(size) = e.size_bytes {
            let ext = extension(file);
            let earlier: Vec<u64> = tree
                .get(&(e.component.clone(), e.series.clone()))
                .map(|files| {
                    files
                        .iter()
                        .filter(|(name, _)| name.as_str() < file && extension(name) == ext)
                        .map(|(_, size)| *size)
                        .collect()
                })
                .unwrap_or_default();
            figures.push(("size".into(), size, newest(earlier), Unit::Bytes));
        }
        let past: Vec<&Entry> = history
            .iter()
            .filter(|h| {
                h.status == Status::Success
                    && h.component == e.component
                    && h.series == e.series
                    && h.kind == e.kind
                    && h.run < e.run
            })
            .collect();
        for (key, value) in &e.counts {
            let earlier: Vec<u64> = past
                .iter()
                .filter_map(|h| h.counts.get(key).copied())
                .collect();
            let unit = if key.ends_with("bytes") {
                Unit::Bytes
            } else {
                Unit::Count
            };
            figures.push((key.clone(), *value, newest(earlier), unit));
        }
        for (what, value, earlier, unit) in figures {
            if earlier.len() < MIN_HISTORY {
                continue;
            }
            let median = median(&earlier);
            if median == 0 {
                continue;
            }
            let ratio = value as f64 / median as f64;
            let relation = if ratio * 100.0 < f64::from(shrink_pct) {
                format!("{:.0}% of", ratio * 100.0)
            } else if ratio > JUMP {
                format!("{ratio:.1}×")
            } else {
                continue;
            };
            let figures = format!("({} vs {})", unit.show(value), unit.show(median));
            let text = if what == "size" {
                format!(
                    "{}: {file} is {relation} the recent median {figures}",
                    e.component
                )
            } else {
                format!(
                    "{}: {file} holds {} {}, {relation} the recent median {figures}",
                    e.component,
                    unit.show(value),
                    noun(&what)
                )
            };
            out.push(Anomaly {
                component: e.component.clone(),
                text,
            });
        }
    }
    out
}

/// How a count reads after its figure.
fn noun(key: &str) -> &str {
    match key {
        "sql_bytes" => "of SQL",
        "object_bytes" => "of objects",
        other => other,
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Bytes,
    Count,
}

impl Unit {
    fn show(self, v: u64) -> String {
        match self {
            Unit::Bytes => human(v),
            Unit::Count => v.to_string(),
        }
    }
}

/// `sql.gz`, `incr.tar.gz`, …: a full archive is never judged by incrementals.
fn extension(file: &str) -> String {
    backup_common::ArtifactName::parse(file)
        .map(|n| n.ext)
        .unwrap_or_default()
}

/// The newest `WINDOW` of values given oldest first.
fn newest(mut values: Vec<u64>) -> Vec<u64> {
    let excess = values.len().saturating_sub(WINDOW);
    values.drain(..excess);
    values
}

fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn entry(run: &str, file: &str, size: u64, counts: &[(&str, u64)]) -> Entry {
        Entry {
            run: run.into(),
            component: "postgres".into(),
            series: "arasul_db".into(),
            status: Status::Success,
            file: Some(file.into()),
            size_bytes: Some(size),
            duration_seconds: 5,
            kind: None,
            counts: counts.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    /// A tree with `sizes` as the series' earlier dumps, day by day, and the
    /// history with the same runs' SQL bytes.
    fn past(sizes: &[u64]) -> (TreeSeries, Vec<Entry>) {
        let mut files = Vec::new();
        let mut history = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let file = format!("arasul_db_202611{:02}_020000.sql.gz", i + 1);
            history.push(entry(
                &format!("2026-11-{:02}T02:00:10.000Z", i + 1),
                &file,
                *size,
                &[("sql_bytes", size * 8)],
            ));
            files.push((file, *size));
        }
        (
            BTreeMap::from([(("postgres".into(), "arasul_db".into()), files)]),
            history,
        )
    }

    fn new(size: u64) -> Entry {
        entry(
            "2026-11-29T02:00:10.000Z",
            "arasul_db_20261129_020000.sql.gz",
            size,
            &[("sql_bytes", size * 8)],
        )
    }

    #[test]
    fn a_dump_a_tenth_of_its_recent_median_is_a_warning_with_the_figures() {
        let (tree, history) = past(&[15 * MIB, 16 * MIB, 15 * MIB, 14 * MIB]);
        let warnings = judge(&[new(MIB + MIB / 2)], &history, &tree, 50);
        let texts: Vec<&str> = warnings.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "postgres: arasul_db_20261129_020000.sql.gz is 10% of the recent median (1.5 MiB vs 15.0 MiB)",
                "postgres: arasul_db_20261129_020000.sql.gz holds 12.0 MiB of SQL, 10% of the recent median (12.0 MiB vs 120.0 MiB)",
            ]
        );
        assert!(warnings.iter().all(|w| w.component == "postgres"));
        // Within the threshold: nothing; a stricter threshold catches it.
        assert!(judge(&[new(9 * MIB)], &history, &tree, 50).is_empty());
        assert_eq!(judge(&[new(9 * MIB)], &history, &tree, 70).len(), 2);
    }

    #[test]
    fn a_tenfold_jump_is_a_warning_too() {
        let (tree, history) = past(&[MIB, MIB, MIB]);
        let w = judge(&[new(12 * MIB)], &history, &tree, 50);
        assert_eq!(
            w[0].text,
            "postgres: arasul_db_20261129_020000.sql.gz is 12.0× the recent median (12.0 MiB vs 1.0 MiB)"
        );
        assert!(judge(&[new(9 * MIB)], &history, &tree, 50).is_empty());
    }

    #[test]
    fn fewer_than_three_earlier_artifacts_are_not_judged() {
        let (tree, history) = past(&[15 * MIB, 15 * MIB]);
        assert!(judge(&[new(1)], &history, &tree, 50).is_empty());
    }

    #[test]
    fn only_the_newest_seven_of_the_same_kind_count() {
        // Ten old huge dumps, then seven small ones: the median is the small.
        let mut sizes = vec![100 * MIB; 10];
        sizes.extend([MIB; 7]);
        let (mut tree, history) = past(&sizes);
        assert!(judge(&[new(MIB)], &history, &tree, 50).is_empty());
        // Incrementals beside full archives never make a full one look big.
        let files = tree
            .get_mut(&("postgres".into(), "arasul_db".into()))
            .unwrap();
        for i in 0..5 {
            files.push((
                format!("arasul_db_202611{:02}_030000.incr.tar.gz", 20 + i),
                1,
            ));
        }
        let (mut e, h) = (new(MIB), Vec::<Entry>::new());
        e.file = Some("arasul_db_20261129_020000.sql.gz".into());
        assert!(judge(&[e], &h, &tree, 50).is_empty());
    }

    #[test]
    fn a_failed_entry_and_unknown_numbers_are_not_judged() {
        let (tree, history) = past(&[15 * MIB; 5]);
        let mut failed = new(1);
        failed.status = Status::Failed;
        assert!(judge(&[failed], &history, &tree, 50).is_empty());
        assert_eq!(parse_shrink("50%"), Ok(50));
        assert_eq!(parse_shrink(" 30 "), Ok(30));
        assert!(parse_shrink("0").is_err() && parse_shrink("half").is_err());
    }
}
