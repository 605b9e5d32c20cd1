//! pg-dumpwrap's real binary against a real, throwaway PostgreSQL cluster.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use test_harness::{finish, terminate, tree, wait_for, Output, PgCluster, SmallDisk, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_pg-dumpwrap");

fn tool(pg: &PgCluster, backup_dir: &Path, db: &str) -> Tool {
    // The cluster's own client programs first, so client and server versions match.
    pg.connect(Tool::new(BIN))
        .env("POSTGRES_DB", db)
        .env("BACKUP_DIR", backup_dir)
        .env("TZ", "Europe/Berlin")
}

fn rich_db(pg: &PgCluster, db: &str) {
    pg.create_db(db);
    pg.sql_file(
        db,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rich.sql"),
    );
}

fn assert_success(out: &Output) -> serde_json::Value {
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let r = out.record();
    assert_eq!(r["status"], "success", "{r}");
    r
}

fn sh(script: &str, dir: &Path) -> std::process::Output {
    Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A good earlier backup, so that failure tests can check it is left alone.
fn first_backup(t: &Tool, backup_dir: &Path) -> Vec<String> {
    assert_success(&t.run(&["backup"]));
    assert!(backup_dir.join("postgres").exists());
    tree(backup_dir)
}

fn assert_unchanged(backup_dir: &Path, before: &[String]) {
    assert_eq!(tree(backup_dir), before, "the backup tree changed");
}

/// An empty database `shop` with one good backup in the tree: the start of
/// every failure test.
struct ShopWithABackup {
    pg: PgCluster,
    backups: tempfile::TempDir,
    t: Tool,
    before: Vec<String>,
}

impl ShopWithABackup {
    fn new() -> ShopWithABackup {
        let pg = PgCluster::start();
        pg.create_db("shop");
        let backups = tempfile::tempdir().unwrap();
        let t = tool(&pg, backups.path(), "shop");
        let before = first_backup(&t, backups.path());
        ShopWithABackup {
            pg,
            backups,
            t,
            before,
        }
    }
}

#[test]
fn round_trip_restores_an_identical_database() {
    let pg = PgCluster::start();
    rich_db(&pg, "shop");
    let backups = tempfile::tempdir().unwrap();
    let t = tool(&pg, backups.path(), "shop");

    let r = assert_success(&t.run(&["backup"]));
    let file = r["file"].as_str().unwrap().to_owned();
    assert!(
        file.starts_with("shop_") && file.ends_with(".sql.gz"),
        "{file}"
    );
    let dir = backups.path().join("postgres");
    let artifact = dir.join(&file);
    assert_eq!(
        r["size_bytes"].as_u64().unwrap(),
        fs::metadata(&artifact).unwrap().len()
    );
    assert_eq!(r["database"], "shop");

    // The product description's own checks keep working.
    let check = sh("gzip -t shop_latest.sql.gz && sha256sum -c *.sha256", &dir);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        fs::read_link(dir.join("shop_latest.sql.gz")).unwrap(),
        Path::new(&file)
    );
    let sidecar = fs::read_to_string(dir.join(format!("{file}.sha256"))).unwrap();
    assert_eq!(
        sidecar,
        format!("{}  {file}\n", r["sha256"].as_str().unwrap())
    );

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&artifact).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let restored = t.clone().env("POSTGRES_DB", "shop_restored").run(&[
        "restore",
        "--create",
        dir.join("shop_latest.sql.gz").to_str().unwrap(),
    ]);
    assert_eq!(restored.code, Some(0), "{}", restored.stderr);
    let report = restored.json_lines();
    assert_eq!(report[0]["action"], "restore");
    assert_eq!(report[0]["database"], "shop_restored");
    assert_eq!(report[0]["sha256_checked"], true);

    let original = pg.comparable_dump("shop");
    assert!(
        original.contains("987654321"),
        "fixture has its advanced sequence"
    );
    assert_eq!(
        pg.sql("shop_restored", "SELECT count(*) FROM sales.orders"),
        "120000"
    );
    assert!(
        original == pg.comparable_dump("shop_restored"),
        "dumps differ after restore"
    );
    assert!(!restored.all().contains(&pg.password));
}

