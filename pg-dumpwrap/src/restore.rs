//! `restore`: check the sidecar, then stream the decompressed dump into psql in
//! one transaction that the tool opens and closes itself: `BEGIN` before the
//! first byte of the dump, `COMMIT` only after the last byte passed the guard
//! and pg_dump's trailer was seen. Whatever ends the tool before that — an
//! error, a signal, SIGKILL, the OOM killer — closes psql's input without a
//! `COMMIT`, psql ends, and the server rolls the whole transaction back (psql's
//! own `--single-transaction` would commit at the end of its input instead).

use crate::child::Child;
use crate::cli::RestoreArgs;
use crate::conn::Conn;
use crate::dump::COMPONENT;
use crate::pg_error;
use anyhow::{bail, Context, Result};
use backup_common::crypt::Decryption;
use backup_common::dump_sql::SqlGuard;
use backup_common::dump_trailer::DumpTail;
use backup_common::{log, sidecar};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

pub fn restore(args: &RestoreArgs, conn: &Conn, decryption: &Decryption) -> Result<()> {
    let summary = if args.globals {
        crate::globals::apply(args, conn, decryption)?
    } else {
        run_restore(args, conn, decryption, false)?.0
    };
    println!("{summary}");
    Ok(())
}

/// Restores into `conn`'s database and returns the summary that `restore`
/// prints. An encrypted dump (`.age`) is decrypted with the identity.
pub fn run_restore(
    args: &RestoreArgs,
    conn: &Conn,
    decryption: &Decryption,
    drill: bool,
) -> Result<(serde_json::Value, Option<crate::rights::Delegate>)> {
    let started = Instant::now();
    let sidecar::Checked {
        path: file,
        file: input,
        sha256: checked,
    } = sidecar::check(&args.file)?;
    match &checked {
        Some(sha) => log::log(
            COMPONENT,
            &format!("{} matches its .sha256 ({sha})", file.display()),
        ),
        None => log::log(
            COMPONENT,
            &format!("{} has no .sha256 sidecar; not checked", file.display()),
        ),
    }
    // Checked whole before anything is touched (a database created, psql started).
    refuse_what_pg_dump_never_writes(&file, &input, decryption).map_err(|e| {
        e.context(format!(
            "nothing was restored into {} (checked before psql started; nothing to roll back)",
            conn.db
        ))
    })?;
    let create = args.create || (args.create_if_missing && !database_exists(conn, args)?);
    let run_as = whose_rights(conn, args, create, drill)?;
    if let crate::rights::RunAs::Connection { why } = &run_as {
        log::log(COMPONENT, &format!("warning: {why}"));
    }
    let delegate = crate::rights::make_delegate(conn, &args.psql, &run_as)?;
    let applied = apply(
        conn,
        args,
        &file,
        input,
        decryption,
        create.then_some(drill),
        delegate.as_ref(),
    );
    // A drill keeps its delegate, the scratch database's owner, to read the
    // restored tables with its rights (never a superuser's: the dump's views
    // and functions run when they are read); a restore drops it now.
    let delegate = match (delegate, drill, &applied) {
        (Some(d), true, Ok(_)) => Some(d),
        (Some(d), true, Err(_)) => {
            // The database goes first: nothing the dump made is ever handed
            // to another owner.
            let _ = crate::restore_test::psql(
                conn,
                &args.psql,
                crate::conn::MAINTENANCE_DB,
                &format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    crate::rights::quote_ident(&conn.db)
                ),
            );
            crate::rights::drop_with(conn, &args.psql, d, crate::conn::MAINTENANCE_DB);
            None
        }
        (Some(d), false, _) => {
            crate::rights::drop_with(conn, &args.psql, d, &conn.db);
            None
        }
        (None, _, _) => None,
    };
    let sql_bytes = applied?;
    let seconds = started.elapsed().as_secs();
    log::log(
        COMPONENT,
        &format!(
            "restored {sql_bytes} bytes of SQL into database {} in {seconds}s",
            conn.db
        ),
    );
    let report = serde_json::json!({
        "component": COMPONENT,
        "action": "restore",
        "status": "success",
        "file": file.file_name().map(|n| n.to_string_lossy().into_owned()),
        "database": conn.db,
        "created_database": create,
        "ran_as": match &run_as {
            crate::rights::RunAs::Role(role) => role.clone(),
            crate::rights::RunAs::OwnDatabase => "the scratch database's owner".to_owned(),
            crate::rights::RunAs::Connection { .. } => conn.user.clone(),
        },
        "sha256_checked": checked.is_some(),
        "sql_bytes": sql_bytes,
        "duration_seconds": seconds,
    });
    Ok((report, delegate))
}

