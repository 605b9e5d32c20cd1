//! How a client program reaches the server. Everything goes through the
//! child's environment (libpq reads PG* variables), so the password is never in
//! argv, where `ps` would show it to every user of the machine.

use crate::cli::Connection;
use anyhow::Result;
use backup_common::names::Selection;
use backup_common::{secret, Secret};

/// The database every cluster has, through which `all` lists the others and
/// globals are applied.
pub const MAINTENANCE_DB: &str = "postgres";
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
    /// The connection to the one database POSTGRES_DB / `--db` names (a
    /// restore's target).
    pub fn resolve(args: &Connection) -> Result<Self> {
        let selection = Self::selection(args)?;
        let db = selection
            .single("POSTGRES_DB", "--db")
            .map_err(backup_common::usage)?
            .to_owned();
        Self::to(args, db)
    }

    /// The databases a backup takes (a list, or `all`), and the connection
    /// (to the first one named, or to the maintenance database `postgres`
    /// that `all` finds the others through).
    pub fn resolve_selection(args: &Connection) -> Result<(Self, Selection)> {
        let selection = Self::selection(args)?;
        let db = match &selection {
            Selection::Named(names) => names[0].clone(),
            Selection::All => MAINTENANCE_DB.to_owned(),
        };
        Ok((Self::to(args, db)?, selection))
    }

    fn selection(args: &Connection) -> Result<Selection> {
        Selection::parse(
            &args.db,
            "POSTGRES_DB",
            backup_common::names::check_database,
        )
        .map_err(backup_common::usage)
    }

    fn to(args: &Connection, db: String) -> Result<Self> {
        Ok(Conn {
            host: args.host.clone(),
            port: args.port,
            user: args.user.clone(),
            db,
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

    /// The same server, logged in as another user (a restore's delegate).
    pub fn as_user(&self, user: &str, password: Secret) -> Self {
        Conn {
            user: user.to_owned(),
            password,
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
