//! The audit log (the product description's security section: "log
//! backup/restore operations"): every restore appends one JSON line to
//! `$BACKUP_DIR/audit.log` (or `BACKUP_AUDIT_LOG`) saying when, who, on which
//! host, which tool with which arguments, which artifact (and its sha256 as
//! the sidecar records it), into what, the outcome and how long it took.
//!
//! Two lines per restore: `"outcome":"started"` before the first change to a
//! service, and the outcome when it ends. A restore whose `started` line
//! cannot be written (the log cannot be opened, a full disk) does not start:
//! an unrecorded restore into a live service is what the log exists to rule
//! out, and the operator can point `BACKUP_AUDIT_LOG` elsewhere (a tree
//! mounted read-only, say). A `started` line with no outcome after it is a
//! restore that was killed (SIGKILL, the OOM killer, a power cut). A line
//! that cannot be written at the end is said on stderr; the restore itself is
//! done by then and keeps its exit status.
//!
//! The user is the account of the process's uid (the password database), not
//! `$USER`, which whoever starts the tool sets as they like.
//! The log is 0600, opened without following links, appended to with one
//! `write` per line, and never rotated by the tools.

use crate::{cleanup, exit, log, ExitStatus};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The file name of the audit log in the backup tree.
pub const FILE_NAME: &str = "audit.log";

/// What one restore is about: the artifacts it reads and the target it writes.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub artifacts: Vec<PathBuf>,
    /// The database, bucket, collection(s), n8n instance or folder written.
    pub target: String,
}

/// Where the audit log is: `BACKUP_AUDIT_LOG`, else `audit.log` in
/// `BACKUP_DIR` (default `/data/backups`, as every tool's tree).
pub fn path_from_env() -> PathBuf {
    if let Some(p) = std::env::var_os("BACKUP_AUDIT_LOG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os("BACKUP_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/data/backups"));
    dir.join(FILE_NAME)
}

/// Opens the audit log for appending (created 0600; never through a link).
fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| {
            format!(
                "cannot open the audit log {} — every restore is recorded there, so none starts \
                 without it: check BACKUP_DIR's permissions, or set BACKUP_AUDIT_LOG to a \
                 writable file",
                path.display()
            )
        })
}

/// The artifacts with the sha256 their sidecars record (what the restore
/// checks the content against), links resolved to the files they name.
fn artifacts(paths: &[PathBuf]) -> Vec<Value> {
    paths
        .iter()
        .map(|p| {
            let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let sha256 = crate::sidecar::read(&real).ok().flatten();
            json!({"path": real.to_string_lossy(), "sha256": sha256})
        })
        .collect()
}

fn user() -> (String, u32) {
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    let name = account_name(uid).unwrap_or_else(|| format!("uid {uid}"));
    (name, uid)
}

/// The name the password database gives `uid`, if any.
fn account_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and buf's length is given.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// This machine's name, as audit lines and notifications show it.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Where a restore stands in its audit line.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Written before the first change to a service.
    Started,
    Success,
    Failed(&'a str),
}

/// One audit line: the restore, and now, this user and this host.
pub fn line(
    tool: &str,
    args: &[String],
    subject: &Subject,
    outcome: Outcome,
    duration_seconds: u64,
) -> String {
    let (user, uid) = user();
    let mut v = json!({
        "time": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        "user": user,
        "uid": uid,
        "host": host(),
        "tool": tool,
        "args": args.iter().map(|a| crate::secret::redact(a)).collect::<Vec<_>>(),
        "artifacts": artifacts(&subject.artifacts),
        "target": subject.target,
        "outcome": match outcome {
            Outcome::Started => "started",
            Outcome::Success => "success",
            Outcome::Failed(_) => "failed",
        },
        "duration_seconds": duration_seconds,
    });
    if let Outcome::Failed(e) = outcome {
        v["error"] = crate::secret::redact(e).into();
    }
    let mut text = v.to_string();
    text.push('\n');
    text
}

/// Appends one line with one `write` and flushes it to disk.
fn write_line(file: &Mutex<std::fs::File>, text: &str) -> std::io::Result<()> {
    let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
}

fn append(file: &Mutex<std::fs::File>, text: &str, component: &str, path: &Path) {
    if let Err(e) = write_line(file, text) {
        log::log(
            component,
            &format!(
                "warning: the restore's audit line could not be written to {}: {e}",
                path.display()
            ),
        );
    }
}

