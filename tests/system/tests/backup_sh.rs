//! scripts/backup.sh under busybox sh, against the whole stack: a real
//! PostgreSQL cluster, a real S3 server, a real n8n and the Qdrant stand-in.

use serde_json::Value;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use test_harness::n8n::{sample_workflows, N8n};
use test_harness::qdrant::QdrantStandin;
use test_harness::receiver::{Receiver, Request};
use test_harness::s3::S3Server;
use test_harness::script::{bin_dir, script};
use test_harness::{finish, free_port, wait_for, PgCluster, Tool};

const HEALTH_TOKEN: &str = "hc-token-5b1f0e";
const NOTIFY_TOKEN: &str = "notify-token-9c2d7a";
const NTFY_TOKEN: &str = "tk_ntfy-token-4e8a";

struct Stack {
    pg: PgCluster,
    s3: S3Server,
    qdrant: QdrantStandin,
    n8n: N8n,
    hooks: Receiver,
    dir: tempfile::TempDir,
    offsite: tempfile::TempDir,
}

impl Stack {
    fn start() -> Stack {
        let pg = PgCluster::start();
        pg.create_db("arasul_db");
        pg.sql(
            "arasul_db",
            "CREATE TABLE documents (id serial PRIMARY KEY, title text NOT NULL, body bytea);
             INSERT INTO documents (title, body)
               SELECT 'doc ' || i || ' Grüße', sha256(i::text::bytea) FROM generate_series(1, 2000) i;",
        );
        let s3 = S3Server::start();
        s3.create_bucket("documents");
        for i in 0..30 {
            s3.put(
                "documents",
                &format!("files/{i:03}.txt"),
                format!("document {i}").as_bytes(),
                "text/plain",
                &[("owner", "ops")],
            );
        }
        s3.put(
            "documents",
            "deep/ü n i/c o d e.pdf",
            b"%PDF",
            "application/pdf",
            &[],
        );
        let qdrant = QdrantStandin::start(Some("qdrant-key-31f"));
        qdrant.add_collection("documents", 4, 50);
        qdrant.add_collection("memory", 3, 30);
        let n8n = N8n::start();
        n8n.import(&sample_workflows(3));
        Stack {
            pg,
            s3,
            qdrant,
            n8n,
            hooks: Receiver::start(),
            dir: tempfile::tempdir().unwrap(),
            offsite: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The environment of the container: every service's settings and the hooks.
    fn env(&self, tool: Tool) -> Tool {
        self.pg
            .connect(tool)
            .env("BACKUP_DIR", self.root())
            .env("TZ", "Europe/Berlin")
            // Only --weekly promotes, whatever day the test runs on.
            .env(
                "BACKUP_WEEKLY_DAY",
                (weekday_in_berlin() % 7 + 1).to_string(),
            )
            .env("POSTGRES_DB", "arasul_db")
            .env("MINIO_ENDPOINT", &self.s3.endpoint)
            .env("MINIO_ROOT_USER", &self.s3.access_key)
            .env("MINIO_ROOT_PASSWORD", &self.s3.secret_key)
            .env("MINIO_BUCKET", "documents")
            .env("QDRANT_URL", &self.qdrant.url)
            .env("QDRANT_API_KEY", self.qdrant.api_key.clone().unwrap())
            .env("N8N_URL", &self.n8n.url)
            .env("N8N_API_KEY", &self.n8n.api_key)
            .env(
                "BACKUP_HEALTHCHECK_URL",
                format!("{}/ping/{HEALTH_TOKEN}", self.hooks.url),
            )
            // The older form receives every report; ntfy (at its default
            // level, error) only the runs that were not completed.
            .env(
                "BACKUP_NOTIFY_URL",
                format!("{}/notify?token={NOTIFY_TOKEN}", self.hooks.url),
            )
            .env(
                "BACKUP_NOTIFY_URLS",
                format!(
                    "ntfy://:{NTFY_TOKEN}@{}/backups?scheme=http",
                    self.hooks.authority()
                ),
            )
            .env("BACKUP_OFFSITE_REMOTE", self.offsite.path())
    }

    fn backup_sh(&self) -> Tool {
        self.env(script("backup.sh"))
    }

    fn tool(&self, name: &str) -> Tool {
        self.env(Tool::new(bin_dir().join(name)))
    }

    fn report(&self) -> Value {
        serde_json::from_slice(&fs::read(self.root().join("backup_report.json")).unwrap()).unwrap()
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            self.pg.password.clone(),
            self.s3.secret_key.clone(),
            self.qdrant.api_key.clone().unwrap(),
            self.n8n.api_key.clone(),
            HEALTH_TOKEN.into(),
            NOTIFY_TOKEN.into(),
            NTFY_TOKEN.into(),
        ]
    }

    /// Nothing secret in the run's output, the log or the report.
    fn assert_no_secret(&self, output: &str) {
        let log = fs::read_to_string(self.root().join("backup.log")).unwrap();
        let report = fs::read_to_string(self.root().join("backup_report.json")).unwrap();
        for s in self.secrets() {
            for (what, text) in [
                ("output", output),
                ("backup.log", &log),
                ("report", &report),
            ] {
                assert!(!text.contains(&s), "a secret is in the {what}:\n{text}");
            }
        }
    }
}

/// The report's file for a component, checked to exist in the tree.
fn published(stack: &Stack, report: &Value, component: &str) -> PathBuf {
    let c = &report["components"][component];
    assert_eq!(c["status"], "success", "{component}: {c}");
    let path = stack
        .root()
        .join(component)
        .join(c["file"].as_str().unwrap());
    assert!(path.is_file(), "{}", path.display());
    assert!(
        Path::new(&format!("{}.sha256", path.display())).is_file(),
        "sidecar of {}",
        path.display()
    );
    path
}

/// The component's `*_latest` link names `file` (the database's, not the
/// cluster globals' beside it).
fn assert_latest(stack: &Stack, component: &str, file: &Path) {
    let latest = fs::read_dir(stack.root().join(component))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| name(p).contains("_latest.") && !name(p).starts_with("globals_"))
        .unwrap();
    assert_eq!(fs::read_link(&latest).unwrap(), Path::new(&name(file)));
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every workflow's name and nodes: what a restore must bring back (ids are the API's).
fn workflow_shapes(n8n: &N8n) -> Vec<(String, Value)> {
    n8n.workflows()
        .into_iter()
        .map(|w| (w["name"].as_str().unwrap().to_owned(), w["nodes"].clone()))
        .collect()
}

