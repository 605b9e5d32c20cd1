//! The archive's manifest, its last entry (`manifest.json`): every object's
//! key, where it is in the archive, size, ETag, sha256, last-modified, content
//! type and user metadata; for an incremental also what it builds on, the full
//! key list at backup time and the keys deleted since.

use anyhow::Context;
use backup_common::crypt::Decryption;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

mod spool;
mod stream;
pub use spool::Spool;
pub use stream::SpooledManifest;

pub const FORMAT: &str = "minio-snap/1";
pub const FILE_NAME: &str = "manifest.json";

/// The manifest's fields other than its lists, in the order they are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub format: String,
    pub bucket: String,
    /// `full` or `incremental`.
    pub kind: Kind,
    pub created: String,
    /// The artifact an incremental builds on (file name in the same folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// The whole document in memory (as the tests write one); the tools read and
/// write it as a stream: [`SpooledManifest`]. The head's fields come first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub head: Head,
    /// Every object in the bucket at backup time (restore's target state, and
    /// what the next incremental compares with).
    pub keys: Vec<KeyState>,
    /// Keys gone since the base (incrementals).
    #[serde(default)]
    pub deleted: Vec<String>,
    /// The objects this archive holds.
    pub objects: Vec<ObjectEntry>,
}

/// What an archive holds: every object, or only what changed since its base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Full,
    Incremental,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub key: String,
    /// Servers that list no ETag leave the change check to size and time.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub key: String,
    pub path: String,
    pub size: u64,
    pub etag: Option<String>,
    pub sha256: String,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Where an object goes in the archive: `<bucket>_backup/<key>`, as the product
/// description's manual restore (`tar -xzf … && mc mirror`) expects, unless the
/// key is unsafe as a path (`..`, a leading `/`, empty or over-long parts,
/// control characters); those go under `<bucket>_backup/.unsafe-keys/<sha256 of
/// the key>` and the manifest maps them back to their exact key.
pub fn archive_path(bucket: &str, key: &str) -> String {
    let safe = !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && !key.chars().any(char::is_control)
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && part.len() <= 255);
    if safe && !key.starts_with(".unsafe-keys/") {
        format!("{bucket}_backup/{key}")
    } else {
        format!(
            "{bucket}_backup/.unsafe-keys/{}",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    }
}

/// The manifest of an archive (its last entry; the archive is read to the end
/// and must be well-formed: `read_archive`), decrypted first if it is `.age`.
/// Its lists are spooled next to the archive (or in TMPDIR).
pub fn read_manifest(path: &Path, decryption: &Decryption) -> anyhow::Result<SpooledManifest> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    manifest_of(&file, path, decryption)
}

/// The archives an archive in `dir` builds on, nearest first, starting from
/// `base` (its manifest's): each one present with its sidecar (a backup, not an
/// orphan), the chain ending in a full archive. The one walk of a chain for
/// verify and weekly promotion; restore also checks each link's content. Only
/// incrementals are opened (a full one's name says it ends the chain), so an
/// encrypted full archive needs no identity here.
pub fn bases(
    dir: &Path,
    mut base: Option<String>,
    decryption: &Decryption,
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    while let Some(name) = base {
        let link = dir.join(&name);
        if !link.is_file() {
            anyhow::bail!("the chain is incomplete: {name}, which it builds on, is missing");
        }
        if backup_common::sidecar::read(&link)?.is_none() {
            anyhow::bail!(
                "the chain is incomplete: {name}, which it builds on, has no .sha256 sidecar and so is not a backup"
            );
        }
        if found.len() >= 10_000 {
            anyhow::bail!("the chain does not end in a full backup");
        }
        let full = backup_common::ArtifactName::parse(&name).is_some_and(|n| n.ext == "tar.gz");
        base = if full {
            None
        } else {
            read_manifest(&link, decryption)?.head.base
        };
        found.push(name);
    }
    Ok(found)
}

/// The same, through an open handle (read from its start).
pub fn manifest_of(
    file: &std::fs::File,
    path: &Path,
    decryption: &Decryption,
) -> anyhow::Result<SpooledManifest> {
    use std::io::Seek;
    let mut file = file.try_clone()?;
    file.seek(std::io::SeekFrom::Start(0))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let plain = decryption.reader(std::io::BufReader::new(file), &name)?;
    let spool_dir = path.parent().unwrap_or(Path::new("."));
    read_archive(plain, &name, spool_dir, |_, entry| {
        std::io::copy(entry, &mut std::io::sink())?;
        Ok(None)
    })
    .with_context(|| format!("{} is not a valid minio-snap archive", path.display()))
}

/// What an object entry holds, where the reader of an archive looked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub size: u64,
    pub sha256: String,
}

/// An object entry as the archive had it, kept until the manifest (last)
/// says what it should have been.
#[derive(Serialize, Deserialize)]
struct Seen {
    path: String,
    content: Option<Content>,
}

