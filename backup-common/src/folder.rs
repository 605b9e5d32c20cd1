//! What a component folder holds: the one answer that backup, prune, verify
//! and report all use.
//!
//! A backup is an artifact-named file *with* its `.sha256` sidecar. Publishing
//! writes the sidecar in the same unit as the artifact, so a file without one is
//! the residue of a crash (or someone's copy): it is listed as an orphan and is
//! never counted, chosen as a base, verified as a backup or kept as "the last
//! good one".

use crate::lock::LOCK_FILE;
use crate::naming::{ArtifactName, Component};
use crate::publish::is_temp_name;
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Artifacts with their sidecar, oldest first.
    pub backups: Vec<ArtifactName>,
    /// Artifact-named files without a sidecar: not backups.
    pub orphans: Vec<ArtifactName>,
    /// `*_latest` links and what they point at (as written in the link).
    pub latest: Vec<(String, PathBuf)>,
    /// Artifact-named links other than `*_latest`: never made by a tool, never
    /// a backup (a restore plan names them as skipped).
    pub links: Vec<String>,
    /// Our temp files (of this or another process).
    pub temps: Vec<String>,
}

/// Reads `dir` as a folder of `component`; a missing folder holds nothing.
/// Anything that is not ours (an operator's own files, orphan sidecars, the
/// lock) is left out.
pub fn scan(dir: &Path, component: Component) -> io::Result<Folder> {
    refuse_link(dir)?;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Folder::default()),
        Err(e) => return Err(e),
    };
    let mut folder = Folder::default();
    let mut artifacts = Vec::new();
    let mut sidecars = HashSet::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == LOCK_FILE {
            continue;
        }
        // The type comes from the directory entry itself: no stat per file, which
        // is most of the cost in a folder of 100,000 backups.
        let file_type = entry.file_type()?;
        if file_type.is_symlink() {
            if name.contains("_latest.") {
                folder.latest.push((name, fs::read_link(entry.path())?));
            } else if ArtifactName::parse(name.strip_suffix(".sha256").unwrap_or(&name)).is_some() {
                folder.links.push(name);
            }
        } else if !file_type.is_file() {
            continue;
        } else if is_temp_name(&name) {
            folder.temps.push(name);
        } else if let Some(artifact) = name.strip_suffix(".sha256") {
            sidecars.insert(artifact.to_owned());
        } else if let Some(parsed) = ArtifactName::parse(&name)
            .filter(|n| component.artifact_exts().contains(&n.ext.as_str()))
        {
            artifacts.push(parsed);
        }
    }
    artifacts.sort_by_key(|a| (a.timestamp, a.file_name()));
    for a in artifacts {
        if sidecars.contains(&a.file_name()) {
            folder.backups.push(a);
        } else {
            folder.orphans.push(a);
        }
    }
    folder.latest.sort();
    folder.links.sort();
    folder.temps.sort();
    Ok(folder)
}

/// The `weekly/` folder of a tree: its week folders, oldest first, and the
/// other folders found there (not ours: left alone, worth a warning).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Weekly {
    pub weeks: Vec<crate::IsoWeek>,
    pub foreign: Vec<PathBuf>,
}

/// Reads `root/weekly`; a missing folder holds no weeks. Files and hidden
/// entries (a promotion's temp folders) are neither weeks nor foreign.
pub fn weekly(root: &Path) -> io::Result<Weekly> {
    let dir = root.join("weekly");
    refuse_link(&dir)?;
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Weekly::default()),
        Err(e) => return Err(e),
    };
    let mut weekly = Weekly::default();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        refuse_link(&entry.path())?;
        if !entry.path().is_dir() {
            continue;
        }
        match crate::IsoWeek::parse(&name) {
            Some(week) => weekly.weeks.push(week),
            None => weekly.foreign.push(entry.path()),
        }
    }
    weekly.weeks.sort();
    weekly.foreign.sort();
    Ok(weekly)
}

/// A folder of the tree that is a link: whatever it leads to is outside the
/// tree (a pulled copy, a planted link), and no tool follows it — neither to
/// read (verify would vouch for files it never made) nor to write or delete.
fn refuse_link(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let to = fs::read_link(dir).unwrap_or_default();
            Err(io::Error::other(format!(
                "{} is a link (to {}); a backup tree's folders are never links, so it is not \
                 followed — remove the link, or point BACKUP_DIR at the real tree",
                dir.display(),
                to.display()
            )))
        }
        _ => Ok(()),
    }
}

/// The warning an orphan gets wherever it is seen.
pub fn orphan_warning(dir: &Path, name: &ArtifactName) -> String {
    format!(
        "warning: {} has no .sha256 sidecar, so it is not a backup (an interrupted publish \
         or a copy); check it and remove it, or write its sidecar if it is good",
        dir.join(name.file_name()).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_its_sidecar_is_an_orphan_not_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "db_20240101_000000.sql.gz",
            "db_20240101_000000.sql.gz.sha256",
            "db_20240102_000000.sql.gz",
            "db_20240103_000000.sql.gz.sha256",
            "notes.txt",
            ".lock",
            ".db_20240104_000000.sql.gz.tmp-12.AbCdEf",
            "db_20240105_000000.tar.gz",
            "db_20240105_000000.tar.gz.sha256",
        ] {
            fs::write(d.join(f), b"x").unwrap();
        }
        std::os::unix::fs::symlink("db_20240101_000000.sql.gz", d.join("db_latest.sql.gz"))
            .unwrap();
        let folder = scan(d, Component::Postgres).unwrap();
        let names = |v: &[ArtifactName]| v.iter().map(|n| n.file_name()).collect::<Vec<_>>();
        assert_eq!(names(&folder.backups), ["db_20240101_000000.sql.gz"]);
        assert_eq!(names(&folder.orphans), ["db_20240102_000000.sql.gz"]);
        assert_eq!(
            folder.latest,
            [(
                "db_latest.sql.gz".to_owned(),
                PathBuf::from("db_20240101_000000.sql.gz")
            )]
        );
        assert_eq!(folder.temps, [".db_20240104_000000.sql.gz.tmp-12.AbCdEf"]);
    }

    #[test]
    fn a_missing_folder_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            scan(&dir.path().join("nope"), Component::Minio).unwrap(),
            Folder::default()
        );
    }

    #[test]
    fn a_folder_that_is_a_link_is_never_followed() {
        let tree = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("db_20240101_000000.sql.gz"), b"x").unwrap();
        std::fs::write(
            outside.path().join("db_20240101_000000.sql.gz.sha256"),
            b"x",
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.path().join("postgres")).unwrap();
        let err = scan(&tree.path().join("postgres"), Component::Postgres).unwrap_err();
        assert!(err.to_string().contains("is a link"), "{err}");
        std::fs::create_dir(tree.path().join("weekly")).unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.path().join("weekly/2024_W01")).unwrap();
        let err = weekly(tree.path()).unwrap_err();
        assert!(err.to_string().contains("2024_W01 is a link"), "{err}");
    }
}
