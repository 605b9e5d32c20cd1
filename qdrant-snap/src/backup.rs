//! `backup`: snapshot → download (hashed while it streams into the archive) →
//! compare with Qdrant's checksum → delete the server's copy → atomic publish.

use crate::api::{Qdrant, SnapshotInfo};
use crate::cli::BackupArgs;
use crate::manifest::{self, CollectionEntry, Kind, Manifest, SnapshotFile};
use anyhow::{bail, Context, Result};
use backup_common::crypt::Encryption;
use backup_common::hashing::HashingReader;
use backup_common::tool::BackupRun;
use backup_common::{lock, log, publish, PendingArtifact, ResultRecord};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};

pub const COMPONENT: &str = "qdrant";

pub fn backup(
    run: &BackupRun,
    args: &BackupArgs,
    qdrant: &Qdrant,
    encryption: &Encryption,
) -> Result<()> {
    for name in &args.collections {
        backup_common::names::check_collection(name)
            .map_err(|e| backup_common::usage(format!("--collection: {e}")))?;
    }
    if args.output.to_stdout() {
        let stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let mut out = encryption.wrap(stdout)?;
        write_archive(qdrant, args, &mut out)?;
        out.finish()?.flush()?;
        return Ok(());
    }
    let dir = args.tree.backup_dir.join(COMPONENT);
    publish::ensure_dir(&dir)?;
    let _lock = lock::lock_dir(&dir)?;
    let mut pending = PendingArtifact::create_now(&dir, "qdrant", "tar.gz", encryption)?;
    let manifest =
        write_archive(qdrant, args, &mut pending).map_err(|e| publish::disk_full_hint(e, &dir))?;
    let names: Vec<&str> = manifest
        .collections
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let published = run
        .publish(vec![pending], |published| {
            ResultRecord::success(COMPONENT, &published[0])
                .with("kind", if args.full { "full" } else { "collections" })
                .with("collections", names.clone())
                .with(
                    "points",
                    manifest
                        .collections
                        .iter()
                        .map(|c| c.points_count)
                        .sum::<u64>(),
                )
        })
        .map_err(|e| publish::disk_full_hint(e, &dir))?;
    let published = &published[0];
    log::log(
        COMPONENT,
        &format!(
            "published {} ({} bytes; {} collection(s): {})",
            published.file_name,
            published.size_bytes,
            names.len(),
            names.join(", ")
        ),
    );
    Ok(())
}

