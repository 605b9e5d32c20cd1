//! Reads the backup tree into an `Inventory`. Anything that is not ours (an
//! operator's own files, orphan sidecars) is simply not in it, so the policy can
//! never choose it. One component at a time, so memory is bounded by the
//! largest folder, not the whole tree.

use crate::policy::{Artifact, Base, Inventory};
use backup_common::crypt::Decryption;
use backup_common::{folder, Component, IsoWeek};
use std::fs;
use std::path::Path;
use std::time::SystemTime;

/// The backups, latest links and temp files of one component folder, and the
/// warnings about it (artifacts without a sidecar: never counted, never
/// deleted). An `Err` is a problem the operator must fix; nothing in that
/// folder is pruned.
pub fn scan_component(
    root: &Path,
    component: Component,
    now: SystemTime,
    decryption: &Decryption,
) -> Result<(Inventory, Vec<String>), String> {
    let dir = root.join(component.name());
    let found =
        folder::scan(&dir, component).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut inv = Inventory::default();
    for (name, target) in &found.latest {
        inv.latest_targets
            .insert((component, latest_target(&dir, &dir.join(name), target)?));
    }
    for name in found.temps {
        let age = fs::symlink_metadata(dir.join(&name))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let age = chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        inv.temps.push((component, name, age));
    }
    inv.artifacts = found
        .backups
        .into_iter()
        .map(|name| Artifact { component, name })
        .collect();
    for incr in inv.artifacts.iter().filter(|a| a.is_incremental()) {
        let file = incr.name.file_name();
        inv.bases.insert(
            (component, file.clone()),
            base_of(&dir.join(&file), decryption),
        );
    }
    let warnings = found
        .orphans
        .iter()
        .map(|o| folder::orphan_warning(&dir, o))
        .collect();
    Ok((inv, warnings))
}

/// What an incremental's manifest names as its base. This reads the archive
/// to its end (the manifest is its last entry); incrementals hold only what
/// changed, so this costs what a verify of them costs.
fn base_of(path: &Path, decryption: &Decryption) -> Base {
    match backup_formats::minio::read_manifest(path, decryption) {
        Ok(manifest) => match manifest.head.base {
            Some(name) => Base::Named(name),
            None => Base::Unreadable("its manifest says it is a full archive".into()),
        },
        Err(e) => Base::Unreadable(format!("{e:#}")),
    }
}

/// The file a `*_latest` link names, which must exist.
fn latest_target(dir: &Path, link: &Path, target: &Path) -> Result<String, String> {
    let resolved = dir.join(target);
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

/// The week folders under `weekly/`, and warnings about anything else found
/// there (a foreign folder is left alone and does not fail the prune). `Err`:
/// `weekly/` cannot be read.
pub fn scan_weekly(root: &Path) -> Result<(Vec<IsoWeek>, Vec<String>), String> {
    let found = folder::weekly(root)
        .map_err(|e| format!("cannot read {}: {e}", root.join("weekly").display()))?;
    let warnings = found
        .foreign
        .iter()
        .map(|path| {
            format!(
                "warning: {} is not a YYYY_WNN week folder; left alone — rename or remove it",
                path.display()
            )
        })
        .collect();
    Ok((found.weeks, warnings))
}
