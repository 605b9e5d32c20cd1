//! `promote`: this run's backups into `weekly/YYYY_WNN/<component>/`, so a week
//! folder restores on its own. What to add and what the folder no longer needs
//! is a pure plan; carrying it out links (or, across filesystems, copies and
//! checks) each file, and removes the week's older snapshot only once the new
//! one is complete.

use anyhow::{bail, Context, Result};
use backup_common::crypt::Decryption;
use backup_common::{cleanup, log, sidecar, ArtifactName, Component, IsoWeek};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a week folder of one component needs done.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Files to bring in (artifacts and their sidecars), in order.
    pub add: Vec<String>,
    /// Files of an older snapshot of the same week, removed after the adds.
    pub remove: Vec<String>,
}

/// `wanted`: the artifacts of the snapshot (a MinIO chain: full first).
/// `present`: what the week's component folder holds now.
pub fn plan(wanted: &[String], present: &[String]) -> Plan {
    let files: Vec<String> = wanted
        .iter()
        .flat_map(|a| [a.clone(), format!("{a}.sha256")])
        .collect();
    let keep: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let have: BTreeSet<&str> = present.iter().map(String::as_str).collect();
    Plan {
        add: files
            .iter()
            .filter(|f| !have.contains(f.as_str()))
            .cloned()
            .collect(),
        remove: present
            .iter()
            .filter(|f| !keep.contains(f.as_str()) && !f.starts_with('.'))
            .cloned()
            .collect(),
    }
}

use backup_common::record::Unit;

/// The artifacts a restore of `name` needs, oldest first: itself, or for a
/// MinIO incremental its whole chain (each link a backup, with its sidecar).
fn chain(
    dir: &Path,
    component: Component,
    name: &str,
    decryption: &Decryption,
) -> Result<Vec<String>> {
    let incremental =
        backup_common::ArtifactName::parse(name).is_some_and(|n| n.ext == "incr.tar.gz");
    if component != Component::Minio || !incremental {
        return Ok(vec![name.to_owned()]);
    }
    let base = backup_formats::minio::read_manifest(&dir.join(name), decryption)?
        .head
        .base;
    let mut chain = backup_formats::minio::bases(dir, base, decryption)?;
    chain.reverse();
    chain.push(name.to_owned());
    Ok(chain)
}

/// Promotes the units a run published (every series of one component, as
/// `record::published_units` reads them) into `root/weekly/<week>/`; returns
/// the promoted artifacts' paths (for backup-verify).
pub fn promote(
    root: &Path,
    week: IsoWeek,
    units: &[Unit],
    decryption: &Decryption,
) -> Result<Vec<PathBuf>> {
    let component = units.first().context("nothing to promote")?.component;
    if let Some(other) = units.iter().find(|u| u.component != component) {
        bail!(
            "the records name two components ({component} and {}); promote one at a time",
            other.component
        );
    }
    let src = root.join(component.name());
    let mut wanted = Vec::new();
    for unit in units {
        for name in std::iter::once(&unit.file).chain(&unit.companions) {
            if ArtifactName::parse(name).is_none() || sidecar::read(&src.join(name))?.is_none() {
                bail!(
                    "{name} in {} is not a backup with its sidecar",
                    src.display()
                );
            }
        }
        for name in chain(&src, component, &unit.file, decryption)?
            .into_iter()
            .chain(unit.companions.iter().cloned())
        {
            // Two incrementals of a run share their full; it is wanted once.
            if !wanted.contains(&name) {
                wanted.push(name);
            }
        }
    }
    let dst = root
        .join("weekly")
        .join(week.folder_name())
        .join(component.name());
    backup_common::publish::ensure_dir(&dst)?;
    let present: Vec<String> = fs::read_dir(&dst)
        .with_context(|| format!("cannot read {}", dst.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let plan = plan(&wanted, &present);
    for file in &plan.add {
        bring(&src.join(file), &dst.join(file))?;
    }
    sync_dir(&dst)?;
    for file in &plan.remove {
        fs::remove_file(dst.join(file))
            .with_context(|| format!("cannot remove {}", dst.join(file).display()))?;
    }
    log::log(
        crate::COMPONENT,
        &format!(
            "{}: promoted {} to {}",
            component,
            wanted.join(", "),
            dst.display()
        ),
    );
    Ok(wanted.iter().map(|a| dst.join(a)).collect())
}

/// A hard link where the filesystem allows it (no extra space), else a copy
/// under a private temp name, flushed, checked against the source's sidecar
/// (for an artifact) and renamed into place.
fn bring(src: &Path, dst: &Path) -> Result<()> {
    if fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    let dir = dst.parent().expect("a file in a folder");
    let mut temp = cleanup::temp_file_in(dir, ".promote.tmp-")
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    let copied = (|| -> Result<()> {
        let mut input =
            fs::File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
        let sha = backup_common::hashing::copy_hashed(&mut input, temp.as_file_mut())
            .map_err(|side| match side {
                Ok(e) => anyhow::Error::new(e).context(format!("cannot read {}", src.display())),
                Err(e) => anyhow::Error::new(e).context(format!("cannot write {}", dst.display())),
            })
            .map_err(|e| backup_common::publish::disk_full_hint(e, dir))?;
        temp.as_file_mut().flush()?;
        temp.as_file().sync_all()?;
        if let Some(expected) = sidecar::read(src)? {
            if expected != sha {
                bail!(
                    "the copy of {} has sha256 {sha}, its sidecar says {expected}",
                    src.display()
                );
            }
        }
        Ok(())
    })();
    cleanup::forget_temp(temp.path());
    copied?;
    temp.persist_noclobber(dst)
        .map_err(|e| anyhow::Error::new(e.error))
        .with_context(|| format!("cannot move the copy to {}", dst.display()))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush folder {} to disk", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_empty_week_gets_the_artifacts_and_their_sidecars() {
        let p = plan(&names(&["db_1.sql.gz"]), &[]);
        assert_eq!(p.add, names(&["db_1.sql.gz", "db_1.sql.gz.sha256"]));
        assert!(p.remove.is_empty());
    }

    #[test]
    fn a_newer_snapshot_of_the_week_replaces_the_older_only_what_it_does_not_share() {
        // The week's chain grew by one incremental: everything it shares stays,
        // the new link comes in, an older full of the same week goes, temp
        // files are not the plan's business.
        let p = plan(
            &names(&["d_1.tar.gz", "d_2.incr.tar.gz", "d_3.incr.tar.gz"]),
            &names(&[
                "d_1.tar.gz",
                "d_1.tar.gz.sha256",
                "d_2.incr.tar.gz",
                "d_2.incr.tar.gz.sha256",
                "d_0.tar.gz",
                "d_0.tar.gz.sha256",
                ".promote.tmp-x",
            ]),
        );
        assert_eq!(p.add, names(&["d_3.incr.tar.gz", "d_3.incr.tar.gz.sha256"]));
        assert_eq!(p.remove, names(&["d_0.tar.gz", "d_0.tar.gz.sha256"]));
    }

    #[test]
    fn promoting_again_changes_nothing() {
        let wanted = names(&["db_1.sql.gz"]);
        let p = plan(&wanted, &names(&["db_1.sql.gz", "db_1.sql.gz.sha256"]));
        assert_eq!(p, Plan::default());
    }
}
