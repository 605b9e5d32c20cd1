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
    /// When it was made (local time, from its name).
    pub made: NaiveDateTime,
}

/// Something a plan does not restore, and why. Any gap fails a restore plan
/// unless the operator says `--allow-missing`: a restore that quietly leaves
/// out a database is the failure a tired operator does not see.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gap {
    /// The tree has backups of the component; the point has none.
    MissingComponent { component: Component },
    /// The tree has backups of the series; the point has none.
    MissingSeries {
        component: Component,
        series: String,
    },
    /// An artifact without its sidecar: not a backup, never restored.
    Orphan { component: Component, file: String },
    /// An artifact-named link: no tool makes one; never followed.
    Link { component: Component, file: String },
    /// Dated after now (beyond the clock skew): not made by this tree.
    Future { component: Component, file: String },
}

impl Gap {
    /// One line for the operator: what is missing and what to check.
    pub fn describe(&self) -> String {
        match self {
            Gap::MissingComponent { component } => format!(
                "{component}: the tree has backups of it but this point has none — it would not \
                 be restored",
                component = component.name()
            ),
            Gap::MissingSeries { component, series } => format!(
                "{}: {series:?}: the tree has backups of it but this point has none — it would \
                 not be restored",
                component.name()
            ),
            Gap::Orphan { component, file } => format!(
                "{}: {file:?} has no .sha256 sidecar, so it is not a backup and is skipped \
                 (an interrupted publish, a copy, or a file planted in the tree)",
                component.name()
            ),
            Gap::Link { component, file } => format!(
                "{}: {file:?} is a link; no tool makes one, so it is skipped",
                component.name()
            ),
            Gap::Future { component, file } => format!(
                "{}: {file:?} is dated in the future (more than {} h ahead of \
                 this clock), so this tree's runs did not make it; refused — check how it came \
                 into the tree",
                component.name(),
                backup_common::naming::CLOCK_SKEW_HOURS
            ),
        }
    }
}

/// Per series of `backups` (one component folder's, oldest first), the
/// newest made at or before `at` (any, without) and not after `not_after`
/// (now, with the clock skew); those dated after it are refused. Pure.
pub fn choose(
    component: Component,
    backups: &[ArtifactName],
    at: Option<NaiveDateTime>,
    not_after: NaiveDateTime,
) -> (Vec<Planned>, Vec<Gap>) {
    let mut newest: std::collections::BTreeMap<&str, &ArtifactName> = Default::default();
    let mut gaps = Vec::new();
    for b in backups {
        if b.timestamp > not_after {
            gaps.push(Gap::Future {
                component,
                file: b.file_name(),
            });
            continue;
        }
        if at.is_some_and(|t| b.timestamp > t) {
            continue;
        }
        match newest.get(b.prefix.as_str()) {
            Some(n) if n.timestamp > b.timestamp => {}
            _ => {
                newest.insert(&b.prefix, b);
            }
        }
    }
    let steps = newest
        .into_iter()
        .map(|(series, b)| Planned {
            component,
            step: Step::of(component, series),
            series: series.to_owned(),
            file: b.file_name(),
            made: b.timestamp,
        })
        .collect();
    (steps, gaps)
}

/// What the plan skips in a folder at the point: every orphan and
/// artifact-named link dated up to the point. Pure.
pub fn skipped(
    component: Component,
    orphans: &[ArtifactName],
    links: &[String],
    at: Option<NaiveDateTime>,
) -> Vec<Gap> {
    let orphans = orphans
        .iter()
        .filter(|o| at.is_none_or(|t| o.timestamp <= t))
        .map(|o| Gap::Orphan {
            component,
            file: o.file_name(),
        });
    let links = links.iter().map(|l| Gap::Link {
        component,
        file: l.clone(),
    });
    orphans.chain(links).collect()
}

