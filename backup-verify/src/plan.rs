//! `--plan`: what a restore of the whole stack from one point of the tree
//! uses, step by step in the order the services need it — the cluster's
//! globals, every database, every bucket (the newest archive of its chain),
//! the Qdrant collections, n8n's credentials, then its workflows. Which
//! artifact each series contributes is a pure choice (`choose`), unit-tested
//! without a filesystem; scripts/restore.sh prints and runs the plan.

use anyhow::{bail, Context, Result};
use backup_common::naming::parse_timestamp;
use backup_common::{folder, ArtifactName, Component, IsoWeek};
use chrono::NaiveDateTime;
use std::path::{Path, PathBuf};

/// The point in the tree a restore is taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The newest backup of every series (what the `*_latest` links name).
    Latest,
    /// What a weekly snapshot holds.
    Week(IsoWeek),
    /// The newest backup of every series made at or before this moment
    /// (local time, as the artifacts are named).
    At(NaiveDateTime),
}

impl Point {
    /// `latest`, `weekly/YYYY_WNN` (or `YYYY_WNN`), or `YYYYMMDD_HHMMSS`.
    pub fn parse(text: &str) -> Result<Point, String> {
        let week = text.strip_prefix("weekly/").unwrap_or(text);
        if text == "latest" {
            Ok(Point::Latest)
        } else if let Some(w) = IsoWeek::parse(week.trim_end_matches('/')) {
            Ok(Point::Week(w))
        } else if let Some(t) = parse_timestamp(text) {
            Ok(Point::At(t))
        } else {
            Err(format!(
                "--plan {text:?} is none of latest, weekly/YYYY_WNN or YYYYMMDD_HHMMSS"
            ))
        }
    }
}

/// What a step restores; the order is the order of the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// PostgreSQL roles and tablespaces, before any database that needs them.
    Globals,
    Database,
    /// A MinIO bucket: the newest archive, which brings its chain.
    Bucket,
    Collections,
    /// n8n credentials, before the workflows that use them.
    Credentials,
    Workflows,
}

impl Step {
    pub fn of(component: Component, prefix: &str) -> Step {
        match (component, prefix) {
            (Component::Postgres, "globals") => Step::Globals,
            (Component::Postgres, _) => Step::Database,
            (Component::Minio, _) => Step::Bucket,
            (Component::Qdrant, _) => Step::Collections,
            (Component::N8n, "credentials") => Step::Credentials,
            (Component::N8n, _) => Step::Workflows,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Step::Globals => "globals",
            Step::Database => "database",
            Step::Bucket => "bucket",
            Step::Collections => "collections",
            Step::Credentials => "credentials",
            Step::Workflows => "workflows",
        }
    }
}

/// One step of the plan: a series' artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub component: Component,
    pub step: Step,
    /// The artifact prefix: a database, a bucket, `qdrant`, `workflows`, ….
    pub series: String,
    pub file: String,
}

/// Per series of `backups` (one component folder's, oldest first), the
/// newest made at or before `at` (any, without). Pure.
pub fn choose(
    component: Component,
    backups: &[ArtifactName],
    at: Option<NaiveDateTime>,
) -> Vec<Planned> {
    let mut newest: std::collections::BTreeMap<&str, &ArtifactName> = Default::default();
    for b in backups
        .iter()
        .filter(|b| at.is_none_or(|t| b.timestamp <= t))
    {
        match newest.get(b.prefix.as_str()) {
            Some(n) if n.timestamp > b.timestamp => {}
            _ => {
                newest.insert(&b.prefix, b);
            }
        }
    }
    newest
        .into_iter()
        .map(|(series, b)| Planned {
            component,
            step: Step::of(component, series),
            series: series.to_owned(),
            file: b.file_name(),
        })
        .collect()
}

