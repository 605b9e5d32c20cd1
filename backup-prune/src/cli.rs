use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "backup-prune",
    version,
    about = "Delete backups that the retention policy no longer needs, never the last good ones",
    after_help = "Prints one JSON line per deletion ({\"path\",\"reason\"}) on stdout and a summary on stderr.\n\
                  Never deletes: *_latest targets, the newest --keep-min of each series, the full and\n\
                  incrementals a kept incremental builds on, future-dated artifacts, files not named as artifacts."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    /// Delete daily artifacts older than this many days
    #[arg(long, env = "BACKUP_RETENTION_DAYS", default_value_t = 30)]
    pub days: u32,
    /// Delete weekly/YYYY_WNN folders more than this many ISO weeks old
    #[arg(long, env = "BACKUP_RETENTION_WEEKLY", default_value_t = 12)]
    pub weeks: u32,
    /// Always keep the newest this-many artifacts of each series, and weekly folders
    #[arg(long, env = "BACKUP_KEEP_MIN", default_value_t = 3)]
    pub keep_min: usize,
    /// Print the plan; delete nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Promote the backup a result record names (a MinIO incremental: its whole
    /// chain) into weekly/YYYY_WNN/<component>/, hard links where possible;
    /// prints the promoted artifacts' paths, one per line
    Promote(PromoteArgs),
    /// Point every series' *_latest link at its newest backup (an artifact
    /// with its sidecar, not dated in the future): for a tree copied without
    /// its links (offsite-pull.sh); prints one JSON line per link
    Relink(RelinkArgs),
}

#[derive(Debug, Args)]
pub struct RelinkArgs {
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    /// The week folder [default: this ISO week, in TZ]
    #[arg(long, value_name = "YYYY_WNN")]
    pub week: Option<String>,
    /// A file of result records (the component tool's stdout)
    pub record: PathBuf,
}
