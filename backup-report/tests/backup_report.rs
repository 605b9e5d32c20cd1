//! backup-report's binary on a real tree, with result records as the tools print them.

use backup_common::ResultRecord;
use std::fs;
use std::io::Write;
use std::process::Stdio;
use test_harness::Tool;

const BIN: &str = env!("CARGO_BIN_EXE_backup-report");

/// A pg-dumpwrap success for the tree below, made with the record type the
/// tools print (`backup_common::ResultRecord`), not copied: a fixed tree needs
/// fixed names, which a real run cannot give. The test at the end feeds
/// records the tools really printed.
fn pg_ok() -> String {
    let published = backup_common::publish::Published {
        path: "postgres/shop_20261126_150401.sql.gz".into(),
        file_name: "shop_20261126_150401.sql.gz".into(),
        size_bytes: 2000,
        sha256: "ab".repeat(32),
    };
    let mut record = ResultRecord::success("postgres", &published)
        .with("database", "shop")
        .with("sql_bytes", 5319170);
    record.duration_seconds = 2;
    record.to_line()
}

fn qd_failed() -> String {
    let mut record = ResultRecord::failed(
        "qdrant",
        "GET http://127.0.0.1:9/collections failed: error sending request — check QDRANT_URL and that Qdrant is running".into(),
    );
    record.duration_seconds = 3;
    record.to_line()
}

fn run_with_stdin(t: &Tool, args: &[&str], stdin: &str) -> test_harness::Output {
    run_with_stdin_bytes(t, args, stdin.as_bytes())
}

fn run_with_stdin_bytes(t: &Tool, args: &[&str], stdin: &[u8]) -> test_harness::Output {
    let mut child = t
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    test_harness::finish(child)
}

fn tree() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let pg = root.path().join("postgres");
    fs::create_dir_all(&pg).unwrap();
    for (name, size) in [
        ("shop_20261125_020000.sql.gz", 1000),
        ("shop_20261126_150401.sql.gz", 2000),
    ] {
        fs::write(pg.join(name), vec![0u8; size]).unwrap();
        fs::write(pg.join(format!("{name}.sha256")), "x").unwrap();
    }
    std::os::unix::fs::symlink("shop_20261126_150401.sql.gz", pg.join("shop_latest.sql.gz"))
        .unwrap();
    fs::write(pg.join("operator-notes.txt"), vec![0u8; 999]).unwrap();
    // The cluster's globals beside the dumps: counted in size, not as a backup.
    fs::write(pg.join("globals_20261126_150401.sql.gz"), vec![0u8; 100]).unwrap();
    fs::write(pg.join("globals_20261126_150401.sql.gz.sha256"), "x").unwrap();
    let week = root.path().join("weekly/2026_W48/postgres");
    fs::create_dir_all(&week).unwrap();
    // A weekly hard link takes no extra space and is counted once.
    fs::hard_link(
        pg.join("shop_20261126_150401.sql.gz"),
        week.join("shop_20261126_150401.sql.gz"),
    )
    .unwrap();
    root
}

