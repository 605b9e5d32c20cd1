//! Which artifacts to check when no paths are given.

use anyhow::{Context, Result};
use backup_common::{folder, log, Component, IsoWeek};
use std::path::{Path, PathBuf};

/// Every `*_latest*` link of every component, and the artifacts of the newest weekly folder.
pub fn latest(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for c in Component::ALL {
        for entry in entries(&root.join(c.name()))? {
            let name = entry
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name.contains("_latest.")
                && entry
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
            {
                out.push(entry);
            }
        }
    }
    if let Some(week) = newest_week(root)? {
        out.extend(artifacts_under(
            &root.join("weekly").join(week.folder_name()),
        )?);
    }
    Ok(out)
}

/// Every artifact of the tree, daily and weekly.
pub fn all(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = artifacts_under(root)?;
    for week in weeks(root)? {
        out.extend(artifacts_under(
            &root.join("weekly").join(week.folder_name()),
        )?);
    }
    Ok(out)
}

/// The backups in the component folders under `base` (the tree, or a week
/// folder). Artifacts without a sidecar are not backups: a warning each.
fn artifacts_under(base: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for c in Component::ALL {
        let dir = base.join(c.name());
        let found =
            folder::scan(&dir, c).with_context(|| format!("cannot read {}", dir.display()))?;
        for orphan in &found.orphans {
            log::log(crate::COMPONENT, &folder::orphan_warning(&dir, orphan));
        }
        out.extend(found.backups.iter().map(|n| dir.join(n.file_name())));
    }
    Ok(out)
}

fn weeks(root: &Path) -> Result<Vec<IsoWeek>> {
    let mut weeks: Vec<IsoWeek> = entries(&root.join("weekly"))?
        .iter()
        .filter_map(|p| IsoWeek::parse(&p.file_name()?.to_string_lossy()))
        .collect();
    weeks.sort();
    Ok(weeks)
}

fn newest_week(root: &Path) -> Result<Option<IsoWeek>> {
    Ok(weeks(root)?.pop())
}

/// The sorted entries of a folder; a missing folder has none.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    out.sort();
    Ok(out)
}
