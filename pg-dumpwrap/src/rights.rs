//! Least privilege for a dump's SQL: whose rights it runs with.
//!
//! A restore connects as POSTGRES_USER, normally a superuser, and a dump's SQL
//! run with a superuser's rights can run programs on the database server
//! (`COPY … TO PROGRAM`, untrusted languages, `pg_read_server_files`) —
//! through dynamic SQL that no check of the file can see. `SET ROLE` is no
//! barrier: the dump could `RESET ROLE` as easily. So the SQL goes through a
//! connection of its own, logged in as a *delegate*: a temporary login role
//! that is no superuser and holds only the rights of the role the restore runs
//! as (it is a member of it and `SET ROLE`s to it, so what it creates belongs
//! to that role). Whatever the dump resets, it cannot get back more.
//!
//! The role is the target database's owner, or POSTGRES_RESTORE_ROLE; a drill
//! makes its delegate the owner of its scratch database. A role with rights
//! beyond an owner's (superuser, CREATEROLE, a member of a superuser or of
//! `pg_execute_server_program` …) cannot be run as: the restore then runs with
//! the connection's rights and says so on stderr and in its summary. The
//! delegate logs in with a password whose SCRAM verifier, not the password,
//! goes to the server; it expires after a day and is dropped at the end (a
//! killed restore's is dropped by the next one).

use crate::conn::Conn;
use crate::dump::COMPONENT;
use crate::restore_test::psql;
use anyhow::{bail, Context, Result};
use backup_common::{log, Secret};
use std::path::Path;

/// The name every delegate's name begins with.
pub const DELEGATE_PREFIX: &str = "backup_kit_restore_";

/// What a role may do that a database owner need not: any of these, held or
/// reachable through membership, rules it out for running a dump.
const BEYOND_AN_OWNER: &str = "g.rolsuper OR g.rolcreaterole OR g.rolreplication \
     OR g.rolbypassrls OR g.rolname IN ('pg_execute_server_program', \
     'pg_read_server_files', 'pg_write_server_files')";

/// Whose rights the dump's SQL runs with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// A delegate that is a member of this role and `SET ROLE`s to it.
    Role(String),
    /// A delegate that owns the (new, scratch) database itself.
    OwnDatabase,
    /// The connection's own rights; the reason is said as a warning.
    Connection { why: String },
}

