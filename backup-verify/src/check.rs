//! The checks, by kind of artifact. Each reads the file exactly once: the bytes
//! go through a hasher (for the sidecar) on their way into the decoder.

use crate::Keys;
use anyhow::{anyhow, bail, Context, Result};
use backup_common::crypt;
use backup_common::dump_trailer::{DumpTail, Trailer};
use backup_common::hashing::HashingReader;
use backup_formats::qdrant::{self as qmanifest, Manifest};
use flate2::read::MultiGzDecoder;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Component as PathPart, Path};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `postgres/*.sql.gz`
    PgDump,
    /// `postgres/globals_*.sql.gz`: the cluster's roles and tablespaces
    PgGlobals,
    /// `qdrant/*.tar.gz`
    QdrantArchive,
    /// `n8n/workflows_*.json`
    N8nJson,
    /// `n8n/credentials_*.json` (encrypted as n8n stores them)
    N8nCredentials,
    /// `minio/*.tar.gz` and `minio/*.incr.tar.gz`
    MinioArchive,
}

impl Kind {
    /// The kind of an artifact from its name and folder (a weekly copy sits in
    /// `weekly/YYYY_WNN/<component>/`).
    pub fn of(path: &Path) -> Option<Kind> {
        let name = path.file_name()?.to_str()?;
        let name = name
            .strip_suffix(backup_common::crypt::SUFFIX)
            .unwrap_or(name);
        let folder = path.parent()?.file_name()?.to_str()?;
        match (folder, name) {
            ("postgres", n) if n.starts_with("globals_") && n.ends_with(".sql.gz") => {
                Some(Kind::PgGlobals)
            }
            ("postgres", n) if n.ends_with(".sql.gz") => Some(Kind::PgDump),
            ("qdrant", n) if n.ends_with(".tar.gz") => Some(Kind::QdrantArchive),
            ("minio", n) if n.ends_with(".tar.gz") => Some(Kind::MinioArchive),
            ("n8n", n) if n.starts_with("credentials_") && n.ends_with(".json") => {
                Some(Kind::N8nCredentials)
            }
            ("n8n", n) if n.ends_with(".json") => Some(Kind::N8nJson),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::PgDump => "postgres dump",
            Kind::PgGlobals => "postgres globals",
            Kind::QdrantArchive => "qdrant archive",
            Kind::N8nJson => "n8n workflows",
            Kind::N8nCredentials => "n8n credentials",
            Kind::MinioArchive => "minio archive",
        }
    }
}

/// What a check found besides "valid": the sha256 of the whole file, and the
/// artifact an incremental builds on (which must exist beside it).
#[derive(Debug)]
pub struct Checked {
    pub sha256: String,
    pub builds_on: Option<String>,
    /// Encrypted and no identity: only the age header was checked.
    pub header_only: bool,
}

/// Checks `content` as `kind`; `name` is the artifact's file name. The hash is
/// of the bytes as they are on disk (an encrypted file's sidecar hashes the
/// ciphertext); the checks read the plaintext, and n8n credentials are
/// decrypted with n8n's key when `keys` has it.
pub fn check(kind: Kind, name: &str, content: impl Read, keys: &Keys) -> Result<Checked> {
    let decryption = &keys.age;
    let mut tee = HashingReader::new(io::BufReader::with_capacity(256 * 1024, content));
    let mut builds_on = None;
    let header_only = crypt::is_encrypted(name) && !decryption.has_identity();
    if header_only {
        crypt::check_header(&mut tee)?;
    } else {
        let mut plain = decryption.reader(&mut tee, name)?;
        match kind {
            Kind::PgDump => check_pg_dump(&mut plain, Trailer::Database)?,
            Kind::PgGlobals => check_pg_dump(&mut plain, Trailer::Cluster)?,
            Kind::QdrantArchive => check_qdrant_archive(&mut plain)?,
            Kind::N8nJson => check_n8n(&mut plain)?,
            Kind::N8nCredentials => {
                check_n8n_credentials(&mut plain, keys.n8n.as_ref().map(|k| k.expose()))?
            }
            Kind::MinioArchive => builds_on = check_minio_archive(&mut plain, name)?,
        }
        // age authenticates each chunk as it is read, the last one included:
        // what the checks left unread is read (and so authenticated) too.
        io::copy(&mut plain, &mut io::sink()).context("the content does not decrypt whole")?;
    }
    // Whatever a decoder left unread still counts for the hash.
    io::copy(&mut tee, &mut io::sink()).context("read error")?;
    Ok(Checked {
        sha256: tee.sha256(),
        builds_on,
        header_only,
    })
}

