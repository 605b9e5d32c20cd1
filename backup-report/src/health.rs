//! Is the service healthy? Pure: the schedule, the last report and the clock in,
//! a verdict out. The container's HEALTHCHECK and the entrypoint's schedule
//! check call this through `backup-report --health` / `--check-schedule`.

use chrono::{DateTime, Local};
use croner::Cron;
use serde_json::Value;
use std::str::FromStr;

/// A cron schedule that busybox crond runs as written: five fields of numbers,
/// `*`, ranges, steps, lists, and month or weekday names. Croner reads it (and
/// checks the ranges); extensions crond lacks (`L`, `W`, `#`, `?`, seconds,
/// `@daily`) are refused here rather than silently never firing.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let problem = |why: String| {
            Err(format!(
                "BACKUP_SCHEDULE {text:?} is not a cron schedule crond can run: {why} \
                 (five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\")"
            ))
        };
        if fields.len() != 5 {
            return problem(format!("{} fields", fields.len()));
        }
        for (i, field) in fields.iter().enumerate() {
            let names_allowed = i >= 3;
            let ok = field.chars().all(|c| {
                c.is_ascii_digit()
                    || matches!(c, '*' | ',' | '-' | '/')
                    || (names_allowed && c.is_ascii_alphabetic())
            });
            let letters_are_names = field
                .split(|c: char| !c.is_ascii_alphabetic())
                .all(|w| w.is_empty() || w.len() == 3);
            if !ok || !letters_are_names {
                return problem(format!(
                    "field {} ({field:?}) uses syntax crond does not know",
                    i + 1
                ));
            }
        }
        let normalized = fields.join(" ");
        match Cron::from_str(&normalized) {
            Ok(cron) => Ok(Schedule {
                text: normalized,
                cron,
            }),
            Err(e) => problem(e.to_string()),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn next_after(&self, t: DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The last time the schedule fired at or before `t`.
    pub fn last_at_or_before(&self, t: DateTime<Local>) -> Option<DateTime<Local>> {
        self.cron.find_previous_occurrence(&t, true).ok()
    }
}

/// What the health check knows.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub schedule: &'a Schedule,
    /// The last `backup_report.json`, if there is one.
    pub report: Option<&'a Value>,
    pub now: DateTime<Local>,
    /// How long a run may take before its report counts as late.
    pub grace: chrono::Duration,
    /// When the service started (before the first due run, no report is fine).
    pub started: Option<DateTime<Local>>,
    /// The restore drills: how old the newest successful one of every
    /// component may be (`None`: not judged, BACKUP_RESTORE_TEST=never), and
    /// the last `restore_test.json`.
    pub drill_max_age: Option<chrono::Duration>,
    pub drills: Option<&'a Value>,
    /// How old the last successful off-site copy may be (`None`: not
    /// judged), and the last `offsite.json`.
    pub offsite_max_age: Option<chrono::Duration>,
    pub offsite: Option<&'a Value>,
}

/// `Ok(why it is healthy)` or `Err(what is wrong, one line)`.
pub fn judge(f: &Facts) -> Result<String, String> {
    let mut why = judge_backups(f)?;
    for more in [judge_drills(f)?, judge_offsite(f)?].into_iter().flatten() {
        why = format!("{why}; {more}");
    }
    Ok(why)
}

/// The off-site copy: the last successful one within the allowed age.
fn judge_offsite(f: &Facts) -> Result<Option<String>, String> {
    let Some(max_age) = f.offsite_max_age else {
        return Ok(None);
    };
    let hours = max_age.num_hours();
    let last = f.offsite.and_then(last_success);
    let failed = f.offsite.map(last_failure).unwrap_or_default();
    match last {
        Some(t) if f.now - t <= max_age => Ok(Some(format!(
            "the last off-site copy ({}) is within {hours} h",
            stamp(t)
        ))),
        Some(t) => Err(format!(
            "the last successful off-site copy was at {} (more than {hours} h ago, \
             BACKUP_OFFSITE_MAX_AGE_HOURS){failed}",
            stamp(t)
        )),
        None if f.started.is_some_and(|s| f.now - s < max_age) => {
            Ok(Some("no off-site copy yet".into()))
        }
        None => Err(format!(
            "no successful off-site copy in the last {hours} h{failed}; check \
             BACKUP_OFFSITE_REMOTE and backup.log"
        )),
    }
}

