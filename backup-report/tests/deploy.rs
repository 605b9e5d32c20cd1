//! The alerting rules (deploy/prometheus) and the Grafana dashboard
//! (deploy/grafana) against the metrics backup-report really writes: every
//! metric they query is one it writes, the rules pass `promtool check rules`
//! and their unit tests pass `promtool test rules`.

use backup_common::ResultRecord;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use test_harness::Tool;

const BIN: &str = env!("CARGO_BIN_EXE_backup-report");

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The metric names a report with every section writes: two series, a drill,
/// an off-site copy, a notification round.
fn written_metrics() -> BTreeSet<String> {
    let root = tempfile::tempdir().unwrap();
    let pg = root.path().join("postgres");
    fs::create_dir_all(&pg).unwrap();
    let mut records = String::new();
    for db in ["shop", "crm"] {
        let name = format!("{db}_20261129_020000.sql.gz");
        fs::write(pg.join(&name), b"x").unwrap();
        fs::write(pg.join(format!("{name}.sha256")), "x").unwrap();
        let published = backup_common::publish::Published {
            path: format!("postgres/{name}").into(),
            file_name: name,
            size_bytes: 1,
            sha256: "ab".repeat(32),
        };
        let mut r = ResultRecord::success("postgres", &published).with("sql_bytes", 8);
        r.series = Some(db.into());
        records.push_str(&r.to_line());
        records.push('\n');
    }
    records.push_str(&ResultRecord::failed("minio", "down".into()).to_line());
    records.push('\n');
    fs::write(
        root.path().join("restore_test.json"),
        r#"{"components": {"postgres": {"status": "success", "timestamp": "2026-11-29T02:05:00Z",
            "last_success": "2026-11-29T02:05:00Z", "duration_seconds": 4.5}}}"#,
    )
    .unwrap();
    fs::write(
        root.path().join("offsite.json"),
        r#"{"status": "success", "timestamp": "2026-11-29T02:06:00Z",
            "last_success": "2026-11-29T02:06:00Z", "mode": "copy", "files": 2, "bytes": 9,
            "duration_seconds": 3}"#,
    )
    .unwrap();
    let file = root.path().join(".records");
    fs::write(&file, records).unwrap();
    let prom = root.path().join("backup.prom");
    let out = Tool::new(BIN)
        .env("BACKUP_DIR", root.path())
        .env(
            "BACKUP_NOTIFY_URLS",
            format!(
                "ntfy://127.0.0.1:{}/t?scheme=http",
                test_harness::free_port()
            ),
        )
        .without("BACKUP_NOTIFY_URL")
        .run(&[
            file.to_str().unwrap(),
            "--notify",
            "--prometheus",
            prom.to_str().unwrap(),
        ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = fs::read_to_string(&prom).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Every `backup_…` name in a PromQL expression.
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("backup_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .expect("promtool (scripts/test.sh installs Debian's prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alerting_rules_pass_promtool_and_query_only_written_metrics() {
    let checked = promtool(&["check", "rules", "alerts.yml"]);
    assert!(checked.contains("SUCCESS: 10 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    let written = written_metrics();
    let rules = fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    let exprs: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert_eq!(exprs.len(), 10);
    let mut used = BTreeSet::new();
    for e in exprs {
        for m in metrics_in(e) {
            assert!(
                written.contains(&m),
                "alerts.yml queries {m}, which backup-report does not write ({written:?})"
            );
            used.insert(m);
        }
    }
    // What the issue asks the rules to catch: failed, overdue, anomaly,
    // drill stale, off-site stale.
    for m in [
        "backup_component_success",
        "backup_component_last_success_timestamp_seconds",
        "backup_component_anomaly",
        "backup_restore_test_timestamp_seconds",
        "backup_offsite_last_success_timestamp_seconds",
    ] {
        assert!(used.contains(m), "no rule on {m}");
    }
}

#[test]
fn the_dashboard_queries_only_written_metrics_and_imports_with_any_datasource() {
    let written = written_metrics();
    let dash: serde_json::Value =
        serde_json::from_slice(&fs::read(deploy().join("grafana/backup-kit.json")).unwrap())
            .unwrap();
    assert_eq!(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate panel id {}",
            p["id"]
        );
        let g = &p["gridPos"];
        assert!(
            g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
            "{p}"
        );
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let metrics = metrics_in(expr);
            assert!(
                !metrics.is_empty(),
                "{} queries no backup metric: {expr}",
                p["title"]
            );
            for m in metrics {
                assert!(
                    written.contains(&m),
                    "{} queries {m}, which backup-report does not write",
                    p["title"]
                );
                used.insert(m);
            }
        }
    }
    assert!(used.len() >= 15, "{used:?}");
}
