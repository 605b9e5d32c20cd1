//! `restore-test`: a dump restored into a scratch database and compared with
//! what it holds (a dump records its row counts itself: the rows of each COPY
//! block), then dropped. backup-verify --restore-test runs it.

use crate::cli::{Connection, RestoreArgs, RestoreTestArgs};
use crate::conn::Conn;
use crate::dump::COMPONENT;
use crate::restore::run_restore;
use anyhow::{bail, Context, Result};
use backup_common::crypt::Decryption;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

/// Rows per table in a plain-format dump: the lines of each `COPY … FROM stdin;` block.
pub fn copy_counts(sql: impl BufRead) -> Result<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in sql.split(b'\n') {
        let line = line.context("cannot read the dump")?;
        match &current {
            None => {
                if let Some(rest) = line.strip_prefix(b"COPY ") {
                    if line.ends_with(b" FROM stdin;") {
                        let rest = String::from_utf8_lossy(rest);
                        let table = rest.split(" (").next().unwrap_or(&rest);
                        let table = table
                            .split(" FROM stdin;")
                            .next()
                            .unwrap_or(table)
                            .to_owned();
                        counts.insert(table.clone(), 0);
                        current = Some(table);
                    }
                }
            }
            Some(table) => {
                if line == b"\\." {
                    current = None;
                } else {
                    *counts
                        .get_mut(table)
                        .expect("inserted when the block began") += 1;
                }
            }
        }
    }
    Ok(counts)
}

/// Restores the dump into a scratch database, compares the rows of every table
/// with the dump's own count of them, and drops the scratch database again.
pub fn restore_test(args: &RestoreTestArgs, server: &Conn, decryption: &Decryption) -> Result<()> {
    let dump = &args.file;
    let file =
        std::fs::File::open(dump).with_context(|| format!("cannot open {}", dump.display()))?;
    let name = dump.file_name().unwrap_or_default().to_string_lossy();
    let plain = decryption.reader(BufReader::new(file), &name)?;
    let expected = copy_counts(BufReader::new(flate2::read::MultiGzDecoder::new(plain)))?;
    // The scratch database is named after the dump's own database.
    let series = backup_common::ArtifactName::parse(&name)
        .map(|n| n.prefix)
        .unwrap_or_else(|| server.db.clone());
    let suffix = format!("_verify_{}", std::process::id());
    let kept: String = series
        .chars()
        .scan(0, |len, c| {
            *len += c.len_utf8();
            (*len <= 63 - suffix.len()).then_some(c)
        })
        .collect();
    let scratch = format!("{kept}{suffix}");
    let conn = server.with_db(&scratch);
    remove_left_over_scratch(&conn, &args.psql, &kept);
    let restore = RestoreArgs {
        file: dump.to_owned(),
        connection: Connection {
            db: scratch.clone(),
            ..args.connection.clone()
        },
        create: true,
        create_if_missing: false,
        globals: false,
        psql: args.psql.clone(),
        restore_role: None,
    };
    // A signal drops the scratch database too (psql, killed first, may still
    // hold a session: FORCE ends it).
    let drop_sql = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        crate::rights::quote_ident(&scratch)
    );
    let (hook_conn, hook_psql, hook_sql) = (conn.clone(), args.psql.clone(), drop_sql.clone());
    let scratch_target =
        backup_common::cleanup::Scratch::watch(COMPONENT, "database", move |_| {
            psql(
                &hook_conn,
                &hook_psql,
                crate::conn::MAINTENANCE_DB,
                &hook_sql,
            )
            .map(drop)
        })?;
    scratch_target.set(Some(&scratch));
    let restored = run_restore(&restore, &conn, decryption, true);
    backup_common::cleanup::failpoint("restore-test::restored");
    let mut delegate = None;
    let compared = restored.and_then(|(_, d)| {
        // Read with the rights the dump ran with, never a superuser's: a
        // view or function of the dump runs when its table is counted.
        let reader = d.as_ref().map_or_else(|| conn.clone(), |d| d.conn(&conn));
        delegate = d;
        for (table, rows) in &expected {
            if !is_qualified_name(table) {
                bail!("the dump's COPY names {table:?}, which is no table name pg_dump writes");
            }
            let got = psql(
                &reader,
                &args.psql,
                &scratch,
                &format!("SELECT count(*) FROM {table}"),
            )?;
            if got != rows.to_string() {
                bail!("table {table} has {got} rows after the restore, the dump holds {rows}");
            }
        }
        Ok(())
    });
    // The scratch database goes whatever happened (it may not exist if CREATE
    // failed), then its owner.
    let _ = psql(&conn, &args.psql, crate::conn::MAINTENANCE_DB, &drop_sql);
    if let Some(d) = delegate {
        crate::rights::drop_with(&conn, &args.psql, d, crate::conn::MAINTENANCE_DB);
    }
    compared?;
    println!(
        "{}",
        serde_json::json!({
            "component": COMPONENT, "action": "restore-test", "status": "success",
            "file": dump.file_name().map(|n| n.to_string_lossy().into_owned()),
            "scratch": scratch, "tables": expected.len(),
            "rows": expected.values().sum::<u64>(),
        })
    );
    Ok(())
}

