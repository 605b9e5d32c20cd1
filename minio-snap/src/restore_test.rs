//! `restore-test`: an archive (with its whole chain) restored into a scratch
//! bucket `<bucket>-verify-<random>`, every object read back and compared with
//! what the manifests say the bucket held — sha256, size, content type and
//! metadata — and the scratch bucket deleted again: when the drill passes,
//! when it fails, and when a signal ends it. backup-verify --restore-test runs
//! it.

use crate::backup::{connect, COMPONENT};
use crate::cli::{Credentials, Destination, Endpoint, RestoreArgs, RestoreTestArgs};
use crate::manifest::{Manifest, ObjectEntry};
use crate::s3::S3;
use anyhow::{bail, Context, Result};
use backup_common::cleanup;
use backup_common::crypt::Decryption;
use backup_common::hashing::HashingReader;
use std::collections::BTreeMap;
use std::time::Instant;

/// What the bucket held when the newest archive of a chain was made: each key
/// its listing holds (deletions are already out of it), with the entry of the
/// archive that last wrote it (pure).
pub fn expected(chain: &[Manifest]) -> BTreeMap<String, ObjectEntry> {
    let mut objects: BTreeMap<String, ObjectEntry> = BTreeMap::new();
    for m in chain {
        for o in &m.objects {
            objects.insert(o.key.clone(), o.clone());
        }
    }
    if let Some(last) = chain.last() {
        let listed: std::collections::BTreeSet<&str> =
            last.keys.iter().map(|k| k.key.as_str()).collect();
        objects.retain(|k, _| listed.contains(k.as_str()));
    }
    objects
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
    let chain = crate::restore::resolve_chain(&args.file, decryption)?;
    // The drill compares every object with what the chain says: it holds
    // the manifests in memory (a restore and a verify do not).
    let manifests: Vec<Manifest> = chain
        .into_iter()
        .map(|(_, _, m)| m.load())
        .collect::<Result<_>>()?;
    let bucket = manifests
        .last()
        .map(|m| m.head.bucket.clone())
        .unwrap_or_default();
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
    let compared = drill(args, &endpoint, credentials, decryption, &s3, &manifests);
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
            "bucket": bucket, "scratch_bucket": scratch, "archives": manifests.len(),
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
    manifests: &[Manifest],
) -> Result<(usize, u64)> {
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
    let want = expected(manifests);
    let listed = s3.listing(endpoint.fast_list).collect::<Result<Vec<_>>>()?;
    if listed.len() != want.len() {
        bail!(
            "the restored bucket holds {} objects, the backup {}",
            listed.len(),
            want.len()
        );
    }
    let mut bytes = 0;
    for (key, entry) in &want {
        let object = s3.get(key)?;
        let (content_type, metadata) = (object.content_type.clone(), object.metadata.clone());
        let mut body = HashingReader::new(object.body);
        let size = std::io::copy(&mut body, &mut std::io::sink())
            .with_context(|| format!("reading {key:?} back from the scratch bucket"))?;
        let sha256 = body.sha256();
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
        bytes += size;
    }
    Ok((want.len(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Head, KeyState, Kind};

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

    fn manifest(objects: Vec<ObjectEntry>, keys: &[&str], deleted: &[&str]) -> Manifest {
        Manifest {
            head: Head {
                format: crate::manifest::FORMAT.into(),
                bucket: "b".into(),
                kind: Kind::Full,
                created: String::new(),
                base: None,
            },
            keys: keys
                .iter()
                .map(|k| KeyState {
                    key: (*k).into(),
                    etag: None,
                    last_modified: None,
                    size: 1,
                })
                .collect(),
            deleted: deleted.iter().map(|d| (*d).into()).collect(),
            objects,
        }
    }

    #[test]
    fn a_chain_expects_what_its_newest_archive_listed_as_the_last_write_left_it() {
        let full = manifest(
            vec![entry("a", "1"), entry("b", "1"), entry("c", "1")],
            &["a", "b", "c"],
            &[],
        );
        let incr = manifest(
            vec![entry("b", "2"), entry("d", "2")],
            &["a", "b", "d"],
            &["c"],
        );
        let want = expected(&[full, incr]);
        let got: Vec<(&str, &str)> = want
            .iter()
            .map(|(k, e)| (k.as_str(), e.sha256.as_str()))
            .collect();
        assert_eq!(got, [("a", "1"), ("b", "2"), ("d", "2")]);
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
