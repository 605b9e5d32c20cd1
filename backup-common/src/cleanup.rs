//! What must not outlive an interrupted run: temp files and child processes.
//!
//! A SIGINT, SIGTERM or SIGHUP kills the registered children (a `psql` left
//! alive would commit a half-restored database when its stdin closes), removes
//! the registered temp files, lets the tool say what happened, and exits with
//! the status the tool's hook returns.
//!
//! A child that cleans up after itself (a drill's tool, which drops its
//! scratch database) is spawned with `spawn_passing_signals` instead: the
//! signal is passed on to it and it gets `PASSED_ON_GRACE` to finish, so that
//! its clean-up is not cut off by our SIGKILL.
//!
//! Everything that must happen as one unit with respect to a signal runs inside
//! `critical`: creating a temp file and registering it, spawning a child and
//! registering it, and the whole publish sequence (artifact renamed, sidecar,
//! `*_latest`, result record printed). The signal watcher needs the same lock, so
//! a signal that arrives during a unit is acted on right after it — never in the
//! middle, where the record would no longer describe what is on disk.

use std::path::{Path, PathBuf};

use std::sync::Mutex;
/// What `temp_file_in` returns: removed when dropped.
pub use tempfile::NamedTempFile;

/// Called with the signal's name once children are killed and temps removed;
/// returns the exit status.
pub type InterruptHook = Box<dyn Fn(&str) -> i32 + Send>;

/// What the watcher cleans up; handed to `critical` sections.
pub struct Registry {
    temps: Vec<PathBuf>,
    children: Vec<u32>,
    /// Children a signal is passed on to (and waited for) instead of killed.
    passed_on: Vec<u32>,
    on_interrupt: Option<InterruptHook>,
}

/// How long a child that was passed a signal gets to clean up and end before
/// it is killed.
pub const PASSED_ON_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

impl Registry {
    pub fn add_temp(&mut self, path: &Path) {
        self.temps.push(path.to_owned());
    }

    pub fn forget_temp(&mut self, path: &Path) {
        self.temps.retain(|p| p != path);
    }

    pub fn add_child(&mut self, pid: u32) {
        self.children.push(pid);
    }

    /// Replaces what a signal does from now on (e.g. once a success record is out).
    pub fn on_interrupt(&mut self, hook: impl Fn(&str) -> i32 + Send + 'static) {
        self.on_interrupt = Some(Box::new(hook));
    }

    pub fn has_temp(&self, path: &Path) -> bool {
        self.temps.iter().any(|p| p == path)
    }
}

static STATE: Mutex<Registry> = Mutex::new(Registry {
    temps: Vec::new(),
    children: Vec::new(),
    passed_on: Vec::new(),
    on_interrupt: None,
});

fn state() -> std::sync::MutexGuard<'static, Registry> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the signal watcher (once per process; later calls only replace the
/// hook). Call it first thing in `main`: until it runs, a signal kills the
/// process with no word at all.
pub fn install(on_interrupt: impl Fn(&str) -> i32 + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use std::sync::atomic::{AtomicBool, Ordering};
    static WATCHING: AtomicBool = AtomicBool::new(false);
    state().on_interrupt(on_interrupt);
    if WATCHING.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = match signal {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                interrupt(name);
            }
        })?;
    Ok(())
}

