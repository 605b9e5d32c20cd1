//! The atomic publish sequence.
//!
//! An artifact is written under a dot-prefixed temp name in its final folder,
//! fsynced, moved to its real name without ever replacing an existing file,
//! the folder fsynced, then its `.sha256` sidecar is written the same way and the
//! relative `*_latest` link is repointed by renaming a new link over it. A reader
//! therefore sees either no artifact or a complete one, and `*_latest` only ever
//! names complete artifacts. Until `publish` succeeds, dropping the value (error,
//! panic) or a signal (see `cleanup`) removes the temp file.

use crate::cleanup;
use crate::hashing::HashingWriter;
use crate::naming::ArtifactName;
use anyhow::{bail, Context, Result};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A published artifact, as the result record describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub path: PathBuf,
    pub file_name: String,
    pub size_bytes: u64,
    pub sha256: String,
}

/// An artifact being written.
pub struct PendingArtifact {
    dir: PathBuf,
    name: ArtifactName,
    temp_path: PathBuf,
    writer: Option<HashingWriter<BufWriter<File>>>,
    published: bool,
}

/// Creates `dir` (and missing parents) with mode 0700.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))
}

impl PendingArtifact {
    /// Starts `<dir>/<prefix>_<now>.<ext>`. If an artifact of that second already
    /// exists (two runs within one second), waits for the next second rather
    /// than overwrite it.
    pub fn create_now(dir: &Path, prefix: &str, ext: &str) -> Result<Self> {
        ensure_dir(dir)?;
        for _ in 0..30 {
            let name = ArtifactName::now(prefix, ext);
            if !dir.join(name.file_name()).exists() {
                return Self::create(dir, name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "cannot find a free artifact name for {prefix}_*.{ext} in {}",
            dir.display()
        )
    }

    pub fn create(dir: &Path, name: ArtifactName) -> Result<Self> {
        ensure_dir(dir)?;
        let temp_path = dir.join(temp_name(&name.file_name()));
        let file = create_private(&temp_path)?;
        cleanup::register_temp(&temp_path);
        Ok(PendingArtifact {
            dir: dir.to_owned(),
            name,
            temp_path,
            // Compressors hand over a few KiB at a time; one syscall per MiB instead.
            writer: Some(HashingWriter::new(BufWriter::with_capacity(1 << 20, file))),
            published: false,
        })
    }

    pub fn name(&self) -> &ArtifactName {
        &self.name
    }

    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    pub fn final_path(&self) -> PathBuf {
        self.dir.join(self.name.file_name())
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.bytes())
    }

    /// Flushes the artifact to disk, gives it its real name, writes the sidecar
    /// and repoints `*_latest`. Call only once the content has been checked.
    pub fn publish(mut self) -> Result<Published> {
        let writer = self.writer.take().expect("publish is called once");
        let (file, sha256, size_bytes) = writer.finish();
        let file = file
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.temp_path.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot flush {} to disk", self.temp_path.display()))?;
        drop(file);

        let file_name = self.name.file_name();
        let final_path = self.final_path();
        cleanup::critical(|temps| -> Result<()> {
            move_into_place(&self.temp_path, &final_path)?;
            temps.retain(|p| p != &self.temp_path);
            self.published = true;
            Ok(())
        })?;
        sync_dir(&self.dir)?;

        let sidecar = format!("{sha256}  {file_name}\n");
        write_atomically(
            &self.dir,
            &format!("{file_name}.sha256"),
            sidecar.as_bytes(),
        )?;
        if let Some(link) = self.name.latest_link_name() {
            repoint_link(&self.dir, &link, &file_name)?;
        }
        sync_dir(&self.dir)?;
        Ok(Published {
            path: final_path,
            file_name,
            size_bytes,
            sha256,
        })
    }
}

impl Write for PendingArtifact {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not yet published").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not yet published").flush()
    }
}

impl Drop for PendingArtifact {
    fn drop(&mut self) {
        if !self.published {
            // Not published: the temp file must not survive.
            self.writer = None;
            let _ = fs::remove_file(&self.temp_path);
            cleanup::forget_temp(&self.temp_path);
        }
    }
}

/// The dot-prefixed temp name of a file: invisible to `ls`, to globs such as
/// `*.sql.gz` and to artifact-name parsing; the pid tells whose it is.
pub fn temp_name(file_name: &str) -> String {
    format!(".{file_name}.tmp-{}", std::process::id())
}

/// Is `file_name` one of our temp names (of any process)?
pub fn is_temp_name(file_name: &str) -> bool {
    file_name.starts_with('.')
        && file_name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Renames without ever replacing: a hard link fails if the target exists, which
/// a rename would silently overwrite. Filesystems without hard links fall back to
/// a checked rename.
fn move_into_place(temp: &Path, target: &Path) -> Result<()> {
    match fs::hard_link(temp, target) {
        Ok(()) => fs::remove_file(temp)
            .with_context(|| format!("cannot remove temp file {}", temp.display())),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            bail!(
                "{} already exists; refusing to overwrite it",
                target.display()
            )
        }
        Err(_) => {
            if target.symlink_metadata().is_ok() {
                bail!(
                    "{} already exists; refusing to overwrite it",
                    target.display()
                );
            }
            fs::rename(temp, target)
                .with_context(|| format!("cannot move {} to {}", temp.display(), target.display()))
        }
    }
}