/// The plan for `point` in the tree at `root`, for `components`, in restore
/// order; each with the path of its artifact.
pub fn plan(
    root: &Path,
    point: Point,
    components: &[Component],
) -> Result<Vec<(Planned, PathBuf)>> {
    let base = match point {
        Point::Week(w) => {
            let dir = root.join("weekly").join(w.folder_name());
            if !dir.is_dir() {
                bail!(
                    "there is no weekly snapshot {} in {}",
                    w.folder_name(),
                    root.join("weekly").display()
                );
            }
            dir
        }
        Point::Latest | Point::At(_) => root.to_owned(),
    };
    let at = match point {
        Point::At(t) => Some(t),
        _ => None,
    };
    let mut steps = Vec::new();
    for &c in components {
        let dir = base.join(c.name());
        let found =
            folder::scan(&dir, c).with_context(|| format!("cannot read {}", dir.display()))?;
        steps.extend(choose(c, &found.backups, at).into_iter().map(|p| {
            let path = dir.join(&p.file);
            (p, path)
        }));
    }
    steps.sort_by(|(a, _), (b, _)| (a.step, &a.series).cmp(&(b.step, &b.series)));
    if steps.is_empty() {
        bail!(
            "no backups to restore from {} at that point — check BACKUP_DIR and the point given",
            base.display()
        );
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<ArtifactName> {
        list.iter()
            .map(|n| ArtifactName::parse(n).unwrap())
            .collect()
    }

    fn files(p: &[Planned]) -> Vec<(&str, &str, &str)> {
        p.iter()
            .map(|p| (p.step.name(), p.series.as_str(), p.file.as_str()))
            .collect()
    }

    #[test]
    fn each_series_gives_its_newest_backup_at_or_before_the_point() {
        let pg = names(&[
            "shop_20240101_020000.sql.gz",
            "globals_20240101_020000.sql.gz",
            "shop_20240102_020000.sql.gz",
            "globals_20240102_020001.sql.gz",
            "crm_20240101_020005.sql.gz",
        ]);
        assert_eq!(
            files(&choose(Component::Postgres, &pg, None)),
            [
                ("database", "crm", "crm_20240101_020005.sql.gz"),
                ("globals", "globals", "globals_20240102_020001.sql.gz"),
                ("database", "shop", "shop_20240102_020000.sql.gz"),
            ]
        );
        let at = parse_timestamp("20240101_235959");
        assert_eq!(
            files(&choose(Component::Postgres, &pg, at)),
            [
                ("database", "crm", "crm_20240101_020005.sql.gz"),
                ("globals", "globals", "globals_20240101_020000.sql.gz"),
                ("database", "shop", "shop_20240101_020000.sql.gz"),
            ]
        );
        assert!(choose(Component::Postgres, &pg, parse_timestamp("20231231_000000")).is_empty());
    }

    #[test]
    fn a_bucket_gives_the_newest_link_of_its_chain_and_n8n_its_credentials_first() {
        let minio = names(&[
            "documents_20240101_020000.tar.gz",
            "documents_20240102_020000.incr.tar.gz",
        ]);
        assert_eq!(
            files(&choose(Component::Minio, &minio, None)),
            [(
                "bucket",
                "documents",
                "documents_20240102_020000.incr.tar.gz"
            )]
        );
        let n8n = names(&[
            "workflows_20240101_020000.json",
            "credentials_20240101_020000.json",
        ]);
        let mut steps = choose(Component::N8n, &n8n, None);
        steps.sort_by_key(|p| p.step);
        assert_eq!(steps[0].step, Step::Credentials);
        assert_eq!(steps[1].step, Step::Workflows);
        assert!(Step::Globals < Step::Database && Step::Database < Step::Bucket);
        assert!(Step::Collections < Step::Credentials);
    }

    #[test]
    fn points_are_latest_a_week_or_a_moment() {
        assert_eq!(Point::parse("latest"), Ok(Point::Latest));
        assert!(matches!(
            Point::parse("weekly/2024_W04"),
            Ok(Point::Week(_))
        ));
        assert!(matches!(Point::parse("2024_W04"), Ok(Point::Week(_))));
        assert!(matches!(Point::parse("20240125_020000"), Ok(Point::At(_))));
        assert!(Point::parse("yesterday").is_err());
    }
}
