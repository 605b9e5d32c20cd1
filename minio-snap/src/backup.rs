//! `backup`: list the bucket, stream every object (or, incremental, every new
//! or changed one) into the tar.gz in key order, hashed on the way, manifest
//! last, then publish atomically.

use crate::cli::{BackupArgs, Credentials, Endpoint, Kind};
use crate::compare::{compare, Change};
use crate::manifest::{self, Head, KeyState, ObjectEntry, Spool, SpooledManifest};
use crate::s3::{Listed, Prefetched, S3};
use anyhow::{bail, Context, Result};
use backup_common::crypt::{Decryption, Encryption};
use backup_common::hashing::HashingReader;
use backup_common::names::Selection;
use backup_common::parallel_gzip::ParallelGzWriter;
use backup_common::tool::BackupRun;
use backup_common::{lock, log, publish, ArtifactName, PendingArtifact, ResultRecord};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const COMPONENT: &str = "minio";

pub fn connect(endpoint: &Endpoint, bucket: &str, credentials: &Credentials) -> Result<S3> {
    backup_common::names::check_bucket(bucket)
        .map_err(|e| backup_common::usage(format!("MINIO_BUCKET: {e}")))?;
    S3::new(
        &endpoint.url(),
        &endpoint.region,
        bucket,
        credentials.user.expose(),
        &credentials.password,
        &endpoint.timeouts,
    )
}

/// The buckets a backup takes, in order: those MINIO_BUCKET names, or (`all`)
/// every bucket the credentials can list.
pub fn buckets(endpoint: &Endpoint, credentials: &Credentials) -> Result<Vec<String>> {
    match Selection::parse(
        &endpoint.bucket,
        "MINIO_BUCKET",
        backup_common::names::check_bucket,
    )
    .map_err(backup_common::usage)?
    {
        Selection::Named(names) => Ok(names),
        Selection::All => {
            let names = crate::s3::list_buckets(
                &endpoint.url(),
                &endpoint.region,
                credentials.user.expose(),
                &credentials.password,
                &endpoint.timeouts,
            )?;
            log::log(
                COMPONENT,
                &format!(
                    "MINIO_BUCKET=all: {} bucket(s): {}",
                    names.len(),
                    names.join(", ")
                ),
            );
            Ok(names)
        }
    }
}

/// Archives `bucket`. `crypt`: how the new archive is written, and what
/// opens an encrypted base.
pub fn backup(
    run: &BackupRun,
    args: &BackupArgs,
    bucket: &str,
    credentials: &Credentials,
    crypt: (&Encryption, &Decryption),
) -> Result<()> {
    let (encryption, decryption) = crypt;
    let s3 = connect(&args.endpoint, bucket, credentials)?;
    let dir = args.tree.backup_dir.join(COMPONENT);
    let to_stdout = args.output.to_stdout();
    // `-o -` writes nothing to the tree (an incremental still reads its base there).
    let _lock = if to_stdout {
        None
    } else {
        publish::ensure_dir(&dir)?;
        Some(lock::lock_dir(&dir)?)
    };

    let base = match args.kind {
        Kind::Full => None,
        Kind::Incremental => match newest_in_chain(&dir, bucket)? {
            // The host that only encrypts cannot read what it wrote: without
            // the identity an encrypted base gives nothing to compare with.
            Some(path)
                if backup_common::crypt::is_encrypted(&path.to_string_lossy())
                    && !decryption.has_identity() =>
            {
                log::log(
                    COMPONENT,
                    &format!(
                        "{} is encrypted and BACKUP_AGE_IDENTITY_FILE is not set, so it cannot be \
                         compared with; making a full backup",
                        path.display()
                    ),
                );
                None
            }
            Some(path) => Some(path),
            None => {
                log::log(
                    COMPONENT,
                    "no earlier full backup to build on; making a full one",
                );
                None
            }
        },
    };
    let ext = if base.is_some() {
        "incr.tar.gz"
    } else {
        "tar.gz"
    };
    let head = Head {
        format: manifest::FORMAT.into(),
        bucket: bucket.to_owned(),
        kind: if base.is_some() {
            manifest::Kind::Incremental
        } else {
            manifest::Kind::Full
        },
        created: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        base: base
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned()),
    };
    // The lists go to unnamed temp files beside the archive (`Spool`), so a
    // bucket of any size costs disk, not memory; `-o -` into a tree that is
    // not there yet spools in TMPDIR.
    let spool_dir = if dir.is_dir() {
        dir.clone()
    } else {
        std::env::temp_dir()
    };
    let mut manifest = SpooledManifest::new(head, &spool_dir)?;
    let mut selected = Selected {
        keys: Spool::new(&spool_dir)?,
        bytes: 0,
    };
    // The base is read to its end (its manifest is the last entry) while the
    // bucket is listed: one waits on the disk and gzip, the other on the server.
    let mut base_manifest = std::thread::scope(|scope| -> Result<Option<SpooledManifest>> {
        let reading = base
            .as_deref()
            .map(|path| scope.spawn(move || read_manifest(path, decryption)));
        for listed in s3.listing(args.endpoint.fast_list) {
            manifest.keys.push(&key_state(listed?))?;
        }
        reading
            .map(|r| r.join().expect("reading the base does not panic"))
            .transpose()
    })?;
    let before: Box<dyn Iterator<Item = Result<KeyState>>> = match &mut base_manifest {
        Some(prev) => Box::new(prev.keys.iter()?),
        None => Box::new(std::iter::empty()),
    };
    let deleted = &mut manifest.deleted;
    compare(manifest.keys.iter()?, before, |change| {
        selected.take(change, deleted)
    })?;
    if to_stdout {
        let stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let mut out = encryption.wrap(stdout)?;
        write_archive(&s3, &mut selected, &mut manifest, args.level, &mut out)?;
        out.finish()?.flush()?;
        return Ok(());
    }
    let mut pending = PendingArtifact::create_now(&dir, bucket, ext, encryption)?;
    let written = write_archive(&s3, &mut selected, &mut manifest, args.level, &mut pending)
        .map_err(|e| publish::disk_full_hint(e, &dir))?;
    let published = run
        .publish(vec![pending], |published| {
            let mut record = ResultRecord::success(COMPONENT, &published[0])
                .with("kind", manifest.head.kind.name())
                .with("objects", written.objects)
                .with("object_bytes", written.bytes);
            if let Some(b) = &manifest.head.base {
                record = record.with("base", b.clone());
            }
            record
        })
        .map_err(|e| publish::disk_full_hint(e, &dir))?;
    let published = &published[0];
    log::log(
        COMPONENT,
        &format!(
            "published {} ({} of {} objects, {} bytes of objects, {} deleted since the base)",
            published.file_name,
            written.objects,
            manifest.keys.len(),
            written.bytes,
            manifest.deleted.len()
        ),
    );
    Ok(())
}

