//! minio-snap's real binary against real S3 servers: every test that talks S3
//! runs once against s3s-fs and once against Garage (`on_both_servers!`).

use std::fs;
use std::path::{Path, PathBuf};
use test_harness::planted::{run_with_links_at_old_names, Victim};
use test_harness::s3::{Flavor, S3Server};
use test_harness::{finish, terminate, tree, Output, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_minio-snap");

/// Each S3 test as two tests, `s3s_fs::name` and `garage::name`: the same
/// steps and checks against each server.
macro_rules! on_both_servers {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod s3s_fs {
            $( #[test] $(#[$attr])* fn $name() { super::$name(super::Flavor::S3sFs) } )*
        }
        mod garage {
            $( #[test] $(#[$attr])* fn $name() { super::$name(super::Flavor::Garage) } )*
        }
    };
}

on_both_servers!(
    full_backup_round_trips_objects_types_and_metadata,
    to_dir_extracts_inside_the_folder_only,
    incremental_holds_exactly_the_changes_and_the_chain_restores_the_bucket,
    failures_publish_nothing_and_leak_no_secret,
    a_100_mib_object_round_trips_through_a_multipart_upload,
    an_object_deleted_between_list_and_get_fails_the_backup,
    the_server_dying_mid_backup_publishes_nothing,
    sigterm_mid_backup_removes_the_temp_file,
    #[ignore = "needs root (it mounts a tmpfs or runs crond); scripts/test.sh runs it as root"]
    disk_full_publishes_nothing,
    an_archive_left_without_its_sidecar_is_never_the_base_of_an_incremental,
    planted_links_at_the_old_staging_name_change_nothing,
    to_dir_never_writes_through_links_planted_in_the_target,
    an_object_damaged_in_the_archive_is_never_stored,
    crafted_archives_are_refused_by_verify_and_restore_alike,
    archives_whose_manifest_was_written_whole_still_verify_and_restore,
    stdout_mode_streams_the_archive_and_writes_nothing,
    several_buckets_are_one_series_each_and_all_finds_them,
    restore_test_drills_a_chain_in_a_scratch_bucket_that_never_stays,
    restore_test_names_what_the_scratch_bucket_got_wrong,
    sigkill_mid_restore_leaves_every_object_whole_and_a_second_restore_finishes,
);

fn tool(s3: &S3Server, dir: &Path, bucket: &str) -> Tool {
    Tool::new(BIN)
        .env("MINIO_ENDPOINT", &s3.endpoint)
        .env("MINIO_REGION", &s3.region)
        .env("MINIO_ROOT_USER", &s3.access_key)
        .env("MINIO_ROOT_PASSWORD", &s3.secret_key)
        .env("MINIO_BUCKET", bucket)
        .env("BACKUP_DIR", dir)
}

fn published(out: &Output, dir: &Path) -> PathBuf {
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    dir.join("minio")
        .join(out.record()["file"].as_str().unwrap())
}

/// Keys of every awkward kind, with content types and user metadata.
fn fill(s3: &S3Server, bucket: &str, filler: usize) -> Vec<String> {
    s3.create_bucket(bucket);
    let mut keys = Vec::new();
    let special: [(&str, &[u8], &str); 8] = [
        ("tab\there.txt", b"a control character", "text/plain"),
        ("a+plus%percent.txt", b"plus and percent", "text/plain"),
        (
            "reports/2024/q1.pdf",
            b"%PDF-1.4 quarterly",
            "application/pdf",
        ),
        (
            "ünïcødé/日本語 ファイル.txt",
            "grüße 🚀".as_bytes(),
            "text/plain; charset=utf-8",
        ),
        ("empty.bin", b"", "application/octet-stream"),
        (
            "deep/a/b/c/d/e/f/g/h/i/j/k.json",
            b"{\"k\": 1}",
            "application/json",
        ),
        ("with space and #hash?.txt", b"odd", "text/plain"),
        (".hidden", b"dot file", "text/plain"),
    ];
    for (key, data, ct) in special {
        s3.put(
            bucket,
            key,
            data,
            ct,
            &[("owner", "ops"), ("origin", "scanner-7")],
        );
        keys.push(key.to_owned());
    }
    for i in 0..filler {
        let key = format!("bulk/{:02}/object-{i:05}.txt", i % 17);
        s3.put(
            bucket,
            &key,
            format!("object {i}").as_bytes(),
            "text/plain",
            &[],
        );
        keys.push(key);
    }
    keys.sort();
    keys
}

fn full_backup_round_trips_objects_types_and_metadata(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    let keys = fill(&s3, "documents", 1200);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let out = t.run(&["backup"]);
    let archive = published(&out, dir.path());
    assert_eq!(out.record()["objects"], keys.len());
    assert!(archive.to_string_lossy().ends_with(".tar.gz"));
    assert!(!out.all().contains(&s3.secret_key));
    // The product description's manual restore layout.
    let listing = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("documents_backup/reports/2024/q1.pdf"));
    assert!(listing.lines().last().unwrap().ends_with("manifest.json"));

    let out = t
        .clone()
        .env("MINIO_BUCKET", "restored")
        .run(&["restore", archive.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(s3.keys("restored"), keys, "a fresh bucket, every key");
    for key in [
        "reports/2024/q1.pdf",
        "ünïcødé/日本語 ファイル.txt",
        "empty.bin",
        "with space and #hash?.txt",
    ] {
        let (a, ct_a, meta_a) = s3.get("documents", key).unwrap();
        let (b, ct_b, meta_b) = s3.get("restored", key).unwrap();
        assert!(a == b, "{key}: bytes");
        assert_eq!(ct_a, ct_b, "{key}: content type");
        assert_eq!(meta_a, meta_b, "{key}: user metadata");
        assert_eq!(meta_b.get("owner").map(String::as_str), Some("ops"));
    }
}

fn to_dir_extracts_inside_the_folder_only(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 3);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let archive = published(&t.run(&["backup"]), dir.path());
    let out_dir = tempfile::tempdir().unwrap();
    let out = t.run(&[
        "restore",
        archive.to_str().unwrap(),
        "--to-dir",
        out_dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        fs::read(out_dir.path().join("reports/2024/q1.pdf")).unwrap(),
        b"%PDF-1.4 quarterly"
    );
    assert_eq!(
        fs::read(out_dir.path().join("ünïcødé/日本語 ファイル.txt")).unwrap(),
        "grüße 🚀".as_bytes()
    );
}

fn incremental_holds_exactly_the_changes_and_the_chain_restores_the_bucket(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 20);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let full = published(&t.run(&["backup", "--type", "incremental"]), dir.path());
    assert!(
        full.to_string_lossy().ends_with(".tar.gz") && !full.to_string_lossy().contains(".incr."),
        "no full yet: a full one"
    );

    // Change 3, add 2, delete 1.
    for i in [1, 2, 3] {
        s3.put(
            "documents",
            &format!("bulk/{:02}/object-{i:05}.txt", i % 17),
            b"changed!",
            "text/plain",
            &[],
        );
    }
    s3.put("documents", "new/one.txt", b"one", "text/plain", &[]);
    s3.put("documents", "new/two.txt", b"two", "text/plain", &[]);
    s3.delete("documents", "empty.bin");
    // s3s-fs lists no ETag: a change shows in size and last-modified, which has a
    // second's resolution, so the listing must be a second after the writes.
    test_harness::wait_for_next_second();
    let out = t.run(&["backup", "--type", "incremental"]);
    let incr = published(&out, dir.path());
    assert!(incr.to_string_lossy().ends_with(".incr.tar.gz"));
    assert_eq!(
        out.record()["objects"],
        5,
        "exactly the changed and added objects"
    );
    assert_eq!(
        out.record()["base"],
        full.file_name().unwrap().to_str().unwrap()
    );
    // The latest link still names the full archive (an incremental is never "latest").
    assert_eq!(
        fs::read_link(dir.path().join("minio/documents_latest.tar.gz")).unwrap(),
        Path::new(full.file_name().unwrap())
    );

    let out = t
        .clone()
        .env("MINIO_BUCKET", "restored")
        .run(&["restore", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let keys = s3.keys("documents");
    assert_eq!(s3.keys("restored"), keys);
    for k in &keys {
        assert_eq!(
            s3.get("restored", k).unwrap().0,
            s3.get("documents", k).unwrap().0,
            "{k}"
        );
    }

    // `chain` names what a restore applies, oldest first (backup.sh promotes it to weekly/).
    let out = t.run(&["chain", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let names = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [names(&full), names(&incr)]
    );

    // --delete-extra removes what the backup does not hold; a missing link fails clearly.
    s3.put("restored", "stray.txt", b"x", "text/plain", &[]);
    let out = t.clone().env("MINIO_BUCKET", "restored").run(&[
        "restore",
        incr.to_str().unwrap(),
        "--delete-extra",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(s3.keys("restored"), keys);
    fs::remove_file(&full).unwrap();
    let out = t
        .clone()
        .env("MINIO_BUCKET", "restored")
        .run(&["restore", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("the chain is broken"), "{}", out.stderr);
    let out = t.run(&["chain", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("the chain is broken"), "{}", out.stderr);
}

fn failures_publish_nothing_and_leak_no_secret(flavor: Flavor) {
    let mut s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 2);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    published(&t.run(&["backup"]), dir.path());
    let before = tree(dir.path());

    let out = t
        .clone()
        .env("MINIO_ROOT_PASSWORD", "wrong-secret-123")
        .run(&["backup"]);
    out.assert_backup_failed(
        1,
        "check MINIO_ROOT_USER and MINIO_ROOT_PASSWORD",
        "wrong-secret-123",
    );
    let out = t.clone().env("MINIO_BUCKET", "nope").run(&["backup"]);
    out.assert_backup_failed(1, "check MINIO_BUCKET", &s3.secret_key);
    let out = t.clone().without("MINIO_ROOT_PASSWORD").run(&["backup"]);
    out.assert_backup_failed(
        2,
        "MINIO_ROOT_PASSWORD (or MINIO_ROOT_PASSWORD_FILE) is not set",
        &s3.secret_key,
    );
    assert_eq!(tree(dir.path()), before);

    s3.stop();
    let out = t.run(&["backup"]);
    out.assert_backup_failed(1, "check MINIO_ENDPOINT", &s3.secret_key);
    // A presigned URL's signature is a credential too.
    assert!(!out.all().contains("X-Amz-Signature"), "{}", out.all());
    assert_eq!(tree(dir.path()), before);
}

/// Deterministic, incompressible bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const BIG: usize = 100 * 1024 * 1024;

fn a_100_mib_object_round_trips_through_a_multipart_upload(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    s3.create_bucket("documents");
    let big = noise(BIG + 12_345, 7);
    s3.put(
        "documents",
        "media/big.bin",
        &big,
        "video/mp4",
        &[("camera", "north")],
    );
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let archive = published(&t.run(&["backup"]), dir.path());
    let out = t
        .clone()
        .env("MINIO_BUCKET", "restored")
        .run(&["restore", archive.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let (data, ct, meta) = s3.get("restored", "media/big.bin").unwrap();
    assert!(data == big, "byte for byte");
    assert_eq!(ct, "video/mp4");
    assert_eq!(meta.get("camera").map(String::as_str), Some("north"));
}

/// A bucket whose first object takes a while to stream, so a test can act while
/// the backup is surely under way; `c-victim` comes later than the fetches that
/// may run ahead (12 positions), so it is fetched only after the big one.
fn slow_bucket(s3: &S3Server) {
    s3.create_bucket("documents");
    s3.put(
        "documents",
        "a-big.bin",
        &noise(BIG, 3),
        "application/octet-stream",
        &[],
    );
    // More small objects than the fetch-ahead window (512): the victim is
    // still to be fetched when the big one is being streamed.
    for i in 0..600 {
        s3.put(
            "documents",
            &format!("b-{i:03}.txt"),
            b"small",
            "text/plain",
            &[],
        );
    }
    s3.put("documents", "c-victim.txt", b"victim", "text/plain", &[]);
}

/// Starts a backup and returns once its temp file holds more than 1 MiB.
// The caller waits for the returned child (`finish`).
#[allow(clippy::zombie_processes)]
fn backup_under_way(t: &Tool, dir: &Path) -> std::process::Child {
    let child = t.spawn(&["backup"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let growing = fs::read_dir(dir.join("minio")).ok().is_some_and(|rd| {
            rd.flatten().any(|e| {
                e.file_name().to_string_lossy().contains(".tmp-")
                    && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
            })
        });
        if growing {
            return child;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backup did not get under way"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn an_object_deleted_between_list_and_get_fails_the_backup(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    slow_bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    fs::create_dir_all(dir.path().join("minio")).unwrap();
    let before = tree(dir.path());
    let run = backup_under_way(&t, dir.path());
    s3.delete("documents", "c-victim.txt");
    let out = finish(run);
    out.assert_backup_failed(1, "deleted while the backup ran", &s3.secret_key);
    let after: Vec<String> = tree(dir.path())
        .into_iter()
        .filter(|e| !e.ends_with(".lock (0 bytes)"))
        .collect();
    assert_eq!(after, before);
}

fn the_server_dying_mid_backup_publishes_nothing(flavor: Flavor) {
    let mut s3 = S3Server::start_as(flavor);
    slow_bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let run = backup_under_way(&t, dir.path());
    s3.stop();
    let out = finish(run);
    // "GET <key> broke off" or "GET <key>: cannot reach …", whichever object it was on.
    out.assert_backup_failed(1, "GET ", &s3.secret_key);
    assert!(
        out.stderr.contains("a-big.bin broke off") || out.stderr.contains("check MINIO_ENDPOINT"),
        "{}",
        out.stderr
    );
    assert_eq!(tree(dir.path()), vec!["minio/", "minio/.lock (0 bytes)"]);
}

fn sigterm_mid_backup_removes_the_temp_file(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    slow_bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let run = backup_under_way(&t, dir.path());
    terminate(run);
    assert_eq!(tree(dir.path()), vec!["minio/", "minio/.lock (0 bytes)"]);
}

fn disk_full_publishes_nothing(flavor: Flavor) {
    test_harness::require_root("minio disk_full_publishes_nothing");
    let s3 = S3Server::start_as(flavor);
    s3.create_bucket("documents");
    s3.put("documents", "small.txt", b"small", "text/plain", &[]);
    let disk = test_harness::SmallDisk::mount("1m");
    let t = tool(&s3, disk.path(), "documents");
    published(&t.run(&["backup"]), disk.path());
    let before = tree(disk.path());
    s3.put(
        "documents",
        "big.bin",
        &noise(4 << 20, 9),
        "application/octet-stream",
        &[],
    );
    let out = t.run(&["backup"]);
    out.assert_backup_failed(1, "disk full", &s3.secret_key);
    assert_eq!(tree(disk.path()), before);
}

fn an_archive_left_without_its_sidecar_is_never_the_base_of_an_incremental(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 5);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let full = published(&t.run(&["backup"]), dir.path());

    // A crash (SIGKILL: no cleanup at all) right after the rename, before the
    // sidecar: the residue of a power cut mid-publish.
    s3.put("documents", "new.txt", b"after the full", "text/plain", &[]);
    let crashed = t
        .clone()
        .env("FAILPOINTS", "publish::renamed=return(SIGKILL)")
        .run(&["backup", "--type", "incremental"]);
    assert_eq!(crashed.code, None, "killed: {}", crashed.stderr);
    let orphans: Vec<String> = tree(&dir.path().join("minio"))
        .into_iter()
        .filter(|e| e.ends_with(".incr.tar.gz") || e.contains(".incr.tar.gz ("))
        .collect();
    assert_eq!(orphans.len(), 1, "one orphan incremental: {orphans:?}");

    let out = t.run(&["backup", "--type", "incremental"]);
    let incr = published(&out, dir.path());
    assert_eq!(
        out.record()["base"],
        full.file_name().unwrap().to_string_lossy().as_ref(),
        "the incremental builds on the last backup, not on the orphan"
    );
    assert!(
        out.stderr
            .contains("has no .sha256 sidecar, so it is not a backup"),
        "{}",
        out.stderr
    );
    // And its chain restores: the full, then this incremental.
    let chain = t.run(&["chain", incr.to_str().unwrap()]);
    assert_eq!(chain.code, Some(0), "{}", chain.stderr);
    assert_eq!(chain.stdout.lines().count(), 2, "{}", chain.stdout);
}

#[test]
fn a_stalling_server_ends_the_backup_within_the_stall_timeout() {
    let dir = tempfile::tempdir().unwrap();
    test_harness::stall::assert_backup_survives_stalls(
        |server| {
            Tool::new(BIN)
                .env("MINIO_ENDPOINT", &server.url)
                .env("MINIO_ROOT_USER", "stall-user")
                .env("MINIO_ROOT_PASSWORD", "stall-password-7")
                .env("BACKUP_DIR", dir.path())
        },
        &dir.path().join("minio"),
        &["backup"],
    );
}

fn planted_links_at_the_old_staging_name_change_nothing(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 2);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let archive = published(&t.run(&["backup"]), dir.path());
    let tmp = tempfile::tempdir().unwrap();
    let out = run_with_links_at_old_names(
        &t.clone().env("MINIO_BUCKET", "check"),
        &["restore", archive.to_str().unwrap()],
        tmp.path(),
        |pid| vec![format!(".minio-snap-restore-{pid}")],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(s3.keys("check"), s3.keys("documents"));
    let left: Vec<String> = tree(tmp.path())
        .into_iter()
        .filter(|e| !e.starts_with(".minio-snap-restore-") || !e.contains(" -> "))
        .collect();
    assert!(left.is_empty(), "staging files left: {left:?}");
}

fn to_dir_never_writes_through_links_planted_in_the_target(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 0);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let archive = published(&t.run(&["backup"]), dir.path());
    let victim = Victim::new();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path();
    // A link where a file goes, and a hard link to someone else's file.
    std::os::unix::fs::symlink(&victim.file, target.join("empty.bin")).unwrap();
    fs::hard_link(&victim.file, target.join(".hidden")).unwrap();
    let restore = |t: &Tool| {
        t.run(&[
            "restore",
            archive.to_str().unwrap(),
            "--to-dir",
            target.to_str().unwrap(),
        ])
    };
    let out = restore(&t);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    victim.assert_untouched();
    assert_eq!(fs::read(target.join(".hidden")).unwrap(), b"dot file");
    let meta = fs::symlink_metadata(target.join("empty.bin")).unwrap();
    assert!(meta.is_file(), "the link was replaced by the object");

    // A link where a folder goes: refused, nothing written through it.
    let victim_dir = tempfile::tempdir().unwrap();
    fs::remove_dir_all(target.join("reports")).unwrap();
    std::os::unix::fs::symlink(victim_dir.path(), target.join("reports")).unwrap();
    let out = restore(&t);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("reports is a symbolic link; refusing to write through it"),
        "{}",
        out.stderr
    );
    assert!(
        tree(victim_dir.path()).is_empty(),
        "written through the link"
    );
}

/// Objects stream from the archive into the upload, nothing staged: an
/// object whose bytes in the archive are not what the manifest records (one
/// byte flipped, the sidecar made for the damage) is never stored — a small
/// one is checked before its PUT, a large one's multipart upload is aborted
/// instead of completed.
fn an_object_damaged_in_the_archive_is_never_stored(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    s3.create_bucket("documents");
    s3.put(
        "documents",
        "only.txt",
        b"the real content",
        "text/plain",
        &[],
    );
    let big: Vec<u8> = (0..17 << 20).map(|i: u32| (i % 251) as u8).collect();
    s3.put(
        "documents",
        "big.bin",
        &big,
        "application/octet-stream",
        &[],
    );
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let archive = published(&t.run(&["backup"]), dir.path());
    let tmp = tempfile::tempdir().unwrap();
    for (n, key) in ["only.txt", "big.bin"].into_iter().enumerate() {
        let crafted = dir
            .path()
            .join(format!("minio/documents_2099010{}_000000.tar.gz", n + 1));
        craft(&archive, &crafted, |h, body, _| {
            if h.path().unwrap().to_string_lossy().ends_with(key) {
                let last = body.len() - 1;
                body[last] ^= 0xff;
            }
            true
        });
        let bucket = format!("damaged{n}");
        let out = t
            .clone()
            .env("TMPDIR", tmp.path())
            .env("MINIO_BUCKET", &bucket)
            .run(&["restore", crafted.to_str().unwrap()]);
        assert_eq!(out.code, Some(1), "{key}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("object {key} is "))
                && out.stderr.contains("; not restored"),
            "{key}: {}",
            out.stderr
        );
        assert!(
            s3.get(&bucket, key).is_none(),
            "the damaged {key} was stored"
        );
        assert!(
            tree(tmp.path()).is_empty(),
            "staged: {:?}",
            tree(tmp.path())
        );
    }
    // The archive itself restores, big object included, nothing staged.
    let out = t
        .clone()
        .env("TMPDIR", tmp.path())
        .env("MINIO_BUCKET", "whole")
        .run(&["restore", archive.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(s3.get("whole", "big.bin").unwrap().0, big);
    assert!(tree(tmp.path()).is_empty());
}

#[test]
fn a_bucket_name_that_is_no_bucket_is_a_usage_error_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for bucket in ["", "..", "../../x", "Documents", "a_b"] {
        let out = Tool::new(BIN)
            .env("MINIO_ENDPOINT", "http://127.0.0.1:9")
            .env("MINIO_ROOT_USER", "u")
            .env("MINIO_ROOT_PASSWORD", "secret-password-1")
            .env("MINIO_BUCKET", bucket)
            .env("BACKUP_DIR", dir.path())
            .run(&["backup"]);
        out.assert_backup_failed(2, "MINIO_BUCKET: bucket name", "secret-password-1");
        assert!(
            tree(dir.path()).is_empty(),
            "{bucket:?}: {:?}",
            tree(dir.path())
        );
    }
}

/// Rewrites an archive: its entries pass through `edit` (which may change the
/// header or the content, drop an entry or add some), and the sidecar is
/// renewed so that only the crafted content is what is wrong.
fn craft(
    archive: &Path,
    to: &Path,
    mut edit: impl FnMut(&mut tar::Header, &mut Vec<u8>, &mut tar::Builder<Vec<u8>>) -> bool,
) {
    let data = fs::read(archive).unwrap();
    // minio-snap compresses large archives in parallel: several gzip members.
    let mut input = tar::Archive::new(flate2::read::MultiGzDecoder::new(&data[..]));
    let mut out = tar::Builder::new(Vec::new());
    for entry in input.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut header = entry.header().clone();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
        if edit(&mut header, &mut body, &mut out) {
            header.set_size(body.len() as u64);
            header.set_cksum();
            out.append(&header, &body[..]).unwrap();
        }
    }
    let tar = out.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let bytes = gz.finish().unwrap();
    fs::write(to, &bytes).unwrap();
    let name = to.file_name().unwrap().to_string_lossy();
    fs::write(
        to.with_file_name(format!("{name}.sha256")),
        format!("{}  {name}\n", test_harness::qdrant::sha256(&bytes)),
    )
    .unwrap();
}

fn edit_manifest(body: &mut Vec<u8>, f: impl FnOnce(&mut serde_json::Value)) {
    let mut m: serde_json::Value = serde_json::from_slice(body).unwrap();
    f(&mut m);
    *body = serde_json::to_vec(&m).unwrap();
}

fn crafted_archives_are_refused_by_verify_and_restore_alike(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 2);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let full = published(&t.run(&["backup"]), dir.path());
    s3.put("documents", "later.txt", b"later", "text/plain", &[]);
    let incr = published(&t.run(&["backup", "--type", "incremental"]), dir.path());
    let minio = dir.path().join("minio");
    let outside = tempfile::tempdir().unwrap();
    fs::copy(
        &full,
        outside.path().join("documents_20000101_000000.tar.gz"),
    )
    .unwrap();

    type Edit = Box<dyn FnMut(&mut tar::Header, &mut Vec<u8>, &mut tar::Builder<Vec<u8>>) -> bool>;
    let symlink_entry: Edit = Box::new(|h, _, out| {
        if h.path().unwrap().to_string_lossy().ends_with("q1.pdf") {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            out.append_link(&mut link, h.path().unwrap(), "/etc/passwd")
                .unwrap();
            return false;
        }
        true
    });
    let hardlink_entry: Edit = Box::new(|h, _, out| {
        if h.path().unwrap().to_string_lossy().ends_with("q1.pdf") {
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Link);
            link.set_size(0);
            out.append_link(&mut link, h.path().unwrap(), "/etc/passwd")
                .unwrap();
            return false;
        }
        true
    });
    let absolute_base: Edit = Box::new(move |h, body, _| {
        if h.path().unwrap().to_string_lossy() == "manifest.json" {
            edit_manifest(body, |m| {
                m["base"] = "/tmp/evil/documents_20000101_000000.tar.gz".into()
            });
        }
        true
    });
    let other_folder_base: Edit = Box::new(|h, body, _| {
        if h.path().unwrap().to_string_lossy() == "manifest.json" {
            edit_manifest(body, |m| {
                m["base"] = "../../outside/documents_20000101_000000.tar.gz".into()
            });
        }
        true
    });
    // The first two object entries change places; the manifest does not.
    let mut held: Option<(tar::Header, Vec<u8>)> = None;
    let mut swapped = false;
    let entries_swapped: Edit = Box::new(move |h, body, out| {
        if swapped || h.path().unwrap().to_string_lossy() == "manifest.json" {
            return true;
        }
        match held.take() {
            None => held = Some((h.clone(), body.clone())),
            Some((mut first, first_body)) => {
                out.append(h, &body[..]).unwrap();
                first.set_cksum();
                out.append(&first, &first_body[..]).unwrap();
                swapped = true;
            }
        }
        false
    });
    let keys_reversed: Edit = Box::new(|h, body, _| {
        if h.path().unwrap().to_string_lossy() == "manifest.json" {
            edit_manifest(body, |m| m["keys"].as_array_mut().unwrap().reverse());
        }
        true
    });
    let cases: Vec<(&str, &Path, Edit, &str)> = vec![
        ("symlink", &full, symlink_entry, "not a regular file"),
        (
            "entries swapped",
            &full,
            entries_swapped,
            "is not the object the manifest lists there",
        ),
        (
            "keys out of order",
            &incr,
            keys_reversed,
            "is listed twice or out of order",
        ),
        ("hard link", &full, hardlink_entry, "not a regular file"),
        (
            "absolute base",
            &incr,
            absolute_base,
            "is not a backup of bucket documents in the same folder",
        ),
        (
            "base elsewhere",
            &incr,
            other_folder_base,
            "is not a backup of bucket documents in the same folder",
        ),
    ];
    for (n, (what, source, edit, needle)) in cases.into_iter().enumerate() {
        let ext = if source == incr {
            "incr.tar.gz"
        } else {
            "tar.gz"
        };
        let crafted = minio.join(format!("documents_2099010{}_000000.{ext}", n + 1));
        craft(source, &crafted, edit);
        let verify = Tool::new(test_harness::script::bin_dir().join("backup-verify"))
            .env("BACKUP_DIR", dir.path())
            .run(&[crafted.to_str().unwrap()]);
        assert_eq!(
            verify.code,
            Some(1),
            "{what}: verify accepted it:\n{}",
            verify.stdout
        );
        assert!(verify.stdout.contains(needle), "{what}: {}", verify.stdout);
        let to_dir = tempfile::tempdir().unwrap();
        let restore = t.run(&[
            "restore",
            crafted.to_str().unwrap(),
            "--to-dir",
            to_dir.path().to_str().unwrap(),
        ]);
        assert_eq!(
            restore.code,
            Some(1),
            "{what}: restore accepted it:\n{}",
            restore.stderr
        );
        assert!(
            restore.stderr.contains(needle),
            "{what}: {}",
            restore.stderr
        );
        assert!(
            tree(to_dir.path()).is_empty(),
            "{what}: restore wrote {:?}",
            tree(to_dir.path())
        );
        fs::remove_file(&crafted).unwrap();
        fs::remove_file(format!("{}.sha256", crafted.display())).unwrap();
    }
}

/// Until the manifest was streamed, minio-snap wrote it whole, with
/// serde_json's pretty printer: a chain of archives rewritten that way (same
/// fields, same order) verifies and restores as it always did.
fn archives_whose_manifest_was_written_whole_still_verify_and_restore(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    let keys = fill(&s3, "documents", 3);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let full = published(&t.run(&["backup"]), dir.path());
    s3.put("documents", "later.txt", b"later", "text/plain", &[]);
    s3.delete("documents", "empty.bin");
    let incr = published(&t.run(&["backup", "--type", "incremental"]), dir.path());
    for archive in [&full, &incr] {
        craft(archive, archive, |h, body, _| {
            if h.path().unwrap().to_string_lossy() == "manifest.json" {
                let m: serde_json::Value = serde_json::from_slice(body).unwrap();
                *body = serde_json::to_vec_pretty(&m).unwrap();
                assert!(body.starts_with(b"{\n  \"format\": \"minio-snap/1\",\n  \"bucket\""));
            }
            true
        });
    }
    let verify = Tool::new(test_harness::script::bin_dir().join("backup-verify"))
        .env("BACKUP_DIR", dir.path())
        .run(&["--all"]);
    assert_eq!(verify.code, Some(0), "{}", verify.stdout);
    let out = t
        .clone()
        .env("MINIO_BUCKET", "restored")
        .run(&["restore", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut want: Vec<String> = keys.into_iter().filter(|k| k != "empty.bin").collect();
    want.push("later.txt".into());
    want.sort();
    assert_eq!(s3.keys("restored"), want);
    assert_eq!(s3.get("restored", "later.txt").unwrap().0, b"later");
}

fn stdout_mode_streams_the_archive_and_writes_nothing(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    let keys = fill(&s3, "documents", 3);
    let dir = tempfile::tempdir().unwrap();
    let out = tool(&s3, dir.path(), "documents")
        .command(&["backup", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = test_harness::tar_gz_entries(&out.stdout);
    assert_eq!(entries.last().map(String::as_str), Some("manifest.json"));
    assert_eq!(entries.len(), keys.len() + 1, "{entries:?}");
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
}

// ---- Every key S3 allows ---------------------------------------------------

/// The keys of one kind each server refuses to store as given (a PUT that
/// fails, or an object listed under another key): those are left out of the
/// round trip, and any change to this table fails the test. The README's
/// compatibility note lists the same.
fn refused(flavor: Flavor, kind: &str) -> Vec<String> {
    let all = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect();
    match (flavor, kind) {
        // Garage drops a key's leading slashes (it stores `lead.txt`).
        (Flavor::Garage, "leading_slash") => all(LEADING_SLASH),
        // s3s-fs keeps objects as files: the file system decides what a key is.
        (Flavor::S3sFs, "dot_segments") => all(DOT_SEGMENTS),
        (Flavor::S3sFs, "empty_segments") => all(EMPTY_SEGMENTS),
        (Flavor::S3sFs, "leading_slash") => all(LEADING_SLASH),
        (Flavor::S3sFs, "trailing_slash") => all(TRAILING_SLASH),
        (Flavor::S3sFs, "key_of_1024_bytes") => vec![long_key()],
        _ => Vec::new(),
    }
}

/// Stores `keys` (with bytes that name them), backs the bucket up, verifies
/// the archive, restores it into a new bucket and compares every key and its
/// bytes; then changes every object, takes an incremental and restores the
/// chain the same way. Keys the server refuses must be exactly `refused`.
fn keys_round_trip(flavor: Flavor, kind: &str, keys: &[&str]) {
    let s3 = S3Server::start_as(flavor);
    s3.create_bucket("documents");
    s3.put("documents", "plain.txt", b"plain", "text/plain", &[]);
    let body = |key: &str, round: u32| format!("{kind} round {round}: {key:?}").into_bytes();
    let mut refusals: Vec<String> = Vec::new();
    for key in keys {
        if let Err(e) = s3.try_put("documents", key, &body(key, 1), "text/plain", &[]) {
            refusals.push(format!("{key:?}: PUT answered {e}"));
        }
    }
    let listed = s3.keys("documents");
    for key in keys {
        let put_failed = refusals.iter().any(|r| r.starts_with(&format!("{key:?}:")));
        if !put_failed && !listed.iter().any(|k| k == key) {
            refusals.push(format!("{key:?}: stored, but not listed under that key"));
        }
    }
    let refused_keys: Vec<String> = keys
        .iter()
        .filter(|k| refusals.iter().any(|r| r.starts_with(&format!("{k:?}:"))))
        .map(|k| k.to_string())
        .collect();
    assert_eq!(
        refused_keys,
        refused(flavor, kind),
        "{} refuses other {kind} keys than expected: {refusals:#?}; listed: {listed:?}",
        flavor.name()
    );
    // A refused PUT may leave something behind that the server cannot take
    // back on restore; what it stored under another key stays and round-trips.
    for key in &refused_keys {
        let _ = s3.try_delete("documents", key);
    }

    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let compare = |restored: &str| {
        assert_eq!(s3.keys(restored), s3.keys("documents"), "{kind}: the keys");
        for key in s3.keys("documents") {
            let (a, _, _) = s3.get("documents", &key).unwrap();
            let (b, _, _) = s3.get(restored, &key).unwrap();
            assert!(a == b, "{kind}: the bytes of {key:?}");
        }
    };
    let full = published(&t.run(&["backup"]), dir.path());
    let verify = Tool::new(test_harness::script::bin_dir().join("backup-verify"))
        .env("BACKUP_DIR", dir.path())
        .run(&[full.to_str().unwrap()]);
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    let out = t
        .clone()
        .env("MINIO_BUCKET", "restored")
        .run(&["restore", full.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    compare("restored");

    for key in s3.keys("documents") {
        s3.put("documents", &key, &body(&key, 2), "text/plain", &[]);
    }
    test_harness::wait_for_next_second();
    // The full backup listed folder by folder, this one in one flat listing:
    // both must see the same keys in the same order, or the comparison with
    // the base finds changes and deletions that did not happen.
    let incr_run =
        t.clone()
            .env("MINIO_FAST_LIST", "true")
            .run(&["backup", "--type", "incremental"]);
    let incr = published(&incr_run, dir.path());
    let all = s3.keys("documents").len();
    assert_eq!(
        incr_run.record()["objects"],
        all,
        "{kind}: every key changed"
    );
    let out = t
        .clone()
        .env("MINIO_BUCKET", "restored-again")
        .run(&["restore", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    compare("restored-again");
    test_harness::wait_for_next_second();
    let unchanged = t.run(&["backup", "--type", "incremental"]);
    published(&unchanged, dir.path());
    assert_eq!(
        unchanged.record()["objects"],
        0,
        "{kind}: {}",
        unchanged.stderr
    );
    assert!(
        unchanged.stderr.contains(&format!(
            "(0 of {all} objects, 0 bytes of objects, 0 deleted since the base)"
        )),
        "{kind}: {}",
        unchanged.stderr
    );
}

/// A 1,024-byte key (S3's limit) in parts a file system can hold.
fn long_key() -> String {
    let part = "p".repeat(200);
    let mut key = [part.as_str(); 5].join("/");
    key.push('/');
    key.push_str(&"q".repeat(1024 - key.len()));
    assert_eq!(key.len(), 1024);
    key
}

macro_rules! key_kinds {
    ($($name:ident: $keys:expr;)*) => {
        mod keys {
            mod s3s_fs {
                $( #[test] fn $name() {
                    super::super::keys_round_trip(super::super::Flavor::S3sFs, stringify!($name), &$keys[..])
                } )*
            }
            mod garage {
                $( #[test] fn $name() {
                    super::super::keys_round_trip(super::super::Flavor::Garage, stringify!($name), &$keys[..])
                } )*
            }
        }
    };
}

const DOT_SEGMENTS: &[&str] = &[
    "a/./b.txt",
    "a/../b.txt",
    "../up.txt",
    "./here.txt",
    "x/..",
    "y/.",
    "z/../../w",
];
const EMPTY_SEGMENTS: &[&str] = &["a//b.txt", "c///d.txt"];
const LEADING_SLASH: &[&str] = &["/lead.txt", "//two.txt"];
const TRAILING_SLASH: &[&str] = &["folder/", "a/b/"];

key_kinds! {
    dot_segments: crate::DOT_SEGMENTS;
    empty_segments: crate::EMPTY_SEGMENTS;
    leading_slash: crate::LEADING_SLASH;
    trailing_slash: crate::TRAILING_SLASH;
    percent: ["100%.txt", "%2F-not-a-slash.txt", "%zz", "%25"];
    plus: ["a+b.txt", "+lead"];
    spaces: ["with space.txt", " lead", "trail ", "a  b"];
    question_mark: ["why?.txt", "?x=1"];
    hash: ["#1.txt", "a#b"];
    ampersand: ["a&b=c.txt", "&"];
    unicode_nfc_and_nfd: ["caf\u{e9}.txt", "cafe\u{301}.txt"];
    differ_only_by_case: ["Readme.TXT", "readme.txt", "README.txt"];
    key_of_1024_bytes: [crate::long_key().as_str()];
}

/// A backup of bucket `documents` from the fake server.
fn backup_from(server: &test_harness::s3::ListsButWillNotServe, dir: &Path) -> Output {
    Tool::new(BIN)
        .env("MINIO_ENDPOINT", &server.endpoint)
        .env("MINIO_ROOT_USER", "user")
        .env("MINIO_ROOT_PASSWORD", "secret-never-shown")
        .env("MINIO_BUCKET", "documents")
        .env("BACKUP_DIR", dir)
        .run(&["backup"])
}

#[test]
fn a_key_the_server_lists_but_will_not_serve_is_named_as_refused_not_as_deleted() {
    let server = test_harness::s3::ListsButWillNotServe::start("a/../b.txt");
    let dir = tempfile::tempdir().unwrap();
    let out = backup_from(&server, dir.path());
    out.assert_backup_failed(
        1,
        "GET \"a/../b.txt\": 404, yet the bucket still lists it — the server cannot serve this key",
        "secret-never-shown",
    );
    assert!(!out.stderr.contains("deleted while"), "{}", out.stderr);
}

#[test]
fn a_key_no_url_can_carry_fails_the_backup_by_name() {
    // `..` alone: every URL parser resolves it to the bucket itself.
    let server = test_harness::s3::ListsButWillNotServe::start("..");
    let dir = tempfile::tempdir().unwrap();
    let out = backup_from(&server, dir.path());
    out.assert_backup_failed(
        1,
        "object key \"..\" cannot be requested over HTTP (every URL parser resolves it to the bucket itself); rename the object",
        "secret-never-shown",
    );
    assert_eq!(tree(dir.path()), vec!["minio/", "minio/.lock (0 bytes)"]);
}

/// Encryption: a plain full, then encrypted incrementals (a mixed chain);
/// without the identity the host cannot read its encrypted base, so the next
/// "incremental" is a full one; restore of the chain needs the identity.
#[test]
fn encrypted_archives_chain_with_plain_ones_and_restore_with_the_identity() {
    use test_harness::age::{AgeKeys, Mode};
    let keys = AgeKeys::new();
    for mode in Mode::ALL {
        let s3 = S3Server::start();
        let source = fill(&s3, "documents", 20);
        let dir = tempfile::tempdir().unwrap();
        let t = tool(&s3, dir.path(), "documents");
        let full = published(&t.run(&["backup"]), dir.path());
        assert!(full.to_string_lossy().ends_with(".tar.gz"));

        s3.put("documents", "new/one.txt", b"one", "text/plain", &[]);
        test_harness::wait_for_next_second();
        let with_identity = mode.apply(&keys, t.clone(), true);
        let out = with_identity.run(&["backup", "--type", "incremental"]);
        let incr = published(&out, dir.path());
        assert!(
            incr.to_string_lossy().ends_with(".incr.tar.gz.age"),
            "{incr:?}"
        );
        assert_eq!(out.record()["objects"], 1, "{mode:?}: only the change");

        s3.put("documents", "new/two.txt", b"two", "text/plain", &[]);
        test_harness::wait_for_next_second();
        let encrypt_only = mode.apply(&keys, t.clone(), false);
        let out = encrypt_only.run(&["backup", "--type", "incremental"]);
        let second = published(&out, dir.path());
        assert!(
            out.stderr
                .contains("is encrypted and BACKUP_AGE_IDENTITY_FILE is not set"),
            "{}",
            out.stderr
        );
        assert!(
            second.to_string_lossy().ends_with(".tar.gz.age")
                && !second.to_string_lossy().contains(".incr.")
        );
        assert!(dir
            .path()
            .join("minio/documents_latest.tar.gz.age")
            .exists());
        assert!(
            !dir.path().join("minio/documents_latest.tar.gz").exists(),
            "the plain latest link is retired"
        );

        let restore = |t: Tool, bucket: &str, file: &Path| {
            t.env("MINIO_BUCKET", bucket)
                .run(&["restore", file.to_str().unwrap()])
        };
        let out = restore(t.clone(), "nope", &incr);
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        let out = restore(with_identity.clone(), "restored", &incr);
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        let mut expected = source.clone();
        expected.push("new/one.txt".into());
        expected.sort();
        assert_eq!(s3.keys("restored"), expected);
        let out = restore(with_identity.clone(), "restored-full", &second);
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        assert_eq!(s3.keys("restored-full"), s3.keys("documents"));
    }
}

/// MINIO_BUCKET as a list: one archive series and one record per bucket, a
/// missing bucket fails the run (status 1) under its own name while the others
/// publish; `all` finds every bucket the credentials list (ListBuckets), so a
/// bucket created later is backed up without a change; a restore given `all`
/// restores into the archive's own bucket.
fn several_buckets_are_one_series_each_and_all_finds_them(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 3);
    fill(&s3, "photos", 5);
    let dir = tempfile::tempdir().unwrap();
    let out = tool(&s3, dir.path(), "documents,missing-one,photos").run(&["backup"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let records = out.json_lines();
    let series: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r["series"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        series,
        [
            ("documents", "success"),
            ("missing-one", "failed"),
            ("photos", "success")
        ]
    );
    assert!(
        records[1]["error"]
            .as_str()
            .unwrap()
            .contains("NoSuchBucket"),
        "{}",
        records[1]
    );
    assert_eq!(records[2]["objects"], 13);

    fill(&s3, "later", 1);
    let out = tool(&s3, dir.path(), "all").run(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let series: Vec<String> = out
        .json_lines()
        .iter()
        .map(|r| r["series"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(series, ["documents", "later", "photos"]);
    let files = tree(dir.path());
    for bucket in ["documents", "later", "photos"] {
        let latest = format!("minio/{bucket}_latest.tar.gz -> {bucket}_2");
        assert!(
            files.iter().any(|f| f.starts_with(&latest)),
            "{latest} not in {files:?}"
        );
    }
    assert!(
        !files.iter().any(|f| f.contains("missing-one")),
        "{files:?}"
    );

    let out = tool(&s3, dir.path(), "all").run(&["backup", "-o", "-"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("-o - writes one bucket"),
        "{}",
        out.stderr
    );

    for key in s3.keys("later") {
        s3.delete("later", &key);
    }
    let latest = dir.path().join("minio/later_latest.tar.gz");
    let out = tool(&s3, dir.path(), "all").run(&["restore", latest.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(s3.keys("later").len(), 9);
}

/// The drill: an incremental's chain restored into a scratch bucket, every
/// object compared, the scratch bucket gone — after a pass, after a failure
/// (an object whose bytes no longer match its manifest), and after a SIGTERM
/// in the middle of it.
fn restore_test_drills_a_chain_in_a_scratch_bucket_that_never_stays(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 20);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let full = published(&t.run(&["backup"]), dir.path());
    s3.put(
        "documents",
        "bulk/00/object-00000.txt",
        b"changed",
        "text/csv",
        &[("v", "2")],
    );
    s3.delete("documents", "empty.bin");
    let incr = published(&t.run(&["backup", "--type", "incremental"]), dir.path());

    let out = t.run(&["restore-test", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v = &out.json_lines()[0];
    assert_eq!(v["objects"], s3.keys("documents").len(), "{v}");
    assert_eq!(v["archives"], 2);
    assert!(v["scratch_bucket"]
        .as_str()
        .unwrap()
        .starts_with("documents-verify-"));
    assert_eq!(s3.buckets(), ["documents"], "the scratch bucket is gone");

    // The bytes of one object no longer match what the manifest recorded.
    let crafted = dir.path().join("minio/documents_20990101_000000.tar.gz");
    craft(&full, &crafted, |h, body, _| {
        if h.path().unwrap().to_string_lossy().ends_with("q1.pdf") {
            body[0] ^= 0x20;
        }
        true
    });
    let out = t.run(&["restore-test", crafted.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("restore-test failed: ") && out.stderr.contains("q1.pdf"),
        "{}",
        out.stderr
    );
    assert_eq!(s3.buckets(), ["documents"], "the scratch bucket is gone");

    let out = t
        .clone()
        .env("FAILPOINTS", "restore-test::restored=return(SIGTERM)")
        .run(&["restore-test", incr.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("removed the scratch bucket"),
        "{}",
        out.stderr
    );
    assert_eq!(s3.buckets(), ["documents"], "the scratch bucket is gone");
}

/// The drill's comparison itself: the tool is stopped between its restore and
/// its read-back, the scratch bucket changed behind its back, and each change
/// — bytes, metadata, an object gone, an object too many — fails the drill
/// naming the key; the scratch bucket goes every time.
fn restore_test_names_what_the_scratch_bucket_got_wrong(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    fill(&s3, "documents", 20);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let full = published(&t.run(&["backup"]), dir.path());
    let drill_with = |change: &dyn Fn(&str)| {
        let child = t
            .clone()
            .env("FAILPOINTS", "restore-test::restored=return(SIGSTOP)")
            .spawn(&["restore-test", full.to_str().unwrap()]);
        test_harness::wait_stopped(&child);
        let scratch = s3
            .buckets()
            .into_iter()
            .find(|b| b.starts_with("documents-verify-"))
            .expect("the scratch bucket while the drill is stopped");
        change(&scratch);
        test_harness::resume(&child);
        let out = finish(child);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert_eq!(s3.buckets(), ["documents"], "the scratch bucket is gone");
        out.stderr
    };
    let key = "reports/2024/q1.pdf";
    let err = drill_with(&|b| s3.put(b, key, b"%PDF-1.4 altered!!", "application/pdf", &[]));
    assert!(
        err.contains(&format!(
            "object \"{key}\" came back as 18 bytes with sha256"
        )),
        "{err}"
    );
    let err = drill_with(&|b| {
        s3.put(
            b,
            key,
            b"%PDF-1.4 quarterly",
            "application/pdf",
            &[("planted", "1")],
        )
    });
    assert!(
        err.contains(&format!("object \"{key}\" came back with metadata")),
        "{err}"
    );
    let err = drill_with(&|b| s3.delete(b, key));
    assert!(
        err.contains(&format!(
            "object \"{key}\" is missing from the restored bucket"
        )),
        "{err}"
    );
    let err = drill_with(&|b| s3.put(b, "reports/2024/planted.txt", b"x", "text/plain", &[]));
    assert!(
        err.contains(
            "the restored bucket holds \"reports/2024/planted.txt\", which the backup does not"
        ),
        "{err}"
    );
}

/// A server whose listing is out of key order, or lists a folder inside
/// itself, would make an incremental's merge with its base wrong (or never
/// end): either fails the backup, in both listing modes, and publishes nothing.
#[test]
fn a_listing_out_of_order_or_in_a_loop_fails_the_backup() {
    use test_harness::receiver::{Receiver, Request};
    let object = |key: &str| {
        format!("<Contents><Key>{key}</Key><ETag>\"e\"</ETag><Size>1</Size></Contents>")
    };
    let page = |body: String| (200, format!("<ListBucketResult>{body}</ListBucketResult>"));
    let out_of_order = Receiver::answering(Box::new(move |r: &Request| {
        if r.url.contains("list-type=2") {
            page(format!("{}{}", object("b.txt"), object("a.txt")))
        } else {
            (200, String::new())
        }
    }));
    // Asked for the folder x/, it answers with x/ again.
    let looping = Receiver::answering(Box::new(move |r: &Request| {
        if r.url.contains("list-type=2") {
            page("<CommonPrefixes><Prefix>x/</Prefix></CommonPrefixes>".into())
        } else {
            (200, String::new())
        }
    }));
    let cases = [
        (
            &out_of_order,
            "false",
            "listed \"a.txt\" after \"b.txt\", not in key order",
        ),
        (
            &out_of_order,
            "true",
            "listed \"a.txt\" after \"b.txt\", not in key order",
        ),
        (&looping, "false", "listed folder \"x/\" inside \"x/\""),
    ];
    for (server, fast_list, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = Tool::new(BIN)
            .env("MINIO_ENDPOINT", &server.url)
            .env("MINIO_ROOT_USER", "user")
            .env("MINIO_ROOT_PASSWORD", "secret-of-the-listing-test")
            .env("MINIO_BUCKET", "documents")
            .env("MINIO_FAST_LIST", fast_list)
            .env("BACKUP_DIR", dir.path())
            .run(&["backup"]);
        out.assert_backup_failed(1, needle, "secret-of-the-listing-test");
        assert_eq!(tree(dir.path()), vec!["minio/", "minio/.lock (0 bytes)"]);
    }
}

/// Every object of a bucket: its bytes and content type.
fn snapshot(s3: &S3Server, bucket: &str) -> std::collections::BTreeMap<String, (Vec<u8>, String)> {
    s3.keys(bucket)
        .into_iter()
        .map(|k| {
            let (bytes, ct, _) = s3.get(bucket, &k).unwrap();
            (k, (bytes, ct))
        })
        .collect()
}

/// SIGKILL (the OOM killer, `docker kill`) at random moments of a restore
/// into a bucket that moved on since the backup. S3 has no transaction over
/// several objects, so "as before" cannot hold for the bucket; what holds,
/// and is the README's answer: every object is whole — as it was before or
/// as the backup has it, never a part (an upload not completed is never an
/// object) — and running the restore again finishes it.
fn sigkill_mid_restore_leaves_every_object_whole_and_a_second_restore_finishes(flavor: Flavor) {
    let s3 = S3Server::start_as(flavor);
    s3.create_bucket("documents");
    let put_all = |version: u64| {
        for i in 0..120 {
            if version == 2 && i % 10 == 0 {
                s3.delete("documents", &format!("bulk/{i:04}.txt"));
                continue;
            }
            let body = format!("version {version} of object {i}");
            s3.put(
                "documents",
                &format!("bulk/{i:04}.txt"),
                body.as_bytes(),
                "text/plain",
                &[],
            );
        }
        s3.put(
            "documents",
            "big.bin",
            &noise(6 << 20, version),
            "application/octet-stream",
            &[],
        );
        s3.put(
            "documents",
            "huge.bin",
            &noise(20 << 20, version + 10),
            "application/octet-stream",
            &[],
        );
    };
    put_all(1);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let archive = published(&t.run(&["backup"]), dir.path());
    let archive = archive.to_str().unwrap();
    let backed_up = snapshot(&s3, "documents");
    put_all(2);
    s3.put(
        "documents",
        "added-later.txt",
        b"not in the backup",
        "text/plain",
        &[],
    );
    let before = snapshot(&s3, "documents");

    // How long a whole restore takes (into a bucket of its own).
    let started = std::time::Instant::now();
    let out = t.run(&["restore", "--bucket", "probe", archive]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let whole = started.elapsed();

    let mut changed_some = false;
    for kill in 0..12 {
        let at = whole.mul_f64(fastrand::f64());
        let mut child = t.spawn(&["restore", "--bucket", "documents", archive]);
        // Not a wait for an event: the moment of the kill is the experiment.
        std::thread::sleep(at);
        // std's kill is SIGKILL: no handler runs, nothing is cleaned up.
        let _ = child.kill();
        let out = finish(child);
        let now = snapshot(&s3, "documents");
        for (key, value) in &now {
            assert!(
                before.get(key) == Some(value) || backed_up.get(key) == Some(value),
                "kill {kill} at {at:?}: {key} is neither as before nor as backed up \
                 (code {:?}): {}",
                out.code,
                out.stderr
            );
        }
        changed_some |= now != before;
    }
    assert!(changed_some, "no kill landed after the first upload");
    // Run again, to the end: the bucket holds the backup (and what the backup
    // never knew, which a restore leaves alone).
    let out = t.run(&["restore", "--bucket", "documents", archive]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut after = snapshot(&s3, "documents");
    assert!(after.remove("added-later.txt").is_some());
    assert!(after == backed_up, "the second restore finished the first");
}
