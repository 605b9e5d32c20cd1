//! `--restore-test`: the newest PostgreSQL dump and Qdrant archive restored into
//! scratch targets, compared with what the backup recorded, then dropped — by
//! the component tools themselves (`pg-dumpwrap restore-test`, `qdrant-snap
//! restore-test`), which this only runs: backup-verify reads files and talks to
//! no service.

use crate::{Cli, Verdict};
use anyhow::{bail, Context, Result};
use backup_common::Component;
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub fn run(cli: &Cli) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    if let Some(dump) = latest(&cli.tree.backup_dir, Component::Postgres, ".sql.gz") {
        let failure = postgres(&dump)
            .err()
            .map(|e| backup_common::exit::one_line(&e));
        verdicts.push(Verdict {
            path: dump,
            kind: Some("postgres restore test"),
            failure,
            header_only: false,
        });
    }
    if let Some(archive) = latest(&cli.tree.backup_dir, Component::Qdrant, ".tar.gz") {
        let failure = qdrant(&archive)
            .err()
            .map(|e| backup_common::exit::one_line(&e));
        verdicts.push(Verdict {
            path: archive,
            kind: Some("qdrant restore test"),
            failure,
            header_only: false,
        });
    }
    if verdicts.is_empty() {
        verdicts.push(Verdict {
            path: cli.tree.backup_dir.clone(),
            kind: Some("restore test"),
            failure: Some("no *_latest PostgreSQL or Qdrant backup to restore".into()),
            header_only: false,
        });
    }
    verdicts
}

/// The newest `*_latest<ext>` link of `component`'s folder that leads to a file.
fn latest(root: &Path, component: Component, ext: &str) -> Option<PathBuf> {
    let dir = root.join(component.name());
    let found = backup_common::folder::scan(&dir, component).ok()?;
    let plain = format!("_latest{ext}");
    let encrypted = format!("{plain}{}", backup_common::crypt::SUFFIX);
    found
        .latest
        .iter()
        .map(|(name, _)| dir.join(name))
        .rfind(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            // The cluster's globals are no database to drill.
            (name.ends_with(&plain) || name.ends_with(&encrypted))
                && !name.starts_with("globals_")
                && p.exists()
        })
}

/// Runs `<tool> restore-test <archive>` (the tool that knows the service does
/// the restoring; it reads its connection settings from the environment, as in
/// a backup run). The failure is the tool's own one-line error.
fn run_tool(tool: &str, archive: &Path) -> Result<()> {
    let program = sibling(tool);
    let out = std::process::Command::new(&program)
        .arg("restore-test")
        .arg(archive)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {} — is it installed?", program.display()))?;
    if out.status.success() {
        return Ok(());
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

fn postgres(dump: &Path) -> Result<()> {
    run_tool("pg-dumpwrap", dump)
}

fn qdrant(archive: &Path) -> Result<()> {
    run_tool("qdrant-snap", archive)
}
