//! scripts/entrypoint.sh and the real busybox crond: the generated crontab
//! fires, backup.sh runs as the unprivileged user with the container's
//! environment, and the health check sees the result.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use test_harness::script::{bin_dir, script};
use test_harness::{require_root, PgCluster, Tool};

const NOBODY: u32 = 65534;

#[test]
#[ignore = "needs root (it mounts a tmpfs or runs crond); scripts/test.sh runs it as root"]
fn crond_runs_backup_sh_within_70_seconds_as_the_backup_user_and_sigterm_stops_it_cleanly() {
    require_root("crond_runs_backup_sh_within_70_seconds_as_the_backup_user");
    let pg = PgCluster::start();
    pg.create_db("arasul_db");
    pg.sql(
        "arasul_db",
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2);",
    );
    // An "n8n" that accepts connections and never answers keeps the run going
    // after PostgreSQL, until the container is stopped.
    let silent_n8n = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Traversable by the backup user; the entrypoint creates the tree itself.
    let base = tempfile::tempdir().unwrap();
    fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let backups = base.path().join("backups");
    let crontabs = base.path().join("crontabs");
    let started = base.path().join("started");
    // busybox crond falls back to this folder when the user's home (nobody's
    // /nonexistent) is missing, and gives up on the job if it is missing too.
    fs::create_dir_all("/var/spool/cron").unwrap();

    let entrypoint = pg
        .connect(script("entrypoint.sh"))
        .env("BACKUP_SCHEDULE", "* * * * *")
        .env("BACKUP_USER", "nobody")
        .env("BACKUP_DIR", &backups)
        .env("BACKUP_CRONTABS_DIR", &crontabs)
        .env("BACKUP_STARTED_FILE", &started)
        .env("BACKUP_COMPONENTS", "postgres n8n")
        .env(
            "N8N_URL",
            format!("http://{}", silent_n8n.local_addr().unwrap()),
        )
        .env("N8N_API_KEY", "n8n-key-not-used")
        .env("TZ", "Europe/Berlin");
    let launched = Instant::now();
    let mut child = spawn_in_own_group(&entrypoint);
    let group = child.id() as libc::pid_t;
    let dump = backups.join("postgres/arasul_db_latest.sql.gz");
    while !(dump.exists() && backups.join(".backup.pid").exists())
        && launched.elapsed() < Duration::from_secs(70)
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the entrypoint exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ran_after = launched.elapsed();

    // `docker stop`: SIGTERM to the entrypoint alone.
    // SAFETY: kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let stopping = Instant::now();
    while child.try_wait().unwrap().is_none() && stopping.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped_after = stopping.elapsed();
    // Whatever is left (nothing, if the entrypoint did its job).
    // SAFETY: kill(2) of the process group this test started.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let out = test_harness::finish(child);
    assert!(
        dump.exists(),
        "no backup within 70 s:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    eprintln!(
        "backup.sh had published the dump {:.1} s after the entrypoint started; SIGTERM stopped it in {:.1} s",
        ran_after.as_secs_f64(),
        stopped_after.as_secs_f64()
    );
    assert_eq!(out.code, Some(0), "a clean stop: {}", out.stderr);
    assert!(
        out.stderr
            .contains("entrypoint: stopping the running backup (pid "),
        "{}",
        out.stderr
    );

    let tab = fs::read_to_string(crontabs.join("nobody")).unwrap();
    assert!(tab.contains("\nSHELL=/bin/sh\n"), "{tab}");
    assert!(tab.contains("* * * * * /"), "{tab}");
    assert!(tab.contains("/backup.sh\n"), "{tab}");
    assert_eq!(
        fs::metadata(crontabs.join("nobody")).unwrap().uid(),
        0,
        "crond reads only root's crontabs"
    );
    assert!(
        out.stderr
            .contains("entrypoint: backups run as nobody on schedule"),
        "{}",
        out.stderr
    );

    // The interrupted run still wrote its report; n8n's temp file is gone.
    let report = backups.join("backup_report.json");
    let r: serde_json::Value = serde_json::from_slice(&fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["status"], "interrupted", "{r}");
    assert_eq!(r["components"]["postgres"]["status"], "success", "{r}");
    let n8n_error = r["components"]["n8n"]["error"].as_str().unwrap();
    assert!(n8n_error.contains("interrupted by SIGTERM"), "{n8n_error}");
    let temps: Vec<String> = test_harness::tree(&backups)
        .into_iter()
        .filter(|p| p.contains(".tmp-") || p.ends_with(".backup.pid"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");

    let meta = fs::metadata(dump.canonicalize().unwrap()).unwrap();
    assert_eq!(
        meta.uid(),
        NOBODY,
        "the backup ran as the backup user, not root"
    );
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(&backups).unwrap().mode() & 0o777, 0o700);
    // backup.log reaches the container's stdout.
    assert!(
        out.stdout
            .contains(" backup: starting a backup (full) of: postgres n8n"),
        "{}",
        out.stdout
    );
    assert!(!out.all().contains(&pg.password));

    // The HEALTHCHECK's command agrees: the last run did not complete.
    let health = Tool::new(bin_dir().join("backup-report"))
        .env("BACKUP_DIR", &backups)
        .env("BACKUP_SCHEDULE", "* * * * *")
        .run(&["--health", "--started-file", started.to_str().unwrap()]);
    health.assert_failed("health check", 1, "is interrupted: n8n: ", &pg.password);
}