/// Runs a restore (`body`) with its audit lines: `started` first (a restore
/// that cannot be recorded does not start), the outcome when it ends — also
/// when a signal ends it.
pub fn run_restore(
    component: &'static str,
    what: &str,
    subject: Subject,
    body: impl FnOnce() -> Result<()>,
) -> i32 {
    let tool = std::env::args()
        .next()
        .map(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(a)
        })
        .unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let path = path_from_env();
    let file = match open(&path) {
        Ok(f) => Arc::new(Mutex::new(f)),
        Err(e) => {
            log::log(component, &format!("{what} failed: {}", exit::one_line(&e)));
            return ExitStatus::Failed as i32;
        }
    };
    let started_line = line(&tool, &args, &subject, Outcome::Started, 0);
    if let Err(e) = write_line(&file, &started_line) {
        log::log(
            component,
            &format!(
                "{what} failed: cannot write to the audit log {} ({e}) — every restore is \
                 recorded there before it starts, so none starts without it: check the disk's \
                 free space, or set BACKUP_AUDIT_LOG to a writable file",
                path.display()
            ),
        );
        return ExitStatus::Failed as i32;
    }
    let (hook_file, hook_path, hook_subject, hook_args, hook_tool, hook_what) = (
        file.clone(),
        path.clone(),
        subject.clone(),
        args.clone(),
        tool.clone(),
        what.to_owned(),
    );
    if let Err(e) = cleanup::install(move |signal| {
        log::log(component, &format!("{hook_what} interrupted by {signal}"));
        let why = format!("interrupted by {signal}");
        let text = line(
            &hook_tool,
            &hook_args,
            &hook_subject,
            Outcome::Failed(&why),
            started.elapsed().as_secs(),
        );
        append(&hook_file, &text, component, &hook_path);
        ExitStatus::Failed as i32
    }) {
        log::log(component, &format!("cannot watch for signals: {e}"));
    }
    let result = body();
    cleanup::critical(|_| {
        let message = result.as_ref().err().map(exit::one_line);
        let text = line(
            &tool,
            &args,
            &subject,
            message.as_deref().map_or(Outcome::Success, Outcome::Failed),
            started.elapsed().as_secs(),
        );
        append(&file, &text, component, &path);
        crate::tool::finish(component, what, result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_says_who_what_where_and_how_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("shop_20240101_000000.sql.gz");
        std::fs::write(&artifact, b"x").unwrap();
        std::fs::write(
            dir.path().join("shop_20240101_000000.sql.gz.sha256"),
            format!("{}  shop_20240101_000000.sql.gz\n", "ab".repeat(32)),
        )
        .unwrap();
        let subject = Subject {
            artifacts: vec![artifact.clone()],
            target: "database shop".into(),
        };
        let text = line(
            "pg-dumpwrap",
            &["restore".into()],
            &subject,
            Outcome::Failed("boom"),
            3,
        );
        assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["tool"], "pg-dumpwrap");
        assert_eq!(v["target"], "database shop");
        assert_eq!(v["outcome"], "failed");
        assert_eq!(v["error"], "boom");
        assert_eq!(v["duration_seconds"], 3);
        assert_eq!(v["artifacts"][0]["sha256"], "ab".repeat(32));
        assert!(v["host"].as_str().is_some_and(|h| !h.is_empty()));
        let started = line("pg-dumpwrap", &[], &subject, Outcome::Started, 0);
        assert_eq!(
            serde_json::from_str::<Value>(&started).unwrap()["outcome"],
            "started"
        );
    }

    #[test]
    fn the_user_is_the_uids_account_whatever_user_says() {
        // SAFETY: getuid(2) cannot fail.
        let uid = unsafe { libc::getuid() };
        let expected = account_name(uid).unwrap_or_else(|| format!("uid {uid}"));
        std::env::set_var("USER", "somebody-else");
        std::env::set_var("LOGNAME", "somebody-else");
        let (name, got_uid) = user();
        assert_eq!((name.as_str(), got_uid), (expected.as_str(), uid));
        assert_ne!(name, "somebody-else");
    }

    #[test]
    fn the_log_is_private_and_never_followed_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(FILE_NAME);
        drop(open(&log).unwrap());
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let planted = dir.path().join("planted.log");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &planted).unwrap();
        assert!(open(&planted).is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }
}
