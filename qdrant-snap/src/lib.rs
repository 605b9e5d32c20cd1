//! qdrant-snap: Qdrant collection snapshots through the REST API, and their restore.

pub mod api;
pub mod backup;
pub mod cli;
pub mod manifest;
pub mod restore;

use backup_common::tool;
use cli::{Cli, Command};

pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Backup(args) => {
            let to_stdout = args.output.as_deref() == Some("-");
            tool::run_backup(backup::COMPONENT, to_stdout, |run| {
                backup::backup(run, &args)
            })
        }
        Command::Restore(args) => {
            tool::run(backup::COMPONENT, "restore", || restore::restore(&args))
        }
    }
}
