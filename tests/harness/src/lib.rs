//! Throwaway real services for the integration tests, and helpers to drive the
//! tools' real binaries. Every service is started by the test that needs it and
//! removed when the value is dropped; no test depends on a service that happens
//! to be running.

pub mod age;
pub mod listening;
pub mod n8n;
pub mod pg;
pub mod planted;
pub mod qdrant;
pub mod receiver;
pub mod s3;
pub mod script;
pub mod smtp;
pub mod stall;
pub mod tool;

pub use pg::PgCluster;
pub use tool::{
    finish, resume, terminate, wait_for, wait_for_next_second, wait_stopped, Output, Tool,
};

/// The entry paths of a tar.gz (one or more gzip members), in order.
pub fn tar_gz_entries(bytes: &[u8]) -> Vec<String> {
    tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes))
        .entries()
        .expect("a tar.gz")
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// A minio-snap archive holding only its manifest (no objects) for bucket
/// `bucket`, building on `base` (an incremental) or not (a full), written to
/// `dir/name` with its sidecar unless `orphan`. For tests of what a chain is,
/// where neither a server nor real dates matter.
pub fn minio_manifest_archive(
    dir: &std::path::Path,
    name: &str,
    bucket: &str,
    base: Option<&str>,
    orphan: bool,
) {
    use backup_formats::minio::{Head, Kind, Manifest, FILE_NAME, FORMAT};
    use sha2::Digest;
    let manifest = Manifest {
        head: Head {
            format: FORMAT.into(),
            bucket: bucket.into(),
            kind: if base.is_some() {
                Kind::Incremental
            } else {
                Kind::Full
            },
            created: "2024-01-01T00:00:00+00:00".into(),
            base: base.map(str::to_owned),
        },
        keys: Vec::new(),
        deleted: Vec::new(),
        objects: Vec::new(),
    };
    let json = serde_json::to_vec(&manifest).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    tar.append_data(&mut header, FILE_NAME, &json[..]).unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    std::fs::write(dir.join(name), &bytes).unwrap();
    if !orphan {
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        std::fs::write(
            dir.join(format!("{name}.sha256")),
            format!("{sha}  {name}\n"),
        )
        .unwrap();
    }
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Tests that need root (mounting a small tmpfs to fill a disk for real,
/// running crond) are `#[ignore]`d, so that without root they show up as
/// ignored rather than passing; `scripts/test.sh`, as root, runs them with
/// `--include-ignored`. Run without root anyway, they fail: never a silent skip.
pub fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} needs root: it cannot be skipped once asked for"
    );
}

/// A small tmpfs mounted for one test, unmounted on drop.
pub struct SmallDisk {
    path: std::path::PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl SmallDisk {
    /// On a fresh temporary folder.
    pub fn mount(size: &str) -> SmallDisk {
        let temp = tempfile::tempdir().expect("tempdir");
        let mut disk = SmallDisk::mount_on(temp.path(), size);
        disk._temp = Some(temp);
        disk
    }

    /// On `path` (created if missing), e.g. a folder inside a backup tree.
    pub fn mount_on(path: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs at {}", path.display());
        SmallDisk {
            path: path.to_owned(),
            _temp: None,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

/// Every regular file, link and folder under `root`, relative, sorted: a snapshot
/// to compare before and after a failed run.
pub fn tree(root: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(format!("{rel} -> {}", target.display()));
            } else if meta.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(format!("{rel} ({} bytes)", meta.len()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}
