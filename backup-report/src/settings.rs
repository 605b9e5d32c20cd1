//! The report's settings, from a flag or else its variable, parsed once at the
//! boundary. A bad value never stops the report: the last report would stay
//! "completed" and nobody would hear of the run. It is replaced by its default
//! and named — the variable (or the flag) and its value — as a warning of the
//! report; `--check-settings` (the entrypoint, in every mode) refuses it
//! before any run.

use crate::notify::Level;

/// The settings a report (and its health check) works with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub days: u32,
    pub weeks: u32,
    pub shrink_warn: u32,
    pub notify_level: Level,
    /// never, weekly or always.
    pub restore_test: &'static str,
    pub offsite_max_age_hours: Option<u32>,
    pub restore_test_max_age_days: u32,
}

/// The raw values given as flags (`None`: not given, the variable decides).
#[derive(Debug, Clone, Default)]
pub struct Given<'a> {
    pub days: Option<&'a str>,
    pub weeks: Option<&'a str>,
    pub shrink_warn: Option<&'a str>,
    pub notify_level: Option<&'a str>,
    pub restore_test: Option<&'a str>,
    pub offsite_max_age_hours: Option<&'a str>,
    pub restore_test_max_age_days: Option<&'a str>,
}

/// One setting: its flag, its variable, and how a value is read.
struct Spec<T> {
    flag: &'static str,
    variable: &'static str,
    default: T,
    /// What a good value is, for the message.
    wanted: &'static str,
    parse: fn(&str) -> Option<T>,
}

/// The flag's value, else the variable's; its default when unset or bad (a
/// bad one is added to `problems`, named as it was given).
fn take<T>(
    flag: Option<&str>,
    spec: Spec<T>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> T {
    let (value, source) = match flag {
        Some(v) => (Some(v.to_owned()), format!("--{}", spec.flag)),
        None => (env(spec.variable), spec.variable.to_owned()),
    };
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return spec.default;
    };
    // Not trimmed: backup-prune and backup.sh read the same variables as
    // they are, and a value one reads and another refuses would drift.
    match (spec.parse)(&value) {
        Some(v) => v,
        None => {
            problems.push(format!(
                "{source}={value:?} is not {}; {} is used until it is fixed",
                spec.wanted,
                describe_default(spec.flag)
            ));
            spec.default
        }
    }
}

fn whole_number(max: u32) -> impl Fn(&str) -> Option<u32> {
    move |text| text.parse::<u32>().ok().filter(|n| *n <= max)
}

