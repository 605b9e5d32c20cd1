//! How a client program reaches the server. Everything goes through the
//! child's environment (libpq reads PG* variables), so the password is never in
//! argv, where `ps` would show it to every user of the machine.

use crate::cli::Connection;
use anyhow::Result;
use backup_common::{secret, Secret};
use std::path::Path;
use std::process::Command;

pub struct Conn {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub db: String,
    password: Secret,
}

impl Conn {
    pub fn from_args(args: &Connection) -> Result<Self> {
        backup_common::names::check_database(&args.db)
            .map_err(|e| backup_common::usage(format!("POSTGRES_DB: {e}")))?;
        Ok(Conn {
            host: args.host.clone(),
            port: args.port,
            user: args.user.clone(),
            db: args.db.clone(),
            password: secret::required("POSTGRES_PASSWORD")?,
        })
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
            // The secret's own variables are ours, not the child's business.
            .env_remove("POSTGRES_PASSWORD")
            .env_remove("POSTGRES_PASSWORD_FILE");
        if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
            // libpq waits forever by default; a dead host should fail the run instead.
            cmd.env("PGCONNECT_TIMEOUT", "15");
        }
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
