//! `--restore-test`, the drill: the newest backup of every series (or what a
//! weekly snapshot holds: `--drill-from`) restored into scratch targets by the
//! component tools themselves (`pg-dumpwrap restore-test` for each database
//! and, in a transaction rolled back, the globals; `minio-snap restore-test`
//! for each bucket's chain; `qdrant-snap restore-test` with the aliases),
//! compared with what the backup recorded, and removed again; n8n's files are
//! checked here (no scratch n8n exists: the verdict says so), the credentials
//! decrypted with N8N_ENCRYPTION_KEY when it is given. backup-verify reads
//! files and runs the tools; it talks to no service itself.
//!
//! Every drill is one verdict (what was restored, what compared, how long),
//! and the drill's outcome per component is kept in
//! `$BACKUP_DIR/restore_test.json` for backup-report.

use crate::plan::{self, Point, Step};
use crate::{Cli, Keys, Verdict};
use anyhow::{bail, Context, Result};
use backup_common::Component;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

/// The file backup-report reads the last drill from.
pub const RESULT_FILE: &str = "restore_test.json";

/// One drill's outcome.
#[derive(Debug, Clone)]
pub struct Drilled {
    pub component: Component,
    pub series: String,
    pub path: PathBuf,
    pub seconds: f64,
    /// What the tool reported (restored, compared), or why it failed.
    pub outcome: Result<Value, String>,
}

pub fn run(cli: &Cli, keys: &Keys) -> Result<Vec<Verdict>> {
    let point = match &cli.drill_from {
        Some(p) => Point::parse(p).map_err(backup_common::usage)?,
        None => Point::Latest,
    };
    // The drill takes what the plan would restore; what it skips is named
    // by the checks (orphans) and by restore.sh's plan, not failed here.
    let steps = plan::plan(
        &cli.tree.backup_dir,
        point,
        &cli.selected_components(),
        false,
    )
    .context("nothing to drill")?
    .steps;
    let drilled: Vec<Drilled> = steps
        .iter()
        .map(|(p, path)| {
            let started = Instant::now();
            let outcome = drill(p.component, p.step, path, keys)
                .map_err(|e| backup_common::exit::one_line(&e));
            Drilled {
                component: p.component,
                series: p.series.clone(),
                path: path.clone(),
                seconds: started.elapsed().as_secs_f64(),
                outcome,
            }
        })
        .collect();
    keep(&cli.tree.backup_dir, &drilled)?;
    Ok(drilled.iter().map(verdict).collect())
}

fn verdict(d: &Drilled) -> Verdict {
    let (failure, detail) = match &d.outcome {
        Ok(v) => (None, Some(summary(v, d.seconds))),
        Err(e) => (Some(e.clone()), None),
    };
    Verdict {
        path: d.path.clone(),
        kind: Some(match d.component {
            Component::Postgres => "postgres restore test",
            Component::Minio => "minio restore test",
            Component::Qdrant => "qdrant restore test",
            Component::N8n => "n8n restore test",
        }),
        failure,
        header_only: false,
        detail,
        drill: d.outcome.as_ref().ok().cloned(),
    }
}

/// One line of what a drill did, from the tool's own report.
fn summary(v: &Value, seconds: f64) -> String {
    let figure = |k: &str| {
        v.get(k)
            .filter(|x| !x.is_null())
            .map(|x| format!("{x} {k}"))
    };
    let figures: Vec<String> = [
        "tables",
        "rows",
        "roles",
        "objects",
        "bytes",
        "collections",
        "points",
        "aliases",
        "workflows",
        "credentials",
    ]
    .iter()
    .filter_map(|k| figure(k))
    .collect();
    let into = v["scratch"]
        .as_str()
        .or(v["scratch_bucket"].as_str())
        .map(|s| format!(" into {s}"))
        .unwrap_or_default();
    let note = v["note"]
        .as_str()
        .map(|n| format!("; {n}"))
        .unwrap_or_default();
    let did = if v["restored"] == false {
        "checked"
    } else {
        "restored"
    };
    format!(
        "drill: {did}{into}, compared {} in {seconds:.1} s{note}",
        if figures.is_empty() {
            "the content".to_owned()
        } else {
            figures.join(", ")
        }
    )
}

