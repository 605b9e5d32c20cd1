//! The atomic publish sequence.
//!
//! An artifact is written under a dot-prefixed temp name in its final folder
//! (unpredictable, `O_EXCL`, 0600: the `tempfile` crate) and fsynced; its
//! `.sha256` sidecar and the new `*_latest` link are prepared under temp names
//! too. Then, as one unit that a signal cannot cut (`cleanup::critical`), the
//! artifact takes its real name without ever replacing an existing file, the
//! sidecar and the link are renamed into place, the folder is fsynced and the
//! caller announces the result (prints its record). A failure inside the unit
//! undoes what it had done. A reader therefore sees no artifact or a complete
//! one with its sidecar, `*_latest` only ever names such artifacts, and the
//! record printed always describes what is on disk.

use crate::cleanup::{self, Registry};
use crate::crypt::{Encryption, Sealed};
use crate::hashing::HashingWriter;
use crate::naming::ArtifactName;
use anyhow::{bail, Context, Result};
use std::fs::{self, DirBuilder, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempPath;

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
    /// `None` once handed over to be published.
    temp: Option<TempPath>,
    temp_path: PathBuf,
    /// The tool writes plaintext; the file gets it encrypted when asked.
    writer: Option<Sealed<HashingWriter<BufWriter<File>>>>,
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
    /// With encryption on, the name ends in `.age` and the content is
    /// encrypted on its way to the file.
    pub fn create_now(
        dir: &Path,
        prefix: &str,
        ext: &str,
        encryption: &Encryption,
    ) -> Result<Self> {
        ensure_dir(dir)?;
        let ext = encryption.ext(ext);
        for _ in 0..30 {
            let name = ArtifactName::now(prefix, &ext);
            if !second_taken(dir, &name)? {
                return Self::create(dir, name, encryption);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "cannot find a free artifact name for {prefix}_*.{ext} in {}",
            dir.display()
        )
    }

    pub fn create(dir: &Path, name: ArtifactName, encryption: &Encryption) -> Result<Self> {
        assert_eq!(
            name.encrypted,
            encryption.is_on(),
            "the name says how it is written"
        );
        ensure_dir(dir)?;
        let file = cleanup::temp_file_in(dir, &temp_prefix(&name.file_name()))
            .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
        let (file, temp) = file.into_parts();
        Ok(PendingArtifact {
            dir: dir.to_owned(),
            name,
            temp_path: temp.to_path_buf(),
            temp: Some(temp),
            // Compressors hand over a few KiB at a time; one syscall per MiB instead.
            writer: Some(
                encryption.wrap(HashingWriter::new(BufWriter::with_capacity(1 << 20, file)))?,
            ),
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

    /// Publishes this artifact alone, announcing nothing (see `publish_all`).
    pub fn publish(self) -> Result<Published> {
        let mut published = publish_all(vec![self], |_, _| {})?;
        Ok(published.remove(0))
    }

    /// Flushes the content to disk and prepares the sidecar and link beside it.
    fn prepare(mut self) -> Result<Prepared> {
        let writer = self.writer.take().expect("prepared once");
        let writer = writer
            .finish()
            .with_context(|| format!("cannot write {}", self.temp_path.display()))?;
        let (file, sha256, size_bytes) = writer.finish();
        let file = file
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.temp_path.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot flush {} to disk", self.temp_path.display()))?;
        drop(file);
        let file_name = self.name.file_name();
        let sidecar = prepare_small_file(
            &self.dir,
            &format!("{file_name}.sha256"),
            format!("{sha256}  {file_name}\n").as_bytes(),
        )?;
        let link = match self.name.latest_link_name() {
            Some(link) => Some((prepare_link(&self.dir, &link, &file_name)?, link)),
            None => None,
        };
        let mut temps = vec![self.temp_path.clone(), sidecar.to_path_buf()];
        temps.extend(link.as_ref().map(|(t, _)| t.to_path_buf()));
        Ok(Prepared {
            published: Published {
                path: self.final_path(),
                file_name,
                size_bytes,
                sha256,
            },
            dir: self.dir.clone(),
            artifact: self.temp.take(),
            sidecar: Some(sidecar),
            retire: link.as_ref().and(self.name.other_latest_link_name()),
            link,
            temps,
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
        // Not handed over: the temp file must not survive (TempPath removes it).
        if self.temp.is_some() {
            self.writer = None;
            self.temp = None;
            cleanup::forget_temp(&self.temp_path);
        }
    }
}

/// An artifact ready to be renamed into place, with its sidecar and link.
struct Prepared {
    published: Published,
    dir: PathBuf,
    artifact: Option<TempPath>,
    sidecar: Option<TempPath>,
    /// The new link under its temp name, and the link's real name.
    link: Option<(TempPath, String)>,
    /// The other kind's latest link, removed once the new one is in place.
    retire: Option<String>,
    /// Every temp name above, to unregister once the unit is over.
    temps: Vec<PathBuf>,
}

/// What the unit changed, so that a failure inside it can be undone.
#[derive(Default)]
struct Done {
    artifacts: Vec<PathBuf>,
    sidecars: Vec<PathBuf>,
    /// A repointed link and what it pointed at before (None: there was none).
    links: Vec<(PathBuf, Option<PathBuf>)>,
}

impl Done {
    fn undo(self) {
        for (link, before) in self.links.into_iter().rev() {
            match before {
                Some(target) => {
                    let _ = fs::remove_file(&link);
                    let _ = std::os::unix::fs::symlink(target, &link);
                }
                None => {
                    let _ = fs::remove_file(&link);
                }
            }
        }
        for path in self.sidecars.into_iter().chain(self.artifacts) {
            let _ = fs::remove_file(path);
        }
    }
}

/// Publishes every artifact of one run as one unit, then `announce` runs inside
/// the same unit (it prints the result record and can change what a later
/// signal does). Either all of them are published, with sidecars and links,
/// and announced, or none is and the error says why.
pub fn publish_all(
    pending: Vec<PendingArtifact>,
    announce: impl FnOnce(&[Published], &mut Registry),
) -> Result<Vec<Published>> {
    let mut prepared = pending
        .into_iter()
        .map(PendingArtifact::prepare)
        .collect::<Result<Vec<_>>>()?;
    cleanup::failpoint("publish::prepared");
    cleanup::critical(|registry| {
        let mut done = Done::default();
        let moved = move_all_into_place(&mut prepared, &mut done);
        for temp in prepared.iter().flat_map(|p| &p.temps) {
            registry.forget_temp(temp);
        }
        if let Err(e) = moved {
            done.undo();
            // Whatever was not moved is removed as `prepared` drops.
            return Err(e);
        }
        let published: Vec<Published> = prepared.iter().map(|p| p.published.clone()).collect();
        announce(&published, registry);
        cleanup::failpoint("publish::announced");
        Ok(published)
    })
}

fn move_all_into_place(prepared: &mut [Prepared], done: &mut Done) -> Result<()> {
    for p in prepared.iter_mut() {
        cleanup::failpoint("publish::before-rename");
        let target = &p.published.path;
        let artifact = p.artifact.take().expect("moved once");
        artifact.persist_noclobber(target).map_err(|e| {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} already exists; refusing to overwrite it",
                    target.display()
                )
            } else {
                anyhow::Error::new(e.error)
                    .context(format!("cannot move the temp file to {}", target.display()))
            }
        })?;
        done.artifacts.push(target.clone());
        cleanup::failpoint("publish::renamed");

        let sidecar_path = crate::sidecar::path_of(target);
        let sidecar = p.sidecar.take().expect("moved once");
        sidecar
            .persist(&sidecar_path)
            .map_err(|e| anyhow::Error::new(e.error))
            .with_context(|| format!("cannot move {} into place", sidecar_path.display()))?;
        done.sidecars.push(sidecar_path);
        cleanup::failpoint("publish::sidecar-written");

        if let Some((temp, name)) = p.link.take() {
            let link = p.dir.join(&name);
            let before = fs::read_link(&link).ok();
            temp.persist(&link)
                .map_err(|e| anyhow::Error::new(e.error))
                .with_context(|| format!("cannot repoint {}", link.display()))?;
            done.links.push((link, before));
            cleanup::failpoint("publish::linked");
        }
        // The latest link of the other kind (plain vs `.age`) would name an
        // older backup as "latest": it goes in the same unit.
        if let Some(other) = p.retire.take() {
            let link = p.dir.join(&other);
            if let Ok(before) = fs::read_link(&link) {
                fs::remove_file(&link)
                    .with_context(|| format!("cannot remove {}", link.display()))?;
                done.links.push((link, Some(before)));
            }
        }
        sync_dir(&p.dir)?;
    }
    Ok(())
}

/// The prefix of a temp name: hidden from `ls`, from globs such as `*.sql.gz`
/// and from artifact-name parsing; the pid tells whose it is, the random part
/// that `tempfile` appends makes it unpredictable.
fn temp_prefix(file_name: &str) -> String {
    format!(".{file_name}.tmp-{}.", std::process::id())
}

/// Is `file_name` one of our temp names (of any process)?
pub fn is_temp_name(file_name: &str) -> bool {
    let Some((_, tail)) = file_name
        .strip_prefix('.')
        .and_then(|rest| rest.rsplit_once(".tmp-"))
    else {
        return false;
    };
    let (pid, random) = tail.split_once('.').unwrap_or((tail, ""));
    !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !random.contains('.')
}

/// A small file written, fsynced and left under a temp name in `dir`.
fn prepare_small_file(dir: &Path, file_name: &str, content: &[u8]) -> Result<TempPath> {
    let mut file = cleanup::temp_file_in(dir, &temp_prefix(file_name))
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    file.write_all(content)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", file.path().display()))?;
    Ok(file.into_temp_path())
}

/// A new relative link to `target` under a temp name in `dir` (relative, so it
/// stays valid when the tree is copied or mounted elsewhere).
fn prepare_link(dir: &Path, link: &str, target: &str) -> Result<TempPath> {
    let made = cleanup::critical(|registry| {
        let made = tempfile::Builder::new()
            .prefix(&temp_prefix(link))
            .rand_bytes(10)
            .make_in(dir, |path| std::os::unix::fs::symlink(target, path))?;
        registry.add_temp(made.path());
        Ok::<_, io::Error>(made)
    })
    .with_context(|| format!("cannot create a link in {}", dir.display()))?;
    Ok(made.into_temp_path())
}

/// Points the link `link` in `dir` at `target` (a file beside it): a new
/// link under a temp name, renamed over the old one, so the link is never
/// missing or half made.
pub fn point_link(dir: &Path, link: &str, target: &str) -> Result<()> {
    move_into_place(prepare_link(dir, link, target)?, &dir.join(link))
}

/// Writes a small file under a temp name, fsyncs it and renames it into place.
pub fn write_atomically(dir: &Path, file_name: &str, content: &[u8]) -> Result<()> {
    move_into_place(
        prepare_small_file(dir, file_name, content)?,
        &dir.join(file_name),
    )
}

/// Renames a prepared temp (file or link) over `target`, in one unit with
/// forgetting it as a temp: a signal never removes what is now in place.
fn move_into_place(temp: TempPath, target: &Path) -> Result<()> {
    cleanup::critical(|registry| {
        registry.forget_temp(&temp);
        temp.persist(target)
            .map_err(|e| anyhow::Error::new(e.error))
            .with_context(|| format!("cannot move {} into place", target.display()))
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

/// Whether the series of `name` already has an artifact of its second, of
/// any kind: a full and an incremental of one second would make the
/// incremental's base no older than itself, and a chain breaks on that.
fn second_taken(dir: &Path, name: &ArtifactName) -> Result<bool> {
    let stem = format!(
        "{}_{}.",
        name.prefix,
        name.timestamp.format(crate::naming::TIMESTAMP_FORMAT)
    );
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if entry.file_name().to_string_lossy().starts_with(&stem) {
            return Ok(true);
        }
    }
    Ok(false)
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
    fn an_encrypted_artifact_retires_the_plain_latest_link_and_decrypts_back() {
        use std::io::Read;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("postgres");
        let mut plain =
            PendingArtifact::create(&dir, name("20240124_020015"), &Encryption::Off).unwrap();
        plain.write_all(b"plain").unwrap();
        plain.publish().unwrap();
        let identity = age::x25519::Identity::generate();
        let sealed = Encryption::Recipients(vec![Box::new(identity.to_public())]);
        let mut a = PendingArtifact::create_now(&dir, "db", "sql.gz", &sealed).unwrap();
        a.write_all(b"secret rows").unwrap();
        let p = a.publish().unwrap();
        assert!(p.file_name.ends_with(".sql.gz.age"), "{}", p.file_name);
        assert!(
            !dir.join("db_latest.sql.gz").exists(),
            "the plain link is retired"
        );
        assert_eq!(
            fs::read_link(dir.join("db_latest.sql.gz.age")).unwrap(),
            Path::new(&p.file_name)
        );
        let bytes = fs::read(&p.path).unwrap();
        use sha2::Digest;
        assert_eq!(
            p.sha256,
            hex::encode(sha2::Sha256::digest(&bytes)),
            "the sidecar hashes the file"
        );
        assert!(!bytes.windows(6).any(|w| w == b"secret"));
        let mut text = String::new();
        age::Decryptor::new(&bytes[..])
            .unwrap()
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "secret rows");
    }

    #[test]
    fn publishes_artifact_sidecar_and_relative_latest_link() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("postgres");
        let mut a =
            PendingArtifact::create(&dir, name("20240124_020015"), &Encryption::Off).unwrap();
        a.write_all(b"abc").unwrap();
        let temps = listing(&dir);
        assert_eq!(temps.len(), 1, "{temps:?}");
        assert!(is_temp_name(&temps[0]), "{temps:?}");
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
            let mut a = PendingArtifact::create(dir.path(), name(ts), &Encryption::Off).unwrap();
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
        let mut good =
            PendingArtifact::create(dir.path(), name("20240124_020015"), &Encryption::Off).unwrap();
        good.write_all(b"good").unwrap();
        good.publish().unwrap();
        let before = listing(dir.path());

        let mut bad =
            PendingArtifact::create(dir.path(), name("20240125_020012"), &Encryption::Off).unwrap();
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
        let mut a =
            PendingArtifact::create(dir.path(), name("20240124_020015"), &Encryption::Off).unwrap();
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
        let mut first =
            PendingArtifact::create_now(dir.path(), "db", "sql.gz", &Encryption::Off).unwrap();
        first.write_all(b"1").unwrap();
        let first = first.publish().unwrap();
        // An incremental right after a full (or an encrypted one after a
        // plain one) takes a later second: a chain needs its base older.
        let incremental =
            PendingArtifact::create_now(dir.path(), "db", "incr.sql.gz", &Encryption::Off).unwrap();
        let first_second = ArtifactName::parse(&first.file_name).unwrap().timestamp;
        assert!(incremental.name.timestamp > first_second);
        let second =
            PendingArtifact::create_now(dir.path(), "db", "sql.gz", &Encryption::Off).unwrap();
        assert_ne!(second.final_path(), first.path);
    }

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_name(&format!(
            "{}Ab3xYz09Qw",
            temp_prefix("db_20240124_020015.sql.gz")
        )));
        assert!(is_temp_name(".x.tmp-1"));
        assert!(!is_temp_name(".x.tmp-1.a.b"));
        assert!(!is_temp_name(".lock"));
        assert!(!is_temp_name("x.tmp-1"));
        assert!(!is_temp_name(".x.tmp-"));
        assert!(!is_temp_name(".x.tmp-12a"));
    }
}
