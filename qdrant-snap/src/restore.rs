//! `restore`: check the sidecar, read the manifest (the archive's first entry),
//! then for each selected collection: stream its snapshot from the archive
//! straight into the upload (`POST /collections/{name}/snapshots/upload
//! ?priority=snapshot`), hashing it on the way — a snapshot that is not what
//! the manifest records ends the upload before its last byte — and check that
//! the restored collection has the recorded number of points. Nothing is
//! staged on disk.

use crate::api::Qdrant;
use crate::backup::COMPONENT;
use crate::cli::RestoreArgs;
use crate::manifest::{self, Kind, Manifest};
use anyhow::{bail, Context, Result};
use backup_common::crypt::Decryption;
use backup_common::{cleanup, log, sidecar};
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

pub fn restore(args: &RestoreArgs, qdrant: &Qdrant, decryption: &Decryption) -> Result<()> {
    println!("{}", run_restore(args, qdrant, decryption)?);
    Ok(())
}

/// Restores and returns the summary that `restore` prints.
pub fn run_restore(
    args: &RestoreArgs,
    qdrant: &Qdrant,
    decryption: &Decryption,
) -> Result<serde_json::Value> {
    let started = Instant::now();
    let sidecar::Checked {
        path: file,
        file: input,
        sha256: checked,
    } = sidecar::check(&args.file)?;
    if checked.is_none() {
        log::log(
            COMPONENT,
            &format!("{} has no .sha256 sidecar; not checked", file.display()),
        );
    }
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let input = backup_common::progress::reading(&format!("restoring {name}"), input);
    let plain = decryption.reader(std::io::BufReader::new(input), &name)?;
    let mut archive = tar::Archive::new(MultiGzDecoder::new(std::io::BufReader::new(plain)));
    let mut entries = archive
        .entries()
        .with_context(|| format!("{} is not a tar.gz archive", file.display()))?;

    let manifest = read_manifest(&mut entries, &file)?;
    if manifest.kind == Kind::Full {
        let name = manifest
            .full
            .as_ref()
            .map(|f| f.path.as_str())
            .unwrap_or("full/…");
        bail!(
            "{} holds a full-storage snapshot, which Qdrant restores at start-up: \
             extract {name} with `tar -xzf` and start Qdrant with --storage-snapshot <file>",
            file.display()
        );
    }
    let selected = select(&manifest, args)?;

    let mut restored = Vec::new();
    for entry in entries {
        let mut entry = entry.with_context(|| format!("{} is damaged", file.display()))?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some(recorded) = manifest.entry_for_path(&path) else {
            continue;
        };
        let Some(target) = selected
            .iter()
            .find(|(name, _)| *name == recorded.name)
            .map(|(_, t)| t.clone())
        else {
            continue;
        };
        let expected = recorded
            .snapshot
            .as_ref()
            .expect("entry_for_path found a snapshot");
        if entry.size() != expected.size {
            bail!(
                "{path} is {} bytes in the archive, the manifest records {}; the archive is damaged",
                entry.size(),
                expected.size
            );
        }
        log::log(
            COMPONENT,
            &format!("uploading {path} into collection {target}"),
        );
        cleanup::failpoint("qdrant::restore::uploading");
        qdrant
            .upload_snapshot(&target, &mut entry, expected.size, &expected.sha256)
            .with_context(|| path.clone())?;
        let (points, _) = qdrant.collection_info(&target)?;
        if points != recorded.points_count {
            bail!(
                "restored collection {target} has {points} points, the backup recorded {}",
                recorded.points_count
            );
        }
        log::log(
            COMPONENT,
            &format!("restored collection {target}: {points} points, as recorded"),
        );
        let mut pointed = Vec::new();
        if args.restore_aliases() {
            for alias in &recorded.aliases {
                qdrant.point_alias(alias, &target)?;
                pointed.push(alias.clone());
            }
            if !pointed.is_empty() {
                log::log(
                    COMPONENT,
                    &format!("aliases {} point to {target} again", pointed.join(", ")),
                );
            }
        }
        restored.push(serde_json::json!({"collection": recorded.name, "restored_as": target, "points_count": points, "aliases": pointed}));
    }
    if restored.len() != selected.len() {
        bail!(
            "{} lacks snapshots its manifest lists ({} of {} found); the archive is incomplete",
            file.display(),
            restored.len(),
            selected.len()
        );
    }
    Ok(serde_json::json!({
        "component": COMPONENT,
        "action": "restore",
        "status": "success",
        "file": file.file_name().map(|n| n.to_string_lossy().into_owned()),
        "sha256_checked": checked.is_some(),
        "collections": restored,
        "duration_seconds": started.elapsed().as_secs(),
    }))
}

/// The manifest of an archive, read from its first entry.
pub fn manifest_of(file: &Path, decryption: &Decryption) -> Result<Manifest> {
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let plain = decryption.reader(std::io::BufReader::new(input), &name)?;
    let mut archive = tar::Archive::new(MultiGzDecoder::new(std::io::BufReader::new(plain)));
    let mut entries = archive
        .entries()
        .with_context(|| format!("{} is not a tar.gz archive", file.display()))?;
    read_manifest(&mut entries, file)
}

fn read_manifest<R: Read>(entries: &mut tar::Entries<R>, file: &Path) -> Result<Manifest> {
    let mut first = entries
        .next()
        .with_context(|| format!("{} is an empty archive", file.display()))?
        .with_context(|| format!("{} is not a tar.gz archive", file.display()))?;
    if first.path()?.to_string_lossy() != manifest::FILE_NAME {
        bail!(
            "{} does not start with {}; it is not a qdrant-snap archive",
            file.display(),
            manifest::FILE_NAME
        );
    }
    let mut text = String::new();
    first.read_to_string(&mut text)?;
    let m: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: manifest.json is malformed", file.display()))?;
    if m.format != manifest::FORMAT {
        bail!("{}: unknown manifest format {:?}", file.display(), m.format);
    }
    Ok(m)
}

/// The (collection, target name) pairs to restore.
fn select(manifest: &Manifest, args: &RestoreArgs) -> Result<Vec<(String, String)>> {
    let available: Vec<&str> = manifest
        .collections
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let wanted: Vec<String> = if args.collections.is_empty() {
        available.iter().map(|s| s.to_string()).collect()
    } else {
        for c in &args.collections {
            if !available.contains(&c.as_str()) {
                return Err(backup_common::usage(format!(
                    "collection {c} is not in the archive (it holds: {})",
                    available.join(", ")
                )));
            }
        }
        args.collections.clone()
    };
    if let Some(new) = &args.rename {
        backup_common::names::check_collection(new)
            .map_err(|e| backup_common::usage(format!("--as: {e}")))?;
    }
    match &args.rename {
        Some(new) if wanted.len() == 1 => Ok(vec![(wanted[0].clone(), new.clone())]),
        Some(_) => Err(backup_common::usage(format!(
            "--as needs exactly one collection; select it with --collection (the archive holds: {})",
            available.join(", ")
        ))),
        None => Ok(wanted.iter().map(|c| (c.clone(), c.clone())).collect()),
    }
}
