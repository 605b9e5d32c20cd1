//! `--keep-records` (`BACKUP_KEEP_RECORDS`): the last run's records of every
//! component, kept in `$BACKUP_DIR/records/<component>.jsonl`, so that a report
//! covers every component even when each runs on its own (one Kubernetes
//! CronJob per component) or none runs (the maintenance job's report).
//!
//! Each report keeps what this run said about its components, and reads the
//! kept records of the others as their latest outcome.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub const DIR: &str = "records";

/// What this run says, and what it keeps: the lines to report (this run's,
/// then the kept ones of every other component, each line with where it came
/// from) and the files to write.
#[derive(Debug, Default, PartialEq)]
pub struct Merged {
    pub lines: Vec<(String, Vec<u8>)>,
    pub store: BTreeMap<String, Vec<u8>>,
}

/// Pure: this run's lines, the components it selected, the kept files.
pub fn merge(
    this_run: Vec<(String, Vec<u8>)>,
    selected: &[String],
    kept: &BTreeMap<String, Vec<u8>>,
) -> Merged {
    let mut store: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (_, line) in &this_run {
        if let Some(c) = component_of(line) {
            let file = store.entry(c).or_default();
            file.extend_from_slice(line);
            file.push(b'\n');
        }
    }
    // A selected component that said nothing failed; the next report must
    // not take its older success for its latest word.
    for c in selected {
        store.entry(c.clone()).or_insert_with(|| {
            let mut line = serde_json::json!({
                "component": c,
                "status": "failed",
                "duration_seconds": 0,
                "error": "the run selected it, and it left no result record",
            })
            .to_string()
            .into_bytes();
            line.push(b'\n');
            line
        });
    }
    let mut lines = this_run;
    for (c, bytes) in kept.iter().filter(|(c, _)| !store.contains_key(*c)) {
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            lines.push((format!("{DIR}/{c}.jsonl:{}", i + 1), line.to_vec()));
        }
    }
    Merged { lines, store }
}

fn component_of(line: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let c = v["component"].as_str()?;
    backup_common::Component::from_name(c).map(|c| c.name().to_owned())
}

pub fn read(root: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut kept = BTreeMap::new();
    for c in backup_common::Component::ALL {
        let path = root.join(DIR).join(format!("{}.jsonl", c.name()));
        match std::fs::read(&path) {
            Ok(bytes) => {
                kept.insert(c.name().to_owned(), bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(kept)
}

pub fn write(root: &Path, store: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let dir = root.join(DIR);
    backup_common::publish::ensure_dir(&dir)?;
    for (c, bytes) in store {
        backup_common::publish::write_atomically(&dir, &format!("{c}.jsonl"), bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at: &str, text: &str) -> (String, Vec<u8>) {
        (at.into(), text.as_bytes().to_vec())
    }

    #[test]
    fn a_run_keeps_its_components_and_reads_the_others() {
        let kept = BTreeMap::from([
            (
                "postgres".to_owned(),
                b"{\"component\":\"postgres\",\"status\":\"success\"}\n".to_vec(),
            ),
            (
                "n8n".to_owned(),
                b"{\"component\":\"n8n\",\"status\":\"success\",\"old\":1}\n".to_vec(),
            ),
        ]);
        let m = merge(
            vec![
                line(
                    "run:1",
                    r#"{"component":"n8n","status":"failed","error":"down"}"#,
                ),
                line("run:2", "garbage"),
            ],
            &["n8n".to_owned(), "qdrant".to_owned()],
            &kept,
        );
        // n8n: this run's word replaces the kept one; qdrant was selected and
        // said nothing: kept as failed; postgres: the kept record is read.
        assert_eq!(m.store.keys().collect::<Vec<_>>(), ["n8n", "qdrant"]);
        assert!(String::from_utf8_lossy(&m.store["qdrant"]).contains("left no result record"));
        let origins: Vec<&str> = m.lines.iter().map(|(at, _)| at.as_str()).collect();
        assert_eq!(
            origins,
            [
                "run:1",
                "run:2",
                "records/postgres.jsonl:1",
                "records/postgres.jsonl:2"
            ]
        );
        assert!(!m
            .lines
            .iter()
            .any(|(_, l)| String::from_utf8_lossy(l).contains("\"old\"")));
    }
}
