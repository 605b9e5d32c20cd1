//! Turns what pg_dump and psql print on failure into one line that names what
//! failed and what the operator should check.

use std::process::ExitStatus;

/// The message for a failed client program, from its exit status and stderr.
pub fn explain(program: &str, status: ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(mismatch) = version_mismatch(stderr) {
        return mismatch;
    }
    let detail = error_lines(stderr);
    let what = match (status.code(), status.signal()) {
        (_, Some(sig)) => format!("{program} was killed by signal {sig}"),
        (Some(code), _) => format!("{program} exited with status {code}"),
        _ => format!("{program} failed"),
    };
    let mut message = if detail.is_empty() {
        what
    } else {
        format!("{what}: {detail}")
    };
    if let Some(hint) = hint(stderr) {
        message.push_str(" — ");
        message.push_str(hint);
    }
    message
}

/// The error and detail lines, without the `pg_dump: error:` noise, on one line.
fn error_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let wanted: Vec<&str> = lines
        .iter()
        .filter(|l| {
            l.contains("error:")
                || l.contains("FATAL:")
                || l.contains("ERROR:")
                || l.contains("detail:")
        })
        .copied()
        .collect();
    let chosen = if wanted.is_empty() { lines } else { wanted };
    let mut text = chosen
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.len() > 600 {
        let mut end = 600;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn hint(stderr: &str) -> Option<&'static str> {
    let s = stderr;
    if s.contains("password authentication failed") || s.contains("no password supplied") {
        Some("check POSTGRES_USER and POSTGRES_PASSWORD")
    } else if s.contains("Connection refused")
        || s.contains("could not translate host name")
        || s.contains("timeout expired")
        || s.contains("No route to host")
        || s.contains("Network is unreachable")
    {
        Some("check POSTGRES_HOST and POSTGRES_PORT, and that the server is running")
    } else if s.contains("database \"") && s.contains("does not exist") {
        Some("check POSTGRES_DB (or --db)")
    } else if s.contains("permission denied to create database") {
        Some("POSTGRES_USER needs CREATEDB for this (a restore with --create, or a drill's scratch database)")
    } else if s.contains("must be superuser") {
        Some("applying the cluster's roles takes a superuser as POSTGRES_USER")
    } else if s.contains("permission denied") {
        Some("check that POSTGRES_USER may read every object in the database")
    } else {
        None
    }
}

/// pg_dump refuses servers newer than itself:
/// `pg_dump: detail: server version: 16.4; pg_dump version: 15.18`.
fn version_mismatch(stderr: &str) -> Option<String> {
    if !stderr.contains("server version mismatch") {
        return None;
    }
    let detail = stderr.lines().find(|l| l.contains("server version:"))?;
    let server = detail
        .split("server version:")
        .nth(1)?
        .split(';')
        .next()?
        .trim();
    let client = detail.split("pg_dump version:").nth(1)?.trim();
    let major = server.split('.').next().unwrap_or(server);
    Some(format!(
        "server version {server} is newer than pg_dump version {client} — \
         use a pg_dump of major version {major} or newer (install it, or pass --pg-dump PATH)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn names_both_versions_on_a_mismatch() {
        // What pg_dump 15 prints against a 16 server.
        let stderr = "pg_dump: error: aborting because of server version mismatch\n\
                      pg_dump: detail: server version: 16.4 (Debian 16.4-1.pgdg120+1); pg_dump version: 15.18 (Debian 15.18-0+deb12u1)\n";
        let m = explain("pg_dump", exited(1), stderr);
        assert!(
            m.contains("server version 16.4 (Debian 16.4-1.pgdg120+1)"),
            "{m}"
        );
        assert!(
            m.contains("pg_dump version 15.18 (Debian 15.18-0+deb12u1)"),
            "{m}"
        );
        assert!(m.contains("major version 16 or newer"), "{m}");
    }

    #[test]
    fn wrong_password_points_at_the_credentials() {
        let stderr = "pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"arasul\"\n";
        let m = explain("pg_dump", exited(1), stderr);
        assert_eq!(
            m,
            "pg_dump exited with status 1: pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL: password authentication failed for user \"arasul\" — check POSTGRES_USER and POSTGRES_PASSWORD"
        );
    }

    #[test]
    fn unreachable_server_points_at_host_and_port() {
        let stderr = "pg_dump: error: connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n";
        let m = explain("pg_dump", exited(1), stderr);
        assert!(
            m.ends_with("check POSTGRES_HOST and POSTGRES_PORT, and that the server is running"),
            "{m}"
        );
        assert!(!m.contains('\n'));
    }

    #[test]
    fn missing_database_points_at_postgres_db() {
        let stderr = "pg_dump: error: connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nope\" does not exist\n";
        assert!(explain("pg_dump", exited(1), stderr).ends_with("check POSTGRES_DB (or --db)"));
    }

    #[test]
    fn a_killed_child_says_which_signal() {
        let m = explain("pg_dump", ExitStatus::from_raw(9), "");
        assert_eq!(m, "pg_dump was killed by signal 9");
    }
}