fn drill(component: Component, step: Step, path: &Path, keys: &Keys) -> Result<Value> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if backup_common::crypt::is_encrypted(&name) && !keys.age.has_identity() {
        bail!(
            "encrypted, and BACKUP_AGE_IDENTITY_FILE is not set: the drill cannot decrypt it \
             (set BACKUP_AGE_IDENTITY_FILE, or drill on a host that holds the identity and set \
             BACKUP_RESTORE_TEST=never here)"
        );
    }
    match (component, step) {
        (Component::Postgres, Step::Globals) => {
            run_tool("pg-dumpwrap", &["restore-test", "--globals"], path)
        }
        (Component::Postgres, _) => run_tool("pg-dumpwrap", &["restore-test"], path),
        (Component::Minio, _) => run_tool("minio-snap", &["restore-test"], path),
        (Component::Qdrant, _) => run_tool("qdrant-snap", &["restore-test"], path),
        (Component::N8n, step) => n8n(step, path, keys),
    }
}

/// n8n: no scratch instance to import into, so the file is read and checked
/// as an import would read it, and credentials are decrypted with the key.
fn n8n(step: Step, path: &Path, keys: &Keys) -> Result<Value> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let plain = keys.age.reader(std::io::BufReader::new(file), &name)?;
    let value: Value = serde_json::from_reader(plain).context("not valid JSON")?;
    if step == Step::Credentials {
        let (count, note) = match &keys.n8n {
            Some(key) => (
                backup_formats::n8n::check_credentials_key(&value, key.expose())?,
                "every credential decrypted with N8N_ENCRYPTION_KEY; no scratch n8n to import into",
            ),
            None => (
                backup_formats::n8n::validate_credentials(&value)?.len(),
                "not decrypted: N8N_ENCRYPTION_KEY is not set; no scratch n8n to import into",
            ),
        };
        return Ok(json!({"credentials": count, "restored": false, "note": note}));
    }
    let count = backup_formats::n8n::validate_workflows(&value)?.len();
    Ok(json!({"workflows": count, "restored": false,
              "note": "read as n8n import:workflow reads it; no scratch n8n to import into"}))
}