/// What is known about the target when the choice is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Situation<'a> {
    /// The connection's user is a superuser (can make a delegate).
    pub connection_is_superuser: bool,
    /// POSTGRES_RESTORE_ROLE, and whether it stays within an owner's rights.
    pub restore_role: Option<(&'a str, bool)>,
    /// The restore makes a scratch database (a drill).
    pub drill: bool,
    /// The database is created by this restore.
    pub creating: bool,
    /// The existing database's owner, and whether it stays within an owner's rights.
    pub owner: Option<(&'a str, bool)>,
}

/// Whose rights the dump runs with. Pure.
pub fn choose(s: &Situation) -> Result<RunAs, String> {
    if let Some((role, safe)) = s.restore_role {
        if !safe {
            return Err(format!(
                "POSTGRES_RESTORE_ROLE {role:?} has rights beyond a database owner's (a \
                 superuser, CREATEROLE, REPLICATION, BYPASSRLS, or a member of a role that has \
                 them or of pg_execute_server_program / pg_read_server_files / \
                 pg_write_server_files); name a role that only owns databases"
            ));
        }
    }
    if !s.connection_is_superuser {
        return Ok(RunAs::Connection {
            why: "POSTGRES_USER is no superuser: the dump runs with its rights".into(),
        });
    }
    if let Some((role, _)) = s.restore_role {
        return Ok(RunAs::Role(role.to_owned()));
    }
    if s.drill {
        return Ok(RunAs::OwnDatabase);
    }
    match s.owner {
        Some((owner, true)) if !s.creating => Ok(RunAs::Role(owner.to_owned())),
        Some((owner, false)) if !s.creating => Ok(RunAs::Connection {
            why: format!(
                "the database's owner {owner:?} has a superuser's rights, so the dump runs with \
                 them; give the database an owner without them (ALTER DATABASE … OWNER TO …) or \
                 set POSTGRES_RESTORE_ROLE"
            ),
        }),
        _ => Ok(RunAs::Connection {
            why: "the database is created by POSTGRES_USER, a superuser, so the dump runs with \
                  its rights; set POSTGRES_RESTORE_ROLE to a role that should own it"
                .into(),
        }),
    }
}

/// A temporary login role the dump's SQL runs as; dropped by `drop_with`.
pub struct Delegate {
    pub name: String,
    password: Secret,
    /// The role it `SET ROLE`s to (a member of it), if any.
    pub set_role: Option<String>,
}

impl Delegate {
    /// The connection the dump's SQL goes through.
    pub fn conn(&self, server: &Conn) -> Conn {
        server.as_user(&self.name, self.password.clone())
    }

    /// What to send before the dump: the role whose rights it runs with.
    pub fn preamble(&self) -> String {
        match &self.set_role {
            Some(role) => format!("SET ROLE {};\n", quote_ident(role)),
            None => String::new(),
        }
    }
}

/// `name` as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Whether `role` exists and stays within a database owner's rights.
pub fn role_is_safe(server: &Conn, program: &Path, role: &str) -> Result<bool> {
    let answer = psql(
        server,
        program,
        crate::conn::MAINTENANCE_DB,
        &format!(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_roles g WHERE pg_has_role(r.oid, g.oid, \
             'MEMBER') AND ({BEYOND_AN_OWNER})) FROM pg_roles r WHERE r.rolname = {}",
            quote_literal(role)
        ),
    )
    .with_context(|| format!("cannot look up the rights of role {role:?}"))?;
    match answer.as_str() {
        "t" => Ok(true),
        "f" => Ok(false),
        _ => bail!("role {role:?} does not exist on the server"),
    }
}

/// Facts about the server and the target for `choose`.
pub fn superuser_and_owner(
    server: &Conn,
    program: &Path,
    db: &str,
) -> Result<(bool, Option<String>)> {
    let answer = psql(
        server,
        program,
        crate::conn::MAINTENANCE_DB,
        &format!(
            "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
             (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {})",
            quote_literal(db)
        ),
    )
    .context("cannot look up the rights of POSTGRES_USER and the database's owner")?;
    let (superuser, owner) = answer.split_once('|').unwrap_or((&answer, ""));
    Ok((
        superuser == "t",
        (!owner.is_empty()).then(|| owner.to_owned()),
    ))
}

/// Makes the delegate for `run_as` (`None` for `RunAs::Connection`).
pub fn make_delegate(server: &Conn, program: &Path, run_as: &RunAs) -> Result<Option<Delegate>> {
    let set_role = match run_as {
        RunAs::Connection { .. } => return Ok(None),
        RunAs::Role(role) => Some(role.clone()),
        RunAs::OwnDatabase => None,
    };
    sweep(server, program);
    let suffix: String = std::iter::repeat_with(fastrand::lowercase)
        .take(8)
        .collect();
    let name = format!("{DELEGATE_PREFIX}{}_{suffix}", std::process::id());
    let password = Secret::new(
        std::iter::repeat_with(fastrand::alphanumeric)
            .take(32)
            .collect(),
    );
    let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
    let expires = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d %H:%M:%S+00");
    let member_of = set_role
        .as_deref()
        .map(|r| format!(" IN ROLE {}", quote_ident(r)))
        .unwrap_or_default();
    psql(
        server,
        program,
        crate::conn::MAINTENANCE_DB,
        &format!(
            "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS \
             INHERIT VALID UNTIL '{expires}' PASSWORD '{verifier}'{member_of}",
            quote_ident(&name)
        ),
    )
    .context("cannot create the restore's delegate role (POSTGRES_USER needs to be a superuser)")?;
    Ok(Some(Delegate {
        name,
        password,
        set_role,
    }))
}

