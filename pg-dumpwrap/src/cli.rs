//! Command-line interface; every connection setting comes from the contract's
//! environment variables and can be overridden by a flag.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "pg-dumpwrap",
    version,
    about = "Back up a PostgreSQL database with pg_dump into the backup tree, and restore it",
    after_help = "The password comes from POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, never from a flag."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dump the database to <backup-dir>/postgres/<db>_YYYYMMDD_HHMMSS.sql.gz and repoint <db>_latest.sql.gz
    Backup(BackupArgs),
    /// Restore a .sql.gz dump into the database, in one transaction
    Restore(RestoreArgs),
    /// Restore a dump into a scratch database `<db>_verify_<pid>`, compare every
    /// table's rows with the dump's, and drop it again (backup-verify --restore-test)
    RestoreTest(RestoreTestArgs),
}

#[derive(Debug, Args)]
pub struct RestoreTestArgs {
    /// A .sql.gz dump (a *_latest link is fine)
    pub file: PathBuf,
    /// FILE is a globals file: apply it in one transaction and roll that back
    #[arg(long)]
    pub globals: bool,
    #[command(flatten)]
    pub connection: Connection,
    /// The psql program
    #[arg(long, value_name = "PATH", default_value = "psql")]
    pub psql: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server host
    #[arg(long, env = "POSTGRES_HOST", default_value = "postgres-db")]
    pub host: String,
    /// Server port
    #[arg(long, env = "POSTGRES_PORT", default_value_t = 5432)]
    pub port: u16,
    /// User name
    #[arg(long, env = "POSTGRES_USER", default_value = "arasul")]
    pub user: String,
    /// Database. A backup takes a comma-separated list too (one artifact
    /// series per database), or `all`: every database that accepts connections
    /// except the templates, found at run time
    #[arg(long = "db", env = "POSTGRES_DB", default_value = "arasul_db")]
    pub db: String,
    /// Seconds to wait for the server to accept a connection (libpq's own
    /// default is forever: a dead host should fail the run instead)
    #[arg(
        long,
        env = "PGCONNECT_TIMEOUT",
        default_value_t = 15,
        value_name = "SECONDS"
    )]
    pub connect_timeout: u32,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    #[command(flatten)]
    pub output: backup_common::cli::Output,
    /// The pg_dump program; its major version must be at least the server's
    #[arg(long, value_name = "PATH", default_value = "pg_dump")]
    pub pg_dump: PathBuf,
    /// gzip level, 0 (stored) to 9 (small)
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
    /// The pg_dumpall program, for the cluster's globals
    #[arg(long, value_name = "PATH", default_value = "pg_dumpall")]
    pub pg_dumpall: PathBuf,
    /// The psql program (lists the databases for `--db all`)
    #[arg(long, value_name = "PATH", default_value = "psql")]
    pub psql: PathBuf,
    /// Do not write globals_YYYYMMDD_HHMMSS.sql.gz (the cluster's roles and
    /// tablespaces, from pg_dumpall --globals-only) beside the dump
    #[arg(long)]
    pub no_globals: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A .sql.gz dump (a *_latest link is fine)
    pub file: PathBuf,
    #[command(flatten)]
    pub connection: Connection,
    /// Create the target database first (it must not exist)
    #[arg(long)]
    pub create: bool,
    /// Create the target database first when it does not exist (a fresh
    /// cluster); restore into it as it is when it does (scripts/restore.sh)
    #[arg(long, conflicts_with = "create")]
    pub create_if_missing: bool,
    /// FILE is a globals file (globals_*.sql.gz): apply the cluster's roles and
    /// tablespaces (roles that exist are updated; the restoring role is left alone)
    #[arg(long, conflicts_with_all = ["create", "create_if_missing"])]
    pub globals: bool,
    /// The role whose rights the dump's SQL runs with, and that owns what it
    /// creates (and a database created for it); default: the database's
    /// owner. Never one with more rights than a database owner needs
    #[arg(long, env = "POSTGRES_RESTORE_ROLE", value_name = "ROLE")]
    pub restore_role: Option<String>,
    /// The psql program
    #[arg(long, value_name = "PATH", default_value = "psql")]
    pub psql: PathBuf,
}
