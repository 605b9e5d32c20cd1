//! backup-verify on real artifacts: seeded corruption trials per kind (every
//! corruption FAIL, every intact file OK), the binary's selection and output,
//! and the restore test against a real PostgreSQL and the Qdrant stand-in.

use backup_common::crypt::Decryption;
use backup_verify::{verify_file, Keys};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use test_harness::qdrant::QdrantStandin;
use test_harness::{PgCluster, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_backup-verify");
const TRIALS: u64 = 200;

/// A small deterministic generator (xorshift64*), seeded per trial.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sha256(bytes: &[u8]) -> String {
    test_harness::qdrant::sha256(bytes)
}

/// Writes an artifact and its sidecar (recording `sidecar_of`'s hash).
fn place(dir: &Path, name: &str, bytes: &[u8], sidecar_of: &[u8]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    fs::write(
        dir.join(format!("{name}.sha256")),
        format!("{}  {name}\n", sha256(sidecar_of)),
    )
    .unwrap();
    path
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn pg_dump_sql(rows: u32) -> Vec<u8> {
    let mut sql =
        String::from("--\n-- PostgreSQL database dump\n--\n\nCOPY public.t (a, b) FROM stdin;\n");
    for i in 0..rows {
        sql.push_str(&format!("{i}\tvalue {}\n", i * 7919 % 1000));
    }
    sql.push_str("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n");
    sql.into_bytes()
}

fn n8n_json(n: u32) -> Vec<u8> {
    let workflows: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"id": format!("wf{i}"), "name": format!("Workflow {i} – ü"), "active": false,
                "nodes": [{"name": "Start", "type": "n8n-nodes-base.manualTrigger", "parameters": {}}],
                "connections": {}, "settings": {}})
        })
        .collect();
    serde_json::to_vec_pretty(&workflows).unwrap()
}

/// A component tool's real binary (backup-verify itself depends on none of them).
/// Reading plain artifacts needs no identity.
fn plain() -> Keys {
    Keys::default()
}

fn tool(name: &str) -> Tool {
    Tool::new(test_harness::script::bin_dir().join(name))
}

