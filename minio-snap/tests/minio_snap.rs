//! minio-snap's real binary against a real S3 server (s3s-fs, which checks signatures).

use std::fs;
use std::path::{Path, PathBuf};
use test_harness::s3::S3Server;
use test_harness::{tree, Output, Tool};

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
    assert_eq!(tree(dir.path()), before);
}
