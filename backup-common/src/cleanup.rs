//! What must not outlive an interrupted run: temp files and child processes.
//!
//! A SIGINT, SIGTERM or SIGHUP kills the registered children (a `psql` left
//! alive would commit a half-restored database when its stdin closes), removes
//! the registered temp files, lets the tool say what happened, and exits 1.
//! The publish sequence runs inside `critical`, so a signal never lands between
//! "renamed into place" and "latest link repointed".

use std::path::{Path, PathBuf};
use std::sync::Mutex;

type InterruptHook = Box<dyn Fn(&str) + Send>;

struct State {
    temps: Vec<PathBuf>,
    children: Vec<u32>,
    on_interrupt: Option<InterruptHook>,
}

static STATE: Mutex<State> = Mutex::new(State {
    temps: Vec::new(),
    children: Vec::new(),
    on_interrupt: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the signal watcher. `on_interrupt` gets the signal's name after the
/// cleanup is done and before the process exits with status 1.
pub fn install(on_interrupt: impl Fn(&str) + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    state().on_interrupt = Some(Box::new(on_interrupt));
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
    let mut st = state();
    for pid in st.children.drain(..) {
        // SIGKILL, not SIGTERM: a child must not get to finish (or commit) anything.
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
    for path in st.temps.drain(..) {
        let _ = std::fs::remove_file(&path);
    }
    if let Some(hook) = st.on_interrupt.take() {
        hook(signal);
    }
    std::process::exit(crate::ExitStatus::Failed as i32);
}

pub fn register_temp(path: &Path) {
    state().temps.push(path.to_owned());
}

pub fn forget_temp(path: &Path) {
    state().temps.retain(|p| p != path);
}

pub fn register_child(pid: u32) {
    state().children.push(pid);
}

pub fn forget_child(pid: u32) {
    state().children.retain(|p| *p != pid);
}

/// Runs `f` with signal handling held off; a signal arriving meanwhile is acted
/// on when `f` returns. `f` gets the temp list to update without re-locking.
pub fn critical<T>(f: impl FnOnce(&mut Vec<PathBuf>) -> T) -> T {
    let mut st = state();
    f(&mut st.temps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_adds_and_forgets() {
        let p = Path::new("/tmp/.bk-test-registry");
        register_temp(p);
        assert!(critical(|temps| temps.iter().any(|t| t == p)));
        forget_temp(p);
        assert!(!critical(|temps| temps.iter().any(|t| t == p)));
    }
}