#[test]
fn restore_replaces_what_is_in_an_existing_database() {
    let pg = PgCluster::start();
    rich_db(&pg, "shop");
    let backups = tempfile::tempdir().unwrap();
    let t = tool(&pg, backups.path(), "shop");
    assert_success(&t.run(&["backup"]));
    let before = pg.comparable_dump("shop");

    pg.sql(
        "shop",
        "DELETE FROM sales.orders WHERE id > 100; UPDATE public.customers SET name = 'changed'",
    );
    let latest = backups.path().join("postgres/shop_latest.sql.gz");
    let changed = pg.comparable_dump("shop");

    // A restore that cannot write its audit line does not start.
    let planted = backups.path().join("planted-audit.log");
    std::os::unix::fs::symlink(backups.path().join("elsewhere"), &planted).unwrap();
    let out = t
        .clone()
        .env("BACKUP_AUDIT_LOG", &planted)
        .run(&["restore", latest.to_str().unwrap()]);
    out.assert_failed("restore", 1, "cannot open the audit log", &pg.password);
    assert!(changed == pg.comparable_dump("shop"), "nothing restored");

    let out = t.run(&["restore", latest.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(before == pg.comparable_dump("shop"));
    // Two lines: one before the database was touched, one with the outcome.
    let audit = fs::read_to_string(backups.path().join("audit.log")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{audit}");
    assert_eq!(lines[0]["outcome"], "started");
    assert_eq!(lines[0]["target"], lines[1]["target"]);
    let line = &lines[1];
    assert_eq!(line["tool"], "pg-dumpwrap");
    assert_eq!(line["outcome"], "success");
    assert!(line["target"]
        .as_str()
        .unwrap()
        .starts_with("database shop on 127.0.0.1:"));
    assert!(line["artifacts"][0]["path"]
        .as_str()
        .unwrap()
        .contains("/shop_2"));
}

#[test]
fn stdout_mode_streams_a_complete_gzip_dump_and_writes_nothing() {
    let pg = PgCluster::start();
    rich_db(&pg, "shop");
    let backups = tempfile::tempdir().unwrap();
    let out = tool(&pg, backups.path(), "shop")
        .command(&["backup", "-o", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sql = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&out.stdout[..]), &mut sql)
        .unwrap();
    assert!(sql.contains("-- PostgreSQL database dump complete"));
    assert!(
        sql.contains("DROP TABLE IF EXISTS sales.orders;"),
        "seed options: --clean --if-exists"
    );
    assert!(!sql.contains("OWNER TO"), "seed options: --no-owner");
    assert_eq!(
        tree(backups.path()),
        Vec::<String>::new(),
        "no file, link or sidecar"
    );
}

#[test]
fn a_second_backup_repoints_latest_and_keeps_the_first() {
    let pg = PgCluster::start();
    pg.create_db("small");
    pg.sql("small", "CREATE TABLE t AS SELECT 1 AS x");
    let backups = tempfile::tempdir().unwrap();
    let t = tool(&pg, backups.path(), "small");
    let first = assert_success(&t.run(&["backup"]));
    let second = assert_success(&t.run(&["backup"]));
    assert_ne!(
        first["file"], second["file"],
        "two backups never share a name"
    );
    let dir = backups.path().join("postgres");
    assert_eq!(
        fs::read_link(dir.join("small_latest.sql.gz")).unwrap(),
        Path::new(second["file"].as_str().unwrap())
    );
    assert!(dir.join(first["file"].as_str().unwrap()).exists());
    assert!(sh("sha256sum -c *.sha256", &dir).status.success());
}

#[test]
fn wrong_password_fails_cleanly() {
    let ShopWithABackup {
        pg,
        backups,
        t,
        before,
    } = ShopWithABackup::new();
    let wrong = "not-the-password-4711";
    let out = t.clone().env("POSTGRES_PASSWORD", wrong).run(&["backup"]);
    out.assert_backup_failed(1, "check POSTGRES_USER and POSTGRES_PASSWORD", wrong);
    assert!(!out.all().contains(&pg.password));
    assert_unchanged(backups.path(), &before);
}

#[test]
fn password_file_form_is_read() {
    let pg = PgCluster::start();
    pg.create_db("shop");
    let backups = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("pg_password");
    fs::write(&file, format!("{}\n", pg.password)).unwrap();
    let out = tool(&pg, backups.path(), "shop")
        .without("POSTGRES_PASSWORD")
        .env("POSTGRES_PASSWORD_FILE", &file)
        .run(&["backup"]);
    assert_success(&out);
}

#[test]
fn missing_password_is_a_configuration_error() {
    let pg = PgCluster::start();
    let backups = tempfile::tempdir().unwrap();
    let out = tool(&pg, backups.path(), "shop")
        .without("POSTGRES_PASSWORD")
        .run(&["backup"]);
    out.assert_backup_failed(
        2,
        "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is not set",
        &pg.password,
    );
}

#[test]
fn unreachable_server_fails_cleanly() {
    let ShopWithABackup {
        pg,
        backups,
        t,
        before,
    } = ShopWithABackup::new();
    let closed_port = test_harness::free_port();
    let out = t
        .clone()
        .env("POSTGRES_PORT", closed_port.to_string())
        .run(&["backup"]);
    out.assert_backup_failed(1, "check POSTGRES_HOST and POSTGRES_PORT", &pg.password);
    assert_unchanged(backups.path(), &before);
}

#[test]
fn missing_database_fails_cleanly() {
    let pg = PgCluster::start();
    let backups = tempfile::tempdir().unwrap();
    let out = tool(&pg, backups.path(), "nope").run(&["backup"]);
    out.assert_backup_failed(1, "database \"nope\" does not exist", &pg.password);
    assert!(out.stderr.contains("check POSTGRES_DB"));
    assert_eq!(
        tree(backups.path()),
        vec!["postgres/", "postgres/.lock (0 bytes)"]
    );
}

#[test]
fn missing_pg_dump_fails_cleanly() {
    let ShopWithABackup {
        pg,
        backups,
        t,
        before,
    } = ShopWithABackup::new();
    let out = t.run(&["backup", "--pg-dump", "/nonexistent/bin/pg_dump"]);
    out.assert_backup_failed(1, "/nonexistent/bin/pg_dump not found", &pg.password);
    let out = t.clone().env("PATH", "/nonexistent").run(&["backup"]);
    out.assert_backup_failed(1, "pg_dump not found", &pg.password);
    assert_unchanged(backups.path(), &before);
}

/// A stand-in pg_dump for what a real one cannot be made to do on demand here.
fn fake_pg_dump(dir: &Path, script: &str) -> std::path::PathBuf {
    let path = dir.join("pg_dump");
    fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn output_without_the_trailer_is_not_published_even_if_pg_dump_exits_0() {
    let ShopWithABackup {
        pg,
        backups,
        t,
        before,
    } = ShopWithABackup::new();
    let bin = tempfile::tempdir().unwrap();
    let fake = fake_pg_dump(
        bin.path(),
        "printf -- '--\\n-- PostgreSQL database dump\\n--\\nCREATE TABLE t (x int);\\n'; exit 0",
    );
    let keys = test_harness::age::AgeKeys::new();
    // The plaintext is checked whether or not it is then encrypted.
    for t in [t.clone(), t.env("BACKUP_AGE_RECIPIENTS", &keys.recipient)] {
        let out = t.run(&["backup", "--pg-dump", fake.to_str().unwrap()]);
        out.assert_backup_failed(1, "without the \"dump complete\" trailer", &pg.password);
        assert_unchanged(backups.path(), &before);
    }
}

#[test]
fn a_newer_server_gets_an_error_naming_both_versions() {
    // Only PostgreSQL 15 is installed here, so pg_dump's refusal of a newer server is
    // replayed by a stand-in printing pg_dump 15's exact message.
    let pg = PgCluster::start();
    let backups = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let fake = fake_pg_dump(
        bin.path(),
        "echo 'pg_dump: error: aborting because of server version mismatch' >&2\n\
         echo 'pg_dump: detail: server version: 16.4; pg_dump version: 15.18' >&2\nexit 1",
    );
    let out =
        tool(&pg, backups.path(), "shop").run(&["backup", "--pg-dump", fake.to_str().unwrap()]);
    out.assert_backup_failed(
        1,
        "server version 16.4 is newer than pg_dump version 15.18",
        &pg.password,
    );
    assert!(out.stderr.contains("major version 16 or newer"));
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces, so split after ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        if after.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            kids.push(child);
        }
    }
    kids
}

/// Holds an exclusive lock on a table, so pg_dump blocks after it has started
/// and a test can act on a backup that is surely under way.
struct TableLock(Child);

impl TableLock {
    fn take(pg: &PgCluster, db: &str, table: &str) -> TableLock {
        let mut psql = pg
            .client("psql", db)
            .args(["-X", "-q"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        writeln!(
            psql.stdin.as_mut().unwrap(),
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT 1;"
        )
        .unwrap();
        let lock = TableLock(psql);
        wait_for("the table lock", || {
            let held = pg.sql(
                db,
                "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation IS NOT NULL AND granted",
            );
            (held != "0").then_some(())
        });
        lock
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A backup that is surely under way: a good backup exists, then a table lock
/// holds the next pg_dump (already started) until the test acts.
struct BlockedBackup {
    pg: PgCluster,
    backups: tempfile::TempDir,
    before: Vec<String>,
    lock: TableLock,
    run: Child,
    pg_dump: u32,
}

impl BlockedBackup {
    // The test waits for `run` (`finish`).
    #[allow(clippy::zombie_processes)]
    fn start() -> BlockedBackup {
        BlockedBackup::start_with(&[])
    }

    /// With extra settings for the blocked run (encryption on, say).
    fn start_with(env: &[(&str, String)]) -> BlockedBackup {
        let pg = PgCluster::start();
        pg.create_db("shop");
        pg.sql(
            "shop",
            "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g",
        );
        let backups = tempfile::tempdir().unwrap();
        let t = tool(&pg, backups.path(), "shop");
        let before = first_backup(&t, backups.path());
        let lock = TableLock::take(&pg, "shop", "t");
        let t = env.iter().fold(t, |t, (k, v)| t.env(k, v));
        let run = t.spawn(&["backup"]);
        let pg_dump = wait_for("pg_dump to start", || {
            children_of(run.id()).first().copied()
        });
        BlockedBackup {
            pg,
            backups,
            before,
            lock,
            run,
            pg_dump,
        }
    }
}

#[test]
fn pg_dump_killed_mid_run_publishes_nothing() {
    let BlockedBackup {
        pg,
        backups,
        before,
        lock,
        run,
        pg_dump,
    } = BlockedBackup::start();
    let cmdline = fs::read(format!("/proc/{pg_dump}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&pg.password),
        "password in pg_dump's argv"
    );
    // SAFETY: plain kill(2) of a process this test found.
    unsafe { libc::kill(pg_dump as i32, libc::SIGKILL) };
    let out = finish(run);
    drop(lock);
    out.assert_backup_failed(1, "pg_dump was killed by signal 9", &pg.password);
    assert_unchanged(backups.path(), &before);
}

#[test]
fn sigterm_mid_run_removes_the_temp_file_and_stops_pg_dump() {
    sigterm_mid_run(&[]);
}

#[test]
fn sigterm_mid_run_with_encryption_on_leaves_nothing_either() {
    let keys = test_harness::age::AgeKeys::new();
    sigterm_mid_run(&[("BACKUP_AGE_RECIPIENTS", keys.recipient.clone())]);
}

fn sigterm_mid_run(env: &[(&str, String)]) {
    // `_pg` keeps the cluster running until the test ends.
    let BlockedBackup {
        pg: _pg,
        backups,
        before,
        lock,
        run,
        pg_dump,
    } = BlockedBackup::start_with(env);
    let dir = backups.path().join("postgres");
    wait_for("the temp file", || {
        tree(&dir)
            .iter()
            .any(|e| e.starts_with(".shop_") && e.contains(".tmp-"))
            .then_some(())
    });
    let out = terminate(run);
    drop(lock);
    assert_eq!(out.record()["status"], "failed");
    assert_unchanged(backups.path(), &before);
    wait_for("pg_dump to be gone", || {
        let alive = fs::read_to_string(format!("/proc/{pg_dump}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        (!alive).then_some(())
    });
}

#[test]
fn a_second_run_while_one_holds_the_lock_exits_75() {
    let ShopWithABackup {
        pg,
        backups,
        t,
        before,
    } = ShopWithABackup::new();
    let held = fs::File::open(backups.path().join("postgres/.lock")).unwrap();
    held.lock().unwrap();
    let out = t.run(&["backup"]);
    out.assert_backup_failed(75, "another run holds the lock", &pg.password);
    assert_unchanged(backups.path(), &before);
}

#[test]
#[ignore = "needs root (it mounts a tmpfs or runs crond); scripts/test.sh runs it as root"]
fn disk_full_publishes_nothing_and_keeps_latest() {
    test_harness::require_root("disk_full_publishes_nothing_and_keeps_latest");
    let pg = PgCluster::start();
    pg.create_db("shop");
    pg.sql("shop", "CREATE TABLE t (x text)");
    let disk = SmallDisk::mount("512k");
    let t = tool(&pg, disk.path(), "shop");
    let before = first_backup(&t, disk.path());

    // About 2 MB of hex digits: well over 512 KiB even compressed.
    pg.sql(
        "shop",
        "INSERT INTO t SELECT md5(g::text) || md5((g * 7)::text) || md5(random()::text) FROM generate_series(1, 20000) g",
    );
    let keys = test_harness::age::AgeKeys::new();
    for t in [t.clone(), t.env("BACKUP_AGE_RECIPIENTS", &keys.recipient)] {
        let out = t.run(&["backup"]);
        out.assert_backup_failed(1, "disk full", &pg.password);
        assert!(
            out.stderr.contains("No space left on device"),
            "{}",
            out.stderr
        );
        assert_unchanged(disk.path(), &before);
    }
}

mod restore {
    use super::*;

    fn backed_up(pg: &PgCluster) -> (tempfile::TempDir, Tool, std::path::PathBuf) {
        pg.create_db("shop");
        pg.sql(
            "shop",
            "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g",
        );
        let backups = tempfile::tempdir().unwrap();
        let t = tool(pg, backups.path(), "shop");
        let r = assert_success(&t.run(&["backup"]));
        let file = backups
            .path()
            .join("postgres")
            .join(r["file"].as_str().unwrap());
        (backups, t, file)
    }

    /// A backup of `shop` (its tree, a tool aimed at `target`, the dump) and a
    /// database `target` with its comparable dump, which a failed restore must
    /// leave as it was: the start of every failure test.
    fn scene() -> (
        PgCluster,
        tempfile::TempDir,
        Tool,
        std::path::PathBuf,
        String,
    ) {
        let pg = PgCluster::start();
        let (backups, t, file) = backed_up(&pg);
        let (t, before) = target(&pg, &t);
        (pg, backups, t, file, before)
    }

    /// A target database with content the failed restore must not touch.
    fn target(pg: &PgCluster, t: &Tool) -> (Tool, String) {
        pg.create_db("target");
        pg.sql(
            "target",
            "CREATE TABLE t (g int, h text); INSERT INTO t VALUES (-1, 'keep me')",
        );
        (
            t.clone().env("POSTGRES_DB", "target"),
            pg.comparable_dump("target"),
        )
    }

    /// The SQL inside a dump.
    fn sql_of(file: &Path) -> String {
        let mut sql = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(fs::File::open(file).unwrap()),
            &mut sql,
        )
        .unwrap();
        sql
    }

    fn write_gz(path: &Path, sql: &str) {
        let mut enc =
            flate2::write::GzEncoder::new(fs::File::create(path).unwrap(), Default::default());
        enc.write_all(sql.as_bytes()).unwrap();
        enc.finish().unwrap();
    }

    fn assert_restore_failed(out: &Output, needle: &str, pg: &PgCluster) {
        out.assert_failed("restore", 1, needle, &pg.password);
    }

    #[test]
    fn refuses_a_file_that_does_not_match_its_sidecar() {
        let (pg, _backups, t, file, before) = scene();
        let mut bytes = fs::read(&file).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs::write(&file, bytes).unwrap();
        let out = t.run(&["restore", file.to_str().unwrap()]);
        assert_restore_failed(&out, "does not match its sidecar", &pg);
        assert!(before == pg.comparable_dump("target"));
    }

    #[test]
    fn a_truncated_dump_is_rolled_back() {
        let (pg, _backups, t, file, before) = scene();
        let len = fs::metadata(&file).unwrap().len();
        let cut = tempfile::tempdir().unwrap();
        let truncated = cut.path().join("shop_20240101_000000.sql.gz");
        fs::write(
            &truncated,
            &fs::read(&file).unwrap()[..(len * 9 / 10) as usize],
        )
        .unwrap();
        let out = t.run(&["restore", truncated.to_str().unwrap()]);
        assert_restore_failed(&out, "nothing was restored into target", &pg);
        assert!(
            out.stderr.contains("not a valid gzip file"),
            "{}",
            out.stderr
        );
        assert!(before == pg.comparable_dump("target"), "target changed");
    }

    #[test]
    fn a_dump_without_its_trailer_is_rolled_back() {
        let (pg, _backups, t, file, before) = scene();
        let sql = sql_of(&file);
        let cut_sql = &sql[..sql.rfind("-- PostgreSQL database dump complete").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("shop_20240101_000000.sql.gz");
        write_gz(&cut, cut_sql);
        let out = t.run(&["restore", cut.to_str().unwrap()]);
        assert_restore_failed(&out, "without pg_dump's \"dump complete\" trailer", &pg);
        assert!(before == pg.comparable_dump("target"), "target changed");
    }

    #[test]
    fn a_dump_that_runs_commands_is_refused_before_anything_is_applied() {
        let (pg, _backups, t, file, before) = scene();
        let sql = sql_of(&file);
        let dir = tempfile::tempdir().unwrap();
        let pwned = dir.path().join("pwned");
        // Planted late in the file, after statements that would already have
        // run had the restore begun: the check must read the whole dump first.
        let at = sql.rfind("-- PostgreSQL database dump complete").unwrap();
        let line_of = |prefix: &str| prefix.lines().count() + 1;
        let cases = [
            (
                format!("\\! id > {}\n", pwned.display()),
                "psql meta-command \\! id",
            ),
            (
                format!("COPY t FROM PROGRAM 'id > {}';\n", pwned.display()),
                "is not the `COPY … FROM stdin` that pg_dump writes",
            ),
            (
                format!("SELECT 1; \\o {}\n", pwned.display()),
                "psql meta-command \\o",
            ),
        ];
        let verify = Tool::new(test_harness::script::bin_dir().join("backup-verify"));
        for (n, (planted, needle)) in cases.iter().enumerate() {
            let hostile = format!("{}{planted}{}", &sql[..at], &sql[at..]);
            // In a postgres/ folder, where backup-verify knows what it is.
            fs::create_dir_all(dir.path().join("postgres")).unwrap();
            let path = dir
                .path()
                .join(format!("postgres/shop_2024010{}_000000.sql.gz", n + 1));
            write_gz(&path, &hostile);
            let out = t.run(&["restore", path.to_str().unwrap()]);
            let line = format!("line {}: ", line_of(&sql[..at]));
            assert_restore_failed(&out, &line, &pg);
            assert_restore_failed(&out, needle, &pg);
            assert!(!pwned.exists(), "{planted}: the command ran");
            assert!(
                before == pg.comparable_dump("target"),
                "{planted}: target changed"
            );

            // backup-verify fails the same file for the same reason.
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let sha = backup_common::sidecar::sha256_of_file(&path).unwrap();
            fs::write(
                path.with_file_name(format!("{name}.sha256")),
                format!("{sha}  {name}\n"),
            )
            .unwrap();
            let checked = verify.run(&[path.to_str().unwrap()]);
            assert_eq!(
                checked.code,
                Some(1),
                "verify passed {planted}: {}",
                checked.stdout
            );
            assert!(checked.stdout.contains(needle), "{}", checked.stdout);
        }
    }

    /// A dump that reaches for the server's programs and files through
    /// dynamic SQL, which no check of the file can see, after resetting its
    /// role: with the rights of the database's owner it gets neither.
    #[test]
    fn a_dump_runs_with_its_owners_rights_whatever_sql_it_builds() {
        use std::os::unix::fs::PermissionsExt;
        let (pg, backups, t, file, _) = scene();
        pg.sql("postgres", "CREATE ROLE app NOLOGIN");
        pg.sql("postgres", "CREATE DATABASE owned OWNER app");
        pg.sql(
            "owned",
            "SET ROLE app; CREATE TABLE t (g int, h text); INSERT INTO t VALUES (-1, 'keep me')",
        );
        let t = t.env("POSTGRES_DB", "owned");
        let before = pg.comparable_dump("owned");
        let outside = tempfile::tempdir().unwrap();
        // The server runs as another user: it may write here.
        fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let pwned = outside.path().join("pwned");
        let sql = sql_of(&file);
        let at = sql.rfind("-- PostgreSQL database dump complete").unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (n, planted) in [
            format!(
                "DO $x$ BEGIN EXECUTE 'RESET ROLE'; EXECUTE 'COPY (SELECT 1) TO PROGRAM ' \
                 || quote_literal('touch {}'); END $x$;\n",
                pwned.display()
            ),
            "DO $x$ BEGIN EXECUTE 'SET ROLE postgres'; END $x$;\n".to_owned(),
            "SELECT pg_catalog.pg_read_file('/etc/hostname');\n".to_owned(),
            "DO $x$ BEGIN PERFORM set_config('role', 'postgres', false); \
             EXECUTE 'CREATE TABLE pwned (a int)'; END $x$;\n"
                .to_owned(),
        ]
        .iter()
        .enumerate()
        {
            let hostile = format!("{}{planted}{}", &sql[..at], &sql[at..]);
            let name = format!("shop_2024010{}_000000.sql.gz", n + 1);
            let path = dir.path().join(&name);
            write_gz(&path, &hostile);
            let sha = backup_common::sidecar::sha256_of_file(&path).unwrap();
            fs::write(
                dir.path().join(format!("{name}.sha256")),
                format!("{sha}  {name}\n"),
            )
            .unwrap();
            let out = t.run(&["restore", path.to_str().unwrap()]);
            assert_restore_failed(&out, "rolled back", &pg);
            assert!(!pwned.exists(), "{planted}: a program ran on the server");
            assert!(
                before == pg.comparable_dump("owned"),
                "{planted}: target changed"
            );
            assert!(
                out.stderr.contains("with the rights of role app"),
                "{}",
                out.stderr
            );
        }
        // The same dump without the plant restores, owned by the owner, and
        // no delegate role is left behind.
        let out = t.run(&["restore", file.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.json_lines()[0]["ran_as"], "app");
        assert_eq!(
            pg.sql(
                "owned",
                "SELECT tableowner FROM pg_tables WHERE tablename = 't'"
            ),
            "app"
        );
        assert_eq!(
            pg.sql(
                "postgres",
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'backup\\_kit\\_restore\\_%'"
            ),
            "0"
        );
        // A drill of the planted dump gets no more: its scratch database's
        // owner is a role of its own.
        let drill = t.run(&[
            "restore-test",
            dir.path()
                .join("shop_20240101_000000.sql.gz")
                .to_str()
                .unwrap(),
        ]);
        assert_eq!(drill.code, Some(1), "{}", drill.stderr);
        assert!(!pwned.exists(), "the drill ran a program on the server");
        // Nor when the drill reads the restored tables: a view whose
        // function runs a program whenever a superuser reads it.
        let trap = format!(
            "CREATE FUNCTION public.evil() RETURNS int LANGUAGE plpgsql AS $f$ BEGIN \
             IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN \
             EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('touch {}'); END IF; \
             RETURN 0; END $f$;\n\
             CREATE VIEW public.v AS SELECT a FROM (VALUES (1)) t(a) WHERE public.evil() = 0;\n\
             CREATE FUNCTION public.ins() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN \
             RETURN NULL; END $f$;\n\
             CREATE TRIGGER i INSTEAD OF INSERT ON public.v FOR EACH ROW EXECUTE FUNCTION public.ins();\n\
             COPY public.v (a) FROM stdin;\n\\.\n",
            pwned.display()
        );
        let viewed = dir.path().join("shop_20240201_000000.sql.gz");
        write_gz(&viewed, &format!("{}{trap}{}", &sql[..at], &sql[at..]));
        let _ = t.run(&["restore-test", viewed.to_str().unwrap()]);
        assert!(
            !pwned.exists(),
            "reading the drill's tables ran a program on the server"
        );
        // A database merely named like a scratch one is never dropped.
        pg.sql("postgres", "CREATE DATABASE shop_verify_2024");
        let out = t.run(&["restore-test", file.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(
            pg.sql(
                "postgres",
                "SELECT count(*) FROM pg_database WHERE datname = 'shop_verify_2024'"
            ),
            "1"
        );
        // A superuser owner is said, not hidden; a superuser restore role refused.
        let out = t
            .clone()
            .env("POSTGRES_DB", "target")
            .run(&["restore", file.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(
            out.stderr.contains("has a superuser's rights"),
            "{}",
            out.stderr
        );
        let out = t
            .clone()
            .env("POSTGRES_RESTORE_ROLE", test_harness::pg::SUPERUSER)
            .run(&["restore", file.to_str().unwrap()]);
        out.assert_failed(
            "restore",
            2,
            "rights beyond a database owner's",
            &pg.password,
        );
        drop(backups);
    }

    #[test]
    fn an_sql_error_rolls_back_everything() {
        let (pg, _backups, t, _file, before) = scene();
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("shop_20240101_000000.sql.gz");
        write_gz(
            &bad,
            "DELETE FROM t;\nINSERT INTO no_such_table VALUES (1);\n--\n-- PostgreSQL database dump complete\n--\n\n",
        );
        let out = t.run(&["restore", bad.to_str().unwrap()]);
        assert_restore_failed(&out, "relation \"no_such_table\" does not exist", &pg);
        assert!(before == pg.comparable_dump("target"), "target changed");
    }

    #[test]
    fn create_refuses_an_existing_database() {
        let pg = PgCluster::start();
        let (_backups, t, file) = backed_up(&pg);
        let out = t.run(&["restore", "--create", file.to_str().unwrap()]);
        assert_restore_failed(&out, "cannot create database shop", &pg);
        assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    }

    #[test]
    fn a_missing_file_is_named() {
        let pg = PgCluster::start();
        let backups = tempfile::tempdir().unwrap();
        let out = tool(&pg, backups.path(), "shop").run(&["restore", "/nonexistent/x.sql.gz"]);
        assert_restore_failed(&out, "cannot open /nonexistent/x.sql.gz", &pg);
    }
}

#[test]
fn a_database_name_that_cannot_name_a_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for db in ["", "../x", "a/b", ".hidden"] {
        let out = Tool::new(BIN)
            .env("POSTGRES_DB", db)
            .env("POSTGRES_PASSWORD", "pw-never-shown-42")
            .env("BACKUP_DIR", dir.path())
            .run(&["backup"]);
        out.assert_backup_failed(2, "POSTGRES_DB: database name", "pw-never-shown-42");
        assert!(
            tree(dir.path()).is_empty(),
            "{db:?}: {:?}",
            tree(dir.path())
        );
    }
}

/// Encrypted with recipients and with a passphrase: `.sql.gz.age` with a
/// latest link of the same suffix and a sidecar of the encrypted file; restore
/// needs the identity (exit 2 without, 1 with a wrong one, nothing touched
/// either way); Debian's `age` decrypts what the tool wrote.
#[test]
fn encrypted_dumps_round_trip_and_need_their_identity() {
    use test_harness::age::{sha256_of, AgeKeys, Mode};
    let pg = PgCluster::start();
    rich_db(&pg, "shop");
    let keys = AgeKeys::new();
    let other = AgeKeys::new();
    for mode in Mode::ALL {
        let backups = tempfile::tempdir().unwrap();
        let plain = tool(&pg, backups.path(), "shop");
        let r = assert_success(&mode.apply(&keys, plain.clone(), false).run(&["backup"]));
        let file = r["file"].as_str().unwrap().to_owned();
        assert!(file.ends_with(".sql.gz.age"), "{mode:?}: {file}");
        let dir = backups.path().join("postgres");
        let link = dir.join("shop_latest.sql.gz.age");
        assert_eq!(fs::read_link(&link).unwrap(), Path::new(&file));
        assert_eq!(r["sha256"].as_str().unwrap(), sha256_of(&dir.join(&file)));
        let check = sh("sha256sum -c *.sha256", &dir);
        assert!(check.status.success(), "{mode:?}: sha256sum -c");
        if mode == Mode::Recipients {
            let sql = keys.decrypt_with_cli(&dir.join(&file));
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&sql[..]), &mut text)
                .unwrap();
            assert!(text.contains("-- PostgreSQL database dump complete"));
        }

        let restore = |t: Tool, db: &str| {
            t.env("POSTGRES_DB", db)
                .run(&["restore", "--create", link.to_str().unwrap()])
        };
        let out = restore(plain.clone(), "shop_none");
        assert_eq!(out.code, Some(2), "{mode:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("set BACKUP_AGE_IDENTITY_FILE"),
            "{}",
            out.stderr
        );
        let wrong = mode.apply(&other, plain.clone(), true);
        let out = restore(wrong, "shop_wrong");
        assert_eq!(out.code, Some(1), "{mode:?}: {}", out.stderr);
        assert!(out.stderr.contains("cannot decrypt"), "{}", out.stderr);
        for db in ["shop_none", "shop_wrong"] {
            assert_eq!(
                pg.sql(
                    "postgres",
                    &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")
                ),
                "0",
                "{mode:?}: {db} was created"
            );
        }
        let out = restore(mode.apply(&keys, plain.clone(), true), "shop_back");
        assert_eq!(out.code, Some(0), "{mode:?}: {}", out.stderr);
        assert!(
            pg.comparable_dump("shop") == pg.comparable_dump("shop_back"),
            "{mode:?}: dumps differ after restore"
        );
        pg.sql("postgres", "DROP DATABASE shop_back");
        assert!(
            !out.all().contains("correct horse"),
            "the passphrase leaked"
        );
    }
}

/// A plain dump that Debian's `age -r` encrypted is restored like one of ours.
#[test]
fn a_dump_encrypted_by_debians_age_restores() {
    use test_harness::age::{sha256_of, AgeKeys};
    let pg = PgCluster::start();
    rich_db(&pg, "shop");
    let keys = AgeKeys::new();
    let backups = tempfile::tempdir().unwrap();
    let t = tool(&pg, backups.path(), "shop");
    let r = assert_success(&t.run(&["backup"]));
    let dir = backups.path().join("postgres");
    let plain = dir.join(r["file"].as_str().unwrap());
    let encrypted = dir.join(format!("{}.age", r["file"].as_str().unwrap()));
    keys.encrypt_with_cli(&plain, &encrypted);
    fs::write(
        dir.join(format!("{}.age.sha256", r["file"].as_str().unwrap())),
        format!(
            "{}  {}.age\n",
            sha256_of(&encrypted),
            r["file"].as_str().unwrap()
        ),
    )
    .unwrap();
    let out = t
        .clone()
        .env("POSTGRES_DB", "shop_back")
        .env("BACKUP_AGE_IDENTITY_FILE", keys.identity_file())
        .run(&["restore", "--create", encrypted.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(pg.comparable_dump("shop") == pg.comparable_dump("shop_back"));
}

/// The cluster's globals beside every dump: three databases with objects owned
/// by extra roles (a login role with a password, a group role with a member)
/// come back in a **fresh** cluster — globals first, then each database — with
/// the same roles, attributes, memberships and password, and the same data.
#[test]
fn globals_and_every_database_come_back_in_a_fresh_cluster() {
    let pg = PgCluster::start();
    pg.sql(
        "postgres",
        "CREATE ROLE app LOGIN CREATEDB PASSWORD 'app-pw-1'; CREATE ROLE readers; GRANT readers TO app;",
    );
    let dbs = ["shop", "crm", "wiki"];
    for db in dbs {
        pg.create_db(db);
        pg.sql(
            db,
            "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 500) g; \
             ALTER TABLE t OWNER TO app; GRANT SELECT ON t TO readers;",
        );
    }
    let backups = tempfile::tempdir().unwrap();
    // POSTGRES_DB=all: every database that takes connections, found now (the
    // maintenance database `postgres` too; the templates not), one record
    // each, the globals with the first.
    let out = tool(&pg, backups.path(), "all").run(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let records = out.json_lines();
    let series: Vec<&str> = records
        .iter()
        .map(|r| r["series"].as_str().unwrap())
        .collect();
    assert_eq!(series, ["crm", "postgres", "shop", "wiki"]);
    for r in &records {
        assert_eq!(r["status"], "success", "{r}");
        assert_eq!(r["database"], r["series"], "{r}");
    }
    let globals = records[0]["globals_file"].as_str().unwrap();
    assert!(
        globals.starts_with("globals_") && globals.ends_with(".sql.gz"),
        "{}",
        records[0]
    );
    assert!(records[1..].iter().all(|r| r.get("globals_file").is_none()));
    let dir = backups.path().join("postgres");
    let sql = sh("gunzip -c globals_latest.sql.gz", &dir);
    let sql = String::from_utf8_lossy(&sql.stdout);
    assert!(
        sql.contains("CREATE ROLE app;") && sql.contains("SCRAM-SHA-256$"),
        "{sql}"
    );

    let fresh = PgCluster::start();
    let t = tool(&fresh, backups.path(), "postgres");
    let globals = dir.join("globals_latest.sql.gz");
    // The drill applies them in a transaction it rolls back: nothing stays.
    let out = t.run(&["restore-test", "--globals", globals.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let drill = &out.json_lines()[0];
    assert_eq!(drill["rolled_back"], true, "{drill}");
    assert!(drill["roles"].as_u64().unwrap() >= 2, "{drill}");
    assert_eq!(
        fresh.sql(
            "postgres",
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app'"
        ),
        "0"
    );
    for round in 0..2 {
        // Applied twice: roles that exist by then are updated, not an error.
        let out = t.run(&["restore", "--globals", globals.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "round {round}: {}", out.stderr);
        assert_eq!(out.json_lines()[0]["action"], "restore-globals");
    }
    for db in dbs {
        let latest = dir.join(format!("{db}_latest.sql.gz"));
        let out = t.clone().env("POSTGRES_DB", db).run(&[
            "restore",
            "--create",
            latest.to_str().unwrap(),
        ]);
        assert_eq!(out.code, Some(0), "{db}: {}", out.stderr);
        assert!(
            pg.comparable_dump(db) == fresh.comparable_dump(db),
            "{db} differs"
        );
    }
    let roles = "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, \
                 rolreplication, rolbypassrls FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1";
    let members =
        "SELECT r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid \
                   JOIN pg_roles m ON m.oid = a.member WHERE r.rolname !~ '^pg_' ORDER BY 1, 2";
    assert_eq!(pg.sql("postgres", roles), fresh.sql("postgres", roles));
    assert_eq!(pg.sql("postgres", members), fresh.sql("postgres", members));
    assert!(fresh.sql("postgres", members).contains("readers|app"));
    // The login role's password came along (as its scram hash). Ownership and
    // grants of the tables do not: the dumps are --no-owner --no-acl, as the
    // product description has them.
    let login = fresh
        .client("psql", "shop")
        .env("PGUSER", "app")
        .env("PGPASSWORD", "app-pw-1")
        .args(["-X", "-A", "-t", "-c", "SELECT current_user"])
        .output()
        .unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&login.stdout).trim(), "app");
}

/// `--no-globals` writes the dump alone; a user who may not read role
/// passwords still gets the roles (without passwords) and a warning.
#[test]
fn no_globals_skips_them_and_a_plain_user_gets_roles_without_passwords() {
    let pg = PgCluster::start();
    pg.create_db("shop");
    pg.sql(
        "postgres",
        "CREATE ROLE plain LOGIN PASSWORD 'plain-pw-7'; GRANT CONNECT ON DATABASE shop TO plain;",
    );
    pg.sql(
        "shop",
        "CREATE TABLE t (x int); GRANT SELECT ON t TO plain;",
    );
    let backups = tempfile::tempdir().unwrap();
    let t = tool(&pg, backups.path(), "shop");
    let r = assert_success(&t.run(&["backup", "--no-globals"]));
    assert!(r.get("globals_file").is_none(), "{r}");
    assert!(!tree(backups.path()).iter().any(|e| e.contains("globals_")));

    let out = t
        .clone()
        .env("POSTGRES_USER", "plain")
        .env("POSTGRES_PASSWORD", "plain-pw-7")
        .run(&["backup"]);
    let r = assert_success(&out);
    assert!(r["globals_file"].is_string(), "{r}");
    assert!(
        out.stderr.contains("may not read role passwords"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains("plain-pw-7"));
}

/// A list of databases: each is its own series with its own record; one that
/// fails (it does not exist) fails the run (status 1) and names itself, and
/// the others are published all the same. `-o -` takes one database only.
#[test]
fn a_list_of_databases_is_one_series_each_and_one_failure_fails_the_run() {
    let pg = PgCluster::start();
    rich_db(&pg, "shop");
    pg.create_db("crm");
    let backups = tempfile::tempdir().unwrap();
    let out = tool(&pg, backups.path(), "shop, gone,crm").run(&["backup"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let records = out.json_lines();
    let by_series = |s: &str| {
        records
            .iter()
            .find(|r| r["series"] == s)
            .unwrap_or_else(|| panic!("no record for {s}: {}", out.stdout))
    };
    assert_eq!(records.len(), 3, "{}", out.stdout);
    assert_eq!(by_series("shop")["status"], "success");
    assert_eq!(by_series("crm")["status"], "success");
    let gone = by_series("gone");
    assert_eq!(gone["status"], "failed");
    assert!(
        gone["error"]
            .as_str()
            .unwrap()
            .contains("\"gone\" does not exist"),
        "{gone}"
    );
    let files = tree(backups.path());
    assert!(
        files.iter().any(|f| f.starts_with("postgres/shop_2")),
        "{files:?}"
    );
    assert!(
        files.iter().any(|f| f.starts_with("postgres/crm_2")),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.contains("gone")), "{files:?}");

    let out = tool(&pg, backups.path(), "shop,crm").run(&["backup", "-o", "-"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("-o - writes one database"),
        "{}",
        out.stderr
    );
    let out = tool(&pg, backups.path(), "shop,crm").run(&["restore", "x.sql.gz"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("POSTGRES_DB names 2 (shop,crm); this takes one: give --db NAME"),
        "{}",
        out.stderr
    );
}

#[test]
fn progress_is_drawn_on_a_terminal_and_never_into_a_log() {
    let pg = PgCluster::start();
    rich_db(&pg, "shop");
    let backups = tempfile::tempdir().unwrap();
    let t = tool(&pg, backups.path(), "shop");
    // Under cron (stderr a file or a pipe): the log lines and nothing else.
    let out = t.run(&["backup"]);
    assert_success(&out);
    assert!(
        !out.stderr.contains("pg_dump: SQL") && !out.stderr.contains('\r'),
        "{}",
        out.stderr
    );
    let file = backups.path().join("postgres/shop_latest.sql.gz");
    let out = t.run(&["restore", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        !out.stderr.contains("restoring shop_") && !out.stderr.contains('\r'),
        "{}",
        out.stderr
    );

    // On a terminal: the dump's SQL bytes, the restore's read of the file.
    test_harness::wait_for_next_second();
    let out = t.run_on_terminal(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("pg_dump: SQL"), "{:?}", out.stdout);
    assert!(
        out.stdout.contains("\"status\":\"success\""),
        "{:?}",
        out.stdout
    );
    let out = t.run_on_terminal(&["restore", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains("checking shop_") && out.stdout.contains("restoring shop_"),
        "{:?}",
        out.stdout
    );
}

/// A database whose name holds a newline and a tab, found by `all`: refused
/// as one name (never read as two, never a file), the others backed up.
#[test]
fn all_refuses_a_database_named_with_control_characters_and_backs_up_the_rest() {
    let pg = PgCluster::start();
    pg.create_db("shop");
    pg.sql("postgres", "CREATE DATABASE \"evil\nshop\tx\"");
    let backups = tempfile::tempdir().unwrap();
    let out = tool(&pg, backups.path(), "all").run(&["backup"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let records = out.json_lines();
    let failed: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{records:?}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("must not hold '/' or control characters"),
        "{}",
        failed[0]
    );
    assert!(records
        .iter()
        .any(|r| r["series"] == "shop" && r["status"] == "success"));
    let files: Vec<String> = fs::read_dir(backups.path().join("postgres"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().all(|f| !f.contains("evil")), "{files:?}");
}
