//! qdrant-snap's real binary against the Qdrant stand-in (which replays the
//! recorded real server's behaviour; see tests/harness/tests/qdrant_standin.rs).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use test_harness::qdrant::{Faults, QdrantStandin};
use test_harness::{terminate, tree, wait_for, Output, SmallDisk, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_qdrant-snap");
const KEY: &str = "qdrant-test-key-5150";

fn tool(server: &QdrantStandin, backup_dir: &Path) -> Tool {
    let t = Tool::new(BIN)
        .env("QDRANT_URL", &server.url)
        .env("BACKUP_DIR", backup_dir)
        .env("TZ", "Europe/Berlin");
    match &server.api_key {
        Some(k) => t.env("QDRANT_API_KEY", k),
        None => t,
    }
}

/// `documents` in exactly the recorded state (its snapshot is the real recorded
/// file) and a second, synthetic collection.
fn standin() -> QdrantStandin {
    let s = QdrantStandin::start(Some(KEY));
    s.add_collection("documents", 4, 50);
    s.add_collection("memory", 3, 30);
    s
}

fn record(out: &Output) -> serde_json::Value {
    out.record()
}

fn assert_failed(out: &Output, needle: &str) {
    out.assert_backup_failed(1, needle, KEY);
}

fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(fs::File::open(archive).unwrap());
    let mut tar = tar::Archive::new(gz);
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), data)
        })
        .collect()
}

