//! Command-line interface; connection settings come from the contract's
//! environment variables and can be overridden by a flag.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "n8n-export",
    version,
    about = "Back up n8n workflows (and credentials) into the backup tree, and restore them",
    after_help = "The API key comes from N8N_API_KEY or N8N_API_KEY_FILE, never from a flag. \
                  With N8N_CLI set (e.g. `docker exec n8n n8n`) the n8n CLI is used instead of the API."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Export every workflow to <backup-dir>/n8n/workflows_YYYYMMDD_HHMMSS.json
    Backup(BackupArgs),
    /// Import the workflows (or, --credentials, the credentials) of a backup back into n8n
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct Source {
    /// n8n's base URL (API mode)
    #[arg(long, env = "N8N_URL", default_value = "http://n8n:5678")]
    pub url: String,
    /// The n8n CLI as a command prefix; when set, the CLI is used instead of the API
    #[arg(long, env = "N8N_CLI")]
    pub cli: Option<String>,
    /// Where the CLI's files go, each in a private folder: one the n8n
    /// container shares with this one when N8N_CLI is `docker exec …` (the CLI
    /// must then run as this user) [default: the system temp folder]
    #[arg(long, env = "N8N_CLI_TEMP_DIR", value_name = "DIR")]
    pub cli_temp_dir: Option<PathBuf>,
    #[command(flatten)]
    pub timeouts: backup_common::http::TimeoutArgs,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    /// Also export credentials, encrypted as n8n stores them (CLI mode only)
    #[arg(long, env = "N8N_BACKUP_CREDENTIALS")]
    pub credentials: bool,
    #[command(flatten)]
    pub output: backup_common::cli::Output,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A workflows_*.json backup (a *_latest link is fine)
    pub file: PathBuf,
    #[command(flatten)]
    pub source: Source,
    /// Activate the workflows that were active when backed up (default: all inactive)
    #[arg(long)]
    pub activate: bool,
    /// FILE is a credentials backup (credentials_*.json): check that
    /// N8N_ENCRYPTION_KEY (or N8N_ENCRYPTION_KEY_FILE) decrypts every one of
    /// them, then import them with their ids (CLI mode only). Restore them
    /// before the workflows that use them.
    #[arg(long, conflicts_with = "activate")]
    pub credentials: bool,
}
