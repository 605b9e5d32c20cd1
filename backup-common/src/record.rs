//! The result record: one JSON line on stdout per backup run, read by backup-report.

use crate::publish::Published;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub component: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    pub duration_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Component-specific facts (an incremental's base, row counts, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ResultRecord {
    pub fn success(component: &str, published: &Published) -> Self {
        ResultRecord {
            component: component.to_owned(),
            status: Status::Success,
            file: Some(published.file_name.clone()),
            size_bytes: Some(published.size_bytes),
            duration_seconds: 0,
            sha256: Some(published.sha256.clone()),
            error: None,
            extra: Default::default(),
        }
    }

    pub fn failed(component: &str, error: String) -> Self {
        ResultRecord {
            component: component.to_owned(),
            status: Status::Failed,
            file: None,
            size_bytes: None,
            duration_seconds: 0,
            sha256: None,
            error: Some(error),
            extra: Default::default(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a record always serializes")
    }
}

/// The artifact that a file of result records (a tool's stdout) says was
/// published, and its component: the last record counts, and it must be a
/// success. Lets scripts act on a run without parsing JSON themselves.
pub fn published(record_file: &std::path::Path) -> anyhow::Result<(crate::Component, String)> {
    let (component, file, _) = published_unit(record_file)?;
    Ok((component, file))
}

/// The same, with the artifacts published in the same unit beside it (a
/// database's `globals_file`, n8n's `credentials_file`): a weekly snapshot
/// takes them all.
pub fn published_unit(
    record_file: &std::path::Path,
) -> anyhow::Result<(crate::Component, String, Vec<String>)> {
    use anyhow::Context;
    let text = std::fs::read(record_file)
        .with_context(|| format!("cannot read {}", record_file.display()))?;
    let last = text
        .split(|b| *b == b'\n')
        .rfind(|l| !l.iter().all(u8::is_ascii_whitespace))
        .and_then(|l| serde_json::from_slice::<ResultRecord>(l).ok());
    let companions = |extra: &serde_json::Map<String, serde_json::Value>| -> Vec<String> {
        ["globals_file", "credentials_file"]
            .iter()
            .filter_map(|k| extra.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
            .collect()
    };
    match last {
        Some(ResultRecord {
            status: Status::Success,
            file: Some(file),
            component,
            extra,
            ..
        }) => crate::Component::from_name(&component)
            .map(|c| (c, file, companions(&extra)))
            .with_context(|| format!("{}: unknown component {component:?}", record_file.display())),
        _ => anyhow::bail!("{} holds no success record", record_file.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_a_record_names_includes_its_companions() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("records");
        std::fs::write(
            &file,
            "{\"component\":\"postgres\",\"status\":\"success\",\"file\":\"shop_20240101_000000.sql.gz\",\
             \"duration_seconds\":1,\"globals_file\":\"globals_20240101_000000.sql.gz\"}\n",
        )
        .unwrap();
        let (component, name, companions) = published_unit(&file).unwrap();
        assert_eq!(component, crate::Component::Postgres);
        assert_eq!(name, "shop_20240101_000000.sql.gz");
        assert_eq!(companions, ["globals_20240101_000000.sql.gz"]);
    }

    #[test]
    fn success_record_matches_the_contract_example() {
        let p = Published {
            path: "/x/arasul_db_20240124_020015.sql.gz".into(),
            file_name: "arasul_db_20240124_020015.sql.gz".into(),
            size_bytes: 15728640,
            sha256: "ab".into(),
        };
        let mut r = ResultRecord::success("postgres", &p);
        r.duration_seconds = 15;
        assert_eq!(
            r.to_line(),
            r#"{"component":"postgres","status":"success","file":"arasul_db_20240124_020015.sql.gz","size_bytes":15728640,"duration_seconds":15,"sha256":"ab"}"#
        );
        assert_eq!(
            serde_json::from_str::<ResultRecord>(&r.to_line()).unwrap(),
            r
        );
    }

    #[test]
    fn failed_record_has_error_instead_of_file_fields() {
        let r = ResultRecord::failed("minio", "bucket not found".into()).with("kind", "full");
        assert_eq!(
            r.to_line(),
            r#"{"component":"minio","status":"failed","duration_seconds":0,"error":"bucket not found","kind":"full"}"#
        );
    }
}
