//! qdrant-snap: Qdrant collection snapshots through the REST API, and their restore.

pub mod api;
pub mod backup;
pub mod cli;
/// The archive format lives in `backup_formats`, shared with backup-verify.
pub use backup_formats::qdrant as manifest;
pub mod restore;
pub mod restore_test;

use backup_common::crypt::{Decryption, Encryption};
use backup_common::{audit, tool};
use cli::{Cli, Command};

/// Runs the parsed command line; returns the process exit code. The client
/// (and its API key) is made here, once, inside the run so that an unreadable
/// key file is the run's failure record.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Backup(args) => {
            let to_stdout = args.output.to_stdout();
            tool::run_backup(backup::COMPONENT, to_stdout, |run| {
                let qdrant = args.server.connect()?;
                backup::backup(run, &args, &qdrant, &Encryption::from_env()?)
            })
        }
        Command::Restore(args) => {
            let collections = if args.collections.is_empty() {
                "every collection of the archive".to_owned()
            } else {
                format!("collections {}", args.collections.join(", "))
            };
            let renamed = args
                .rename
                .as_ref()
                .map(|n| format!(" as {n}"))
                .unwrap_or_default();
            let subject = audit::Subject {
                artifacts: vec![args.file.clone()],
                target: format!("{collections}{renamed} at {}", args.server.url),
            };
            audit::run_restore(backup::COMPONENT, "restore", subject, || {
                let qdrant = args.server.connect()?;
                restore::restore(&args, &qdrant, &Decryption::from_env(backup::COMPONENT))
            })
        }
        Command::RestoreTest(args) => tool::run(backup::COMPONENT, "restore-test", || {
            let qdrant = args.server.connect()?;
            restore_test::restore_test(&args, &qdrant, &Decryption::from_env(backup::COMPONENT))
        }),
    }
}
