//! `--restore-test`: the newest PostgreSQL dump and Qdrant archive restored into
//! scratch targets, compared with what the backup recorded, then dropped.
//! A dump records its row counts itself (the rows of each COPY block); a Qdrant
//! archive records points counts in its manifest.

use crate::{Cli, Verdict};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub fn run(cli: &Cli) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    if let Some(dump) = latest(&cli.backup_dir.join("postgres"), ".sql.gz") {
        let failure = postgres(cli, &dump)
            .err()
            .map(|e| backup_common::exit::one_line(&e));
        verdicts.push(Verdict {
            path: dump,
            kind: Some("postgres restore test"),
            failure,
        });
    }
    if let Some(archive) = latest(&cli.backup_dir.join("qdrant"), ".tar.gz") {
        let failure = qdrant(cli, &archive)
            .err()
            .map(|e| backup_common::exit::one_line(&e));
        verdicts.push(Verdict {
            path: archive,
            kind: Some("qdrant restore test"),
            failure,
        });
    }
    if verdicts.is_empty() {
        verdicts.push(Verdict {
            path: cli.backup_dir.clone(),
            kind: Some("restore test"),
            failure: Some("no *_latest PostgreSQL or Qdrant backup to restore".into()),
        });
    }
    verdicts
}

fn latest(dir: &Path, ext: &str) -> Option<PathBuf> {
    let mut links: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(&format!("_latest{ext}")) && p.exists()
        })
        .collect();
    links.sort();
    links.pop()
}

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

fn postgres(cli: &Cli, dump: &Path) -> Result<()> {
    let file =
        std::fs::File::open(dump).with_context(|| format!("cannot open {}", dump.display()))?;
    let expected = copy_counts(BufReader::new(flate2::read::MultiGzDecoder::new(file)))?;
    let scratch = format!("{}_verify_{}", cli.postgres.db, std::process::id());
    let args = pg_dumpwrap::cli::RestoreArgs {
        file: dump.to_owned(),
        connection: pg_dumpwrap::cli::Connection {
            db: scratch.clone(),
            ..cli.postgres.clone()
        },
        create: true,
        psql: "psql".into(),
    };
    let conn = pg_dumpwrap::conn::Conn::from_args(&args.connection)?;
    let restored = pg_dumpwrap::restore::run_restore(&args);
    let compared = restored.and_then(|_| {
        for (table, rows) in &expected {
            let got = psql(&conn, &scratch, &format!("SELECT count(*) FROM {table}"))?;
            if got != rows.to_string() {
                bail!("table {table} has {got} rows after the restore, the dump holds {rows}");
            }
        }
        Ok(())
    });
    // The scratch database goes whatever happened (it may not exist if CREATE failed).
    let _ = psql(
        &conn,
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{scratch}\""),
    );
    compared
}

fn psql(conn: &pg_dumpwrap::conn::Conn, db: &str, sql: &str) -> Result<String> {
    let out = conn
        .command(Path::new("psql"), db)
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

fn qdrant(cli: &Cli, archive: &Path) -> Result<()> {
    let manifest = qdrant_snap::restore::manifest_of(&std::fs::canonicalize(archive)?)?;
    let api = qdrant_snap::backup::connect(&cli.qdrant.url, &cli.qdrant.timeouts)?;
    for c in &manifest.collections {
        let scratch = format!("{}_verify_{}", c.name, std::process::id());
        let args = qdrant_snap::cli::RestoreArgs {
            file: archive.to_owned(),
            server: qdrant_snap::cli::Server {
                url: cli.qdrant.url.clone(),
                timeouts: cli.qdrant.timeouts.clone(),
            },
            collections: vec![c.name.clone()],
            rename: Some(scratch.clone()),
        };
        // run_restore compares the restored points count with the manifest.
        let restored = qdrant_snap::restore::run_restore(&args);
        let _ = api.delete_collection(&scratch);
        restored?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_the_rows_of_every_copy_block() {
        let sql = "SET x = 1;\nCOPY public.t (a, b) FROM stdin;\n1\tx\n2\ty\n\\.\n\nCOPY \"Ünï\".\"Tåble\" (\"k\") FROM stdin;\n\\.\nCOPY s.u FROM stdin;\na\n\\.\n";
        let counts = super::copy_counts(sql.as_bytes()).unwrap();
        assert_eq!(counts["public.t"], 2);
        assert_eq!(counts["\"Ünï\".\"Tåble\""], 0);
        assert_eq!(counts["s.u"], 1);
        assert_eq!(counts.len(), 3);
    }
}
