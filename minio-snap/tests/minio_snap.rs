//! minio-snap's real binary against a real S3 server (s3s-fs, which checks signatures).

use std::fs;
use std::path::{Path, PathBuf};
use test_harness::s3::S3Server;
use test_harness::{finish, terminate, tree, Output, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_minio-snap");

fn tool(s3: &S3Server, dir: &Path, bucket: &str) -> Tool {
    Tool::new(BIN)
        .env("MINIO_ENDPOINT", &s3.endpoint)
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

#[test]
fn full_backup_round_trips_objects_types_and_metadata() {
    let s3 = S3Server::start();
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

#[test]
fn to_dir_extracts_inside_the_folder_only() {
    let s3 = S3Server::start();
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

#[test]
fn incremental_holds_exactly_the_changes_and_the_chain_restores_the_bucket() {
    let s3 = S3Server::start();
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
    std::thread::sleep(std::time::Duration::from_millis(1100));
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

#[test]
fn failures_publish_nothing_and_leak_no_secret() {
    let mut s3 = S3Server::start();
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

#[test]
fn a_100_mib_object_round_trips_through_a_multipart_upload() {
    let s3 = S3Server::start();
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
    for i in 0..20 {
        s3.put(
            "documents",
            &format!("b-{i:02}.txt"),
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

#[test]
fn an_object_deleted_between_list_and_get_fails_the_backup() {
    let s3 = S3Server::start();
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

#[test]
fn the_server_dying_mid_backup_publishes_nothing() {
    let mut s3 = S3Server::start();
    slow_bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let run = backup_under_way(&t, dir.path());
    s3.stop();
    let out = finish(run);
    out.assert_backup_failed(1, "", &s3.secret_key);
    assert!(
        out.stderr.contains("a-big.bin broke off") || out.stderr.contains("check MINIO_ENDPOINT"),
        "{}",
        out.stderr
    );
    assert_eq!(tree(dir.path()), vec!["minio/", "minio/.lock (0 bytes)"]);
}

#[test]
fn sigterm_mid_backup_removes_the_temp_file() {
    let s3 = S3Server::start();
    slow_bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&s3, dir.path(), "documents");
    let run = backup_under_way(&t, dir.path());
    terminate(run);
    assert_eq!(tree(dir.path()), vec!["minio/", "minio/.lock (0 bytes)"]);
}

#[test]
fn disk_full_publishes_nothing() {
    if !test_harness::root_or_skip("minio disk_full_publishes_nothing") {
        return;
    }
    let s3 = S3Server::start();
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

#[test]
fn an_archive_left_without_its_sidecar_is_never_the_base_of_an_incremental() {
    let s3 = S3Server::start();
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
