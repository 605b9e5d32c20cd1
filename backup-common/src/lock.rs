//! One run at a time per component folder.
//!
//! The lock is an advisory `flock` on `<component dir>/.lock`; the kernel drops it
//! when the process dies, so a crashed run never leaves a stale lock behind.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".lock";

#[derive(Debug)]
pub struct DirLock {
    _file: File,
    pub path: PathBuf,
}

/// Takes the lock of `dir` (which must exist) or fails with exit status 75.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(crate::locked(format!(
            "another run holds the lock {}; wait for it to finish",
            path.display()
        ))),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_status_75_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        let err = lock_dir(dir.path()).unwrap_err();
        assert_eq!(crate::exit::code(&err), 75);
        assert!(err.to_string().contains(".lock"), "{err}");
        drop(first);
        lock_dir(dir.path()).unwrap();
    }
}
