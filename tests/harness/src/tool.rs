//! Running a tool's real binary with a controlled environment.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tool binary and the environment it runs with. The environment starts
/// empty but for PATH, so nothing from the developer's shell leaks in.
#[derive(Clone)]
pub struct Tool {
    pub bin: PathBuf,
    /// Arguments that come before every call's own (`sh script.sh` for a script).
    pub args: Vec<OsString>,
    pub env: BTreeMap<String, OsString>,
}

#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Waits for a spawned tool (stdout and stderr piped) and collects its output.
pub fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().expect("wait for the tool").into()
}

/// Collects a spawned tool's output if it ends within `limit`; otherwise kills
/// it and returns `None` (a hang detector, not a speed check).
pub fn finish_within(mut child: std::process::Child, limit: std::time::Duration) -> Option<Output> {
    let deadline = std::time::Instant::now() + limit;
    // stdout and stderr are drained meanwhile, so a chatty child cannot block.
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the tool") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Some(
        std::process::Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
        .into(),
    )
}

/// Sends SIGTERM to a spawned tool and collects its output; the tool must exit
/// 1 and say that it was interrupted.
pub fn terminate(child: std::process::Child) -> Output {
    // SAFETY: plain kill(2) of a child the test started and has not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = finish(child);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("interrupted by SIGTERM"),
        "{}",
        out.stderr
    );
    out
}

/// Waits until a spawned tool has stopped itself (a `return(SIGSTOP)`
/// failpoint): it is then frozen at exactly that point.
pub fn wait_stopped(child: &std::process::Child) {
    let stat = format!("/proc/{}/stat", child.id());
    wait_for("the tool to stop at its failpoint", || {
        let text = std::fs::read_to_string(&stat).ok()?;
        // The state follows the parenthesised command name.
        let state = text.rsplit_once(") ")?.1.chars().next()?;
        (state == 'T').then_some(())
    });
}

/// Lets a stopped tool go on.
pub fn resume(child: &std::process::Child) {
    // SAFETY: kill(2) of a child the test started and has not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
}

/// Waits until the wall clock has entered the next whole second (for things
/// stamped with a second's resolution: artifact names, S3 last-modified).
pub fn wait_for_next_second() {
    let second = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let now = second();
    wait_for("the next second", || (second() > now).then_some(()));
}

/// Polls `f` until it yields a value; fails the test after a minute.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Output {
    /// stdout and stderr together, to check that a secret is in neither.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The one result record a backup run prints on stdout.
    pub fn record(&self) -> serde_json::Value {
        let mut lines = self.json_lines();
        assert_eq!(
            lines.len(),
            1,
            "exactly one record on stdout: {}",
            self.stdout
        );
        lines.remove(0)
    }

    /// A failed run: exit `code`, exactly one `<what> failed` line on stderr and
    /// it contains `needle`, and `secret` in no output.
    pub fn assert_failed(&self, what: &str, code: i32, needle: &str, secret: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        let marker = format!("{what} failed");
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains(&marker))
            .collect();
        assert_eq!(lines.len(), 1, "one error line: {}", self.stderr);
        assert!(lines[0].contains(needle), "{needle:?} not in: {}", lines[0]);
        assert!(
            !self.all().contains(secret),
            "secret leaked: {}",
            self.all()
        );
    }

    /// A failed backup: as `assert_failed`, and a failed record saying the same.
    pub fn assert_backup_failed(&self, code: i32, needle: &str, secret: &str) {
        self.assert_failed("backup", code, needle, secret);
        let r = self.record();
        assert_eq!(r["status"], "failed");
        assert!(r["error"].as_str().unwrap_or("").contains(needle), "{r}");
        assert!(r.get("file").is_none());
    }

    /// The JSON lines on stdout.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl Tool {
    pub fn new(bin: impl AsRef<Path>) -> Tool {
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_owned(),
            std::env::var_os("PATH").unwrap_or_default(),
        );
        Tool {
            bin: bin.as_ref().to_owned(),
            args: Vec::new(),
            env,
        }
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Tool {
        self.env.insert(key.to_owned(), value.into());
        self
    }

    pub fn without(mut self, key: &str) -> Tool {
        self.env.remove(key);
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args).args(args).env_clear().envs(&self.env);
        cmd
    }

    /// Starts the tool with stdin closed and stdout and stderr piped; collect it
    /// with `finish` or `terminate`.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display()))
    }

    /// Runs to completion on a terminal: util-linux's `script` gives the tool
    /// a pseudo-terminal for stdout and stderr, whose bytes (both streams,
    /// control sequences included) come back as `stdout`.
    pub fn run_on_terminal(&self, args: &[&str]) -> Output {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let line: Vec<String> = std::iter::once(self.bin.to_string_lossy().into_owned())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .chain(args.iter().map(|a| a.to_string()))
            .map(|a| quote(&a))
            .collect();
        Command::new("script")
            .args(["-qefc", &line.join(" "), "/dev/null"])
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .output()
            .expect("script (util-linux)")
            .into()
    }

    /// Runs to completion with stdin closed.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()))
            .into()
    }
}
