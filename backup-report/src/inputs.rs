//! The run as the records tell it, read so that the report fails closed: a
//! record that cannot be read never disappears into a warning. It makes its
//! component failed (when it names one) or the run at best partial, and the
//! unreadable input is named in `errors`. A component the run selected but
//! that left no readable record is failed too. Pure: lines in, outcome out.

use crate::report::RunStatus;
use backup_common::record::ResultRecord;
use backup_common::Component;
use serde_json::Value;
use std::collections::BTreeMap;

/// What one component's records say.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success(ResultRecord),
    Failed {
        error: String,
        duration_seconds: u64,
    },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success(_))
    }

    pub fn duration_seconds(&self) -> u64 {
        match self {
            Outcome::Success(r) => r.duration_seconds,
            Outcome::Failed {
                duration_seconds, ..
            } => *duration_seconds,
        }
    }
}

/// The run: each component's outcome, its series' outcomes, and unreadable
/// input that names none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub components: BTreeMap<String, Outcome>,
    /// Per component, the outcome of each series its records named (a
    /// database, a bucket); a component backed up as several series has
    /// succeeded only if every one of them did.
    pub series: BTreeMap<String, BTreeMap<String, Outcome>>,
    pub problems: Vec<String>,
}

/// The run's status, and why: `completed` only when every component succeeded
/// and every input was read; `failed` when nothing succeeded (or nothing ran);
/// `partial` otherwise.
pub fn status(run: &Run) -> RunStatus {
    let ok = run.components.values().filter(|o| o.is_success()).count();
    if ok == 0 {
        RunStatus::Failed
    } else if ok == run.components.len() && run.problems.is_empty() {
        RunStatus::Completed
    } else {
        RunStatus::Partial
    }
}

/// What one component's records said, in order.
#[derive(Default)]
struct Said {
    series: BTreeMap<String, Outcome>,
    /// The last record about the whole component (no series), and whether it
    /// was the last record of all.
    whole: Option<Outcome>,
    whole_is_last: bool,
    /// Series (None: the whole component) failed by an unreadable record:
    /// they stay failed.
    sticky: std::collections::BTreeSet<Option<String>>,
}

impl Said {
    fn add(&mut self, series: Option<String>, outcome: Outcome, readable: bool) {
        if self.sticky.contains(&series) {
            return;
        }
        if !readable {
            self.sticky.insert(series.clone());
        }
        self.whole_is_last = series.is_none();
        match series {
            Some(s) => {
                self.series.insert(s, outcome);
            }
            None => self.whole = Some(outcome),
        }
    }

    /// The component's outcome: a last record about the whole component
    /// decides (backup.sh's word after the tool's: a failed promotion or
    /// verification), else one series is the component, else every series
    /// must have succeeded.
    fn outcome(&self, component: &str) -> Outcome {
        match (&self.whole, self.series.len()) {
            (Some(whole), _) if self.whole_is_last || self.series.is_empty() => whole.clone(),
            (_, 1) => self.series.values().next().expect("one").clone(),
            _ => aggregate(component, &self.series),
        }
    }
}

/// Several series as one component: a success whose file is the first
/// series' and whose size and duration are the sums, or a failure naming
/// each series that failed.
fn aggregate(component: &str, series: &BTreeMap<String, Outcome>) -> Outcome {
    let duration_seconds = series.values().map(Outcome::duration_seconds).sum();
    let failures: Vec<String> = series
        .iter()
        .filter_map(|(name, o)| match o {
            Outcome::Failed { error, .. } => Some(format!("{name}: {error}")),
            Outcome::Success(_) => None,
        })
        .collect();
    if !failures.is_empty() {
        return Outcome::Failed {
            error: format!(
                "{} of {} series failed — {}",
                failures.len(),
                series.len(),
                failures.join("; ")
            ),
            duration_seconds,
        };
    }
    let records: Vec<&ResultRecord> = series
        .values()
        .filter_map(|o| match o {
            Outcome::Success(r) => Some(r),
            Outcome::Failed { .. } => None,
        })
        .collect();
    let first = records[0];
    Outcome::Success(ResultRecord {
        component: component.to_owned(),
        status: first.status,
        file: first.file.clone(),
        size_bytes: Some(records.iter().filter_map(|r| r.size_bytes).sum()),
        duration_seconds,
        sha256: first.sha256.clone(),
        error: None,
        series: None,
        extra: Default::default(),
    })
}

/// Reads the records (each line with where it came from); `expected` are the
/// components the run selected.
pub fn read(lines: &[(String, Vec<u8>)], expected: &[Component]) -> Run {
    let mut run = Run::default();
    let mut said: BTreeMap<String, Said> = BTreeMap::new();
    for (at, bytes) in lines {
        // Invalid bytes are replaced, never a reason to stop reading.
        let line = String::from_utf8_lossy(bytes);
        if line.trim().is_empty() {
            continue;
        }
        match judge(at, &line) {
            Judged::Problem(p) => run.problems.push(p),
            Judged::Outcome {
                component,
                series,
                outcome,
                readable,
            } => said
                .entry(component)
                .or_default()
                .add(series, *outcome, readable),
        }
    }
    for (component, said) in said {
        run.components
            .insert(component.clone(), said.outcome(&component));
        if !said.series.is_empty() {
            run.series.insert(component, said.series);
        }
    }
    for c in expected {
        run.components
            .entry(c.name().to_owned())
            .or_insert_with(|| Outcome::Failed {
                error: "no result record: the tool did not report (see backup.log)".into(),
                duration_seconds: 0,
            });
    }
    run
}