/// What a well-formed archive is, decided in one place for backup (reading a
/// base), verify and restore: every entry a regular file at a plain relative
/// path, the manifest last, valid (see `Head::validate` and
/// `SpooledManifest::parse`), its objects exactly the archive's object
/// entries in the archive's order — and, where `on_object` looked at an
/// entry's content (its path and content given; it may read them or not),
/// that content the size and sha256 the manifest records. `name` is the
/// archive's file name; the lists are spooled in `spool_dir`.
pub fn read_archive(
    input: impl std::io::Read,
    name: &str,
    spool_dir: &Path,
    mut on_object: impl FnMut(&str, &mut dyn std::io::Read) -> anyhow::Result<Option<Content>>,
) -> anyhow::Result<SpooledManifest> {
    use anyhow::{bail, Context};
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(input));
    let mut manifest: Option<SpooledManifest> = None;
    let mut seen: Spool<Seen> = Spool::new(spool_dir)?;
    for entry in archive.entries().context("not a tar.gz")? {
        let mut entry = entry.context("the archive is damaged")?;
        let path = check_entry(&entry)?;
        if manifest.is_some() {
            bail!("entry {path} follows the manifest, which must be last");
        }
        if path == FILE_NAME {
            manifest = Some(SpooledManifest::parse(&mut entry, spool_dir)?);
            continue;
        }
        let content = on_object(&path, &mut entry)?;
        seen.push(&Seen { path, content })?;
    }
    // What follows tar's end still belongs to the gzip stream: its trailer
    // (CRC and length) is checked only when the decoder reads to the end.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    let mut manifest = manifest.context("no manifest.json at the end; not a minio-snap archive")?;
    manifest.head.validate(name)?;
    match_entries(&mut seen, &mut manifest.objects)?;
    Ok(manifest)
}

/// The archive's object entries against the manifest's objects, side by
/// side: both are in the archive's order.
fn match_entries(seen: &mut Spool<Seen>, objects: &mut Spool<ObjectEntry>) -> anyhow::Result<()> {
    use anyhow::bail;
    let mut objects = objects.iter()?;
    let mut previous: Option<String> = None;
    for entry in seen.iter()? {
        let entry = entry?;
        let Some(object) = objects.next().transpose()? else {
            bail!("entry {} is not in the manifest", entry.path);
        };
        if object.path != entry.path {
            if previous.as_deref() == Some(entry.path.as_str()) {
                bail!("entry {} appears twice", entry.path);
            }
            bail!(
                "entry {} is not the object the manifest lists there ({}); the archive and its manifest disagree",
                entry.path,
                object.path
            );
        }
        if let Some(c) = &entry.content {
            if c.sha256 != object.sha256 || c.size != object.size {
                bail!(
                    "object {} has sha256 {} ({} bytes), the manifest records {} ({} bytes)",
                    object.key,
                    c.sha256,
                    c.size,
                    object.sha256,
                    object.size
                );
            }
        }
        previous = Some(entry.path);
    }
    if let Some(object) = objects.next().transpose()? {
        bail!("object {} listed in the manifest is missing", object.key);
    }
    Ok(())
}

/// An entry must be a regular file at a plain relative path: links, devices
/// and folders have no place in an archive of objects, and a path with `..` or
/// a leading `/` would lead out of wherever it is extracted.
pub fn check_entry<R: std::io::Read>(entry: &tar::Entry<'_, R>) -> anyhow::Result<String> {
    let path = entry
        .path()
        .map_err(|e| anyhow::anyhow!("an entry has a bad name: {e}"))?;
    let shown = path.to_string_lossy().into_owned();
    let plain = path
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        anyhow::bail!("entry {shown:?} escapes the archive's folder");
    }
    let kind = entry.header().entry_type();
    if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous) {
        anyhow::bail!("entry {shown:?} is a {kind:?}, not a regular file; refusing the archive");
    }
    Ok(shown)
}

impl Head {
    /// The head of the manifest of the archive named `name`: its format, kind,
    /// bucket and base make sense. A base is a full or incremental backup of
    /// the same bucket, named as we name them, earlier than this one, in the
    /// same folder: never a path.
    pub fn validate(&self, name: &str) -> anyhow::Result<()> {
        use anyhow::bail;
        if self.format != FORMAT {
            bail!("manifest format {:?} is not {FORMAT}", self.format);
        }
        backup_common::names::check_bucket(&self.bucket)
            .map_err(|e| anyhow::anyhow!("the manifest's bucket: {e}"))?;
        let this = backup_common::ArtifactName::parse(name);
        match (self.kind, &self.base) {
            (Kind::Full, None) => {}
            (Kind::Incremental, Some(base)) => {
                let parsed = backup_common::ArtifactName::parse(base).filter(|b| {
                    !base.contains('/')
                        && b.prefix == self.bucket
                        && (b.ext == "tar.gz" || b.ext == "incr.tar.gz")
                });
                let Some(parsed) = parsed else {
                    bail!(
                        "the manifest's base {base:?} is not a backup of bucket {} in the same folder",
                        self.bucket
                    );
                };
                if this
                    .as_ref()
                    .is_some_and(|t| parsed.timestamp >= t.timestamp)
                {
                    bail!("the manifest's base {base} is not older than the archive itself");
                }
            }
            (Kind::Full, Some(_)) => bail!("a full archive's manifest names a base"),
            (Kind::Incremental, None) => bail!("an incremental archive's manifest names no base"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::archive_path;

    #[test]
    fn safe_keys_keep_their_path_and_unsafe_ones_are_hashed() {
        assert_eq!(
            archive_path("documents", "a/b/ü 日本.pdf"),
            "documents_backup/a/b/ü 日本.pdf"
        );
        for bad in [
            "../etc/passwd",
            "/abs",
            "a//b",
            "a/./b",
            "tab\there",
            "",
            "a/..",
            &"x".repeat(300),
        ] {
            let p = archive_path("documents", bad);
            assert!(
                p.starts_with("documents_backup/.unsafe-keys/"),
                "{bad:?} → {p}"
            );
        }
        assert!(archive_path("d", ".unsafe-keys/x").starts_with("d_backup/.unsafe-keys/"));
    }
}
