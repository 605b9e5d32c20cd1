//! backup-prune's real binary on real directory trees.

use chrono::{Duration, Utc};
use std::fs;
use std::path::{Path, PathBuf};
use test_harness::{tree, Output, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_backup-prune");

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// An artifact `days` days old (by its name) with its sidecar.
    fn artifact(&self, component: &str, prefix: &str, ext: &str, days_old: i64) -> String {
        let ts = (Utc::now() - Duration::days(days_old)).format("%Y%m%d_%H%M%S");
        let name = format!("{prefix}_{ts}.{ext}");
        let dir = self.root().join(component);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(&name), b"data").unwrap();
        fs::write(dir.join(format!("{name}.sha256")), format!("x  {name}\n")).unwrap();
        name
    }

    /// A MinIO archive of bucket `documents` `days_old` days old (by its
    /// name), with its sidecar, building on `base` if given.
    fn minio(&self, days_old: i64, base: Option<&str>) -> String {
        let ts = (Utc::now() - Duration::days(days_old)).format("%Y%m%d_%H%M%S");
        let ext = if base.is_some() {
            "incr.tar.gz"
        } else {
            "tar.gz"
        };
        let name = format!("documents_{ts}.{ext}");
        let dir = self.root().join("minio");
        fs::create_dir_all(&dir).unwrap();
        test_harness::minio_manifest_archive(&dir, &name, "documents", base, false);
        name
    }

    fn link(&self, component: &str, link: &str, target: &str) {
        std::os::unix::fs::symlink(target, self.root().join(component).join(link)).unwrap();
    }

    fn file(&self, rel: &str) -> PathBuf {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"x").unwrap();
        path
    }

    fn exists(&self, rel: &str) -> bool {
        self.root().join(rel).symlink_metadata().is_ok()
    }

    fn run(&self, args: &[&str]) -> Output {
        Tool::new(BIN)
            .env("TZ", "UTC")
            .env("BACKUP_DIR", self.root())
            .run(args)
    }
}

fn deleted(out: &Output) -> Vec<String> {
    let mut paths: Vec<String> = out
        .json_lines()
        .iter()
        .map(|l| {
            let p = l["path"].as_str().unwrap();
            p.rsplit('/').next().unwrap().to_owned()
        })
        .collect();
    paths.sort();
    paths
}

