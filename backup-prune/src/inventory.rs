//! Reads the backup tree into an `Inventory`. Anything that is not ours (an
//! operator's own files, orphan sidecars) is simply not in it, so the policy can
//! never choose it. One component at a time, so memory is bounded by the
//! largest folder, not the whole tree.

use crate::policy::{Artifact, Inventory};
use backup_common::{lock::LOCK_FILE, publish::is_temp_name, ArtifactName, Component, IsoWeek};
use std::fs;
use std::path::Path;
use std::time::SystemTime;

/// The artifacts, latest links and temp files of one component folder. An
/// `Err` is a problem the operator must fix; nothing in that folder is pruned.
pub fn scan_component(
    root: &Path,
    component: Component,
    now: SystemTime,
) -> Result<Inventory, String> {
    let mut inv = Inventory::default();
    let dir = root.join(component.name());
    if dir.is_dir() {
        read_component(&dir, component, now, &mut inv)?;
    }
    Ok(inv)
}

fn read_component(
    dir: &Path,
    component: Component,
    now: SystemTime,
    inv: &mut Inventory,
) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == LOCK_FILE {
            continue;
        }
        // The type comes from the directory entry itself: no stat per file, which
        // is most of the cost in a folder of 100,000 backups.
        let file_type = entry
            .file_type()
            .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
        if file_type.is_symlink() {
            if name.contains("_latest.") {
                let target = latest_target(dir, &path)?;
                inv.latest_targets.insert((component, target));
            }
        } else if is_temp_name(&name) && file_type.is_file() {
            let age = fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
            inv.temps.push((component, name, age));
        } else if file_type.is_file() {
            let parsed = ArtifactName::parse(&name)
                .filter(|n| component.artifact_exts().contains(&n.ext.as_str()));
            if let Some(parsed) = parsed {
                inv.artifacts.push(Artifact {
                    component,
                    name: parsed,
                });
            }
        }
    }
    Ok(())
}

/// The file a `*_latest` link names, which must exist.
fn latest_target(dir: &Path, link: &Path) -> Result<String, String> {
    let target =
        fs::read_link(link).map_err(|e| format!("cannot read link {}: {e}", link.display()))?;
    let resolved = dir.join(&target);
    if !resolved.is_file() {
        return Err(format!(
            "{} points at {}, which does not exist — fix or remove the link; nothing in {} is pruned until then",
            link.display(),
            target.display(),
            dir.display()
        ));
    }
    // Links are relative names in the same folder; anything else protects nothing here.
    Ok(resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default())
}

/// The week folders under `weekly/`, and the problems (malformed names) found there.
pub fn scan_weekly(root: &Path) -> (Vec<IsoWeek>, Vec<String>) {
    let weekly = root.join("weekly");
    let mut weeks = Vec::new();
    let mut problems = Vec::new();
    let entries = match fs::read_dir(&weekly) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (weeks, problems),
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", weekly.display()));
            return (weeks, problems);
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_dir() || name.starts_with('.') {
            continue;
        }
        match IsoWeek::parse(&name) {
            Some(week) => weeks.push(week),
            None => problems.push(format!(
                "{} is not a YYYY_WNN week folder; left alone — rename or remove it",
                entry.path().display()
            )),
        }
    }
    (weeks, problems)
}
