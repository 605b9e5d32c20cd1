//! `restore-test`: an archive (with its whole chain) restored into a scratch
//! bucket `<bucket>-verify-<random>`, every object read back and compared with
//! what the manifests say the bucket held — sha256, size, content type and
//! metadata — and the scratch bucket deleted again: when the drill passes,
//! when it fails, and when a signal ends it. backup-verify --restore-test runs
//! it. Like a restore, it never holds a manifest whole: what the bucket should
//! hold is a merge of the chain's object lists, compared with the scratch
//! bucket's listing as both stream by in key order.

use crate::backup::{connect, COMPONENT};
use crate::cli::{Credentials, Destination, Endpoint, RestoreArgs, RestoreTestArgs};
use crate::manifest::{KeyState, ObjectEntry, SpooledManifest};
use crate::s3::{Prefetched, S3};
use crate::window::{Window, WHOLE_MAX};
use anyhow::{anyhow, bail, Context, Result};
use backup_common::cleanup;
use backup_common::crypt::Decryption;
use backup_common::hashing::HashingReader;
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::time::Instant;

/// What the bucket held when the newest archive of a chain was made, in key
/// order: each key of the newest archive's listing (deletions are already
/// out of it), with the entry of the newest archive that wrote it. `archives`
/// are the chain's object lists, oldest first. Every list is in key order
/// (checked when its manifest was read), so this is a merge that holds one
/// entry per archive, whatever the bucket's size (pure).
pub fn expected<K, O>(keys: K, archives: Vec<O>) -> Expected<K, O>
where
    K: Iterator<Item = Result<KeyState>>,
    O: Iterator<Item = Result<ObjectEntry>>,
{
    Expected {
        keys,
        archives: archives.into_iter().map(Iterator::peekable).collect(),
    }
}

pub struct Expected<K, O: Iterator> {
    keys: K,
    archives: Vec<Peekable<O>>,
}

impl<K, O> Iterator for Expected<K, O>
where
    K: Iterator<Item = Result<KeyState>>,
    O: Iterator<Item = Result<ObjectEntry>>,
{
    type Item = Result<ObjectEntry>;

    fn next(&mut self) -> Option<Result<ObjectEntry>> {
        let key = match self.keys.next()? {
            Ok(k) => k.key,
            Err(e) => return Some(Err(e)),
        };
        let mut newest = None;
        for objects in &mut self.archives {
            // Past what sorts before the key; the newest archive holding it wins.
            while objects
                .next_if(|o| o.as_ref().is_ok_and(|o| o.key < key))
                .is_some()
            {}
            match objects.next_if(|o| o.as_ref().map_or(true, |o| o.key == key)) {
                Some(Ok(entry)) => newest = Some(entry),
                Some(Err(e)) => return Some(Err(e)),
                None => {}
            }
        }
        Some(newest.ok_or_else(|| {
            anyhow!(
                "{key:?} is in the newest archive's listing, yet no archive of the chain holds \
                 it; the chain is inconsistent"
            )
        }))
    }
}

/// `<bucket>-verify-<8 random characters>`, within S3's 63 characters.
pub fn scratch_name(bucket: &str) -> String {
    let suffix: String = std::iter::repeat_with(fastrand::lowercase)
        .take(8)
        .collect();
    let room = 63 - "-verify-".len() - suffix.len();
    let base = bucket[..bucket.len().min(room)].trim_end_matches(['-', '.']);
    format!("{base}-verify-{suffix}")
}

/// Empties and deletes the scratch bucket (what a drill leaves must go).
fn remove(s3: &S3, fast_list: bool) -> Result<()> {
    if !s3.bucket_exists()? {
        return Ok(());
    }
    for o in s3.listing(fast_list) {
        s3.delete(&o?.key)?;
    }
    s3.delete_bucket()
}