fn interrupt(signal: &str) -> ! {
    // Waits for a critical section in progress to end: it is never cut in half.
    let mut st = state();
    let passed_on: Vec<u32> = st.passed_on.drain(..).collect();
    pass_on(signal, &passed_on);
    for pid in st.children.drain(..) {
        // SIGKILL, not SIGTERM: a child must not get to finish (or commit) anything.
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    for path in st.temps.drain(..) {
        // A private temp folder goes whole (remove_dir_all never follows links).
        if std::fs::remove_file(&path).is_err() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    let code = match st.on_interrupt.take() {
        Some(hook) => hook(signal),
        None => crate::ExitStatus::Failed as i32,
    };
    // The lock is held on purpose: nothing may start another unit now.
    std::process::exit(code);
}

pub fn register_temp(path: &Path) {
    state().add_temp(path);
}

pub fn forget_temp(path: &Path) {
    state().forget_temp(path);
}

pub fn forget_child(pid: u32) {
    let mut st = state();
    st.children.retain(|p| *p != pid);
    st.passed_on.retain(|p| *p != pid);
}

/// Sends `signal` to each of `pids` and waits for them to end, at most
/// `PASSED_ON_GRACE` in all; those still running then are killed.
fn pass_on(signal: &str, pids: &[u32]) {
    let number = match signal {
        "SIGINT" => libc::SIGINT,
        "SIGHUP" => libc::SIGHUP,
        _ => libc::SIGTERM,
    };
    for &pid in pids {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe { libc::kill(pid as libc::pid_t, number) };
    }
    let deadline = std::time::Instant::now() + PASSED_ON_GRACE;
    for &pid in pids {
        loop {
            let mut status = 0;
            // SAFETY: waitpid(2) on our own child; WNOHANG never blocks. -1
            // (ECHILD) means the main thread reaped it already.
            let reaped = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            if reaped != 0 {
                break;
            }
            if std::time::Instant::now() > deadline {
                // SAFETY: as above; the child is ours and not reaped.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                    libc::waitpid(pid as libc::pid_t, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Spawns `cmd` and registers the child in one unit: a signal cannot land
/// between the two and leave the child running unseen.
pub fn spawn(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    critical(|registry| {
        let child = cmd.spawn()?;
        registry.add_child(child.id());
        Ok(child)
    })
}

/// Spawns `cmd` as a child that a signal is passed on to (and waited for, up
/// to `PASSED_ON_GRACE`) rather than killed: one that cleans up after itself.
/// Collect it as usual, then `forget_child` it.
pub fn spawn_passing_signals(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    critical(|registry| {
        let child = cmd.spawn()?;
        registry.passed_on.push(child.id());
        Ok(child)
    })
}

/// Creates a private temp file (unpredictable name, `O_EXCL`, 0600; see
/// `tempfile`) in `dir` and registers it in one unit. The name starts with
/// `prefix`.
pub fn temp_file_in(dir: &Path, prefix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    critical(|registry| {
        let file = tempfile::Builder::new()
            .prefix(prefix)
            .rand_bytes(10)
            .tempfile_in(dir)?;
        registry.add_temp(file.path());
        Ok(file)
    })
}

/// A drill's scratch target (a database, a bucket, a collection) that a
/// signal must not leave behind: while one is `set`, a signal removes it with
/// `remove` — on the signal thread, with clients of its own, as the main
/// thread may be in the middle of a request — says what happened, and ends
/// the run failed.
pub struct Scratch {
    current: std::sync::Arc<Mutex<Option<String>>>,
}

impl Scratch {
    /// Watches for signals on behalf of `component`'s drill; `kind` names
    /// the target in messages ("database", "bucket", "collection").
    pub fn watch(
        component: &'static str,
        kind: &'static str,
        remove: impl Fn(&str) -> anyhow::Result<()> + Send + 'static,
    ) -> std::io::Result<Scratch> {
        let current: std::sync::Arc<Mutex<Option<String>>> = Default::default();
        let watched = current.clone();
        install(move |signal| {
            let name = watched.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(name) = name {
                let what = match remove(&name) {
                    Ok(()) => format!("removed the scratch {kind} {name}"),
                    Err(e) => format!(
                        "the scratch {kind} {name} could not be removed ({}) — remove it by hand",
                        crate::exit::one_line(&e)
                    ),
                };
                crate::log::log(
                    component,
                    &format!("restore-test interrupted by {signal}; {what}"),
                );
            }
            crate::ExitStatus::Failed as i32
        })?;
        Ok(Scratch { current })
    }

    /// The scratch target a signal now removes (`None`: nothing to remove).
    pub fn set(&self, name: Option<&str>) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = name.map(str::to_owned);
    }
}

/// Runs `f` with signal handling held off; a signal arriving meanwhile is acted
/// on when `f` returns. `f` gets the registry to update without re-locking.
pub fn critical<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut st = state();
    f(&mut st)
}

/// Test-only fault injection at named steps (the `fail` crate; compiled in only
/// with the `failpoints` feature, which the test builds turn on). `FAILPOINTS`
/// set to `publish::renamed=return(SIGTERM)` sends the process that signal at
/// that exact point: a deterministic stand-in for an unlucky `docker stop`.
pub fn failpoint(name: &str) {
    #[cfg(feature = "failpoints")]
    {
        // The scenario lives as long as the process: read FAILPOINTS once.
        static SETUP: std::sync::Once = std::sync::Once::new();
        SETUP.call_once(|| std::mem::forget(fail::FailScenario::setup()));
        fail::fail_point!(name, |arg: Option<String>| {
            let signal = match arg.as_deref() {
                Some("SIGTERM") => libc::SIGTERM,
                Some("SIGINT") => libc::SIGINT,
                Some("SIGKILL") => libc::SIGKILL,
                // Stops the process there, for a test to act and then SIGCONT it.
                Some("SIGSTOP") => libc::SIGSTOP,
                _ => return,
            };
            // Outside a unit the signal is acted on now, not whenever the watcher
            // thread happens to be scheduled: wait here for it to end the process.
            // Inside a unit (this thread holds the lock) the unit goes on first.
            // Asked before the signal goes out: once it has, the watcher may
            // hold the lock itself, and a unit would be seen where there is none.
            let outside_a_unit = STATE.try_lock().is_ok();
            // SAFETY: raise(3) sends a signal to this process; the watcher handles it.
            unsafe {
                libc::raise(signal);
            }
            if outside_a_unit && signal != libc::SIGSTOP {
                loop {
                    std::thread::park();
                }
            }
        });
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_adds_and_forgets() {
        let p = Path::new("/tmp/.bk-test-registry");
        register_temp(p);
        assert!(critical(|r| r.has_temp(p)));
        forget_temp(p);
        assert!(!critical(|r| r.has_temp(p)));
    }

    #[test]
    fn temp_files_are_private_unpredictable_and_registered() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = temp_file_in(dir.path(), ".x.tmp-").unwrap();
        let b = temp_file_in(dir.path(), ".x.tmp-").unwrap();
        assert_ne!(a.path(), b.path());
        assert!(critical(|r| r.has_temp(a.path()) && r.has_temp(b.path())));
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        forget_temp(a.path());
        forget_temp(b.path());
    }
}
