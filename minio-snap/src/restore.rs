//! `restore`: resolve the chain (an incremental needs its base full and every
//! incremental between), then apply each archive in order: objects checked
//! against the manifest's sha256 before they are uploaded (or written under
//! `--to-dir`), deletions applied; `--delete-extra` removes what the backup does
//! not hold.

use crate::backup::{connect, manifest_of, COMPONENT};
use crate::cli::{Destination, RestoreArgs};
use crate::compare::{compare, Change};
use crate::manifest::{archive_path, ObjectEntry, SpooledManifest};
use crate::window::{Window, WHOLE_MAX};
use anyhow::{bail, Context, Result};
use backup_common::crypt::Decryption;
use backup_common::hashing::copy_hashed;
use backup_common::{cleanup, log, sidecar};

use backup_common::names::Selection;
use std::io::Read;
use std::path::{Path, PathBuf};

pub fn restore(
    args: &RestoreArgs,
    destination: &Destination,
    decryption: &Decryption,
) -> Result<()> {
    println!("{}", restore_into(args, destination, decryption)?);
    Ok(())
}

/// The restore, returning its summary (what `restore` prints).
pub fn restore_into(
    args: &RestoreArgs,
    destination: &Destination,
    decryption: &Decryption,
) -> Result<serde_json::Value> {
    let started = std::time::Instant::now();
    let mut chain = resolve_chain(&args.file, decryption)?;
    // MINIO_BUCKET set for backups to several buckets (or `all`) does not pick
    // a target: the archive's own bucket is restored then.
    let target_bucket = match Selection::parse(
        &args.endpoint.bucket,
        "MINIO_BUCKET",
        backup_common::names::check_bucket,
    )
    .map_err(backup_common::usage)?
    {
        Selection::Named(names) if names.len() == 1 => names[0].clone(),
        _ => chain
            .last()
            .map(|(_, _, manifest)| manifest.head.bucket.clone())
            .context("an archive chain is never empty")?,
    };
    let (s3, target_dir) = match destination {
        Destination::Bucket(credentials) => {
            let s3 = connect(&args.endpoint, &target_bucket, credentials)?;
            if !s3.bucket_exists()? {
                s3.create_bucket()?;
                log::log(COMPONENT, &format!("created bucket {target_bucket}"));
            }
            (Some(s3), None)
        }
        Destination::Dir(dir) => (None, Some(crate::extract::TargetDir::open(dir)?)),
    };
    let mut uploaded = 0u64;
    let mut deleted = 0u64;
    for (path, file, manifest) in &mut chain {
        log::log(
            COMPONENT,
            &format!(
                "applying {} ({} objects)",
                path.display(),
                manifest.objects.len()
            ),
        );
        uploaded += apply(
            path,
            file,
            manifest,
            s3.as_ref(),
            target_dir.as_ref(),
            decryption,
        )?;
        let bucket = manifest.head.bucket.clone();
        for key in manifest.deleted.iter()? {
            let key = key?;
            match (&s3, &target_dir) {
                (Some(s3), _) => s3.delete(&key)?,
                (None, Some(dir)) => dir.remove(&local_path(&bucket, &key))?,
                _ => {}
            }
            deleted += 1;
        }
    }
    if let (true, Some(s3)) = (args.delete_extra, &s3) {
        // The bucket's listing against the backup's key list, both in key
        // order: what only the bucket has goes.
        let last = &mut chain
            .last_mut()
            .expect("a chain has at least one archive")
            .2;
        let listing = s3
            .listing(args.endpoint.fast_list)
            .map(|o| o.map(crate::backup::key_state));
        compare(listing, last.keys.iter()?, |change| {
            if let Change::New(extra) = change {
                s3.delete(&extra.key)?;
                deleted += 1;
            }
            Ok(())
        })?;
    }
    Ok(serde_json::json!({
        "component": COMPONENT, "action": "restore", "status": "success",
        "file": args.file.file_name().map(|n| n.to_string_lossy().into_owned()),
        "chain": chain.iter().map(|(p, _, _)| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect::<Vec<_>>(),
        "target": args.to_dir.as_ref().map(|d| d.display().to_string()).unwrap_or(target_bucket),
        "objects_written": uploaded, "objects_deleted": deleted,
        "duration_seconds": started.elapsed().as_secs(),
    }))
}

/// The archives to apply, oldest (the full) first: each one opened once, its
/// sidecar checked and its manifest validated through that handle, which the
/// restore then reads. A base is only ever a name in the same folder
/// (`Manifest::validate`).
pub fn resolve_chain(
    file: &Path,
    decryption: &Decryption,
) -> Result<Vec<(PathBuf, std::fs::File, SpooledManifest)>> {
    let mut chain = Vec::new();
    let mut next = sidecar::check(file)?;
    loop {
        let path = next.path.clone();
        let manifest = manifest_of(&next.file, &path, decryption)?;
        let base = manifest.head.base.clone();
        chain.push((path.clone(), next.file, manifest));
        let Some(base) = base else { break };
        let base_path = path.with_file_name(&base);
        if base_path.symlink_metadata().is_err() {
            bail!(
                "{} builds on {base}, which is missing — the chain is broken; restore an earlier full backup",
                path.display()
            );
        }
        next = sidecar::check(&base_path)?;
        if next.sha256.is_none() {
            bail!(
                "{} builds on {base}, which has no .sha256 sidecar and so is not a backup \
                 (an interrupted publish?); restore an earlier full backup",
                path.display()
            );
        }
        if chain.len() > 10_000 {
            bail!(
                "the chain of {} does not end in a full backup",
                file.display()
            );
        }
    }
    chain.reverse();
    Ok(chain)
}

/// Where a key goes under `--to-dir`: its own path when that is safe, else
/// `.unsafe-keys/<sha256 of the key>` (the manifest maps it back).
fn local_path(bucket: &str, key: &str) -> PathBuf {
    let in_archive = archive_path(bucket, key);
    PathBuf::from(in_archive.trim_start_matches(&format!("{bucket}_backup/")))
}

/// Applies one archive: its object entries side by side with its manifest's
/// objects (both in the archive's order, as `read_archive` checked), each
/// one uploaded (or written) only if its content matches.
fn apply(
    path: &Path,
    file: &std::fs::File,
    manifest: &mut SpooledManifest,
    s3: Option<&crate::s3::S3>,
    to_dir: Option<&crate::extract::TargetDir>,
    decryption: &Decryption,
) -> Result<u64> {
    let bucket = manifest.head.bucket.clone();
    let listed = manifest.objects.len();
    let mut objects = manifest.objects.iter()?;
    let mut file = file.try_clone()?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let file = backup_common::progress::reading(&format!("restoring {name}"), file);
    let plain = decryption.reader(std::io::BufReader::new(file), &name)?;
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(
        std::io::BufReader::new(plain),
    ));
    let mut written = 0;
    let mut uploads = Window::default();
    for entry in archive.entries()? {
        let mut entry = entry.with_context(|| format!("{} is damaged", path.display()))?;
        // The same rules the manifest was read under (`read_archive`).
        let entry_path = crate::manifest::check_entry(&entry)
            .with_context(|| format!("{} is not a valid minio-snap archive", path.display()))?;
        if entry_path == crate::manifest::FILE_NAME {
            continue;
        }
        let object = match objects.next().transpose()? {
            Some(o) if o.path == entry_path => o,
            _ => bail!(
                "{}: entry {entry_path} is not the object its manifest lists there",
                path.display()
            ),
        };
        match (s3, to_dir) {
            (_, Some(dir)) => dir.write(&local_path(&bucket, &object.key), |file| {
                stage(&mut entry, file, &object)
            })?,
            (Some(s3), None) => {
                // Straight from the archive into the upload, hashed on the way;
                // nothing staged on disk, nothing stored that does not match.
                let size = entry.size();
                cleanup::failpoint("minio::restore::uploading");
                // Small ones are read whole (and checked) and uploaded in the
                // background, several at once; larger ones streamed, one at a time.
                if size <= WHOLE_MAX {
                    let mut data = Vec::with_capacity(size as usize);
                    (&mut entry)
                        .take(size)
                        .read_to_end(&mut data)
                        .with_context(|| format!("cannot read {} from the archive", object.key))?;
                    let upload = s3.put_in_background(&object.key, data, &object)?;
                    uploads.push(upload, size, |u| s3.finish_put(u))?;
                } else {
                    s3.put_object(&object.key, &mut entry, size, &object)?;
                }
            }
            (None, None) => unreachable!("restore has a bucket or a folder"),
        }
        written += 1;
    }
    // Every upload of this archive is done before its deletions, or the next
    // archive's version of a key, are applied.
    if let Some(s3) = s3 {
        uploads.finish(|u| s3.finish_put(u))?;
    }
    if written != listed {
        bail!(
            "{} holds {written} of the {listed} objects its manifest lists; it is incomplete",
            path.display(),
        );
    }
    Ok(written)
}

/// Writes one object to `out` while hashing it; refuses it unless it matches the manifest.
fn stage(entry: &mut impl Read, out: &mut std::fs::File, object: &ObjectEntry) -> Result<()> {
    let actual = copy_hashed(entry, out).map_err(|side| match side {
        Ok(read) => {
            anyhow::Error::new(read).context(format!("cannot read {} from the archive", object.key))
        }
        Err(write) => {
            anyhow::Error::new(write).context(format!("cannot write object {}", object.key))
        }
    })?;
    if actual != object.sha256 {
        bail!(
            "object {} has sha256 {actual}, the manifest records {}; not restored",
            object.key,
            object.sha256
        );
    }
    Ok(())
}
