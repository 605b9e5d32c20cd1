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
    /// Which of the component's series (a database, a bucket: the artifact
    /// prefix) the record is about; absent in a record about the whole
    /// component (backup.sh's own, and records of tools with one series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
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
            series: None,
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
            series: None,
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

/// One published unit a file of result records names: the artifact, its
/// component, and the artifacts published in the same unit beside it (a
/// database's `globals_file`, n8n's `credentials_file`): a weekly snapshot
/// takes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub component: crate::Component,
    pub file: String,
    pub companions: Vec<String>,
}

/// Every unit a file of result records (a tool's stdout, with whatever
/// backup.sh appended) says was published: per series the last record counts
/// and must be a success; a last record about the whole component that is a
/// failure (a failed promotion or verification) takes everything back. Lets
/// scripts act on a run without parsing JSON themselves.
pub fn published_units(record_file: &std::path::Path) -> anyhow::Result<Vec<Unit>> {
    use anyhow::Context;
    let text = std::fs::read(record_file)
        .with_context(|| format!("cannot read {}", record_file.display()))?;
    let records: Vec<ResultRecord> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .filter_map(|l| serde_json::from_slice::<ResultRecord>(l).ok())
        .collect();
    let none = || anyhow::anyhow!("{} holds no success record", record_file.display());
    // A record about the whole component, last: it alone decides.
    if records.last().is_some_and(|r| r.series.is_none()) {
        let last = records.last().expect("checked");
        return match last.status {
            Status::Success => Ok(vec![unit(record_file, last)?]),
            Status::Failed => Err(none()),
        };
    }
    let mut last_of_series: Vec<&ResultRecord> = Vec::new();
    for r in &records {
        last_of_series.retain(|o| o.series != r.series);
        last_of_series.push(r);
    }
    let units = last_of_series
        .into_iter()
        .filter(|r| r.status == Status::Success)
        .map(|r| unit(record_file, r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if units.is_empty() {
        return Err(none());
    }
    Ok(units)
}

fn unit(record_file: &std::path::Path, r: &ResultRecord) -> anyhow::Result<Unit> {
    use anyhow::Context;
    let file = r
        .file
        .clone()
        .with_context(|| format!("{}: a success record without a file", record_file.display()))?;
    let component = crate::Component::from_name(&r.component).with_context(|| {
        format!(
            "{}: unknown component {:?}",
            record_file.display(),
            r.component
        )
    })?;
    let companions = ["globals_file", "credentials_file"]
        .iter()
        .filter_map(|k| r.extra.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    Ok(Unit {
        component,
        file,
        companions,
    })
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
        let units = published_units(&file).unwrap();
        assert_eq!(
            units,
            [Unit {
                component: crate::Component::Postgres,
                file: "shop_20240101_000000.sql.gz".into(),
                companions: vec!["globals_20240101_000000.sql.gz".into()],
            }]
        );
    }

    #[test]
    fn each_series_counts_its_last_record_and_a_whole_component_failure_takes_all_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("records");
        let ok = |db: &str| {
            format!(
                "{{\"component\":\"postgres\",\"status\":\"success\",\"file\":\"{db}_20240101_000000.sql.gz\",\
                 \"duration_seconds\":1,\"series\":\"{db}\"}}\n"
            )
        };
        let failed = |series: &str| {
            format!(
                "{{\"component\":\"postgres\",\"status\":\"failed\",\"duration_seconds\":1,\"error\":\"x\"{series}}}\n"
            )
        };
        let files = |text: String| {
            std::fs::write(&file, text).unwrap();
            published_units(&file).map(|u| u.into_iter().map(|u| u.file).collect::<Vec<_>>())
        };
        assert_eq!(
            files(ok("a") + &ok("b")).unwrap(),
            ["a_20240101_000000.sql.gz", "b_20240101_000000.sql.gz"]
        );
        assert_eq!(
            files(ok("a") + &failed(",\"series\":\"b\"")).unwrap(),
            ["a_20240101_000000.sql.gz"]
        );
        assert!(files(ok("a") + &ok("b") + &failed("")).is_err());
        assert!(files(failed(",\"series\":\"a\"")).is_err());
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