#[test]
fn writes_the_report_metrics_and_summary_for_a_partial_run() {
    let root = tree();
    let prom = root.path().join("metrics/backup.prom");
    fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let t = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .env("TZ", "UTC");
    let out = run_with_stdin(
        &t,
        &[
            "--text",
            "--duration",
            "7",
            "--prometheus",
            prom.to_str().unwrap(),
        ],
        &format!("{}\nnot a record\n{}\n", pg_ok(), qd_failed()),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: stdin:2: not a result record"),
        "{}",
        out.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.path().join("backup_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["status"], "partial");
    assert_eq!(report["duration_seconds"], 7);
    assert_eq!(
        report["components"]["postgres"]["file"],
        "shop_20261126_150401.sql.gz"
    );
    assert_eq!(report["components"]["qdrant"]["status"], "failed");
    assert_eq!(report["statistics"]["postgres_backups"], 2);
    assert_eq!(report["statistics"]["weekly_snapshots"], 1);
    assert_eq!(
        report["statistics"]["total_size_bytes"], 3100,
        "hard link counted once, the globals once, operator file not at all"
    );
    // The failed component, and the line that could not be read: never dropped.
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[1]
        .as_str()
        .unwrap()
        .starts_with("stdin:2: not a result record"));
    assert!(out.stdout.contains("status partial"), "{}", out.stdout);
    let metrics = fs::read_to_string(&prom).unwrap();
    assert!(metrics.contains("backup_component_success{component=\"qdrant\"} 0"));
    // 2026-11-26 15:04:01 UTC, from the newest artifact's name.
    assert!(metrics.contains(
        "backup_component_last_success_timestamp_seconds{component=\"postgres\"} 1795705441"
    ));
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(root.path().join("backup_report.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn an_empty_run_is_reported_as_failed() {
    let root = tree();
    let out = run_with_stdin(&Tool::new(BIN).env("BACKUP_DIR", root.path()), &[], "");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.path().join("backup_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(
        report["errors"][0],
        "no component ran: no result records were given"
    );
}

#[test]
fn records_can_come_from_files() {
    let root = tree();
    let records = root.path().join("records.jsonl");
    fs::write(&records, format!("{}\n", pg_ok())).unwrap();
    let out = Tool::new(BIN).env("BACKUP_DIR", root.path()).run(&[
        records.to_str().unwrap(),
        "--type",
        "incremental",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.path().join("backup_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["status"], "completed");
    assert_eq!(report["backup_type"], "incremental");
}

#[test]
fn a_missing_backup_dir_is_a_configuration_error() {
    let out = Tool::new(BIN).run(&["--backup-dir", "/nonexistent/x", "/dev/null"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("/nonexistent/x does not exist"));
}

#[test]
fn check_schedule_refuses_what_crond_cannot_run() {
    let t = Tool::new(BIN).env("TZ", "Europe/Berlin");
    let out = t
        .clone()
        .env("BACKUP_SCHEDULE", "0 3 * * 0")
        .run(&["--check-schedule"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("schedule \"0 3 * * 0\": next run at "),
        "{}",
        out.stdout
    );
    let out = t
        .clone()
        .env("BACKUP_SCHEDULE", "0 2 30 2 *")
        .run(&["--check-schedule"]);
    out.assert_failed("schedule check", 2, "never fires", "no secret here");
    for bad in ["0 2 * *", "0 25 * * *", "@daily", "0 2 L * *"] {
        let out = t
            .clone()
            .env("BACKUP_SCHEDULE", bad)
            .run(&["--check-schedule"]);
        out.assert_failed(
            "schedule check",
            2,
            "is not a cron schedule crond can run",
            "no secret here",
        );
    }
}

#[test]
fn health_is_a_fresh_completed_report() {
    let root = tree();
    let t = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .env("BACKUP_SCHEDULE", "* * * * *");
    // No report and no start time: a due run is missing.
    let out = t.run(&["--health", "--grace-minutes", "0"]);
    out.assert_failed(
        "health check",
        1,
        "unhealthy: no backup_report.json",
        "no secret here",
    );

    let out = run_with_stdin(&t, &[], &pg_ok());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The drills are judged too (BACKUP_RESTORE_TEST=weekly, the default):
    // none in a tree whose service start is unknown is unhealthy.
    let out = t.run(&["--health"]);
    out.assert_failed(
        "health check",
        1,
        "unhealthy: no restore drill in the last 8 days",
        "no secret here",
    );
    let out = t
        .clone()
        .env("BACKUP_RESTORE_TEST", "never")
        .run(&["--health"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    fs::write(
        root.path().join("restore_test.json"),
        format!(
            "{{\"components\":{{\"postgres\":{{\"status\":\"success\",\"timestamp\":\"{now}\",\
             \"last_success\":\"{now}\",\"duration_seconds\":2.5}}}}}}"
        ),
    )
    .unwrap();
    let out = t.run(&["--health"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("healthy: the last backup")
            && out.stdout.contains("restore drill passed within 8 days"),
        "{}",
        out.stdout
    );
    // The next report carries the drill, and its metrics.
    let metrics = root.path().join("metrics.prom");
    let out = run_with_stdin(&t, &["--prometheus", metrics.to_str().unwrap()], &pg_ok());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(root.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["restore_test"]["postgres"]["status"], "success");
    assert!(fs::read_to_string(&metrics)
        .unwrap()
        .contains("backup_restore_test_success{component=\"postgres\"} 1\n"));
    let out = run_with_stdin(&t, &[], &pg_ok());
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    let out = run_with_stdin(&t, &[], &format!("{}\n{}", pg_ok(), qd_failed()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = t.run(&["--health"]);
    out.assert_failed(
        "health check",
        1,
        "is partial: qdrant: GET",
        "no secret here",
    );
}

#[test]
fn unreadable_input_and_a_silent_component_fail_closed() {
    let root = tree();
    let t = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .env("TZ", "UTC");
    let previous = root.path().join("backup_report.json");
    fs::write(&previous, "{\"status\":\"completed\"}").unwrap();
    // An invalid byte, a record in capitals, and minio selected but silent.
    let mut stdin = format!("{}\n", pg_ok()).into_bytes();
    stdin.extend_from_slice(b"\xff\xfe\n");
    stdin.extend_from_slice(br#"{"component":"n8n","status":"FAILED","duration_seconds":1}"#);
    stdin.push(b'\n');
    let out = run_with_stdin_bytes(
        &t,
        &[
            "--component",
            "postgres",
            "--component",
            "minio",
            "--component",
            "n8n",
        ],
        &stdin,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&previous).unwrap()).unwrap();
    assert_eq!(report["status"], "partial", "{report}");
    assert_eq!(report["components"]["postgres"]["status"], "success");
    assert_eq!(report["components"]["minio"]["status"], "failed");
    assert_eq!(report["components"]["n8n"]["status"], "failed");
    let errors: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("minio: no result record")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown status \"FAILED\"")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("stdin:2: not a result record")),
        "{errors:?}"
    );
}

/// The records as the tools really print them (not copies): a qdrant-snap
/// success against the stand-in and a pg-dumpwrap failure against a port
/// nothing listens on.
#[test]
fn the_report_reads_the_records_the_tools_really_print() {
    let root = tempfile::tempdir().unwrap();
    let server = test_harness::qdrant::QdrantStandin::start(None);
    server.add_collection("documents", 4, 20);
    let bins = test_harness::script::bin_dir();
    let qdrant = Tool::new(bins.join("qdrant-snap"))
        .env("QDRANT_URL", &server.url)
        .env("BACKUP_DIR", root.path())
        .run(&["backup"]);
    assert_eq!(qdrant.code, Some(0), "{}", qdrant.stderr);
    let postgres = Tool::new(bins.join("pg-dumpwrap"))
        .env("POSTGRES_HOST", "127.0.0.1")
        .env("POSTGRES_PORT", test_harness::free_port().to_string())
        .env("POSTGRES_PASSWORD", "pw-unused-3")
        .env("BACKUP_DIR", root.path())
        .run(&["backup"]);
    assert_eq!(postgres.code, Some(1), "{}", postgres.stderr);

    let t = Tool::new(BIN).env("BACKUP_DIR", root.path());
    let args = ["--component", "qdrant", "--component", "postgres"];
    let out = run_with_stdin(&t, &args, &format!("{}{}", qdrant.stdout, postgres.stdout));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.path().join("backup_report.json")).unwrap())
            .unwrap();
    let printed = |o: &test_harness::Output| -> serde_json::Value {
        serde_json::from_str(o.stdout.trim()).unwrap()
    };
    let (qd, pg) = (printed(&qdrant), printed(&postgres));
    assert_eq!(report["status"], "partial", "{report}");
    assert_eq!(report["components"]["qdrant"]["file"], qd["file"]);
    assert_eq!(
        report["components"]["qdrant"]["size_bytes"],
        qd["size_bytes"]
    );
    assert_eq!(report["components"]["postgres"]["status"], "failed");
    assert_eq!(report["components"]["postgres"]["error"], pg["error"]);
    assert_eq!(report["statistics"]["qdrant_backups"], 1);
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
}

/// Day by day, a dump of `size` bytes appears in the tree and its record
/// (with `sql_bytes` eight times that) is reported, as backup.sh would.
fn report_day(
    root: &std::path::Path,
    day: u32,
    size: usize,
    extra: &[(&str, String)],
) -> test_harness::Output {
    let name = format!("arasul_db_202611{day:02}_020000.sql.gz");
    let pg = root.join("postgres");
    fs::create_dir_all(&pg).unwrap();
    fs::write(pg.join(&name), vec![7u8; size]).unwrap();
    fs::write(pg.join(format!("{name}.sha256")), "x").unwrap();
    let published = backup_common::publish::Published {
        path: format!("postgres/{name}").into(),
        file_name: name,
        size_bytes: size as u64,
        sha256: "ab".repeat(32),
    };
    let record = ResultRecord::success("postgres", &published)
        .with("database", "arasul_db")
        .with("sql_bytes", size * 8)
        .to_line();
    let mut t = Tool::new(BIN)
        .env("BACKUP_DIR", root)
        .without("BACKUP_SHRINK_WARN")
        .without("BACKUP_NOTIFY_URLS")
        .without("BACKUP_NOTIFY_URL")
        .without("BACKUP_NOTIFY_LEVEL");
    for (k, v) in extra {
        t = t.env(k, v.clone());
    }
    let prom = root.join("backup.prom");
    let out = run_with_stdin(
        &t,
        &["--text", "--notify", "--prometheus", prom.to_str().unwrap()],
        &format!("{record}\n"),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out
}

#[test]
fn a_backup_that_shrinks_against_its_recent_past_is_a_warning_everywhere() {
    let root = tempfile::tempdir().unwrap();
    let ntfy = test_harness::receiver::Receiver::start();
    let notify = [(
        "BACKUP_NOTIFY_URLS",
        format!("ntfy://{}/backups?scheme=http", ntfy.authority()),
    )];
    let report = |root: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(root.join("backup_report.json")).unwrap()).unwrap()
    };
    // The first runs: fewer than three earlier dumps, no judgement, even of
    // a dump a hundredth of the others.
    report_day(root.path(), 21, 15_000, &notify);
    report_day(root.path(), 22, 16_000, &notify);
    let out = report_day(root.path(), 23, 150, &notify);
    let r = report(root.path());
    assert!(r.get("warnings").is_none(), "{r}");
    assert_eq!(r["status"], "completed");
    assert!(!out.stdout.contains("warning"), "{}", out.stdout);
    assert!(
        ntfy.take().is_empty(),
        "a completed run without warnings: silence"
    );
    let history = fs::read_to_string(root.path().join("history.jsonl")).unwrap();
    assert_eq!(history.lines().count(), 3, "{history}");

    // Then a dump a tenth of the recent median (15,000 of 15,000, 16,000, 150).
    let out = report_day(root.path(), 24, 1_400, &notify);
    let r = report(root.path());
    assert_eq!(r["status"], "completed", "a warning changes no status");
    assert_eq!(
        r["warnings"],
        serde_json::json!([
            "postgres: arasul_db_20261124_020000.sql.gz is 9% of the recent median (1.4 KiB vs 14.6 KiB)",
            "postgres: arasul_db_20261124_020000.sql.gz holds 10.9 KiB of SQL, 9% of the recent median (10.9 KiB vs 117.2 KiB)"
        ])
    );
    assert!(
        out.stdout
            .contains("warning: postgres: arasul_db_20261124_020000.sql.gz is 9% of"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("report: warning: postgres: arasul_db_"),
        "{}",
        out.stderr
    );
    let metrics = fs::read_to_string(root.path().join("backup.prom")).unwrap();
    assert!(
        metrics.contains("backup_component_anomaly{component=\"postgres\"} 1\n"),
        "{metrics}"
    );
    // Level error: a completed run with a warning is worth a message.
    let sent = ntfy.take();
    assert_eq!(sent.len(), 1);
    let m = sent[0].json();
    assert!(
        m["title"]
            .as_str()
            .unwrap()
            .starts_with("backup completed with 2 warnings on "),
        "{m}"
    );
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("warning: postgres: arasul_db_20261124"),
        "{m}"
    );

    // A stricter threshold flags what 50 % lets through; the default does not.
    report_day(root.path(), 25, 9_000, &notify);
    assert!(report(root.path()).get("warnings").is_none());
    let metrics = fs::read_to_string(root.path().join("backup.prom")).unwrap();
    assert!(metrics.contains("backup_component_anomaly{component=\"postgres\"} 0\n"));
    report_day(
        root.path(),
        26,
        7_000,
        &[notify[0].clone(), ("BACKUP_SHRINK_WARN", "90%".into())],
    );
    assert_eq!(report(root.path())["warnings"].as_array().unwrap().len(), 2);
    ntfy.take();
}

#[test]
fn kept_records_make_one_report_of_components_that_run_on_their_own() {
    let root = tempfile::tempdir().unwrap();
    let t = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .env("BACKUP_KEEP_RECORDS", "true");
    let report = || -> serde_json::Value {
        serde_json::from_slice(&fs::read(root.path().join("backup_report.json")).unwrap()).unwrap()
    };
    let components = |r: &serde_json::Value| -> Vec<String> {
        r["components"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    // The postgres CronJob, then the n8n one: the second report has both.
    let out = run_with_stdin(&t, &["--component", "postgres"], &format!("{}\n", pg_ok()));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let n8n = r#"{"component":"n8n","status":"success","file":"workflows_20261126_150500.json","size_bytes":900,"duration_seconds":1,"sha256":"ab"}"#;
    let out = run_with_stdin(&t, &["--component", "n8n"], &format!("{n8n}\n"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = report();
    assert_eq!(components(&r), ["n8n", "postgres"]);
    assert_eq!(r["status"], "completed");
    // The maintenance job's report, with no records of its own: the same.
    let out = run_with_stdin(&t, &[], "");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(components(&report()), ["n8n", "postgres"]);
    assert_eq!(report()["status"], "completed");
    // A selected component that said nothing is failed, and stays so.
    let out = run_with_stdin(&t, &["--component", "qdrant"], "");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run_with_stdin(&t, &[], "");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = report();
    assert_eq!(r["status"], "partial");
    assert_eq!(r["components"]["qdrant"]["status"], "failed");
    assert_eq!(components(&r), ["n8n", "postgres", "qdrant"]);
    // Each artifact once in the history, however often it was reported.
    let history = fs::read_to_string(root.path().join("history.jsonl")).unwrap();
    assert_eq!(
        history.matches("shop_20261126_150401.sql.gz").count(),
        1,
        "{history}"
    );
    // Without the setting, a report is its run's alone, as it always was.
    let out = run_with_stdin(
        &Tool::new(BIN).env("BACKUP_DIR", root.path()),
        &[],
        &format!("{n8n}\n"),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(components(&report()), ["n8n"]);
}

/// A bad setting is the report's warning, never the end of the report: the
/// run is reported (and notified) with the default, the variable named.
#[test]
fn bad_settings_are_named_in_the_report_and_never_stop_it() {
    let bad = [
        ("BACKUP_RETENTION_DAYS", "abc"),
        ("BACKUP_RETENTION_WEEKLY", "-1"),
        ("BACKUP_NOTIFY_LEVEL", "errors"),
        ("BACKUP_RESTORE_TEST", "sometimes"),
        ("BACKUP_SHRINK_WARN", "abc"),
        ("BACKUP_OFFSITE_MAX_AGE_HOURS", "-5"),
    ];
    let root = tree();
    let receiver = test_harness::receiver::Receiver::start();
    let mut t = Tool::new(BIN).env("BACKUP_DIR", root.path()).env(
        "BACKUP_NOTIFY_URLS",
        format!("generic+{}/hook", receiver.url),
    );
    for (k, v) in bad {
        t = t.env(k, v);
    }
    let out = run_with_stdin(&t, &["--component", "postgres", "--notify"], &pg_ok());
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(root.path().join("backup_report.json")).unwrap()).unwrap();
    let warnings = report["warnings"].as_array().unwrap();
    for (k, v) in bad {
        assert!(
            warnings.iter().any(|w| w
                .as_str()
                .unwrap()
                .starts_with(&format!("{k}=\"{v}\" is not"))),
            "{k}: {report}"
        );
    }
    assert_eq!(
        receiver.take().len(),
        1,
        "the default level (error) notifies warnings"
    );
    // One too large for a date: no panic after the report.
    let out = run_with_stdin(
        &Tool::new(BIN)
            .env("BACKUP_DIR", root.path())
            .env("BACKUP_RETENTION_DAYS", "1000000000"),
        &["--component", "postgres"],
        &pg_ok(),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("BACKUP_RETENTION_DAYS=\"1000000000\""),
        "{}",
        out.stderr
    );
    // The entrypoint's check names them all and refuses.
    let mut check = Tool::new(BIN);
    for (k, v) in bad {
        check = check.env(k, v);
    }
    let out = check.run(&["--check-settings"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), bad.len(), "{}", out.stdout);
}

/// A report that cannot be written (here: its name taken by a folder, as a
/// full disk refuses it) still goes out as a notification, and the run fails.
#[test]
fn a_report_that_cannot_be_written_is_still_notified() {
    let root = tree();
    let stale = root.path().join("backup_report.json");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("x"), b"x").unwrap();
    let receiver = test_harness::receiver::Receiver::start();
    let t = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .env("BACKUP_NOTIFY_LEVEL", "always")
        .env(
            "BACKUP_NOTIFY_URLS",
            format!("generic+{}/hook", receiver.url),
        );
    let out = run_with_stdin(&t, &["--component", "postgres", "--notify"], &pg_ok());
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the report could not be written"),
        "{}",
        out.stderr
    );
    let sent = receiver.take();
    assert_eq!(sent.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["status"], "partial", "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("could not be written"),
        "{body}"
    );
}

#[test]
fn an_interrupted_run_is_reported_as_interrupted() {
    let root = tree();
    let t = Tool::new(BIN).env("BACKUP_DIR", root.path());
    let out = run_with_stdin(
        &t,
        &["--component", "postgres", "--interrupted", "SIGTERM"],
        &pg_ok(),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(root.path().join("backup_report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "interrupted", "{report}");
    assert!(report["errors"][0]
        .as_str()
        .unwrap()
        .contains("interrupted by SIGTERM"));
}
