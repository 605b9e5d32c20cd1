//! `backup`: pg_dump → gzip (in-process) → sha256 → atomic publish.

use crate::child::Child;
use crate::cli::BackupArgs;
use crate::conn::Conn;
use crate::pg_error;
use anyhow::{bail, Context, Result};
use backup_common::crypt::Encryption;
use backup_common::dump_trailer::{DumpTail, Trailer};
use backup_common::names::Selection;
use backup_common::tool::BackupRun;
use backup_common::{lock, log, publish, PendingArtifact, ResultRecord};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::{Read, Write};
use std::process::Stdio;

pub const COMPONENT: &str = "postgres";

/// The product description's pg_dump options: plain SQL that restores into a
/// database owned by anyone and replaces what is there.
pub const SEED_OPTIONS: [&str; 4] = ["--no-owner", "--no-acl", "--clean", "--if-exists"];

const CHUNK: usize = 256 * 1024;

/// What one database's backup published.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The cluster's globals were dealt with: published with the database,
    /// or left out with a warning (no rights to read them).
    pub globals_done: bool,
}

/// The databases a backup takes, in order: those named, or (`all`) every
/// database of the cluster that accepts connections except the templates.
/// A name psql gave hex-encoded (`encode(…, 'hex')`).
fn from_hex(hex: &str) -> Option<String> {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

pub fn databases(args: &BackupArgs, conn: &Conn, selection: &Selection) -> Result<Vec<String>> {
    match selection {
        Selection::Named(names) => Ok(names.clone()),
        Selection::All => {
            let listed = crate::restore_test::psql(
                conn,
                &args.psql,
                &conn.db,
                // Hex: a name with a newline would otherwise read as two.
                &format!(
                    "SELECT encode(convert_to(datname, 'UTF8'), 'hex') || ' ' || {} \
                     FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
                    crate::restore_test::scratch_marked_sql()
                ),
            )
            .context("listing the cluster's databases for POSTGRES_DB=all")?;
            let listed = listed
                .lines()
                .map(|line| {
                    let (hex, scratch) = line.split_once(' ')?;
                    Some((from_hex(hex)?, scratch == "true"))
                })
                .collect::<Option<Vec<(String, bool)>>>()
                .context("psql listed a database name that is not hex-encoded UTF-8")?;
            // A drill's scratch database is a copy of another one, never a
            // series of its own (one left by a killed drill would otherwise be
            // backed up night after night).
            let mut scratch = Vec::new();
            let mut names = Vec::new();
            for (name, is_scratch) in listed {
                if is_scratch {
                    scratch.push(name);
                } else {
                    names.push(name);
                }
            }
            for name in &scratch {
                log::log(
                    COMPONENT,
                    &format!(
                        "POSTGRES_DB=all: skipping {name}, a restore drill's scratch database \
                         (the next drill removes it)"
                    ),
                );
            }
            log::log(
                COMPONENT,
                &format!(
                    "POSTGRES_DB=all: {} database(s): {}",
                    names.len(),
                    names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            Ok(names)
        }
    }
}

/// Dumps `conn.db` (with the cluster's globals when `with_globals`) and
/// publishes it, or writes the dump to stdout (`-o -`).
pub fn backup(
    run: &BackupRun,
    args: &BackupArgs,
    conn: &Conn,
    with_globals: bool,
    encryption: &Encryption,
) -> Result<Outcome> {
    if args.output.to_stdout() {
        let mut out = encryption.wrap(std::io::stdout().lock())?;
        dump_into(conn, args, &mut out)?;
        out.finish()?.flush()?;
        return Ok(Outcome::default());
    }
    // A database found by `all` has not been checked as a file name yet, and
    // one named like the globals would take their series.
    backup_common::names::check_database(&conn.db).map_err(|e| anyhow::anyhow!("{e}"))?;
    if conn.db == GLOBALS {
        bail!(
            "a database named {GLOBALS:?} would share its file names with the cluster's globals; \
             back it up with -o - instead"
        );
    }

    let dir = args.tree.backup_dir.join(COMPONENT);
    publish::ensure_dir(&dir)?;
    let _lock = lock::lock_dir(&dir)?;
    let mut pending = PendingArtifact::create_now(&dir, &conn.db, "sql.gz", encryption)?;
    log::log(
        COMPONENT,
        &format!(
            "dumping database {} on {}:{} into {}",
            conn.db,
            conn.host,
            conn.port,
            pending.final_path().display()
        ),
    );
    let sql_bytes =
        dump_into(conn, args, &mut pending).map_err(|e| publish::disk_full_hint(e, &dir))?;
    let globals = if with_globals {
        globals(conn, args, &dir, encryption)?
    } else {
        None
    };
    // The database and the cluster's globals are one unit: both or neither.
    let mut artifacts = vec![pending];
    artifacts.extend(globals.map(|(pending, _)| pending));
    let published = run
        .publish(artifacts, |published| {
            let mut record = ResultRecord::success(COMPONENT, &published[0])
                .with("database", conn.db.clone())
                .with("sql_bytes", sql_bytes);
            if let Some(g) = published.get(1) {
                record = record.with("globals_file", g.file_name.clone());
            }
            record
        })
        .map_err(|e| publish::disk_full_hint(e, &dir))?;
    if let Some(g) = published.get(1) {
        log::log(
            COMPONENT,
            &format!(
                "published {} (the cluster's roles and tablespaces)",
                g.file_name
            ),
        );
    }
    log::log(
        COMPONENT,
        &format!(
            "published {} ({} bytes, {} bytes of SQL)",
            published[0].file_name, published[0].size_bytes, sql_bytes
        ),
    );
    Ok(Outcome {
        globals_done: with_globals,
    })
}

/// `globals_…sql.gz` under a temp name, ready to publish with the database, and
/// its size in SQL; `None` (with a warning) when the user may not read the
/// globals at all. Without the right to read role passwords (pg_authid), the
/// roles are kept without them, and the warning says so.
fn globals(
    conn: &Conn,
    args: &BackupArgs,
    dir: &std::path::Path,
    encryption: &Encryption,
) -> Result<Option<(PendingArtifact, u64)>> {
    for without_passwords in [false, true] {
        let mut pending = PendingArtifact::create_now(dir, GLOBALS, "sql.gz", encryption)?;
        match globals_into(conn, args, without_passwords, &mut pending) {
            Ok(bytes) => {
                if without_passwords {
                    log::log(
                        COMPONENT,
                        &format!(
                            "warning: {} may not read role passwords (pg_authid); the globals \
                             are kept without them — restored roles need new passwords",
                            conn.user
                        ),
                    );
                }
                return Ok(Some((pending, bytes)));
            }
            Err(e) if !without_passwords && format!("{e:#}").contains("pg_authid") => continue,
            Err(e) if format!("{e:#}").contains("permission denied") => {
                log::log(
                    COMPONENT,
                    &format!(
                        "warning: the cluster's globals (roles, tablespaces) were not backed up: {}",
                        backup_common::exit::one_line(&e)
                    ),
                );
                return Ok(None);
            }
            Err(e) => {
                return Err(publish::disk_full_hint(e, dir).context(
                    "the cluster's globals (pg_dumpall --globals-only; --no-globals skips them)",
                ))
            }
        }
    }
    unreachable!("the second attempt returns")
}

/// The artifact prefix of the cluster's globals.
pub const GLOBALS: &str = "globals";

/// Runs pg_dump and writes its gzip-compressed output to `out`. Succeeds only if
/// pg_dump exited 0, its output ended with the trailer and everything was
/// written; returns the uncompressed size.
fn dump_into<W: Write>(conn: &Conn, args: &BackupArgs, out: W) -> Result<u64> {
    let mut cmd = conn.command(&args.pg_dump, &conn.db);
    cmd.args(SEED_OPTIONS).arg("--no-password");
    let program = Program {
        path: &args.pg_dump,
        name: "pg_dump",
        flag: "--pg-dump",
        trailer: Trailer::Database,
    };
    sql_into(&program, cmd, args.level, out)
}

/// The cluster's globals (roles with their attributes, passwords as stored and
/// memberships; tablespaces) from `pg_dumpall --globals-only`, compressed into
/// `out`, complete only with pg_dumpall's trailer. A user who may not read
/// pg_authid gets them `without_passwords`, as pg_dumpall can.
fn globals_into<W: Write>(
    conn: &Conn,
    args: &BackupArgs,
    without_passwords: bool,
    out: W,
) -> Result<u64> {
    let mut cmd = conn.command(&args.pg_dumpall, &conn.db);
    cmd.args(["--globals-only", "--no-password", "-l", &conn.db]);
    if without_passwords {
        cmd.arg("--no-role-passwords");
    }
    let program = Program {
        path: &args.pg_dumpall,
        name: "pg_dumpall",
        flag: "--pg-dumpall",
        trailer: Trailer::Cluster,
    };
    sql_into(&program, cmd, args.level, out)
}

/// A client program that writes plain SQL on stdout.
struct Program<'a> {
    path: &'a std::path::Path,
    name: &'static str,
    flag: &'static str,
    trailer: Trailer,
}

/// Runs `cmd` (the program) and writes its gzip-compressed output to `out`.
/// Succeeds only if it exited 0, its output ended with its trailer and
/// everything was written; returns the uncompressed size.
fn sql_into<W: Write>(
    program: &Program<'_>,
    mut cmd: std::process::Command,
    level: u32,
    out: W,
) -> Result<u64> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = Child::spawn(&mut cmd, program.path, program.flag)?;
    let mut stdout = child.process.stdout.take().expect("stdout is piped");
    let name = program.name;

    let mut encoder = GzEncoder::new(out, Compression::new(level));
    let mut tail = DumpTail::of(program.trailer);
    let mut buf = vec![0u8; CHUNK];
    let mut sql_bytes = 0u64;
    // SQL bytes and their rate, on a terminal only.
    let progress = backup_common::progress::Progress::bytes(&format!("{name}: SQL"), None);
    let copied: Result<()> = (|| loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}'s output")),
        };
        tail.push(&buf[..n]);
        sql_bytes += n as u64;
        progress.inc(n as u64);
        encoder
            .write_all(&buf[..n])
            .context("cannot write the compressed dump")?;
    })();
    progress.finish();
    drop(stdout);

    if let Err(e) = copied {
        // pg_dump must not keep a snapshot open for a dump nobody will keep.
        let _ = child.kill();
        return Err(e);
    }
    let (status, stderr) = child.wait()?;
    if !status.success() {
        bail!("{}", pg_error::explain(name, status, &stderr));
    }
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        log::log(COMPONENT, line);
    }
    if !tail.is_complete() {
        bail!(
            "{name} exited 0 but its output ended without the \"{}\" trailer \
             ({sql_bytes} bytes); the dump is incomplete and was not published",
            program.trailer.words()
        );
    }
    encoder
        .finish()
        .and_then(|mut out| out.flush())
        .context("cannot write the compressed dump")?;
    Ok(sql_bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_come_back_from_hex_whole() {
        assert_eq!(
            super::from_hex("6576696c0a73686f70").as_deref(),
            Some("evil\nshop")
        );
        assert_eq!(super::from_hex("c3bc").as_deref(), Some("ü"));
        assert_eq!(super::from_hex("zz"), None);
        assert_eq!(super::from_hex("6"), None);
    }
}