/// Runs a tool to success.
fn made_by(t: &Tool, args: &[&str]) {
    let out = t.run(args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

/// A real qdrant-snap archive, made by the tool against the stand-in.
fn qdrant_archive(version: u32) -> Vec<u8> {
    let server = QdrantStandin::start(None);
    server.add_collection("documents", 4, 50);
    server.add_collection("memory", 3, 10 + version);
    let dir = tempfile::tempdir().unwrap();
    made_by(
        &tool("qdrant-snap")
            .env("QDRANT_URL", &server.url)
            .env("BACKUP_DIR", dir.path()),
        &["backup", "--level", "6"],
    );
    fs::read(dir.path().join("qdrant/qdrant_latest.tar.gz")).unwrap()
}

/// A stale and a swapped sidecar (`older` is a different valid version of
/// `good`, an artifact of `folder`), then `TRIALS` seeded corruptions of `good`
/// (a truncation or a flipped bit, each at a random place). Every one must
/// FAIL; the intact file must be OK.
fn trials(folder: &str, name: &str, good: &[u8], older: &[u8]) {
    trials_with(folder, name, good, older, &Decryption::default());
}

/// `trials`, reading with `decryption` (encrypted artifacts).
fn trials_with(folder: &str, name: &str, good: &[u8], older: &[u8], decryption: &Decryption) {
    let plain = || Keys {
        age: decryption.clone(),
        n8n: None,
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(folder);
    let intact = place(&dir, name, good, good);
    let v = verify_file(&intact, &plain());
    assert_eq!(v.failure, None, "intact {name} must pass");
    // A stale or swapped sidecar is one case each, not a random trial.
    for (what, bytes, sidecar_of) in [
        (
            "the sidecar of an older backup beside a newer file",
            good,
            older,
        ),
        ("a newer file under an older file's sidecar", older, good),
    ] {
        let path = place(&dir, name, bytes, sidecar_of);
        assert!(
            verify_file(&path, &plain()).failure.is_some(),
            "{name}: {what} passed as OK"
        );
    }
    // Random damage: a cut anywhere, or one flipped bit anywhere.
    let mut kinds = [0u32; 2];
    for seed in 0..TRIALS {
        let mut rng = Rng::new(seed + 1);
        let kind = rng.below(2) as usize;
        kinds[kind] += 1;
        let bytes = match kind {
            0 => good[..rng.below(good.len() as u64) as usize].to_vec(),
            _ => {
                let mut b = good.to_vec();
                let at = rng.below(b.len() as u64) as usize;
                b[at] ^= 1 << rng.below(8);
                b
            }
        };
        let path = place(&dir, name, &bytes, good);
        let v = verify_file(&path, &plain());
        assert!(
            v.failure.is_some(),
            "{name}: trial {seed} (kind {kind}) passed as OK"
        );
    }
    // Both kinds were really drawn (the generator decides, not the loop counter).
    assert!(kinds.iter().all(|k| *k >= TRIALS as u32 / 4), "{kinds:?}");
    // And the intact file still passes afterwards.
    let path = place(&dir, name, good, good);
    assert_eq!(verify_file(&path, &plain()).failure, None);
}

/// Truncations that keep a matching sidecar: only decoding can catch them.
fn truncations_caught_by_content(folder: &str, name: &str, good: &[u8], trials: u64) {
    truncations_caught_with(folder, name, good, trials, &Decryption::default());
}

fn truncations_caught_with(
    folder: &str,
    name: &str,
    good: &[u8],
    trials: u64,
    decryption: &Decryption,
) {
    let plain = || Keys {
        age: decryption.clone(),
        n8n: None,
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(folder);
    // Random cuts, and every cut into the last 8 bytes (gzip's CRC and length).
    let tail = (good.len().saturating_sub(8)..good.len()).map(|c| c as u64);
    let random = (0..trials).map(|seed| Rng::new(seed + 7).below(good.len() as u64));
    for cut in random.chain(tail) {
        let cut = cut as usize;
        let path = place(&dir, name, &good[..cut], &good[..cut]);
        let v = verify_file(&path, &plain());
        assert!(
            v.failure.is_some(),
            "{name} cut at {cut} of {} passed",
            good.len()
        );
    }
}

#[test]
fn corrupt_postgres_dumps_fail_and_intact_ones_pass() {
    let good = gzip(&pg_dump_sql(20_000));
    let older = gzip(&pg_dump_sql(19_000));
    trials("postgres", "db_20240101_000000.sql.gz", &good, &older);
    truncations_caught_by_content("postgres", "db_20240101_000000.sql.gz", &good, TRIALS);
}

#[test]
fn a_dump_without_its_trailer_fails_even_with_a_matching_sidecar() {
    let root = tempfile::tempdir().unwrap();
    let mut sql = pg_dump_sql(10);
    sql.truncate(sql.len() - 60);
    let cut = gzip(&sql);
    let path = place(
        &root.path().join("postgres"),
        "db_20240101_000000.sql.gz",
        &cut,
        &cut,
    );
    let reason = verify_file(&path, &plain()).failure.unwrap();
    assert!(reason.contains("dump complete"), "{reason}");
}

#[test]
fn corrupt_qdrant_archives_fail_and_intact_ones_pass() {
    let good = qdrant_archive(1);
    let older = qdrant_archive(2);
    trials("qdrant", "qdrant_20240101_000000.tar.gz", &good, &older);
    truncations_caught_by_content("qdrant", "qdrant_20240101_000000.tar.gz", &good, 50);
}

#[test]
fn a_qdrant_snapshot_that_does_not_match_the_manifest_fails() {
    // Rebuild a real archive with one snapshot byte changed and a matching sidecar.
    let good = qdrant_archive(1);
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&good[..]));
    let mut builder = tar::Builder::new(Vec::new());
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if path.starts_with("snapshots/memory") {
            data[100] ^= 0x20;
        }
        let mut h = e.header().clone();
        builder.append_data(&mut h, &path, &data[..]).unwrap();
    }
    let bad = gzip(&builder.into_inner().unwrap());
    let root = tempfile::tempdir().unwrap();
    let path = place(
        &root.path().join("qdrant"),
        "qdrant_20240101_000000.tar.gz",
        &bad,
        &bad,
    );
    let reason = verify_file(&path, &plain()).failure.unwrap();
    assert!(reason.contains("the manifest records"), "{reason}");
}

#[test]
fn corrupt_n8n_exports_fail_and_intact_ones_pass() {
    let good = n8n_json(40);
    let older = n8n_json(39);
    trials("n8n", "workflows_20240101_000000.json", &good, &older);
}

fn tree_with_latest(root: &Path) -> Vec<PathBuf> {
    let mut made = Vec::new();
    for (folder, name, link, bytes) in [
        (
            "postgres",
            "db_20240101_000000.sql.gz",
            "db_latest.sql.gz",
            gzip(&pg_dump_sql(100)),
        ),
        (
            "n8n",
            "workflows_20240101_000000.json",
            "workflows_latest.json",
            n8n_json(3),
        ),
    ] {
        let path = place(&root.join(folder), name, &bytes, &bytes);
        std::os::unix::fs::symlink(name, root.join(folder).join(link)).unwrap();
        made.push(path);
    }
    made
}

#[test]
fn the_binary_checks_latest_links_and_the_newest_weekly_folder() {
    let root = tempfile::tempdir().unwrap();
    tree_with_latest(root.path());
    let old_dump = gzip(&pg_dump_sql(5));
    place(
        &root.path().join("postgres"),
        "db_20231201_000000.sql.gz",
        &old_dump,
        b"stale",
    );
    let weekly = root.path().join("weekly/2024_W01/n8n");
    place(&weekly, "workflows_20240101_000000.json", b"[{]", b"[{]");
    place(
        &root.path().join("weekly/2023_W50/n8n"),
        "workflows_20231201_000000.json",
        b"x",
        b"y",
    );

    let t = Tool::new(BIN).env("BACKUP_DIR", root.path());
    let out = t.run(&[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines
        .iter()
        .any(|l| l.starts_with("OK ") && l.ends_with("postgres/db_latest.sql.gz")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("OK ") && l.ends_with("n8n/workflows_latest.json")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("FAIL ") && l.contains("2024_W01") && l.contains("not valid JSON")));

    // --all also sees the old dump with its stale sidecar and the older week.
    let out = t.run(&["--all", "--json"]);
    assert_eq!(out.code, Some(1));
    let results = out.json_lines();
    assert_eq!(results.len(), 5, "{}", out.stdout);
    let failed: Vec<&serde_json::Value> =
        results.iter().filter(|r| r["status"] == "fail").collect();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().any(|r| r["reason"]
        .as_str()
        .unwrap()
        .contains("does not match the sidecar")));

    // Explicit paths; all good → exit 0.
    let dump = root.path().join("postgres/db_latest.sql.gz");
    let out = t.run(&[dump.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
}

#[test]
fn an_empty_tree_is_not_reported_as_verified() {
    let root = tempfile::tempdir().unwrap();
    let out = Tool::new(BIN).env("BACKUP_DIR", root.path()).run(&[]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("nothing was verified"),
        "{}",
        out.stderr
    );
}

/// A PostgreSQL cluster with database `shop`, the Qdrant stand-in with
/// `documents`, and a tree that `backups` fills with the tools.
struct Services {
    pg: PgCluster,
    server: QdrantStandin,
    root: tempfile::TempDir,
    path: String,
}

impl Services {
    fn start() -> Services {
        let pg = PgCluster::start();
        pg.create_db("shop");
        pg.sql(
            "shop",
            "CREATE SCHEMA s; CREATE TABLE s.orders AS SELECT g AS id FROM generate_series(1, 5000) g; \
             CREATE TABLE \"Tåble\" AS SELECT 'ü' AS x FROM generate_series(1, 7);",
        );
        let server = QdrantStandin::start(None);
        server.add_collection("documents", 4, 50);
        let bindir = pg.bin("psql").parent().unwrap().to_owned();
        let path = format!("{}:{}", bindir.display(), std::env::var("PATH").unwrap());
        Services {
            pg,
            server,
            root: tempfile::tempdir().unwrap(),
            path,
        }
    }

    /// `t` set up for both services and the tree.
    fn with(&self, t: Tool) -> Tool {
        t.env("PATH", &self.path)
            .env("POSTGRES_HOST", "127.0.0.1")
            .env("POSTGRES_PORT", self.pg.port.to_string())
            .env("POSTGRES_USER", "postgres")
            .env("POSTGRES_PASSWORD", &self.pg.password)
            .env("POSTGRES_DB", "shop")
            .env("QDRANT_URL", &self.server.url)
            .env("BACKUP_DIR", self.root.path())
    }

    /// A PostgreSQL and a Qdrant backup, made by the tools with `settings`.
    fn backups(&self, settings: impl Fn(Tool) -> Tool) {
        made_by(&settings(self.with(tool("pg-dumpwrap"))), &["backup"]);
        made_by(&settings(self.with(tool("qdrant-snap"))), &["backup"]);
    }
}

#[test]
fn restore_test_restores_into_scratch_targets_and_compares_counts() {
    let services = Services::start();
    services.backups(|t| t);
    let verify = services.with(Tool::new(BIN));
    let Services {
        pg,
        server,
        root: _tree,
        ..
    } = services;
    let out = verify.run(&["--restore-test"]);
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let ok_lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("OK "))
        .collect();
    assert_eq!(
        ok_lines.len(),
        6,
        "3 artifacts (the dump, the globals, the qdrant archive) + 3 drills: {}",
        out.stdout
    );
    assert!(
        ok_lines.iter().any(|l| l.contains("/postgres/shop_2")
            && l.contains("drill: restored into shop_verify_")
            && l.contains("5007 rows")),
        "{}",
        out.stdout
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&fs::read(_tree.path().join("restore_test.json")).unwrap()).unwrap();
    assert_eq!(
        kept["components"]["postgres"]["status"], "success",
        "{kept}"
    );
    assert_eq!(kept["components"]["qdrant"]["status"], "success", "{kept}");
    // The scratch targets are gone again.
    assert_eq!(
        pg.sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'shop_verify_%'"
        ),
        "0"
    );
    assert_eq!(server.points_count("documents"), Some(50));
    assert!(!out.all().contains(&pg.password));

    // Qdrant gone: its restore test fails, PostgreSQL's still passes.
    drop(server);
    let out = verify.run(&["--restore-test"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("FAIL ") && l.contains("/qdrant/qdrant_2")),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .lines()
        .any(|l| l.starts_with("OK ") && l.contains("/postgres/shop_2") && l.contains("drill:")));
}

/// Real minio-snap archives (a full one, and an incremental on it), made by the
/// tool against s3s-fs, with their sidecars, in `root/minio`.
fn minio_archives(root: &Path) -> (PathBuf, PathBuf) {
    let s3 = test_harness::s3::S3Server::start();
    s3.create_bucket("documents");
    for i in 0..30 {
        s3.put(
            "documents",
            &format!("docs/{i:03}.txt"),
            format!("document {i}").as_bytes(),
            "text/plain",
            &[],
        );
    }
    let minio = tool("minio-snap")
        .env("MINIO_ENDPOINT", &s3.endpoint)
        .env("MINIO_ROOT_USER", &s3.access_key)
        .env("MINIO_ROOT_PASSWORD", &s3.secret_key)
        .env("MINIO_BUCKET", "documents")
        .env("BACKUP_DIR", root);
    let backup = |kind: &str| made_by(&minio, &["backup", "--type", kind]);
    backup("full");
    s3.put("documents", "docs/new.txt", b"new", "text/plain", &[]);
    // Artifact names have a second's resolution: the next one needs a new second.
    test_harness::wait_for_next_second();
    backup("incremental");
    let mut names: Vec<PathBuf> = fs::read_dir(root.join("minio"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.to_string_lossy().ends_with(".tar.gz") && !p.to_string_lossy().contains("latest")
        })
        .collect();
    names.sort();
    let incr = names
        .iter()
        .find(|p| p.to_string_lossy().contains(".incr."))
        .unwrap()
        .clone();
    let full = names
        .iter()
        .find(|p| !p.to_string_lossy().contains(".incr."))
        .unwrap()
        .clone();
    (full, incr)
}

#[test]
fn corrupt_minio_archives_fail_intact_ones_pass_and_chains_must_be_complete() {
    let root = tempfile::tempdir().unwrap();
    let (full, incr) = minio_archives(root.path());
    assert_eq!(verify_file(&full, &plain()).failure, None);
    assert_eq!(
        verify_file(&incr, &plain()).failure,
        None,
        "an incremental with its base present"
    );

    let good = fs::read(&full).unwrap();
    let older = fs::read(&incr).unwrap();
    trials("minio", "documents_20240101_000000.tar.gz", &good, &older);
    truncations_caught_by_content("minio", "documents_20240101_000000.tar.gz", &good, 50);

    fs::remove_file(&full).unwrap();
    let reason = verify_file(&incr, &plain()).failure.unwrap();
    assert!(reason.contains("the chain is incomplete"), "{reason}");
}

#[test]
fn an_artifact_without_its_sidecar_is_a_warning_not_a_backup() {
    let root = tempfile::tempdir().unwrap();
    let dump = gzip(&pg_dump_sql(10));
    let dir = root.path().join("postgres");
    place(&dir, "db_20240101_000000.sql.gz", &dump, &dump);
    // What a crash between rename and sidecar leaves (or an operator's copy).
    fs::write(dir.join("db_20240102_000000.sql.gz"), &dump).unwrap();
    let out = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .run(&["--all", "--json"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let results = out.json_lines();
    assert_eq!(
        results.len(),
        1,
        "only the backup is verified: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("db_20240102_000000.sql.gz has no .sha256 sidecar, so it is not a backup"),
        "{}",
        out.stderr
    );
}

/// Encrypted artifacts (encrypted by Debian's `age`): with the identity, every
/// seeded corruption fails, and so does every truncation that keeps a matching
/// sidecar (only decryption can catch those: age authenticates each chunk);
/// without the identity, the intact file gets the distinct header-only verdict.
#[test]
fn encrypted_artifacts_are_checked_through_decryption() {
    use test_harness::age::AgeKeys;
    let keys = AgeKeys::new();
    let work = tempfile::tempdir().unwrap();
    let encrypt = |bytes: &[u8]| {
        let (from, to) = (work.path().join("plain"), work.path().join("sealed"));
        fs::write(&from, bytes).unwrap();
        keys.encrypt_with_cli(&from, &to);
        fs::read(&to).unwrap()
    };
    let with_identity = Decryption {
        identity_file: Some(keys.identity_file()),
    };
    let minio = tempfile::tempdir().unwrap();
    let (full, incr) = minio_archives(minio.path());
    let cases = [
        (
            "postgres",
            "db_20240101_000000.sql.gz.age",
            gzip(&pg_dump_sql(2_000)),
            gzip(&pg_dump_sql(1_900)),
        ),
        (
            "qdrant",
            "qdrant_20240101_000000.tar.gz.age",
            qdrant_archive(1),
            qdrant_archive(2),
        ),
        (
            "n8n",
            "workflows_20240101_000000.json.age",
            n8n_json(40),
            n8n_json(39),
        ),
        (
            "minio",
            "documents_20240101_000000.tar.gz.age",
            fs::read(&full).unwrap(),
            fs::read(&incr).unwrap(),
        ),
    ];
    for (folder, name, good, older) in cases {
        let (good, older) = (encrypt(&good), encrypt(&older));
        trials_with(folder, name, &good, &older, &with_identity);
        truncations_caught_with(folder, name, &good, TRIALS, &with_identity);

        let root = tempfile::tempdir().unwrap();
        let intact = place(&root.path().join(folder), name, &good, &good);
        let v = verify_file(&intact, &plain());
        assert_eq!(v.failure, None, "{name}");
        assert!(v.header_only, "{name}: checked without the identity");
        let damaged = {
            let mut b = good.clone();
            b[3] ^= 1;
            b
        };
        let path = place(&root.path().join(folder), name, &damaged, &damaged);
        assert!(
            verify_file(&path, &plain()).failure.is_some(),
            "{name}: a broken header passed"
        );
    }
}

/// Encrypted backups: the drill decrypts them with the identity; without it
/// the artifacts get the header-only verdict and the drill fails, saying why.
#[test]
fn restore_test_decrypts_with_the_identity_and_fails_without() {
    use test_harness::age::{AgeKeys, Mode};
    let keys = AgeKeys::new();
    let services = Services::start();
    services.backups(|t| Mode::Recipients.apply(&keys, t, false));
    let verify = services.with(Tool::new(BIN));
    let out = Mode::Recipients
        .apply(&keys, verify.clone(), true)
        .run(&["--restore-test"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let ok = out.stdout.lines().filter(|l| l.starts_with("OK /")).count();
    assert_eq!(ok, 6, "3 artifacts + 3 drills: {}", out.stdout);

    let out = verify.run(&["--restore-test"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    let header_only = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("OK (encrypted: sidecar and header only) "))
        .count();
    assert_eq!(
        header_only, 3,
        "the dump, the globals, the archive: {}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("FAIL ") && l.contains("set BACKUP_AGE_IDENTITY_FILE"))
            .count()
            == 3,
        "{}",
        out.stdout
    );
}

/// An n8n credential encrypted as n8n-core's Cipher does, with the key
/// "vector-key-ü" (backup-formats' unit test makes the same).
const N8N_CREDENTIAL: &str =
    "U2FsdGVkX18BAgMEBQYHCPs86f0X4FVrv/58begeRxJqnGt/nxms1fsxwpD/sx290TnwUbXt4u6uNZKaV3JNZw==";

/// A copy of `archive` (a tar.gz) as the newest backup of its series, with
/// `edit` applied to the entry named `entry`, and a sidecar that matches it.
fn craft_tar_gz(archive: &Path, to: &Path, entry: &str, edit: impl Fn(&mut Vec<u8>)) {
    let data = fs::read(archive).unwrap();
    let mut input = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
    let mut out = tar::Builder::new(Vec::new());
    for e in input.entries().unwrap() {
        let mut e = e.unwrap();
        let mut header = e.header().clone();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        if header.path().unwrap().to_string_lossy() == entry {
            edit(&mut body);
        }
        header.set_size(body.len() as u64);
        header.set_cksum();
        out.append(&header, &body[..]).unwrap();
    }
    let bytes = gzip(&out.into_inner().unwrap());
    let name = to.file_name().unwrap().to_string_lossy().into_owned();
    place(to.parent().unwrap(), &name, &bytes, &bytes);
}

/// Each component's drill fails for a real reason — a dump that restores
/// fewer rows than it holds, a Qdrant archive whose snapshot restores fewer
/// points than recorded, n8n credentials the key does not decrypt — and a
/// SIGTERM in the middle of each tool's drill leaves no scratch target.
#[test]
fn drills_fail_for_real_reasons_and_a_signal_leaves_no_scratch_target() {
    let services = Services::start();
    services.backups(|t| t);
    let root = services.root.path().to_owned();
    // Newer than the backups just made (and not in the future, which a plan refuses).
    let soon = (chrono::Local::now() + chrono::Duration::minutes(1))
        .format("%Y%m%d_%H%M%S")
        .to_string();
    let verify = services.with(Tool::new(BIN));

    // A dump that deletes rows after loading them (valid SQL, sidecar intact).
    let dump = fs::read(root.join("postgres/shop_latest.sql.gz")).unwrap();
    let mut sql = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&dump[..]), &mut sql).unwrap();
    let sql = sql.replacen(
        "--\n-- PostgreSQL database dump complete",
        "DELETE FROM s.orders WHERE id > 10;\n\n--\n-- PostgreSQL database dump complete",
        1,
    );
    assert!(sql.contains("DELETE FROM s.orders"));
    let crafted = gzip(sql.as_bytes());
    place(
        &root.join("postgres"),
        &format!("shop_{soon}.sql.gz"),
        &crafted,
        &crafted,
    );
    // A manifest that records one point more than the snapshot holds.
    craft_tar_gz(
        &root.join("qdrant/qdrant_latest.tar.gz"),
        &root.join(format!("qdrant/qdrant_{soon}.tar.gz")),
        "manifest.json",
        |body| {
            let mut m: serde_json::Value = serde_json::from_slice(body).unwrap();
            let n = m["collections"][0]["points_count"].as_u64().unwrap();
            m["collections"][0]["points_count"] = (n + 1).into();
            *body = serde_json::to_vec(&m).unwrap();
        },
    );
    let creds = format!(
        "[{{\"id\":\"c1\",\"name\":\"pg main\",\"type\":\"postgres\",\"data\":\"{N8N_CREDENTIAL}\"}}]\n"
    );
    place(
        &root.join("n8n"),
        "credentials_20240101_000000.json",
        creds.as_bytes(),
        creds.as_bytes(),
    );

    let out = verify
        .clone()
        .env("N8N_ENCRYPTION_KEY", "vector-key-ü")
        .run(&["--restore-test"]);
    let ok = |needle: &str| {
        out.stdout
            .lines()
            .any(|l| l.starts_with("OK ") && l.contains(needle) && l.contains("drill:"))
    };
    assert!(ok("credentials_2"), "{}", out.stdout);
    assert!(ok("no scratch n8n to import into"), "{}", out.stdout);
    assert!(
        ok("drill: checked, compared 1 credentials"),
        "{}",
        out.stdout
    );
    assert!(ok("globals_2"), "{}", out.stdout);
    let fail = |needle: &str, why: &str| {
        out.stdout
            .lines()
            .any(|l| l.starts_with("FAIL ") && l.contains(needle) && l.contains(why))
    };
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        fail(
            &format!("shop_{soon}"),
            "has 10 rows after the restore, the dump holds 5000"
        ),
        "{}",
        out.stdout
    );
    assert!(
        fail(&format!("qdrant_{soon}"), "points, the backup recorded 51"),
        "{}",
        out.stdout
    );
    let out = verify
        .clone()
        .env("N8N_ENCRYPTION_KEY", "not-the-key")
        .run(&["--restore-test"]);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("FAIL ")
            && l.contains("credentials_2")
            && l.contains("the credentials cannot be decrypted with N8N_ENCRYPTION_KEY")),
        "{}",
        out.stdout
    );
    let kept: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("restore_test.json")).unwrap()).unwrap();
    for c in ["postgres", "qdrant", "n8n"] {
        assert_eq!(kept["components"][c]["status"], "failed", "{c}: {kept}");
    }
    assert!(kept["components"]["postgres"]["error"]
        .as_str()
        .unwrap()
        .starts_with("shop: "));

    // SIGTERM right after each tool restored into its scratch target.
    let out = verify
        .clone()
        .env("FAILPOINTS", "restore-test::restored=return(SIGTERM)")
        .run(&["--restore-test"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    for scratch in ["shop_verify_", "documents_verify_"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("FAIL ") && l.contains("interrupted by SIGTERM")),
            "{scratch}: {}",
            out.stdout
        );
    }
    assert_eq!(
        services.pg.sql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE '%_verify_%'"
        ),
        "0"
    );
    assert_eq!(services.server.collections(), ["documents"]);
}

