//! pg-dumpwrap: PostgreSQL backups through pg_dump, and their restore.

pub mod child;
pub mod cli;
pub mod conn;
pub mod dump;
pub mod globals;
pub mod pg_error;
pub mod restore;
pub mod restore_test;

use backup_common::crypt::{Decryption, Encryption};
use backup_common::tool;
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
                let conn = Conn::resolve(&args.connection)?;
                dump::backup(run, &args, &conn, &Encryption::from_env()?)
            })
        }
        Command::Restore(args) => tool::run(dump::COMPONENT, "restore", || {
            let conn = Conn::resolve(&args.connection)?;
            restore::restore(&args, &conn, &Decryption::from_env(dump::COMPONENT))
        }),
        Command::RestoreTest(args) => tool::run(dump::COMPONENT, "restore-test", || {
            let conn = Conn::resolve(&args.connection)?;
            restore_test::restore_test(&args, &conn, &Decryption::from_env(dump::COMPONENT))
        }),
    }
}