fn age(path: &Path, hours: u64) {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(hours * 3600);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn deletes_old_artifacts_with_their_sidecars_and_nothing_else() {
    let t = Tree::new();
    let old: Vec<String> = (40..45)
        .map(|d| t.artifact("postgres", "db", "sql.gz", d))
        .collect();
    let young: Vec<String> = (1..4)
        .map(|d| t.artifact("postgres", "db", "sql.gz", d))
        .collect();
    t.link("postgres", "db_latest.sql.gz", &young[0]);
    let mine = t.file("postgres/operator-notes_20200101_000000.txt.bak");
    let unrelated = t.file("postgres/manual-dump.sql.gz");

    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut expected = old.clone();
    expected.sort();
    assert_eq!(deleted(&out), expected);
    for name in &old {
        assert!(!t.exists(&format!("postgres/{name}")));
        assert!(
            !t.exists(&format!("postgres/{name}.sha256")),
            "sidecar goes with its artifact"
        );
    }
    for name in &young {
        assert!(
            t.exists(&format!("postgres/{name}")) && t.exists(&format!("postgres/{name}.sha256"))
        );
    }
    assert!(out
        .json_lines()
        .iter()
        .all(|l| l["reason"] == "older than 30 days"));
    assert!(
        out.stderr.contains("deleted 5 artifact(s)"),
        "{}",
        out.stderr
    );
    // Named like an artifact but not of a kind this folder holds: an operator's file.
    assert!(mine.exists());
    assert!(unrelated.exists());
}

#[test]
fn keeps_latest_target_and_newest_keep_min_however_old() {
    let t = Tree::new();
    let names: Vec<String> = (100..110)
        .map(|d| t.artifact("n8n", "workflows", "json", d))
        .collect();
    // names[0] is the newest (100 days), names[9] the oldest.
    t.link("n8n", "workflows_latest.json", &names[9]);
    let out = t.run(&["--keep-min", "2"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut expected: Vec<String> = names[2..9].to_vec();
    expected.sort();
    assert_eq!(deleted(&out), expected);
    for keep in [&names[0], &names[1], &names[9]] {
        assert!(t.exists(&format!("n8n/{keep}")));
    }
}

#[test]
fn ages_come_from_names_not_mtimes() {
    let t = Tree::new();
    let old_name = t.artifact("qdrant", "qdrant", "tar.gz", 60);
    let new_name = t.artifact("qdrant", "qdrant", "tar.gz", 1);
    age(&t.root().join("qdrant").join(&new_name), 24 * 365);
    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(deleted(&out), vec![old_name]);
    assert!(t.exists(&format!("qdrant/{new_name}")));
}

#[test]
fn dry_run_prints_the_plan_and_deletes_nothing() {
    let t = Tree::new();
    let old = t.artifact("postgres", "db", "sql.gz", 50);
    for d in 1..4 {
        t.artifact("postgres", "db", "sql.gz", d);
    }
    let before = tree(t.root());
    let out = t.run(&["--dry-run"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(deleted(&out), vec![old]);
    assert!(out.json_lines().iter().all(|l| l["dry_run"] == true));
    assert!(out.stderr.contains("would delete 1 artifact(s)"));
    assert_eq!(tree(t.root()), before);
}

#[test]
fn future_dated_artifacts_are_kept_and_reported() {
    let t = Tree::new();
    let future = t.artifact("postgres", "db", "sql.gz", -3);
    let out = t.run(&["--keep-min", "0", "--days", "0"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(deleted(&out).is_empty());
    assert!(
        out.stderr
            .contains(&format!("{future} is dated in the future")),
        "{}",
        out.stderr
    );
}

#[test]
fn keeps_the_chain_of_a_kept_incremental() {
    let t = Tree::new();
    let old_full = t.minio(90, None);
    let base = t.minio(60, None);
    let incr1 = t.minio(59, Some(&base));
    let incr2 = t.minio(2, Some(&incr1));
    t.link("minio", "documents_latest.tar.gz", &base);
    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(deleted(&out), vec![old_full]);
    for keep in [&base, &incr1, &incr2] {
        assert!(t.exists(&format!("minio/{keep}")));
    }
}

#[test]
fn the_chain_kept_is_the_one_the_manifests_name() {
    let t = Tree::new();
    let old_full = t.minio(90, None);
    let newer_full = t.minio(60, None);
    // Made on the older full: the names' dates alone would keep the newer one.
    let incr = t.minio(2, Some(&old_full));
    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(deleted(&out), vec![newer_full]);
    assert!(t.exists(&format!("minio/{old_full}")) && t.exists(&format!("minio/{incr}")));
}

#[test]
fn a_damaged_incremental_keeps_everything_older_of_its_bucket_and_says_why() {
    let t = Tree::new();
    let old_full = t.minio(90, None);
    let base = t.minio(60, None);
    let incr = t.minio(2, Some(&base));
    fs::write(t.root().join("minio").join(&incr), b"not an archive").unwrap();
    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(deleted(&out), Vec::<String>::new());
    assert!(t.exists(&format!("minio/{old_full}")));
    assert!(
        out.stderr
            .contains(&format!("minio/{incr}: what it builds on is unknown ("))
            && out
                .stderr
                .contains("every older archive of bucket documents is kept"),
        "{}",
        out.stderr
    );
}

#[test]
fn weekly_folders_older_than_the_retention_go() {
    let t = Tree::new();
    let week = |weeks_ago: i64| {
        let d = (Utc::now() - Duration::weeks(weeks_ago)).date_naive();
        backup_common::IsoWeek::of(d).folder_name()
    };
    for w in [0, 1, 5, 13, 20] {
        t.file(&format!(
            "weekly/{}/postgres/db_20240101_000000.sql.gz",
            week(w)
        ));
    }
    let out = t.run(&["--weeks", "12", "--keep-min", "1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut expected = vec![week(13), week(20)];
    expected.sort();
    assert_eq!(deleted(&out), expected);
    assert!(t.exists(&format!("weekly/{}", week(5))));
    assert!(!t.exists(&format!("weekly/{}", week(20))));
}

#[test]
fn a_foreign_weekly_folder_is_a_warning_and_left_alone() {
    let t = Tree::new();
    t.file("weekly/2024_W54/postgres/x");
    t.file("weekly/old-stuff/x");
    t.file("weekly/2019_W01/postgres/x");
    t.file("weekly/2019_W02/postgres/x");
    let old = t.artifact("postgres", "db", "sql.gz", 50);
    let out = t.run(&["--keep-min", "1"]);
    // Not a failed prune that would fail every nightly run until someone looks.
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: ")
            && out
                .stderr
                .contains("2024_W54 is not a YYYY_WNN week folder"),
        "{}",
        out.stderr
    );
    assert!(out
        .stderr
        .contains("old-stuff is not a YYYY_WNN week folder"));
    assert!(t.exists("weekly/2024_W54") && t.exists("weekly/old-stuff"));
    // The rest of the policy still applies, exactly as without the odd folders.
    assert_eq!(deleted(&out), vec!["2019_W01".to_string()]);
    assert!(
        t.exists(&format!("postgres/{old}")),
        "keep-min 1 keeps the only artifact"
    );
}

#[test]
fn an_artifact_without_its_sidecar_is_no_backup_and_never_protects_less() {
    let t = Tree::new();
    // The only good backup is old; a newer artifact lost its sidecar (a crash
    // mid-publish). keep-min 1 must keep the good one, not count the orphan.
    let good = t.artifact("postgres", "db", "sql.gz", 50);
    let orphan = t.artifact("postgres", "db", "sql.gz", 1);
    fs::remove_file(t.root().join(format!("postgres/{orphan}.sha256"))).unwrap();
    let out = t.run(&["--keep-min", "1"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(deleted(&out), Vec::<String>::new());
    assert!(
        t.exists(&format!("postgres/{good}")),
        "the last good backup stays"
    );
    assert!(
        t.exists(&format!("postgres/{orphan}")),
        "an orphan is left for the operator"
    );
    assert!(
        out.stderr.contains(&format!(
            "{orphan} has no .sha256 sidecar, so it is not a backup"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn stale_temp_files_go_fresh_ones_and_the_lock_stay() {
    let t = Tree::new();
    t.artifact("postgres", "db", "sql.gz", 1);
    let stale = t.file("postgres/.db_20240101_000000.sql.gz.tmp-4242");
    let fresh = t.file("postgres/.db_20240102_000000.sql.gz.tmp-4343");
    let other_dotfile = t.file("postgres/.operator-hidden");
    age(&stale, 25);
    age(&fresh, 23);
    age(&other_dotfile, 1000);
    let out = t.run(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(deleted(&out), vec![".db_20240101_000000.sql.gz.tmp-4242"]);
    assert!(fresh.exists() && other_dotfile.exists() && t.exists("postgres/.lock"));
}

#[test]
fn a_dangling_latest_link_stops_pruning_of_its_folder() {
    let t = Tree::new();
    let old_pg = t.artifact("postgres", "db", "sql.gz", 50);
    t.link("postgres", "db_latest.sql.gz", "db_20990101_000000.sql.gz");
    let old_n8n = t.artifact("n8n", "workflows", "json", 50);
    let before = tree(t.root());
    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("db_latest.sql.gz points at db_20990101_000000.sql.gz, which does not exist"),
        "{}",
        out.stderr
    );
    assert!(t.exists(&format!("postgres/{old_pg}")));
    // The healthy folder is still pruned.
    assert_eq!(deleted(&out), vec![old_n8n]);
    assert_ne!(tree(t.root()), before);
}

#[test]
fn a_missing_backup_dir_is_a_configuration_error() {
    let out = Tool::new(BIN).run(&["--backup-dir", "/nonexistent/backups"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("backup folder /nonexistent/backups does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unreadable_backup_dir_fails_without_deleting() {
    let t = Tree::new();
    let old = t.artifact("postgres", "db", "sql.gz", 50);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(t.root(), fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = Tool::new(BIN)
        .env("BACKUP_DIR", t.root())
        .command(&["--keep-min", "0"]);
    if test_harness::is_root() {
        // Root reads everything; an ordinary user is who meets this.
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    }
    let out = cmd.output().unwrap();
    fs::set_permissions(t.root(), fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    assert!(t.exists(&format!("postgres/{old}")));
}

#[test]
fn waits_for_no_one_but_never_prunes_under_a_running_backup() {
    let t = Tree::new();
    let old = t.artifact("postgres", "db", "sql.gz", 50);
    let held = backup_common::lock::lock_dir(&t.root().join("postgres")).unwrap();
    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(out.code, Some(75), "{}", out.stderr);
    assert!(out.stderr.contains("another run holds the lock"));
    assert!(t.exists(&format!("postgres/{old}")));
    drop(held);
    let out = t.run(&["--keep-min", "0"]);
    assert_eq!(deleted(&out), vec![old]);
}

#[test]
fn promote_links_the_recorded_backup_into_its_week_and_replaces_an_older_one() {
    use std::os::unix::fs::MetadataExt;
    let t = Tree::new();
    let older = t.artifact("postgres", "db", "sql.gz", 2);
    let newer = t.artifact("postgres", "db", "sql.gz", 1);
    // Real sidecars (sha256 of "data"): promotion refuses anything else.
    for name in [&older, &newer] {
        fs::write(
            t.root().join(format!("postgres/{name}.sha256")),
            format!("3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7  {name}\n"),
        )
        .unwrap();
    }
    let records = t.root().join("run.json");
    let record = |file: &str| {
        format!(
            "{{\"component\":\"postgres\",\"status\":\"success\",\"file\":\"{file}\",\"size_bytes\":4,\"duration_seconds\":1,\"sha256\":\"x\"}}\n"
        )
    };
    let promote = |file: &str| {
        fs::write(&records, record(file)).unwrap();
        t.run(&["promote", "--week", "2024_W05", records.to_str().unwrap()])
    };
    let week = t.root().join("weekly/2024_W05/postgres");

    let out = promote(&older);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), week.join(&older).to_str().unwrap());
    let out = promote(&newer);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut held: Vec<String> = fs::read_dir(&week)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    assert_eq!(
        held,
        [newer.clone(), format!("{newer}.sha256")],
        "one snapshot a week"
    );
    let inode = |p: &Path| fs::metadata(p).unwrap().ino();
    assert_eq!(
        inode(&week.join(&newer)),
        inode(&t.root().join("postgres").join(&newer)),
        "a hard link, no extra space"
    );
    // Promoting the same backup again changes nothing.
    assert_eq!(promote(&newer).code, Some(0));

    // A run whose record says it failed promotes nothing.
    fs::write(
        &records,
        "{\"component\":\"postgres\",\"status\":\"failed\",\"duration_seconds\":0,\"error\":\"x\"}\n",
    )
    .unwrap();
    let out = t.run(&["promote", "--week", "2024_W05", records.to_str().unwrap()]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("holds no success record"),
        "{}",
        out.stderr
    );
}
