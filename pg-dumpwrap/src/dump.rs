//! `backup`: pg_dump → gzip (in-process) → sha256 → atomic publish.

use crate::child::Child;
use crate::cli::BackupArgs;
use crate::conn::Conn;
use crate::pg_error;
use anyhow::{bail, Context, Result};
use backup_common::crypt::Encryption;
use backup_common::dump_trailer::DumpTail;
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

pub fn backup(
    run: &BackupRun,
    args: &BackupArgs,
    conn: &Conn,
    encryption: &Encryption,
) -> Result<()> {
    if args.output.to_stdout() {
        let mut out = encryption.wrap(std::io::stdout().lock())?;
        dump_into(conn, args, &mut out)?;
        out.finish()?.flush()?;
        return Ok(());
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
    let published = run
        .publish(vec![pending], |published| {
            ResultRecord::success(COMPONENT, &published[0])
                .with("database", conn.db.clone())
                .with("sql_bytes", sql_bytes)
        })
        .map_err(|e| publish::disk_full_hint(e, &dir))?;
    log::log(
        COMPONENT,
        &format!(
            "published {} ({} bytes, {} bytes of SQL)",
            published[0].file_name, published[0].size_bytes, sql_bytes
        ),
    );
    Ok(())
}

/// Runs pg_dump and writes its gzip-compressed output to `out`. Succeeds only if
/// pg_dump exited 0, its output ended with the trailer and everything was
/// written; returns the uncompressed size.
fn dump_into<W: Write>(conn: &Conn, args: &BackupArgs, out: W) -> Result<u64> {
    let mut cmd = conn.command(&args.pg_dump, &conn.db);
    cmd.args(SEED_OPTIONS)
        .arg("--no-password")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut child = Child::spawn(&mut cmd, &args.pg_dump, "--pg-dump")?;
    let mut stdout = child.process.stdout.take().expect("stdout is piped");

    let mut encoder = GzEncoder::new(out, Compression::new(args.level));
    let mut tail = DumpTail::default();
    let mut buf = vec![0u8; CHUNK];
    let mut sql_bytes = 0u64;
    let copied: Result<()> = (|| loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read pg_dump's output"),
        };
        tail.push(&buf[..n]);
        sql_bytes += n as u64;
        encoder
            .write_all(&buf[..n])
            .context("cannot write the compressed dump")?;
    })();
    drop(stdout);

    if let Err(e) = copied {
        // pg_dump must not keep a snapshot open for a dump nobody will keep.
        let _ = child.kill();
        return Err(e);
    }
    let (status, stderr) = child.wait()?;
    if !status.success() {
        bail!("{}", pg_error::explain("pg_dump", status, &stderr));
    }
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        log::log(COMPONENT, line);
    }
    if !tail.is_complete() {
        bail!(
            "pg_dump exited 0 but its output ended without the \"dump complete\" trailer \
             ({sql_bytes} bytes); the dump is incomplete and was not published"
        );
    }
    encoder
        .finish()
        .and_then(|mut out| out.flush())
        .context("cannot write the compressed dump")?;
    Ok(sql_bytes)
}
