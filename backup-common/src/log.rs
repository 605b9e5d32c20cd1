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

pub fn log(component: &str, message: &str) {
    eprintln!("{}", line(component, message));
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