/// The restore drills: every component's newest successful drill within the
/// allowed age. Before the service has run that long, no drill is fine.
fn judge_drills(f: &Facts) -> Result<Option<String>, String> {
    let Some(max_age) = f.drill_max_age else {
        return Ok(None);
    };
    let days = max_age.num_days();
    let young = f.started.is_some_and(|s| f.now - s < max_age);
    let components = f
        .drills
        .and_then(|d| d["components"].as_object())
        .filter(|c| !c.is_empty());
    let Some(components) = components else {
        return if young {
            Ok(Some("no restore drill yet".into()))
        } else {
            Err(format!(
                "no restore drill in the last {days} days (restore_test.json is missing); run \
                 backup-verify --restore-test, or check BACKUP_RESTORE_TEST"
            ))
        };
    };
    for (component, entry) in components {
        match last_success(entry) {
            Some(t) if f.now - t <= max_age => {}
            Some(t) => {
                return Err(format!(
                    "the newest successful restore drill of {component} was at {} (more than \
                     {days} days ago, BACKUP_RESTORE_TEST_MAX_AGE_DAYS){}",
                    stamp(t),
                    last_failure(entry)
                ))
            }
            None if young => {}
            None => {
                return Err(format!(
                    "no successful restore drill of {component} yet{}",
                    last_failure(entry)
                ))
            }
        }
    }
    Ok(Some(format!(
        "every component's restore drill passed within {days} days"
    )))
}

/// When a recorded drill or off-site copy last succeeded (`last_success`).
fn last_success(record: &Value) -> Option<DateTime<Local>> {
    record["last_success"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Local))
}

/// `; the last one failed: <error>` when the record holds one, else nothing.
fn last_failure(record: &Value) -> String {
    record["error"]
        .as_str()
        .map(|e| format!("; the last one failed: {e}"))
        .unwrap_or_default()
}

fn judge_backups(f: &Facts) -> Result<String, String> {
    // The run that should have finished by now.
    let due = f.schedule.last_at_or_before(f.now - f.grace);
    let Some(report) = f.report else {
        return match (due, f.started) {
            (Some(due), Some(started)) if due < started => Ok(format!(
                "no backup yet; the first is due at {}",
                stamp(f.schedule.next_after(started).unwrap_or(due))
            )),
            (None, _) => Ok("no backup yet and none due".into()),
            (Some(due), _) => Err(format!(
                "no backup_report.json, though a backup was due at {}; check backup.log",
                stamp(due)
            )),
        };
    };
    let status = report["status"].as_str().unwrap_or("missing");
    let when = report["timestamp"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Local));
    let Some(when) = when else {
        return Err("backup_report.json has no valid timestamp; check backup.log".into());
    };
    if status != "completed" {
        let errors: Vec<&str> = report["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return Err(format!(
            "the last backup ({}) is {status}: {}",
            stamp(when),
            if errors.is_empty() {
                "see backup.log".to_owned()
            } else {
                errors.join("; ")
            }
        ));
    }
    match due {
        Some(due) if when < due => Err(format!(
            "the last backup finished at {}, but one was due at {} (schedule \"{}\"); check that crond runs and backup.log",
            stamp(when),
            stamp(due),
            f.schedule.text()
        )),
        _ => Ok(format!("the last backup ({}) completed", stamp(when))),
    }
}

