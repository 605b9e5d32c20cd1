//! The retention policy as a value, and a pure function from "what exists, and
//! now" to "what to delete". No filesystem here: every rule is unit-tested on
//! plain data.

use backup_common::{ArtifactName, Component, IsoWeek};
use chrono::{DateTime, Duration, TimeZone};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Daily artifacts older than this many days are deleted.
    pub daily_days: u32,
    /// Weekly folders more than this many ISO weeks before the current one are deleted.
    pub weekly_weeks: u32,
    /// The newest this-many artifacts of every series (and weekly folders) are
    /// kept whatever their age.
    pub keep_min: usize,
}

/// An artifact in a component folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Artifact {
    pub component: Component,
    pub name: ArtifactName,
}

impl Artifact {
    pub fn is_incremental(&self) -> bool {
        self.name.ext.starts_with("incr.")
    }

    /// Artifacts of one series replace each other: same folder, prefix and kind.
    fn series(&self) -> (Component, &str, &str) {
        (self.component, &self.name.prefix, &self.name.ext)
    }
}

/// What an incremental's manifest says it builds on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// The file name of the archive it builds on, in the same folder.
    Named(String),
    /// The manifest could not be read (why): the archive is damaged, so which
    /// archives it needs is unknown.
    Unreadable(String),
}

/// Everything the policy looks at.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub artifacts: Vec<Artifact>,
    /// Each incremental's base, as its manifest records it (the one answer to
    /// "what is the chain of this incremental", shared with verify and restore).
    pub bases: BTreeMap<(Component, String), Base>,
    /// The file names that `*_latest` links point at, per component.
    pub latest_targets: BTreeSet<(Component, String)>,
    pub weekly: Vec<IsoWeek>,
    /// Leftover temp files and their age, from mtime (they have no name of their own).
    pub temps: Vec<(Component, String, Duration)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Artifact(Artifact),
    Weekly(IsoWeek),
    Temp(Component, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub target: Target,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub deletions: Vec<Deletion>,
    /// What the operator should know about what was kept (future dates, ...).
    pub notes: Vec<String>,
}

/// Temp files younger than this may belong to a run that is still going.
pub const STALE_TEMP: Duration = Duration::hours(24);

/// Decides what to delete. `now` carries the time zone in which the names'
/// timestamps are read.
pub fn plan<Tz: TimeZone>(inventory: &Inventory, now: &DateTime<Tz>, policy: &Policy) -> Plan {
    let tz = now.timezone();
    let mut plan = Plan::default();
    let mut keep: BTreeSet<&Artifact> = BTreeSet::new();

    // Newest first within each series.
    let mut series: BTreeMap<_, Vec<&Artifact>> = BTreeMap::new();
    for a in &inventory.artifacts {
        series.entry(a.series()).or_default().push(a);
    }
    for members in series.values_mut() {
        members.sort_by_key(|a| std::cmp::Reverse(a.name.timestamp));
        keep.extend(members.iter().take(policy.keep_min));
    }
    for a in &inventory.artifacts {
        let file = a.name.file_name();
        if inventory
            .latest_targets
            .contains(&(a.component, file.clone()))
        {
            keep.insert(a);
        }
        if a.name.instant_in(&tz) > *now {
            keep.insert(a);
            plan.notes.push(format!(
                "{}/{file} is dated in the future; kept (check the clock and TZ)",
                a.component
            ));
        }
    }
    let max_age = Duration::days(i64::from(policy.daily_days));
    for a in &inventory.artifacts {
        if !keep.contains(a) && now.clone().signed_duration_since(a.name.instant_in(&tz)) <= max_age
        {
            keep.insert(a);
        }
    }
    // An incremental is useless without the full it builds on and the
    // incrementals between them: keeping one keeps its whole chain.
    let kept_incrementals: Vec<&Artifact> = keep
        .iter()
        .copied()
        .filter(|a| a.is_incremental())
        .collect();
    for incr in kept_incrementals {
        let chain = chain_of(incr, inventory);
        keep.extend(chain.needs);
        // Incrementals sharing a broken link would each say so.
        if let Some(note) = chain.note.filter(|n| !plan.notes.contains(n)) {
            plan.notes.push(note);
        }
    }

    for a in &inventory.artifacts {
        if !keep.contains(a) {
            plan.deletions.push(Deletion {
                target: Target::Artifact(a.clone()),
                reason: format!("older than {} days", policy.daily_days),
            });
        }
    }

    let current_monday = IsoWeek::of(now.date_naive())
        .monday()
        .expect("the current week exists");
    let mut weeks: Vec<IsoWeek> = inventory.weekly.clone();
    weeks.sort_by(|a, b| b.cmp(a));
    for (i, week) in weeks.iter().enumerate() {
        let Some(monday) = week.monday() else {
            continue;
        };
        let age_weeks = (current_monday - monday).num_days() / 7;
        if i >= policy.keep_min && age_weeks > i64::from(policy.weekly_weeks) {
            plan.deletions.push(Deletion {
                target: Target::Weekly(*week),
                reason: format!("older than {} weeks", policy.weekly_weeks),
            });
        }
    }

    for (component, name, age) in &inventory.temps {
        if *age > STALE_TEMP {
            plan.deletions.push(Deletion {
                target: Target::Temp(*component, name.clone()),
                reason: "temp file of an interrupted run, older than 24 hours".into(),
            });
        }
    }
    plan
}

