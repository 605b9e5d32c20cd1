//! Which artifacts to check when no paths are given.

use anyhow::{Context, Result};
use backup_common::{folder, log, Component, IsoWeek};
use std::path::{Path, PathBuf};

/// Every `*_latest*` link of every component, and the artifacts of the newest weekly folder.
pub fn latest(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for c in Component::ALL {
        let dir = root.join(c.name());
        let found =
            folder::scan(&dir, c).with_context(|| format!("cannot read {}", dir.display()))?;
        out.extend(found.latest.iter().map(|(name, _)| dir.join(name)));
    }
    if let Some(week) = weeks(root)?.pop() {
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
    let weekly = folder::weekly(root)
        .with_context(|| format!("cannot read {}", root.join("weekly").display()))?;
    Ok(weekly.weeks)
}
