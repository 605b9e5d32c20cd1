use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "qdrant-snap",
    version,
    about = "Back up Qdrant collections through its snapshot API into the backup tree, and restore them",
    after_help = "The API key comes from QDRANT_API_KEY or QDRANT_API_KEY_FILE (sent as the api-key header), never from a flag."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Snapshot every collection (or --collection ...) into <backup-dir>/qdrant/qdrant_YYYYMMDD_HHMMSS.tar.gz
    Backup(BackupArgs),
    /// Upload the snapshots of an archive back into Qdrant and check their points counts
    Restore(RestoreArgs),
    /// Restore every collection of an archive as `<name>_verify_<pid>`, check its
    /// points count, and delete it again (backup-verify --restore-test)
    RestoreTest(RestoreTestArgs),
}

#[derive(Debug, Args)]
pub struct RestoreTestArgs {
    /// A qdrant_*.tar.gz archive (a *_latest link is fine)
    pub file: PathBuf,
    #[command(flatten)]
    pub server: Server,
}

#[derive(Debug, Clone, Args)]
pub struct Server {
    /// Qdrant's REST endpoint
    #[arg(long, env = "QDRANT_URL", default_value = "http://qdrant:6333")]
    pub url: String,
    #[command(flatten)]
    pub timeouts: backup_common::http::TimeoutArgs,
}

impl Server {
    /// The client for this server, with QDRANT_API_KEY(_FILE) when set:
    /// resolved once, at the command-line boundary (`lib::run`).
    pub fn connect(&self) -> anyhow::Result<crate::api::Qdrant> {
        let key = backup_common::secret::from_env("QDRANT_API_KEY")?;
        crate::api::Qdrant::new(&self.url, key, &self.timeouts, crate::backup::COMPONENT)
    }
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub server: Server,
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    /// Only this collection (repeatable); default: every collection
    #[arg(long = "collection", value_name = "NAME")]
    pub collections: Vec<String>,
    /// One full-storage snapshot (POST /snapshots) instead of one per collection
    #[arg(long, conflicts_with = "collections")]
    pub full: bool,
    /// Leave the snapshots on the server (default: delete them once downloaded)
    #[arg(long)]
    pub keep_remote: bool,
    #[command(flatten)]
    pub output: backup_common::cli::Output,
    /// gzip level. Snapshots are mostly float vectors, which deflate barely
    /// shrinks, so the default 0 stores them (still a valid .tar.gz) at download
    /// speed; 6 suits small or payload-heavy collections
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A qdrant_*.tar.gz archive (a *_latest link is fine)
    pub file: PathBuf,
    #[command(flatten)]
    pub server: Server,
    /// Only this collection of the archive (repeatable); default: all of them
    #[arg(long = "collection", value_name = "NAME")]
    pub collections: Vec<String>,
    /// Restore the (single) selected collection under this name instead
    #[arg(long = "as", value_name = "NEW_NAME")]
    pub rename: Option<String>,
    /// Point the aliases the backup recorded at the restored collections
    /// [default: yes, except with --as]
    #[arg(long, conflicts_with = "no_aliases")]
    pub aliases: bool,
    /// Leave aliases alone
    #[arg(long)]
    pub no_aliases: bool,
}

impl RestoreArgs {
    /// Whether the recorded aliases are pointed at what is restored. A restore
    /// under the collection's own name is a disaster restore: the application
    /// finds its collections by those aliases, so they come back. A copy under
    /// another name (`--as`, and every drill) must not take the aliases away
    /// from the live collection unless asked.
    pub fn restore_aliases(&self) -> bool {
        (self.rename.is_none() || self.aliases) && !self.no_aliases
    }
}
