//! A restore killed with SIGKILL — the OOM killer, `docker kill`, a power cut
//! of the tool alone — at a random moment: the target database is afterwards
//! exactly as it was before, or (killed after the COMMIT went out) exactly the
//! dump. Never anything in between.

use std::path::Path;
use std::time::Instant;
use test_harness::{finish, wait_for, PgCluster, Tool};

const BIN: &str = env!("CARGO_BIN_EXE_pg-dumpwrap");
const KILLS: usize = 50;

fn tool(pg: &PgCluster, backup_dir: &Path, db: &str) -> Tool {
    pg.connect(Tool::new(BIN))
        .env("POSTGRES_DB", db)
        .env("BACKUP_DIR", backup_dir)
}

/// What the target holds: its tables, indexes and constraints, and its rows.
fn state(pg: &PgCluster) -> String {
    pg.sql(
        "target",
        "SELECT (SELECT string_agg(relname || ':' || relkind::text, ',' ORDER BY relname) \
                 FROM pg_class WHERE relnamespace = 'public'::regnamespace) \
             || ' ' || (SELECT count(*) || ':' || md5(coalesce(string_agg(g::text || h, ',' ORDER BY g), '')) \
                 FROM t)",
    )
}

/// The target as an application left it: other rows, a table the dump does not know.
fn reset_target(pg: &PgCluster) {
    pg.sql("postgres", "DROP DATABASE IF EXISTS target WITH (FORCE)");
    pg.create_db("target");
    pg.sql(
        "target",
        "CREATE TABLE t (g int PRIMARY KEY, h text); \
         INSERT INTO t SELECT g, 'old' FROM generate_series(1, 1000) g; \
         CREATE TABLE app_only (x int); INSERT INTO app_only VALUES (7)",
    );
}

/// Waits until no session of the tool's is left: psql, orphaned by the kill,
/// has read the end of its input and the server has ended its transaction.
fn wait_for_sessions_to_end(pg: &PgCluster) {
    wait_for("the killed restore's sessions to end", || {
        let n = pg.sql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'backup-kit'",
        );
        (n == "0").then_some(())
    });
}

#[test]
fn sigkill_at_any_moment_leaves_the_target_as_it_was_or_wholly_restored() {
    let pg = PgCluster::start();
    pg.create_db("shop");
    pg.sql(
        "shop",
        "CREATE TABLE t (g int PRIMARY KEY, h text); \
         INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 100000) g; \
         CREATE INDEX t_h ON t (h); CREATE TABLE app_only (x int)",
    );
    let backups = tempfile::tempdir().unwrap();
    let out = tool(&pg, backups.path(), "shop").run(&["backup"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let dump = backups.path().join("postgres/shop_latest.sql.gz");
    let dump = dump.to_str().unwrap();
    let t = tool(&pg, backups.path(), "target");

    // A whole restore: how long it takes and what it leaves.
    reset_target(&pg);
    let started = Instant::now();
    let out = t.run(&["restore", dump]);
    let whole = started.elapsed();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let restored = state(&pg);
    reset_target(&pg);
    let before = state(&pg);
    assert_ne!(before, restored);

    let (mut mid_stream, mut completed) = (0, 0);
    for kill in 0..KILLS {
        let at = whole.mul_f64(0.25 + fastrand::f64() * 0.8);
        let child = t.spawn(&["restore", dump]);
        // Not a wait for an event: the moment of the kill is the experiment.
        std::thread::sleep(at);
        // SAFETY: kill(2) of a child the test started and has not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        let out = finish(child);
        wait_for_sessions_to_end(&pg);
        let now = state(&pg);
        if now == restored {
            completed += 1;
            reset_target(&pg);
        } else {
            assert_eq!(
                now, before,
                "kill {kill} at {at:?} (code {:?}) left the target half restored; stderr:\n{}",
                out.code, out.stderr
            );
            // Killed while psql was being fed: the case that matters.
            if out.code.is_none() && out.stderr.contains("restoring ") {
                mid_stream += 1;
            }
        }
    }
    eprintln!("{KILLS} kills over {whole:?}: {mid_stream} mid-stream, {completed} completed");
    assert!(
        mid_stream >= 10,
        "only {mid_stream} of {KILLS} kills landed while psql was being fed"
    );

    // Every one of them said it started before it touched the database.
    let audit = std::fs::read_to_string(backups.path().join("audit.log")).unwrap();
    let started_lines = audit
        .lines()
        .filter(|l| l.contains("\"outcome\":\"started\""))
        .count();
    assert!(
        started_lines > mid_stream + completed,
        "{started_lines} started lines for {mid_stream} + {completed} + 1 restores that got \
         that far:\n{audit}"
    );
}