/// Creates the database if asked (a drill's marked as its scratch), then streams the dump into it through the
/// delegate's connection (or the server connection without one).
fn apply(
    conn: &Conn,
    args: &RestoreArgs,
    file: &Path,
    input: File,
    decryption: &Decryption,
    create: Option<bool>,
    delegate: Option<&crate::rights::Delegate>,
) -> Result<u64> {
    // `create`: Some(drill) when the database is made here.
    if let Some(drill) = create {
        let owner = delegate.map(|d| d.set_role.clone().unwrap_or_else(|| d.name.clone()));
        create_database(conn, args, owner.as_deref(), drill)?;
    }
    log::log(
        COMPONENT,
        &format!(
            "restoring {} into database {} on {}:{}{}",
            file.display(),
            conn.db,
            conn.host,
            conn.port,
            match delegate.and_then(|d| d.set_role.as_deref()) {
                Some(role) => format!(" with the rights of role {role}"),
                None if delegate.is_some() => " as its owner, a role of its own".to_owned(),
                None => format!(" as {}", conn.user),
            }
        ),
    );
    let sql_conn = delegate.map_or_else(|| conn.clone(), |d| d.conn(conn));
    let preamble = delegate.map(|d| d.preamble()).unwrap_or_default();
    stream_into_psql(&sql_conn, args, file, input, decryption, &preamble)
}

/// Whose rights the dump's SQL runs with (`rights::choose` on the facts).
fn whose_rights(
    conn: &Conn,
    args: &RestoreArgs,
    create: bool,
    drill: bool,
) -> Result<crate::rights::RunAs> {
    use crate::rights;
    let (connection_is_superuser, owner) = rights::superuser_and_owner(conn, &args.psql, &conn.db)?;
    let restore_role = match args.restore_role.as_deref().filter(|r| !r.is_empty()) {
        Some(role) => Some((role, rights::role_is_safe(conn, &args.psql, role)?)),
        None => None,
    };
    let owner_safe = match (&owner, create) {
        (Some(o), false) => Some((o.as_str(), rights::role_is_safe(conn, &args.psql, o)?)),
        _ => None,
    };
    rights::choose(&rights::Situation {
        connection_is_superuser,
        restore_role,
        drill,
        creating: create,
        owner: owner_safe,
    })
    .map_err(backup_common::usage)
}

fn database_exists(conn: &Conn, args: &RestoreArgs) -> Result<bool> {
    let literal = crate::rights::quote_literal(&conn.db);
    let found = crate::restore_test::psql(
        conn,
        &args.psql,
        crate::conn::MAINTENANCE_DB,
        &format!("SELECT count(*) FROM pg_database WHERE datname = {literal}"),
    )
    .with_context(|| format!("cannot find out whether database {} exists", conn.db))?;
    Ok(found != "0")
}

fn create_database(
    conn: &Conn,
    args: &RestoreArgs,
    owner: Option<&str>,
    drill: bool,
) -> Result<()> {
    let quoted = crate::rights::quote_ident(&conn.db);
    let owner = owner
        .map(|o| format!(" OWNER {}", crate::rights::quote_ident(o)))
        .unwrap_or_default();
    let mut cmd = conn.command(&args.psql, crate::conn::MAINTENANCE_DB);
    cmd.args(["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE {quoted}{owner}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let (status, stderr) = Child::spawn(&mut cmd, &args.psql, "--psql")?.wait()?;
    if !status.success() {
        bail!(
            "cannot create database {}: {}",
            conn.db,
            pg_error::explain("psql", status, &stderr)
        );
    }
    if drill {
        // Killed here, the database is still known as a drill's by its owner.
        backup_common::cleanup::failpoint("restore::created");
        crate::restore_test::psql(
            conn,
            &args.psql,
            crate::conn::MAINTENANCE_DB,
            &format!(
                "COMMENT ON DATABASE {quoted} IS '{}'",
                crate::restore_test::SCRATCH_COMMENT
            ),
        )
        .context("cannot mark the drill's scratch database")?;
    }
    log::log(COMPONENT, &format!("created database {}", conn.db));
    Ok(())
}

/// Reads the whole dump once before psql starts: anything pg_dump does not
/// write (a psql meta-command, `COPY … PROGRAM`) refuses the restore before a
/// single statement is applied.
fn refuse_what_pg_dump_never_writes(
    file: &Path,
    input: &File,
    decryption: &Decryption,
) -> Result<()> {
    let mut sql = plain_sql(file, input, decryption, "checking")?;
    let mut guard = SqlGuard::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut passed = Vec::with_capacity(buf.len());
    loop {
        let n = match sql.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("{} is not a valid gzip file", file.display())))
            }
        };
        passed.clear();
        guard
            .push(&buf[..n], &mut passed)
            .with_context(|| format!("{} refused", file.display()))?;
    }
    guard
        .finish(&mut passed)
        .with_context(|| format!("{} refused", file.display()))?;
    Ok(())
}