#[test]
fn a_bad_schedule_or_crontab_stops_the_container_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut t = script("entrypoint.sh")
            .env("BACKUP_DIR", dir.path().join("backups"))
            .env("BACKUP_CRONTABS_DIR", dir.path().join("crontabs"))
            .env("BACKUP_USER", "nobody");
        for (k, v) in env {
            t = t.env(k, *v);
        }
        run_briefly(&t)
    };
    for schedule in ["0 2 * *", "0 25 * * *", "@daily", "every night"] {
        let out = run(&[("BACKUP_SCHEDULE", schedule)]);
        assert_eq!(out.code, Some(2), "{schedule}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("entrypoint: BACKUP_SCHEDULE")
                && out.stderr.contains("is not a cron schedule crond can run"),
            "{}",
            out.stderr
        );
    }
    // A schedule crond accepts and that never fires.
    let out = run(&[("BACKUP_SCHEDULE", "0 2 30 2 *")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("never fires"), "{}", out.stderr);
    // A crontab saved on Windows.
    let crlf = dir.path().join("crlf-crontab");
    fs::write(&crlf, "0 2 * * * backup.sh\r\n").unwrap();
    let out = run(&[("BACKUP_CRONTAB", crlf.to_str().unwrap())]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("has carriage returns"),
        "{}",
        out.stderr
    );
    // Every setting the runs read, in the cron mode and the run-once mode.
    for args in [&[][..], &["run", "backup.sh"]] {
        let mut t = script("entrypoint.sh")
            .env("BACKUP_DIR", dir.path().join("backups"))
            .env("BACKUP_CRONTABS_DIR", dir.path().join("crontabs"))
            .env("BACKUP_USER", "nobody")
            .env("BACKUP_RETENTION_DAYS", "1e9")
            .env("BACKUP_RESTORE_TEST", "sometimes");
        t.args.extend(args.iter().map(std::ffi::OsString::from));
        let out = run_briefly(&t);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("BACKUP_RETENTION_DAYS=\"1e9\" is not")
                && out
                    .stderr
                    .contains("BACKUP_RESTORE_TEST=\"sometimes\" is not"),
            "{}",
            out.stderr
        );
    }
    let tab = dir.path().join("my-crontab");
    fs::write(
        &tab,
        "# mine\nSHELL=/bin/sh\n0 2 * * * backup.sh\n0 3 * * 8 backup.sh --weekly\n",
    )
    .unwrap();
    let out = run(&[("BACKUP_CRONTAB", tab.to_str().unwrap())]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("BACKUP_CRONTAB line '0 3 * * 8 backup.sh --weekly'"),
        "{}",
        out.stderr
    );
    let out = run(&[("BACKUP_USER", "no-such-user-here")]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("user no-such-user-here does not exist"),
        "{}",
        out.stderr
    );
    // A notification target that cannot be parsed is a warning, not a stop:
    // the checks after it (here the user's) still run.
    let out = run(&[
        ("BACKUP_USER", "no-such-user-here"),
        (
            "BACKUP_NOTIFY_URLS",
            "ntfy://ntfy.example.org/ops telegram://110201543:pw-secret-31@telegram",
        ),
    ]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains(
            "entrypoint: warning: not every notification target is valid: BACKUP_NOTIFY_URLS: \
             target #2: telegram: chats=… names no chat; the other targets still get \
             messages; fix BACKUP_NOTIFY_URLS"
        ) && out.stderr.contains("user no-such-user-here does not exist")
            && !out.stderr.contains("pw-secret-31"),
        "{}",
        out.stderr
    );
    let out = run(&[
        ("BACKUP_USER", "no-such-user-here"),
        ("BACKUP_NOTIFY_LEVEL", "always"),
        (
            "BACKUP_NOTIFY_URLS",
            "ntfy://ntfy.example.org/ops smtp://mail:587/?from=a@example.org&to=b@example.org",
        ),
    ]);
    assert!(
        out.stderr.contains(
            "entrypoint: notifications (level always) to: ntfy (ntfy.example.org) from \
             BACKUP_NOTIFY_URLS; smtp (mail:587) from BACKUP_NOTIFY_URLS\n"
        ),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("crontabs").exists(), "nothing was written");
    assert!(!Path::new(&dir.path().join("backups")).exists());
}