/// Runs `<tool> <args> <file>` (the tool that knows the service does the
/// restoring; it reads its connection settings from the environment, as in a
/// backup run): its report (the JSON line it prints), or its own one-line
/// error.
fn run_tool(tool: &str, args: &[&str], file: &Path) -> Result<Value> {
    let program = sibling(tool);
    // A signal to the drill is passed on to the tool, which removes its
    // scratch target (a copy of production data) before it ends.
    let child = backup_common::cleanup::spawn_passing_signals(
        std::process::Command::new(&program)
            .args(args)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .with_context(|| format!("cannot run {} — is it installed?", program.display()))?;
    let pid = child.id();
    let out = child.wait_with_output();
    backup_common::cleanup::forget_child(pid);
    let out = out.with_context(|| format!("cannot wait for {}", program.display()))?;
    if out.status.success() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        return Ok(stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .unwrap_or(Value::Null));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find_map(|l| l.split_once("restore-test failed: ").map(|(_, r)| r))
        .or_else(|| stderr.lines().last())
        .unwrap_or("no message");
    bail!("{tool} restore-test: {reason}")
}

/// A tool beside this binary (as installed), else on PATH.
fn sibling(tool: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(tool)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// The drill per component (pure): passed only if every series passed; when,
/// which artifacts, how long, each series' figures or failure, and when the
/// component's drill last passed (carried over from `previous` when this one
/// failed; components not drilled now keep their previous entry).
pub fn by_component(drilled: &[Drilled], when: &str, previous: Option<&Value>) -> Value {
    let mut components = previous
        .and_then(|p| p["components"].as_object())
        .cloned()
        .unwrap_or_default();
    for c in Component::ALL {
        let mine: Vec<&Drilled> = drilled.iter().filter(|d| d.component == c).collect();
        if mine.is_empty() {
            continue;
        }
        let failed: Vec<String> = mine
            .iter()
            .filter_map(|d| {
                d.outcome
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", d.series))
            })
            .collect();
        let series: serde_json::Map<String, Value> = mine
            .iter()
            .map(|d| {
                let mut v = json!({
                    "artifact": d.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "status": if d.outcome.is_ok() { "success" } else { "failed" },
                    "duration_seconds": (d.seconds * 10.0).round() / 10.0,
                });
                match &d.outcome {
                    Ok(report) => v["compared"] = report.clone(),
                    Err(e) => v["error"] = e.as_str().into(),
                }
                (d.series.clone(), v)
            })
            .collect();
        let last_success = if failed.is_empty() {
            Value::from(when)
        } else {
            components
                .get(c.name())
                .map(|p| p["last_success"].clone())
                .unwrap_or(Value::Null)
        };
        let mut entry = json!({
            "status": if failed.is_empty() { "success" } else { "failed" },
            "timestamp": when,
            "last_success": last_success,
            "duration_seconds": (mine.iter().map(|d| d.seconds).sum::<f64>() * 10.0).round() / 10.0,
            "series": series,
        });
        if !failed.is_empty() {
            entry["error"] = failed.join("; ").into();
        }
        components.insert(c.name().to_owned(), entry);
    }
    json!({"components": components})
}

/// Writes `restore_test.json` into the tree (atomically, 0600): the drill's
/// record for backup-report.
fn keep(root: &Path, drilled: &[Drilled]) -> Result<()> {
    let when = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let previous: Option<Value> = std::fs::read(root.join(RESULT_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut text = serde_json::to_string_pretty(&by_component(drilled, &when, previous.as_ref()))?;
    text.push('\n');
    backup_common::publish::write_atomically(root, RESULT_FILE, text.as_bytes())
        .with_context(|| format!("cannot write {}", root.join(RESULT_FILE).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drilled(component: Component, series: &str, outcome: Result<Value, String>) -> Drilled {
        Drilled {
            component,
            series: series.into(),
            path: PathBuf::from(format!("/t/{series}_20240101_000000.x")),
            seconds: 1.25,
            outcome,
        }
    }

    #[test]
    fn a_component_passes_only_if_every_series_did() {
        let all = [
            drilled(Component::Postgres, "shop", Ok(json!({"rows": 5}))),
            drilled(
                Component::Postgres,
                "crm",
                Err("3 rows, the dump holds 4".into()),
            ),
            drilled(Component::Minio, "documents", Ok(json!({"objects": 2}))),
        ];
        let before = json!({"components": {
            "postgres": {"status": "success", "last_success": "2023-12-25T00:00:00.000Z"},
            "n8n": {"status": "success", "last_success": "2023-12-25T00:00:00.000Z"}}});
        let v = by_component(&all, "2024-01-01T00:00:00.000Z", Some(&before));
        let pg = &v["components"]["postgres"];
        assert_eq!(pg["status"], "failed");
        assert_eq!(pg["error"], "crm: 3 rows, the dump holds 4");
        assert_eq!(pg["duration_seconds"], 2.5);
        assert_eq!(pg["series"]["shop"]["compared"]["rows"], 5);
        assert_eq!(
            pg["last_success"], "2023-12-25T00:00:00.000Z",
            "the last pass, kept"
        );
        assert_eq!(v["components"]["minio"]["status"], "success");
        assert_eq!(
            v["components"]["minio"]["last_success"],
            "2024-01-01T00:00:00.000Z"
        );
        assert_eq!(
            v["components"]["n8n"], before["components"]["n8n"],
            "not drilled: kept"
        );
        assert!(v["components"].get("qdrant").is_none());
    }

    #[test]
    fn a_verdict_says_what_was_restored_and_compared() {
        let s = summary(
            &json!({"scratch": "shop_verify_7", "tables": 3, "rows": 900}),
            2.04,
        );
        assert_eq!(
            s,
            "drill: restored into shop_verify_7, compared 3 tables, 900 rows in 2.0 s"
        );
    }
}
