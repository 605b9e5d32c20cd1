//! backup-prune: applies the retention policy to the backup tree.
//!
//! `policy` decides (pure); `inventory` reads the tree; this module takes the
//! locks, carries out the plan and reports it.

pub mod cli;
pub mod inventory;
pub mod policy;
pub mod promote;

use anyhow::{bail, Context, Result};
use backup_common::crypt::Decryption;
use backup_common::{lock, log, Component};
use chrono::Local;
use policy::{Policy, Target};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const COMPONENT: &str = "prune";

pub fn run(cli: cli::Cli) -> i32 {
    match &cli.command {
        Some(cli::Command::Promote(args)) => {
            backup_common::tool::run(COMPONENT, "promote", || promote(args))
        }
        Some(cli::Command::Relink(args)) => {
            backup_common::tool::run(COMPONENT, "relink", || relink(&args.tree.backup_dir))
        }
        None => backup_common::tool::run(COMPONENT, "prune", || prune(&cli)),
    }
}

/// Every series' `*_latest` link onto its newest backup, under each
/// component's lock. A pulled tree has no links (links from a remote are
/// never made), and a file dated in the future never becomes "latest".
fn relink(root: &Path) -> Result<()> {
    // Never a file dated in the future, as restore plans refuse them.
    let not_after = backup_common::naming::latest_believable_timestamp();
    let mut out = std::io::stdout().lock();
    for component in backup_common::Component::ALL {
        let dir = root.join(component.name());
        if !dir.is_dir() {
            continue;
        }
        let _lock = lock::lock_dir(&dir)?;
        let found = backup_common::folder::scan(&dir, component)
            .with_context(|| format!("cannot read {}", dir.display()))?;
        for (link, target, retired) in newest_links(&found.backups, not_after) {
            backup_common::publish::point_link(&dir, &link, &target)?;
            if let Some(other) = retired {
                let other = dir.join(other);
                if std::fs::symlink_metadata(&other).is_ok_and(|m| m.file_type().is_symlink()) {
                    std::fs::remove_file(&other)
                        .with_context(|| format!("cannot remove {}", other.display()))?;
                }
            }
            writeln!(
                out,
                "{}",
                serde_json::json!({"link": dir.join(&link), "target": target})
            )?;
        }
    }
    Ok(())
}

/// Per series, the link to point, its target and the link of the other kind
/// (plain/encrypted) to retire. Pure.
fn newest_links(
    backups: &[backup_common::ArtifactName],
    not_after: chrono::NaiveDateTime,
) -> Vec<(String, String, Option<String>)> {
    let mut newest: std::collections::BTreeMap<&str, &backup_common::ArtifactName> =
        Default::default();
    for b in backups.iter().filter(|b| b.timestamp <= not_after) {
        if b.latest_link_name().is_none() {
            continue;
        }
        match newest.get(b.prefix.as_str()) {
            Some(n) if n.timestamp > b.timestamp => {}
            _ => {
                newest.insert(&b.prefix, b);
            }
        }
    }
    newest
        .values()
        .filter_map(|b| {
            Some((
                b.latest_link_name()?,
                b.file_name(),
                b.other_latest_link_name(),
            ))
        })
        .collect()
}

fn promote(args: &cli::PromoteArgs) -> Result<()> {
    let week = match &args.week {
        Some(w) => backup_common::IsoWeek::parse(w).ok_or_else(|| {
            backup_common::usage(format!("--week {w:?} is not YYYY_WNN (date +%G_W%V)"))
        })?,
        None => backup_common::IsoWeek::of(Local::now().date_naive()),
    };
    let root = &args.tree.backup_dir;
    // Under the component's lock, as a backup or a prune would work there.
    let units = backup_common::record::published_units(&args.record)?;
    let component = units[0].component;
    let _lock = lock::lock_dir(&root.join(component.name()))?;
    let decryption = Decryption::from_env(COMPONENT);
    let paths = promote::promote(root, week, &units, &decryption)?;
    let mut out = std::io::stdout().lock();
    for p in paths {
        writeln!(out, "{}", p.display())?;
    }
    Ok(())
}