pub fn restore_test(
    args: &RestoreTestArgs,
    credentials: &Credentials,
    decryption: &Decryption,
) -> Result<()> {
    let started = Instant::now();
    let mut chain = crate::restore::resolve_chain(&args.file, decryption)?;
    let bucket = chain
        .last()
        .map(|(_, _, m)| m.head.bucket.clone())
        .unwrap_or_default();
    let archives = chain.len();
    let scratch = scratch_name(&bucket);
    let endpoint = Endpoint {
        bucket: scratch.clone(),
        ..args.endpoint.clone()
    };
    let s3 = connect(&endpoint, &scratch, credentials)?;
    if s3.bucket_exists()? {
        bail!("the scratch bucket {scratch} exists already; not touching it");
    }
    // From here on the scratch bucket goes whatever happens: a signal removes
    // it through a client of its own (the main thread may be mid-request).
    let (hook_endpoint, hook_user, hook_password) = (
        endpoint.clone(),
        credentials.user.clone(),
        credentials.password.clone(),
    );
    let scratch_target = cleanup::Scratch::watch(COMPONENT, "bucket", move |name| {
        let creds = Credentials {
            user: hook_user.clone(),
            password: hook_password.clone(),
        };
        let s3 = connect(&hook_endpoint, name, &creds)?;
        // The main thread may still be writing into it (an upload under way
        // when the signal came): what appears after a pass goes in the next.
        let mut last = Ok(());
        for pass in 0..5 {
            last = remove(&s3, hook_endpoint.fast_list);
            if last.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200 << pass));
        }
        last
    })
    .context("cannot watch for signals")?;
    scratch_target.set(Some(&scratch));
    let mut manifests: Vec<&mut SpooledManifest> = chain.iter_mut().map(|(_, _, m)| m).collect();
    let compared = drill(
        args,
        &endpoint,
        credentials,
        decryption,
        &s3,
        &mut manifests,
    );
    let removed = remove(&s3, endpoint.fast_list).with_context(|| {
        format!("the scratch bucket {scratch} could not be removed — delete it by hand")
    });
    let (objects, bytes) = compared?;
    removed?;
    println!(
        "{}",
        serde_json::json!({
            "component": COMPONENT, "action": "restore-test", "status": "success",
            "file": args.file.file_name().map(|n| n.to_string_lossy().into_owned()),
            "bucket": bucket, "scratch_bucket": scratch, "archives": archives,
            "objects": objects, "bytes": bytes,
            "compared": ["sha256", "size", "content_type", "metadata"],
            "duration_seconds": started.elapsed().as_secs(),
        })
    );
    Ok(())
}

/// Restores into the scratch bucket and compares; returns the objects and
/// bytes compared.
fn drill(
    args: &RestoreTestArgs,
    endpoint: &Endpoint,
    credentials: &Credentials,
    decryption: &Decryption,
    s3: &S3,
    chain: &mut [&mut SpooledManifest],
) -> Result<(u64, u64)> {
    let restore = RestoreArgs {
        file: args.file.clone(),
        endpoint: endpoint.clone(),
        to_dir: None,
        delete_extra: false,
    };
    let destination = Destination::Bucket(Credentials {
        user: credentials.user.clone(),
        password: credentials.password.clone(),
    });
    crate::restore::restore_into(&restore, &destination, decryption)?;
    cleanup::failpoint("restore-test::restored");
    let mut archives = Vec::new();
    let mut keys = None;
    let newest = chain.len().saturating_sub(1);
    for (i, manifest) in chain.iter_mut().enumerate() {
        archives.push(manifest.objects.iter()?);
        if i == newest {
            keys = Some(manifest.keys.iter()?);
        }
    }
    let want = expected(keys.context("a chain is never empty")?, archives);
    // The scratch bucket's listing and the backup's keys, side by side.
    let mut listing = s3.listing(endpoint.fast_list);
    let mut reads = Window::default();
    let mut compared = (0, 0);
    for entry in want {
        let entry = entry?;
        match listing.next().transpose()? {
            Some(o) if o.key == entry.key => {}
            Some(o) if o.key < entry.key => bail!(
                "the restored bucket holds {:?}, which the backup does not",
                o.key
            ),
            _ => bail!("object {:?} is missing from the restored bucket", entry.key),
        }
        // Small objects are read back whole, several at once; larger ones
        // streamed through the hash when their turn comes.
        let fetch = (entry.size <= WHOLE_MAX).then(|| s3.prefetch(&entry.key, entry.size));
        let holds = if fetch.is_some() { entry.size } else { 0 };
        reads.push((entry, fetch), holds, |read| {
            read_back(s3, read, &mut compared)
        })?;
    }
    if let Some(o) = listing.next().transpose()? {
        bail!(
            "the restored bucket holds {:?}, which the backup does not",
            o.key
        );
    }
    reads.finish(|read| read_back(s3, read, &mut compared))?;
    Ok(compared)
}

/// An object on its way back: its entry, and its read when it was started
/// ahead.
type Reading = (
    ObjectEntry,
    Option<tokio::task::JoinHandle<Result<Prefetched>>>,
);