/// The series the tree has (`in_tree`) that the point's steps lack. Pure.
pub fn missing(
    component: Component,
    in_tree: &std::collections::BTreeSet<String>,
    steps: &[Planned],
    named: bool,
) -> Vec<Gap> {
    if steps.is_empty() && (named || !in_tree.is_empty()) {
        return vec![Gap::MissingComponent { component }];
    }
    in_tree
        .iter()
        .filter(|series| !steps.iter().any(|p| &p.series == *series))
        .map(|series| Gap::MissingSeries {
            component,
            series: series.clone(),
        })
        .collect()
}

/// A restore plan: the steps in restore order, each with the path of its
/// artifact, and what the point lacks or the plan skipped.
#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<(Planned, PathBuf)>,
    pub gaps: Vec<Gap>,
}

/// The plan for `point` in the tree at `root`, for `components` (`named`:
/// the operator asked for them, so each must be there).
pub fn plan(root: &Path, point: Point, components: &[Component], named: bool) -> Result<Plan> {
    let base = match point {
        Point::Week(w) => {
            let dir = root.join("weekly").join(w.folder_name());
            for folder in [root.join("weekly"), dir.clone()] {
                if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.file_type().is_symlink()) {
                    bail!(
                        "{} is a link; a backup tree's folders are never links, so it is not \
                         followed",
                        folder.display()
                    );
                }
            }
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
    let not_after = backup_common::naming::latest_believable_timestamp();
    let mut plan = Plan::default();
    for &c in components {
        let dir = base.join(c.name());
        let found =
            folder::scan(&dir, c).with_context(|| format!("cannot read {}", dir.display()))?;
        refuse_control_characters(&dir, &found)?;
        let (steps, refused) = choose(c, &found.backups, at, not_after);
        plan.gaps.extend(refused);
        plan.gaps.extend(skipped(
            c,
            &found.orphans,
            &found.links,
            at.or(Some(not_after)),
        ));
        // What the tree itself holds, to name what the point lacks.
        let daily = root.join(c.name());
        let in_tree: std::collections::BTreeSet<String> = folder::scan(&daily, c)
            .with_context(|| format!("cannot read {}", daily.display()))?
            .backups
            .iter()
            .filter(|b| b.timestamp <= not_after)
            .map(|b| b.prefix.clone())
            .collect();
        plan.gaps.extend(missing(c, &in_tree, &steps, named));
        plan.steps.extend(steps.into_iter().map(|p| {
            let path = dir.join(&p.file);
            (p, path)
        }));
    }
    plan.steps
        .sort_by(|(a, _), (b, _)| (a.step, &a.series).cmp(&(b.step, &b.series)));
    plan.gaps.sort();
    if plan.steps.is_empty() {
        bail!(
            "no backups to restore from {} at that point — check BACKUP_DIR and the point given",
            base.display()
        );
    }
    Ok(plan)
}

/// A name with a control character (a newline, a tab) in the tree: no tool
/// makes one, and it could forge a line wherever names are shown or parsed.
/// The plan refuses the tree until it is removed or renamed.
fn refuse_control_characters(dir: &Path, found: &folder::Folder) -> Result<()> {
    let names = found
        .backups
        .iter()
        .chain(&found.orphans)
        .map(ArtifactName::file_name)
        .chain(found.links.iter().cloned());
    for name in names {
        let series = ArtifactName::parse(&name)
            .map(|n| n.prefix)
            .unwrap_or_default();
        if series.trim() != series || series.contains(',') {
            bail!(
                "{}: {name:?}: its series {series:?} begins or ends with white space or holds a \
                 comma, so no tool can name it again (it would restore into another one) — \
                 rename it, or restore it by hand",
                dir.display()
            );
        }
        if name.chars().any(char::is_control) {
            bail!(
                "{}: {name:?} has control characters in its name; no tool makes such a file — \
                 remove or rename it before restoring",
                dir.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<ArtifactName> {
        list.iter()
            .map(|n| ArtifactName::parse(n).unwrap())
            .collect()
    }

    /// A "now" after every name in these tests.
    fn far() -> NaiveDateTime {
        parse_timestamp("20300101_000000").unwrap()
    }

    #[test]
    fn a_backup_dated_after_now_is_refused_and_the_real_newest_chosen() {
        let pg = names(&[
            "shop_20240101_020000.sql.gz",
            "shop_20991231_235959.sql.gz",
            "globals_20991231_235959.sql.gz",
        ]);
        let now = parse_timestamp("20240102_000000").unwrap();
        let (steps, gaps) = choose(Component::Postgres, &pg, None, now);
        assert_eq!(
            files(&steps),
            [("database", "shop", "shop_20240101_020000.sql.gz")]
        );
        assert_eq!(
            gaps,
            [
                Gap::Future {
                    component: Component::Postgres,
                    file: "shop_20991231_235959.sql.gz".into()
                },
                Gap::Future {
                    component: Component::Postgres,
                    file: "globals_20991231_235959.sql.gz".into()
                },
            ]
        );
        assert!(gaps[0].describe().contains("dated in the future"));
    }

    #[test]
    fn orphans_and_links_up_to_the_point_are_named_as_skipped() {
        let orphans = names(&["shop_20240101_020000.sql.gz", "shop_20240301_020000.sql.gz"]);
        let links = ["crm_20240101_020000.sql.gz".to_owned()];
        let at = parse_timestamp("20240201_000000");
        let gaps = skipped(Component::Postgres, &orphans, &links, at);
        assert_eq!(
            gaps,
            [
                Gap::Orphan {
                    component: Component::Postgres,
                    file: "shop_20240101_020000.sql.gz".into()
                },
                Gap::Link {
                    component: Component::Postgres,
                    file: "crm_20240101_020000.sql.gz".into()
                },
            ]
        );
    }

    #[test]
    fn what_the_tree_has_and_the_point_lacks_is_named() {
        let in_tree: std::collections::BTreeSet<String> =
            ["crm".to_owned(), "shop".to_owned()].into();
        let pg = names(&["shop_20240101_020000.sql.gz"]);
        let (steps, _) = choose(Component::Postgres, &pg, None, far());
        assert_eq!(
            missing(Component::Postgres, &in_tree, &steps, false),
            [Gap::MissingSeries {
                component: Component::Postgres,
                series: "crm".into()
            }]
        );
        assert_eq!(
            missing(Component::Qdrant, &["qdrant".to_owned()].into(), &[], false),
            [Gap::MissingComponent {
                component: Component::Qdrant
            }]
        );
        // A component the tree never had is a gap only when asked for.
        assert!(missing(Component::N8n, &Default::default(), &[], false).is_empty());
        assert_eq!(
            missing(Component::N8n, &Default::default(), &[], true).len(),
            1
        );
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
            files(&choose(Component::Postgres, &pg, None, far()).0),
            [
                ("database", "crm", "crm_20240101_020005.sql.gz"),
                ("globals", "globals", "globals_20240102_020001.sql.gz"),
                ("database", "shop", "shop_20240102_020000.sql.gz"),
            ]
        );
        let at = parse_timestamp("20240101_235959");
        assert_eq!(
            files(&choose(Component::Postgres, &pg, at, far()).0),
            [
                ("database", "crm", "crm_20240101_020005.sql.gz"),
                ("globals", "globals", "globals_20240101_020000.sql.gz"),
                ("database", "shop", "shop_20240101_020000.sql.gz"),
            ]
        );
        assert!(choose(
            Component::Postgres,
            &pg,
            parse_timestamp("20231231_000000"),
            far()
        )
        .0
        .is_empty());
    }

    #[test]
    fn a_bucket_gives_the_newest_link_of_its_chain_and_n8n_its_credentials_first() {
        let minio = names(&[
            "documents_20240101_020000.tar.gz",
            "documents_20240102_020000.incr.tar.gz",
        ]);
        assert_eq!(
            files(&choose(Component::Minio, &minio, None, far()).0),
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
        let mut steps = choose(Component::N8n, &n8n, None, far()).0;
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
