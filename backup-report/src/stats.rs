//! Statistics of the backup tree: artifact counts, newest artifact per
//! component, weekly folders, total bytes (hard links once).

use crate::report::TreeStats;
use anyhow::{Context, Result};
use backup_common::{folder, Component, IsoWeek};
use chrono::{Local, Utc};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub fn scan(root: &Path) -> Result<TreeStats> {
    if !root.is_dir() {
        return Err(backup_common::usage(format!(
            "backup folder {} does not exist — check BACKUP_DIR or --backup-dir",
            root.display()
        )));
    }
    let mut stats = TreeStats::default();
    let mut seen = HashSet::new();
    for c in Component::ALL {
        let count = add_artifacts(&root.join(c.name()), c, &mut stats, &mut seen, true)?;
        stats.artifacts.insert(c, count);
    }
    if let Ok(entries) = std::fs::read_dir(root.join("weekly")) {
        for week in entries.flatten() {
            if IsoWeek::parse(&week.file_name().to_string_lossy()).is_some() && week.path().is_dir()
            {
                stats.weekly_snapshots += 1;
                stats
                    .weekly_folders
                    .push(week.file_name().to_string_lossy().into_owned());
                for c in Component::ALL {
                    add_artifacts(&week.path().join(c.name()), c, &mut stats, &mut seen, false)?;
                }
            }
        }
    }
    for files in stats.series_files.values_mut() {
        files.sort();
    }
    stats.weekly_folders.sort_by(|a, b| b.cmp(a));
    Ok(stats)
}

/// Adds a folder's backups (artifacts with their sidecar; see `folder`) to the
/// total; returns how many there are.
fn add_artifacts(
    dir: &Path,
    c: Component,
    stats: &mut TreeStats,
    seen: &mut HashSet<(u64, u64)>,
    daily: bool,
) -> Result<usize> {
    let found = folder::scan(dir, c).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut count = 0;
    for parsed in found.backups {
        let Ok(meta) = std::fs::symlink_metadata(dir.join(parsed.file_name())) else {
            continue;
        };
        // The cluster's globals ride along with a database's dump: they take
        // space, but are not a backup of their own.
        if !(c == Component::Postgres && parsed.prefix == "globals") {
            count += 1;
        }
        if seen.insert((meta.dev(), meta.ino())) {
            stats.total_size_bytes += meta.len();
        }
        if daily {
            stats
                .series_files
                .entry((c.name().to_owned(), parsed.prefix.clone()))
                .or_default()
                .push((parsed.file_name(), meta.len()));
            let when = parsed.instant_in(&Local).with_timezone(&Utc);
            let newest = stats.newest.entry(c).or_insert(when);
            if when > *newest {
                *newest = when;
            }
            let newest = stats
                .newest_series
                .entry((c, parsed.prefix.clone()))
                .or_insert(when);
            if when > *newest {
                *newest = when;
            }
        }
    }
    Ok(count)
}