/// psql's own `\restrict` (15.14, 16.10, 17.6 and later): no meta-command at
/// all runs until the key we chose is given, which the dump cannot know.
fn psql_has_restrict(psql: &Path) -> bool {
    let Ok(out) = std::process::Command::new(psql)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or("");
    let mut parts = version.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match major {
        18.. => true,
        17 => minor >= 6,
        16 => minor >= 10,
        15 => minor >= 14,
        14 => minor >= 19,
        13 => minor >= 22,
        _ => false,
    }
}

/// The SQL of a dump, read from the start of `input` (decrypted if it is
/// `.age`), with progress (`doing` the file) on a terminal.
fn plain_sql<'a>(
    file: &Path,
    input: &File,
    decryption: &Decryption,
    doing: &str,
) -> Result<MultiGzDecoder<BufReader<Box<dyn Read + 'a>>>> {
    let mut input = input.try_clone()?;
    input.seek(SeekFrom::Start(0))?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let input = backup_common::progress::reading(&format!("{doing} {name}"), input);
    let plain = decryption.reader(BufReader::with_capacity(256 * 1024, input), &name)?;
    Ok(MultiGzDecoder::new(BufReader::with_capacity(
        256 * 1024,
        plain,
    )))
}

/// psql applying what it reads on stdin to `db`, stopping at the first error.
/// The caller writes `BEGIN;` first and `COMMIT;` only when everything went
/// through: input that ends without it (the caller died) ends psql's session
/// inside the transaction, which the server rolls back.
pub(crate) fn psql_transaction(conn: &Conn, psql: &Path, db: &str) -> std::process::Command {
    let mut cmd = conn.command(psql, db);
    cmd.args(["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    cmd
}

/// What opens and closes the restore's one transaction.
pub(crate) const BEGIN: &[u8] = b"BEGIN;\n";
pub(crate) const COMMIT: &[u8] = b"\nCOMMIT;\n";

fn stream_into_psql(
    conn: &Conn,
    args: &RestoreArgs,
    file: &Path,
    input: File,
    decryption: &Decryption,
    preamble: &str,
) -> Result<u64> {
    let restrict = psql_has_restrict(&args.psql);
    if !restrict {
        log::log(
            COMPONENT,
            "psql has no \\restrict (older than 15.14/16.10/17.6); relying on pg-dumpwrap's own check of the dump",
        );
    }
    let mut sql = plain_sql(file, &input, decryption, "restoring")?;

    let mut cmd = psql_transaction(conn, &args.psql, &conn.db);
    let mut psql = Child::spawn(&mut cmd, &args.psql, "--psql")?;
    let mut stdin = psql.process.stdin.take().expect("stdin is piped");

    let mut guard = SqlGuard::default();
    let mut passed = Vec::with_capacity(256 * 1024);
    if restrict {
        // The dump's own \restrict lines are blanked by the guard.
        let key: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(32)
            .collect();
        passed.extend_from_slice(format!("\\restrict {key}\n").as_bytes());
    }
    passed.extend_from_slice(preamble.as_bytes());
    passed.extend_from_slice(BEGIN);
    let mut tail = DumpTail::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut sql_bytes = 0u64;
    enum Stop {
        Input(anyhow::Error),
        PsqlGone,
    }
    let fed: Result<(), Stop> = loop {
        let n = match sql.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Err(Stop::Input(
                    anyhow::Error::new(e)
                        .context(format!("{} is not a valid gzip file", file.display())),
                ))
            }
        };
        tail.push(&buf[..n]);
        sql_bytes += n as u64;
        if let Err(e) = guard.push(&buf[..n], &mut passed) {
            // The file changed since it was checked: never let psql see it.
            break Err(Stop::Input(anyhow::Error::new(e)));
        }
        if stdin.write_all(&passed).is_err() {
            // psql stopped reading: it failed; its stderr says why.
            break Err(Stop::PsqlGone);
        }
        passed.clear();
    };
    let fed = fed.and_then(|()| {
        if tail.is_complete() {
            Ok(())
        } else {
            Err(Stop::Input(anyhow::anyhow!(
                "{} ends without pg_dump's \"dump complete\" trailer; it is incomplete",
                file.display()
            )))
        }
    });
    match fed {
        Err(Stop::Input(e)) => {
            // Kill before closing stdin: at end of input psql would COMMIT.
            let _ = psql.kill();
            drop(stdin);
            Err(e.context(format!(
                "nothing was restored into {} (transaction rolled back)",
                conn.db
            )))
        }
        Err(Stop::PsqlGone) | Ok(()) => {
            // Every byte passed: now, and only now, the transaction commits.
            let committed = fed.is_ok() && stdin.write_all(COMMIT).is_ok();
            backup_common::cleanup::failpoint("restore::commit-sent");
            drop(stdin);
            let (status, stderr) = psql.wait()?;
            if !status.success() || !committed {
                bail!(
                    "restore into {} failed and was rolled back: {}",
                    conn.db,
                    pg_error::explain("psql", status, &stderr)
                );
            }
            Ok(sql_bytes)
        }
    }
}