/// The archive is well-formed (minio-snap's own rules: `read_archive`), and
/// every object entry's sha256 and size match the manifest, none missing;
/// returns the base of an incremental. The manifest's lists are spooled in
/// TMPDIR (the tree may be a read-only copy), never held in memory.
fn check_minio_archive(input: impl Read, name: &str) -> Result<Option<String>> {
    let mut counted = io::BufReader::new(input);
    let manifest = backup_formats::minio::read_archive(
        &mut counted,
        name,
        &std::env::temp_dir(),
        |_, entry| {
            let mut tee = HashingReader::new(entry);
            let size = io::copy(&mut tee, &mut io::sink()).map_err(gzip_error)?;
            Ok(Some(backup_formats::minio::Content {
                size,
                sha256: tee.sha256(),
            }))
        },
    )
    .map_err(|e| match e.downcast::<io::Error>() {
        Ok(io) => gzip_error(io),
        Err(e) => e,
    })?;
    io::copy(&mut counted, &mut io::sink()).map_err(gzip_error)?;
    Ok(manifest.head.base)
}

fn gzip_error(e: io::Error) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => anyhow!("gzip data ends early (truncated)"),
        _ => anyhow!("gzip data is corrupt: {e}"),
    }
}

/// Every gzip member decodes (CRC and length checked by the decoder), the SQL
/// holds nothing pg_dump never writes (what a restore would refuse) and it ends
/// with pg_dump's "dump complete" trailer.
fn check_pg_dump(input: impl Read, trailer: Trailer) -> Result<()> {
    let mut sql = MultiGzDecoder::new(input);
    let mut guard = backup_common::dump_sql::SqlGuard::default();
    let mut passed = Vec::new();
    let mut tail = DumpTail::of(trailer);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = sql.read(&mut buf).map_err(gzip_error)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        tail.push(&buf[..n]);
        passed.clear();
        guard.push(&buf[..n], &mut passed)?;
    }
    if total == 0 {
        bail!("empty dump");
    }
    // A cut-short dump is named as one, before the guard's view of its end.
    if !tail.is_complete() {
        bail!(
            "the SQL ends without the \"{}\" trailer (incomplete dump)",
            trailer.words()
        );
    }
    guard.finish(&mut passed)?;
    Ok(())
}

/// The manifest comes first; every snapshot's sha256 and size match it, each is
/// itself a readable tar, every listed snapshot is there, and no entry escapes.
fn check_qdrant_archive(input: impl Read) -> Result<()> {
    let mut archive = tar::Archive::new(MultiGzDecoder::new(input));
    let mut entries = archive.entries().map_err(gzip_error)?;
    let mut first = entries
        .next()
        .ok_or_else(|| anyhow!("empty archive"))?
        .map_err(gzip_error)?;
    if first.path().map_err(gzip_error)?.to_string_lossy() != qmanifest::FILE_NAME {
        bail!("the archive does not start with {}", qmanifest::FILE_NAME);
    }
    let mut text = String::new();
    first.read_to_string(&mut text).map_err(gzip_error)?;
    let manifest: Manifest = serde_json::from_str(&text).context("manifest.json is malformed")?;
    let mut expected: BTreeMap<String, (u64, String)> = manifest
        .collections
        .iter()
        .filter_map(|c| c.snapshot.as_ref())
        .chain(manifest.full.as_ref())
        .map(|s| (s.path.clone(), (s.size, s.sha256.clone())))
        .collect();

    for entry in entries {
        let entry = entry.map_err(gzip_error)?;
        let path = entry.path().map_err(gzip_error)?.into_owned();
        let shown = path.to_string_lossy().into_owned();
        if !is_safe(&path) {
            bail!("entry {shown:?} escapes the archive's folder");
        }
        let Some((size, sha)) = expected.remove(&shown) else {
            bail!("entry {shown} is not in the manifest");
        };
        let mut tee = HashingReader::new(entry);
        let valid_tar = is_readable_tar(&mut tee);
        io::copy(&mut tee, &mut io::sink()).map_err(gzip_error)?;
        let entry_size = tee.inner.size();
        let actual = tee.sha256();
        if actual != sha {
            bail!("snapshot {shown} has sha256 {actual}, the manifest records {sha}");
        }
        if entry_size != size {
            bail!("snapshot {shown} is {entry_size} bytes, the manifest records {size}");
        }
        if let Err(e) = valid_tar {
            bail!("snapshot {shown} is not a valid tar file: {e}");
        }
    }
    if let Some(missing) = expected.keys().next() {
        bail!("snapshot {missing} listed in the manifest is missing");
    }
    drain_gzip(archive)
}