/// Drops the delegate; what it still owns in `db` (a dump that reset its
/// role and created something) goes to the role it acted for first.
pub fn drop_with(server: &Conn, program: &Path, delegate: Delegate, db: &str) {
    let name = quote_ident(&delegate.name);
    let dropped = psql(
        server,
        program,
        crate::conn::MAINTENANCE_DB,
        &format!("DROP ROLE IF EXISTS {name}"),
    )
    .or_else(|_| {
        let heir = delegate
            .set_role
            .as_deref()
            .map(quote_ident)
            .unwrap_or_else(|| "CURRENT_USER".into());
        psql(
            server,
            program,
            db,
            &format!("REASSIGN OWNED BY {name} TO {heir}; DROP OWNED BY {name}"),
        )?;
        psql(
            server,
            program,
            crate::conn::MAINTENANCE_DB,
            &format!("DROP ROLE IF EXISTS {name}"),
        )
    });
    if let Err(e) = dropped {
        log::log(
            COMPONENT,
            &format!(
                "warning: the restore's delegate role {} could not be dropped ({}); it cannot log \
                 in after a day — drop it by hand",
                delegate.name,
                backup_common::exit::one_line(&e)
            ),
        );
    }
}

/// The pid in a delegate's name (`backup_kit_restore_<pid>_<suffix>`).
pub fn delegate_pid(name: &str) -> Option<u32> {
    name.strip_prefix(DELEGATE_PREFIX)?
        .split_once('_')?
        .0
        .parse()
        .ok()
}

/// Drops delegates that a killed restore left behind (not those of a
/// restore still running here).
fn sweep(server: &Conn, program: &Path) {
    let Ok(listed) = psql(
        server,
        program,
        crate::conn::MAINTENANCE_DB,
        &format!(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, {})",
            quote_literal(DELEGATE_PREFIX)
        ),
    ) else {
        return;
    };
    for name in listed.lines() {
        let Some(pid) = delegate_pid(name) else {
            continue;
        };
        if crate::restore_test::ours_or_running(pid) {
            continue;
        }
        let _ = psql(
            server,
            program,
            crate::conn::MAINTENANCE_DB,
            &format!("DROP ROLE IF EXISTS {}", quote_ident(name)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn situation() -> Situation<'static> {
        Situation {
            connection_is_superuser: true,
            restore_role: None,
            drill: false,
            creating: false,
            owner: Some(("app", true)),
        }
    }

    #[test]
    fn a_restore_runs_with_its_databases_owners_rights() {
        assert_eq!(choose(&situation()), Ok(RunAs::Role("app".into())));
        let named = Situation {
            restore_role: Some(("restorer", true)),
            creating: true,
            ..situation()
        };
        assert_eq!(choose(&named), Ok(RunAs::Role("restorer".into())));
        let drill = Situation {
            drill: true,
            creating: true,
            owner: None,
            ..situation()
        };
        assert_eq!(choose(&drill), Ok(RunAs::OwnDatabase));
    }

    #[test]
    fn a_superuser_owner_or_a_new_database_is_said_not_hidden() {
        let superuser_owner = Situation {
            owner: Some(("postgres", false)),
            ..situation()
        };
        let RunAs::Connection { why } = choose(&superuser_owner).unwrap() else {
            panic!("runs as the owner")
        };
        assert!(
            why.contains("\"postgres\" has a superuser's rights"),
            "{why}"
        );
        let creating = Situation {
            creating: true,
            owner: None,
            ..situation()
        };
        assert!(matches!(choose(&creating), Ok(RunAs::Connection { .. })));
        let not_superuser = Situation {
            connection_is_superuser: false,
            ..situation()
        };
        assert!(matches!(
            choose(&not_superuser),
            Ok(RunAs::Connection { .. })
        ));
    }

    #[test]
    fn a_restore_role_with_more_than_an_owners_rights_is_refused() {
        let named = Situation {
            restore_role: Some(("postgres", false)),
            ..situation()
        };
        assert!(choose(&named)
            .unwrap_err()
            .contains("rights beyond a database owner's"));
        assert_eq!(delegate_pid("backup_kit_restore_123_abcdefgh"), Some(123));
        assert_eq!(delegate_pid("backup_kit_restore_x_abc"), None);
        assert_eq!(delegate_pid("other_123_abc"), None);
    }
}
