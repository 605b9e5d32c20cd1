//! Secrets from `NAME` or `NAME_FILE` (Docker secrets), and their redaction.
//!
//! Every secret read through here is remembered, so that any text leaving the
//! process through `exit::one_line` or `log` has it masked, whatever library
//! produced the message.

use anyhow::{Context, Result};
use std::fmt;
use std::sync::Mutex;

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A secret value; its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        remember(&value);
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads `name`, or else the file named by `name_FILE` (one trailing newline
/// dropped, as `echo secret > file` writes it). Both set is a configuration error:
/// silently preferring one hides a mistake.
pub fn from_env(name: &str) -> Result<Option<Secret>> {
    let file_var = format!("{name}_FILE");
    let direct = std::env::var(name).ok().filter(|v| !v.is_empty());
    let file = std::env::var_os(&file_var).filter(|v| !v.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(crate::usage(format!(
            "both {name} and {file_var} are set; set only one"
        ))),
        (Some(value), None) => Ok(Some(Secret::new(value))),
        (None, Some(path)) => {
            let raw = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {file_var} ({})", path.to_string_lossy()))
                .map_err(|e| crate::usage(format!("{e:#}")))?;
            let value = raw
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&raw);
            Ok(Some(Secret::new(value.to_owned())))
        }
        (None, None) => Ok(None),
    }
}

/// Like `from_env`, but a missing secret is a configuration error.
pub fn required(name: &str) -> Result<Secret> {
    from_env(name)?.ok_or_else(|| crate::usage(format!("{name} (or {name}_FILE) is not set")))
}

fn remember(value: &str) {
    // Very short values would mask ordinary words in messages; they are also not
    // worth much as secrets, but we still never print them deliberately.
    if value.len() >= 3 {
        let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
        if !known.iter().any(|k| k == value) {
            known.push(value.to_owned());
        }
    }
}

/// Masks every known secret in `text`.
pub fn redact(text: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_owned();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_and_are_redacted() {
        let s = Secret::new("hunter2-very-secret".into());
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(
            redact("auth failed for hunter2-very-secret!"),
            "auth failed for ***!"
        );
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn reads_the_file_form_without_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "from-a-file\n").unwrap();
        // Unique variable names: tests run in parallel threads of one process.
        std::env::set_var("BK_TEST_SECRET_A_FILE", &path);
        let s = from_env("BK_TEST_SECRET_A").unwrap().unwrap();
        assert_eq!(s.expose(), "from-a-file");
    }

    #[test]
    fn both_forms_set_is_a_usage_error() {
        std::env::set_var("BK_TEST_SECRET_B", "x");
        std::env::set_var("BK_TEST_SECRET_B_FILE", "/nonexistent");
        let err = from_env("BK_TEST_SECRET_B").unwrap_err();
        assert_eq!(crate::exit::code(&err), 2);
    }

    #[test]
    fn missing_required_secret_names_both_variables() {
        let err = required("BK_TEST_SECRET_C").unwrap_err();
        assert_eq!(
            err.to_string(),
            "BK_TEST_SECRET_C (or BK_TEST_SECRET_C_FILE) is not set"
        );
        assert_eq!(crate::exit::code(&err), 2);
    }
}