/// Runs the entrypoint, which must stop by itself: one that got past a bad
/// configuration would start crond, so it is killed after 20 s and the test fails.
fn run_briefly(t: &Tool) -> test_harness::Output {
    let mut child = spawn_in_own_group(t);
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            // SAFETY: kill(2) of the process group this test started.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let out = test_harness::finish(child);
            panic!("the entrypoint went on to start crond:\n{}", out.stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    test_harness::finish(child)
}

#[test]
fn the_example_crontab_passes_the_entrypoints_checks() {
    let tab = test_harness::script::repo_root().join("scripts/crontab.example");
    let text = fs::read_to_string(&tab).unwrap();
    let mut jobs = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let out = Tool::new(bin_dir().join("backup-report")).run(&[
            "--check-schedule",
            "--schedule",
            &fields[..5].join(" "),
        ]);
        assert_eq!(out.code, Some(0), "{line}: {}", out.stderr);
        assert_eq!(fields[5], "/usr/local/bin/backup.sh", "{line}");
        let components: Vec<&&str> = fields
            .iter()
            .skip_while(|f| **f != "--component")
            .skip(1)
            .take(1)
            .collect();
        assert_eq!(components.len(), 1, "one component per line: {line}");
        jobs += 1;
    }
    assert_eq!(jobs, 5);
}

/// Starts `t` in a process group of its own, so that crond and the log tail
/// the entrypoint starts can be stopped together.
fn spawn_in_own_group(t: &Tool) -> std::process::Child {
    t.command(&[])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_scripts_the_container_runs_directly_are_executable() {
    // The Dockerfile copies them as they are; ENTRYPOINT and the crontab exec them.
    for name in [
        "entrypoint.sh",
        "backup.sh",
        "restore.sh",
        "offsite-pull.sh",
    ] {
        let path = test_harness::script::repo_root().join("scripts").join(name);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{} is not executable", path.display());
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#!/bin/sh\n"),
            "{name}: #!/bin/sh (busybox on Alpine)"
        );
    }
}

#[test]
#[ignore = "needs root: the command runs as another user (run as root, as CI does)"]
fn run_once_runs_the_command_as_the_backup_user_and_returns_its_status() {
    require_root("run_once_runs_the_command_as_the_backup_user");
    let pg = PgCluster::start();
    pg.create_db("arasul_db");
    pg.sql("arasul_db", "CREATE TABLE t AS SELECT 1 AS one;");
    let base = tempfile::tempdir().unwrap();
    fs::set_permissions(base.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let backups = base.path().join("backups");
    let entrypoint = pg
        .connect(script("entrypoint.sh"))
        .env("BACKUP_USER", "nobody")
        .env("BACKUP_DIR", &backups)
        .env("BACKUP_CRONTABS_DIR", base.path().join("crontabs"))
        .env("POSTGRES_DB", "arasul_db")
        // A Job has no schedule: even one crond could not run is no reason to stop.
        .env("BACKUP_SCHEDULE", "every night")
        .env("TZ", "Europe/Berlin");

    let out = run_briefly_with(
        &entrypoint,
        &["run", "backup.sh", "--component", "postgres"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("entrypoint: running as nobody: backup.sh --component postgres")
            && out
                .stderr
                .contains("entrypoint: backup.sh exited with status 0"),
        "{}",
        out.stderr
    );
    let dump = backups.join("postgres/arasul_db_latest.sql.gz");
    let meta = fs::metadata(dump.canonicalize().unwrap()).unwrap();
    assert_eq!(meta.uid(), NOBODY, "the backup ran as the backup user");
    let r: serde_json::Value =
        serde_json::from_slice(&fs::read(backups.join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "completed");
    assert!(
        !base.path().join("crontabs").exists(),
        "no crontab for a run-once"
    );
    assert!(!out.all().contains(&pg.password));

    // A failing command's status is the container's.
    let out = run_briefly_with(
        &entrypoint
            .clone()
            .env("POSTGRES_PASSWORD", "wrong-password-17"),
        &["run", "backup.sh", "--component", "postgres"],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("entrypoint: backup.sh exited with status 1"),
        "{}",
        out.stderr
    );
    assert!(!out.all().contains("wrong-password-17"));
    let out = run_briefly_with(&entrypoint, &["run", "backup-verify", "--all"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run_briefly_with(&entrypoint, &["run"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("entrypoint: run needs a command"),
        "{}",
        out.stderr
    );

    // A Job that is stopped (SIGTERM to PID 1): the command hears it, its
    // report says so, and its status is the Job's.
    let silent_n8n = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut t = entrypoint
        .clone()
        .env(
            "N8N_URL",
            format!("http://{}", silent_n8n.local_addr().unwrap()),
        )
        .env("N8N_API_KEY", "n8n-key-not-used");
    t.args
        .extend(["run", "backup.sh", "--component", "n8n"].map(std::ffi::OsString::from));
    let child = spawn_in_own_group(&t);
    let pid_file = backups.join(".backup.pid");
    test_harness::wait_for("the run to start", || pid_file.exists().then_some(()));
    // SAFETY: kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = test_harness::finish(child);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("interrupted by SIGTERM"),
        "{}",
        out.stderr
    );
    let r: serde_json::Value =
        serde_json::from_slice(&fs::read(backups.join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(r["status"], "interrupted", "{r}");
}

/// `run_briefly` with arguments.
fn run_briefly_with(t: &Tool, args: &[&str]) -> test_harness::Output {
    let mut t = t.clone();
    t.args.extend(args.iter().map(std::ffi::OsString::from));
    run_briefly(&t)
}
