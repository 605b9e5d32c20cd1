//! Human log lines on stderr: `2024-01-24T02:00:15+01:00 postgres: <message>`.

use chrono::{Local, SecondsFormat};

pub fn line(component: &str, message: &str) -> String {
    format!(
        "{} {}: {}",
        Local::now().to_rfc3339_opts(SecondsFormat::Secs, false),
        component,
        crate::secret::redact(message)
    )
}

/// Writes one log line to stderr. A stderr that is gone (the reader of a pipe
/// died, a full disk under a log file) never ends the tool: `eprintln!` would
/// panic there, in the middle of a restore or before a drill's clean-up.
pub fn log(component: &str, message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{}", line(component, message));
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_has_the_contract_shape() {
        let l = super::line("postgres", "dump complete");
        let (stamp, rest) = l.split_once(' ').unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert_eq!(rest, "postgres: dump complete");
    }
}