#[test]
fn full_incremental_weekly_and_restore_of_every_component() {
    let stack = Stack::start();
    let sh = stack.backup_sh();

    // 1. A full run: every component published, the report completed, the hooks called.
    let out = sh.run(&["--type", "full"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report = stack.report();
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["backup_type"], "full");
    for c in ["postgres", "minio", "qdrant", "n8n"] {
        let file = published(&stack, &report, c);
        assert_latest(&stack, c, &file);
    }
    // The page and the history come with every report.
    let page = fs::read_to_string(stack.root().join("backup_report.html")).unwrap();
    for c in ["postgres", "minio", "qdrant", "n8n"] {
        assert!(
            page.contains(&format!("id=\"c-{c}\" data-status=\"success\"")),
            "{c} not on the page"
        );
    }
    let history = fs::read_to_string(stack.root().join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 4, "{history}");
    let log = fs::read_to_string(stack.root().join("backup.log")).unwrap();
    for needle in [
        " backup: starting a backup (full) of: postgres minio qdrant n8n",
        " postgres: ",
        " minio: ",
        " qdrant: ",
        " n8n: ",
        " prune: ",
        " report: wrote ",
        " backup: finished in ",
    ] {
        assert!(log.contains(needle), "{needle:?} not in backup.log:\n{log}");
    }
    assert!(
        out.stderr.contains(" backup: finished in "),
        "{}",
        out.stderr
    );
    let hooks = stack.hooks.take();
    let calls: Vec<String> = hooks.iter().map(Request::line).collect();
    assert_eq!(
        calls,
        [
            format!("POST /ping/{HEALTH_TOKEN}/start"),
            format!("POST /notify?token={NOTIFY_TOKEN}"),
            format!("POST /ping/{HEALTH_TOKEN}"),
        ],
        "a completed run: no ntfy message at level error"
    );
    assert_eq!(
        hooks[1].json(),
        report,
        "the notification carries the report"
    );
    let pg_file = published(&stack, &report, "postgres");
    assert!(
        stack
            .offsite
            .path()
            .join("postgres")
            .join(name(&pg_file))
            .is_file(),
        "the off-site copy has the new dump: {:?}",
        test_harness::tree(stack.offsite.path())
    );
    stack.assert_no_secret(&out.all());

    // 2. Changes, then an incremental run: MinIO archives only what changed.
    stack.pg.sql(
        "arasul_db",
        "INSERT INTO documents (title) VALUES ('after the full backup');
         UPDATE documents SET title = 'changed' WHERE id = 7;",
    );
    stack
        .s3
        .put("documents", "files/001.txt", b"changed", "text/plain", &[]);
    stack
        .s3
        .put("documents", "new/added.txt", b"added", "text/plain", &[]);
    stack.s3.delete("documents", "files/002.txt");
    stack.qdrant.add_collection("extra", 2, 10);
    stack.n8n.import(&sample_workflows(5));
    let out = sh.run(&["--type", "incremental"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report = stack.report();
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(report["backup_type"], "incremental");
    let incr1 = published(&stack, &report, "minio");
    assert!(
        name(&incr1).ends_with(".incr.tar.gz"),
        "{}",
        incr1.display()
    );

    // 3. --weekly after one more change, with an old dump that retention removes.
    stack
        .s3
        .put("documents", "new/second.txt", b"second", "text/plain", &[]);
    let old = stack
        .root()
        .join("postgres/arasul_db_20200105_020000.sql.gz");
    fs::copy(&pg_file, &old).unwrap();
    let sum = fs::read_to_string(format!("{}.sha256", pg_file.display())).unwrap();
    fs::write(
        format!("{}.sha256", old.display()),
        sum.replace(&name(&pg_file), &name(&old)),
    )
    .unwrap();
    assert!(
        !stack.root().join("weekly").exists(),
        "no weekly before --weekly"
    );
    let out = sh.run(&["--type", "incremental", "--weekly"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report = stack.report();
    assert_eq!(report["status"], "completed", "{report}");
    assert!(
        !old.exists(),
        "retention deleted the 2020 dump: {}",
        out.stderr
    );
    let weeks = file_names(&stack.root().join("weekly"));
    assert_eq!(weeks.len(), 1, "{weeks:?}");
    let week = stack.root().join("weekly").join(&weeks[0]);
    assert_eq!(report["statistics"]["weekly_snapshots"], 1);
    // The weekly run drilled every component it promoted (the default
    // BACKUP_RESTORE_TEST=weekly), and the report carries the drill.
    for c in ["postgres", "minio", "qdrant", "n8n"] {
        assert_eq!(
            report["restore_test"][c]["status"], "success",
            "{c}: {report}"
        );
    }
    assert_eq!(
        report["restore_test"]["minio"]["series"]["documents"]["compared"]["objects"],
        stack.s3.keys("documents").len(),
        "{report}"
    );
    assert!(stack.s3.buckets().iter().all(|b| !b.contains("-verify-")));
    let incr2 = published(&stack, &report, "minio");
    // The incremental's whole chain is in the weekly folder, so it restores alone.
    let full = stack
        .root()
        .join("minio/documents_latest.tar.gz")
        .canonicalize()
        .unwrap();
    let mut chain = Vec::new();
    for f in [&full, &incr1, &incr2] {
        chain.push(name(f));
        chain.push(format!("{}.sha256", name(f)));
    }
    chain.sort();
    assert_eq!(file_names(&week.join("minio")), chain);
    for c in ["postgres", "qdrant", "n8n"] {
        let file = published(&stack, &report, c);
        let (globals, others): (Vec<String>, Vec<String>) = file_names(&week.join(c))
            .into_iter()
            .partition(|f| f.starts_with("globals_"));
        assert_eq!(others, [name(&file), format!("{}.sha256", name(&file))]);
        // The cluster's globals go with the dump (published in the same unit).
        assert_eq!(
            globals.len(),
            if c == "postgres" { 2 } else { 0 },
            "{globals:?}"
        );
        // A hard link, not a copy: the weekly snapshot costs no space.
        assert_eq!(
            fs::metadata(&file).unwrap().ino(),
            fs::metadata(week.join(c).join(name(&file))).unwrap().ino()
        );
    }
    let verify = stack.tool("backup-verify").run(&["--all"]);
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    stack.assert_no_secret(&out.all());

    // 4. Restore every component from the weekly snapshot into fresh targets.
    let pg_weekly = week
        .join("postgres")
        .join(name(&published(&stack, &report, "postgres")));
    let out = stack
        .tool("pg-dumpwrap")
        .env("POSTGRES_DB", "restored")
        .run(&["restore", "--create", pg_weekly.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        stack.pg.comparable_dump("restored"),
        stack.pg.comparable_dump("arasul_db")
    );

    let out = stack
        .tool("minio-snap")
        .env("MINIO_BUCKET", "restored")
        .run(&[
            "restore",
            week.join("minio").join(name(&incr2)).to_str().unwrap(),
        ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let keys = stack.s3.keys("documents");
    assert_eq!(stack.s3.keys("restored"), keys);
    for k in &keys {
        assert_eq!(
            stack.s3.get("restored", k).unwrap(),
            stack.s3.get("documents", k).unwrap(),
            "{k}"
        );
    }

    let counts: Vec<_> = ["documents", "memory", "extra"]
        .iter()
        .map(|c| stack.qdrant.points_count(c))
        .collect();
    for c in ["documents", "memory", "extra"] {
        stack.qdrant.delete_collection(c);
    }
    let qdrant_weekly = week
        .join("qdrant")
        .join(name(&published(&stack, &report, "qdrant")));
    let out = stack
        .tool("qdrant-snap")
        .run(&["restore", qdrant_weekly.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let restored: Vec<_> = ["documents", "memory", "extra"]
        .iter()
        .map(|c| stack.qdrant.points_count(c))
        .collect();
    assert_eq!(restored, counts);
    assert_eq!(counts, [Some(50), Some(30), Some(10)]);

    let before = workflow_shapes(&stack.n8n);
    assert_eq!(before.len(), 10);
    for w in stack.n8n.workflows() {
        stack.n8n.delete(w["id"].as_str().unwrap());
    }
    let n8n_weekly = week
        .join("n8n")
        .join(name(&published(&stack, &report, "n8n")));
    let out = stack
        .tool("n8n-export")
        .run(&["restore", n8n_weekly.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(workflow_shapes(&stack.n8n), before);
}

/// Its own stack, so that a failure here hides nothing of the cycle above.
#[test]
fn a_run_with_one_service_down_is_partial_and_publishes_the_others() {
    let mut stack = Stack::start();
    let sh = stack.backup_sh();
    let out = sh.run(&["--type", "full"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let first = stack.report();
    stack.hooks.take();

    // The S3 server down: the report says partial, the others are published
    // (their latest links moved on), exit 1.
    let offsite_before = test_harness::tree(stack.offsite.path());
    stack.s3.stop();
    stack.pg.sql(
        "arasul_db",
        "INSERT INTO documents (title) VALUES ('while minio was down')",
    );
    let out = sh.run(&[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let report = stack.report();
    assert_eq!(report["status"], "partial", "{report}");
    assert_eq!(report["components"]["minio"]["status"], "failed");
    let error = report["components"]["minio"]["error"].as_str().unwrap();
    assert!(error.contains("check MINIO_ENDPOINT"), "{error}");
    assert!(!error.contains("X-Amz-Signature"), "{error}");
    for c in ["postgres", "qdrant", "n8n"] {
        let file = published(&stack, &report, c);
        assert_latest(&stack, c, &file);
        assert_ne!(
            report["components"][c]["file"],
            first["components"][c]["file"]
        );
    }
    assert!(
        out.stderr.contains("with failures: minio"),
        "{}",
        out.stderr
    );
    let hooks = stack.hooks.take();
    let calls: Vec<String> = hooks.iter().map(Request::line).collect();
    assert_eq!(
        calls,
        [
            format!("POST /ping/{HEALTH_TOKEN}/start"),
            "POST /".into(),
            format!("POST /notify?token={NOTIFY_TOKEN}"),
            format!("POST /ping/{HEALTH_TOKEN}/fail"),
        ]
    );
    // Exactly one message, naming minio and its error, with the bearer token.
    let ntfy = hooks[1].json();
    let minio_error = stack.report()["components"]["minio"]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ntfy["topic"], "backups");
    assert!(
        ntfy["title"]
            .as_str()
            .unwrap()
            .starts_with("backup partial on ")
            && ntfy["message"]
                .as_str()
                .unwrap()
                .contains(&format!("failed: minio: {minio_error}")),
        "{ntfy}"
    );
    assert_eq!(
        hooks[1].header("Authorization"),
        Some(&*format!("Bearer {NTFY_TOKEN}"))
    );
    assert_eq!(
        test_harness::tree(stack.offsite.path()),
        offsite_before,
        "no off-site sync after a failed run"
    );
    stack.assert_no_secret(&out.all());
    // Nothing half-written anywhere.
    let temps: Vec<String> = test_harness::tree(stack.root())
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

/// backup.sh with only PostgreSQL selected, pointed at a port nothing listens on.
fn lone_run(dir: &Path) -> Tool {
    script("backup.sh")
        .env("BACKUP_DIR", dir)
        .env("POSTGRES_HOST", "127.0.0.1")
        .env("POSTGRES_PORT", free_port().to_string())
        .env("POSTGRES_PASSWORD", "pw-not-used")
        .env("BACKUP_COMPONENTS", "postgres")
}

#[test]
fn a_second_run_exits_75_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let lock = fs::File::create(dir.path().join(".backup.lock")).unwrap();
    // SAFETY: flock(2) on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    let out = lone_run(dir.path()).run(&[]);
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(
        out.stderr.contains("another backup.sh run holds"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("postgres").exists(), "nothing ran");
    drop(lock);
    let out = lone_run(dir.path()).run(&[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
}

#[test]
fn the_log_is_rotated_past_10_mib_keeping_five() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("backup.log");
    fs::write(&log, vec![b'x'; 10 * 1024 * 1024 + 1]).unwrap();
    for i in 1..=5 {
        fs::write(format!("{}.{i}", log.display()), format!("old {i}")).unwrap();
    }
    let out = lone_run(dir.path()).run(&[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(
        fs::metadata(format!("{}.1", log.display())).unwrap().len(),
        10 * 1024 * 1024 + 1
    );
    for i in 2..=5 {
        assert_eq!(
            fs::read_to_string(format!("{}.{i}", log.display())).unwrap(),
            format!("old {}", i - 1)
        );
    }
    assert!(!Path::new(&format!("{}.6", log.display())).exists());
    let fresh = fs::read_to_string(&log).unwrap();
    assert!(
        fresh.contains(" backup: starting a backup (full) of: postgres"),
        "{fresh}"
    );
    assert!(fresh.contains("check POSTGRES_HOST"), "{fresh}");

    // Below the limit nothing moves.
    let out = lone_run(dir.path()).run(&[]);
    assert_eq!(out.code, Some(1));
    assert_eq!(
        fs::read_to_string(format!("{}.2", log.display())).unwrap(),
        "old 1"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = lone_run(dir.path()).run(&["--help"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("Usage: backup.sh"), "{}", out.stdout);
    for args in [
        &["--type", "differential"][..],
        &["--component", "redis"],
        &["--bogus"],
        &["--type"],
    ] {
        let out = lone_run(dir.path()).run(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(out.stderr.starts_with("backup.sh: "), "{}", out.stderr);
    }
    assert!(
        !dir.path().join("backup.log").exists(),
        "a usage error runs nothing"
    );
}

#[test]
fn sigterm_stops_the_running_tool_and_still_writes_the_report() {
    // An "n8n" that accepts connections and never answers keeps n8n-export busy.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let child = lone_run(dir.path())
        .env("BACKUP_COMPONENTS", "n8n postgres")
        .env("N8N_URL", format!("http://127.0.0.1:{port}"))
        .env("N8N_API_KEY", "k")
        .spawn(&[]);
    wait_for("n8n-export to be connected", || {
        silent.set_nonblocking(true).unwrap();
        silent.accept().ok().map(|(s, _)| s)
    });
    // SAFETY: kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let started = std::time::Instant::now();
    let out = finish(child);
    assert!(
        started.elapsed().as_secs() < 20,
        "backup.sh stopped promptly"
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("interrupted by SIGTERM"),
        "{}",
        out.stderr
    );
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "interrupted");
    assert_eq!(report["components"]["n8n"]["status"], "failed");
    assert!(
        report["components"]["postgres"]["error"]
            .as_str()
            .unwrap()
            .contains("not run: backup.sh was interrupted"),
        "{report}"
    );
    assert!(
        !test_harness::tree(dir.path())
            .iter()
            .any(|p| p.contains(".tmp-")),
        "no temporary file left"
    );
}

/// backup.sh with only PostgreSQL selected, against a real cluster.
fn postgres_run(pg: &PgCluster, dir: &Path) -> Tool {
    pg.connect(script("backup.sh"))
        .env("BACKUP_DIR", dir)
        .env("TZ", "Europe/Berlin")
        .env("BACKUP_COMPONENTS", "postgres")
}

#[test]
#[ignore = "needs root (it mounts a tmpfs or runs crond); scripts/test.sh runs it as root"]
fn weekly_on_another_filesystem_is_a_checked_copy_and_a_full_one_fails_cleanly() {
    test_harness::require_root(
        "weekly_on_another_filesystem_is_a_checked_copy_and_a_full_one_fails_cleanly",
    );
    let pg = PgCluster::start();
    pg.create_db("arasul_db");
    pg.sql(
        "arasul_db",
        "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g;",
    );
    let dir = tempfile::tempdir().unwrap();

    // weekly/ on its own filesystem: no hard link across, so a copy.
    let weekly = test_harness::SmallDisk::mount_on(&dir.path().join("weekly"), "8m");
    let out = postgres_run(&pg, dir.path()).run(&["--weekly"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    let daily = dir
        .path()
        .join("postgres")
        .join(report["components"]["postgres"]["file"].as_str().unwrap());
    let week = fs::read_dir(weekly.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let copy = week.join("postgres").join(name(&daily));
    assert_eq!(fs::read(&copy).unwrap(), fs::read(&daily).unwrap());
    assert_ne!(
        fs::metadata(&copy).unwrap().ino(),
        fs::metadata(&daily).unwrap().ino()
    );
    assert_eq!(fs::metadata(&copy).unwrap().mode() & 0o777, 0o600);
    assert!(Path::new(&format!("{}.sha256", copy.display())).is_file());
    drop(weekly);

    // A weekly filesystem too small for the dump: the promotion fails, the daily
    // backup stays published, the report and exit status say so, no temp file.
    let weekly = test_harness::SmallDisk::mount_on(&dir.path().join("weekly"), "16k");
    let out = postgres_run(&pg, dir.path()).run(&["--weekly"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    let error = report["components"]["postgres"]["error"].as_str().unwrap();
    assert!(
        error.contains("but the weekly promotion to weekly/"),
        "{error}"
    );
    assert!(
        out.stderr.contains("weekly promotion to weekly/")
            && out.stderr.contains("check free space"),
        "{}",
        out.stderr
    );
    let latest = fs::read_link(dir.path().join("postgres/arasul_db_latest.sql.gz")).unwrap();
    assert!(dir.path().join("postgres").join(latest).is_file());
    let left: Vec<String> = test_harness::tree(weekly.path())
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn runs_on_the_weekly_day_promote_without_the_flag() {
    let pg = PgCluster::start();
    pg.create_db("arasul_db");
    pg.sql("arasul_db", "CREATE TABLE t AS SELECT 1 AS one;");
    let dir = tempfile::tempdir().unwrap();
    let today = weekday_in_berlin();
    let other_day = today % 7 + 1;

    let out = postgres_run(&pg, dir.path())
        .env("BACKUP_WEEKLY_DAY", other_day.to_string())
        .run(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!dir.path().join("weekly").exists(), "not the weekly day");

    let out = postgres_run(&pg, dir.path())
        .env("BACKUP_WEEKLY_DAY", today.to_string())
        .run(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let weeks = file_names(&dir.path().join("weekly"));
    assert_eq!(weeks.len(), 1);
    // The dump and the cluster's globals, each with its sidecar.
    assert_eq!(
        file_names(&dir.path().join("weekly").join(&weeks[0]).join("postgres")).len(),
        4
    );
    assert!(
        out.stderr.contains("postgres: promoted to weekly/"),
        "{}",
        out.stderr
    );
}

/// POSTGRES_DB as a list through backup.sh: every database is its own
/// series, promoted, verified and listed under `postgres` in the report and
/// with a `series` label in the metrics; one that fails makes the component
/// (and the run) fail while the others stay published.
#[test]
fn several_databases_are_series_of_one_component_everywhere() {
    let pg = PgCluster::start();
    for db in ["shop", "crm"] {
        pg.create_db(db);
        pg.sql(
            db,
            "CREATE TABLE t AS SELECT g FROM generate_series(1, 100) g;",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.prom");
    let out = postgres_run(&pg, dir.path())
        .env("POSTGRES_DB", "shop,crm")
        .env("BACKUP_PROMETHEUS_FILE", &metrics)
        .run(&["--weekly"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "completed", "{report}");
    let entry = &report["components"]["postgres"];
    let series: Vec<&String> = entry["series"].as_object().unwrap().keys().collect();
    assert_eq!(series, ["crm", "shop"], "{report}");
    let sizes: u64 = ["crm", "shop"]
        .iter()
        .map(|s| entry["series"][s]["size_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(entry["size_bytes"], sizes);
    let weeks = file_names(&dir.path().join("weekly"));
    let promoted = file_names(&dir.path().join("weekly").join(&weeks[0]).join("postgres"));
    // Both dumps and the globals, each with its sidecar.
    assert_eq!(promoted.len(), 6, "{promoted:?}");
    let m = fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("backup_series_success{component=\"postgres\",series=\"crm\"} 1"),
        "{m}"
    );
    let ok: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("OK "))
        .collect();
    assert_eq!(
        ok.iter().filter(|l| !l.contains(" — drill: ")).count(),
        6,
        "each dump and the globals verified, daily and weekly: {}",
        out.stderr
    );
    // The weekly run drills what it promoted: both databases and the globals.
    let drills: Vec<&&str> = ok.iter().filter(|l| l.contains(" — drill: ")).collect();
    assert_eq!(drills.len(), 3, "{}", out.stderr);
    assert!(drills.iter().all(|l| l.contains("/weekly/")), "{drills:?}");
    let kept: Value =
        serde_json::from_slice(&fs::read(dir.path().join("restore_test.json")).unwrap()).unwrap();
    assert_eq!(
        kept["components"]["postgres"]["status"], "success",
        "{kept}"
    );
    assert_eq!(
        report["restore_test"]["postgres"]["status"], "success",
        "{report}"
    );
    assert!(
        m.contains("backup_restore_test_success{component=\"postgres\"} 1"),
        "{m}"
    );

    let out = postgres_run(&pg, dir.path())
        .env("POSTGRES_DB", "shop,gone")
        .run(&[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    let entry = &report["components"]["postgres"];
    assert_eq!(entry["series"]["shop"]["status"], "success");
    assert_eq!(entry["series"]["gone"]["status"], "failed");
    assert!(
        report["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("postgres (gone): "),
        "{report}"
    );
}

/// BACKUP_RESTORE_TEST=always drills after every run; a drill that fails
/// (here: the backup user may dump but not create the scratch database)
/// fails its component with the reason, the run exits 1, and the report and
/// restore_test.json say so. `never` skips the drill.
#[test]
fn a_drill_that_fails_fails_its_component_and_the_run() {
    let pg = PgCluster::start();
    pg.create_db("shop");
    pg.sql(
        "postgres",
        "CREATE ROLE plain LOGIN PASSWORD 'plain-pw-3'; GRANT CONNECT ON DATABASE shop TO plain;",
    );
    pg.sql(
        "shop",
        "CREATE TABLE t AS SELECT 1 AS one; GRANT SELECT ON t TO plain;",
    );
    let dir = tempfile::tempdir().unwrap();
    let run = |mode: &str| {
        postgres_run(&pg, dir.path())
            .env("POSTGRES_DB", "shop")
            .env("POSTGRES_USER", "plain")
            .env("POSTGRES_PASSWORD", "plain-pw-3")
            .env("BACKUP_RESTORE_TEST", mode)
            .run(&[])
    };
    let out = run("never");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains("restore drill"), "{}", out.stderr);

    let out = run("always");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    let error = report["components"]["postgres"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("the restore drill failed: ")
            && error.contains("globals_")
            && error.contains("takes a superuser as POSTGRES_USER"),
        "{report}"
    );
    let shop = &report["restore_test"]["postgres"]["series"]["shop"];
    assert!(
        shop["error"]
            .as_str()
            .unwrap()
            .contains("POSTGRES_USER needs CREATEDB"),
        "{report}"
    );
    assert_eq!(
        report["restore_test"]["postgres"]["status"], "failed",
        "{report}"
    );
    assert!(!out.all().contains("plain-pw-3"));
}

/// The off-site copy against a real S3 server (rclone's S3 backend on
/// s3s-fs, at the bucket's root: s3s-fs answers a HEAD of a "folder" key with
/// a 500, which rclone retries for a minute and a half): upload only (an artifact deleted here stays there), every file
/// sent checked, a remote object altered behind the tool's back fails the run
/// and is named, the outcome is in the report and the metrics, and a tree
/// pulled back with offsite-pull.sh verifies whole.
#[test]
fn the_off_site_copy_keeps_what_was_deleted_here_and_catches_what_was_changed_there() {
    let pg = PgCluster::start();
    pg.create_db("shop");
    pg.sql(
        "shop",
        "CREATE TABLE t AS SELECT g FROM generate_series(1, 300) g;",
    );
    let s3 = S3Server::start();
    s3.create_bucket("offsite");
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.prom");
    let with_remote = |t: Tool| {
        t.env("RCLONE_CONFIG_OFFSITE_TYPE", "s3")
            .env("RCLONE_CONFIG_OFFSITE_PROVIDER", "Other")
            .env("RCLONE_CONFIG_OFFSITE_ENDPOINT", &s3.endpoint)
            .env("RCLONE_CONFIG_OFFSITE_REGION", &s3.region)
            .env("RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID", &s3.access_key)
            .env("RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY", &s3.secret_key)
    };
    let run = || {
        with_remote(postgres_run(&pg, dir.path()))
            .env("POSTGRES_DB", "shop")
            .env("BACKUP_RESTORE_TEST", "never")
            .env("BACKUP_OFFSITE_REMOTE", "offsite:offsite")
            .env("BACKUP_OFFSITE_BWLIMIT", "50M")
            .env(
                "BACKUP_WEEKLY_DAY",
                (weekday_in_berlin() % 7 + 1).to_string(),
            )
            .env("BACKUP_PROMETHEUS_FILE", &metrics)
            .run(&[])
    };
    let out = run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let first = fs::read_link(dir.path().join("postgres/shop_latest.sql.gz")).unwrap();
    let first = first.to_string_lossy().into_owned();
    let keys = s3.keys("offsite");
    for want in [
        format!("postgres/{first}"),
        format!("postgres/{first}.sha256"),
    ] {
        assert!(keys.contains(&want), "{want} not in {keys:?}");
    }
    let sent: Value =
        serde_json::from_slice(&fs::read(dir.path().join("offsite.json")).unwrap()).unwrap();
    assert_eq!(sent["status"], "success", "{sent}");
    assert_eq!(
        sent["files"], 4,
        "the dump, the globals, their sidecars: {sent}"
    );
    assert!(!out.all().contains(&s3.secret_key));
    // A moment after everything of the first run arrived, before the rest.
    test_harness::wait_for_next_second();
    let first_run_done = String::from_utf8(
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%dT%H:%M:%SZ")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    test_harness::wait_for_next_second();

    // Deleted here (after a second run, whose dump is newer): still there
    // after the next run.
    let out = run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    fs::remove_file(dir.path().join("postgres").join(&first)).unwrap();
    fs::remove_file(dir.path().join(format!("postgres/{first}.sha256"))).unwrap();
    let out = run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(s3.keys("offsite").contains(&format!("postgres/{first}")));
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["offsite"]["status"], "success", "{report}");
    assert!(fs::read_to_string(&metrics)
        .unwrap()
        .contains("backup_offsite_success 1\n"));

    // Changed there behind the tool's back: the next upload refuses to pass.
    let second = fs::read_link(dir.path().join("postgres/shop_latest.sql.gz")).unwrap();
    let second = second.to_string_lossy().into_owned();
    let key = format!("postgres/{second}");
    let (original, ct, _) = s3.get("offsite", &key).unwrap();
    let mut altered = original.clone();
    let mid = altered.len() / 2;
    altered[mid] ^= 0x01;
    s3.put("offsite", &key, &altered, &ct, &[]);
    let out = run();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("off-site copy failed: uploading the artifacts failed")
            && out.stderr.contains(&format!("postgres/{second}")),
        "{}",
        out.stderr
    );
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["offsite"]["status"], "failed", "{report}");
    assert_eq!(
        report["status"], "completed",
        "the backups themselves are good"
    );

    // Put right, then pulled back into an empty folder and verified whole.
    s3.put("offsite", &key, &original, &ct, &[]);
    let pulled = tempfile::tempdir().unwrap();
    let out = with_remote(script("offsite-pull.sh")).run(&[
        "offsite:offsite",
        pulled.path().join("tree").to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let ok = out.stdout.lines().filter(|l| l.starts_with("OK ")).count();
    assert!(
        ok >= 6,
        "every artifact of three runs checked: {}",
        out.stdout
    );
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    assert!(pulled.path().join("tree/postgres").join(&first).is_file());
    // Its latest links were made here, on the newest dump.
    let newest = fs::read_dir(pulled.path().join("tree/postgres"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("shop_2") && f.ends_with(".sql.gz"))
        .max()
        .unwrap();
    assert_eq!(
        fs::read_link(pulled.path().join("tree/postgres/shop_latest.sql.gz")).unwrap(),
        Path::new(&newest)
    );

    // The run's files went up under a folder per run, never over each other
    // (each run sends the report and log the tree has when it copies: the
    // last run's).
    let keys = s3.keys("offsite");
    let reports: Vec<&String> = keys
        .iter()
        .filter(|k| k.starts_with("runs/") && k.ends_with("/backup_report.json"))
        .collect();
    assert_eq!(reports.len(), 2, "the second and third runs': {keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.ends_with("/backup.log")).count(),
        3,
        "{keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|k| k == "backup_report.json" || k.contains("_latest")),
        "{keys:?}"
    );

    // Pulled as the remote was before a moment: what came later (here a
    // planted dump dated 2099, its claimed mtime old) stays out.
    s3.put(
        "offsite",
        "postgres/shop_20991231_235959.sql.gz",
        b"planted",
        "application/octet-stream",
        &[("mtime", "1000000000")],
    );
    let before = pulled.path().join("before");
    let out = with_remote(script("offsite-pull.sh")).run(&[
        "--before",
        &first_run_done,
        "offsite:offsite",
        before.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let got: Vec<String> = fs::read_dir(before.join("postgres"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(got.contains(&first), "{got:?}");
    assert!(!got.iter().any(|f| f.contains("2099")), "{got:?}");
    let artifacts = got
        .iter()
        .filter(|f| !f.starts_with('.') && !f.contains("_latest"))
        .count();
    assert_eq!(artifacts, 4, "only the first run's four files: {got:?}");

    // What the host's own upload rights can plant: a link (rclone's
    // `.rclonelink`) to a folder outside the pulled tree, and a file to go
    // through it. The pull makes neither a link nor a file outside DIR.
    let outside = tempfile::tempdir().unwrap();
    s3.put(
        "offsite",
        "qdrant.rclonelink",
        outside.path().to_str().unwrap().as_bytes(),
        "application/octet-stream",
        &[],
    );
    s3.put(
        "offsite",
        "qdrant/authorized_keys",
        b"ssh-ed25519 AAAA attacker",
        "application/octet-stream",
        &[],
    );
    let again = pulled.path().join("again");
    let out =
        with_remote(script("offsite-pull.sh")).run(&["offsite:offsite", again.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "written outside DIR"
    );
    assert!(fs::symlink_metadata(again.join("qdrant")).unwrap().is_dir());
    assert!(!again.join("qdrant.rclonelink").exists());
    // A folder in DIR that is already a link is refused before the copy.
    let planted = pulled.path().join("planted");
    fs::create_dir(&planted).unwrap();
    std::os::unix::fs::symlink(outside.path(), planted.join("postgres")).unwrap();
    let out =
        with_remote(script("offsite-pull.sh")).run(&["offsite:offsite", planted.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("is a link to a folder; a pulled tree holds no links"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "written outside DIR"
    );
}

/// Today's ISO weekday (1 Monday … 7 Sunday) where the tests' backups run.
fn weekday_in_berlin() -> u32 {
    let out = std::process::Command::new("date")
        .arg("+%u")
        .env("TZ", "Europe/Berlin")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn unreachable_hooks_warn_and_a_failed_offsite_sync_fails_the_run() {
    let pg = PgCluster::start();
    pg.create_db("arasul_db");
    pg.sql("arasul_db", "CREATE TABLE t AS SELECT 1 AS one;");
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let out = postgres_run(&pg, dir.path())
        .env(
            "BACKUP_HEALTHCHECK_URL",
            format!("http://127.0.0.1:{closed}/ping/{HEALTH_TOKEN}"),
        )
        .env(
            "BACKUP_NOTIFY_URL",
            format!("http://127.0.0.1:{closed}/notify?token={NOTIFY_TOKEN}"),
        )
        .run(&[]);
    assert_eq!(
        out.code,
        Some(0),
        "a ping is not the backup: {}",
        out.stderr
    );
    for needle in [
        "warning: the healthcheck ping (/start) failed",
        "report: warning: notifying generic (127.0.0.1:",
        "check BACKUP_NOTIFY_URL and the service",
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
    for token in [HEALTH_TOKEN, NOTIFY_TOKEN] {
        assert!(!out.all().contains(token), "{}", out.all());
        let log = fs::read_to_string(dir.path().join("backup.log")).unwrap();
        assert!(!log.contains(token), "{log}");
    }

    let out = postgres_run(&pg, dir.path())
        .env("BACKUP_OFFSITE_REMOTE", "no-such-remote:bucket")
        .run(&[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("off-site copy failed: uploading the artifacts failed (rclone status 1): Failed to create file system for \"no-such-remote:bucket\"")
            && out.stderr.contains("check BACKUP_OFFSITE_REMOTE"),
        "{}",
        out.stderr
    );
    let report: Value =
        serde_json::from_slice(&fs::read(dir.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(
        report["status"], "completed",
        "the backups themselves are good"
    );
}

/// SIGTERM to the script alone, or to its whole process group (a terminal's
/// ^C, a supervisor that signals the group), at moments spread over the run:
/// every time the report is written, the failure hook fires, and nothing of the
/// run is left (pid file, run folder, temp files).
fn interrupted_runs(whole_group: bool) {
    let hooks = Receiver::start();
    // An "n8n" that accepts connections and never answers keeps n8n-export busy.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut moment: u64 = 0x2545_F491_4F6C_DD1D;
    for n in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = lone_run(dir.path())
            .env("BACKUP_COMPONENTS", "postgres n8n")
            .env("N8N_URL", format!("http://127.0.0.1:{port}"))
            .env("N8N_API_KEY", "k")
            .env(
                "BACKUP_HEALTHCHECK_URL",
                format!("{}/{HEALTH_TOKEN}", hooks.url),
            )
            .command(&[]);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // From the moment the run exists (its pid file), 0 to 400 ms on: the log
        // being set up, the first tool starting, failing, the second one waiting.
        let pid_file = dir.path().join(".backup.pid");
        wait_for("the run to start", || pid_file.exists().then_some(()));
        moment ^= moment << 13;
        moment ^= moment >> 7;
        moment ^= moment << 17;
        std::thread::sleep(std::time::Duration::from_millis(moment % 400));
        let target = if whole_group {
            -(child.id() as libc::pid_t)
        } else {
            child.id() as libc::pid_t
        };
        // SAFETY: kill(2) of the child (or its process group) this test started.
        unsafe { libc::kill(target, libc::SIGTERM) };
        let out = finish(child);
        assert_eq!(out.code, Some(1), "run {n}: {}", out.stderr);
        assert!(
            out.stderr.contains("interrupted by SIGTERM"),
            "run {n}: {}",
            out.stderr
        );
        let report: Value = serde_json::from_slice(
            &fs::read(dir.path().join("backup_report.json"))
                .unwrap_or_else(|e| panic!("run {n}: no report ({e}):\n{}", out.stderr)),
        )
        .unwrap();
        assert_eq!(report["status"], "interrupted", "run {n}: {report}");
        assert_eq!(report["components"]["n8n"]["status"], "failed", "run {n}");
        let log = fs::read_to_string(dir.path().join("backup.log")).unwrap();
        assert!(
            log.contains("interrupted by SIGTERM after"),
            "run {n}: the log lost its tail:\n{log}"
        );
        let left: Vec<String> = test_harness::tree(dir.path())
            .into_iter()
            .filter(|p| {
                p.starts_with(".backup.pid") || p.starts_with(".backup-run") || p.contains(".tmp-")
            })
            .collect();
        assert!(left.is_empty(), "run {n}: left behind {left:?}");
        let pings: Vec<String> = hooks.take().iter().map(Request::line).collect();
        assert!(
            pings
                .iter()
                .any(|r| r.ends_with(&format!("{HEALTH_TOKEN}/fail"))),
            "run {n}: no failure ping: {pings:?}"
        );
    }
}

#[test]
fn sigterm_to_the_script_always_ends_with_a_report_and_the_failure_hook() {
    interrupted_runs(false);
}

#[test]
fn sigterm_to_the_whole_process_group_is_handled_like_one_to_the_script() {
    interrupted_runs(true);
}

/// The tree's disk filled at several levels before a run (0 bytes free up to
/// enough for a dump but not its report): whatever fails, no report says
/// "completed" about anything but this run, and a run that exits 0 left a
/// fresh completed report.
#[test]
#[ignore = "needs root (it mounts a tmpfs or runs crond); scripts/test.sh runs it as root"]
fn a_full_disk_at_any_level_never_leaves_a_stale_completed_report() {
    test_harness::require_root("a_full_disk_at_any_level_never_leaves_a_stale_completed_report");
    let pg = PgCluster::start();
    pg.create_db("arasul_db");
    pg.sql(
        "arasul_db",
        "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 3000) g;",
    );
    for free_kib in [0u64, 4, 32, 96, 160, 400] {
        let disk = test_harness::SmallDisk::mount("2m");
        let dir = disk.path();
        let receiver = Receiver::start();
        let run = || {
            postgres_run(&pg, dir)
                .env(
                    "BACKUP_NOTIFY_URLS",
                    format!("generic+{}/hook", receiver.url),
                )
                .env("BACKUP_RESTORE_TEST", "never")
                .run(&[])
        };
        let out = run();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let first: Value =
            serde_json::from_slice(&fs::read(dir.join("backup_report.json")).unwrap()).unwrap();
        assert_eq!(first["status"], "completed");
        // Fill the disk, leaving `free_kib` KiB.
        let stat = free_bytes(dir);
        let filler = stat.saturating_sub(free_kib * 1024);
        let mut f = fs::File::create(dir.join("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut left = filler;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if std::io::Write::write_all(&mut f, &chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        drop(f);
        test_harness::wait_for_next_second();
        let out = run();
        let report: Option<Value> = fs::read(dir.join("backup_report.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap());
        match (&out.code, &report) {
            (Some(0), Some(r)) => {
                assert_eq!(r["status"], "completed", "{free_kib} KiB free: {r}");
                assert_ne!(
                    r["timestamp"], first["timestamp"],
                    "{free_kib} KiB free: stale"
                );
            }
            (Some(0), None) => panic!(
                "{free_kib} KiB free: exit 0 without a report: {}",
                out.stderr
            ),
            (_, Some(r)) => assert!(
                r["status"] != "completed" && r["timestamp"] != first["timestamp"],
                "{free_kib} KiB free: a failed run left {r}\n{}",
                out.stderr
            ),
            (_, None) => {
                // No report at all: the notification said why.
                let sent = receiver.take();
                assert!(
                    sent.iter()
                        .any(|r| String::from_utf8_lossy(&r.body).contains("could not be written")),
                    "{free_kib} KiB free: neither a report nor a notification: {}",
                    out.stderr
                );
            }
        }
        let left: Vec<String> = test_harness::tree(dir)
            .into_iter()
            .filter(|p| p.contains(".tmp-"))
            .collect();
        assert!(left.is_empty(), "{free_kib} KiB free: {left:?}");
        drop(disk);
    }
}

/// Bytes free on the filesystem of `dir` (statvfs).
fn free_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs(3) into a zeroed struct with a valid path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}
