//! Every artifact format, once: what backup writes, restore reads and verify
//! checks is decided here, so the three can never disagree. File-only: no
//! network, no tool's command line (backup-verify depends on this crate and on
//! backup-common, never on a tool crate).

pub mod minio;
pub mod n8n;
pub mod qdrant;