/// `schema.table` as pg_dump writes it in a COPY line: each part a plain
/// lower-case identifier or a double-quoted one (`""` inside), nothing else.
pub fn is_qualified_name(name: &str) -> bool {
    fn part(s: &str) -> Option<&str> {
        if let Some(rest) = s.strip_prefix('"') {
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if rest[i + 1..].starts_with('"') {
                        chars.next();
                        continue;
                    }
                    return (i > 0).then(|| &rest[i + 1..]);
                }
            }
            return None;
        }
        let end = s
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$'))
            .unwrap_or(s.len());
        let first = s.chars().next()?;
        (end > 0 && (first.is_ascii_lowercase() || first == '_')).then(|| &s[end..])
    }
    let Some(rest) = part(name) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('.') else {
        return false;
    };
    part(rest) == Some("")
}

/// The comment every drill's scratch database carries from its creation: what
/// marks a database as one a drill may drop (a name can be anyone's).
pub const SCRATCH_COMMENT: &str = "backup-kit restore drill scratch";

/// The pid in a scratch database's name (`<series>_verify_<pid>`), if it is one.
pub fn scratch_pid(name: &str) -> Option<u32> {
    let (_, pid) = name.rsplit_once("_verify_")?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `pid` (from a scratch database's or a delegate role's name) is this
/// run or a pg-dumpwrap still running on this machine: what it made is in use.
pub(crate) fn ours_or_running(pid: u32) -> bool {
    pid == std::process::id()
        || std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim_end() == "pg-dumpwrap")
}

/// SQL true for a row of pg_database that a drill made: marked by the comment
/// made right after it, or owned by a restore's delegate role — which the
/// CREATE itself sets, so a drill killed between the two is still known.
pub fn scratch_marked_sql() -> String {
    format!(
        "(shobj_description(oid, 'pg_database') IS NOT DISTINCT FROM '{SCRATCH_COMMENT}' \
         OR starts_with(pg_get_userbyid(datdba), '{}'))",
        crate::rights::DELEGATE_PREFIX
    )
}

/// Scratch databases of `series` that an earlier drill left behind when it
/// was killed (SIGKILL gives no chance to drop them): they are full copies of
/// production data, so they go before a new one is made. One whose drill is
/// still running here is left alone.
fn remove_left_over_scratch(conn: &Conn, program: &Path, series: &str) {
    let pattern =
        crate::rights::quote_literal(&format!("^{}_verify_[0-9]+$", regex_escape(series)));
    let listed = match psql(
        conn,
        program,
        crate::conn::MAINTENANCE_DB,
        &format!(
            "SELECT datname FROM pg_database WHERE datname ~ {pattern} AND {}",
            scratch_marked_sql()
        ),
    ) {
        Ok(listed) => listed,
        Err(e) => {
            backup_common::log::log(
                COMPONENT,
                &format!(
                    "warning: cannot look for scratch databases left by earlier drills: {}",
                    backup_common::exit::one_line(&e)
                ),
            );
            return;
        }
    };
    for name in listed.lines() {
        let Some(pid) = scratch_pid(name) else {
            continue;
        };
        if ours_or_running(pid) {
            continue;
        }
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            crate::rights::quote_ident(name)
        );
        let what = match psql(conn, program, crate::conn::MAINTENANCE_DB, &sql) {
            Ok(_) => format!("removed the scratch database {name}, left by an earlier drill"),
            Err(e) => format!(
                "warning: the scratch database {name}, left by an earlier drill, could not be \
                 removed ({}) — remove it by hand",
                backup_common::exit::one_line(&e)
            ),
        };
        backup_common::log::log(COMPONENT, &what);
    }
}

/// `text` matched literally in a PostgreSQL regular expression.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One query through psql, its unaligned rows.
pub(crate) fn psql(conn: &Conn, program: &Path, db: &str, sql: &str) -> Result<String> {
    let out = conn
        .command(program, db)
        .args([
            "-X",
            "-A",
            "-t",
            "--no-password",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .context("cannot run psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_the_rows_of_every_copy_block() {
        let sql = "SET x = 1;\nCOPY public.t (a, b) FROM stdin;\n1\tx\n2\ty\n\\.\n\nCOPY \"Ünï\".\"Tåble\" (\"k\") FROM stdin;\n\\.\nCOPY s.u FROM stdin;\na\n\\.\n";
        let counts = super::copy_counts(sql.as_bytes()).unwrap();
        assert!(super::is_qualified_name("public.t"));
        assert!(super::is_qualified_name("\"Ünï\".\"Tå\"\"ble\""));
        assert!(!super::is_qualified_name(
            "public.items;COPY(SELECT 1)TO PROGRAM 'x';SELECT 0"
        ));
        assert!(!super::is_qualified_name("t"));
        assert!(!super::is_qualified_name("public.\"open"));
        assert_eq!(super::scratch_pid("shop_verify_123"), Some(123));
        assert_eq!(super::scratch_pid("a_verify_b_verify_9"), Some(9));
        assert_eq!(super::scratch_pid("shop_verify_"), None);
        assert_eq!(super::scratch_pid("shop_verify_12x"), None);
        assert_eq!(super::scratch_pid("shop"), None);
        assert_eq!(super::regex_escape("a.b$c_d"), "a\\.b\\$c_d");
        assert_eq!(counts["public.t"], 2);
        assert_eq!(counts["\"Ünï\".\"Tåble\""], 0);
        assert_eq!(counts["s.u"], 1);
        assert_eq!(counts.len(), 3);
    }
}