/// What restoring an incremental needs, and what the operator should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain<'a> {
    /// The archives it builds on, nearest first.
    pub needs: Vec<&'a Artifact>,
    pub note: Option<String>,
}

/// The archives an incremental needs to be restored, following each manifest's
/// base down to a full archive. Where a base is unreadable (a damaged archive),
/// every older archive of the bucket is needed as far as anyone can tell: kept,
/// never guessed away. A base that is missing cannot be kept; the note says so.
pub fn chain_of<'a>(incr: &Artifact, inventory: &'a Inventory) -> Chain<'a> {
    let mut needs = Vec::new();
    let mut current = incr;
    loop {
        let file = current.name.file_name();
        let base = inventory.bases.get(&(current.component, file.clone()));
        let named = match base {
            Some(Base::Named(name)) => name,
            Some(Base::Unreadable(_)) | None => {
                let why = match base {
                    Some(Base::Unreadable(why)) => why.as_str(),
                    _ => "its manifest was not read",
                };
                needs.extend(inventory.artifacts.iter().filter(|a| {
                    a.component == current.component
                        && a.name.prefix == current.name.prefix
                        && a.name.timestamp < current.name.timestamp
                }));
                let note = format!(
                    "{}/{file}: what it builds on is unknown ({why}); every older archive of bucket {} is kept",
                    current.component, current.name.prefix
                );
                return Chain {
                    needs,
                    note: Some(note),
                };
            }
        };
        // A base is always older (the manifest is validated so), which also
        // ends any loop a crafted set of manifests could describe.
        let found = inventory.artifacts.iter().find(|a| {
            a.component == current.component
                && a.name.file_name() == *named
                && a.name.timestamp < current.name.timestamp
        });
        let Some(found) = found else {
            let note = format!(
                "{}/{}: the chain is broken, {named} (which it builds on) is missing; it cannot be restored",
                incr.component,
                incr.name.file_name()
            );
            return Chain {
                needs,
                note: Some(note),
            };
        };
        needs.push(found);
        if !found.is_incremental() {
            return Chain { needs, note: None };
        }
        current = found;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};

    const POLICY: Policy = Policy {
        daily_days: 30,
        weekly_weeks: 12,
        keep_min: 3,
    };

    fn art(component: Component, file: &str) -> Artifact {
        Artifact {
            component,
            name: ArtifactName::parse(file).unwrap(),
        }
    }

    fn pg(day: u32, month: u32) -> Artifact {
        art(
            Component::Postgres,
            &format!("db_2024{month:02}{day:02}_020000.sql.gz"),
        )
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap(),
        )
    }

    fn deleted_files(plan: &Plan) -> Vec<String> {
        plan.deletions
            .iter()
            .map(|d| match &d.target {
                Target::Artifact(a) => a.name.file_name(),
                Target::Weekly(w) => w.folder_name(),
                Target::Temp(_, n) => n.clone(),
            })
            .collect()
    }

    #[test]
    fn deletes_daily_artifacts_older_than_the_retention() {
        let inv = Inventory {
            artifacts: (1..=31)
                .map(|d| pg(d, 1))
                .chain((1..=29).map(|d| pg(d, 2)))
                .collect(),
            ..Default::default()
        };
        // 2024-03-01 12:00: everything up to 2024-01-31 02:00 is more than 30 days old.
        let p = plan(&inv, &at(2024, 3, 1), &POLICY);
        let files = deleted_files(&p);
        assert_eq!(files.len(), 31, "{files:?}");
        assert!(files.contains(&"db_20240131_020000.sql.gz".to_string()));
        assert!(!files.contains(&"db_20240201_020000.sql.gz".to_string()));
        assert!(p.deletions.iter().all(|d| d.reason == "older than 30 days"));
    }

    #[test]
    fn keeps_the_newest_keep_min_of_each_series_whatever_their_age() {
        let inv = Inventory {
            artifacts: vec![
                pg(1, 1),
                pg(2, 1),
                pg(3, 1),
                pg(4, 1),
                art(Component::N8n, "workflows_20240101_020000.json"),
                art(Component::N8n, "credentials_20240101_020000.json"),
            ],
            ..Default::default()
        };
        let p = plan(&inv, &at(2025, 1, 1), &POLICY);
        assert_eq!(deleted_files(&p), vec!["db_20240101_020000.sql.gz"]);
    }

    #[test]
    fn encrypted_and_plain_artifacts_of_a_name_are_one_series() {
        let inv = Inventory {
            artifacts: vec![
                art(Component::Postgres, "db_20240101_020000.sql.gz"),
                art(Component::Postgres, "db_20240102_020000.sql.gz"),
                art(Component::Postgres, "db_20240103_020000.sql.gz.age"),
                art(Component::Postgres, "db_20240104_020000.sql.gz.age"),
            ],
            ..Default::default()
        };
        let policy = Policy {
            keep_min: 3,
            ..POLICY
        };
        assert_eq!(
            deleted_files(&plan(&inv, &at(2025, 1, 1), &policy)),
            vec!["db_20240101_020000.sql.gz"]
        );
    }

    #[test]
    fn never_deletes_a_latest_target() {
        let inv = Inventory {
            artifacts: (1..=10).map(|d| pg(d, 1)).collect(),
            latest_targets: [(Component::Postgres, "db_20240101_020000.sql.gz".to_string())].into(),
            ..Default::default()
        };
        let files = deleted_files(&plan(&inv, &at(2025, 1, 1), &POLICY));
        assert_eq!(files.len(), 6);
        assert!(!files.contains(&"db_20240101_020000.sql.gz".to_string()));
    }

    #[test]
    fn keeps_future_dated_artifacts_and_says_so() {
        let inv = Inventory {
            artifacts: vec![pg(1, 1), pg(2, 1), pg(3, 1), pg(4, 1), pg(1, 12)],
            ..Default::default()
        };
        let p = plan(
            &inv,
            &at(2024, 6, 1),
            &Policy {
                keep_min: 0,
                ..POLICY
            },
        );
        assert_eq!(deleted_files(&p).len(), 4);
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].contains("db_20241201_020000.sql.gz is dated in the future"));
    }

    /// A MinIO inventory whose incrementals build on what `chain` says:
    /// (incremental, its base) by file name.
    fn minio(files: &[&str], chain: &[(&str, Base)]) -> Inventory {
        Inventory {
            artifacts: files.iter().map(|f| art(Component::Minio, f)).collect(),
            bases: chain
                .iter()
                .map(|(f, b)| ((Component::Minio, f.to_string()), b.clone()))
                .collect(),
            ..Default::default()
        }
    }

    fn named(f: &str) -> Base {
        Base::Named(f.into())
    }

    #[test]
    fn keeps_the_full_and_earlier_incrementals_a_kept_incremental_builds_on() {
        let inv = minio(
            &[
                "documents_20240101_020000.tar.gz",
                "documents_20240102_020000.incr.tar.gz",
                "documents_20240110_020000.tar.gz",
                "documents_20240111_020000.incr.tar.gz",
                "documents_20240112_020000.incr.tar.gz",
                "documents_20240301_020000.incr.tar.gz",
            ],
            &[
                (
                    "documents_20240102_020000.incr.tar.gz",
                    named("documents_20240101_020000.tar.gz"),
                ),
                (
                    "documents_20240111_020000.incr.tar.gz",
                    named("documents_20240110_020000.tar.gz"),
                ),
                (
                    "documents_20240112_020000.incr.tar.gz",
                    named("documents_20240111_020000.incr.tar.gz"),
                ),
                (
                    "documents_20240301_020000.incr.tar.gz",
                    named("documents_20240112_020000.incr.tar.gz"),
                ),
            ],
        );
        let policy = Policy {
            keep_min: 1,
            ..POLICY
        };
        // On 2024-03-15 only the March incremental is young; it builds on the
        // 10 January full through the incrementals of the 11th and 12th.
        let p = plan(&inv, &at(2024, 3, 15), &policy);
        assert_eq!(
            deleted_files(&p),
            vec![
                "documents_20240101_020000.tar.gz",
                "documents_20240102_020000.incr.tar.gz"
            ]
        );
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn the_chain_is_the_manifests_not_the_timestamps() {
        // The March incremental was made on the January full (the February one
        // was not a backup yet when it ran, say): the manifest decides.
        let inv = minio(
            &[
                "documents_20240101_020000.tar.gz",
                "documents_20240201_020000.tar.gz",
                "documents_20240301_020000.incr.tar.gz",
            ],
            &[(
                "documents_20240301_020000.incr.tar.gz",
                named("documents_20240101_020000.tar.gz"),
            )],
        );
        let policy = Policy {
            keep_min: 0,
            ..POLICY
        };
        let p = plan(&inv, &at(2024, 3, 15), &policy);
        assert_eq!(deleted_files(&p), vec!["documents_20240201_020000.tar.gz"]);
    }

    #[test]
    fn an_unreadable_base_keeps_every_older_archive_of_the_bucket_and_says_so() {
        let inv = minio(
            &[
                "documents_20240101_020000.tar.gz",
                "documents_20240201_020000.tar.gz",
                "documents_20240202_020000.incr.tar.gz",
                "documents_20240301_020000.incr.tar.gz",
                "other_20240101_020000.tar.gz",
            ],
            &[
                (
                    "documents_20240202_020000.incr.tar.gz",
                    Base::Unreadable("not a tar.gz".into()),
                ),
                (
                    "documents_20240301_020000.incr.tar.gz",
                    named("documents_20240202_020000.incr.tar.gz"),
                ),
            ],
        );
        let policy = Policy {
            keep_min: 0,
            ..POLICY
        };
        let p = plan(&inv, &at(2024, 3, 15), &policy);
        assert_eq!(deleted_files(&p), vec!["other_20240101_020000.tar.gz"]);
        assert_eq!(
            p.notes,
            vec!["minio/documents_20240202_020000.incr.tar.gz: what it builds on is unknown (not a tar.gz); every older archive of bucket documents is kept"]
        );
    }

    #[test]
    fn a_missing_base_is_said_and_nothing_else_is_kept_for_it() {
        let inv = minio(
            &[
                "documents_20240101_020000.tar.gz",
                "documents_20240301_020000.incr.tar.gz",
            ],
            &[(
                "documents_20240301_020000.incr.tar.gz",
                named("documents_20240201_020000.tar.gz"),
            )],
        );
        let policy = Policy {
            keep_min: 0,
            ..POLICY
        };
        let p = plan(&inv, &at(2024, 3, 15), &policy);
        assert_eq!(deleted_files(&p), vec!["documents_20240101_020000.tar.gz"]);
        assert!(p.notes[0].contains("the chain is broken, documents_20240201_020000.tar.gz (which it builds on) is missing"), "{:?}", p.notes);
    }

    #[test]
    fn weekly_folders_age_by_iso_week_across_year_ends() {
        let w = |s: &str| IsoWeek::parse(s).unwrap();
        let inv = Inventory {
            weekly: vec![
                w("2020_W40"),
                w("2020_W41"),
                w("2020_W53"),
                w("2021_W01"),
                w("2021_W10"),
                w("2021_W11"),
                w("2021_W12"),
            ],
            ..Default::default()
        };
        // 2021-03-28 is in 2021_W12. 12 weeks back is 2020_W53 (2020 has 53 weeks).
        let p = plan(&inv, &at(2021, 3, 28), &POLICY);
        assert_eq!(deleted_files(&p), vec!["2020_W41", "2020_W40"]);
        assert!(p.deletions[0].reason.contains("12 weeks"));
    }

    #[test]
    fn keeps_the_newest_weekly_folders_however_old() {
        let w = |s: &str| IsoWeek::parse(s).unwrap();
        let inv = Inventory {
            weekly: vec![w("2019_W01"), w("2019_W02"), w("2019_W03"), w("2019_W04")],
            ..Default::default()
        };
        assert_eq!(
            deleted_files(&plan(&inv, &at(2024, 1, 1), &POLICY)),
            vec!["2019_W01"]
        );
    }

    #[test]
    fn removes_only_stale_temp_files() {
        let inv = Inventory {
            temps: vec![
                (Component::Postgres, ".a.tmp-1".into(), Duration::hours(25)),
                (Component::Postgres, ".b.tmp-2".into(), Duration::hours(23)),
            ],
            ..Default::default()
        };
        assert_eq!(
            deleted_files(&plan(&inv, &at(2024, 1, 1), &POLICY)),
            vec![".a.tmp-1"]
        );
    }

    #[test]
    fn ages_are_read_in_the_time_zone_of_now() {
        use chrono_tz::Europe::Berlin;
        // 2024-03-31 02:30 did not exist in Berlin (DST gap) and 2024-10-27 02:30
        // happened twice; neither may panic or be misdated by an hour's worth of days.
        let inv = Inventory {
            artifacts: vec![
                art(Component::Postgres, "db_20240331_023000.sql.gz"),
                art(Component::Postgres, "db_20241027_023000.sql.gz"),
            ],
            ..Default::default()
        };
        let policy = Policy {
            keep_min: 0,
            daily_days: 30,
            weekly_weeks: 12,
        };
        let now = Berlin.with_ymd_and_hms(2024, 4, 30, 3, 29, 0).unwrap();
        assert!(
            plan(&inv, &now, &policy).deletions.is_empty(),
            "30 days minus a minute"
        );
        let now = Berlin.with_ymd_and_hms(2024, 4, 30, 3, 31, 0).unwrap();
        assert_eq!(
            deleted_files(&plan(&inv, &now, &policy)),
            vec!["db_20240331_023000.sql.gz"]
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn artifact() -> impl Strategy<Value = Artifact> {
            (0usize..4, 0u32..3, 0i64..400 * 24, prop::bool::ANY).prop_map(
                |(c, prefix, hours, incr)| {
                    let component = Component::ALL[c];
                    let ts = NaiveDate::from_ymd_opt(2023, 11, 1)
                        .unwrap()
                        .and_hms_opt(0, 0, 0)
                        .unwrap()
                        + Duration::hours(hours);
                    let ext = if component == Component::Minio && incr {
                        "incr.tar.gz"
                    } else {
                        "tar.gz"
                    };
                    Artifact {
                        component,
                        name: ArtifactName::new(&format!("p{prefix}"), ts, ext),
                    }
                },
            )
        }

        /// Each incremental's base: an earlier archive of its bucket picked by
        /// `pick`, a name that is not there, or an unreadable manifest.
        fn inventory() -> impl Strategy<Value = Inventory> {
            (
                prop::collection::vec(artifact(), 0..60),
                prop::collection::vec(0usize..60, 0..4),
                prop::collection::vec(0usize..20, 60),
            )
                .prop_map(|(mut artifacts, latest, picks)| {
                    artifacts.sort();
                    artifacts.dedup();
                    let latest_targets = latest
                        .iter()
                        .filter_map(|i| artifacts.get(*i))
                        .map(|a| (a.component, a.name.file_name()))
                        .collect();
                    let mut bases = BTreeMap::new();
                    for (a, pick) in artifacts.iter().zip(&picks) {
                        if !a.is_incremental() {
                            continue;
                        }
                        let earlier: Vec<&Artifact> = artifacts
                            .iter()
                            .filter(|b| {
                                b.component == a.component
                                    && b.name.prefix == a.name.prefix
                                    && b.name.timestamp < a.name.timestamp
                            })
                            .collect();
                        let base = match (pick, earlier.len()) {
                            (0, _) => Base::Unreadable("damaged".into()),
                            (1, _) | (_, 0) => Base::Named("gone_20200101_000000.tar.gz".into()),
                            (p, n) => Base::Named(earlier[p % n].name.file_name()),
                        };
                        bases.insert((a.component, a.name.file_name()), base);
                    }
                    Inventory {
                        artifacts,
                        latest_targets,
                        bases,
                        ..Default::default()
                    }
                })
        }

        fn apply(inv: &Inventory, p: &Plan) -> Inventory {
            let gone: BTreeSet<&Artifact> = p
                .deletions
                .iter()
                .filter_map(|d| match &d.target {
                    Target::Artifact(a) => Some(a),
                    _ => None,
                })
                .collect();
            Inventory {
                artifacts: inv
                    .artifacts
                    .iter()
                    .filter(|a| !gone.contains(a))
                    .cloned()
                    .collect(),
                ..inv.clone()
            }
        }

        proptest! {
            #[test]
            fn never_deletes_latest_targets_newest_keep_min_or_needed_chains(
                inv in inventory(),
                days in 0u32..60,
                keep_min in 0usize..5,
                now_hours in 0i64..500 * 24,
            ) {
                let policy = Policy { daily_days: days, weekly_weeks: 12, keep_min };
                let now = at(2023, 11, 1) + Duration::hours(now_hours);
                let p = plan(&inv, &now, &policy);
                let after = apply(&inv, &p);
                for (component, file) in &inv.latest_targets {
                    prop_assert!(after.artifacts.iter().any(|a| a.component == *component && a.name.file_name() == *file));
                }
                let mut series: BTreeMap<_, Vec<&Artifact>> = BTreeMap::new();
                for a in &inv.artifacts {
                    series.entry(a.series()).or_default().push(a);
                }
                for members in series.values_mut() {
                    members.sort_by_key(|a| std::cmp::Reverse(a.name.timestamp));
                    for newest in members.iter().take(keep_min) {
                        prop_assert!(after.artifacts.contains(newest), "newest {:?} deleted", newest.name);
                    }
                }
                for a in after.artifacts.iter().filter(|a| a.is_incremental()) {
                    let before = chain_of(a, &inv);
                    let now_chain = chain_of(a, &after);
                    prop_assert_eq!(before, now_chain, "chain of {:?} broken", a.name);
                }
                for d in &p.deletions {
                    if let Target::Artifact(a) = &d.target {
                        prop_assert!(a.name.instant_in(&Utc) <= now, "future-dated {:?} deleted", a.name);
                        prop_assert!(now.signed_duration_since(a.name.instant_in(&Utc)) > Duration::days(i64::from(days)));
                    }
                }
            }

            #[test]
            fn running_twice_deletes_nothing_more(inv in inventory(), days in 0u32..60, keep_min in 0usize..5, now_hours in 0i64..500 * 24) {
                let policy = Policy { daily_days: days, weekly_weeks: 12, keep_min };
                let now = at(2023, 11, 1) + Duration::hours(now_hours);
                let after = apply(&inv, &plan(&inv, &now, &policy));
                prop_assert_eq!(plan(&after, &now, &policy).deletions, vec![]);
            }

            #[test]
            fn weekly_keeps_keep_min_and_everything_recent(
                weeks in prop::collection::btree_set((2019i32..2026, 1u32..54), 0..30),
                keep_min in 0usize..5,
                retention in 0u32..30,
                now_days in 0i64..2600,
            ) {
                let weekly: Vec<IsoWeek> = weeks.into_iter().map(|(year, week)| IsoWeek { year, week }).filter(|w| w.monday().is_some()).collect();
                let inv = Inventory { weekly: weekly.clone(), ..Default::default() };
                let now = at(2019, 1, 1) + Duration::days(now_days);
                let p = plan(&inv, &now, &Policy { daily_days: 30, weekly_weeks: retention, keep_min });
                let deleted: BTreeSet<IsoWeek> = p.deletions.iter().filter_map(|d| match d.target { Target::Weekly(w) => Some(w), _ => None }).collect();
                let mut newest = weekly.clone();
                newest.sort_by(|a, b| b.cmp(a));
                for w in newest.iter().take(keep_min) {
                    prop_assert!(!deleted.contains(w));
                }
                let this_monday = IsoWeek::of(now.date_naive()).monday().unwrap();
                for w in &deleted {
                    prop_assert!((this_monday - w.monday().unwrap()).num_days() > 7 * i64::from(retention));
                }
            }
        }
    }
}