/// The pid a scratch database's name carries (`<db>_verify_<pid>`).
fn scratch_pid(name: &str) -> libc::pid_t {
    name.rsplit_once("_verify_").unwrap().1.parse().unwrap()
}

/// Waits until `pid` (a grandchild: the drill's tool) stopped at its failpoint.
fn wait_stopped_pid(pid: libc::pid_t) {
    test_harness::wait_for("the drill's tool to stop at its failpoint", || {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        (text.rsplit_once(") ")?.1.starts_with('T')).then_some(())
    });
}

#[test]
fn a_signal_to_the_drill_or_a_killed_tool_leaves_no_scratch_database_for_long() {
    let services = Services::start();
    made_by(&services.with(tool("pg-dumpwrap")), &["backup"]);
    let scratch = || {
        services.pg.sql(
            "postgres",
            "SELECT coalesce(string_agg(datname, ','), '') FROM pg_database \
             WHERE datname LIKE 'shop\\_verify\\_%'",
        )
    };
    // The tool stops itself once the scratch database holds the restored dump.
    let stopping = services
        .with(Tool::new(BIN))
        .env("FAILPOINTS", "restore-test::restored=return(SIGSTOP)");
    let drill = ["--restore-test", "--component", "postgres"];

    // SIGTERM to backup-verify (as `docker stop` sends it): passed on to the
    // tool, which drops its scratch database before the drill ends.
    let child = stopping.spawn(&drill);
    let name = test_harness::wait_for("the scratch database", || {
        Some(scratch()).filter(|s| !s.is_empty())
    });
    let pid = scratch_pid(&name);
    wait_stopped_pid(pid);
    // SAFETY: kill(2) of the test's own child and of its child, both alive.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        libc::kill(pid, libc::SIGCONT);
    }
    let out = test_harness::finish(child);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert_eq!(scratch(), "", "the drill left {name} behind");

    // SIGKILL of the tool: nothing can drop the database then...
    let child = stopping.spawn(&drill);
    let name = test_harness::wait_for("the scratch database", || {
        Some(scratch()).filter(|s| !s.is_empty())
    });
    let pid = scratch_pid(&name);
    wait_stopped_pid(pid);
    // SAFETY: kill(2) of the test's grandchild, alive and stopped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let out = test_harness::finish(child);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert_eq!(scratch(), name);
    // ...nor when the kill comes right after CREATE DATABASE, before the
    // drill could mark it (its owner, set by the CREATE, marks it)...
    let out = services
        .with(Tool::new(BIN))
        .env("FAILPOINTS", "restore::created=return(SIGKILL)")
        .run(&drill);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    // (That drill first removed the one killed before it.)
    let unmarked = scratch();
    assert!(
        !unmarked.is_empty() && unmarked != name && !unmarked.contains(','),
        "{unmarked}"
    );
    let names = [unmarked.as_str()];
    // ...POSTGRES_DB=all never backs them up...
    let all = services.with(tool("pg-dumpwrap")).env("POSTGRES_DB", "all");
    let out = all.run(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for name in &names {
        assert!(
            out.stderr.contains(&format!(
                "skipping {name}, a restore drill's scratch database"
            )),
            "{name}: {}",
            out.stderr
        );
    }
    let series: Vec<String> = fs::read_dir(services.root.path().join("postgres"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(series.iter().all(|f| !f.contains("_verify_")), "{series:?}");
    assert!(
        series.iter().any(|f| f.starts_with("postgres_")),
        "{series:?}"
    );
    // ...and the next drill removes it before it makes its own.
    let out = services.with(Tool::new(BIN)).run(&drill);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(scratch(), "");
}

#[test]
fn links_that_lead_out_of_the_tree_are_refused_not_followed() {
    // A good dump outside the tree, with its sidecar: what a planted link
    // would make verify vouch for.
    let outside = tempfile::tempdir().unwrap();
    let dump = gzip(&pg_dump_sql(3));
    place(outside.path(), "shop_20240101_000000.sql.gz", &dump, &dump);

    let tree = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.path().join("postgres")).unwrap();
    let out = Tool::new(BIN).run(&["--all", "--backup-dir", tree.path().to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("OK "), "{}", out.stdout);
    assert!(
        out.stderr.contains("postgres is a link") && out.stderr.contains("not followed"),
        "{}",
        out.stderr
    );

    // A *_latest link that names a file elsewhere.
    let tree = tempfile::tempdir().unwrap();
    fs::create_dir(tree.path().join("postgres")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("shop_20240101_000000.sql.gz"),
        tree.path().join("postgres/shop_latest.sql.gz"),
    )
    .unwrap();
    let out = Tool::new(BIN).run(&["--backup-dir", tree.path().to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("FAIL ") && l.contains("outside its folder")),
        "{}",
        out.stdout
    );
}