/// The settings from `given` flags and `env` (variables), with every bad
/// value named. Pure: `env` is the process environment in use.
pub fn resolve(given: &Given, env: &dyn Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
    let mut problems = Vec::new();
    let days = take(
        given.days,
        Spec {
            flag: "days",
            variable: "BACKUP_RETENTION_DAYS",
            default: 30,
            wanted: "a whole number of days from 0 to 36500",
            parse: |t| whole_number(36_500)(t),
        },
        env,
        &mut problems,
    );
    let weeks = take(
        given.weeks,
        Spec {
            flag: "weeks",
            variable: "BACKUP_RETENTION_WEEKLY",
            default: 12,
            wanted: "a whole number of weeks from 0 to 5200",
            parse: |t| whole_number(5_200)(t),
        },
        env,
        &mut problems,
    );
    let shrink_warn = take(
        given.shrink_warn,
        Spec {
            flag: "shrink-warn",
            variable: "BACKUP_SHRINK_WARN",
            default: 50,
            wanted: "a percentage from 1 to 100",
            parse: |t| crate::anomaly::parse_shrink(t).ok(),
        },
        env,
        &mut problems,
    );
    let offsite_max_age_hours = take(
        given.offsite_max_age_hours,
        Spec {
            flag: "offsite-max-age-hours",
            variable: "BACKUP_OFFSITE_MAX_AGE_HOURS",
            default: None,
            wanted: "a whole number of hours from 1 to 87600",
            parse: |t| {
                t.parse::<u32>()
                    .ok()
                    .filter(|h| (1..=87_600).contains(h))
                    .map(Some)
            },
        },
        env,
        &mut problems,
    );
    let restore_test_max_age_days = take(
        given.restore_test_max_age_days,
        Spec {
            flag: "restore-test-max-age-days",
            variable: "BACKUP_RESTORE_TEST_MAX_AGE_DAYS",
            default: 8,
            wanted: "a whole number of days from 1 to 3650",
            parse: |t| t.parse::<u32>().ok().filter(|d| (1..=3_650).contains(d)),
        },
        env,
        &mut problems,
    );
    let notify_level = take(
        given.notify_level,
        Spec {
            flag: "notify-level",
            variable: "BACKUP_NOTIFY_LEVEL",
            default: Level::Error,
            wanted: "error, always or never",
            parse: |t| Level::parse(t).ok(),
        },
        env,
        &mut problems,
    );
    let restore_test = take(
        given.restore_test,
        Spec {
            flag: "restore-test",
            variable: "BACKUP_RESTORE_TEST",
            default: "weekly",
            wanted: "never, weekly or always",
            parse: |t| ["never", "weekly", "always"].into_iter().find(|w| *w == t),
        },
        env,
        &mut problems,
    );
    (
        Settings {
            days,
            weeks,
            shrink_warn,
            notify_level,
            restore_test,
            offsite_max_age_hours,
            restore_test_max_age_days,
        },
        problems,
    )
}

fn describe_default(flag: &str) -> &'static str {
    match flag {
        "days" => "the default 30",
        "weeks" => "the default 12",
        "shrink-warn" => "the default 50%",
        "offsite-max-age-hours" => "no limit",
        "restore-test-max-age-days" => "the default 8",
        "notify-level" => "the default error",
        "restore-test" => "the default weekly",
        _ => "the default",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn good_values_are_taken_from_the_flag_before_the_variable() {
        let (s, problems) = resolve(
            &Given {
                days: Some("7"),
                ..Given::default()
            },
            &env(&[
                ("BACKUP_RETENTION_DAYS", "9"),
                ("BACKUP_SHRINK_WARN", "40%"),
                ("BACKUP_NOTIFY_LEVEL", "always"),
                ("BACKUP_OFFSITE_MAX_AGE_HOURS", "26"),
            ]),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.days, 7);
        assert_eq!(s.shrink_warn, 40);
        assert_eq!(s.notify_level, Level::Always);
        assert_eq!(s.offsite_max_age_hours, Some(26));
        assert_eq!(s.weeks, 12);
        assert_eq!(s.restore_test, "weekly");
    }

    #[test]
    fn every_bad_value_is_named_with_its_variable_and_replaced_by_its_default() {
        let (s, problems) = resolve(
            &Given::default(),
            &env(&[
                ("BACKUP_RETENTION_DAYS", "1e9"),
                ("BACKUP_RETENTION_WEEKLY", "-1"),
                ("BACKUP_SHRINK_WARN", "abc"),
                ("BACKUP_NOTIFY_LEVEL", "errors"),
                ("BACKUP_RESTORE_TEST", "sometimes"),
                ("BACKUP_OFFSITE_MAX_AGE_HOURS", "-5"),
                ("BACKUP_RESTORE_TEST_MAX_AGE_DAYS", "0"),
            ]),
        );
        assert_eq!(s, resolve(&Given::default(), &env(&[])).0);
        assert_eq!(problems.len(), 7, "{problems:?}");
        assert!(problems[0].starts_with("BACKUP_RETENTION_DAYS=\"1e9\" is not a whole number"));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("BACKUP_NOTIFY_LEVEL=\"errors\"")));
        let (_, problems) = resolve(
            &Given {
                days: Some("1000000000"),
                ..Given::default()
            },
            &env(&[]),
        );
        assert!(
            problems[0].starts_with("--days=\"1000000000\""),
            "{problems:?}"
        );
    }
}
