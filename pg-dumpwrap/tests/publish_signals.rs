//! A signal at any moment of a backup leaves either a complete, announced
//! backup or nothing at all: the record printed always says what is on disk.
//! Deterministic signals at each step of the publish sequence (failpoints),
//! then a loop of kills at random moments of whole runs.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use test_harness::{tree, Output, PgCluster, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_pg-dumpwrap");

fn tool(pg: &PgCluster, backup_dir: &Path) -> Tool {
    pg.connect(Tool::new(BIN))
        .env("POSTGRES_DB", "shop")
        .env("BACKUP_DIR", backup_dir)
        .env("TZ", "UTC")
}

/// How a run ended, judged from its exit, its stdout and the tree it left.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Exit 0, one success record, and exactly that artifact added with a
    /// matching sidecar and `*_latest` on it.
    Published,
    /// Exit 1, one failed record, and the tree exactly as before.
    Nothing,
    /// Killed before `main` could install its handler: no word at all, and
    /// the tree exactly as before.
    KilledBeforeMain,
}

/// Classifies a run, or panics saying how the record and the disk disagree.
fn classify(
    out: &Output,
    status: std::process::ExitStatus,
    dir: &Path,
    before: &[String],
) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let after = tree(dir);
    let leftovers: Vec<&String> = after.iter().filter(|e| e.contains(".tmp-")).collect();
    assert!(
        leftovers.is_empty(),
        "temp files left: {leftovers:?}\n{}",
        out.stderr
    );
    if status.signal().is_some() {
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
        assert_eq!(after, before, "killed before main, yet the tree changed");
        return Outcome::KilledBeforeMain;
    }
    let record = out.record();
    match (out.code, record["status"].as_str()) {
        (Some(0), Some("success")) => {
            let file = record["file"].as_str().expect("file in a success record");
            let postgres = dir.join("postgres");
            let sha = backup_common::sidecar::sha256_of_file(&postgres.join(file)).unwrap();
            assert_eq!(record["sha256"], sha.as_str(), "record and file differ");
            assert_eq!(
                fs::read_to_string(postgres.join(format!("{file}.sha256"))).unwrap(),
                format!("{sha}  {file}\n"),
                "sidecar"
            );
            assert_eq!(
                fs::read_link(postgres.join("shop_latest.sql.gz")).unwrap(),
                Path::new(file)
            );
            // The dump and the cluster's globals are published as one unit.
            let globals = record["globals_file"]
                .as_str()
                .expect("globals in the record");
            let mut expected: Vec<String> = before
                .iter()
                .filter(|e| {
                    !e.starts_with("postgres/shop_latest.sql.gz")
                        && !e.starts_with("postgres/globals_latest.sql.gz")
                })
                .cloned()
                .collect();
            for (name, link) in [
                (file, "shop_latest.sql.gz"),
                (globals, "globals_latest.sql.gz"),
            ] {
                let sha = backup_common::sidecar::sha256_of_file(&postgres.join(name)).unwrap();
                let size = fs::metadata(postgres.join(name)).unwrap().len();
                expected.push(format!("postgres/{name} ({size} bytes)"));
                expected.push(format!(
                    "postgres/{name}.sha256 ({} bytes)",
                    sha.len() + 3 + name.len()
                ));
                expected.push(format!("postgres/{link} -> {name}"));
            }
            expected.sort();
            assert_eq!(
                after, expected,
                "success record, but the tree is not the old one plus it"
            );
            Outcome::Published
        }
        (Some(1), Some("failed")) => {
            assert_eq!(
                after, before,
                "failed record, but the tree changed:\n{}",
                out.stderr
            );
            Outcome::Nothing
        }
        _ => panic!(
            "inconsistent end: exit {:?}, record {record}\n{}",
            out.code, out.stderr
        ),
    }
}

/// A cluster with a small database `shop` and a tree holding one good backup,
/// copied afresh (hard links) for every run so that runs need not wait for a
/// new second to get a free name.
struct Stage {
    pg: PgCluster,
    seed: tempfile::TempDir,
    runs: tempfile::TempDir,
}

