//! minio-snap: a MinIO/S3 bucket into tar.gz archives (full and incremental), and back.

pub mod backup;
pub mod cli;
pub mod compare;
pub mod extract;
/// The archive format lives in `backup_formats`, shared with backup-verify.
pub use backup_formats::minio as manifest;
pub mod restore;
pub mod restore_test;
pub mod s3;
mod window;

use backup_common::crypt::{Decryption, Encryption};
use backup_common::{audit, tool};
use cli::{Cli, Command, Credentials};

/// Runs the parsed command line; returns the process exit code. Credentials
/// are read here, once, inside the run so that a missing one is the run's
/// failure record.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Backup(args) => {
            let to_stdout = args.output.to_stdout();
            tool::run_backup(backup::COMPONENT, to_stdout, |run| {
                let credentials = Credentials::from_env()?;
                let encryption = Encryption::from_env()?;
                let decryption = Decryption::from_env(backup::COMPONENT);
                let crypt = (&encryption, &decryption);
                let buckets = backup::buckets(&args.endpoint, &credentials)?;
                if to_stdout {
                    let [bucket] = buckets.as_slice() else {
                        return Err(backup_common::usage(format!(
                            "-o - writes one bucket, and MINIO_BUCKET selects {}; give --bucket NAME",
                            buckets.len()
                        )));
                    };
                    return backup::backup(run, &args, bucket, &credentials, crypt);
                }
                for bucket in &buckets {
                    run.series(bucket, |run| {
                        backup::backup(run, &args, bucket, &credentials, crypt)
                    });
                }
                Ok(())
            })
        }
        Command::Restore(args) => {
            let target = match &args.to_dir {
                Some(dir) => format!("folder {}", dir.display()),
                None => format!(
                    "bucket {} (MINIO_BUCKET) at {}",
                    args.endpoint.bucket,
                    args.endpoint.url()
                ),
            };
            let subject = audit::Subject {
                artifacts: vec![args.file.clone()],
                target,
            };
            audit::run_restore(backup::COMPONENT, "restore", subject, || {
                let decryption = Decryption::from_env(backup::COMPONENT);
                restore::restore(&args, &args.destination()?, &decryption)
            })
        }
        Command::RestoreTest(args) => tool::run(backup::COMPONENT, "restore-test", || {
            let decryption = Decryption::from_env(backup::COMPONENT);
            restore_test::restore_test(&args, &Credentials::from_env()?, &decryption)
        }),
        Command::Chain(args) => tool::run(backup::COMPONENT, "chain", || {
            let decryption = Decryption::from_env(backup::COMPONENT);
            for (path, _, _) in restore::resolve_chain(&args.file, &decryption)? {
                println!("{}", path.file_name().unwrap_or_default().to_string_lossy());
            }
            Ok(())
        }),
    }
}
