//! `restore --to-dir`: objects written into a folder the way a careful `tar`
//! extracts. Everything happens through a handle on the target folder
//! (cap-std), so no path can lead outside it; a link in the way of a folder is
//! refused rather than followed; each file is written under a fresh private
//! name and renamed over its place, which replaces whatever entry is there (a
//! planted link, a hard link to someone else's file) instead of writing through
//! it.

use anyhow::{bail, Context, Result};
use cap_std::fs::{Dir, DirBuilder, OpenOptions};
use std::fs::File;
use std::path::{Component, Path};

pub struct TargetDir {
    root: Dir,
    path: std::path::PathBuf,
}

impl TargetDir {
    /// Opens (and creates, 0700) the target folder.
    pub fn open(path: &Path) -> Result<TargetDir> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let root = Dir::open_ambient_dir(path, cap_std::ambient_authority())
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(TargetDir {
            root,
            path: path.to_owned(),
        })
    }

    /// Writes `rel` (relative, no `..`): `fill` gets a new private file, which
    /// then replaces whatever `rel` was. On any error nothing is left behind.
    pub fn write(&self, rel: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
        let (parent, name) = self.parent_of(rel, true)?;
        let temp = format!(".minio-snap-{}", fastrand::u64(..));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        cap_std::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = parent
            .open_with(&temp, &options)
            .with_context(|| format!("cannot create a file in {}", self.path.display()))?;
        // Registered so that a signal removes it; the path is ours (0600, fresh).
        let temp_path = self.path.join(rel).with_file_name(&temp);
        backup_common::cleanup::register_temp(&temp_path);
        let mut file = file.into_std();
        let result = fill(&mut file).and_then(|()| {
            parent
                .rename(&temp, &parent, &name)
                .with_context(|| format!("cannot put {} in place", self.path.join(rel).display()))
        });
        if result.is_err() {
            let _ = parent.remove_file(&temp);
        }
        backup_common::cleanup::forget_temp(&temp_path);
        result
    }

    /// Removes `rel` (the entry itself, never what a link points at); a missing
    /// one is fine.
    pub fn remove(&self, rel: &Path) -> Result<()> {
        let (parent, name) = match self.parent_of(rel, false) {
            Ok(p) => p,
            Err(_) => return Ok(()),
        };
        match parent.remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", self.path.join(rel).display()))
            }
            _ => Ok(()),
        }
    }

    /// The folder that holds `rel`, walked one component at a time (created
    /// when `create`), and `rel`'s last component.
    fn parent_of(&self, rel: &Path, create: bool) -> Result<(Dir, String)> {
        let mut parts: Vec<&str> = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(p) => parts.push(
                    p.to_str()
                        .with_context(|| format!("{} is not UTF-8", rel.display()))?,
                ),
                _ => bail!("{} is not a plain relative path", rel.display()),
            }
        }
        let Some(name) = parts.pop() else {
            bail!("an empty path")
        };
        let mut dir = self.root.try_clone()?;
        let mut walked = self.path.clone();
        for part in parts {
            walked.push(part);
            match dir.symlink_metadata(part) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.is_symlink() => bail!(
                    "{} is a symbolic link; refusing to write through it",
                    walked.display()
                ),
                Ok(_) => bail!("{} is in the way (not a folder)", walked.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                    let mut builder = DirBuilder::new();
                    cap_std::fs::DirBuilderExt::mode(&mut builder, 0o700);
                    dir.create_dir_with(part, &builder)
                        .with_context(|| format!("cannot create {}", walked.display()))?;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot inspect {}", walked.display()))
                }
            }
            dir = dir
                .open_dir(part)
                .with_context(|| format!("cannot open {}", walked.display()))?;
        }
        Ok((dir, name.to_owned()))
    }
}

use std::os::unix::fs::DirBuilderExt;
