//! How a client program reaches the server. Everything goes through the
//! child's environment (libpq reads PG* variables), so the password is never in
//! argv, where `ps` would show it to every user of the machine.

use crate::cli::Connection;
use anyhow::Result;
use backup_common::{secret, Secret};
use std::path::Path;
use std::process::Command;

/// The connection settings, resolved once at the command-line boundary
/// (`lib::run`): the database name checked, the password read from
/// POSTGRES_PASSWORD(_FILE). Nothing below reads the process environment.
#[derive(Debug, Clone)]
pub struct Conn {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub db: String,
    connect_timeout: u32,
    password: Secret,
}

impl Conn {
    pub fn resolve(args: &Connection) -> Result<Self> {
        backup_common::names::check_database(&args.db)
            .map_err(|e| backup_common::usage(format!("POSTGRES_DB: {e}")))?;
        Ok(Conn {
            host: args.host.clone(),
            port: args.port,
            user: args.user.clone(),
            db: args.db.clone(),
            connect_timeout: args.connect_timeout,
            password: secret::required("POSTGRES_PASSWORD")?,
        })
    }

    /// The same server and credentials, another database (a scratch one).
    pub fn with_db(&self, db: &str) -> Self {
        Conn {
            db: db.to_owned(),
            ..self.clone()
        }
    }

    /// A command for `program` connected to database `db`.
    pub fn command(&self, program: &Path, db: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", db)
            .env("PGPASSWORD", self.password.expose())
            .env("PGAPPNAME", "backup-kit")
            .env("PGCONNECT_TIMEOUT", self.connect_timeout.to_string())
            // The secret's own variables are ours, not the child's business.
            .env_remove("POSTGRES_PASSWORD")
            .env_remove("POSTGRES_PASSWORD_FILE");
        cmd
    }
}

/// A message for a client program that could not be started.
pub fn spawn_error(program: &Path, err: &std::io::Error, flag: &str) -> anyhow::Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "{} not found — install the PostgreSQL client or pass {flag} PATH",
            program.display()
        )
    } else {
        anyhow::anyhow!("cannot start {}: {err}", program.display())
    }
}
