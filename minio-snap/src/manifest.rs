//! The archive's manifest, its last entry (`manifest.json`): every object's
//! key, where it is in the archive, size, ETag, sha256, last-modified, content
//! type and user metadata; for an incremental also what it builds on, the full
//! key list at backup time and the keys deleted since.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const FORMAT: &str = "minio-snap/1";
pub const FILE_NAME: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub bucket: String,
    /// `full` or `incremental`.
    pub kind: String,
    pub created: String,
    /// The artifact an incremental builds on (file name in the same folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Every object in the bucket at backup time (restore's target state, and
    /// what the next incremental compares with).
    pub keys: Vec<KeyState>,
    /// Keys gone since the base (incrementals).
    #[serde(default)]
    pub deleted: Vec<String>,
    /// The objects this archive holds.
    pub objects: Vec<ObjectEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    pub key: String,
    /// Servers that list no ETag leave the change check to size and time.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub key: String,
    pub path: String,
    pub size: u64,
    pub etag: Option<String>,
    pub sha256: String,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Where an object goes in the archive: `<bucket>_backup/<key>`, as the product
/// description's manual restore (`tar -xzf … && mc mirror`) expects, unless the
/// key is unsafe as a path (`..`, a leading `/`, empty or over-long parts,
/// control characters); those go under `<bucket>_backup/.unsafe-keys/<sha256 of
/// the key>` and the manifest maps them back to their exact key.
pub fn archive_path(bucket: &str, key: &str) -> String {
    let safe = !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && !key.chars().any(char::is_control)
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && part.len() <= 255);
    if safe && !key.starts_with(".unsafe-keys/") {
        format!("{bucket}_backup/{key}")
    } else {
        format!(
            "{bucket}_backup/.unsafe-keys/{}",
            hex::encode(Sha256::digest(key.as_bytes()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::archive_path;

    #[test]
    fn safe_keys_keep_their_path_and_unsafe_ones_are_hashed() {
        assert_eq!(
            archive_path("documents", "a/b/ü 日本.pdf"),
            "documents_backup/a/b/ü 日本.pdf"
        );
        for bad in [
            "../etc/passwd",
            "/abs",
            "a//b",
            "a/./b",
            "tab\there",
            "",
            "a/..",
            &"x".repeat(300),
        ] {
            let p = archive_path("documents", bad);
            assert!(
                p.starts_with("documents_backup/.unsafe-keys/"),
                "{bad:?} → {p}"
            );
        }
        assert!(archive_path("d", ".unsafe-keys/x").starts_with("d_backup/.unsafe-keys/"));
    }
}