/// Writes a small file under a temp name, fsyncs it and renames it into place.
pub fn write_atomically(dir: &Path, file_name: &str, content: &[u8]) -> Result<()> {
    let temp = dir.join(temp_name(file_name));
    let target = dir.join(file_name);
    let result = (|| -> Result<()> {
        cleanup::register_temp(&temp);
        let mut file = create_private(&temp)?;
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temp.display()))?;
        fs::rename(&temp, &target)
            .with_context(|| format!("cannot move {} into place", target.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    cleanup::forget_temp(&temp);
    result
}

/// Points `dir/link` at `target` (a name in the same folder, so the link stays
/// valid when the tree is copied or mounted elsewhere), replacing the old link
/// in one rename.
pub fn repoint_link(dir: &Path, link: &str, target: &str) -> Result<()> {
    let temp = dir.join(temp_name(link));
    let _ = fs::remove_file(&temp);
    std::os::unix::fs::symlink(target, &temp)
        .with_context(|| format!("cannot create link {}", temp.display()))?;
    fs::rename(&temp, dir.join(link)).with_context(|| {
        let _ = fs::remove_file(&temp);
        format!("cannot repoint {}", dir.join(link).display())
    })
}

/// Adds "disk full in DIR" to an error caused by ENOSPC, so the operator reads
/// what to fix rather than which write failed.
pub fn disk_full_hint(err: anyhow::Error, dir: &Path) -> anyhow::Error {
    let full = err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::StorageFull)
    });
    if full {
        err.context(format!("disk full in {} — free some space", dir.display()))
    } else {
        err
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush folder {} to disk", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn name(ts: &str) -> ArtifactName {
        ArtifactName::parse(&format!("db_{ts}.sql.gz")).unwrap()
    }

    #[test]
    fn publishes_artifact_sidecar_and_relative_latest_link() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("postgres");
        let mut a = PendingArtifact::create(&dir, name("20240124_020015")).unwrap();
        a.write_all(b"abc").unwrap();
        assert_eq!(listing(&dir), vec![temp_name("db_20240124_020015.sql.gz")]);
        let p = a.publish().unwrap();

        assert_eq!(p.file_name, "db_20240124_020015.sql.gz");
        assert_eq!(p.size_bytes, 3);
        assert_eq!(
            listing(&dir),
            vec![
                "db_20240124_020015.sql.gz",
                "db_20240124_020015.sql.gz.sha256",
                "db_latest.sql.gz"
            ]
        );
        assert_eq!(
            fs::read_to_string(dir.join("db_20240124_020015.sql.gz.sha256")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  db_20240124_020015.sql.gz\n"
        );
        assert_eq!(
            fs::read_link(dir.join("db_latest.sql.gz")).unwrap(),
            Path::new("db_20240124_020015.sql.gz")
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&p.path), 0o600);
        assert_eq!(mode(&dir.join("db_20240124_020015.sql.gz.sha256")), 0o600);
    }

    #[test]
    fn latest_moves_to_the_newer_artifact() {
        let dir = tempfile::tempdir().unwrap();
        for ts in ["20240124_020015", "20240125_020012"] {
            let mut a = PendingArtifact::create(dir.path(), name(ts)).unwrap();
            a.write_all(ts.as_bytes()).unwrap();
            a.publish().unwrap();
        }
        assert_eq!(
            fs::read_link(dir.path().join("db_latest.sql.gz")).unwrap(),
            Path::new("db_20240125_020012.sql.gz")
        );
        assert_eq!(
            fs::read(dir.path().join("db_latest.sql.gz")).unwrap(),
            b"20240125_020012"
        );
    }

    #[test]
    fn dropping_unpublished_leaves_nothing_and_keeps_latest() {
        let dir = tempfile::tempdir().unwrap();
        let mut good = PendingArtifact::create(dir.path(), name("20240124_020015")).unwrap();
        good.write_all(b"good").unwrap();
        good.publish().unwrap();
        let before = listing(dir.path());

        let mut bad = PendingArtifact::create(dir.path(), name("20240125_020012")).unwrap();
        bad.write_all(b"half").unwrap();
        drop(bad);

        assert_eq!(listing(dir.path()), before);
        assert_eq!(
            fs::read_link(dir.path().join("db_latest.sql.gz")).unwrap(),
            Path::new("db_20240124_020015.sql.gz")
        );
    }

    #[test]
    fn never_overwrites_an_existing_artifact() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("db_20240124_020015.sql.gz"), b"precious").unwrap();
        let mut a = PendingArtifact::create(dir.path(), name("20240124_020015")).unwrap();
        a.write_all(b"new").unwrap();
        let err = a.publish().unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(
            fs::read(dir.path().join("db_20240124_020015.sql.gz")).unwrap(),
            b"precious"
        );
        assert_eq!(listing(dir.path()), vec!["db_20240124_020015.sql.gz"]);
    }

    #[test]
    fn create_now_picks_a_free_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = PendingArtifact::create_now(dir.path(), "db", "sql.gz").unwrap();
        first.write_all(b"1").unwrap();
        let first = first.publish().unwrap();
        let second = PendingArtifact::create_now(dir.path(), "db", "sql.gz").unwrap();
        assert_ne!(second.final_path(), first.path);
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name(&temp_name("db_20240124_020015.sql.gz")));
        assert!(is_temp_name(".x.tmp-1"));
        assert!(!is_temp_name(".lock"));
        assert!(!is_temp_name("x.tmp-1"));
        assert!(!is_temp_name(".x.tmp-"));
        assert!(!is_temp_name(".x.tmp-12a"));
    }
}
