//! The local attacker's trick against predictable temp names: links planted
//! where a tool used to put its files, pointing at someone else's file.

use crate::tool::{finish, resume, wait_stopped, Output, Tool};
use std::path::{Path, PathBuf};

/// A file outside every folder a tool may write, and what it must still hold.
pub struct Victim {
    _dir: tempfile::TempDir,
    pub file: PathBuf,
}

impl Victim {
    pub fn new() -> Victim {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("precious");
        std::fs::write(&file, b"untouched").unwrap();
        Victim { _dir: dir, file }
    }

    pub fn assert_untouched(&self) {
        assert_eq!(
            std::fs::read(&self.file).unwrap(),
            b"untouched",
            "written through a link"
        );
    }
}

impl Default for Victim {
    fn default() -> Self {
        Victim::new()
    }
}

/// Runs `tool args` with `TMPDIR=tmp`, frozen as it starts (the
/// `tool::started` failpoint) so that links to a victim can be planted at the
/// names `old_names(pid)` (the old temp names held the pid); then lets it run,
/// checks that nothing was written through them, and returns its output.
pub fn run_with_links_at_old_names(
    tool: &Tool,
    args: &[&str],
    tmp: &Path,
    old_names: impl Fn(u32) -> Vec<String>,
) -> Output {
    let victim = Victim::new();
    let child = tool
        .clone()
        .env("TMPDIR", tmp)
        .env("FAILPOINTS", "tool::started=return(SIGSTOP)")
        .spawn(args);
    wait_stopped(&child);
    for name in old_names(child.id()) {
        std::os::unix::fs::symlink(&victim.file, tmp.join(name)).unwrap();
    }
    resume(&child);
    let out = finish(child);
    victim.assert_untouched();
    out
}