/// Waits for (or makes) one object's read and compares it; counts it in
/// `compared` (objects, bytes).
fn read_back(s3: &S3, (entry, fetch): Reading, compared: &mut (u64, u64)) -> Result<()> {
    let key = &entry.key;
    let read = match fetch {
        Some(handle) => {
            let object = s3
                .finish(handle)
                .with_context(|| format!("reading {key:?} back from the scratch bucket"))?;
            let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&object.data));
            let size = object.data.len() as u64;
            (size, sha256, object.content_type, object.metadata)
        }
        None => {
            let object = s3.get(key)?;
            let (content_type, metadata) = (object.content_type, object.metadata);
            let mut body = HashingReader::new(object.body);
            let size = std::io::copy(&mut body, &mut std::io::sink())
                .with_context(|| format!("reading {key:?} back from the scratch bucket"))?;
            (size, body.sha256(), content_type, metadata)
        }
    };
    let size = read.0;
    compare(&entry, read)?;
    compared.0 += 1;
    compared.1 += size;
    Ok(())
}

/// An object read back against what the backup holds: size, sha256, content
/// type (when the backup recorded one) and metadata.
fn compare(
    entry: &ObjectEntry,
    (size, sha256, content_type, metadata): (u64, String, Option<String>, BTreeMap<String, String>),
) -> Result<()> {
    let key = &entry.key;
    if sha256 != entry.sha256 || size != entry.size {
        bail!(
            "object {key:?} came back as {size} bytes with sha256 {sha256}; the backup holds \
             {} bytes with sha256 {}",
            entry.size,
            entry.sha256
        );
    }
    if entry.content_type.is_some() && content_type != entry.content_type {
        bail!(
            "object {key:?} came back with content type {content_type:?}, the backup holds {:?}",
            entry.content_type
        );
    }
    if metadata != entry.metadata {
        bail!(
            "object {key:?} came back with metadata {metadata:?}, the backup holds {:?}",
            entry.metadata
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, sha: &str) -> ObjectEntry {
        ObjectEntry {
            key: key.into(),
            path: format!("b_backup/{key}"),
            size: 1,
            etag: None,
            sha256: sha.into(),
            last_modified: None,
            content_type: None,
            metadata: Default::default(),
        }
    }

    fn key(key: &str) -> Result<KeyState> {
        Ok(KeyState {
            key: key.into(),
            etag: None,
            last_modified: None,
            size: 1,
        })
    }

    fn objects(entries: Vec<ObjectEntry>) -> std::vec::IntoIter<Result<ObjectEntry>> {
        entries.into_iter().map(Ok).collect::<Vec<_>>().into_iter()
    }

    fn merged(keys: &[&str], chain: Vec<Vec<ObjectEntry>>) -> Result<Vec<(String, String)>> {
        expected(
            keys.iter().map(|k| key(k)),
            chain.into_iter().map(objects).collect(),
        )
        .map(|e| e.map(|e| (e.key, e.sha256)))
        .collect()
    }

    #[test]
    fn a_chain_expects_what_its_newest_archive_listed_as_the_last_write_left_it() {
        let full = vec![entry("a", "1"), entry("b", "1"), entry("c", "1")];
        let incr = vec![entry("b", "2"), entry("d", "2")];
        let second = vec![entry("a", "3")];
        // The newest listing: c was deleted; a written again by the last.
        let got = merged(&["a", "b", "d"], vec![full, incr, second]).unwrap();
        let want = [("a", "3"), ("b", "2"), ("d", "2")];
        assert_eq!(
            got,
            want.map(|(k, s)| (k.to_owned(), s.to_owned())).to_vec()
        );
    }

    #[test]
    fn a_listed_key_no_archive_holds_or_a_broken_list_is_an_error() {
        let err = merged(&["a", "b"], vec![vec![entry("a", "1")]]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("\"b\" is in the newest archive's listing"),
            "{err}"
        );
        let broken = vec![Ok(entry("a", "1")), Err(anyhow!("spool unreadable"))];
        let err = expected(["a", "b"].iter().map(|k| key(k)), vec![broken.into_iter()])
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert_eq!(err.to_string(), "spool unreadable");
    }

    #[test]
    fn scratch_names_are_valid_buckets_and_differ() {
        for bucket in ["documents", &"x".repeat(63), "a-b.c"] {
            let name = scratch_name(bucket);
            backup_common::names::check_bucket(&name).unwrap();
            assert!(name.contains("-verify-"), "{name}");
        }
        assert_ne!(scratch_name("documents"), scratch_name("documents"));
    }
}