/// A listed object as the manifest keeps it.
pub fn key_state(listed: Listed) -> KeyState {
    KeyState {
        key: listed.key,
        etag: listed.etag,
        last_modified: listed.last_modified,
        size: listed.size,
    }
}

/// The objects the archive is to hold, in key order.
struct Selected {
    keys: Spool<KeyState>,
    bytes: u64,
}

impl Selected {
    /// Files one key's [`Change`] where it belongs: what must be fetched
    /// here, a deleted key in the manifest's deleted list.
    fn take(&mut self, change: Change, deleted: &mut Spool<String>) -> Result<()> {
        if let Some(k) = change.fetch() {
            self.keys.push(k)?;
            self.bytes += k.size;
        }
        match change {
            Change::Gone(key) => deleted.push(&key),
            Change::New(_) | Change::Changed(_) | Change::Unchanged(_) => Ok(()),
        }
    }
}

/// What an archive holds: objects and their bytes.
struct Written {
    objects: u64,
    bytes: u64,
}

fn write_archive<W: Write>(
    s3: &S3,
    selected: &mut Selected,
    manifest: &mut SpooledManifest,
    level: u32,
    out: W,
) -> Result<Written> {
    // Both cores compress: deflate is what a backup of a bucket spends its time on.
    let mut tar = tar::Builder::new(ParallelGzWriter::new(
        out,
        flate2::Compression::new(level),
        2,
    ));
    let progress = Progress::new(selected.keys.len(), selected.bytes);
    let bucket = manifest.head.bucket.clone();
    let mut upcoming = selected.keys.iter()?;
    // Small objects are fetched ahead, several at once; they are written (and
    // large ones streamed) strictly in key order, so the entries' order (not the
    // bytes: tar headers carry the time of the backup) depends only on the bucket.
    // The window holds the next IN_FLIGHT keys; the first `considered` of
    // them have had their chance at a fetch ahead.
    let mut window: VecDeque<(KeyState, Option<Fetch>)> = VecDeque::new();
    let mut considered = 0;
    let (mut prefetched_bytes, mut in_flight) = (0u64, 0usize);
    let mut written = Written {
        objects: 0,
        bytes: 0,
    };
    loop {
        while window.len() < IN_FLIGHT {
            match upcoming.next() {
                Some(k) => window.push_back((k?, None)),
                None => break,
            }
        }
        while let Some((k, fetch)) = window.get_mut(considered) {
            if k.size <= PREFETCH_MAX {
                if prefetched_bytes + k.size > PREFETCH_BUDGET && in_flight > 0 {
                    break;
                }
                *fetch = Some(s3.prefetch(&k.key, k.size));
                prefetched_bytes += k.size;
                in_flight += 1;
            }
            considered += 1;
        }
        let Some((k, fetch)) = window.pop_front() else {
            break;
        };
        // The front always had its chance: with nothing in flight before it,
        // the budget never holds it back.
        considered -= 1;
        let path = manifest::archive_path(&bucket, &k.key);
        let mut header = tar::Header::new_gnu();
        header.set_size(k.size);
        header.set_mode(0o600);
        header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        let (content_type, metadata, sha256, read) = if let Some(handle) = fetch {
            let object = s3.finish(handle)?;
            prefetched_bytes -= k.size;
            in_flight -= 1;
            tar.append_data(&mut header, &path, &object.data[..])
                .context("cannot write the archive")?;
            let sha = hex::encode(Sha256::digest(&object.data));
            (
                object.content_type,
                object.metadata,
                sha,
                object.data.len() as u64,
            )
        } else {
            let object = s3.get(&k.key)?;
            let mut reader = HashingReader::new(object.body);
            tar.append_data(&mut header, &path, (&mut reader).take(k.size))
                .with_context(|| format!("GET {} broke off", k.key))?;
            let read = reader.bytes;
            (object.content_type, object.metadata, reader.sha256(), read)
        };
        if read != k.size {
            bail!(
                "object {} changed while the backup ran ({read} bytes read, {} listed); run it again",
                k.key,
                k.size
            );
        }
        progress.object_done(read);
        written.objects += 1;
        written.bytes += read;
        manifest.objects.push(&ObjectEntry {
            key: k.key,
            path,
            size: k.size,
            etag: k.etag,
            sha256,
            last_modified: k.last_modified,
            content_type,
            metadata,
        })?;
    }
    progress.finish();
    let (json, len) = manifest.json()?;
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o600);
    header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    tar.append_data(&mut header, manifest::FILE_NAME, json)
        .context("cannot write the archive")?;
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .and_then(|mut w| w.flush())
        .context("cannot write the archive")?;
    Ok(written)
}

