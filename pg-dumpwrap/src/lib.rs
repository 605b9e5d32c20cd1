//! pg-dumpwrap: PostgreSQL backups through pg_dump, and their restore.

pub mod child;
pub mod cli;
pub mod conn;
pub mod dump;
pub mod globals;
pub mod pg_error;
pub mod restore;
pub mod restore_test;
pub mod rights;

use backup_common::crypt::{Decryption, Encryption};
use backup_common::{audit, tool};
use cli::{Cli, Command};
use conn::Conn;

/// Runs the parsed command line; returns the process exit code. The
/// connection (and its password) is resolved here, once, inside the run so
/// that a missing password is the run's failure record.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Backup(args) => {
            let to_stdout = args.output.to_stdout();
            tool::run_backup(dump::COMPONENT, to_stdout, |run| {
                let (conn, selection) = Conn::resolve_selection(&args.connection)?;
                let encryption = Encryption::from_env()?;
                let databases = dump::databases(&args, &conn, &selection)?;
                if to_stdout {
                    let [db] = databases.as_slice() else {
                        return Err(backup_common::usage(format!(
                            "-o - writes one database, and POSTGRES_DB selects {}; give --db NAME",
                            databases.len()
                        )));
                    };
                    return dump::backup(run, &args, &conn.with_db(db), false, &encryption)
                        .map(drop);
                }
                // The cluster's globals go with the first database that publishes.
                let mut globals_due = !args.no_globals;
                for db in &databases {
                    run.series(db, |run| {
                        let published =
                            dump::backup(run, &args, &conn.with_db(db), globals_due, &encryption)?;
                        globals_due &= !published.globals_done;
                        Ok(())
                    });
                }
                Ok(())
            })
        }
        Command::Restore(args) => {
            let target = if args.globals {
                format!(
                    "the cluster's globals on {}:{}",
                    args.connection.host, args.connection.port
                )
            } else {
                format!(
                    "database {} on {}:{}",
                    args.connection.db, args.connection.host, args.connection.port
                )
            };
            let subject = audit::Subject {
                artifacts: vec![args.file.clone()],
                target,
            };
            audit::run_restore(dump::COMPONENT, "restore", subject, || {
                let conn = Conn::resolve(&args.connection)?;
                restore::restore(&args, &conn, &Decryption::from_env(dump::COMPONENT))
            })
        }
        Command::RestoreTest(args) => tool::run(dump::COMPONENT, "restore-test", || {
            // The dump names its database; POSTGRES_DB (a list, `all`) only
            // says which server and user to reach.
            let (conn, _) = Conn::resolve_selection(&args.connection)?;
            let decryption = Decryption::from_env(dump::COMPONENT);
            if args.globals {
                let summary = globals::drill(&args.file, &args.psql, &conn, &decryption)?;
                println!("{summary}");
                return Ok(());
            }
            restore_test::restore_test(&args, &conn, &decryption)
        }),
    }
}