fn good_backup(t: &Tool, dir: &Path) -> (PathBuf, Vec<String>) {
    let out = t.run(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = record(&out);
    (
        dir.join("qdrant").join(r["file"].as_str().unwrap()),
        tree(dir),
    )
}

#[test]
fn backs_up_every_collection_verified_and_restores_them() {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let out = t.run(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = record(&out);
    assert_eq!(r["status"], "success");
    assert_eq!(r["collections"], serde_json::json!(["documents", "memory"]));
    assert_eq!(
        r["points"], 80,
        "every collection's points, for the report's history"
    );
    let archive = dir.path().join("qdrant").join(r["file"].as_str().unwrap());
    assert!(r["file"].as_str().unwrap().starts_with("qdrant_"));
    assert!(!out.all().contains(KEY));

    let items = entries(&archive);
    assert_eq!(items[0].0, "manifest.json", "the manifest comes first");
    let manifest: serde_json::Value = serde_json::from_slice(&items[0].1).unwrap();
    assert_eq!(manifest["collections"][0]["points_count"], 50);
    assert_eq!(
        manifest["collections"][0]["vectors"],
        serde_json::json!({"size": 4, "distance": "Cosine"})
    );
    assert_eq!(manifest["collections"][1]["points_count"], 30);
    let real =
        fs::read(test_harness::qdrant::recordings_dir().join("collection-documents.snapshot"))
            .unwrap();
    let docs = items
        .iter()
        .find(|(p, _)| p.starts_with("snapshots/documents/"))
        .unwrap();
    assert!(docs.1 == real, "the real recorded snapshot, byte for byte");
    assert_eq!(
        manifest["collections"][0]["snapshot"]["sha256"],
        test_harness::qdrant::sha256(&real)
    );
    assert!(items
        .iter()
        .any(|(p, _)| p.starts_with("snapshots/memory/")));

    // The server's copies are gone; the product description's own check works.
    assert!(server.remote_snapshots(Some("documents")).is_empty());
    assert!(server.remote_snapshots(Some("memory")).is_empty());
    let check = std::process::Command::new("sh")
        .args([
            "-c",
            "tar -tzf qdrant_latest.tar.gz >/dev/null && sha256sum -c *.sha256",
        ])
        .current_dir(dir.path().join("qdrant"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    server.delete_collection("documents");
    server.delete_collection("memory");
    let latest = dir.path().join("qdrant/qdrant_latest.tar.gz");
    let out = t.run(&["restore", latest.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(server.points_count("documents"), Some(50));
    assert_eq!(server.points_count("memory"), Some(30));
    let report = out.json_lines();
    assert_eq!(report[0]["collections"].as_array().unwrap().len(), 2);
    assert!(!out.all().contains(KEY));

    let out = t.run(&[
        "restore",
        latest.to_str().unwrap(),
        "--collection",
        "documents",
        "--as",
        "documents_copy",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(server.points_count("documents_copy"), Some(50));
}

#[test]
fn keep_remote_leaves_the_server_snapshot() {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let out = tool(&server, dir.path()).run(&["backup", "--collection", "memory", "--keep-remote"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(server.remote_snapshots(Some("memory")).len(), 1);
}

#[test]
fn a_snapshot_already_gone_on_delete_is_a_warning() {
    let server = standin();
    server.set_faults(Faults {
        lose_snapshots_after_download: true,
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let out = tool(&server, dir.path()).run(&["backup", "--collection", "documents"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: could not delete snapshot"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("404"), "{}", out.stderr);
}

#[test]
fn full_storage_snapshot_is_archived_and_restore_explains_startup_recovery() {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let out = t.run(&["backup", "--full"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let archive = dir
        .path()
        .join("qdrant")
        .join(record(&out)["file"].as_str().unwrap());
    let items = entries(&archive);
    let full =
        fs::read(test_harness::qdrant::recordings_dir().join("full-storage.snapshot")).unwrap();
    assert!(items
        .iter()
        .any(|(p, d)| p.starts_with("full/full-snapshot-") && *d == full));
    assert!(server.remote_snapshots(None).is_empty());
    let out = t.run(&["restore", archive.to_str().unwrap()]);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("--storage-snapshot"), "{}", out.stderr);
}

#[test]
fn wrong_or_missing_api_key_fails_cleanly() {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let (_, before) = good_backup(&t, dir.path());
    let out = t
        .clone()
        .env("QDRANT_API_KEY", "wrong-key-777")
        .run(&["backup"]);
    assert_failed(
        &out,
        "401 Unauthorized: Invalid API key or JWT — check QDRANT_API_KEY",
    );
    assert!(!out.all().contains("wrong-key-777"));
    let out = t.clone().without("QDRANT_API_KEY").run(&["backup"]);
    assert_failed(&out, "Must provide an API key");
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn unknown_collection_fails_cleanly() {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let (_, before) = good_backup(&t, dir.path());
    let out = t.run(&["backup", "--collection", "nope"]);
    assert_failed(
        &out,
        "Collection `nope` doesn't exist! — check the collection name",
    );
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn unreachable_server_fails_after_retries() {
    let dir = tempfile::tempdir().unwrap();
    let out = Tool::new(BIN)
        .env(
            "QDRANT_URL",
            format!("http://127.0.0.1:{}", test_harness::free_port()),
        )
        .env("BACKUP_DIR", dir.path())
        .run(&["backup"]);
    assert_failed(&out, "check QDRANT_URL and that Qdrant is running");
    assert_eq!(out.stderr.matches("retrying").count(), 3, "{}", out.stderr);
}

#[test]
fn a_server_that_comes_up_late_is_retried() {
    let port = test_harness::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Tool::new(BIN)
        .env("QDRANT_URL", format!("http://127.0.0.1:{port}"))
        .env("QDRANT_API_KEY", KEY)
        .env("BACKUP_DIR", dir.path())
        .command(&["backup"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server comes up once the first attempt has been refused and a retry
    // announced; the backoff (0.5 s, 1 s, 2 s) leaves it time to.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("retrying") {
        let n = std::io::BufRead::read_line(&mut stderr, &mut seen).unwrap();
        assert!(n > 0, "the tool ended without retrying: {seen}");
    }
    let server = QdrantStandin::start_on(Some(KEY), port);
    server.add_collection("documents", 4, 50);
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{seen}");
}

fn failing_backup(faults: Faults, needle: &str, args: &[&str]) -> Output {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let (_, before) = good_backup(&t, dir.path());
    server.set_faults(faults);
    let out = t.run(args);
    assert_failed(&out, needle);
    assert_eq!(
        tree(dir.path()),
        before,
        "nothing published, latest unchanged, no temp file"
    );
    assert!(
        server.remote_snapshots(Some("documents")).is_empty(),
        "server snapshots cleaned up"
    );
    out
}

#[test]
fn checksum_mismatch_publishes_nothing() {
    let faults = Faults {
        wrong_checksum: true,
        ..Default::default()
    };
    failing_backup(faults, "but Qdrant reported 0000", &["backup"]);
}

#[test]
fn connection_dropped_mid_download_publishes_nothing() {
    let faults = Faults {
        drop_mid_download: true,
        ..Default::default()
    };
    failing_backup(faults, "snapshot documents-", &["backup"]);
}

#[test]
fn server_error_on_create_publishes_nothing() {
    let faults = Faults {
        fail_create: true,
        ..Default::default()
    };
    failing_backup(
        faults,
        "500 Internal Server Error: Service internal error",
        &["backup"],
    );
}

#[test]
fn a_download_that_stalls_ends_at_the_stall_timeout() {
    let faults = Faults {
        slow_download: Some(Duration::from_millis(1500)),
        ..Default::default()
    };
    let out = failing_backup(
        faults,
        "Qdrant stopped answering (no data for 1 s)",
        &["backup", "--stall-timeout", "1"],
    );
    assert!(!out.stderr.contains("raise --timeout"), "{}", out.stderr);
}

#[test]
fn snapshot_creation_may_outlast_the_stall_timeout_but_not_the_timeout() {
    let slow = Faults {
        slow_create: Some(Duration::from_millis(1500)),
        ..Default::default()
    };
    // Qdrant says nothing while it writes a snapshot: that is work, not a stall.
    let server = standin();
    server.set_faults(slow.clone());
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let out = t.run(&["backup", "--stall-timeout", "1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The overall --timeout still bounds it, and only then is raising it the
    // hint. (Qdrant finishes the abandoned snapshot anyway; its name never came
    // back, so it stays on the server.)
    let before = tree(dir.path());
    let out = t.run(&["backup", "--timeout", "1"]);
    assert_failed(&out, "did not finish within --timeout 1 s; raise --timeout");
    assert_eq!(tree(dir.path()), before, "nothing published");
}

/// A collection whose snapshot is `size` bytes of incompressible data.
fn big_collection(server: &QdrantStandin, dir: &Path, size: usize) {
    let file = dir.join("big.snapshot");
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    fs::write(&file, data).unwrap();
    server.serve_file_as_snapshot("big", &file);
}

#[test]
#[ignore = "needs root (it mounts a tmpfs or runs crond); scripts/test.sh runs it as root"]
fn disk_full_publishes_nothing() {
    test_harness::require_root("qdrant disk_full_publishes_nothing");
    let server = standin();
    let work = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount("256k");
    let t = tool(&server, disk.path());
    let (_, before) = good_backup(&t, disk.path());
    big_collection(&server, work.path(), 1 << 20);
    let out = t.run(&["backup"]);
    assert_failed(&out, "disk full");
    assert_eq!(tree(disk.path()), before);
}

#[test]
fn sigterm_mid_download_removes_the_temp_file() {
    let server = standin();
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let (_, before) = good_backup(&t, dir.path());
    // Bytes reach the temp file a buffer at a time (about 1 MiB): a download of
    // 4 MiB at a few MiB a minute is seen mid-way, soon, even on a loaded machine.
    big_collection(&server, work.path(), 4 << 20);
    server.set_faults(Faults {
        slow_download: Some(Duration::from_millis(40)),
        ..Default::default()
    });
    let child = t.spawn(&["backup", "--collection", "big"]);
    // Some of the download is in the temp file: the backup is mid-way.
    wait_for("the download to be under way", || {
        tree(dir.path())
            .iter()
            .any(|e| e.contains(".tmp-") && !e.ends_with("(0 bytes)"))
            .then_some(())
    });
    terminate(child);
    assert_eq!(tree(dir.path()), before);
}

#[test]
fn stdout_mode_streams_the_archive_and_writes_nothing() {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let out = tool(&server, dir.path())
        .command(&["backup", "-o", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = test_harness::tar_gz_entries(&out.stdout);
    assert_eq!(names[0], "manifest.json");
    assert_eq!(names.len(), 3);
    assert!(tree(dir.path()).is_empty());
}

mod restore {
    use super::*;

    fn assert_restore_failed(out: &Output, needle: &str) {
        out.assert_failed("restore", 1, needle, KEY);
    }

    #[test]
    fn a_damaged_snapshot_is_not_uploaded() {
        let server = standin();
        let dir = tempfile::tempdir().unwrap();
        let t = tool(&server, dir.path());
        let (archive, _) = good_backup(&t, dir.path());
        // Rebuild the archive with one byte of the documents snapshot flipped, no sidecar.
        let mut items = entries(&archive);
        let docs = items
            .iter_mut()
            .find(|(p, _)| p.starts_with("snapshots/documents/"))
            .unwrap();
        docs.1[1000] ^= 0x40;
        let copy = dir.path().join("damaged.tar.gz");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            fs::File::create(&copy).unwrap(),
            Default::default(),
        ));
        for (path, data) in &items {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            builder.append_data(&mut h, path, &data[..]).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        server.delete_collection("documents");
        let out = t.run(&[
            "restore",
            copy.to_str().unwrap(),
            "--collection",
            "documents",
        ]);
        assert_restore_failed(&out, "the manifest records");
        assert_eq!(
            server.points_count("documents"),
            None,
            "nothing was uploaded"
        );
    }

    #[test]
    fn refuses_an_archive_that_does_not_match_its_sidecar() {
        let server = standin();
        let dir = tempfile::tempdir().unwrap();
        let t = tool(&server, dir.path());
        let (archive, _) = good_backup(&t, dir.path());
        let mut bytes = fs::read(&archive).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 1;
        fs::write(&archive, bytes).unwrap();
        let out = t.run(&["restore", archive.to_str().unwrap()]);
        assert_restore_failed(&out, "does not match its sidecar");
    }

    #[test]
    fn a_server_error_on_upload_fails_the_restore() {
        let server = standin();
        let dir = tempfile::tempdir().unwrap();
        let t = tool(&server, dir.path());
        let (archive, _) = good_backup(&t, dir.path());
        server.set_faults(Faults {
            fail_upload: true,
            ..Default::default()
        });
        let out = t.run(&["restore", archive.to_str().unwrap()]);
        assert_restore_failed(&out, "500 Internal Server Error");
    }

    #[test]
    fn rename_needs_exactly_one_collection_and_names_must_exist() {
        let server = standin();
        let dir = tempfile::tempdir().unwrap();
        let t = tool(&server, dir.path());
        let (archive, _) = good_backup(&t, dir.path());
        let out = t.run(&["restore", archive.to_str().unwrap(), "--as", "x"]);
        assert_eq!(out.code, Some(2));
        assert!(out.stderr.contains("--as needs exactly one collection"));
        let out = t.run(&["restore", archive.to_str().unwrap(), "--collection", "nope"]);
        assert_eq!(out.code, Some(2));
        assert!(out
            .stderr
            .contains("collection nope is not in the archive (it holds: documents, memory)"));
    }
}

#[test]
fn a_stalling_server_ends_the_backup_within_the_stall_timeout() {
    let dir = tempfile::tempdir().unwrap();
    test_harness::stall::assert_backup_survives_stalls(
        |server| {
            Tool::new(BIN)
                .env("QDRANT_URL", &server.url)
                .env("BACKUP_DIR", dir.path())
        },
        &dir.path().join("qdrant"),
        &["backup"],
    );
}

/// A crafted archive: its sidecar is right (it was made for the damaged
/// bytes), but one snapshot's last byte differs from what its manifest
/// records. The upload streams straight from the archive, so the damage is
/// only seen at the snapshot's end: the upload is abandoned before its body
/// closes, and Qdrant commits nothing. Nothing is staged on disk either.
#[test]
fn a_snapshot_damaged_in_the_archive_is_never_committed_and_nothing_is_staged() {
    use sha2::Digest;
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // 8 MiB: far more than the upload's few chunks in flight, so the request
    // is on the wire, its body half sent, when the damage shows.
    big_collection(&server, work.path(), 8 << 20);
    let t = tool(&server, dir.path());
    let (archive, _) = good_backup(&t, dir.path());
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, mut data) in entries(&archive) {
        if path.starts_with("snapshots/big/") {
            let last = data.len() - 1;
            data[last] ^= 0xff;
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        tar.append_data(&mut header, &path, &data[..]).unwrap();
    }
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    let crafted = dir.path().join("qdrant/qdrant_20990101_000000.tar.gz");
    fs::write(&crafted, &bytes).unwrap();
    fs::write(
        dir.path()
            .join("qdrant/qdrant_20990101_000000.tar.gz.sha256"),
        format!(
            "{}  qdrant_20990101_000000.tar.gz\n",
            hex::encode(sha2::Sha256::digest(&bytes))
        ),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = t.clone().env("TMPDIR", tmp.path()).run(&[
        "restore",
        crafted.to_str().unwrap(),
        "--collection",
        "big",
        "--as",
        "big_b",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the manifest records")
            && out.stderr.contains("the archive is damaged")
            && out
                .stderr
                .contains("upload abandoned, Qdrant got no complete snapshot"),
        "{}",
        out.stderr
    );
    assert!(
        server.points_count("big_b").is_none(),
        "a damaged snapshot was restored"
    );
    assert!(
        tree(tmp.path()).is_empty(),
        "something was staged: {:?}",
        tree(tmp.path())
    );
    // The upload was on its way when the damage showed: streamed, not staged.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.contains("/collections/big_b/snapshots/upload")
                && r.ends_with("(abandoned by the client)")),
        "{:?}",
        server.requests()
    );
    // The good archive still restores, streamed the same way.
    let out = t.clone().env("TMPDIR", tmp.path()).run(&[
        "restore",
        archive.to_str().unwrap(),
        "--collection",
        "documents",
        "--as",
        "documents_c",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(server.points_count("documents_c"), Some(50));
    assert!(tree(tmp.path()).is_empty());
}

#[test]
fn a_collection_name_qdrant_would_refuse_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["../x", "a/b", "", "a:b"] {
        let out = Tool::new(BIN)
            .env("QDRANT_URL", "http://127.0.0.1:9")
            .env("BACKUP_DIR", dir.path())
            .run(&["backup", "--collection", name]);
        out.assert_backup_failed(2, "--collection: collection name", "no-secret-here");
        assert!(
            tree(dir.path()).is_empty(),
            "{name:?}: {:?}",
            tree(dir.path())
        );
    }
}

/// Encrypted with recipients and with a passphrase: `qdrant_….tar.gz.age`,
/// decrypted by Debian's `age` to the archive of today; restore needs the
/// identity (exit 2 without, 1 with a wrong one, no collection touched).
#[test]
fn encrypted_archives_round_trip_and_need_their_identity() {
    use test_harness::age::{AgeKeys, Mode};
    let keys = AgeKeys::new();
    let other = AgeKeys::new();
    for mode in Mode::ALL {
        let server = standin();
        let dir = tempfile::tempdir().unwrap();
        let t = tool(&server, dir.path());
        let out = mode.apply(&keys, t.clone(), false).run(&["backup"]);
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        let file = record(&out)["file"].as_str().unwrap().to_owned();
        assert!(file.ends_with(".tar.gz.age"), "{file}");
        let latest = dir.path().join("qdrant/qdrant_latest.tar.gz.age");
        assert!(latest.exists());
        if mode == Mode::Recipients {
            let plain = dir.path().join("plain.tar.gz");
            fs::write(&plain, keys.decrypt_with_cli(&latest)).unwrap();
            assert_eq!(entries(&plain)[0].0, "manifest.json");
        }
        server.delete_collection("documents");
        let restore = |t: Tool| t.run(&["restore", latest.to_str().unwrap()]);
        let out = restore(t.clone());
        assert_eq!(out.code, Some(2), "{mode:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("set BACKUP_AGE_IDENTITY_FILE"),
            "{}",
            out.stderr
        );
        let out = restore(mode.apply(&other, t.clone(), true));
        assert_eq!(out.code, Some(1), "{mode:?}: {}", out.stderr);
        assert_eq!(server.points_count("documents"), None, "{mode:?}: touched");
        let out = restore(mode.apply(&keys, t.clone(), true));
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        assert_eq!(server.points_count("documents"), Some(50));
        assert!(!out.all().contains(KEY));
    }
}

/// A passphrase and recipients together is a usage error (one age file cannot
/// be opened by both); an identity file others may read gets a warning naming
/// it; neither key nor passphrase ever shows.
#[test]
fn age_settings_are_checked_and_never_shown() {
    use std::os::unix::fs::PermissionsExt;
    use test_harness::age::AgeKeys;
    let keys = AgeKeys::new();
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let out = t
        .clone()
        .env("BACKUP_AGE_RECIPIENTS", &keys.recipient)
        .env("BACKUP_AGE_PASSPHRASE_FILE", keys.passphrase_file())
        .run(&["backup"]);
    let passphrase = fs::read_to_string(keys.passphrase_file()).unwrap();
    out.assert_backup_failed(
        2,
        "BACKUP_AGE_PASSPHRASE_FILE and BACKUP_AGE_RECIPIENTS/BACKUP_AGE_RECIPIENTS_FILE are both set",
        passphrase.trim(),
    );
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));

    let out = t
        .clone()
        .env("BACKUP_AGE_RECIPIENTS", "age1notakey")
        .run(&["backup"]);
    out.assert_backup_failed(2, "BACKUP_AGE_RECIPIENTS/BACKUP_AGE_RECIPIENTS_FILE", KEY);

    // A recipients file, as age writes them (comments and blank lines allowed).
    let recipients = dir.path().join("recipients.txt");
    fs::write(&recipients, format!("# ops team\n\n{}\n", keys.recipient)).unwrap();
    let out = t
        .clone()
        .env("BACKUP_AGE_RECIPIENTS_FILE", &recipients)
        .run(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let latest = dir.path().join("qdrant/qdrant_latest.tar.gz.age");
    fs::set_permissions(keys.identity_file(), fs::Permissions::from_mode(0o644)).unwrap();
    let identity = fs::read_to_string(keys.identity_file()).unwrap();
    let secret_line = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let out = t
        .clone()
        .env("BACKUP_AGE_IDENTITY_FILE", keys.identity_file())
        .run(&["restore", latest.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "warning: BACKUP_AGE_IDENTITY_FILE ({}) can be read by group or others",
            keys.identity_file().display()
        )),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains(secret_line));
}

/// `-o -` with encryption configured writes the encrypted stream (and nothing
/// to the tree); Debian's `age` decrypts it to the archive.
#[test]
fn stdout_mode_writes_the_encrypted_stream() {
    use test_harness::age::AgeKeys;
    let keys = AgeKeys::new();
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let out = tool(&server, dir.path())
        .env("BACKUP_AGE_RECIPIENTS", &keys.recipient)
        .command(&["backup", "-o", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"age-encryption.org/v1\n"));
    let sealed = dir.path().join("stream.age");
    fs::write(&sealed, &out.stdout).unwrap();
    let plain = keys.decrypt_with_cli(&sealed);
    assert_eq!(test_harness::tar_gz_entries(&plain)[0], "manifest.json");
    assert_eq!(
        tree(dir.path()),
        vec!["stream.age (".to_owned() + &out.stdout.len().to_string() + " bytes)"]
    );
}

/// Aliases are not in snapshots: the backup records them per collection, a
/// restore under the collection's own name points them at it again; a copy
/// (`--as`) leaves them on the live collection unless `--aliases` asks.
#[test]
fn aliases_are_recorded_and_come_back_with_their_collections() {
    let server = standin();
    server.point_alias("docs", "documents");
    server.point_alias("Mémoire Alias", "memory");
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let (archive, _) = good_backup(&t, dir.path());
    let manifest: serde_json::Value = serde_json::from_slice(&entries(&archive)[0].1).unwrap();
    assert_eq!(
        manifest["collections"][0]["aliases"],
        serde_json::json!(["docs"])
    );
    assert_eq!(
        manifest["collections"][1]["aliases"],
        serde_json::json!(["Mémoire Alias"])
    );

    server.delete_collection("documents");
    server.delete_collection("memory");
    assert!(
        server.aliases().is_empty(),
        "deleted with their collections"
    );
    let a = archive.to_str().unwrap();
    let out = t.run(&["restore", a]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let both = vec![
        ("Mémoire Alias".to_owned(), "memory".to_owned()),
        ("docs".to_owned(), "documents".to_owned()),
    ];
    assert_eq!(server.aliases(), both);
    assert_eq!(
        out.json_lines()[0]["collections"][0]["aliases"],
        serde_json::json!(["docs"])
    );

    let copy = ["restore", a, "--collection", "documents", "--as", "copy"];
    assert_eq!(t.run(&copy).code, Some(0));
    assert_eq!(server.aliases(), both, "a copy leaves the aliases alone");
    let out = t.run(&[
        "restore",
        a,
        "--collection",
        "documents",
        "--as",
        "copy2",
        "--aliases",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(server
        .aliases()
        .contains(&("docs".to_owned(), "copy2".to_owned())));

    server.delete_collection("memory");
    let out = t.run(&["restore", a, "--collection", "memory", "--no-aliases"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!server
        .aliases()
        .iter()
        .any(|(alias, _)| alias == "Mémoire Alias"));
}

/// SIGKILL at random moments of a restore over collections that moved on:
/// Qdrant replaces a collection only from a snapshot it received whole, so
/// each collection is as it was or as backed up — never half — and running
/// the restore again finishes it (the README's answer).
#[test]
fn sigkill_mid_restore_leaves_each_collection_as_it_was_or_restored() {
    let server = standin();
    let dir = tempfile::tempdir().unwrap();
    let t = tool(&server, dir.path());
    let (archive, _) = good_backup(&t, dir.path());
    let archive = archive.to_str().unwrap();
    let counts = || {
        (
            server.points_count("documents"),
            server.points_count("memory"),
        )
    };
    let backed_up = counts();
    server.add_collection("documents", 4, 7);
    server.add_collection("memory", 3, 9);
    let before = counts();
    assert_ne!(before, backed_up);
    let started = std::time::Instant::now();
    let out = t.run(&["restore", archive]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let whole = started.elapsed();
    let mut restored_some = false;
    for kill in 0..20 {
        server.add_collection("documents", 4, 7);
        server.add_collection("memory", 3, 9);
        let at = whole.mul_f64(fastrand::f64() * 1.2);
        let mut child = t.spawn(&["restore", archive]);
        // Not a wait for an event: the moment of the kill is the experiment.
        std::thread::sleep(at);
        let _ = child.kill();
        let out = test_harness::finish(child);
        let (documents, memory) = counts();
        for (name, now, was, backup) in [
            ("documents", documents, before.0, backed_up.0),
            ("memory", memory, before.1, backed_up.1),
        ] {
            assert!(
                now == was || now == backup,
                "kill {kill} at {at:?}: {name} has {now:?} points, neither {was:?} nor {backup:?}: {}",
                out.stderr
            );
        }
        restored_some |= counts() != before;
    }
    assert!(restored_some, "no kill landed after the first upload");
    let out = t.run(&["restore", archive]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(counts(), backed_up);
}