type Fetch = tokio::task::JoinHandle<Result<Prefetched>>;

/// Objects up to this size are fetched whole, ahead of their turn, several at
/// once: a server streams one object much slower than it serves many.
const PREFETCH_MAX: u64 = 4 << 20;
/// At most this many bytes fetched ahead, so memory does not grow with the bucket.
const PREFETCH_BUDGET: u64 = 10 << 20;
/// How far ahead of the object being written fetches may run. With the byte
/// budget above, the window adapts to object size: small objects cost a
/// request each, so many are in flight (a server answers many requests at
/// once much faster than one after the other); large ones fill the budget
/// with a few. Measured on s3s-fs, 100,000 objects of 0-16 bytes: 128 in
/// flight 40 s, 256 24 s, 512 19 s, 1,024 19 s — a small answer there waits
/// ~40 ms on its connection (delayed ACKs), so the pace is the number in
/// flight; each costs ~50 KB (512: 52 MiB peak RSS, 1,024: 82 MiB) and a
/// file descriptor (a soft limit of 1,024 is common).
const IN_FLIGHT: usize = 512;

/// Objects, bytes and rate on stderr when it is a terminal; nothing under cron.
struct Progress {
    bar: backup_common::progress::Progress,
    done: std::cell::Cell<u64>,
    total: u64,
}

impl Progress {
    fn new(total: u64, bytes: u64) -> Progress {
        Progress {
            bar: backup_common::progress::Progress::bytes(
                &format!("0/{total} objects"),
                Some(bytes),
            ),
            done: std::cell::Cell::new(0),
            total,
        }
    }

    fn object_done(&self, bytes: u64) {
        self.done.set(self.done.get() + 1);
        self.bar.inc(bytes);
        self.bar
            .set_message(format!("{}/{} objects", self.done.get(), self.total));
    }

    fn finish(&self) {
        self.bar.finish();
    }
}

/// The newest backup of `bucket` in `dir` (full or incremental), if there is a
/// full one at all for an incremental to build on. Only backups count: an
/// archive without its sidecar is never a base.
pub fn newest_in_chain(dir: &Path, bucket: &str) -> Result<Option<PathBuf>> {
    let found = backup_common::folder::scan(dir, backup_common::Component::Minio)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    for orphan in &found.orphans {
        log::log(
            COMPONENT,
            &backup_common::folder::orphan_warning(dir, orphan),
        );
    }
    let ours: Vec<ArtifactName> = found
        .backups
        .into_iter()
        .filter(|n| n.prefix == bucket)
        .collect();
    if !ours.iter().any(|n| n.ext == "tar.gz") {
        return Ok(None);
    }
    Ok(ours.last().map(|n| dir.join(n.file_name())))
}

pub use backup_formats::minio::{manifest_of, read_manifest};
