//! What every backup-kit tool shares.
//!
//! The component tools differ in how they talk to their service; everything an
//! operator or a script sees from the outside is the same for all of them and
//! lives here: artifact names, the atomic publish sequence, `*_latest` links,
//! the JSON result record, log lines, secrets, locks and exit codes.

pub mod audit;
pub mod cleanup;
pub mod cli;
pub mod crypt;
pub mod dump_sql;
pub mod dump_trailer;
pub mod exit;
pub mod folder;
pub mod hashing;
#[cfg(feature = "http")]
pub mod http;
pub mod lock;
pub mod log;
pub mod names;
pub mod naming;
pub mod parallel_gzip;
pub mod progress;
pub mod publish;
pub mod record;
#[cfg(feature = "s3")]
pub mod s3;
pub mod secret;
pub mod sidecar;
pub mod tool;

pub use exit::{locked, usage, ExitStatus};
pub use naming::{ArtifactName, Component, IsoWeek};
pub use publish::{PendingArtifact, Published};
pub use record::ResultRecord;
pub use secret::Secret;
