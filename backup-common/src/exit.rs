//! The contract's exit codes, and the one-line error message every tool prints.

use std::fmt;

/// Exit codes of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    /// The operation failed; nothing was published, earlier backups are untouched.
    Failed = 1,
    /// Usage or configuration error (missing variable, bad flag).
    Usage = 2,
    /// Another run holds the lock (EX_TEMPFAIL).
    Locked = 75,
}

#[derive(Debug)]
struct UsageError(String);

#[derive(Debug)]
struct LockedError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for LockedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}
impl std::error::Error for LockedError {}

/// A usage or configuration error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Another run holds the lock (exit 75).
pub fn locked(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(LockedError(message.into()))
}

/// The exit status an error maps to; anything not marked otherwise is a failed operation.
pub fn status(err: &anyhow::Error) -> ExitStatus {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return ExitStatus::Usage;
        }
        if cause.is::<LockedError>() {
            return ExitStatus::Locked;
        }
    }
    ExitStatus::Failed
}

pub fn code(err: &anyhow::Error) -> i32 {
    status(err) as i32
}

/// The error and its causes on one line, secrets masked: what failed, then why.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        // Context layers often repeat their cause's text; say it once.
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    crate::secret::redact(&parts.join(": "))
}

/// An error and its sources on one line, each said once (HTTP clients' top
/// errors, "error sending request", do not say that the connection was refused).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn maps_marked_errors_to_contract_codes() {
        assert_eq!(code(&usage("bad flag")), 2);
        assert_eq!(code(&locked("busy")), 75);
        assert_eq!(code(&anyhow::anyhow!("boom")), 1);
        let wrapped = Err::<(), _>(usage("POSTGRES_DB is empty"))
            .context("reading configuration")
            .unwrap_err();
        assert_eq!(code(&wrapped), 2, "context keeps the mark");
    }

    #[test]
    fn one_line_joins_causes_and_flattens_newlines() {
        let err = Err::<(), _>(anyhow::anyhow!("line one\nline two"))
            .context("writing x")
            .unwrap_err();
        assert_eq!(one_line(&err), "writing x: line one line two");
    }

    #[test]
    fn one_line_does_not_repeat_a_cause() {
        let err = Err::<(), _>(anyhow::anyhow!("disk full"))
            .context("backup failed: disk full")
            .unwrap_err();
        assert_eq!(one_line(&err), "backup failed: disk full");
    }
}