fn stamp(t: DateTime<Local>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timestamp;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Local> {
        Local.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn report(status: &str, t: DateTime<Local>) -> Value {
        json!({"status": status, "timestamp": timestamp(t.with_timezone(&Utc)),
               "errors": if status == "completed" { json!([]) } else { json!(["minio: cannot reach"]) }})
    }

    fn facts<'a>(s: &'a Schedule, r: Option<&'a Value>, now: DateTime<Local>) -> Facts<'a> {
        Facts {
            schedule: s,
            report: r,
            now,
            grace: chrono::Duration::hours(2),
            started: None,
            drill_max_age: None,
            drills: None,
            offsite_max_age: None,
            offsite: None,
        }
    }

    #[test]
    fn an_old_or_missing_off_site_copy_is_unhealthy_only_when_judged() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        let now = at(2024, 3, 20, 12, 0);
        let r = report("completed", at(2024, 3, 20, 2, 10));
        let fresh = json!({"status": "success", "last_success": "2024-03-20T02:20:00Z"});
        let stale = json!({"status": "failed", "last_success": "2024-03-18T02:20:00Z",
                           "error": "checking what was sent failed (rclone status 1): x: md5 differ"});
        let mut f = facts(&s, Some(&r), now);
        f.offsite = Some(&stale);
        assert!(judge(&f).is_ok(), "not judged without a max age");
        f.offsite_max_age = Some(chrono::Duration::hours(26));
        let why = judge(&f).unwrap_err();
        assert!(
            why.starts_with("the last successful off-site copy was at 2024-03-18")
                && why.ends_with("x: md5 differ"),
            "{why}"
        );
        f.offsite = Some(&fresh);
        assert!(judge(&f).unwrap().contains("off-site copy"));
        f.offsite = None;
        assert!(judge(&f)
            .unwrap_err()
            .starts_with("no successful off-site copy in the last 26 h"));
    }

    #[test]
    fn drills_older_than_the_allowed_age_make_it_unhealthy() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        let now = at(2024, 3, 20, 12, 0);
        let r = report("completed", at(2024, 3, 20, 2, 10));
        let drills = |pg: &str, minio: &str| {
            json!({"components": {
                "postgres": {"status": "success", "last_success": pg},
                "minio": {"status": "failed", "last_success": minio, "error": "documents: object x"}}})
        };
        let fresh = drills("2024-03-17T02:30:00Z", "2024-03-17T02:31:00Z");
        let stale = drills("2024-03-17T02:30:00Z", "2024-03-01T02:31:00Z");
        let mut f = facts(&s, Some(&r), now);
        f.drill_max_age = Some(chrono::Duration::days(8));
        f.drills = Some(&fresh);
        assert!(judge(&f)
            .unwrap()
            .contains("restore drill passed within 8 days"));
        f.drills = Some(&stale);
        let why = judge(&f).unwrap_err();
        assert!(
            why.starts_with("the newest successful restore drill of minio was at 2024-03-01")
                && why.contains(" (more than 8 days ago, BACKUP_RESTORE_TEST_MAX_AGE_DAYS); ")
                && why.ends_with("the last one failed: documents: object x"),
            "{why}"
        );
        // Never judged with BACKUP_RESTORE_TEST=never; none yet is fine while young.
        f.drill_max_age = None;
        assert!(judge(&f).is_ok());
        f.drill_max_age = Some(chrono::Duration::days(8));
        f.drills = None;
        assert!(judge(&f)
            .unwrap_err()
            .starts_with("no restore drill in the last 8 days"));
        assert_eq!(
            judge(&f).unwrap_err(),
            "no restore drill in the last 8 days (restore_test.json is missing); run \
             backup-verify --restore-test, or check BACKUP_RESTORE_TEST"
        );
        f.started = Some(at(2024, 3, 18, 0, 0));
        assert!(judge(&f).is_ok());
    }

    #[test]
    fn accepts_what_crond_runs_and_refuses_the_rest() {
        for ok in [
            "0 2 * * *",
            "0 */6 * * *",
            "0 3 * * 0",
            "0 0,12 * * *",
            "15 1-5/2 1 jan-mar mon,fri",
            "  0   2 * * *  ",
        ] {
            assert!(
                Schedule::parse(ok).is_ok(),
                "{ok}: {:?}",
                Schedule::parse(ok).err()
            );
        }
        for bad in [
            "",
            "0 2 * *",
            "0 0 2 * * *",
            "61 2 * * *",
            "0 24 * * *",
            "0 2 L * *",
            "0 2 * * 5#2",
            "0 2 ? * *",
            "@daily",
            "0 2 * * monday",
            "every day",
            "0 2 * 13 *",
        ] {
            let e = Schedule::parse(bad).expect_err(bad);
            assert!(e.starts_with("BACKUP_SCHEDULE"), "{e}");
            assert!(e.contains("e.g. \"0 2 * * *\""), "{e}");
        }
    }

    #[test]
    fn a_completed_report_after_the_last_due_run_is_healthy() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        let r = report("completed", at(2026, 11, 26, 2, 3));
        assert!(judge(&facts(&s, Some(&r), at(2026, 11, 26, 9, 0))).is_ok());
        // 03:00 next day: the 02:00 run still has its grace period.
        assert!(judge(&facts(&s, Some(&r), at(2026, 11, 27, 3, 0))).is_ok());
        // 04:30: the 02:00 run should have finished.
        let e = judge(&facts(&s, Some(&r), at(2026, 11, 27, 4, 30))).unwrap_err();
        assert!(e.contains("but one was due at 2026-11-27T02:00:00"), "{e}");
    }

    #[test]
    fn a_partial_or_failed_report_is_unhealthy_with_its_errors() {
        let s = Schedule::parse("0 */6 * * *").unwrap();
        for status in ["partial", "failed"] {
            let r = report(status, at(2026, 11, 26, 6, 2));
            let e = judge(&facts(&s, Some(&r), at(2026, 11, 26, 7, 0))).unwrap_err();
            assert!(
                e.contains(&format!("is {status}: minio: cannot reach")),
                "{e}"
            );
        }
        let broken = json!({"status": "completed"});
        assert!(judge(&facts(&s, Some(&broken), at(2026, 11, 26, 7, 0))).is_err());
    }

    #[test]
    fn no_report_is_fine_only_until_the_first_run_is_due() {
        let s = Schedule::parse("0 2 * * *").unwrap();
        let mut f = facts(&s, None, at(2026, 11, 26, 14, 0));
        f.started = Some(at(2026, 11, 26, 13, 0));
        let ok = judge(&f).unwrap();
        assert!(ok.contains("first is due at 2026-11-27T02:00:00"), "{ok}");
        f.now = at(2026, 11, 27, 5, 0);
        let e = judge(&f).unwrap_err();
        assert!(e.contains("no backup_report.json"), "{e}");
        f.started = None;
        f.now = at(2026, 11, 26, 14, 0);
        assert!(
            judge(&f).is_err(),
            "no start time known: a due run is missing"
        );
    }
}