/// Snapshots are created first, so that the manifest (with Qdrant's checksums)
/// can be the archive's first entry; then each is downloaded into the archive.
fn write_archive<W: Write>(qdrant: &Qdrant, args: &BackupArgs, out: W) -> Result<Manifest> {
    let names = if args.collections.is_empty() {
        let listed = qdrant.list_collections()?;
        // They become archive paths: a name Qdrant itself would refuse is refused here.
        for name in &listed {
            backup_common::names::check_collection(name)
                .map_err(|e| anyhow::anyhow!("Qdrant listed a {e}; refusing to archive it"))?;
        }
        listed
    } else {
        args.collections.clone()
    };
    if names.is_empty() && !args.full {
        log::log(
            COMPONENT,
            "Qdrant has no collections; the archive holds an empty manifest",
        );
    }
    let aliases = qdrant.list_aliases()?;
    let mut collections = Vec::new();
    for name in &names {
        let (points_count, vectors) = qdrant.collection_info(name)?;
        collections.push(CollectionEntry {
            name: name.clone(),
            points_count,
            vectors,
            snapshot: None,
            aliases: aliases
                .iter()
                .filter(|(_, c)| c == name)
                .map(|(a, _)| a.clone())
                .collect(),
        });
    }

    // Every snapshot made on the server is deleted again, whatever happens next.
    let mut made: Vec<(Option<String>, SnapshotInfo)> = Vec::new();
    let result = (|| -> Result<Manifest> {
        let mut full = None;
        if args.full {
            let info = qdrant.create_snapshot(None)?;
            log::log(
                COMPONENT,
                &format!(
                    "created full-storage snapshot {} ({} bytes)",
                    info.name, info.size
                ),
            );
            full = Some(file_entry(format!("full/{}", info.name), &info));
            made.push((None, info));
        } else {
            for c in collections.iter_mut() {
                let info = qdrant.create_snapshot(Some(&c.name))?;
                log::log(
                    COMPONENT,
                    &format!(
                        "created snapshot {} of {} ({} bytes, {} points)",
                        info.name, c.name, info.size, c.points_count
                    ),
                );
                c.snapshot = Some(file_entry(
                    manifest::snapshot_path(&c.name, &info.name),
                    &info,
                ));
                made.push((Some(c.name.clone()), info));
            }
        }
        let manifest = Manifest {
            format: manifest::FORMAT.into(),
            created: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            qdrant_version: qdrant.version(),
            kind: if args.full {
                Kind::Full
            } else {
                Kind::Collections
            },
            collections: collections.clone(),
            full,
        };

        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::new(args.level)));
        let manifest_json = serde_json::to_vec_pretty(&manifest)?;
        append(
            &mut tar,
            manifest::FILE_NAME,
            manifest_json.len() as u64,
            &mut &manifest_json[..],
        )
        .context("cannot write the archive")?;
        for (collection, info) in &made {
            let path = match collection {
                Some(c) => manifest::snapshot_path(c, &info.name),
                None => format!("full/{}", info.name),
            };
            download_into(qdrant, &mut tar, collection.as_deref(), info, &path)?;
        }
        tar.into_inner()
            .and_then(|gz| gz.finish())
            .and_then(|mut w| w.flush())
            .context("cannot write the archive")?;
        Ok(manifest)
    })();
    if !args.keep_remote {
        for (collection, info) in &made {
            qdrant.delete_snapshot(collection.as_deref(), &info.name);
        }
    }
    result
}

fn file_entry(path: String, info: &SnapshotInfo) -> SnapshotFile {
    SnapshotFile {
        path,
        size: info.size,
        sha256: info.checksum.clone(),
    }
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: &mut dyn Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, data)
}

/// Streams one snapshot into the archive, hashing it on the way; fails unless
/// exactly the announced bytes arrived and their sha256 is Qdrant's checksum.
fn download_into<W: Write>(
    qdrant: &Qdrant,
    tar: &mut tar::Builder<W>,
    collection: Option<&str>,
    info: &SnapshotInfo,
    path: &str,
) -> Result<()> {
    let response = qdrant.download(collection, &info.name)?;
    let mut reader = HashingReader::new(response);
    // Per collection, on a terminal only.
    let progress = backup_common::progress::Progress::bytes(
        &format!("downloading {}", collection.unwrap_or("the full snapshot")),
        Some(info.size),
    );
    // Large reads: the tar writer copies through a small buffer otherwise.
    let mut buffered =
        std::io::BufReader::with_capacity(CHUNK, progress.counting((&mut reader).take(info.size)));
    let appended = append(tar, path, info.size, &mut buffered);
    drop(buffered);
    if let Some(e) = reader.error.take() {
        bail!(
            "downloading snapshot {} broke off after {} of {} bytes: {e}",
            info.name,
            reader.bytes,
            info.size
        );
    }
    appended.context("cannot write the archive")?;
    if reader.bytes != info.size {
        bail!(
            "downloading snapshot {} ended after {} of {} bytes — the connection was cut",
            info.name,
            reader.bytes,
            info.size
        );
    }
    let sha = reader.sha256();
    if sha != info.checksum {
        bail!(
            "snapshot {} has sha256 {sha} but Qdrant reported {}; the download is corrupt",
            info.name,
            info.checksum
        );
    }
    log::log(
        COMPONENT,
        &format!(
            "downloaded {} ({} bytes, checksum matches)",
            info.name, info.size
        ),
    );
    Ok(())
}

const CHUNK: usize = 1 << 20;