enum Judged {
    Problem(String),
    Outcome {
        component: String,
        series: Option<String>,
        outcome: Box<Outcome>,
        readable: bool,
    },
}

fn judge(at: &str, line: &str) -> Judged {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Judged::Problem(format!("{at}: not a result record ({e})")),
    };
    let Some(component) = value.get("component").and_then(Value::as_str) else {
        return Judged::Problem(format!("{at}: a record without a component"));
    };
    if Component::from_name(component).is_none() {
        return Judged::Problem(format!(
            "{at}: a record for unknown component {component:?}"
        ));
    }
    let component = component.to_owned();
    let series = value
        .get("series")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let duration_seconds = value
        .get("duration_seconds")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let unreadable = |why: String| Judged::Outcome {
        component: component.clone(),
        series: series.clone(),
        outcome: Box::new(Outcome::Failed {
            error: format!("its result record could not be read ({at}: {why})"),
            duration_seconds,
        }),
        readable: false,
    };
    match value.get("status").and_then(Value::as_str) {
        Some("success") => match serde_json::from_value::<ResultRecord>(value.clone()) {
            Ok(r) if r.file.is_some() && r.sha256.is_some() && r.size_bytes.is_some() => {
                Judged::Outcome {
                    component,
                    series,
                    outcome: Box::new(Outcome::Success(r)),
                    readable: true,
                }
            }
            Ok(_) => unreadable("a success record without file, size_bytes or sha256".into()),
            Err(e) => unreadable(e.to_string()),
        },
        Some("failed") => Judged::Outcome {
            outcome: Box::new(Outcome::Failed {
                error: value
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("failed without a message")
                    .to_owned(),
                duration_seconds,
            }),
            component,
            series,
            readable: true,
        },
        Some(other) => unreadable(format!("unknown status {other:?}")),
        None => unreadable("no status".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Vec<(String, Vec<u8>)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("stdin:{}", i + 1), t.as_bytes().to_vec()))
            .collect()
    }

    const PG_OK: &str = r#"{"component":"postgres","status":"success","file":"db_20240124_020015.sql.gz","size_bytes":1,"duration_seconds":15,"sha256":"ab"}"#;
    const N8N_OK: &str = r#"{"component":"n8n","status":"success","file":"workflows_20240124_020015.json","size_bytes":1,"duration_seconds":1,"sha256":"cd"}"#;

    #[test]
    fn everything_read_and_successful_is_completed() {
        let run = read(
            &lines(&[PG_OK, N8N_OK]),
            &[Component::Postgres, Component::N8n],
        );
        assert_eq!(status(&run), RunStatus::Completed);
    }

    #[test]
    fn unreadable_records_never_leave_the_run_completed() {
        for (bad, component_failed) in [
            // A failed record without duration_seconds is still a failure.
            (r#"{"component":"n8n","status":"failed","error":"x"}"#, true),
            (
                r#"{"component":"n8n","status":"FAILED","duration_seconds":1}"#,
                true,
            ),
            (
                r#"{"component":"n8n","status":"success","duration_seconds":1}"#,
                true,
            ),
            (r#"{"component":"n8n","stat"#, false),
            ("garbage", false),
            (r#"{"component":"mysql","status":"success"}"#, false),
        ] {
            let run = read(&lines(&[PG_OK, N8N_OK, bad]), &[]);
            assert_eq!(status(&run), RunStatus::Partial, "{bad}");
            if component_failed {
                assert!(!run.components["n8n"].is_success(), "{bad}");
            } else {
                assert_eq!(run.problems.len(), 1, "{bad}: {run:?}");
                assert!(run.problems[0].starts_with("stdin:3: "), "{run:?}");
            }
        }
    }

    #[test]
    fn an_unreadable_record_is_not_overridden_by_a_later_success() {
        let run = read(
            &lines(&[r#"{"component":"n8n","status":"FAILED"}"#, N8N_OK]),
            &[],
        );
        assert_eq!(status(&run), RunStatus::Failed);
    }

    #[test]
    fn invalid_bytes_are_read_around() {
        let mut input = lines(&[PG_OK]);
        input.push(("stdin:2".into(), b"\xff\xfe{not utf-8".to_vec()));
        let run = read(&input, &[]);
        assert_eq!(status(&run), RunStatus::Partial);
    }

    #[test]
    fn a_selected_component_without_a_record_failed() {
        let run = read(&lines(&[PG_OK]), &[Component::Postgres, Component::Minio]);
        assert_eq!(status(&run), RunStatus::Partial);
        assert!(
            matches!(&run.components["minio"], Outcome::Failed { error, .. } if error.contains("no result record"))
        );
        assert_eq!(status(&read(&[], &[Component::Minio])), RunStatus::Failed);
        assert_eq!(status(&read(&[], &[])), RunStatus::Failed);
    }
}