impl Stage {
    fn new() -> Stage {
        let pg = PgCluster::start();
        pg.create_db("shop");
        pg.sql(
            "shop",
            "CREATE TABLE orders (id int PRIMARY KEY, item text); \
             INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 500) g;",
        );
        let seed = tempfile::tempdir().unwrap();
        let first = tool(&pg, seed.path()).run(&["backup"]);
        assert_eq!(first.code, Some(0), "{}", first.stderr);
        Stage {
            pg,
            seed,
            runs: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh copy of the seed tree, named `n`.
    fn tree_copy(&self, n: usize) -> std::path::PathBuf {
        let dir = self.runs.path().join(n.to_string());
        let status = std::process::Command::new("cp")
            .args(["-a", "--link"])
            .arg(self.seed.path())
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        dir
    }
}

fn run_with_failpoint(stage: &Stage, n: usize, failpoint: &str) -> (Outcome, Output) {
    let dir = stage.tree_copy(n);
    let before = tree(&dir);
    let child = tool(&stage.pg, &dir)
        .env("FAILPOINTS", format!("{failpoint}=return(SIGTERM)"))
        .spawn(&["backup"]);
    let output = child.wait_with_output().unwrap();
    let status = output.status;
    let out: Output = output.into();
    (classify(&out, status, &dir, &before), out)
}

#[test]
fn a_signal_at_each_step_of_publishing_ends_all_or_nothing() {
    let stage = Stage::new();
    // Before the unit: nothing is published. Inside it: the signal waits until
    // the backup is published and announced, and then changes nothing.
    let cases = [
        ("publish::prepared", Outcome::Nothing),
        ("publish::before-rename", Outcome::Published),
        ("publish::renamed", Outcome::Published),
        ("publish::sidecar-written", Outcome::Published),
        ("publish::linked", Outcome::Published),
        ("publish::announced", Outcome::Published),
    ];
    for (n, (failpoint, expected)) in cases.into_iter().enumerate() {
        let (outcome, out) = run_with_failpoint(&stage, n, failpoint);
        assert_eq!(outcome, expected, "{failpoint}:\n{}", out.stderr);
        // After publishing, the process may end on its own before the watcher
        // gets to say anything; before it, the signal must be what ended it.
        if expected == Outcome::Nothing {
            let error = out.record()["error"].as_str().unwrap().to_owned();
            assert!(
                error.contains("interrupted by SIGTERM; nothing was published"),
                "{error}"
            );
        }
    }
}

/// A small xorshift generator: the kill moments differ from run to run of the
/// loop but are reproducible from the printed seed.
struct Moments(u64);

impl Moments {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

#[test]
fn sigterm_at_random_moments_of_200_runs_is_always_all_or_nothing() {
    let stage = Stage::new();
    // How long one whole run takes here, so that kills spread over all of it
    // (and a little past its end).
    let mut took = Vec::new();
    for n in 0..3 {
        let probe = stage.tree_copy(10_000 + n);
        let started = Instant::now();
        let out = tool(&stage.pg, &probe).run(&["backup"]);
        took.push(started.elapsed().as_micros() as u64);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    took.sort();
    let span = took[1] * 11 / 10;

    let seed = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill moments from KILL_SEED={seed}, over {span} µs");
    let mut moments = Moments(seed);
    let mut tally = std::collections::BTreeMap::new();
    for n in 0..200 {
        let dir = stage.tree_copy(n);
        let before = tree(&dir);
        let delay = Duration::from_micros(moments.next_below(span));
        let child = tool(&stage.pg, &dir).spawn(&["backup"]);
        // The kill's moment is the thing under test, not a wait for an event.
        std::thread::sleep(delay);
        // SAFETY: kill(2) of a child this test started and has not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let output = child.wait_with_output().unwrap();
        let status = output.status;
        let out: Output = output.into();
        let outcome = classify(&out, status, &dir, &before);
        *tally.entry(outcome).or_insert(0) += 1;
        fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("outcomes of 200 kills: {tally:?}");
    // Both ends must really have been exercised for the loop to mean anything.
    assert!(
        tally.get(&Outcome::Published).copied().unwrap_or(0) >= 5,
        "{tally:?}"
    );
    assert!(
        tally.get(&Outcome::Nothing).copied().unwrap_or(0) >= 50,
        "{tally:?}"
    );
}