/// tar stops at its end-of-archive blocks; the gzip stream behind them must
/// still end properly (its CRC and length are in the last 8 bytes).
fn drain_gzip<R: Read>(archive: tar::Archive<MultiGzDecoder<R>>) -> Result<()> {
    let mut gz = archive.into_inner();
    io::copy(&mut gz, &mut io::sink()).map_err(gzip_error)?;
    Ok(())
}

fn is_safe(path: &Path) -> bool {
    path.components().all(|c| matches!(c, PathPart::Normal(_)))
}

/// Reads a (nested) tar to its end; the bytes still pass through the caller's hasher.
fn is_readable_tar(input: &mut impl Read) -> Result<()> {
    let mut nested = tar::Archive::new(input);
    let mut count = 0;
    for entry in nested.entries()? {
        let mut entry = entry?;
        io::copy(&mut entry, &mut io::sink())?;
        count += 1;
    }
    if count == 0 {
        bail!("it holds no entries");
    }
    Ok(())
}

/// An array of workflows, each with id, name, nodes and connections, as
/// `n8n export:workflow --all` writes them.
fn check_n8n(input: impl Read) -> Result<()> {
    let value: serde_json::Value =
        serde_json::from_reader(input).map_err(|e| anyhow!("not valid JSON: {e}"))?;
    backup_formats::n8n::validate_workflows(&value)?;
    Ok(())
}

/// An array of credentials, each with id, name, type and its encrypted data;
/// given n8n's key, every one of them decrypts with it.
fn check_n8n_credentials(input: impl Read, n8n_key: Option<&str>) -> Result<()> {
    let value: serde_json::Value =
        serde_json::from_reader(input).map_err(|e| anyhow!("not valid JSON: {e}"))?;
    match n8n_key {
        Some(key) => backup_formats::n8n::check_credentials_key(&value, key).map(drop),
        None => backup_formats::n8n::validate_credentials(&value).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_folder_and_extension() {
        assert_eq!(
            Kind::of(Path::new("/b/postgres/db_20240101_000000.sql.gz")),
            Some(Kind::PgDump)
        );
        assert_eq!(
            Kind::of(Path::new(
                "/b/weekly/2024_W01/qdrant/qdrant_20240101_000000.tar.gz"
            )),
            Some(Kind::QdrantArchive)
        );
        assert_eq!(
            Kind::of(Path::new("/b/n8n/workflows_20240101_000000.json")),
            Some(Kind::N8nJson)
        );
        assert_eq!(Kind::of(Path::new("/b/postgres/notes.txt")), None);
    }

    #[test]
    fn n8n_workflows_need_their_fields() {
        let good = br#"[{"id":"1","name":"a","nodes":[],"connections":{}}]"#;
        assert!(check(
            Kind::N8nJson,
            "workflows_20240101_000000.json",
            &good[..],
            &Keys::default()
        )
        .is_ok());
        assert!(
            check(
                Kind::N8nJson,
                "workflows_20240101_000000.json",
                &b"[]"[..],
                &Keys::default()
            )
            .is_ok(),
            "an empty instance is a valid backup"
        );
        let bad = br#"[{"id":"1","name":"a","nodes":[]}]"#;
        assert!(check(
            Kind::N8nJson,
            "workflows_20240101_000000.json",
            &bad[..],
            &Keys::default()
        )
        .unwrap_err()
        .to_string()
        .contains("workflow #0"));
        assert!(check(
            Kind::N8nJson,
            "workflows_20240101_000000.json",
            &b"{}"[..],
            &Keys::default()
        )
        .is_err());
    }

    #[test]
    fn n8n_credentials_must_stay_encrypted_records() {
        let good = br#"[{"id":"1","name":"pg","type":"postgres","data":"U2FsdGVkX1+abc"}]"#;
        assert!(check(
            Kind::N8nCredentials,
            "credentials_20240101_000000.json",
            &good[..],
            &Keys::default()
        )
        .is_ok());
        let decrypted = br#"[{"id":"1","name":"pg","type":"postgres","data":{"password":"x"}}]"#;
        assert!(check(
            Kind::N8nCredentials,
            "credentials_20240101_000000.json",
            &decrypted[..],
            &Keys::default()
        )
        .is_err());
    }

    #[test]
    fn unsafe_paths_are_recognised() {
        assert!(is_safe(Path::new("snapshots/a/b.snapshot")));
        assert!(!is_safe(Path::new("../x")));
        assert!(!is_safe(Path::new("/etc/passwd")));
        assert!(!is_safe(Path::new("snapshots/../../x")));
    }
}
