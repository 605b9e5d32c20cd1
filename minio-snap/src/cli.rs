use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "minio-snap",
    version,
    about = "Stream a MinIO/S3 bucket into a tar.gz in the backup tree (full or incremental), and restore it",
    after_help = "Credentials come from MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (or their *_FILE forms), never from flags."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Archive the bucket into <backup-dir>/minio/<bucket>_YYYYMMDD_HHMMSS[.incr].tar.gz
    Backup(BackupArgs),
    /// Upload an archive (an incremental: its whole chain) into a bucket, or extract it
    Restore(RestoreArgs),
    /// Restore an archive (with its chain) into a scratch bucket
    /// `<bucket>-verify-<random>`, compare every object with the manifests
    /// (sha256, size, content type, metadata), and delete the scratch bucket
    /// again (backup-verify --restore-test)
    RestoreTest(RestoreTestArgs),
    /// Print the archives a restore of FILE applies, oldest (the full) first, one
    /// file name per line; each sidecar is checked (backup.sh copies chains into weekly/)
    Chain(ChainArgs),
}

#[derive(Debug, Clone, Args)]
pub struct Endpoint {
    /// S3 endpoint [default: http://$MINIO_HOST:9000]
    #[arg(long, env = "MINIO_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Host used when MINIO_ENDPOINT is not set
    #[arg(long, env = "MINIO_HOST", default_value = "minio")]
    pub host: String,
    #[arg(long, env = "MINIO_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The bucket. A backup takes a comma-separated list too (one archive
    /// series per bucket), or `all`: every bucket the credentials can list; a
    /// restore given a list or `all` restores into the archive's own bucket
    #[arg(long, env = "MINIO_BUCKET", default_value = "documents")]
    pub bucket: String,
    /// List the bucket in one flat listing (a request per 1,000 keys) instead
    /// of folder by folder (rclone's --fast-list): for servers that keep a
    /// sorted index (AWS, Garage) and buckets of many small folders
    #[arg(long, env = "MINIO_FAST_LIST")]
    pub fast_list: bool,
    #[command(flatten)]
    pub timeouts: backup_common::http::TimeoutArgs,
}

/// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (or their *_FILE forms), read once at
/// the command-line boundary (`lib::run`) and passed in.
pub struct Credentials {
    pub user: backup_common::Secret,
    pub password: backup_common::Secret,
}

impl Credentials {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Credentials {
            user: backup_common::secret::required("MINIO_ROOT_USER")?,
            password: backup_common::secret::required("MINIO_ROOT_PASSWORD")?,
        })
    }
}

/// Where a restore writes: a bucket (which needs the credentials) or a folder.
pub enum Destination {
    Bucket(Credentials),
    Dir(PathBuf),
}

impl RestoreArgs {
    pub fn destination(&self) -> anyhow::Result<Destination> {
        Ok(match &self.to_dir {
            Some(dir) => Destination::Dir(dir.clone()),
            None => Destination::Bucket(Credentials::from_env()?),
        })
    }
}

impl Endpoint {
    pub fn url(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("http://{}:9000", self.host))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Full,
    Incremental,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    #[command(flatten)]
    pub tree: backup_common::cli::Tree,
    #[command(flatten)]
    pub output: backup_common::cli::Output,
    #[arg(long = "type", value_enum, default_value = "full")]
    pub kind: Kind,
    /// gzip level, 0 (stored) to 9 (small); blocks of media or encrypted data
    /// are stored whatever the level
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// An archive (a *_latest link is fine); an incremental brings its chain
    pub file: PathBuf,
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// Extract into this folder instead of uploading (never writes outside it)
    #[arg(long, value_name = "DIR")]
    pub to_dir: Option<PathBuf>,
    /// Delete objects in the bucket that the backup does not hold
    #[arg(long)]
    pub delete_extra: bool,
}

#[derive(Debug, Args)]
pub struct RestoreTestArgs {
    /// An archive (a *_latest link is fine); an incremental brings its chain
    pub file: PathBuf,
    #[command(flatten)]
    pub endpoint: Endpoint,
}

#[derive(Debug, Args)]
pub struct ChainArgs {
    /// An archive (a *_latest link is fine)
    pub file: PathBuf,
}
