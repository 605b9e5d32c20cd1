//! `restore --globals`: the cluster's roles and tablespaces, as
//! `pg_dumpall --globals-only` wrote them, applied to a cluster that may
//! already have some of them. pg_dumpall writes each role as `CREATE ROLE x;`
//! followed by `ALTER ROLE x WITH …` (attributes, password): a role that exists
//! keeps existing and gets the attributes (so "updated, not an error"), and the
//! role running the restore is left alone (it could otherwise take away its
//! own rights halfway through).

use std::collections::BTreeSet;

/// The identifier at the start of `s` (quoted or not) and what follows it.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(rest) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, c)| *c) == Some('"') {
                    name.push('"');
                    chars.next();
                } else {
                    return Some((name, &rest[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        None
    } else {
        let end = s.find([' ', ';']).unwrap_or(s.len());
        (end > 0).then(|| (s[..end].to_owned(), &s[end..]))
    }
}

/// What a line of pg_dumpall's globals does to a role, if anything.
enum RoleLine {
    Create(String),
    Alter(String),
    Other,
}

fn role_line(line: &str) -> RoleLine {
    let parse = |prefix: &str| {
        line.strip_prefix(prefix)
            .and_then(identifier)
            .map(|(n, _)| n)
    };
    if let Some(name) = parse("CREATE ROLE ") {
        RoleLine::Create(name)
    } else if let Some(name) = parse("ALTER ROLE ") {
        RoleLine::Alter(name)
    } else {
        RoleLine::Other
    }
}

/// The globals as they are applied to a cluster holding `existing` roles, by
/// `me`: `CREATE ROLE` only for roles that do not exist, no statement about
/// `me`. Every other line is kept as written.
pub fn adapt(sql: &str, existing: &BTreeSet<String>, me: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(sql.len());
    let mut skipped = Vec::new();
    for line in sql.split_inclusive('\n') {
        let keep = match role_line(line.trim_end()) {
            RoleLine::Create(name) if name == me => false,
            RoleLine::Alter(name) if name == me => false,
            RoleLine::Create(name) => !existing.contains(&name),
            _ => true,
        };
        if keep {
            out.push_str(line);
        } else {
            skipped.push(line.trim_end().to_owned());
        }
    }
    (out, skipped)
}

/// Applies a globals file (`restore --globals`) to the cluster, through the
/// maintenance database `postgres`, in one transaction; the file is checked
/// whole first (sidecar, pg_dumpall's trailer, nothing pg_dumpall never writes).
pub fn apply(
    args: &crate::cli::RestoreArgs,
    conn: &crate::conn::Conn,
    decryption: &backup_common::crypt::Decryption,
) -> anyhow::Result<serde_json::Value> {
    run(&args.file, &args.psql, conn, decryption, Ending::Commit)
}

/// The drill of a globals file (`restore-test --globals`): applied exactly as
/// a restore applies it, in one transaction that is then rolled back. No
/// scratch cluster is needed (roles are cluster-wide, so a scratch database
/// would not isolate them; a transaction does), and it proves what matters on
/// the night: that this file applies to this cluster.
pub fn drill(
    file: &std::path::Path,
    psql: &std::path::Path,
    conn: &crate::conn::Conn,
    decryption: &backup_common::crypt::Decryption,
) -> anyhow::Result<serde_json::Value> {
    run(file, psql, conn, decryption, Ending::Rollback)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Commit,
    Rollback,
}

fn run(
    path: &std::path::Path,
    psql_program: &std::path::Path,
    conn: &crate::conn::Conn,
    decryption: &backup_common::crypt::Decryption,
    ending: Ending,
) -> anyhow::Result<serde_json::Value> {
    use anyhow::{bail, Context};
    use backup_common::dump_trailer::{DumpTail, Trailer};
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let backup_common::sidecar::Checked {
        path: file,
        file: input,
        sha256: checked,
    } = backup_common::sidecar::check(path)?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let plain = decryption.reader(std::io::BufReader::new(input), &name)?;
    let mut raw = Vec::new();
    // Roles and tablespaces are small; a file far larger is not a globals file.
    flate2::read::MultiGzDecoder::new(plain)
        .take(64 << 20)
        .read_to_end(&mut raw)
        .with_context(|| format!("{} is not a valid gzip file", file.display()))?;
    let mut tail = DumpTail::of(Trailer::Cluster);
    tail.push(&raw);
    if !tail.is_complete() {
        bail!(
            "{} does not end with pg_dumpall's \"cluster dump complete\" trailer; it is not a complete globals file",
            file.display()
        );
    }
    let mut guard = backup_common::dump_sql::SqlGuard::default();
    let mut sql = Vec::with_capacity(raw.len());
    guard.push(&raw, &mut sql)?;
    guard.finish(&mut sql)?;
    let sql = String::from_utf8(sql).context("the globals are not UTF-8")?;

    let query =
        |q: &str| crate::restore_test::psql(conn, psql_program, crate::conn::MAINTENANCE_DB, q);
    let me = query("SELECT current_user")?;
    let existing: BTreeSet<String> = query("SELECT rolname FROM pg_roles")?
        .lines()
        .map(str::to_owned)
        .collect();
    // The roles the file holds (those kept as they are included).
    let roles = sql
        .lines()
        .filter(|l| l.starts_with("CREATE ROLE "))
        .count();
    let (sql, skipped) = adapt(&sql, &existing, &me);
    for line in &skipped {
        backup_common::log::log(crate::dump::COMPONENT, &format!("kept as it is: {line}"));
    }
    // Our own BEGIN and COMMIT (or ROLLBACK) around it — SqlGuard lets no
    // transaction control through — stopping at the first error.
    let mut cmd = crate::restore::psql_transaction(conn, psql_program, crate::conn::MAINTENANCE_DB);
    let mut psql = crate::child::Child::spawn(&mut cmd, psql_program, "--psql")?;
    let mut stdin = psql.process.stdin.take().expect("stdin is piped");
    // A write error means psql stopped reading; its exit status says why.
    let end: &[u8] = match ending {
        Ending::Commit => crate::restore::COMMIT,
        Ending::Rollback => b"\nROLLBACK;\n",
    };
    let _ = stdin
        .write_all(crate::restore::BEGIN)
        .and_then(|()| stdin.write_all(sql.as_bytes()))
        .and_then(|()| stdin.write_all(end));
    drop(stdin);
    let (status, stderr) = psql.wait()?;
    if !status.success() {
        bail!(
            "{} — nothing was applied (one transaction)",
            crate::pg_error::explain("psql", status, &stderr)
        );
    }
    let action = match ending {
        Ending::Commit => "restore-globals",
        Ending::Rollback => "restore-test-globals",
    };
    Ok(serde_json::json!({
        "component": crate::dump::COMPONENT, "action": action, "status": "success",
        "file": name, "sha256_checked": checked.is_some(), "roles": roles,
        "roles_kept": skipped.len(), "rolled_back": ending == Ending::Rollback,
        "duration_seconds": started.elapsed().as_secs(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLOBALS: &str = "SET standard_conforming_strings = on;\n\
        CREATE ROLE app;\n\
        ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$x';\n\
        CREATE ROLE \"Odd \"\"Name\";\n\
        ALTER ROLE \"Odd \"\"Name\" WITH NOLOGIN;\n\
        CREATE ROLE postgres;\n\
        ALTER ROLE postgres WITH SUPERUSER LOGIN;\n\
        GRANT grp TO app GRANTED BY postgres;\n";

    #[test]
    fn existing_roles_are_altered_not_created_and_the_restoring_role_is_left_alone() {
        let existing: BTreeSet<String> = ["app".to_owned(), "postgres".to_owned()].into();
        let (sql, skipped) = adapt(GLOBALS, &existing, "postgres");
        assert!(!sql.contains("CREATE ROLE app;"));
        assert!(sql.contains("ALTER ROLE app WITH NOSUPERUSER"));
        assert!(sql.contains("CREATE ROLE \"Odd \"\"Name\";"));
        assert!(!sql.contains("ROLE postgres"));
        assert!(sql.contains("GRANT grp TO app GRANTED BY postgres;"));
        assert_eq!(
            skipped,
            [
                "CREATE ROLE app;",
                "CREATE ROLE postgres;",
                "ALTER ROLE postgres WITH SUPERUSER LOGIN;"
            ]
        );
    }

    #[test]
    fn quoted_names_are_read_whole() {
        let existing: BTreeSet<String> = ["Odd \"Name".to_owned()].into();
        let (sql, _) = adapt(GLOBALS, &existing, "nobody");
        assert!(!sql.contains("CREATE ROLE \"Odd"));
        assert!(sql.contains("CREATE ROLE app;"));
    }
}