fn prune(cli: &cli::Cli) -> Result<()> {
    let root = &cli.tree.backup_dir;
    if !root.is_dir() {
        return Err(backup_common::usage(format!(
            "backup folder {} does not exist — check BACKUP_DIR or --backup-dir",
            root.display()
        )));
    }
    std::fs::read_dir(root)
        .map_err(|e| anyhow::anyhow!("cannot read backup folder {}: {e}", root.display()))?;
    // The same per-component locks as the backups: never prune under a running backup.
    // A dry run changes nothing, so it does not wait for anyone.
    let _locks = if cli.dry_run {
        Vec::new()
    } else {
        Component::ALL
            .iter()
            .map(|c| root.join(c.name()))
            .filter(|d| d.is_dir())
            .map(|d| lock::lock_dir(&d))
            .collect::<Result<Vec<_>>>()?
    };

    let policy = Policy {
        daily_days: cli.days,
        weekly_weeks: cli.weeks,
        keep_min: cli.keep_min,
    };
    let now = Local::now();
    // Encrypted incrementals' manifests open only with the identity; without
    // it their chains are kept whole (see `policy::chain_of`).
    let decryption = Decryption::from_env(COMPONENT);
    let mut problems = Vec::new();
    let mut outcome = Outcome::default();
    // One write per line would be a third of the syscalls of a large prune.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Each component folder, then the weekly folders, one inventory at a time.
    let mut apply = |(inv, warnings): (policy::Inventory, Vec<String>)| {
        for warning in &warnings {
            log::log(COMPONENT, warning);
        }
        let plan = policy::plan(&inv, &now, &policy);
        carry_out(root, &plan, cli.dry_run, &mut outcome, &mut out);
    };
    for component in Component::ALL {
        match inventory::scan_component(root, component, std::time::SystemTime::now(), &decryption)
        {
            Ok(found) => apply(found),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        // A weekly snapshot may be the only good copy of a component whose folder is broken.
        problems
            .push("weekly snapshots are not pruned while a component folder has a problem".into());
    } else {
        match inventory::scan_weekly(root) {
            Ok((weekly, warnings)) => apply((
                policy::Inventory {
                    weekly,
                    ..Default::default()
                },
                warnings,
            )),
            Err(problem) => problems.push(problem),
        }
    }
    let _ = out.flush();
    drop(out);
    for problem in &problems {
        log::log(COMPONENT, problem);
    }
    log::log(COMPONENT, &outcome.summary(cli.dry_run));

    let trouble = problems.len() + outcome.failures;
    if trouble > 0 {
        bail!(
            "{trouble} problem(s) in {}, see above; nothing beyond the policy was deleted",
            root.display()
        );
    }
    Ok(())
}

#[derive(Default)]
struct Outcome {
    artifacts: usize,
    weekly: usize,
    temps: usize,
    failures: usize,
}

impl Outcome {
    fn summary(&self, dry_run: bool) -> String {
        let verb = if dry_run { "would delete" } else { "deleted" };
        let failed = if self.failures > 0 {
            format!("; {} failed", self.failures)
        } else {
            String::new()
        };
        format!(
            "{verb} {} artifact(s), {} weekly folder(s), {} temp file(s){failed}",
            self.artifacts, self.weekly, self.temps
        )
    }
}

/// Logs the plan's notes, deletes (unless a dry run) and prints one JSON line per deletion.
fn carry_out(
    root: &Path,
    plan: &policy::Plan,
    dry_run: bool,
    outcome: &mut Outcome,
    out: &mut impl Write,
) {
    for note in &plan.notes {
        log::log(COMPONENT, note);
    }
    for deletion in &plan.deletions {
        let path = path_of(root, &deletion.target);
        let result = if dry_run {
            Ok(())
        } else {
            delete(&path, &deletion.target)
        };
        match result {
            Ok(()) => {
                match deletion.target {
                    Target::Artifact(_) => outcome.artifacts += 1,
                    Target::Weekly(_) => outcome.weekly += 1,
                    Target::Temp(..) => outcome.temps += 1,
                }
                let mut line = serde_json::json!({
                    "path": path.to_string_lossy(),
                    "reason": deletion.reason,
                });
                if dry_run {
                    line["dry_run"] = true.into();
                }
                // A closed stdout must not stop the pruning half-way.
                let _ = writeln!(out, "{line}");
            }
            Err(e) => {
                outcome.failures += 1;
                log::log(COMPONENT, &format!("cannot delete {}: {e}", path.display()));
            }
        }
    }
}

fn path_of(root: &Path, target: &Target) -> PathBuf {
    match target {
        Target::Artifact(a) => root.join(a.component.name()).join(a.name.file_name()),
        Target::Weekly(w) => root.join("weekly").join(w.folder_name()),
        Target::Temp(c, name) => root.join(c.name()).join(name),
    }
}

/// Deletes one target (an artifact with its sidecar).
fn delete(path: &Path, target: &Target) -> std::io::Result<()> {
    match target {
        Target::Weekly(_) => std::fs::remove_dir_all(path)?,
        Target::Temp(..) => std::fs::remove_file(path)?,
        Target::Artifact(_) => {
            std::fs::remove_file(path)?;
            let mut sidecar = path.as_os_str().to_owned();
            sidecar.push(".sha256");
            match std::fs::remove_file(&sidecar) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod relink_tests {
    use super::*;

    #[test]
    fn each_series_links_its_newest_full_backup_and_never_a_future_one() {
        let names: Vec<backup_common::ArtifactName> = [
            "shop_20240101_020000.sql.gz",
            "shop_20240102_020000.sql.gz",
            "shop_20991231_235959.sql.gz",
            "docs_20240101_020000.tar.gz",
            "docs_20240102_020000.incr.tar.gz",
        ]
        .iter()
        .map(|n| backup_common::ArtifactName::parse(n).unwrap())
        .collect();
        let now = backup_common::naming::parse_timestamp("20240103_000000").unwrap();
        let links: Vec<(String, String)> = newest_links(&names, now)
            .into_iter()
            .map(|(l, t, _)| (l, t))
            .collect();
        assert_eq!(
            links,
            [
                (
                    "docs_latest.tar.gz".into(),
                    "docs_20240101_020000.tar.gz".into()
                ),
                (
                    "shop_latest.sql.gz".into(),
                    "shop_20240102_020000.sql.gz".into()
                ),
            ]
        );
    }
}
