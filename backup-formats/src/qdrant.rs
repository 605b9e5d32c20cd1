//! The archive's manifest: its first entry, `manifest.json`, so a reader knows
//! what to expect (and what to check) before the snapshots stream past.

use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "qdrant-snap/1";
pub const FILE_NAME: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub created: String,
    pub qdrant_version: Option<String>,
    /// `collections`: one snapshot per collection; `full`: one full-storage snapshot.
    pub kind: Kind,
    pub collections: Vec<CollectionEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<SnapshotFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Collections,
    Full,
}

/// What restore needs to check a collection, from `GET /collections/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionEntry {
    pub name: String,
    pub points_count: u64,
    pub vectors: serde_json::Value,
    /// The collection's snapshot in this archive (absent in a full-storage archive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotFile>,
    /// The aliases that pointed to the collection at backup time: a snapshot
    /// does not carry them (Qdrant's documentation, and the recordings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// Path inside the archive: `snapshots/<collection>/<name>` or `full/<name>`.
    pub path: String,
    pub size: u64,
    /// The checksum Qdrant reported, which the download matched.
    pub sha256: String,
}

impl Manifest {
    pub fn entry_for_path(&self, path: &str) -> Option<&CollectionEntry> {
        self.collections
            .iter()
            .find(|c| c.snapshot.as_ref().is_some_and(|s| s.path == path))
    }
}

/// Where a collection's snapshot goes in the archive. Collection names may hold
/// any character but `/`, which Qdrant refuses in names.
pub fn snapshot_path(collection: &str, snapshot: &str) -> String {
    format!("snapshots/{collection}/{snapshot}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_finds_entries_by_path() {
        let m = Manifest {
            format: FORMAT.into(),
            created: "2024-01-24T02:00:45+01:00".into(),
            qdrant_version: Some("1.18.3".into()),
            kind: Kind::Collections,
            collections: vec![CollectionEntry {
                name: "documents".into(),
                points_count: 50,
                vectors: serde_json::json!({"size": 4, "distance": "Cosine"}),
                snapshot: Some(SnapshotFile {
                    path: snapshot_path("documents", "documents-1-2024.snapshot"),
                    size: 84480,
                    sha256: "71".repeat(32),
                }),
                aliases: vec!["docs".into()],
            }],
            full: None,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains(r#""kind":"collections""#));
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.entry_for_path("snapshots/documents/documents-1-2024.snapshot")
                .unwrap()
                .points_count,
            50
        );
        assert!(back.entry_for_path("snapshots/other/x").is_none());
    }
}
