//! Running the shell scripts (`scripts/*.sh`) as the container does: under
//! busybox `sh`, with busybox's applets first on PATH and the workspace's
//! binaries after them.

use crate::tool::Tool;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// The tools' binaries: `$BACKUP_KIT_BIN_DIR` (e.g. the static musl build), else
/// the `target/<profile>` folder this test executable was built into, where
/// `cargo test --workspace` puts every tool's binary.
pub fn bin_dir() -> PathBuf {
    let dir = match std::env::var_os("BACKUP_KIT_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let exe = std::env::current_exe().expect("the test executable");
            // target/<profile>/deps/<test>-<hash>
            exe.parent().and_then(Path::parent).unwrap().to_owned()
        }
    };
    for tool in [
        "pg-dumpwrap",
        "minio-snap",
        "qdrant-snap",
        "n8n-export",
        "backup-prune",
        "backup-verify",
        "backup-report",
    ] {
        assert!(
            dir.join(tool).is_file(),
            "{} is missing: build the workspace first (`cargo test --workspace` does)",
            dir.join(tool).display()
        );
    }
    dir
}

/// Debian's busybox-static (it has crond, which the `busybox` package lacks).
pub fn busybox() -> PathBuf {
    let bin = PathBuf::from(std::env::var_os("BUSYBOX").unwrap_or_else(|| "/bin/busybox".into()));
    assert!(
        bin.is_file(),
        "{} not found: install Debian's busybox-static (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A folder of links to every busybox applet, made once per test process.
fn applets() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("bk-busybox-")
            .tempdir()
            .unwrap();
        let busybox = busybox();
        let list = std::process::Command::new(&busybox)
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            std::os::unix::fs::symlink(&busybox, dir.path().join(applet)).unwrap();
        }
        dir
    })
    .path()
}

/// PATH for a script: busybox applets, the tools, then the system's (for what
/// busybox lacks here but Alpine has: flock, curl, rclone), after `extra`.
pub fn path(extra: &[&Path]) -> String {
    let mut parts: Vec<String> = extra.iter().map(|p| p.display().to_string()).collect();
    parts.push(applets().display().to_string());
    parts.push(bin_dir().display().to_string());
    parts.push("/usr/local/bin:/usr/bin:/bin".into());
    parts.join(":")
}

/// `busybox sh scripts/<name>` with PATH as `path(&[])`.
pub fn script(name: &str) -> Tool {
    let mut t = Tool::new(busybox()).env("PATH", path(&[]));
    t.args = vec!["sh".into(), repo_root().join("scripts").join(name).into()];
    t
}
